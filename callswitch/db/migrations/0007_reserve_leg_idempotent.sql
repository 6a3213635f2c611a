-- 0007: reserving a leg twice (a retry after a lost reply) is harmless.
--
-- If the connection breaks after the reservation committed, the dialer retries it when
-- Postgres is back; the second call must answer 'ok' instead of failing on the leg's row.

CREATE OR REPLACE FUNCTION callswitch_reserve_leg(
    p_leg_id text, p_request_id uuid, p_attempt integer, p_node text, p_server text, p_leg text,
    p_trunk text, p_destination text, p_member text, p_number_dialled text, p_ttl_s double precision,
    p_max_global integer, p_max_trunk integer, p_max_trunk_cps double precision, p_max_destination integer)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('callswitch:capacity', 0));
    PERFORM 1 FROM call_legs WHERE leg_id = p_leg_id;
    IF FOUND THEN RETURN 'ok'; END IF;
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
