-- Queries used by the HTTP intake API.

-- name: lock_phone
-- Serialises concurrent requests for one phone number (duplicates, per-phone limit).
SELECT pg_advisory_xact_lock(hashtextextended('callswitch:phone:' || $1, 0))

-- name: find_by_idempotency_key
SELECT id, state, request_fingerprint, due_at
FROM callback_requests
WHERE site = $1 AND idempotency_key = $2

-- name: find_active_for_phone
SELECT id, state, due_at
FROM callback_requests
WHERE site = $1 AND phone_e164 = $2 AND finished_at IS NULL

-- name: recent_requests_for_phone
-- Requests for this number inside the per-phone rate-limit window, any site.
SELECT count(*) AS n, min(created_at) AS oldest
FROM callback_requests
WHERE phone_e164 = $1 AND created_at > now() - make_interval(secs => $2)

-- name: insert_request
INSERT INTO callback_requests (
    id, site, visitor_name, phone_given, phone_e164, phone_country, page_url, referrer,
    pages_visited, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
    product, postal_code, company_size, language, attributes, consent, preferred_at,
    client_ip, user_agent, idempotency_key, request_fingerprint, state, due_at
) VALUES (
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
    $22, $23, $24, $25, $26, COALESCE($27, now())
)
RETURNING created_at, due_at

-- name: insert_event
INSERT INTO callback_events (request_id, event, from_state, to_state, actor, detail)
VALUES ($1, $2, $3, $4, $5, $6)

-- name: notify_new_request
SELECT pg_notify('callswitch_requests', $1::text)

-- name: get_public_status
SELECT id, site, state, due_at, outcome, created_at, finished_at
FROM callback_requests
WHERE id = $1

-- name: cancel_request
-- Cancels only while nothing is connected; returns the new row, or nothing.
UPDATE callback_requests
SET state = 'cancelled', state_changed_at = now(), finished_at = now(),
    outcome = 'cancelled', outcome_detail = $2
WHERE id = $1 AND state = ANY($3::text[])
RETURNING id, site, state, due_at, outcome, created_at, finished_at

-- name: lock_request
SELECT id, site, state FROM callback_requests WHERE id = $1 FOR UPDATE
