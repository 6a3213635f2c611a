-- 0010: reporting. Analyst views and report functions, retention bookkeeping, and the indexes both need.
--
-- Conventions (docs/reporting.md has the long version):
--  * Per-request figures describe a COHORT: the requests created in [since, until), and everything that
--    happened to them (all attempts and legs, whenever they were dialled). Trunk figures are by leg time
--    (legs originated in [since, until)), since that is what carriers bill.
--  * A request is connected when it reached the state connected (outcome connected, state connected or
--    completed). connected_at is when the visitor answered.
--  * A request arrived outside opening hours when intake stored it as scheduled because the routing
--    deferred it to its destination's next opening (not because the visitor picked a later time).
--  * Report functions take NULL for "no bound / no filter"; the cs_*_stats views are the same figures
--    over all time.

-- ------------------------------------------------------------------------------------------ retention

ALTER TABLE callback_requests ADD COLUMN anonymised_at timestamptz;
COMMENT ON COLUMN callback_requests.anonymised_at IS
    'When the retention policy (callswitch purge) removed the personal data of this request; NULL while it '
    'still holds them. Anonymised rows keep everything the reports use.';

CREATE TABLE retention_runs (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ran_at          timestamptz NOT NULL DEFAULT now(),
    older_than_days integer     NOT NULL,
    cutoff          timestamptz NOT NULL,
    requests        bigint      NOT NULL,
    call_legs       bigint      NOT NULL,
    events          bigint      NOT NULL,
    actor           text        NOT NULL
);
COMMENT ON TABLE retention_runs IS
    'Audit trail of the retention policy: one row per callswitch purge run that anonymised something.';
COMMENT ON COLUMN retention_runs.id IS 'Sequence number of the run.';
COMMENT ON COLUMN retention_runs.ran_at IS 'When the run finished.';
COMMENT ON COLUMN retention_runs.older_than_days IS 'Finished requests created more than this many days ago were anonymised.';
COMMENT ON COLUMN retention_runs.cutoff IS 'The exact cut-off: requests created before it were anonymised.';
COMMENT ON COLUMN retention_runs.requests IS 'Requests anonymised by the run.';
COMMENT ON COLUMN retention_runs.call_legs IS 'Visitor legs whose dialled number was removed.';
COMMENT ON COLUMN retention_runs.events IS 'Audit events whose page address lost its query string.';
COMMENT ON COLUMN retention_runs.actor IS 'Who ran it (the operating-system user of callswitch purge, or the daemon).';

-- ------------------------------------------------------------------------------------------ indexes

-- Report windows on request creation time (every cohort report starts here).
CREATE INDEX callback_requests_created_idx ON callback_requests (created_at);
-- Requests still holding personal data, by age: stays small however long the history grows.
CREATE INDEX callback_requests_not_anonymised_idx ON callback_requests (created_at) WHERE anonymised_at IS NULL;
-- Per-store and per-member reports for one destination or member.
CREATE INDEX call_legs_agent_destination_idx ON call_legs (destination, originated_at) WHERE leg = 'agent';
CREATE INDEX call_legs_agent_member_idx ON call_legs (member, originated_at) WHERE leg = 'agent';

-- ------------------------------------------------------------------------------------------ helpers

CREATE FUNCTION cs_page_key(p_url text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT nullif(regexp_replace(p_url, '[?#].*$', ''), '') $$;

COMMENT ON FUNCTION cs_page_key(text) IS
    'A page address without its query string and fragment: the "page" the reports group by '
    '(so ?utm_source=... variants of one page count together).';

-- ------------------------------------------------------------------------------------------ per request

CREATE VIEW cs_request_context AS
SELECT
    r.id AS request_id,
    r.site,
    r.created_at,
    cs_page_key(r.page_url) AS page,
    r.utm_source,
    r.utm_campaign AS campaign,
    r.route_rule,
    r.route_destination AS destination,
    r.state,
    r.outcome,
    r.finished_at,
    r.attempts,
    (r.outcome IS NOT DISTINCT FROM 'connected' OR r.state IN ('connected', 'completed')) AS connected,
    coalesce(fe.to_state = 'scheduled'
             AND (r.preferred_at IS NULL OR (fe.detail ->> 'due_at')::timestamptz > r.preferred_at), false)
        AS after_hours,
    CASE WHEN fe.to_state = 'scheduled' THEN (fe.detail ->> 'due_at')::timestamptz END AS scheduled_for
FROM callback_requests r
LEFT JOIN LATERAL (
    SELECT e.to_state, e.detail FROM callback_events e WHERE e.request_id = r.id ORDER BY e.id LIMIT 1
) fe ON true;

COMMENT ON VIEW cs_request_context IS
    'One row per callback request with the facts every report groups or filters by (no call detail). '
    'Filter on created_at and site: both reach the table''s indexes.';
COMMENT ON COLUMN cs_request_context.request_id IS 'The request (callback_requests.id).';
COMMENT ON COLUMN cs_request_context.site IS 'Site id from the configuration.';
COMMENT ON COLUMN cs_request_context.created_at IS 'When the visitor asked for the call.';
COMMENT ON COLUMN cs_request_context.page IS 'The page it was asked from, without query string and fragment.';
COMMENT ON COLUMN cs_request_context.utm_source IS 'utm_source of the landing page.';
COMMENT ON COLUMN cs_request_context.campaign IS 'utm_campaign of the landing page (NULL: none).';
COMMENT ON COLUMN cs_request_context.route_rule IS 'Routing rule that decided at intake.';
COMMENT ON COLUMN cs_request_context.destination IS 'First destination (store/team) the routing chose at intake.';
COMMENT ON COLUMN cs_request_context.state IS 'Current state of the request.';
COMMENT ON COLUMN cs_request_context.outcome IS 'Final outcome (NULL while active).';
COMMENT ON COLUMN cs_request_context.finished_at IS 'When it reached a final state (NULL while active).';
COMMENT ON COLUMN cs_request_context.attempts IS 'Dialling attempts started (retries included).';
COMMENT ON COLUMN cs_request_context.connected IS 'True when an agent and the visitor were put through to each other.';
COMMENT ON COLUMN cs_request_context.after_hours IS
    'True when the request arrived outside opening hours: intake stored it as scheduled because its '
    'destination was closed (not because the visitor asked for a later time).';
COMMENT ON COLUMN cs_request_context.scheduled_for IS 'When intake scheduled it for (NULL: dialled at once).';


CREATE VIEW cs_request_funnel AS
SELECT
    c.request_id,
    c.site,
    c.created_at,
    c.page,
    c.utm_source,
    c.campaign,
    c.destination,
    c.state,
    c.outcome,
    c.finished_at,
    c.after_hours,
    c.scheduled_for,
    c.attempts,
    coalesce(l.agent_legs, 0) AS agent_legs,
    coalesce(l.agent_declines, 0) AS agent_declines,
    l.agent_rung_at,
    l.agent_answered_at,
    l.accepted_at,
    l.accepted_destination,
    l.accepted_member,
    l.visitor_dialled_at,
    l.visitor_answered_at,
    c.connected,
    CASE WHEN c.connected THEN l.visitor_answered_at END AS connected_at,
    CASE WHEN c.connected THEN l.talk_seconds END AS talk_seconds,
    CASE WHEN c.connected THEN extract(epoch FROM l.visitor_answered_at - c.created_at) END AS speed_to_lead_s,
    CASE
        WHEN c.connected THEN 'connected'
        WHEN l.visitor_answered_at IS NOT NULL THEN 'visitor_answered'
        WHEN l.accepted_at IS NOT NULL THEN 'accepted'
        WHEN l.agent_answered_at IS NOT NULL THEN 'agent_answered'
        WHEN l.agent_rung_at IS NOT NULL THEN 'agent_rung'
        ELSE 'requested'
    END AS furthest_step,
    CASE
        WHEN c.connected THEN 'connected'
        WHEN c.finished_at IS NULL AND c.state IN ('queued', 'scheduled') THEN 'waiting'
        WHEN c.finished_at IS NULL THEN 'in_progress'
        ELSE coalesce(c.outcome, c.state)
    END AS stop_reason
FROM cs_request_context c
LEFT JOIN LATERAL (
    SELECT
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
        sum(cl.billable_seconds) FILTER (WHERE cl.leg = 'customer' AND cl.answered_at IS NOT NULL) AS talk_seconds
    FROM call_legs cl
    WHERE cl.request_id = c.request_id
) l ON true;

COMMENT ON VIEW cs_request_funnel IS
    'One row per callback request: how far it got (requested -> agent rung -> agent answered -> accepted -> '
    'visitor answered -> connected), when, the talk time, and why it stopped. All attempts (retries) and all '
    'legs (simultaneous ringing) of the request are folded in: each step is the FIRST time it was reached.';
COMMENT ON COLUMN cs_request_funnel.request_id IS 'The request (callback_requests.id).';
COMMENT ON COLUMN cs_request_funnel.site IS 'Site id from the configuration.';
COMMENT ON COLUMN cs_request_funnel.created_at IS 'Step "requested": when the visitor asked for the call.';
COMMENT ON COLUMN cs_request_funnel.page IS 'The page it was asked from, without query string and fragment.';
COMMENT ON COLUMN cs_request_funnel.utm_source IS 'utm_source of the landing page.';
COMMENT ON COLUMN cs_request_funnel.campaign IS 'utm_campaign of the landing page (NULL: none).';
COMMENT ON COLUMN cs_request_funnel.destination IS 'First destination (store/team) the routing chose at intake.';
COMMENT ON COLUMN cs_request_funnel.state IS 'Current state of the request.';
COMMENT ON COLUMN cs_request_funnel.outcome IS 'Final outcome (NULL while active).';
COMMENT ON COLUMN cs_request_funnel.finished_at IS 'When it reached a final state (NULL while active).';
COMMENT ON COLUMN cs_request_funnel.after_hours IS 'True when it arrived outside opening hours (see cs_request_context).';
COMMENT ON COLUMN cs_request_funnel.scheduled_for IS 'When intake scheduled it for (NULL: dialled at once).';
COMMENT ON COLUMN cs_request_funnel.attempts IS 'Dialling attempts started (retries included).';
COMMENT ON COLUMN cs_request_funnel.agent_legs IS 'Agent phones dialled over all attempts (each member of a ring-all counts).';
COMMENT ON COLUMN cs_request_funnel.agent_declines IS 'Agent legs on which the agent declined the lead.';
COMMENT ON COLUMN cs_request_funnel.agent_rung_at IS 'Step "agent rung": when the first agent phone was dialled.';
COMMENT ON COLUMN cs_request_funnel.agent_answered_at IS 'Step "agent answered": when an agent first picked up.';
COMMENT ON COLUMN cs_request_funnel.accepted_at IS 'Step "accepted": when an agent first accepted the lead with the key.';
COMMENT ON COLUMN cs_request_funnel.accepted_destination IS 'Destination of the agent who accepted (the last one, after retries).';
COMMENT ON COLUMN cs_request_funnel.accepted_member IS 'Member (number/endpoint) who accepted (the last one, after retries).';
COMMENT ON COLUMN cs_request_funnel.visitor_dialled_at IS 'When the visitor''s phone was first dialled.';
COMMENT ON COLUMN cs_request_funnel.visitor_answered_at IS 'Step "visitor answered": when the visitor picked up (last attempt that reached them).';
COMMENT ON COLUMN cs_request_funnel.connected IS 'Step "connected": agent and visitor were put through.';
COMMENT ON COLUMN cs_request_funnel.connected_at IS 'When the call was connected (the visitor answered); NULL if never.';
COMMENT ON COLUMN cs_request_funnel.talk_seconds IS 'Talk time of the connected call in seconds (visitor leg, answer to hang-up).';
COMMENT ON COLUMN cs_request_funnel.speed_to_lead_s IS 'Seconds from the request to the connected call ("speed to lead"); NULL if not connected.';
COMMENT ON COLUMN cs_request_funnel.furthest_step IS
    'Last funnel step reached: requested, agent_rung, agent_answered, accepted, visitor_answered, connected.';
COMMENT ON COLUMN cs_request_funnel.stop_reason IS
    'Why it stopped there: connected; waiting (queued/scheduled) or in_progress while active; otherwise the '
    'final outcome (no_agent, agent_declined, customer_busy, customer_no_answer, customer_unreachable, '
    'cancelled, expired, rejected, failed).';


-- ------------------------------------------------------------------------------------------ agents

CREATE VIEW cs_agent_rings AS
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
    CASE
        WHEN l.disposition = 'accepted' THEN 'accepted'
        WHEN l.disposition = 'declined' THEN 'declined'
        WHEN l.answered_at IS NOT NULL THEN 'answered'
        WHEN l.ended_at IS NULL AND l.disposition IS NULL THEN 'ringing'
        WHEN l.disposition IN ('no_answer', 'busy', 'congestion', 'unreachable', 'failed') THEN 'missed'
        WHEN l.disposition = 'answered_elsewhere' THEN 'answered_elsewhere'
        ELSE 'cancelled'
    END AS result,
    extract(epoch FROM l.answered_at - l.originated_at) AS time_to_answer_s
FROM call_legs l
JOIN cs_request_context c ON c.request_id = l.request_id
WHERE l.leg = 'agent';

COMMENT ON VIEW cs_agent_rings IS
    'One row per agent leg: one member''s phone rung for one attempt of one request (with simultaneous '
    'ringing, one row per member rung at once).';
COMMENT ON COLUMN cs_agent_rings.leg_id IS 'call_legs.id of the leg.';
COMMENT ON COLUMN cs_agent_rings.request_id IS 'The request.';
COMMENT ON COLUMN cs_agent_rings.attempt IS 'Attempt number within the request.';
COMMENT ON COLUMN cs_agent_rings.destination IS 'Destination (store/team) the member was rung for.';
COMMENT ON COLUMN cs_agent_rings.member IS 'The member rung (number or endpoint).';
COMMENT ON COLUMN cs_agent_rings.trunk IS 'Trunk the leg went out on (NULL for internal endpoints).';
COMMENT ON COLUMN cs_agent_rings.site IS 'Site of the request.';
COMMENT ON COLUMN cs_agent_rings.request_created_at IS 'When the request was made.';
COMMENT ON COLUMN cs_agent_rings.after_hours IS 'The request arrived outside opening hours.';
COMMENT ON COLUMN cs_agent_rings.originated_at IS 'When the member''s phone was dialled.';
COMMENT ON COLUMN cs_agent_rings.answered_at IS 'When the member picked up (NULL: did not).';
COMMENT ON COLUMN cs_agent_rings.ended_at IS 'When the leg ended.';
COMMENT ON COLUMN cs_agent_rings.disposition IS 'call_legs.disposition as recorded.';
COMMENT ON COLUMN cs_agent_rings.result IS
    'accepted; declined; answered (picked up without accepting, or too late); missed (rang out, busy, '
    'unreachable, failed); answered_elsewhere (ring-all: another member took it first); cancelled (the '
    'attempt stopped while it rang, e.g. the visitor cancelled); ringing (still ringing).';
COMMENT ON COLUMN cs_agent_rings.time_to_answer_s IS 'Seconds from dialling to pick-up (NULL if not answered).';


CREATE VIEW cs_destination_offers AS
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
    CASE
        WHEN o.accepted THEN 'accepted'
        WHEN o.declined THEN 'declined'
        WHEN o.first_answered_at IS NOT NULL THEN 'answered'
        WHEN o.ringing THEN 'ringing'
        WHEN o.missed THEN 'missed'
        ELSE 'cancelled'
    END AS result
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

COMMENT ON VIEW cs_destination_offers IS
    'One row per lead offered to a destination: a destination (store/team) rung for one attempt of one '
    'request, however many of its members rang (ring-all, hunting, rounds) and however many trunks were tried.';
COMMENT ON COLUMN cs_destination_offers.request_id IS 'The request.';
COMMENT ON COLUMN cs_destination_offers.attempt IS 'Attempt number within the request.';
COMMENT ON COLUMN cs_destination_offers.destination IS 'Destination (store/team) offered the lead.';
COMMENT ON COLUMN cs_destination_offers.site IS 'Site of the request.';
COMMENT ON COLUMN cs_destination_offers.request_created_at IS 'When the request was made.';
COMMENT ON COLUMN cs_destination_offers.after_hours IS 'The request arrived outside opening hours.';
COMMENT ON COLUMN cs_destination_offers.offered_at IS 'When the destination''s first member was dialled.';
COMMENT ON COLUMN cs_destination_offers.members_rung IS 'Agent legs dialled for this offer.';
COMMENT ON COLUMN cs_destination_offers.first_answered_at IS 'When a member first picked up (NULL: nobody did).';
COMMENT ON COLUMN cs_destination_offers.time_to_answer_s IS 'Seconds from the first dial to the first pick-up.';
COMMENT ON COLUMN cs_destination_offers.result IS
    'accepted (a member accepted); declined (a member declined and nobody accepted); answered (picked up, '
    'nobody accepted or declined); missed (nobody picked up); cancelled (stopped while ringing); ringing.';


-- ------------------------------------------------------------------------------------------ report functions

CREATE FUNCTION cs_lead_report(p_by text, p_since timestamptz, p_until timestamptz, p_site text)
RETURNS TABLE (key text, requests bigint, after_hours bigint, connected bigint, connect_rate numeric,
               median_speed_to_lead_s numeric, median_speed_to_lead_in_hours_s numeric, talk_seconds bigint)
LANGUAGE sql STABLE AS $$
    SELECT
        g.key,
        count(*),
        count(*) FILTER (WHERE f.after_hours),
        count(*) FILTER (WHERE f.connected),
        round(count(*) FILTER (WHERE f.connected)::numeric / count(*), 4),
        round((percentile_cont(0.5) WITHIN GROUP (ORDER BY f.speed_to_lead_s)
               FILTER (WHERE f.connected))::numeric, 1),
        round((percentile_cont(0.5) WITHIN GROUP (ORDER BY f.speed_to_lead_s)
               FILTER (WHERE f.connected AND NOT f.after_hours))::numeric, 1),
        coalesce(sum(f.talk_seconds), 0)::bigint
    FROM cs_request_funnel f
    CROSS JOIN LATERAL (SELECT coalesce(CASE p_by WHEN 'page' THEN f.page
                                                  WHEN 'campaign' THEN f.campaign
                                                  WHEN 'site' THEN f.site END, '(none)') AS key) g
    WHERE f.created_at >= coalesce(p_since, '-infinity') AND f.created_at < coalesce(p_until, 'infinity')
      AND (p_site IS NULL OR f.site = p_site)
    GROUP BY g.key
    ORDER BY count(*) DESC, g.key
$$;

COMMENT ON FUNCTION cs_lead_report(text, timestamptz, timestamptz, text) IS
    'Requests and connections of the requests created in [since, until), grouped by p_by: page, campaign or '
    'site. Used by cs_page_report, cs_campaign_report, cs_site_report.';

CREATE FUNCTION cs_page_report(p_since timestamptz, p_until timestamptz, p_site text DEFAULT NULL)
RETURNS TABLE (page text, requests bigint, after_hours bigint, connected bigint, connect_rate numeric,
               median_speed_to_lead_s numeric, median_speed_to_lead_in_hours_s numeric, talk_seconds bigint)
LANGUAGE sql STABLE AS $$ SELECT * FROM cs_lead_report('page', p_since, p_until, p_site) $$;
COMMENT ON FUNCTION cs_page_report(timestamptz, timestamptz, text) IS
    'Per page: the columns of cs_page_stats for the requests created in [since, until) (NULL: unbounded), '
    'optionally of one site.';

CREATE FUNCTION cs_campaign_report(p_since timestamptz, p_until timestamptz, p_site text DEFAULT NULL)
RETURNS TABLE (campaign text, requests bigint, after_hours bigint, connected bigint, connect_rate numeric,
               median_speed_to_lead_s numeric, median_speed_to_lead_in_hours_s numeric, talk_seconds bigint)
LANGUAGE sql STABLE AS $$ SELECT * FROM cs_lead_report('campaign', p_since, p_until, p_site) $$;
COMMENT ON FUNCTION cs_campaign_report(timestamptz, timestamptz, text) IS
    'Per utm_campaign ((none) without one): the columns of cs_campaign_stats for the requests created in '
    '[since, until), optionally of one site.';

CREATE FUNCTION cs_site_report(p_since timestamptz, p_until timestamptz, p_site text DEFAULT NULL)
RETURNS TABLE (site text, requests bigint, after_hours bigint, connected bigint, connect_rate numeric,
               median_speed_to_lead_s numeric, median_speed_to_lead_in_hours_s numeric, talk_seconds bigint)
LANGUAGE sql STABLE AS $$ SELECT * FROM cs_lead_report('site', p_since, p_until, p_site) $$;
COMMENT ON FUNCTION cs_site_report(timestamptz, timestamptz, text) IS
    'Per site: the columns of cs_site_stats for the requests created in [since, until).';


CREATE FUNCTION cs_destination_report(p_since timestamptz, p_until timestamptz, p_site text DEFAULT NULL,
                                      p_destination text DEFAULT NULL)
RETURNS TABLE (destination text, requests bigint, offered bigint, answered bigint, accepted bigint,
               declined bigint, missed bigint, answer_rate numeric, accept_rate numeric,
               median_time_to_answer_s numeric, p90_time_to_answer_s numeric, after_hours_share numeric)
LANGUAGE sql STABLE AS $$
    SELECT
        o.destination,
        count(DISTINCT o.request_id),
        count(*),
        count(*) FILTER (WHERE o.first_answered_at IS NOT NULL),
        count(*) FILTER (WHERE o.result = 'accepted'),
        count(*) FILTER (WHERE o.result = 'declined'),
        count(*) FILTER (WHERE o.result = 'missed'),
        round(count(*) FILTER (WHERE o.first_answered_at IS NOT NULL)::numeric
              / nullif(count(*) FILTER (WHERE o.first_answered_at IS NOT NULL OR o.result = 'missed'), 0), 4),
        round(count(*) FILTER (WHERE o.result = 'accepted')::numeric
              / nullif(count(*) FILTER (WHERE o.result NOT IN ('ringing', 'cancelled')), 0), 4),
        round((percentile_cont(0.5) WITHIN GROUP (ORDER BY o.time_to_answer_s))::numeric, 1),
        round((percentile_cont(0.9) WITHIN GROUP (ORDER BY o.time_to_answer_s))::numeric, 1),
        round(count(DISTINCT o.request_id) FILTER (WHERE o.after_hours)::numeric
              / count(DISTINCT o.request_id), 4)
    FROM cs_destination_offers o
    WHERE o.request_created_at >= coalesce(p_since, '-infinity')
      AND o.request_created_at < coalesce(p_until, 'infinity')
      AND (p_site IS NULL OR o.site = p_site)
      AND (p_destination IS NULL OR o.destination = p_destination)
    GROUP BY o.destination
    ORDER BY count(*) DESC, o.destination
$$;

COMMENT ON FUNCTION cs_destination_report(timestamptz, timestamptz, text, text) IS
    'Per destination (store/team): the columns of cs_destination_stats for the requests created in '
    '[since, until), optionally of one site and/or one destination.';


CREATE FUNCTION cs_member_report(p_since timestamptz, p_until timestamptz, p_site text DEFAULT NULL,
                                 p_destination text DEFAULT NULL)
RETURNS TABLE (destination text, member text, offered bigint, answered bigint, accepted bigint, declined bigint,
               missed bigint, answered_elsewhere bigint, answer_rate numeric, median_time_to_answer_s numeric,
               p90_time_to_answer_s numeric, after_hours_share numeric)
LANGUAGE sql STABLE AS $$
    SELECT
        a.destination,
        a.member,
        count(*),
        count(*) FILTER (WHERE a.answered_at IS NOT NULL),
        count(*) FILTER (WHERE a.result = 'accepted'),
        count(*) FILTER (WHERE a.result = 'declined'),
        count(*) FILTER (WHERE a.result = 'missed'),
        count(*) FILTER (WHERE a.result = 'answered_elsewhere'),
        round(count(*) FILTER (WHERE a.answered_at IS NOT NULL)::numeric
              / nullif(count(*) FILTER (WHERE a.answered_at IS NOT NULL OR a.result = 'missed'), 0), 4),
        round((percentile_cont(0.5) WITHIN GROUP (ORDER BY a.time_to_answer_s))::numeric, 1),
        round((percentile_cont(0.9) WITHIN GROUP (ORDER BY a.time_to_answer_s))::numeric, 1),
        round(count(DISTINCT a.request_id) FILTER (WHERE a.after_hours)::numeric
              / count(DISTINCT a.request_id), 4)
    FROM cs_agent_rings a
    WHERE a.request_created_at >= coalesce(p_since, '-infinity')
      AND a.request_created_at < coalesce(p_until, 'infinity')
      AND (p_site IS NULL OR a.site = p_site)
      AND (p_destination IS NULL OR a.destination = p_destination)
    GROUP BY a.destination, a.member
    ORDER BY a.destination, count(*) DESC, a.member
$$;

COMMENT ON FUNCTION cs_member_report(timestamptz, timestamptz, text, text) IS
    'Per destination member (agent phone): the columns of cs_member_stats for the requests created in '
    '[since, until), optionally of one site and/or one destination.';


CREATE FUNCTION cs_funnel_report(p_since timestamptz, p_until timestamptz, p_site text DEFAULT NULL,
                                 p_destination text DEFAULT NULL)
RETURNS TABLE (step_no integer, step text, reached bigint, share_of_requests numeric, stopped_here bigint,
               stop_reasons jsonb)
LANGUAGE sql STABLE AS $$
    WITH f AS (
        SELECT * FROM cs_request_funnel f
        WHERE f.created_at >= coalesce(p_since, '-infinity') AND f.created_at < coalesce(p_until, 'infinity')
          AND (p_site IS NULL OR f.site = p_site)
          AND (p_destination IS NULL OR f.destination = p_destination)
    ), steps (step_no, step) AS (
        VALUES (1, 'requested'), (2, 'agent_rung'), (3, 'agent_answered'), (4, 'accepted'),
               (5, 'visitor_answered'), (6, 'connected')
    ), per_request AS (
        SELECT s.step_no AS furthest, f.stop_reason
        FROM f JOIN steps s ON s.step = f.furthest_step
    ), reasons AS (
        SELECT furthest, jsonb_object_agg(stop_reason, n ORDER BY stop_reason) AS stop_reasons, sum(n) AS n
        FROM (SELECT furthest, stop_reason, count(*) AS n FROM per_request GROUP BY 1, 2) x
        GROUP BY furthest
    ), total AS (SELECT count(*) AS n FROM per_request)
    SELECT
        s.step_no,
        s.step,
        (SELECT count(*) FROM per_request p WHERE p.furthest >= s.step_no),
        round((SELECT count(*) FROM per_request p WHERE p.furthest >= s.step_no)::numeric
              / nullif((SELECT n FROM total), 0), 4),
        coalesce(r.n, 0)::bigint,
        coalesce(r.stop_reasons, '{}')
    FROM steps s LEFT JOIN reasons r ON r.furthest = s.step_no
    ORDER BY s.step_no
$$;

COMMENT ON FUNCTION cs_funnel_report(timestamptz, timestamptz, text, text) IS
    'The funnel of the requests created in [since, until) (optionally one site, one first destination): per '
    'step how many requests reached it, the share of all requests, how many stopped there and why.';


CREATE FUNCTION cs_volume_heatmap(p_since timestamptz, p_until timestamptz, p_site text DEFAULT NULL,
                                  p_default_tz text DEFAULT 'UTC', p_site_zones jsonb DEFAULT '{}')
RETURNS TABLE (weekday integer, hour integer, requests bigint, connected bigint)
LANGUAGE sql STABLE AS $$
    WITH loc AS (
        SELECT extract(isodow FROM c.created_at AT TIME ZONE coalesce(p_site_zones ->> c.site, p_default_tz))::int AS d,
               extract(hour FROM c.created_at AT TIME ZONE coalesce(p_site_zones ->> c.site, p_default_tz))::int AS h,
               c.connected
        FROM cs_request_context c
        WHERE c.created_at >= coalesce(p_since, '-infinity') AND c.created_at < coalesce(p_until, 'infinity')
          AND (p_site IS NULL OR c.site = p_site)
    ), counts AS (
        SELECT d, h, count(*) AS requests, count(*) FILTER (WHERE connected) AS connected FROM loc GROUP BY d, h
    )
    SELECT d.d, h.h, coalesce(c.requests, 0), coalesce(c.connected, 0)
    FROM generate_series(1, 7) AS d(d) CROSS JOIN generate_series(0, 23) AS h(h)
    LEFT JOIN counts c ON c.d = d.d AND c.h = h.h
    ORDER BY d.d, h.h
$$;

COMMENT ON FUNCTION cs_volume_heatmap(timestamptz, timestamptz, text, text, jsonb) IS
    'Requests created in [since, until) by weekday (1 = Monday .. 7 = Sunday) and hour of day (0..23) in '
    'each site''s local time: p_site_zones maps site id -> IANA time zone (the time_zone of sites.<id> in '
    'the configuration; Postgres does not know it), p_default_tz is used for sites not in the map. '
    'Always 168 rows.';


CREATE FUNCTION cs_trunk_report(p_since timestamptz, p_until timestamptz, p_site text DEFAULT NULL)
RETURNS TABLE (trunk text, calls bigint, agent_calls bigint, visitor_calls bigint, answered bigint,
               minutes numeric, peak_concurrent bigint, failed bigint, failure_rate numeric)
LANGUAGE sql STABLE AS $$
    WITH legs AS (
        SELECT l.trunk, l.leg, l.originated_at, coalesce(l.ended_at, greatest(now(), l.originated_at)) AS ended_at,
               l.answered_at, l.billable_seconds, l.disposition
        FROM call_legs l
        WHERE l.trunk IS NOT NULL
          AND l.originated_at >= coalesce(p_since, '-infinity') AND l.originated_at < coalesce(p_until, 'infinity')
          AND (p_site IS NULL OR EXISTS (SELECT 1 FROM callback_requests r WHERE r.id = l.request_id
                                         AND r.site = p_site))
    ), edges AS (
        SELECT trunk, originated_at AS t, 1 AS delta FROM legs
        UNION ALL
        SELECT trunk, ended_at, -1 FROM legs
    ), running AS (
        SELECT trunk, sum(delta) OVER (PARTITION BY trunk ORDER BY t, delta
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS live
        FROM edges
    ), peaks AS (
        SELECT trunk, max(live) AS peak FROM running GROUP BY trunk
    )
    SELECT
        l.trunk,
        count(*),
        count(*) FILTER (WHERE l.leg = 'agent'),
        count(*) FILTER (WHERE l.leg = 'customer'),
        count(*) FILTER (WHERE l.answered_at IS NOT NULL),
        round(coalesce(sum(l.billable_seconds), 0)::numeric / 60, 1),
        max(p.peak)::bigint,
        count(*) FILTER (WHERE l.disposition IN ('congestion', 'unreachable', 'failed')),
        round(count(*) FILTER (WHERE l.disposition IN ('congestion', 'unreachable', 'failed'))::numeric
              / count(*), 4)
    FROM legs l JOIN peaks p ON p.trunk = l.trunk
    GROUP BY l.trunk
    ORDER BY count(*) DESC, l.trunk
$$;

COMMENT ON FUNCTION cs_trunk_report(timestamptz, timestamptz, text) IS
    'Per trunk: the columns of cs_trunk_stats for the legs ORIGINATED in [since, until) (leg time, not request '
    'time), optionally only legs of one site''s requests.';


CREATE FUNCTION cs_trunk_failures(p_since timestamptz, p_until timestamptz, p_site text DEFAULT NULL)
RETURNS TABLE (trunk text, hangup_cause integer, hangup_cause_text text, failed bigint)
LANGUAGE sql STABLE AS $$
    SELECT l.trunk, l.hangup_cause, max(l.hangup_cause_text), count(*)
    FROM call_legs l
    WHERE l.trunk IS NOT NULL AND l.disposition IN ('congestion', 'unreachable', 'failed')
      AND l.originated_at >= coalesce(p_since, '-infinity') AND l.originated_at < coalesce(p_until, 'infinity')
      AND (p_site IS NULL OR EXISTS (SELECT 1 FROM callback_requests r WHERE r.id = l.request_id
                                     AND r.site = p_site))
    GROUP BY l.trunk, l.hangup_cause
    ORDER BY l.trunk, count(*) DESC, l.hangup_cause
$$;

COMMENT ON FUNCTION cs_trunk_failures(timestamptz, timestamptz, text) IS
    'Failed legs (congestion, unreachable, failed) per trunk and Q.850 hangup cause, for the legs originated '
    'in [since, until). Busy and no-answer are the called party''s doing and are not trunk failures.';

-- ------------------------------------------------------------------------------------------ all-time views

CREATE VIEW cs_page_stats AS SELECT * FROM cs_page_report(NULL, NULL);
CREATE VIEW cs_campaign_stats AS SELECT * FROM cs_campaign_report(NULL, NULL);
CREATE VIEW cs_site_stats AS SELECT * FROM cs_site_report(NULL, NULL);
CREATE VIEW cs_destination_stats AS SELECT * FROM cs_destination_report(NULL, NULL);
CREATE VIEW cs_member_stats AS SELECT * FROM cs_member_report(NULL, NULL);
CREATE VIEW cs_trunk_stats AS SELECT * FROM cs_trunk_report(NULL, NULL);

COMMENT ON VIEW cs_page_stats IS
    'Per page, all time (cs_page_report(since, until, site) for a period). Speed to lead is the time from the '
    'request to the connected call.';
COMMENT ON VIEW cs_campaign_stats IS 'Per utm_campaign, all time (cs_campaign_report(since, until, site) for a period).';
COMMENT ON VIEW cs_site_stats IS 'Per site, all time (cs_site_report(since, until, site) for a period).';
COMMENT ON VIEW cs_destination_stats IS
    'Per destination (store/team), all time (cs_destination_report(since, until, site, destination) for a '
    'period). Counts are offers: one per request attempt that rang the destination (cs_destination_offers).';
COMMENT ON VIEW cs_member_stats IS
    'Per destination member (agent phone), all time (cs_member_report(since, until, site, destination) for a '
    'period). Counts are rings: one per agent leg (cs_agent_rings).';
COMMENT ON VIEW cs_trunk_stats IS 'Per trunk, all time (cs_trunk_report(since, until, site) for a period).';

COMMENT ON COLUMN cs_page_stats.page IS 'Page address without query string and fragment ((none): no page sent).';
COMMENT ON COLUMN cs_campaign_stats.campaign IS 'utm_campaign ((none): no campaign).';
COMMENT ON COLUMN cs_site_stats.site IS 'Site id from the configuration.';
COMMENT ON COLUMN cs_page_stats.requests IS 'Callback requests made (rejected ones included).';
COMMENT ON COLUMN cs_campaign_stats.requests IS 'Callback requests made (rejected ones included).';
COMMENT ON COLUMN cs_site_stats.requests IS 'Callback requests made (rejected ones included).';
COMMENT ON COLUMN cs_page_stats.after_hours IS 'Of those, requests that arrived outside opening hours.';
COMMENT ON COLUMN cs_campaign_stats.after_hours IS 'Of those, requests that arrived outside opening hours.';
COMMENT ON COLUMN cs_site_stats.after_hours IS 'Of those, requests that arrived outside opening hours.';
COMMENT ON COLUMN cs_page_stats.connected IS 'Requests that ended in a connected call.';
COMMENT ON COLUMN cs_campaign_stats.connected IS 'Requests that ended in a connected call.';
COMMENT ON COLUMN cs_site_stats.connected IS 'Requests that ended in a connected call.';
COMMENT ON COLUMN cs_page_stats.connect_rate IS 'connected / requests (0..1, 4 decimals).';
COMMENT ON COLUMN cs_campaign_stats.connect_rate IS 'connected / requests (0..1, 4 decimals).';
COMMENT ON COLUMN cs_site_stats.connect_rate IS 'connected / requests (0..1, 4 decimals).';
COMMENT ON COLUMN cs_page_stats.median_speed_to_lead_s IS 'Median seconds from request to connected call, over connected requests.';
COMMENT ON COLUMN cs_campaign_stats.median_speed_to_lead_s IS 'Median seconds from request to connected call, over connected requests.';
COMMENT ON COLUMN cs_site_stats.median_speed_to_lead_s IS 'Median seconds from request to connected call, over connected requests.';
COMMENT ON COLUMN cs_page_stats.median_speed_to_lead_in_hours_s IS 'The same median over requests that arrived during opening hours.';
COMMENT ON COLUMN cs_campaign_stats.median_speed_to_lead_in_hours_s IS 'The same median over requests that arrived during opening hours.';
COMMENT ON COLUMN cs_site_stats.median_speed_to_lead_in_hours_s IS 'The same median over requests that arrived during opening hours.';
COMMENT ON COLUMN cs_page_stats.talk_seconds IS 'Total talk time of the connected calls, seconds.';
COMMENT ON COLUMN cs_campaign_stats.talk_seconds IS 'Total talk time of the connected calls, seconds.';
COMMENT ON COLUMN cs_site_stats.talk_seconds IS 'Total talk time of the connected calls, seconds.';

COMMENT ON COLUMN cs_destination_stats.destination IS 'Destination (store/team) id from the routing file.';
COMMENT ON COLUMN cs_destination_stats.requests IS 'Distinct requests offered to the destination.';
COMMENT ON COLUMN cs_destination_stats.offered IS 'Offers: request attempts that rang the destination (retries and overflow count again).';
COMMENT ON COLUMN cs_destination_stats.answered IS 'Offers on which a member picked up.';
COMMENT ON COLUMN cs_destination_stats.accepted IS 'Offers a member accepted.';
COMMENT ON COLUMN cs_destination_stats.declined IS 'Offers a member declined and nobody accepted.';
COMMENT ON COLUMN cs_destination_stats.missed IS 'Offers on which nobody picked up (rang out, busy, unreachable).';
COMMENT ON COLUMN cs_destination_stats.answer_rate IS 'answered / (answered + missed): offers cancelled while ringing do not count.';
COMMENT ON COLUMN cs_destination_stats.accept_rate IS 'accepted / offers that ended (not ringing, not cancelled).';
COMMENT ON COLUMN cs_destination_stats.median_time_to_answer_s IS 'Median seconds from the first dial to the first pick-up, over answered offers.';
COMMENT ON COLUMN cs_destination_stats.p90_time_to_answer_s IS '90th percentile of the same (9 in 10 offers were answered faster).';
COMMENT ON COLUMN cs_destination_stats.after_hours_share IS 'Share of the offered requests that arrived outside opening hours (0..1).';

COMMENT ON COLUMN cs_member_stats.destination IS 'Destination the member was rung for.';
COMMENT ON COLUMN cs_member_stats.member IS 'The member (number or endpoint).';
COMMENT ON COLUMN cs_member_stats.offered IS 'Times the member''s phone was rung.';
COMMENT ON COLUMN cs_member_stats.answered IS 'Rings the member picked up.';
COMMENT ON COLUMN cs_member_stats.accepted IS 'Rings on which the member accepted the lead.';
COMMENT ON COLUMN cs_member_stats.declined IS 'Rings on which the member declined the lead.';
COMMENT ON COLUMN cs_member_stats.missed IS 'Rings the member did not pick up (rang out, busy, unreachable).';
COMMENT ON COLUMN cs_member_stats.answered_elsewhere IS 'Ring-all rings stopped because another member took the lead first (not missed).';
COMMENT ON COLUMN cs_member_stats.answer_rate IS 'answered / (answered + missed).';
COMMENT ON COLUMN cs_member_stats.median_time_to_answer_s IS 'Median seconds from dial to pick-up, over answered rings.';
COMMENT ON COLUMN cs_member_stats.p90_time_to_answer_s IS '90th percentile of the same.';
COMMENT ON COLUMN cs_member_stats.after_hours_share IS 'Share of the requests rung to this member that arrived outside opening hours.';

COMMENT ON COLUMN cs_trunk_stats.trunk IS 'Trunk name from the routing file.';
COMMENT ON COLUMN cs_trunk_stats.calls IS 'Legs dialled through the trunk.';
COMMENT ON COLUMN cs_trunk_stats.agent_calls IS 'Of those, legs to agents.';
COMMENT ON COLUMN cs_trunk_stats.visitor_calls IS 'Of those, legs to visitors.';
COMMENT ON COLUMN cs_trunk_stats.answered IS 'Legs answered by the far end.';
COMMENT ON COLUMN cs_trunk_stats.minutes IS 'Billable minutes (answer to hang-up, summed over legs, 1 decimal).';
COMMENT ON COLUMN cs_trunk_stats.peak_concurrent IS 'Most legs up on the trunk at the same moment (dial to hang-up).';
COMMENT ON COLUMN cs_trunk_stats.failed IS 'Legs that failed in the network: congestion, unreachable, failed (not busy/no answer).';
COMMENT ON COLUMN cs_trunk_stats.failure_rate IS 'failed / calls.';
