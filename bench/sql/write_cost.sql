-- What the triggers of migration 0013 (cs_request_facts) add to the writes of intake and the dialer
-- (bench/report_scale.py --write-cost). One request at a time, as the service writes it: the request and its
-- intake event, then one attempt: two agent legs (ring-all), picked up, one accepted, the visitor's leg,
-- the state changes with their events, the legs hung up: 25 single-row INSERTs and UPDATEs like the
-- service's. The caller times the block with the triggers enabled and disabled.
-- Parameters: current_setting('bench.write_requests') requests; bench.write_intake_only = 'on' stops after the
-- two statements of intake (the request and its first event).

DO $$
DECLARE
    n integer := current_setting('bench.write_requests')::integer;
    intake_only boolean := current_setting('bench.write_intake_only')::boolean;
    rid uuid;
    t timestamptz;
    a1 text;
    a2 text;
    c1 text;
BEGIN
    FOR i IN 1 .. n LOOP
        rid := gen_random_uuid();
        t := now();
        INSERT INTO callback_requests (id, site, visitor_name, phone_given, phone_e164, phone_country, page_url,
                                       request_fingerprint, state, route_rule, route_destination, route_chain)
        VALUES (rid, 'shop', 'Bench', '0170' || i, '+49170' || left(md5(rid::text), 12), 'DE',
                'https://shop.example/p?utm_source=x',
                md5(i::text), 'queued', 'rules[1] (berlin)', 'berlin', ARRAY['berlin']);
        INSERT INTO callback_events (request_id, event, from_state, to_state, actor, detail)
        VALUES (rid, 'accepted', NULL, 'queued', 'intake',
                '{"page_url": "https://shop.example/p", "rule": "rules[1] (berlin)", "destination": "berlin"}');
        CONTINUE WHEN intake_only;

        UPDATE callback_requests SET state = 'dialing_agent', state_changed_at = now(), attempts = 1 WHERE id = rid;
        INSERT INTO callback_events (request_id, event, from_state, to_state, actor)
        VALUES (rid, 'dialing', 'queued', 'dialing_agent', 'dialer');
        a1 := md5(rid::text || 'a1');
        a2 := md5(rid::text || 'a2');
        c1 := md5(rid::text || 'c1');
        INSERT INTO call_legs (leg_id, request_id, attempt, leg, destination, member, number_dialled, trunk,
                               uniqueid, originated_at)
        VALUES (a1, rid, 1, 'agent', 'berlin', '+4930111', '+4930111', 'carrier', a1, t);
        INSERT INTO call_legs (leg_id, request_id, attempt, leg, destination, member, number_dialled, trunk,
                               uniqueid, originated_at)
        VALUES (a2, rid, 1, 'agent', 'berlin', '+4930222', '+4930222', 'carrier', a2, t);
        UPDATE call_legs SET ringing_at = t + interval '1 second' WHERE leg_id = a1;
        UPDATE call_legs SET ringing_at = t + interval '1 second' WHERE leg_id = a2;
        UPDATE call_legs SET answered_at = t + interval '8 seconds' WHERE leg_id = a1;
        UPDATE callback_requests SET state = 'agent_answered', state_changed_at = now() WHERE id = rid;
        INSERT INTO callback_events (request_id, event, from_state, to_state, actor)
        VALUES (rid, 'agent_answered', 'dialing_agent', 'agent_answered', 'dialer');
        UPDATE call_legs SET accepted_at = t + interval '12 seconds', disposition = 'accepted' WHERE leg_id = a1;
        UPDATE call_legs SET ended_at = t + interval '12 seconds', disposition = 'answered_elsewhere',
                             hangup_cause = 26 WHERE leg_id = a2;
        UPDATE callback_requests SET state = 'accepted', state_changed_at = now() WHERE id = rid;
        INSERT INTO callback_events (request_id, event, from_state, to_state, actor)
        VALUES (rid, 'agent_accepted', 'agent_answered', 'accepted', 'dialer');
        INSERT INTO call_legs (leg_id, request_id, attempt, leg, destination, number_dialled, trunk, originated_at)
        VALUES (c1, rid, 1, 'customer', 'berlin', '+49170' || i, 'carrier', t + interval '13 seconds');
        UPDATE callback_requests SET state = 'dialing_customer', state_changed_at = now() WHERE id = rid;
        INSERT INTO callback_events (request_id, event, from_state, to_state, actor)
        VALUES (rid, 'dialing_customer', 'accepted', 'dialing_customer', 'dialer');
        UPDATE call_legs SET answered_at = t + interval '20 seconds' WHERE leg_id = c1;
        UPDATE callback_requests SET state = 'connected', state_changed_at = now() WHERE id = rid;
        INSERT INTO callback_events (request_id, event, from_state, to_state, actor)
        VALUES (rid, 'connected', 'dialing_customer', 'connected', 'dialer');
        UPDATE call_legs SET ended_at = t + interval '200 seconds', disposition = 'answered', hangup_cause = 16,
                             billable_seconds = 180 WHERE leg_id = c1;
        UPDATE call_legs SET ended_at = t + interval '200 seconds', hangup_cause = 16, billable_seconds = 188
        WHERE leg_id = a1;
        UPDATE callback_requests SET state = 'completed', state_changed_at = now(), finished_at = now(),
                                     outcome = 'connected' WHERE id = rid;
        INSERT INTO callback_events (request_id, event, from_state, to_state, actor)
        VALUES (rid, 'completed', 'connected', 'completed', 'dialer');
    END LOOP;
END;
$$;
