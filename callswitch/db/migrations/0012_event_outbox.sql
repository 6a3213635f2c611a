-- 0012: notifications. A durable outbox of lifecycle events, filled by a trigger on the audit trail, and
-- one delivery row per webhook subscription or lead e-mail (docs/notifications.md).
--
-- Intake and the dialer write callback_events in the same transaction as every state change; the AFTER
-- INSERT trigger below adds an event_outbox row for the events that are notified, so an outbox row exists
-- exactly when its state change committed. No NOTIFY here (see 0005): the notifier polls a partial index.

CREATE TABLE event_outbox (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_uuid    uuid        NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    event_id      bigint      NOT NULL UNIQUE REFERENCES callback_events (id) ON DELETE CASCADE,
    request_id    uuid        NOT NULL REFERENCES callback_requests (id) ON DELETE CASCADE,
    kind          text        NOT NULL,
    occurred_at   timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    available_at  timestamptz NOT NULL DEFAULT now(),
    fanned_out_at timestamptz,
    payload       jsonb,
    CONSTRAINT event_outbox_kind_check CHECK (kind IN (
        'request.accepted', 'agent.accepted', 'call.connected', 'request.completed', 'request.failed',
        'request.cancelled', 'request.expired', 'request.rejected'))
);

COMMENT ON TABLE event_outbox IS
    'Lifecycle events of callback requests waiting to be (or already) turned into webhook deliveries and '
    'lead e-mails. Written by a trigger on callback_events in the same transaction as the state change, '
    'so nothing is lost by a crash or restart. Operational; rows are purged some days after delivery.';
COMMENT ON COLUMN event_outbox.id IS 'Sequence number of the outbox row.';
COMMENT ON COLUMN event_outbox.event_uuid IS
    'The event id sent to receivers (payload "id", header Callswitch-Event-Id): the same on every retry, '
    'so receivers can drop duplicates.';
COMMENT ON COLUMN event_outbox.event_id IS 'The audit event (callback_events.id) this row was made from.';
COMMENT ON COLUMN event_outbox.request_id IS 'The request (callback_requests.id).';
COMMENT ON COLUMN event_outbox.kind IS
    'Event type: request.accepted, agent.accepted, call.connected, request.completed, request.failed, '
    'request.cancelled, request.expired, request.rejected.';
COMMENT ON COLUMN event_outbox.occurred_at IS 'When the event happened (callback_events.at).';
COMMENT ON COLUMN event_outbox.created_at IS 'When the outbox row was written (commit of the state change).';
COMMENT ON COLUMN event_outbox.available_at IS
    'Not fanned out before this time: final events wait (briefly) for the call records of the attempt.';
COMMENT ON COLUMN event_outbox.fanned_out_at IS
    'When the notifier built the payload and created the deliveries; NULL while waiting.';
COMMENT ON COLUMN event_outbox.payload IS
    'The JSON body sent to webhooks (built once at fan-out, identical for every subscription and retry). '
    'Contains personal data (visitor name, phone number).';

CREATE INDEX event_outbox_pending_idx ON event_outbox (available_at, id) WHERE fanned_out_at IS NULL;
CREATE INDEX event_outbox_request_idx ON event_outbox (request_id);


CREATE TABLE notification_deliveries (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outbox_id       bigint      NOT NULL REFERENCES event_outbox (id) ON DELETE CASCADE,
    channel         text        NOT NULL CHECK (channel IN ('webhook', 'email')),
    subscription    text        NOT NULL,
    target          text        NOT NULL,
    destination     text,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz,
    claimed_by      text,
    UNIQUE (outbox_id, subscription)
);

COMMENT ON TABLE notification_deliveries IS
    'One row per event and webhook subscription (or lead e-mail): the delivery state and its last attempt, '
    'for admins (see callswitch.notify.admin.list_deliveries). Delivery is at least once.';
COMMENT ON COLUMN notification_deliveries.id IS 'Delivery id (also in the Callswitch-Delivery header and e-mail Message-ID).';
COMMENT ON COLUMN notification_deliveries.outbox_id IS 'The event (event_outbox.id).';
COMMENT ON COLUMN notification_deliveries.channel IS 'webhook (HTTP POST) or email (lead card to a destination).';
COMMENT ON COLUMN notification_deliveries.subscription IS
    'Name of the webhook subscription in the configuration (notifications.webhooks.<site>[].name), or '
    'lead.routed / lead.missed for lead e-mails.';
COMMENT ON COLUMN notification_deliveries.target IS 'URL posted to, or the e-mail address (the destination''s notify_email).';
COMMENT ON COLUMN notification_deliveries.destination IS 'E-mails: the routing destination the lead belongs to.';
COMMENT ON COLUMN notification_deliveries.status IS
    'pending (not delivered yet, retried at next_attempt_at), delivered, failed (gave up; an admin may retry).';
COMMENT ON COLUMN notification_deliveries.attempts IS 'Attempts made so far (counted when an attempt starts).';
COMMENT ON COLUMN notification_deliveries.created_at IS 'When the delivery was created (fan-out of the event).';
COMMENT ON COLUMN notification_deliveries.next_attempt_at IS
    'Pending: when the next attempt is due; while an attempt runs, when its claim lapses.';
COMMENT ON COLUMN notification_deliveries.last_attempt_at IS 'When the last attempt started.';
COMMENT ON COLUMN notification_deliveries.last_status IS 'HTTP status (webhooks) or SMTP reply code (e-mail) of the last attempt; NULL if none came back.';
COMMENT ON COLUMN notification_deliveries.last_error IS 'Why the last attempt failed (timeout, connection refused, HTTP 503 ...); NULL after success.';
COMMENT ON COLUMN notification_deliveries.delivered_at IS 'When the receiver accepted it (2xx, or the SMTP server took the message).';
COMMENT ON COLUMN notification_deliveries.claimed_by IS 'Notifier node running the current attempt; NULL when none.';

CREATE INDEX notification_deliveries_due_idx ON notification_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notification_deliveries_failed_idx ON notification_deliveries (id) WHERE status = 'failed';


CREATE FUNCTION cs_capture_outbox_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    k text;
    previous text;
BEGIN
    IF NEW.from_state IS NULL AND NEW.to_state IN ('queued', 'scheduled') THEN
        k := 'request.accepted';  -- intake's first event (including requests deferred to opening hours)
    ELSE
        k := CASE NEW.to_state
            WHEN 'accepted' THEN 'agent.accepted'
            WHEN 'connected' THEN 'call.connected'
            WHEN 'completed' THEN 'request.completed'
            WHEN 'failed' THEN 'request.failed'
            WHEN 'cancelled' THEN 'request.cancelled'
            WHEN 'expired' THEN 'request.expired'
            WHEN 'rejected' THEN 'request.rejected'
        END;
    END IF;
    IF k IS NULL THEN
        RETURN NULL;
    END IF;
    -- The dialer repeats a state change whose reply was lost, which appends the same transition again:
    -- notify it once.
    IF NEW.from_state IS NOT NULL THEN
        SELECT e.to_state INTO previous FROM callback_events e
        WHERE e.request_id = NEW.request_id AND e.id < NEW.id ORDER BY e.id DESC LIMIT 1;
        IF previous IS NOT DISTINCT FROM NEW.to_state THEN
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO event_outbox (event_id, request_id, kind, occurred_at) VALUES (NEW.id, NEW.request_id, k, NEW.at);
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION cs_capture_outbox_event() IS
    'Trigger on callback_events: records the lifecycle events that are notified in event_outbox (migration 0012).';

CREATE TRIGGER callback_events_outbox AFTER INSERT ON callback_events
    FOR EACH ROW EXECUTE FUNCTION cs_capture_outbox_event();

COMMENT ON TRIGGER callback_events_outbox ON callback_events IS
    'Adds an event_outbox row, in the same transaction, for each lifecycle event that is notified (0012).';
