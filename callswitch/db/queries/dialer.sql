-- Queries of the dialer's work queue (see migration 0004).

-- name: claim_due
-- Due requests nobody holds, oldest first; several daemons never take the same one.
WITH due AS (
    SELECT id FROM callback_requests
    WHERE state IN ('queued', 'scheduled') AND due_at <= now()
      AND (lease_expires_at IS NULL OR lease_expires_at < now())
    ORDER BY due_at, created_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE callback_requests r
SET lease_owner = $1, lease_expires_at = now() + make_interval(secs => $3)
FROM due WHERE r.id = due.id
RETURNING r.*

-- name: claim_orphaned
-- Requests left mid-call by a node whose lease lapsed: to be reconciled with Asterisk first.
-- $4: requests this node is still working (its lease lapsed while Postgres was away): never its own orphans.
WITH orphaned AS (
    SELECT id FROM callback_requests
    WHERE finished_at IS NULL AND state NOT IN ('queued', 'scheduled') AND lease_expires_at < now()
      AND NOT (id = ANY($4::uuid[]))
    ORDER BY lease_expires_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE callback_requests r
SET lease_owner = $1, lease_expires_at = now() + make_interval(secs => $3)
FROM orphaned WHERE r.id = orphaned.id
RETURNING r.*

-- name: renew_leases
-- Only the requests this node is still working: a request whose task died lets its lease lapse.
-- Returns those of them another node holds now (the lease lapsed and it took the request over).
WITH renewed AS (
    UPDATE callback_requests SET lease_expires_at = now() + make_interval(secs => $2)
    WHERE lease_owner = $1 AND id = ANY($3::uuid[]) AND finished_at IS NULL
    RETURNING id
)
SELECT id FROM callback_requests
WHERE id = ANY($3::uuid[]) AND finished_at IS NULL AND lease_owner IS DISTINCT FROM $1
  AND id NOT IN (SELECT id FROM renewed)

-- name: renew_channels
UPDATE dialer_channels SET expires_at = now() + make_interval(secs => $2) WHERE node = $1 AND request_id = ANY($3::uuid[])

-- name: release_lease
UPDATE callback_requests SET lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND lease_owner = $2

-- name: release_node
-- A node shutting down hands its queued work back at once.
UPDATE callback_requests SET lease_owner = NULL, lease_expires_at = NULL
WHERE lease_owner = $1 AND state IN ('queued', 'scheduled')

-- name: async_commit
-- This transaction's commit does not wait for the WAL flush (see Queue.claim_due).
SET LOCAL synchronous_commit = off

-- name: start_attempt
-- Called in a transaction with the request row locked by its lease. $5: the attempt's first state.
WITH r AS (
    UPDATE callback_requests
    SET attempts = attempts + 1, state = $5, state_changed_at = now()
    WHERE id = $1 AND lease_owner = $2 AND finished_at IS NULL
    RETURNING id, attempts, state
)
INSERT INTO call_attempts (request_id, attempt, node, route_rule, destination)
SELECT id, attempts, $2, $3, $4 FROM r
RETURNING attempt

-- name: reserve_leg
SELECT callswitch_reserve_leg($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)

-- name: free_leg
DELETE FROM dialer_channels WHERE leg_id = $1

-- name: set_state
UPDATE callback_requests
SET state = $2, state_changed_at = now(),
    finished_at = CASE WHEN $2 IN ('completed', 'failed', 'cancelled', 'expired', 'rejected') THEN now() END,
    outcome = COALESCE($3, outcome), outcome_detail = COALESCE($4, outcome_detail),
    due_at = COALESCE($5, due_at)
WHERE id = $1 AND finished_at IS NULL
RETURNING state

-- name: finish_attempt
UPDATE call_attempts SET finished_at = now(), outcome = $3, outcome_detail = $4
WHERE request_id = $1 AND attempt = $2

-- name: unfinished_attempts
SELECT a.attempt, a.node, a.started_at,
       coalesce(array_agg(l.leg_id) FILTER (WHERE l.leg_id IS NOT NULL), '{}') AS leg_ids
FROM call_attempts a LEFT JOIN call_legs l ON l.request_id = a.request_id AND l.attempt = a.attempt
WHERE a.request_id = $1 AND a.finished_at IS NULL
GROUP BY a.attempt, a.node, a.started_at

-- name: live_channel_count
SELECT count(*) FROM dialer_channels WHERE expires_at > now()

-- name: free_attempt_legs
DELETE FROM dialer_channels WHERE request_id = $1 AND attempt = $2

-- name: close_open_legs
-- After a crash: legs of an attempt that never reported their end.
UPDATE call_legs SET ended_at = COALESCE(ended_at, now()), disposition = COALESCE(disposition, 'failed')
WHERE request_id = $1 AND attempt = $2 AND ended_at IS NULL

-- name: attempt_was_connected
-- The visitor answered and an agent accepted (in either order: agent-first or customer-first).
SELECT EXISTS (
    SELECT 1 FROM call_legs WHERE request_id = $1 AND attempt = $2 AND leg = 'customer' AND answered_at IS NOT NULL
) AND EXISTS (
    SELECT 1 FROM call_legs WHERE request_id = $1 AND attempt = $2 AND leg = 'agent' AND accepted_at IS NOT NULL
)

-- name: notify_status
SELECT pg_notify('callswitch_status', $1::text)

-- name: get_request
SELECT * FROM callback_requests WHERE id = $1

-- name: get_request_state
SELECT state FROM callback_requests WHERE id = $1

-- name: busy_members
-- Which of these members are on a call now (any daemon).
SELECT DISTINCT member FROM dialer_channels WHERE member = ANY($1::text[]) AND expires_at > now()

-- name: postpone
-- Nobody can take the request right now: back to the queue, without counting an attempt.
UPDATE callback_requests SET due_at = $2, lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND lease_owner = $3

-- name: real_attempts
-- Attempts that dialled someone (postponed ones, where every member was busy, do not count).
SELECT count(*) FROM call_attempts WHERE request_id = $1 AND outcome IS DISTINCT FROM 'postponed'

-- name: member_history
-- When each member of a destination was last rung and last finished a call (round robin, longest idle).
SELECT member, max(originated_at) AS last_rung, max(ended_at) AS last_ended
FROM call_legs
WHERE destination = $1 AND leg = 'agent' AND member = ANY($2::text[])
GROUP BY member

-- name: insert_legs
-- LegWriter: several visitor legs (created by the dialplan) in one statement; arrays of equal length.
INSERT INTO call_legs (leg_id, request_id, attempt, leg, destination, member, number_dialled, trunk,
                       asterisk_server, channel, uniqueid, linkedid, originated_at)
SELECT * FROM unnest($1::text[], $2::uuid[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::timestamptz[])
ON CONFLICT (leg_id) DO NOTHING

-- name: update_legs
-- LegWriter: the changed columns of several legs in one statement; NULL leaves a column as it is.
UPDATE call_legs AS l SET
    channel = COALESCE(u.channel, l.channel), uniqueid = COALESCE(u.uniqueid, l.uniqueid),
    linkedid = COALESCE(u.linkedid, l.linkedid), ringing_at = COALESCE(u.ringing_at, l.ringing_at),
    answered_at = COALESCE(u.answered_at, l.answered_at), accepted_at = COALESCE(u.accepted_at, l.accepted_at),
    ended_at = COALESCE(u.ended_at, l.ended_at), disposition = COALESCE(u.disposition, l.disposition),
    hangup_cause = COALESCE(u.hangup_cause, l.hangup_cause),
    hangup_cause_text = COALESCE(u.hangup_cause_text, l.hangup_cause_text),
    sip_status = COALESCE(u.sip_status, l.sip_status),
    billable_seconds = COALESCE(u.billable_seconds, l.billable_seconds)
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[],
            $7::timestamptz[], $8::timestamptz[], $9::text[], $10::int[], $11::text[], $12::int[], $13::int[])
     AS u(leg_id, channel, uniqueid, linkedid, ringing_at, answered_at, accepted_at, ended_at, disposition,
          hangup_cause, hangup_cause_text, sip_status, billable_seconds)
WHERE l.leg_id = u.leg_id

-- name: close_abandoned_attempts
-- A request that finished while its attempt's last legs were still ending, on a node that then died: the
-- attempt would stay open for ever (a finished request is never taken over). $1: seconds since the request
-- finished after which nobody is still working it. Open legs end when the request did.
WITH stale AS (
    SELECT a.request_id, a.attempt, r.finished_at, r.outcome
    FROM call_attempts a JOIN callback_requests r ON r.id = a.request_id
    WHERE a.finished_at IS NULL AND r.finished_at IS NOT NULL
      AND r.finished_at < now() - make_interval(secs => $1)
    FOR UPDATE OF a SKIP LOCKED
), legs AS (
    UPDATE call_legs l
    SET ended_at = GREATEST(s.finished_at, l.originated_at),
        disposition = COALESCE(l.disposition, CASE WHEN l.answered_at IS NOT NULL THEN 'answered' ELSE 'failed' END)
    FROM stale s
    WHERE l.request_id = s.request_id AND l.attempt = s.attempt AND l.ended_at IS NULL
), freed AS (
    DELETE FROM dialer_channels c USING stale s WHERE c.request_id = s.request_id AND c.attempt = s.attempt
)
UPDATE call_attempts a
SET finished_at = now(), outcome = COALESCE(s.outcome, 'unknown'),
    outcome_detail = 'closed after the dialer node stopped while the last legs were ending'
FROM stale s
WHERE a.request_id = s.request_id AND a.attempt = s.attempt
RETURNING a.request_id, a.attempt

-- name: customer_legs_today
-- Visitor legs dialled to this number in the last 24 hours, by every daemon (dialing.max_calls_per_number_per_day).
SELECT count(*) FROM call_legs
WHERE leg = 'customer' AND number_dialled = $1 AND originated_at > now() - interval '24 hours'
