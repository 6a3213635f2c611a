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
UPDATE callback_requests SET lease_expires_at = now() + make_interval(secs => $2)
WHERE lease_owner = $1 AND finished_at IS NULL

-- name: renew_channels
UPDATE dialer_channels SET expires_at = now() + make_interval(secs => $2) WHERE node = $1

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
