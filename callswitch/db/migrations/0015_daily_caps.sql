-- 0015: daily caps at intake (issue 8, security pass).
--
-- Two caps on the requests stored in any 24 hours, decided inside the storing function so
-- that they hold exactly across every daemon sharing the database:
--   * per phone number (E.164), over every site: p_phone_day_limit (intake.phone.max_per_day);
--     serialised by the per-number advisory lock the function already takes;
--   * per site: p_site_day_limit (sites.<id>.max_requests_per_day); when set, the site's
--     requests are serialised by a per-site advisory lock, taken after the number locks.
-- NULL means no cap. A replayed Idempotency-Key or a pending duplicate is answered before
-- any cap is counted (it stores nothing). Both counts use existing indexes
-- (callback_requests_phone_created_idx, callback_requests_site_created_idx).
--
-- The function body is that of migration 0005 plus the two caps; the batch function is that
-- of migration 0006 plus the two new arguments and the site locks (taken in sorted order after
-- the number locks, so that concurrent batches cannot deadlock).

DROP FUNCTION callswitch_store_request(
    uuid, text, text, text, text, text, text, text, text[], text, text, text, text, text, text, text, integer,
    text, jsonb, boolean, timestamptz, inet, text, text, text, text, timestamptz, integer, double precision,
    jsonb, text, text, text[], text, text);

CREATE FUNCTION callswitch_store_request(
    p_id uuid, p_site text, p_visitor_name text, p_phone_given text, p_phone_e164 text, p_phone_country text,
    p_page_url text, p_referrer text, p_pages_visited text[],
    p_utm_source text, p_utm_medium text, p_utm_campaign text, p_utm_term text, p_utm_content text,
    p_product text, p_postal_code text, p_company_size integer, p_language text, p_attributes jsonb,
    p_consent boolean, p_preferred_at timestamptz, p_client_ip inet, p_user_agent text,
    p_idempotency_key text, p_request_fingerprint text, p_state text, p_due_at timestamptz,
    p_phone_limit integer, p_phone_period_s double precision, p_event_detail jsonb,
    p_route_rule text, p_route_destination text, p_route_chain text[], p_outcome text, p_outcome_detail text,
    p_phone_day_limit integer, p_site_day_limit integer,
    OUT outcome text, OUT request_id uuid, OUT request_state text, OUT request_due_at timestamptz,
    OUT retry_after_s double precision)
LANGUAGE plpgsql AS $$
DECLARE
    existing record;
    recent_n bigint;
    recent_oldest timestamptz;
    nth_newest timestamptz;
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
    -- The cap is reached when the limit-th newest request of the last 24 hours exists; one more is
    -- allowed once that one is 24 hours old.
    IF p_phone_day_limit IS NOT NULL THEN
        SELECT r.created_at INTO nth_newest
        FROM callback_requests r
        WHERE r.phone_e164 = p_phone_e164 AND r.created_at > now() - interval '24 hours'
        ORDER BY r.created_at DESC OFFSET p_phone_day_limit - 1 LIMIT 1;
        IF FOUND THEN
            outcome := 'phone_day_limited';
            retry_after_s := greatest(1, extract(epoch FROM nth_newest + interval '24 hours' - now()));
            RETURN;
        END IF;
    END IF;
    IF p_site_day_limit IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('callswitch:site:' || p_site, 0));
        SELECT r.created_at INTO nth_newest
        FROM callback_requests r
        WHERE r.site = p_site AND r.created_at > now() - interval '24 hours'
        ORDER BY r.created_at DESC OFFSET p_site_day_limit - 1 LIMIT 1;
        IF FOUND THEN
            outcome := 'site_day_limited';
            retry_after_s := greatest(1, extract(epoch FROM nth_newest + interval '24 hours' - now()));
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

COMMENT ON FUNCTION callswitch_store_request IS
    'Used by the intake API: stores one callback request atomically, with its routing decision, '
    'the per-phone limit and the daily caps (migrations 0002, 0003, 0005, 0015). Not for analysts.';

CREATE OR REPLACE FUNCTION callswitch_store_requests(p_requests jsonb)
RETURNS TABLE (idx integer, outcome text, request_id uuid, request_state text, request_due_at timestamptz,
               retry_after_s double precision)
LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
    n bigint;
    res record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('callswitch:phone:' || s.phone, 0))
    FROM (SELECT DISTINCT e->>'phone_e164' AS phone FROM jsonb_array_elements(p_requests) AS e ORDER BY 1) AS s;
    PERFORM pg_advisory_xact_lock(hashtextextended('callswitch:site:' || s.site, 0))
    FROM (SELECT DISTINCT e->>'site' AS site FROM jsonb_array_elements(p_requests) AS e
          WHERE e->>'site_day_limit' IS NOT NULL ORDER BY 1) AS s;
    FOR r, n IN SELECT t.e, t.ord FROM jsonb_array_elements(p_requests) WITH ORDINALITY AS t(e, ord) LOOP
        SELECT * INTO res FROM callswitch_store_request(
            (r->>'id')::uuid, r->>'site', r->>'visitor_name', r->>'phone_given', r->>'phone_e164',
            r->>'phone_country', r->>'page_url', r->>'referrer',
            ARRAY(SELECT jsonb_array_elements_text(r->'pages_visited')),
            r->>'utm_source', r->>'utm_medium', r->>'utm_campaign', r->>'utm_term', r->>'utm_content',
            r->>'product', r->>'postal_code', (r->>'company_size')::integer, r->>'language', r->'attributes',
            (r->>'consent')::boolean, (r->>'preferred_at')::timestamptz, (r->>'client_ip')::inet, r->>'user_agent',
            r->>'idempotency_key', r->>'request_fingerprint', r->>'state', (r->>'due_at')::timestamptz,
            (r->>'phone_limit')::integer, (r->>'phone_period_s')::double precision, r->'event_detail',
            r->>'route_rule', r->>'route_destination', ARRAY(SELECT jsonb_array_elements_text(r->'route_chain')),
            r->>'outcome', r->>'outcome_detail',
            (r->>'phone_day_limit')::integer, (r->>'site_day_limit')::integer);
        idx := n;
        outcome := res.outcome;
        request_id := res.request_id;
        request_state := res.request_state;
        request_due_at := res.request_due_at;
        retry_after_s := res.retry_after_s;
        RETURN NEXT;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION callswitch_store_requests IS
    'Used by the intake API: stores a batch of callback requests atomically (migrations 0006, 0015). Not for analysts.';
