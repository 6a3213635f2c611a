-- Queries behind the admin API (/v1/admin/*).

-- name: admin_list_requests
-- Newest first; keyset pagination on (created_at, id). NULL filters are ignored.
SELECT id, site, visitor_name, phone_e164, page_url, state, outcome, created_at, due_at,
       finished_at, attempts
FROM callback_requests
WHERE ($1::text IS NULL OR site = $1)
  AND ($2::text IS NULL OR state = $2)
  AND ($3::timestamptz IS NULL OR created_at >= $3)
  AND ($4::timestamptz IS NULL OR created_at < $4)
  AND ($5::text IS NULL OR phone_e164 = $5)
  AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $8

-- name: admin_get_request
SELECT * FROM callback_requests WHERE id = $1

-- name: admin_request_events
SELECT id, at, event, from_state, to_state, actor, detail
FROM callback_events WHERE request_id = $1 ORDER BY id

-- name: admin_request_legs
SELECT * FROM call_legs WHERE request_id = $1 ORDER BY attempt, id

-- name: queue_depth
-- Unfinished requests by state (for /metrics).
SELECT state, count(*) AS n FROM callback_requests WHERE finished_at IS NULL GROUP BY state
