-- 0004: the dialer's durable work queue, leases, and live channels for limits across daemons.

ALTER TABLE callback_requests
    ADD COLUMN lease_owner      text,
    ADD COLUMN lease_expires_at timestamptz;

COMMENT ON COLUMN callback_requests.lease_owner IS
    'Dialer node currently working the request (NULL when none). Operational, not for analysis.';
COMMENT ON COLUMN callback_requests.lease_expires_at IS
    'The lease lapses at this time unless the node renews it; another node may then take over the request.';

-- Requests being dialled, by lease expiry: found again when a node dies.
CREATE INDEX callback_requests_lease_idx ON callback_requests (lease_expires_at)
    WHERE finished_at IS NULL AND state NOT IN ('queued', 'scheduled');


CREATE TABLE call_attempts (
    request_id      uuid        NOT NULL REFERENCES callback_requests (id) ON DELETE CASCADE,
    attempt         integer     NOT NULL,
    node            text        NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    route_rule      text,
    destination     text,
    outcome         text,
    outcome_detail  text,
    PRIMARY KEY (request_id, attempt)
);

COMMENT ON TABLE call_attempts IS
    'One row per dialling attempt of a request: written before anything is dialled, so that after a crash '
    'the attempt can be reconciled with Asterisk instead of being dialled again.';
COMMENT ON COLUMN call_attempts.request_id IS 'The request (callback_requests.id).';
COMMENT ON COLUMN call_attempts.attempt IS 'Attempt number within the request, from 1 (call_legs.attempt).';
COMMENT ON COLUMN call_attempts.node IS 'Dialer node that ran the attempt.';
COMMENT ON COLUMN call_attempts.started_at IS 'When the attempt started.';
COMMENT ON COLUMN call_attempts.finished_at IS 'When its outcome was known; NULL while running or if the node died mid-attempt.';
COMMENT ON COLUMN call_attempts.route_rule IS 'Routing rule in force for this attempt (rules are re-evaluated when a deferred request comes due).';
COMMENT ON COLUMN call_attempts.destination IS 'First destination of the attempt.';
COMMENT ON COLUMN call_attempts.outcome IS
    'connected, no_agent, customer_busy, customer_no_answer, customer_unreachable, cancelled, unknown (reconciled after a crash).';
COMMENT ON COLUMN call_attempts.outcome_detail IS 'Human-readable detail of the outcome.';


ALTER TABLE call_legs ADD COLUMN leg_id text;
CREATE UNIQUE INDEX call_legs_leg_id_idx ON call_legs (leg_id);
CREATE INDEX call_legs_trunk_originated_idx ON call_legs (trunk, originated_at);
COMMENT ON COLUMN call_legs.leg_id IS
    'callswitch''s own id of the leg; for agent legs also the Asterisk ChannelId/Uniqueid assigned before dialling.';


CREATE TABLE dialer_channels (
    leg_id          text        PRIMARY KEY,
    request_id      uuid        NOT NULL,
    attempt         integer     NOT NULL,
    node            text        NOT NULL,
    asterisk_server text,
    trunk           text,
    destination     text,
    member          text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL
);

COMMENT ON TABLE dialer_channels IS
    'Channels the dialers have up right now (one row per live leg), shared by every daemon on this database '
    'so that trunk, destination, member and global limits hold across all of them. Rows whose expires_at has '
    'passed belong to a node that stopped renewing them and are not counted. Operational, not for analysis.';
COMMENT ON COLUMN dialer_channels.leg_id IS 'call_legs.leg_id of the live leg.';
COMMENT ON COLUMN dialer_channels.request_id IS 'The request the leg belongs to.';
COMMENT ON COLUMN dialer_channels.attempt IS 'Attempt number.';
COMMENT ON COLUMN dialer_channels.node IS 'Dialer node that owns the leg.';
COMMENT ON COLUMN dialer_channels.asterisk_server IS 'Asterisk server carrying the leg.';
COMMENT ON COLUMN dialer_channels.trunk IS 'Trunk the leg uses (NULL for internal endpoints).';
COMMENT ON COLUMN dialer_channels.destination IS 'Destination the leg was dialled for.';
COMMENT ON COLUMN dialer_channels.member IS 'Member (agent) the leg rings; NULL for the visitor''s leg.';
COMMENT ON COLUMN dialer_channels.started_at IS 'When the leg was reserved.';
COMMENT ON COLUMN dialer_channels.expires_at IS 'Counted until this time unless renewed by its node.';

CREATE INDEX dialer_channels_trunk_idx ON dialer_channels (trunk);
CREATE INDEX dialer_channels_member_idx ON dialer_channels (member);
CREATE INDEX dialer_channels_destination_idx ON dialer_channels (destination);


-- Reserve capacity for one leg and write its call_legs row, atomically, before it is dialled.
-- Limits are counted over live rows of every daemon (dialer_channels), serialised by one
-- transaction-level advisory lock so two daemons cannot both take the last channel.
-- Returns 'ok' or the limit that refused it.
CREATE FUNCTION callswitch_reserve_leg(
    p_leg_id text, p_request_id uuid, p_attempt integer, p_node text, p_server text, p_leg text,
    p_trunk text, p_destination text, p_member text, p_number_dialled text, p_ttl_s double precision,
    p_max_global integer, p_max_trunk integer, p_max_trunk_cps double precision, p_max_destination integer)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('callswitch:capacity', 0));
    IF p_max_global IS NOT NULL THEN
        SELECT count(*) INTO n FROM dialer_channels WHERE expires_at > now();
        IF n >= p_max_global THEN RETURN 'global_limit'; END IF;
    END IF;
    IF p_trunk IS NOT NULL AND p_max_trunk IS NOT NULL THEN
        SELECT count(*) INTO n FROM dialer_channels WHERE trunk = p_trunk AND expires_at > now();
        IF n >= p_max_trunk THEN RETURN 'trunk_limit'; END IF;
    END IF;
    IF p_trunk IS NOT NULL AND p_max_trunk_cps IS NOT NULL THEN
        SELECT count(*) INTO n FROM call_legs WHERE trunk = p_trunk AND originated_at > now() - interval '1 second';
        IF n >= p_max_trunk_cps THEN RETURN 'trunk_cps'; END IF;
    END IF;
    IF p_destination IS NOT NULL AND p_max_destination IS NOT NULL AND p_leg = 'agent' THEN
        SELECT count(*) INTO n FROM dialer_channels
        WHERE destination = p_destination AND member IS NOT NULL AND expires_at > now();
        IF n >= p_max_destination THEN RETURN 'destination_limit'; END IF;
    END IF;
    IF p_member IS NOT NULL THEN
        PERFORM 1 FROM dialer_channels WHERE member = p_member AND expires_at > now();
        IF FOUND THEN RETURN 'member_busy'; END IF;
    END IF;
    INSERT INTO dialer_channels (leg_id, request_id, attempt, node, asterisk_server, trunk, destination, member,
                                 expires_at)
    VALUES (p_leg_id, p_request_id, p_attempt, p_node, p_server, p_trunk, p_destination, p_member,
            now() + make_interval(secs => p_ttl_s));
    INSERT INTO call_legs (leg_id, request_id, attempt, leg, destination, member, number_dialled, trunk,
                           asterisk_server, uniqueid, originated_at)
    VALUES (p_leg_id, p_request_id, p_attempt, p_leg, p_destination, p_member, p_number_dialled, p_trunk,
            p_server, CASE WHEN p_leg = 'agent' THEN p_leg_id END, clock_timestamp());
    RETURN 'ok';
END;
$$;

COMMENT ON FUNCTION callswitch_reserve_leg IS
    'Used by the dialer: reserves capacity for a leg under every limit and records the leg before it is dialled.';
