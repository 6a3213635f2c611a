-- Queries used by the HTTP intake API.

-- name: insert_event
INSERT INTO callback_events (request_id, event, from_state, to_state, actor, detail)
VALUES ($1, $2, $3, $4, $5, $6)

-- name: notify_new_request
SELECT pg_notify('callswitch_requests', $1::text)

-- name: find_active_for_phone
SELECT id, state, due_at
FROM callback_requests
WHERE site = $1 AND phone_e164 = $2 AND finished_at IS NULL

-- name: get_public_status
SELECT id, site, state, due_at, outcome, outcome_detail, created_at, finished_at
FROM callback_requests
WHERE id = $1

-- name: cancel_request
-- Cancels only while nothing is connected; returns the new row, or nothing.
UPDATE callback_requests
SET state = 'cancelled', state_changed_at = now(), finished_at = now(),
    outcome = 'cancelled', outcome_detail = $2
WHERE id = $1 AND state = ANY($3::text[])
RETURNING id, site, state, due_at, outcome, outcome_detail, created_at, finished_at

-- name: lock_request
SELECT id, site, state FROM callback_requests WHERE id = $1 FOR UPDATE

-- name: store_requests
-- A batch of requests as a JSON array; one result row per element, in order (migration 0006).
SELECT * FROM callswitch_store_requests($1::jsonb) ORDER BY idx
