-- 0005: intake no longer NOTIFYs inside the request's transaction.
--
-- A NOTIFY takes a database-wide lock at commit and holds it while the commit is flushed,
-- so every accepted request waited for the previous one's WAL flush: commits could not be
-- grouped. The daemon now wakes its own dialer in-process and sends one coalesced
-- NOTIFY callswitch_requests for other daemons after the commit (they also poll).

CREATE OR REPLACE FUNCTION callswitch_store_request(
    p_id uuid, p_site text, p_visitor_name text, p_phone_given text, p_phone_e164 text, p_phone_country text,
    p_page_url text, p_referrer text, p_pages_visited text[],
    p_utm_source text, p_utm_medium text, p_utm_campaign text, p_utm_term text, p_utm_content text,
    p_product text, p_postal_code text, p_company_size integer, p_language text, p_attributes jsonb,
    p_consent boolean, p_preferred_at timestamptz, p_client_ip inet, p_user_agent text,
    p_idempotency_key text, p_request_fingerprint text, p_state text, p_due_at timestamptz,
    p_phone_limit integer, p_phone_period_s double precision, p_event_detail jsonb,
    p_route_rule text, p_route_destination text, p_route_chain text[], p_outcome text, p_outcome_detail text,
    OUT outcome text, OUT request_id uuid, OUT request_state text, OUT request_due_at timestamptz,
    OUT retry_after_s double precision)
LANGUAGE plpgsql AS $$
DECLARE
    existing record;
    recent_n bigint;
    recent_oldest timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('callswitch:phone:' || p_phone_e164, 0));
    IF p_idempotency_key IS NOT NULL THEN
        SELECT r.id, r.state, r.due_at, r.request_fingerprint INTO existing
        FROM callback_requests r WHERE r.site = p_site AND r.idempotency_key = p_idempotency_key;
        IF FOUND THEN
            outcome := CASE WHEN existing.request_fingerprint = p_request_fingerprint
                            THEN 'replayed' ELSE 'idempotency_conflict' END;
            request_id := existing.id; request_state := existing.state; request_due_at := existing.due_at;
            RETURN;
        END IF;
    END IF;
    SELECT r.id, r.state, r.due_at INTO existing
    FROM callback_requests r
    WHERE r.site = p_site AND r.phone_e164 = p_phone_e164 AND r.finished_at IS NULL;
    IF FOUND THEN
        outcome := 'duplicate';
        request_id := existing.id; request_state := existing.state; request_due_at := existing.due_at;
        RETURN;
    END IF;
    IF p_phone_limit IS NOT NULL THEN
        SELECT count(*), min(r.created_at) INTO recent_n, recent_oldest
        FROM callback_requests r
        WHERE r.phone_e164 = p_phone_e164 AND r.created_at > now() - make_interval(secs => p_phone_period_s);
        IF recent_n >= p_phone_limit THEN
            outcome := 'phone_limited';
            retry_after_s := greatest(1, extract(epoch FROM recent_oldest + make_interval(secs => p_phone_period_s) - now()));
            RETURN;
        END IF;
    END IF;
    INSERT INTO callback_requests (
        id, site, visitor_name, phone_given, phone_e164, phone_country, page_url, referrer,
        pages_visited, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
        product, postal_code, company_size, language, attributes, consent, preferred_at,
        client_ip, user_agent, idempotency_key, request_fingerprint, state, due_at,
        route_rule, route_destination, route_chain, outcome, outcome_detail, finished_at)
    VALUES (
        p_id, p_site, p_visitor_name, p_phone_given, p_phone_e164, p_phone_country, p_page_url, p_referrer,
        p_pages_visited, p_utm_source, p_utm_medium, p_utm_campaign, p_utm_term, p_utm_content,
        p_product, p_postal_code, p_company_size, p_language, p_attributes, p_consent, p_preferred_at,
        p_client_ip, p_user_agent, p_idempotency_key, p_request_fingerprint, p_state, COALESCE(p_due_at, now()),
        p_route_rule, p_route_destination, COALESCE(p_route_chain, '{}'), p_outcome, p_outcome_detail,
        CASE WHEN p_state IN ('completed', 'failed', 'cancelled', 'expired', 'rejected') THEN now() END)
    RETURNING id, state, due_at INTO request_id, request_state, request_due_at;
    INSERT INTO callback_events (request_id, event, from_state, to_state, actor, detail)
    VALUES (p_id, 'accepted', NULL, p_state, 'intake', p_event_detail);
    outcome := 'created';
END;
$$;

