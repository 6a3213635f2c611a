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
WITH orphaned AS (
    SELECT id FROM callback_requests
    WHERE finished_at IS NULL AND state NOT IN ('queued', 'scheduled') AND lease_expires_at < now()
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
UPDATE callback_requests SET lease_expires_at = now() + make_interval(secs => $2)
WHERE lease_owner = $1 AND id = ANY($3::uuid[]) AND finished_at IS NULL

-- name: renew_channels
UPDATE dialer_channels SET expires_at = now() + make_interval(secs => $2) WHERE node = $1 AND request_id = ANY($3::uuid[])

-- name: release_lease
UPDATE callback_requests SET lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND lease_owner = $2

-- name: release_node
-- A node shutting down hands its queued work back at once.
UPDATE callback_requests SET lease_owner = NULL, lease_expires_at = NULL
WHERE lease_owner = $1 AND state IN ('queued', 'scheduled')

-- name: start_attempt
-- Called in a transaction with the request row locked by its lease.
WITH r AS (
    UPDATE callback_requests
    SET attempts = attempts + 1, state = 'dialing_agent', state_changed_at = now()
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

-- name: insert_leg
-- A leg the dialplan created (the visitor's), recorded when first seen.
INSERT INTO call_legs (leg_id, request_id, attempt, leg, destination, member, number_dialled, trunk,
                       asterisk_server, channel, uniqueid, linkedid, originated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (leg_id) DO NOTHING

-- name: update_leg
-- NULL arguments leave the column as it is.
UPDATE call_legs SET
    channel = COALESCE($2, channel), uniqueid = COALESCE($3, uniqueid), linkedid = COALESCE($4, linkedid),
    ringing_at = COALESCE($5, ringing_at), answered_at = COALESCE($6, answered_at),
    accepted_at = COALESCE($7, accepted_at), ended_at = COALESCE($8, ended_at),
    disposition = COALESCE($9, disposition), hangup_cause = COALESCE($10, hangup_cause),
    hangup_cause_text = COALESCE($11, hangup_cause_text), sip_status = COALESCE($12, sip_status),
    billable_seconds = COALESCE($13, billable_seconds)
WHERE leg_id = $1

-- name: free_attempt_legs
DELETE FROM dialer_channels WHERE request_id = $1 AND attempt = $2

-- name: close_open_legs
-- After a crash: legs of an attempt that never reported their end.
UPDATE call_legs SET ended_at = COALESCE(ended_at, now()), disposition = COALESCE(disposition, 'failed')
WHERE request_id = $1 AND attempt = $2 AND ended_at IS NULL

-- name: attempt_was_connected
SELECT EXISTS (
    SELECT 1 FROM call_legs WHERE request_id = $1 AND attempt = $2 AND leg = 'customer' AND answered_at IS NOT NULL
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
