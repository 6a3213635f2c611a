-- 0006: store several callback requests in one statement (one round trip, one commit).
--
-- Under load the intake hands every request that arrives while a write is in flight to
-- the next write, so concurrent requests share a round trip and a WAL flush. Each element
-- is stored exactly as callswitch_store_request() stores one; the phone-number locks of a
-- batch are taken first, in sorted order, so concurrent batches cannot deadlock.

CREATE FUNCTION callswitch_store_requests(p_requests jsonb)
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
            r->>'outcome', r->>'outcome_detail');
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
    'Used by the intake API: stores a batch of callback requests atomically (migration 0006). Not for analysts.';
