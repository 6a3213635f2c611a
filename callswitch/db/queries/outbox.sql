-- Queries of the notification outbox (migration 0012, callswitch.notify).

-- name: outbox_claim_pending
-- Events not fanned out yet, oldest first; locked for the fan-out transaction, skipped by other daemons.
SELECT o.id, o.event_uuid, o.event_id, o.request_id, o.kind, o.occurred_at, o.created_at
FROM event_outbox o
WHERE o.fanned_out_at IS NULL AND o.available_at <= now()
ORDER BY o.available_at, o.id
LIMIT $1
FOR UPDATE SKIP LOCKED

-- name: outbox_postpone
UPDATE event_outbox SET available_at = now() + make_interval(secs => $2) WHERE id = $1

-- name: outbox_mark_fanned_out
UPDATE event_outbox SET fanned_out_at = now(), payload = $2 WHERE id = $1

-- name: outbox_mark_all_fanned_out
-- Events nobody subscribes to (no webhook, no lead e-mail configured): done, no payload.
UPDATE event_outbox SET fanned_out_at = now() WHERE id = ANY($1::bigint[])

-- name: outbox_request
SELECT r.id, r.site, r.state, r.outcome, r.outcome_detail, r.created_at, r.finished_at, r.due_at,
       r.visitor_name, r.phone_e164, r.phone_given, r.phone_country, r.language, r.consent,
       r.page_url, r.referrer, r.pages_visited,
       r.utm_source, r.utm_medium, r.utm_campaign, r.utm_term, r.utm_content,
       r.product, r.postal_code, r.company_size, r.attributes, r.preferred_at,
       r.route_rule, r.route_destination, r.route_chain, r.anonymised_at,
       (SELECT count(*) FROM call_attempts a
        WHERE a.request_id = r.id AND a.outcome IS DISTINCT FROM 'postponed')::integer AS attempts,
       (SELECT a.destination FROM call_attempts a
        WHERE a.request_id = r.id AND a.destination IS NOT NULL
        ORDER BY a.attempt DESC LIMIT 1) AS last_destination,
       EXISTS (SELECT 1 FROM call_attempts a WHERE a.request_id = r.id AND a.finished_at IS NULL) AS attempt_running
FROM callback_requests r
WHERE r.id = $1

-- name: outbox_event
SELECT id, at, event, from_state, to_state, actor, detail FROM callback_events WHERE id = $1

-- name: outbox_legs
-- The request's call detail records, for the CDR summary (the visitor's dialled number is left out).
SELECT attempt, leg, destination, member, trunk, originated_at, ringing_at, answered_at, accepted_at, ended_at,
       disposition, hangup_cause, hangup_cause_text, sip_status, billable_seconds
FROM call_legs
WHERE request_id = $1
ORDER BY attempt, originated_at, id

-- name: delivery_insert
INSERT INTO notification_deliveries (outbox_id, channel, subscription, target, destination)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (outbox_id, subscription) DO NOTHING

-- name: delivery_claim_due
-- Due deliveries nobody is attempting; the claim (attempts + 1, next_attempt_at = end of the claim) commits
-- before anything is sent, so another daemon takes the row only if this one died mid-attempt.
WITH due AS (
    SELECT id FROM notification_deliveries
    WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at, id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE notification_deliveries d
SET attempts = d.attempts + 1, last_attempt_at = now(), claimed_by = $1,
    next_attempt_at = now() + make_interval(secs => $3)
FROM due, event_outbox o
WHERE d.id = due.id AND o.id = d.outbox_id
RETURNING d.id, d.outbox_id, d.channel, d.subscription, d.target, d.destination, d.attempts, d.created_at,
          now() AS claimed_at, o.event_uuid, o.kind, o.request_id, o.occurred_at, o.payload

-- name: delivery_succeeded
-- Only the attempt that holds the claim records its result.
UPDATE notification_deliveries
SET status = 'delivered', delivered_at = now(), last_status = $3, last_error = NULL, claimed_by = NULL
WHERE id = $1 AND claimed_by = $2 AND attempts = $4

-- name: delivery_failed
-- $5: 'pending' (retry after $6 seconds) or 'failed' (given up).
UPDATE notification_deliveries
SET status = $5, last_status = $3, last_error = $4, claimed_by = NULL,
    next_attempt_at = now() + make_interval(secs => $6)
WHERE id = $1 AND claimed_by = $2 AND attempts = $7

-- name: delivery_list
SELECT d.id, d.outbox_id, o.event_uuid, o.kind, o.request_id, r.site, o.occurred_at, d.channel, d.subscription,
       d.target, d.destination, d.status, d.attempts, d.created_at, d.last_attempt_at, d.last_status,
       d.last_error, d.next_attempt_at, d.delivered_at, d.claimed_by
FROM notification_deliveries d
JOIN event_outbox o ON o.id = d.outbox_id
JOIN callback_requests r ON r.id = o.request_id
WHERE ($1::text IS NULL OR d.status = $1)
  AND ($2::text IS NULL OR r.site = $2)
  AND ($3::uuid IS NULL OR o.request_id = $3)
  AND ($4::text IS NULL OR d.channel = $4)
  AND ($5::text IS NULL OR d.subscription = $5)
  AND ($6::bigint IS NULL OR d.id < $6)
ORDER BY d.id DESC
LIMIT $7

-- name: delivery_retry
-- An admin asks for another attempt now: of a delivery that was given up (one more attempt; if it fails
-- the delivery is failed again) or of one waiting for its next retry.
UPDATE notification_deliveries
SET status = 'pending', next_attempt_at = now()
WHERE id = $1 AND status IN ('failed', 'pending') AND claimed_by IS NULL
RETURNING id

-- name: outbox_summary
SELECT
    (SELECT count(*) FROM event_outbox WHERE fanned_out_at IS NULL) AS events_waiting,
    (SELECT min(created_at) FROM event_outbox WHERE fanned_out_at IS NULL) AS oldest_event_waiting,
    (SELECT count(*) FROM notification_deliveries WHERE status = 'pending') AS deliveries_pending,
    (SELECT min(created_at) FROM notification_deliveries WHERE status = 'pending') AS oldest_delivery_pending,
    (SELECT count(*) FROM notification_deliveries WHERE status = 'failed') AS deliveries_failed

-- name: outbox_purge
-- Events fanned out more than $1 seconds ago with nothing left to deliver (their deliveries go with them).
DELETE FROM event_outbox
WHERE id IN (
    SELECT o.id FROM event_outbox o
    WHERE o.fanned_out_at < now() - make_interval(secs => $1)
      AND NOT EXISTS (SELECT 1 FROM notification_deliveries d WHERE d.outbox_id = o.id AND d.status = 'pending')
    ORDER BY o.id
    LIMIT $2
)
