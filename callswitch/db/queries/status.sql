-- Queries used by the live status stream (callswitch/web/status.py).

-- name: get_public_statuses
-- The public status of several requests at once (one round trip per broadcaster tick);
-- same columns as get_public_status.
SELECT id, site, state, due_at, outcome, outcome_detail, created_at, finished_at
FROM callback_requests
WHERE id = ANY($1::uuid[])
