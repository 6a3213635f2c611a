-- 0013: reports at scale (issue 5). One month of a year of a large franchise (5 M requests, 12 M legs,
-- 32 M events) in under 2 seconds per report; bench/report_scale.py, docs/benchmarks.md.
--
-- Migration 0010 joined every request to its first audit event and to its legs one request at a time
-- (LATERAL): a month is then ~400,000 random probes into each of two indexes of 12 M and 32 M entries
-- (request ids are random), 10-20 s per report on the benchmark machine, and more indexes cannot change
-- that. So:
--  * cs_request_facts: one row per request with everything the reports need (the request's own columns, its
--    first event, the totals of its legs, and its rings and offers as small arrays), kept up to date by
--    triggers in the same transaction as every write to callback_requests, callback_events and call_legs.
--  * cs_request_context and cs_request_funnel read it (same columns, same meaning): a month is one range
--    scan of its created_at index. cs_agent_rings and cs_destination_offers still read call_legs (their
--    indexes serve one member or one store), with their results defined once (cs_ring_result,
--    cs_offer_result) for the views and for the arrays.
--  * The report functions read cs_request_facts only, in one pass (no per-row subqueries), without JIT
--    (compiling took 0.5-1.5 s per report) and with enough work_mem to sort a month in memory. The trunk
--    reports read the period's legs by originated_at as before, and find the busiest moment with two sorts
--    and a binary search instead of a window over every dial and hang-up.
-- The figures are unchanged: every definition of 0010 holds (docs/reporting.md).

-- ------------------------------------------------------------------------------------------ shared definitions

CREATE FUNCTION cs_connected(p_state text, p_outcome text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (p_outcome IS NOT DISTINCT FROM 'connected' OR p_state IN ('connected', 'completed')) $$;

COMMENT ON FUNCTION cs_connected(text, text) IS
    'True when a request with this state and outcome was connected (agent and visitor put through).';

CREATE FUNCTION cs_after_hours(p_first_to_state text, p_first_due_at text, p_preferred_at timestamptz)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT coalesce(p_first_to_state = 'scheduled'
                    AND (p_preferred_at IS NULL OR p_first_due_at::timestamptz > p_preferred_at), false)
$$;

COMMENT ON FUNCTION cs_after_hours(text, text, timestamptz) IS
    'True when a request arrived outside opening hours: its first audit event (intake) stored it as scheduled '
    '(to_state), for a time (detail ->> ''due_at'') later than the visitor''s preferred time, if any.';

CREATE FUNCTION cs_offer_result(p_accepted boolean, p_declined boolean, p_first_answered_at timestamptz,
                                p_ringing boolean, p_missed boolean)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_accepted THEN 'accepted'
        WHEN p_declined THEN 'declined'
        WHEN p_first_answered_at IS NOT NULL THEN 'answered'
        WHEN p_ringing THEN 'ringing'
        WHEN p_missed THEN 'missed'
        ELSE 'cancelled'
    END
$$;

COMMENT ON FUNCTION cs_offer_result(boolean, boolean, timestamptz, boolean, boolean) IS
    'Result of one offer (cs_destination_offers.result) from its legs: any accepted, any declined, first pick-up, '
    'any still ringing, any missed.';

CREATE FUNCTION cs_ring_result(p_disposition text, p_answered_at timestamptz, p_ended_at timestamptz)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_disposition = 'accepted' THEN 'accepted'
        WHEN p_disposition = 'declined' THEN 'declined'
        WHEN p_answered_at IS NOT NULL THEN 'answered'
        WHEN p_ended_at IS NULL AND p_disposition IS NULL THEN 'ringing'
        WHEN p_disposition IN ('no_answer', 'busy', 'congestion', 'unreachable', 'failed') THEN 'missed'
        WHEN p_disposition = 'answered_elsewhere' THEN 'answered_elsewhere'
        ELSE 'cancelled'
    END
$$;

COMMENT ON FUNCTION cs_ring_result(text, timestamptz, timestamptz) IS
    'Result of one agent leg (cs_agent_rings.result) from its disposition, pick-up and end.';

CREATE TYPE cs_ring AS (destination text, member text, answered boolean, result text, time_to_answer_s numeric);
COMMENT ON TYPE cs_ring IS
    'One agent leg as the member report counts it (cs_agent_rings: destination, member, answered_at IS NOT NULL, '
    'result, time_to_answer_s); cs_request_facts.rings holds those of a request.';

CREATE TYPE cs_offer AS (destination text, answered boolean, result text, time_to_answer_s numeric);
COMMENT ON TYPE cs_offer IS
    'One offer as the destination report counts it (cs_destination_offers: destination, first_answered_at IS NOT '
    'NULL, result, time_to_answer_s); cs_request_facts.offers holds those of a request.';

-- The totals of each request's legs (the LATERAL of cs_request_funnel in 0010), and its rings and offers.
CREATE VIEW cs_request_leg_totals AS
SELECT
    cl.request_id,
    count(*) FILTER (WHERE cl.leg = 'agent') AS agent_legs,
    count(*) FILTER (WHERE cl.leg = 'agent' AND cl.disposition = 'declined') AS agent_declines,
    min(cl.originated_at) FILTER (WHERE cl.leg = 'agent') AS agent_rung_at,
    min(cl.answered_at) FILTER (WHERE cl.leg = 'agent') AS agent_answered_at,
    min(cl.accepted_at) FILTER (WHERE cl.leg = 'agent') AS accepted_at,
    (array_agg(cl.destination ORDER BY cl.accepted_at DESC)
        FILTER (WHERE cl.leg = 'agent' AND cl.accepted_at IS NOT NULL))[1] AS accepted_destination,
    (array_agg(cl.member ORDER BY cl.accepted_at DESC)
        FILTER (WHERE cl.leg = 'agent' AND cl.accepted_at IS NOT NULL))[1] AS accepted_member,
    min(cl.originated_at) FILTER (WHERE cl.leg = 'customer') AS visitor_dialled_at,
    max(cl.answered_at) FILTER (WHERE cl.leg = 'customer') AS visitor_answered_at,
    sum(cl.billable_seconds) FILTER (WHERE cl.leg = 'customer' AND cl.answered_at IS NOT NULL) AS talk_seconds,
    array_agg(ROW(cl.destination, cl.member, cl.answered_at IS NOT NULL,
                  cs_ring_result(cl.disposition, cl.answered_at, cl.ended_at),
                  extract(epoch FROM cl.answered_at - cl.originated_at))::cs_ring ORDER BY cl.id)
        FILTER (WHERE cl.leg = 'agent') AS rings,
    -- the offers: the agent legs of one attempt to one destination (as in cs_destination_offers)
    (SELECT array_agg(ROW(o.destination, o.first_answered_at IS NOT NULL,
                          cs_offer_result(o.accepted, o.declined, o.first_answered_at, o.ringing, o.missed),
                          extract(epoch FROM o.first_answered_at - o.offered_at))::cs_offer
                      ORDER BY o.attempt, o.destination)
     FROM (SELECT l.attempt, l.destination, min(l.originated_at) AS offered_at, min(l.answered_at) AS first_answered_at,
                  bool_or(l.disposition = 'accepted') AS accepted, bool_or(l.disposition = 'declined') AS declined,
                  bool_or(l.ended_at IS NULL AND l.disposition IS NULL) AS ringing,
                  bool_or(l.disposition IN ('no_answer', 'busy', 'congestion', 'unreachable', 'failed')) AS missed
           FROM call_legs l
           WHERE l.request_id = cl.request_id AND l.leg = 'agent'
           GROUP BY l.attempt, l.destination) o) AS offers
FROM call_legs cl
GROUP BY cl.request_id;

COMMENT ON VIEW cs_request_leg_totals IS
    'Per request with legs: the totals of its legs that the funnel uses (first time each step was reached, who '
    'accepted, talk time), its agent legs (rings) and its offers. Kept in cs_request_facts by triggers.';
COMMENT ON COLUMN cs_request_leg_totals.request_id IS 'The request (callback_requests.id).';
COMMENT ON COLUMN cs_request_leg_totals.agent_legs IS 'Agent phones dialled over all attempts.';
COMMENT ON COLUMN cs_request_leg_totals.agent_declines IS 'Agent legs on which the agent declined the lead.';
COMMENT ON COLUMN cs_request_leg_totals.agent_rung_at IS 'When the first agent phone was dialled.';
COMMENT ON COLUMN cs_request_leg_totals.agent_answered_at IS 'When an agent first picked up.';
COMMENT ON COLUMN cs_request_leg_totals.accepted_at IS 'When an agent first accepted the lead.';
COMMENT ON COLUMN cs_request_leg_totals.accepted_destination IS 'Destination of the agent who accepted (the last one).';
COMMENT ON COLUMN cs_request_leg_totals.accepted_member IS 'Member who accepted (the last one).';
COMMENT ON COLUMN cs_request_leg_totals.visitor_dialled_at IS 'When the visitor''s phone was first dialled.';
COMMENT ON COLUMN cs_request_leg_totals.visitor_answered_at IS 'When the visitor last picked up.';
COMMENT ON COLUMN cs_request_leg_totals.talk_seconds IS 'billable_seconds of the answered visitor legs, summed.';
COMMENT ON COLUMN cs_request_leg_totals.rings IS 'Its agent legs (cs_ring), in the order they were written.';
COMMENT ON COLUMN cs_request_leg_totals.offers IS 'Its offers (cs_offer), by attempt and destination.';

-- ------------------------------------------------------------------------------------------ cs_request_facts

CREATE TABLE cs_request_facts (
    request_id           uuid        PRIMARY KEY REFERENCES callback_requests (id) ON DELETE CASCADE,
    site                 text        NOT NULL,
    created_at           timestamptz NOT NULL,
    page                 text,
    utm_source           text,
    campaign             text,
    route_rule           text,
    destination          text,
    preferred_at         timestamptz,
    state                text        NOT NULL,
    outcome              text,
    finished_at          timestamptz,
    attempts             integer     NOT NULL,
    first_event_id       bigint,
    first_to_state       text,
    first_due_at         text,
    agent_legs           bigint      NOT NULL DEFAULT 0,
    agent_declines       bigint      NOT NULL DEFAULT 0,
    agent_rung_at        timestamptz,
    agent_answered_at    timestamptz,
    accepted_at          timestamptz,
    accepted_destination text,
    accepted_member      text,
    visitor_dialled_at   timestamptz,
    visitor_answered_at  timestamptz,
    talk_seconds         bigint,
    rings                cs_ring[],
    offers               cs_offer[]
) WITH (fillfactor = 80);  -- room for the updates of a request's first minutes on its own page (HOT)

COMMENT ON TABLE cs_request_facts IS
    'One row per callback request with what the reports need, kept by triggers in the same transaction as '
    'every change of callback_requests, callback_events and call_legs (migration 0013). Read it through '
    'cs_request_context and cs_request_funnel. If rows were written with triggers disabled (e.g. '
    'session_replication_role = replica), rebuild it: SELECT cs_request_facts_rebuild().';
COMMENT ON COLUMN cs_request_facts.request_id IS 'The request (callback_requests.id).';
COMMENT ON COLUMN cs_request_facts.site IS 'callback_requests.site.';
COMMENT ON COLUMN cs_request_facts.created_at IS 'callback_requests.created_at.';
COMMENT ON COLUMN cs_request_facts.page IS 'cs_page_key(callback_requests.page_url).';
COMMENT ON COLUMN cs_request_facts.utm_source IS 'callback_requests.utm_source.';
COMMENT ON COLUMN cs_request_facts.campaign IS 'callback_requests.utm_campaign.';
COMMENT ON COLUMN cs_request_facts.route_rule IS 'callback_requests.route_rule.';
COMMENT ON COLUMN cs_request_facts.destination IS 'callback_requests.route_destination (first destination).';
COMMENT ON COLUMN cs_request_facts.preferred_at IS 'callback_requests.preferred_at.';
COMMENT ON COLUMN cs_request_facts.state IS 'callback_requests.state.';
COMMENT ON COLUMN cs_request_facts.outcome IS 'callback_requests.outcome.';
COMMENT ON COLUMN cs_request_facts.finished_at IS 'callback_requests.finished_at.';
COMMENT ON COLUMN cs_request_facts.attempts IS 'callback_requests.attempts.';
COMMENT ON COLUMN cs_request_facts.first_event_id IS 'Id of the request''s first audit event (lowest callback_events.id).';
COMMENT ON COLUMN cs_request_facts.first_to_state IS 'to_state of that event (scheduled: intake deferred the request).';
COMMENT ON COLUMN cs_request_facts.first_due_at IS 'detail ->> ''due_at'' of that event, as text.';
COMMENT ON COLUMN cs_request_facts.agent_legs IS 'Agent legs dialled (cs_request_leg_totals).';
COMMENT ON COLUMN cs_request_facts.agent_declines IS 'Agent legs declined.';
COMMENT ON COLUMN cs_request_facts.agent_rung_at IS 'First agent leg dialled.';
COMMENT ON COLUMN cs_request_facts.agent_answered_at IS 'First agent pick-up.';
COMMENT ON COLUMN cs_request_facts.accepted_at IS 'First acceptance.';
COMMENT ON COLUMN cs_request_facts.accepted_destination IS 'Destination of the last acceptance.';
COMMENT ON COLUMN cs_request_facts.accepted_member IS 'Member of the last acceptance.';
COMMENT ON COLUMN cs_request_facts.visitor_dialled_at IS 'First visitor leg dialled.';
COMMENT ON COLUMN cs_request_facts.visitor_answered_at IS 'Last visitor pick-up.';
COMMENT ON COLUMN cs_request_facts.talk_seconds IS 'billable_seconds of the answered visitor legs, summed.';
COMMENT ON COLUMN cs_request_facts.rings IS 'Its agent legs (cs_ring: one element per row of cs_agent_rings).';
COMMENT ON COLUMN cs_request_facts.offers IS 'Its offers (cs_offer: one element per row of cs_destination_offers).';

-- Fill: the request's own columns. The first event and the legs are filled in by their triggers.
-- The trigger functions look up one request by its key: generic plans (index scans), planned once per session,
-- not re-planned for every row (nor fooled by the table being empty when the service started).
CREATE FUNCTION cs_request_facts_on_request() RETURNS trigger
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO cs_request_facts (request_id, site, created_at, page, utm_source, campaign, route_rule,
                                      destination, preferred_at, state, outcome, finished_at, attempts)
        VALUES (NEW.id, NEW.site, NEW.created_at, cs_page_key(NEW.page_url), NEW.utm_source, NEW.utm_campaign,
                NEW.route_rule, NEW.route_destination, NEW.preferred_at, NEW.state, NEW.outcome, NEW.finished_at,
                NEW.attempts);
    ELSE
        UPDATE cs_request_facts f
        SET site = NEW.site, created_at = NEW.created_at, page = cs_page_key(NEW.page_url),
            utm_source = NEW.utm_source, campaign = NEW.utm_campaign, route_rule = NEW.route_rule,
            destination = NEW.route_destination, preferred_at = NEW.preferred_at, state = NEW.state,
            outcome = NEW.outcome, finished_at = NEW.finished_at, attempts = NEW.attempts
        WHERE f.request_id = NEW.id;
    END IF;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION cs_request_facts_on_request() IS
    'Trigger on callback_requests: copies the columns the reports use into cs_request_facts (migration 0013).';

-- The first event of a request: the lowest id. Recomputed when an event is changed or removed.
CREATE FUNCTION cs_request_facts_refresh_event(p_request_id uuid) RETURNS void
LANGUAGE sql AS $$
    UPDATE cs_request_facts f
    SET (first_event_id, first_to_state, first_due_at) =
        (SELECT e.id, e.to_state, e.detail ->> 'due_at' FROM callback_events e
         WHERE e.request_id = p_request_id ORDER BY e.id LIMIT 1)
    WHERE f.request_id = p_request_id
$$;

COMMENT ON FUNCTION cs_request_facts_refresh_event(uuid) IS
    'Recomputes the first-event columns of one request in cs_request_facts (migration 0013).';

CREATE FUNCTION cs_request_facts_on_event() RETURNS trigger
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE cs_request_facts f
        SET first_event_id = NEW.id, first_to_state = NEW.to_state, first_due_at = NEW.detail ->> 'due_at'
        WHERE f.request_id = NEW.request_id AND (f.first_event_id IS NULL OR f.first_event_id > NEW.id);
        RETURN NULL;
    END IF;
    PERFORM cs_request_facts_refresh_event(OLD.request_id);
    IF TG_OP = 'UPDATE' AND NEW.request_id IS DISTINCT FROM OLD.request_id THEN
        PERFORM cs_request_facts_refresh_event(NEW.request_id);
    END IF;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION cs_request_facts_on_event() IS
    'Trigger on callback_events: keeps the first event of each request in cs_request_facts (migration 0013).';

-- The totals of a request's legs, recomputed from its legs (a few rows) whenever one of them changes.
CREATE FUNCTION cs_request_facts_refresh_legs(p_request_id uuid) RETURNS void
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    UPDATE cs_request_facts f
    SET agent_legs = coalesce(t.agent_legs, 0), agent_declines = coalesce(t.agent_declines, 0),
        agent_rung_at = t.agent_rung_at, agent_answered_at = t.agent_answered_at, accepted_at = t.accepted_at,
        accepted_destination = t.accepted_destination, accepted_member = t.accepted_member,
        visitor_dialled_at = t.visitor_dialled_at, visitor_answered_at = t.visitor_answered_at,
        talk_seconds = t.talk_seconds, rings = t.rings, offers = t.offers
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL (SELECT * FROM cs_request_leg_totals lt WHERE lt.request_id = p_request_id) t ON true
    WHERE f.request_id = p_request_id
      AND (f.agent_legs, f.agent_declines, f.agent_rung_at, f.agent_answered_at, f.accepted_at,
           f.accepted_destination, f.accepted_member, f.visitor_dialled_at, f.visitor_answered_at, f.talk_seconds,
           f.rings, f.offers)
          IS DISTINCT FROM
          (coalesce(t.agent_legs, 0), coalesce(t.agent_declines, 0), t.agent_rung_at, t.agent_answered_at,
           t.accepted_at, t.accepted_destination, t.accepted_member, t.visitor_dialled_at, t.visitor_answered_at,
           t.talk_seconds, t.rings, t.offers);
END;
$$;

COMMENT ON FUNCTION cs_request_facts_refresh_legs(uuid) IS
    'Recomputes the leg totals of one request in cs_request_facts from its legs (migration 0013).';

CREATE FUNCTION cs_request_facts_on_leg() RETURNS trigger
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM cs_request_facts_refresh_legs(NEW.request_id);
    END IF;
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND NEW.request_id IS DISTINCT FROM OLD.request_id) THEN
        PERFORM cs_request_facts_refresh_legs(OLD.request_id);
    END IF;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION cs_request_facts_on_leg() IS
    'Trigger on call_legs: keeps the totals of each request''s legs in cs_request_facts (migration 0013).';

CREATE FUNCTION cs_request_facts_on_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'callback_events' THEN
        UPDATE cs_request_facts SET first_event_id = NULL, first_to_state = NULL, first_due_at = NULL
        WHERE first_event_id IS NOT NULL;
    ELSE
        UPDATE cs_request_facts
        SET agent_legs = 0, agent_declines = 0, agent_rung_at = NULL, agent_answered_at = NULL, accepted_at = NULL,
            accepted_destination = NULL, accepted_member = NULL, visitor_dialled_at = NULL,
            visitor_answered_at = NULL, talk_seconds = NULL, rings = NULL, offers = NULL
        WHERE agent_legs > 0 OR visitor_dialled_at IS NOT NULL;
    END IF;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION cs_request_facts_on_truncate() IS
    'Trigger on TRUNCATE of callback_events or call_legs: forgets what cs_request_facts held from them.';

-- Everything, from scratch (this migration, and after writes made with triggers disabled).
CREATE FUNCTION cs_request_facts_rebuild() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    TRUNCATE cs_request_facts;
    INSERT INTO cs_request_facts (
        request_id, site, created_at, page, utm_source, campaign, route_rule, destination, preferred_at, state,
        outcome, finished_at, attempts, first_event_id, first_to_state, first_due_at, agent_legs, agent_declines,
        agent_rung_at, agent_answered_at, accepted_at, accepted_destination, accepted_member, visitor_dialled_at,
        visitor_answered_at, talk_seconds, rings, offers)
    SELECT r.id, r.site, r.created_at, cs_page_key(r.page_url), r.utm_source, r.utm_campaign, r.route_rule,
           r.route_destination, r.preferred_at, r.state, r.outcome, r.finished_at, r.attempts,
           fe.id, fe.to_state, fe.detail ->> 'due_at',
           coalesce(t.agent_legs, 0), coalesce(t.agent_declines, 0), t.agent_rung_at, t.agent_answered_at,
           t.accepted_at, t.accepted_destination, t.accepted_member, t.visitor_dialled_at, t.visitor_answered_at,
           t.talk_seconds, t.rings, t.offers
    FROM callback_requests r
    LEFT JOIN (SELECT DISTINCT ON (e.request_id) e.request_id, e.id, e.to_state, e.detail
               FROM callback_events e ORDER BY e.request_id, e.id) fe ON fe.request_id = r.id
    LEFT JOIN cs_request_leg_totals t ON t.request_id = r.id
    ORDER BY r.created_at;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;

COMMENT ON FUNCTION cs_request_facts_rebuild() IS
    'Refills cs_request_facts from callback_requests, callback_events and call_legs; returns the rows written.';

-- Fill it, then attach the triggers, with writes blocked in between (another daemon may be running): nothing
-- written after the fill's snapshot may be missed. On a year of a large franchise this takes minutes
-- (docs/benchmarks.md); reads go on.
LOCK TABLE callback_requests, callback_events, call_legs IN SHARE ROW EXCLUSIVE MODE;
SET LOCAL work_mem = '256MB';
SET LOCAL maintenance_work_mem = '512MB';
SELECT cs_request_facts_rebuild();
CREATE INDEX cs_request_facts_created_idx ON cs_request_facts (created_at);
CREATE INDEX cs_request_facts_site_idx ON cs_request_facts (site, created_at) INCLUDE (request_id);
-- Statistics for the reports, unless the table is empty: ANALYZE of an empty table makes the planner trust
-- that it is empty (sequential scans) until autovacuum analyzes it again.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM cs_request_facts) THEN
        ANALYZE cs_request_facts;
    END IF;
END;
$$;

CREATE TRIGGER callback_requests_facts AFTER INSERT ON callback_requests
    FOR EACH ROW EXECUTE FUNCTION cs_request_facts_on_request();
CREATE TRIGGER callback_requests_facts_update
    AFTER UPDATE OF site, created_at, page_url, utm_source, utm_campaign, route_rule, route_destination, preferred_at,
                    state, outcome, finished_at, attempts ON callback_requests
    FOR EACH ROW
    WHEN (OLD.site IS DISTINCT FROM NEW.site OR OLD.created_at IS DISTINCT FROM NEW.created_at
          OR cs_page_key(OLD.page_url) IS DISTINCT FROM cs_page_key(NEW.page_url)
          OR OLD.utm_source IS DISTINCT FROM NEW.utm_source OR OLD.utm_campaign IS DISTINCT FROM NEW.utm_campaign
          OR OLD.route_rule IS DISTINCT FROM NEW.route_rule
          OR OLD.route_destination IS DISTINCT FROM NEW.route_destination
          OR OLD.preferred_at IS DISTINCT FROM NEW.preferred_at OR OLD.state IS DISTINCT FROM NEW.state
          OR OLD.outcome IS DISTINCT FROM NEW.outcome OR OLD.finished_at IS DISTINCT FROM NEW.finished_at
          OR OLD.attempts IS DISTINCT FROM NEW.attempts)
    EXECUTE FUNCTION cs_request_facts_on_request();

CREATE TRIGGER callback_events_facts AFTER INSERT OR DELETE ON callback_events
    FOR EACH ROW EXECUTE FUNCTION cs_request_facts_on_event();
CREATE TRIGGER callback_events_facts_update AFTER UPDATE OF request_id, to_state, detail ON callback_events
    FOR EACH ROW
    WHEN (OLD.request_id IS DISTINCT FROM NEW.request_id OR OLD.to_state IS DISTINCT FROM NEW.to_state
          OR (OLD.detail ->> 'due_at') IS DISTINCT FROM (NEW.detail ->> 'due_at'))
    EXECUTE FUNCTION cs_request_facts_on_event();
CREATE TRIGGER callback_events_facts_truncate AFTER TRUNCATE ON callback_events
    FOR EACH STATEMENT EXECUTE FUNCTION cs_request_facts_on_truncate();

CREATE TRIGGER call_legs_facts AFTER INSERT OR DELETE ON call_legs
    FOR EACH ROW EXECUTE FUNCTION cs_request_facts_on_leg();
CREATE TRIGGER call_legs_facts_update
    AFTER UPDATE OF request_id, leg, destination, member, originated_at, answered_at, accepted_at, ended_at,
                    disposition, billable_seconds ON call_legs
    FOR EACH ROW
    WHEN (OLD.request_id IS DISTINCT FROM NEW.request_id OR OLD.leg IS DISTINCT FROM NEW.leg
          OR OLD.destination IS DISTINCT FROM NEW.destination OR OLD.member IS DISTINCT FROM NEW.member
          OR OLD.originated_at IS DISTINCT FROM NEW.originated_at OR OLD.answered_at IS DISTINCT FROM NEW.answered_at
          OR OLD.accepted_at IS DISTINCT FROM NEW.accepted_at OR OLD.ended_at IS DISTINCT FROM NEW.ended_at
          OR OLD.disposition IS DISTINCT FROM NEW.disposition
          OR OLD.billable_seconds IS DISTINCT FROM NEW.billable_seconds)
    EXECUTE FUNCTION cs_request_facts_on_leg();
CREATE TRIGGER call_legs_facts_truncate AFTER TRUNCATE ON call_legs
    FOR EACH STATEMENT EXECUTE FUNCTION cs_request_facts_on_truncate();

COMMENT ON TRIGGER callback_requests_facts ON callback_requests IS 'Keeps cs_request_facts (0013).';
COMMENT ON TRIGGER callback_requests_facts_update ON callback_requests IS 'Keeps cs_request_facts (0013).';
COMMENT ON TRIGGER callback_events_facts ON callback_events IS 'Keeps cs_request_facts (0013).';
COMMENT ON TRIGGER callback_events_facts_update ON callback_events IS 'Keeps cs_request_facts (0013).';
COMMENT ON TRIGGER callback_events_facts_truncate ON callback_events IS 'Keeps cs_request_facts (0013).';
COMMENT ON TRIGGER call_legs_facts ON call_legs IS 'Keeps cs_request_facts (0013).';
COMMENT ON TRIGGER call_legs_facts_update ON call_legs IS 'Keeps cs_request_facts (0013).';
COMMENT ON TRIGGER call_legs_facts_truncate ON call_legs IS 'Keeps cs_request_facts (0013).';

-- ------------------------------------------------------------------------------------------ views (same columns)

CREATE OR REPLACE VIEW cs_request_context AS
SELECT
    f.request_id,
    f.site,
    f.created_at,
    f.page,
    f.utm_source,
    f.campaign,
    f.route_rule,
    f.destination,
    f.state,
    f.outcome,
    f.finished_at,
    f.attempts,
    cs_connected(f.state, f.outcome) AS connected,
    cs_after_hours(f.first_to_state, f.first_due_at, f.preferred_at) AS after_hours,
    CASE WHEN f.first_to_state = 'scheduled' THEN f.first_due_at::timestamptz END AS scheduled_for
FROM cs_request_facts f;

CREATE OR REPLACE VIEW cs_request_funnel AS
SELECT
    f.request_id,
    f.site,
    f.created_at,
    f.page,
    f.utm_source,
    f.campaign,
    f.destination,
    f.state,
    f.outcome,
    f.finished_at,
    cs_after_hours(f.first_to_state, f.first_due_at, f.preferred_at) AS after_hours,
    CASE WHEN f.first_to_state = 'scheduled' THEN f.first_due_at::timestamptz END AS scheduled_for,
    f.attempts,
    f.agent_legs,
    f.agent_declines,
    f.agent_rung_at,
    f.agent_answered_at,
    f.accepted_at,
    f.accepted_destination,
    f.accepted_member,
    f.visitor_dialled_at,
    f.visitor_answered_at,
    cs_connected(f.state, f.outcome) AS connected,
    CASE WHEN cs_connected(f.state, f.outcome) THEN f.visitor_answered_at END AS connected_at,
    CASE WHEN cs_connected(f.state, f.outcome) THEN f.talk_seconds END AS talk_seconds,
    CASE WHEN cs_connected(f.state, f.outcome) THEN extract(epoch FROM f.visitor_answered_at - f.created_at) END
        AS speed_to_lead_s,
    CASE
        WHEN cs_connected(f.state, f.outcome) THEN 'connected'
        WHEN f.visitor_answered_at IS NOT NULL THEN 'visitor_answered'
        WHEN f.accepted_at IS NOT NULL THEN 'accepted'
        WHEN f.agent_answered_at IS NOT NULL THEN 'agent_answered'
        WHEN f.agent_rung_at IS NOT NULL THEN 'agent_rung'
        ELSE 'requested'
    END AS furthest_step,
    CASE
        WHEN cs_connected(f.state, f.outcome) THEN 'connected'
        WHEN f.finished_at IS NULL AND f.state IN ('queued', 'scheduled') THEN 'waiting'
        WHEN f.finished_at IS NULL THEN 'in_progress'
        ELSE coalesce(f.outcome, f.state)
    END AS stop_reason
FROM cs_request_facts f;

COMMENT ON VIEW cs_request_context IS
    'One row per callback request with the facts every report groups or filters by (no call detail). '
    'Filter on created_at and site: a period is one range of cs_request_facts'' created_at index.';
COMMENT ON VIEW cs_request_funnel IS
    'One row per callback request: how far it got (requested -> agent rung -> agent answered -> accepted -> '
    'visitor answered -> connected), when, the talk time, and why it stopped. All attempts (retries) and all '
    'legs (simultaneous ringing) of the request are folded in: each step is the FIRST time it was reached. '
    'Filter on created_at: a period is one range of cs_request_facts'' created_at index.';

CREATE OR REPLACE VIEW cs_agent_rings AS
SELECT
    l.id AS leg_id,
    l.request_id,
    l.attempt,
    l.destination,
    l.member,
    l.trunk,
    c.site,
    c.created_at AS request_created_at,
    c.after_hours,
    l.originated_at,
    l.answered_at,
    l.ended_at,
    l.disposition,
    cs_ring_result(l.disposition, l.answered_at, l.ended_at) AS result,
    extract(epoch FROM l.answered_at - l.originated_at) AS time_to_answer_s
FROM call_legs l
JOIN cs_request_context c ON c.request_id = l.request_id
WHERE l.leg = 'agent';

CREATE OR REPLACE VIEW cs_destination_offers AS
SELECT
    c.request_id,
    o.attempt,
    o.destination,
    c.site,
    c.created_at AS request_created_at,
    c.after_hours,
    o.offered_at,
    o.members_rung,
    o.first_answered_at,
    extract(epoch FROM o.first_answered_at - o.offered_at) AS time_to_answer_s,
    cs_offer_result(o.accepted, o.declined, o.first_answered_at, o.ringing, o.missed) AS result
FROM cs_request_context c
JOIN LATERAL (
    SELECT
        l.attempt,
        l.destination,
        min(l.originated_at) AS offered_at,
        count(*) AS members_rung,
        min(l.answered_at) AS first_answered_at,
        bool_or(l.disposition = 'accepted') AS accepted,
        bool_or(l.disposition = 'declined') AS declined,
        bool_or(l.ended_at IS NULL AND l.disposition IS NULL) AS ringing,
        bool_or(l.disposition IN ('no_answer', 'busy', 'congestion', 'unreachable', 'failed')) AS missed
    FROM call_legs l
    WHERE l.request_id = c.request_id AND l.leg = 'agent'
    GROUP BY l.attempt, l.destination
) o ON true;

-- ------------------------------------------------------------------------------------------ report functions
-- plpgsql so that each can carry its settings: no JIT (compiling a report's plan took longer than running it),
-- work_mem to sort a month in memory, and a plan made for the actual period every time.

CREATE OR REPLACE FUNCTION cs_lead_report(p_by text, p_since timestamptz, p_until timestamptz, p_site text)
RETURNS TABLE (key text, requests bigint, after_hours bigint, connected bigint, connect_rate numeric,
               median_speed_to_lead_s numeric, median_speed_to_lead_in_hours_s numeric, talk_seconds bigint)
LANGUAGE plpgsql STABLE
SET jit = off SET work_mem = '128MB' SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    RETURN QUERY
    SELECT x.key, x.requests, x.after_hours, x.connected, x.connect_rate, x.median_s, x.median_in_hours_s,
           x.talk_seconds
    FROM (
        SELECT
            g.key,
            count(*) AS requests,
            count(*) FILTER (WHERE f.after_hours) AS after_hours,
            count(*) FILTER (WHERE f.connected) AS connected,
            round(count(*) FILTER (WHERE f.connected)::numeric / count(*), 4) AS connect_rate,
            round((percentile_cont(0.5) WITHIN GROUP (ORDER BY f.speed_to_lead_s)
                   FILTER (WHERE f.connected))::numeric, 1) AS median_s,
            round((percentile_cont(0.5) WITHIN GROUP (ORDER BY f.speed_to_lead_s)
                   FILTER (WHERE f.connected AND NOT f.after_hours))::numeric, 1) AS median_in_hours_s,
            coalesce(sum(f.talk_seconds), 0)::bigint AS talk_seconds
        FROM cs_request_funnel f
        CROSS JOIN LATERAL (SELECT coalesce(CASE p_by WHEN 'page' THEN f.page
                                                      WHEN 'campaign' THEN f.campaign
                                                      WHEN 'site' THEN f.site END, '(none)') AS key) g
        WHERE f.created_at >= coalesce(p_since, '-infinity') AND f.created_at < coalesce(p_until, 'infinity')
          AND (p_site IS NULL OR f.site = p_site)
        -- hashtext(key) first: the same groups, sorted on an integer (the percentiles need sorted groups)
        GROUP BY hashtext(g.key), g.key
    ) x
    ORDER BY x.requests DESC, x.key;
END;
$$;

CREATE OR REPLACE FUNCTION cs_destination_report(p_since timestamptz, p_until timestamptz, p_site text DEFAULT NULL,
                                                 p_destination text DEFAULT NULL)
RETURNS TABLE (destination text, requests bigint, offered bigint, answered bigint, accepted bigint,
               declined bigint, missed bigint, answer_rate numeric, accept_rate numeric,
               median_time_to_answer_s numeric, p90_time_to_answer_s numeric, after_hours_share numeric)
LANGUAGE plpgsql STABLE
SET jit = off SET work_mem = '64MB' SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    RETURN QUERY
    WITH o AS (
        -- the rows of cs_destination_offers for the period's requests, from their facts
        SELECT f.request_id, cs_after_hours(f.first_to_state, f.first_due_at, f.preferred_at) AS after_hours,
               x.destination, x.answered, x.result, x.time_to_answer_s
        FROM cs_request_facts f
        CROSS JOIN LATERAL unnest(f.offers) AS x
        WHERE f.created_at >= coalesce(p_since, '-infinity') AND f.created_at < coalesce(p_until, 'infinity')
          AND (p_site IS NULL OR f.site = p_site)
          AND (p_destination IS NULL OR x.destination = p_destination)
    )
    SELECT x.destination, x.requests, x.offered, x.answered, x.accepted, x.declined, x.missed, x.answer_rate,
           x.accept_rate, x.median_s, x.p90_s, x.after_hours_share
    FROM (
        SELECT
            o.destination,
            count(DISTINCT o.request_id) AS requests,
            count(*) AS offered,
            count(*) FILTER (WHERE o.answered) AS answered,
            count(*) FILTER (WHERE o.result = 'accepted') AS accepted,
            count(*) FILTER (WHERE o.result = 'declined') AS declined,
            count(*) FILTER (WHERE o.result = 'missed') AS missed,
            round(count(*) FILTER (WHERE o.answered)::numeric
                  / nullif(count(*) FILTER (WHERE o.answered OR o.result = 'missed'), 0), 4) AS answer_rate,
            round(count(*) FILTER (WHERE o.result = 'accepted')::numeric
                  / nullif(count(*) FILTER (WHERE o.result NOT IN ('ringing', 'cancelled')), 0), 4) AS accept_rate,
            round((percentile_cont(0.5) WITHIN GROUP (ORDER BY o.time_to_answer_s))::numeric, 1) AS median_s,
            round((percentile_cont(0.9) WITHIN GROUP (ORDER BY o.time_to_answer_s))::numeric, 1) AS p90_s,
            round(count(DISTINCT o.request_id) FILTER (WHERE o.after_hours)::numeric
                  / count(DISTINCT o.request_id), 4) AS after_hours_share
        FROM o
        -- hashtext first: the same groups, sorted on an integer (the percentiles need sorted groups)
        GROUP BY hashtext(o.destination), o.destination
    ) x
    ORDER BY x.offered DESC, x.destination;
END;
$$;

CREATE OR REPLACE FUNCTION cs_member_report(p_since timestamptz, p_until timestamptz, p_site text DEFAULT NULL,
                                            p_destination text DEFAULT NULL)
RETURNS TABLE (destination text, member text, offered bigint, answered bigint, accepted bigint, declined bigint,
               missed bigint, answered_elsewhere bigint, answer_rate numeric, median_time_to_answer_s numeric,
               p90_time_to_answer_s numeric, after_hours_share numeric)
LANGUAGE plpgsql STABLE
SET jit = off SET work_mem = '64MB' SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    RETURN QUERY
    WITH a AS (
        -- the rows of cs_agent_rings for the period's requests, from their facts
        SELECT f.request_id, cs_after_hours(f.first_to_state, f.first_due_at, f.preferred_at) AS after_hours,
               r.destination, r.member, r.answered, r.result, r.time_to_answer_s
        FROM cs_request_facts f
        CROSS JOIN LATERAL unnest(f.rings) AS r
        WHERE f.created_at >= coalesce(p_since, '-infinity') AND f.created_at < coalesce(p_until, 'infinity')
          AND (p_site IS NULL OR f.site = p_site)
          AND (p_destination IS NULL OR r.destination = p_destination)
    )
    SELECT x.destination, x.member, x.offered, x.answered, x.accepted, x.declined, x.missed, x.answered_elsewhere,
           x.answer_rate, x.median_s, x.p90_s, x.after_hours_share
    FROM (
        SELECT
            a.destination,
            a.member,
            count(*) AS offered,
            count(*) FILTER (WHERE a.answered) AS answered,
            count(*) FILTER (WHERE a.result = 'accepted') AS accepted,
            count(*) FILTER (WHERE a.result = 'declined') AS declined,
            count(*) FILTER (WHERE a.result = 'missed') AS missed,
            count(*) FILTER (WHERE a.result = 'answered_elsewhere') AS answered_elsewhere,
            round(count(*) FILTER (WHERE a.answered)::numeric
                  / nullif(count(*) FILTER (WHERE a.answered OR a.result = 'missed'), 0), 4) AS answer_rate,
            round((percentile_cont(0.5) WITHIN GROUP (ORDER BY a.time_to_answer_s))::numeric, 1) AS median_s,
            round((percentile_cont(0.9) WITHIN GROUP (ORDER BY a.time_to_answer_s))::numeric, 1) AS p90_s,
            round(count(DISTINCT a.request_id) FILTER (WHERE a.after_hours)::numeric
                  / count(DISTINCT a.request_id), 4) AS after_hours_share
        FROM a
        -- hashtext(member) first: the same groups, sorted on an integer (the percentiles need sorted groups)
        GROUP BY hashtext(a.member), a.member, a.destination
    ) x
    ORDER BY x.destination, x.offered DESC, x.member;
END;
$$;

CREATE OR REPLACE FUNCTION cs_funnel_report(p_since timestamptz, p_until timestamptz, p_site text DEFAULT NULL,
                                            p_destination text DEFAULT NULL)
RETURNS TABLE (step_no integer, step text, reached bigint, share_of_requests numeric, stopped_here bigint,
               stop_reasons jsonb)
LANGUAGE plpgsql STABLE
SET jit = off SET work_mem = '64MB' SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    RETURN QUERY
    WITH steps (step_no, step) AS (
        VALUES (1, 'requested'), (2, 'agent_rung'), (3, 'agent_answered'), (4, 'accepted'),
               (5, 'visitor_answered'), (6, 'connected')
    ), per_reason AS (
        -- one pass over the period: requests per furthest step and stop reason
        SELECT f.furthest_step, f.stop_reason, count(*) AS n
        FROM cs_request_funnel f
        WHERE f.created_at >= coalesce(p_since, '-infinity') AND f.created_at < coalesce(p_until, 'infinity')
          AND (p_site IS NULL OR f.site = p_site)
          AND (p_destination IS NULL OR f.destination = p_destination)
        GROUP BY 1, 2
    ), reasons AS (
        SELECT s.step_no AS furthest, jsonb_object_agg(p.stop_reason, p.n ORDER BY p.stop_reason) AS stop_reasons,
               sum(p.n) AS n
        FROM per_reason p JOIN steps s ON s.step = p.furthest_step
        GROUP BY s.step_no
    ), per_step AS (
        SELECT s.step_no, s.step, coalesce(r.n, 0)::bigint AS stopped_here, coalesce(r.stop_reasons, '{}') AS stop_reasons,
               -- requests whose furthest step is this one or a later one
               coalesce(sum(r.n) OVER (ORDER BY s.step_no DESC), 0)::bigint AS reached
        FROM steps s LEFT JOIN reasons r ON r.furthest = s.step_no
    )
    SELECT p.step_no, p.step, p.reached,
           round(p.reached::numeric / nullif((SELECT sum(r.n) FROM reasons r), 0), 4),
           p.stopped_here, p.stop_reasons
    FROM per_step p
    ORDER BY p.step_no;
END;
$$;

CREATE OR REPLACE FUNCTION cs_volume_heatmap(p_since timestamptz, p_until timestamptz, p_site text DEFAULT NULL,
                                             p_default_tz text DEFAULT 'UTC', p_site_zones jsonb DEFAULT '{}')
RETURNS TABLE (weekday integer, hour integer, requests bigint, connected bigint)
LANGUAGE plpgsql STABLE
SET jit = off SET work_mem = '64MB' SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    RETURN QUERY
    WITH loc AS (
        SELECT c.created_at AT TIME ZONE coalesce(p_site_zones ->> c.site, p_default_tz) AS t, c.connected
        FROM cs_request_context c
        WHERE c.created_at >= coalesce(p_since, '-infinity') AND c.created_at < coalesce(p_until, 'infinity')
          AND (p_site IS NULL OR c.site = p_site)
    ), counts AS (
        SELECT extract(isodow FROM loc.t)::int AS d, extract(hour FROM loc.t)::int AS h, count(*) AS requests,
               count(*) FILTER (WHERE loc.connected) AS connected
        FROM loc GROUP BY 1, 2
    )
    SELECT d.d, h.h, coalesce(c.requests, 0), coalesce(c.connected, 0)
    FROM generate_series(1, 7) AS d(d) CROSS JOIN generate_series(0, 23) AS h(h)
    LEFT JOIN counts c ON c.d = d.d AND c.h = h.h
    ORDER BY d.d, h.h;
END;
$$;

-- The legs of the trunk reports: dialled through a trunk in [since, until), of one site's requests if given.
-- Inlined into its callers; of its two branches only one runs (the other's condition on p_site is false).
CREATE FUNCTION cs_trunk_legs(p_since timestamptz, p_until timestamptz, p_site text)
RETURNS SETOF call_legs
LANGUAGE sql STABLE
AS $$
    SELECT l.* FROM call_legs l
    WHERE p_site IS NULL AND l.trunk IS NOT NULL
      AND l.originated_at >= coalesce(p_since, '-infinity') AND l.originated_at < coalesce(p_until, 'infinity')
    UNION ALL
    SELECT l.* FROM call_legs l JOIN cs_request_facts f ON f.request_id = l.request_id
    WHERE p_site IS NOT NULL AND f.site = p_site AND l.trunk IS NOT NULL
      AND l.originated_at >= coalesce(p_since, '-infinity') AND l.originated_at < coalesce(p_until, 'infinity')
$$;

COMMENT ON FUNCTION cs_trunk_legs(timestamptz, timestamptz, text) IS
    'The legs dialled through a trunk in [since, until), optionally only those of one site''s requests '
    '(used by cs_trunk_report and cs_trunk_failures).';

CREATE OR REPLACE FUNCTION cs_trunk_report(p_since timestamptz, p_until timestamptz, p_site text DEFAULT NULL)
RETURNS TABLE (trunk text, calls bigint, agent_calls bigint, visitor_calls bigint, answered bigint,
               minutes numeric, peak_concurrent bigint, failed bigint, failure_rate numeric)
LANGUAGE plpgsql STABLE
SET jit = off SET work_mem = '64MB' SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    RETURN QUERY
    WITH per_trunk AS (
        SELECT
            l.trunk,
            count(*) AS calls,
            count(*) FILTER (WHERE l.leg = 'agent') AS agent_calls,
            count(*) FILTER (WHERE l.leg = 'customer') AS visitor_calls,
            count(*) FILTER (WHERE l.answered_at IS NOT NULL) AS answered,
            round(coalesce(sum(l.billable_seconds), 0)::numeric / 60, 1) AS minutes,
            count(*) FILTER (WHERE l.disposition IN ('congestion', 'unreachable', 'failed')) AS failed,
            array_agg(l.originated_at) AS starts,
            array_agg(coalesce(l.ended_at, greatest(now(), l.originated_at))) AS ends
        FROM cs_trunk_legs(p_since, p_until, p_site) l
        GROUP BY l.trunk
    )
    SELECT
        p.trunk, p.calls, p.agent_calls, p.visitor_calls, p.answered, p.minutes,
        -- most legs up at once: when the i-th leg (in time order) is dialled, i legs have been dialled and as
        -- many have ended as there are hang-ups at or before that instant (width_bucket: binary search of the
        -- sorted hang-ups). The same maximum as a running sum over dials (+1) and hang-ups (-1, first on a tie).
        (SELECT max(s.i - width_bucket(s.t, e.ends))
         FROM (SELECT ARRAY(SELECT x FROM unnest(p.ends) AS u (x) ORDER BY x) AS ends) e,
              unnest(ARRAY(SELECT x FROM unnest(p.starts) AS u (x) ORDER BY x)) WITH ORDINALITY AS s (t, i))::bigint,
        p.failed, round(p.failed::numeric / p.calls, 4)
    FROM per_trunk p
    ORDER BY p.calls DESC, p.trunk;
END;
$$;

CREATE OR REPLACE FUNCTION cs_trunk_failures(p_since timestamptz, p_until timestamptz, p_site text DEFAULT NULL)
RETURNS TABLE (trunk text, hangup_cause integer, hangup_cause_text text, failed bigint)
LANGUAGE plpgsql STABLE
SET jit = off SET work_mem = '64MB' SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    RETURN QUERY
    SELECT l.trunk, l.hangup_cause, max(l.hangup_cause_text), count(*)
    FROM cs_trunk_legs(p_since, p_until, p_site) l
    WHERE l.disposition IN ('congestion', 'unreachable', 'failed')
    GROUP BY l.trunk, l.hangup_cause
    ORDER BY l.trunk, count(*) DESC, l.hangup_cause;
END;
$$;
