-- 0001: callback requests, their audit trail, and call detail records (one row per dialled leg).

CREATE TABLE callback_requests (
    id                  uuid PRIMARY KEY,
    site                text        NOT NULL,
    visitor_name        text        NOT NULL,
    phone_given         text        NOT NULL,
    phone_e164          text        NOT NULL,
    phone_country       text        NOT NULL,
    page_url            text,
    referrer            text,
    pages_visited       text[]      NOT NULL DEFAULT '{}',
    utm_source          text,
    utm_medium          text,
    utm_campaign        text,
    utm_term            text,
    utm_content         text,
    product             text,
    postal_code         text,
    company_size        integer,
    language            text,
    attributes          jsonb       NOT NULL DEFAULT '{}',
    consent             boolean     NOT NULL DEFAULT false,
    preferred_at        timestamptz,
    client_ip           inet,
    user_agent          text,
    idempotency_key     text,
    request_fingerprint text        NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    state               text        NOT NULL DEFAULT 'queued',
    state_changed_at    timestamptz NOT NULL DEFAULT now(),
    due_at              timestamptz NOT NULL DEFAULT now(),
    attempts            integer     NOT NULL DEFAULT 0,
    agent_attempts      integer     NOT NULL DEFAULT 0,
    customer_attempts   integer     NOT NULL DEFAULT 0,
    outcome             text,
    outcome_detail      text,
    finished_at         timestamptz,
    CONSTRAINT callback_requests_state_check CHECK (state IN (
        'queued', 'scheduled', 'dialing_agent', 'agent_answered', 'accepted', 'dialing_customer',
        'connected', 'completed', 'failed', 'cancelled', 'expired', 'rejected')),
    CONSTRAINT callback_requests_final_check CHECK (
        (state IN ('completed', 'failed', 'cancelled', 'expired', 'rejected')) = (finished_at IS NOT NULL))
);

COMMENT ON TABLE callback_requests IS
    'One row per callback request a web page posted and callswitch accepted (connected or not). '
    'Requests refused at intake (invalid input, rate limits) are not stored here; see the '
    'callswitch_intake_rejected_total metric for those.';
COMMENT ON COLUMN callback_requests.id IS 'Random (unguessable) request id; also the id in the public status URL.';
COMMENT ON COLUMN callback_requests.site IS 'Site id from the configuration (sites.<id>): which web site the request came from.';
COMMENT ON COLUMN callback_requests.visitor_name IS 'Name the visitor typed. Personal data: anonymised by the retention policy.';
COMMENT ON COLUMN callback_requests.phone_given IS 'Phone number exactly as the visitor typed it. Personal data.';
COMMENT ON COLUMN callback_requests.phone_e164 IS 'The phone number normalised to E.164 (+<country code><number>). Personal data.';
COMMENT ON COLUMN callback_requests.phone_country IS 'ISO 3166-1 alpha-2 country of the phone number (e.g. US, DE).';
COMMENT ON COLUMN callback_requests.page_url IS 'The page the visitor was on when asking for the call.';
COMMENT ON COLUMN callback_requests.referrer IS 'The referrer of that page (where the visitor came from), if the browser sent one.';
COMMENT ON COLUMN callback_requests.pages_visited IS 'Pages visited on the site in this browser session before the request, oldest first.';
COMMENT ON COLUMN callback_requests.utm_source IS 'utm_source of the landing page (campaign attribution).';
COMMENT ON COLUMN callback_requests.utm_medium IS 'utm_medium of the landing page.';
COMMENT ON COLUMN callback_requests.utm_campaign IS 'utm_campaign (or the campaign field) of the landing page.';
COMMENT ON COLUMN callback_requests.utm_term IS 'utm_term of the landing page.';
COMMENT ON COLUMN callback_requests.utm_content IS 'utm_content of the landing page.';
COMMENT ON COLUMN callback_requests.product IS 'Product the visitor asked about (attributes.product), used by routing rules.';
COMMENT ON COLUMN callback_requests.postal_code IS 'Postal code the visitor gave (attributes.postal_code), used by routing rules.';
COMMENT ON COLUMN callback_requests.company_size IS 'Company size (employees) the visitor gave (attributes.company_size).';
COMMENT ON COLUMN callback_requests.language IS 'Preferred language of the visitor (BCP 47 tag, e.g. en, de-CH).';
COMMENT ON COLUMN callback_requests.attributes IS 'All free attributes the page sent (JSON object), including the ones copied into columns.';
COMMENT ON COLUMN callback_requests.consent IS 'True when the visitor ticked the consent box (to be called / data use).';
COMMENT ON COLUMN callback_requests.preferred_at IS 'Time the visitor asked to be called ("call me at"), if any.';
COMMENT ON COLUMN callback_requests.client_ip IS 'IP address of the visitor (or of the posting server). Personal data.';
COMMENT ON COLUMN callback_requests.user_agent IS 'Browser User-Agent header. Personal data.';
COMMENT ON COLUMN callback_requests.idempotency_key IS 'Idempotency-Key header of the request, if sent: a retry with the same key returns this row.';
COMMENT ON COLUMN callback_requests.request_fingerprint IS 'SHA-256 of the normalised request body; detects an Idempotency-Key reused for a different request.';
COMMENT ON COLUMN callback_requests.created_at IS 'When the request was accepted (committed).';
COMMENT ON COLUMN callback_requests.state IS
    'Current state: queued, scheduled (waiting for due_at), dialing_agent, agent_answered, accepted, '
    'dialing_customer, connected; final: completed, failed, cancelled, expired, rejected.';
COMMENT ON COLUMN callback_requests.state_changed_at IS 'When state last changed.';
COMMENT ON COLUMN callback_requests.due_at IS 'Earliest time the dialer may work the request (now, opening time, preferred time or retry time).';
COMMENT ON COLUMN callback_requests.attempts IS 'Number of dialling attempts started for this request.';
COMMENT ON COLUMN callback_requests.agent_attempts IS 'Number of agent legs dialled for this request.';
COMMENT ON COLUMN callback_requests.customer_attempts IS 'Number of times the visitor was dialled.';
COMMENT ON COLUMN callback_requests.outcome IS
    'Final outcome once finished: connected, no_agent, agent_declined, customer_busy, customer_no_answer, '
    'customer_unreachable, cancelled, expired, rejected. NULL while the request is active.';
COMMENT ON COLUMN callback_requests.outcome_detail IS 'Human-readable detail of the outcome (e.g. the reject message or last hangup cause).';
COMMENT ON COLUMN callback_requests.finished_at IS 'When the request reached a final state; NULL while active.';

-- The dialer's queue: active requests by due time.
CREATE INDEX callback_requests_due_idx ON callback_requests (due_at)
    WHERE state IN ('queued', 'scheduled');
-- One active request per phone number and site: a second one returns the first.
CREATE UNIQUE INDEX callback_requests_one_active_per_phone_idx ON callback_requests (site, phone_e164)
    WHERE finished_at IS NULL;
CREATE UNIQUE INDEX callback_requests_idempotency_idx ON callback_requests (site, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX callback_requests_phone_created_idx ON callback_requests (phone_e164, created_at);
CREATE INDEX callback_requests_site_created_idx ON callback_requests (site, created_at);
CREATE INDEX callback_requests_state_idx ON callback_requests (state, created_at);


CREATE TABLE callback_events (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id  uuid        NOT NULL REFERENCES callback_requests (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    event       text        NOT NULL,
    from_state  text,
    to_state    text,
    actor       text        NOT NULL,
    detail      jsonb       NOT NULL DEFAULT '{}'
);

COMMENT ON TABLE callback_events IS 'Append-only audit trail: every state change and notable step of every callback request.';
COMMENT ON COLUMN callback_events.id IS 'Sequence number; orders events of one request.';
COMMENT ON COLUMN callback_events.request_id IS 'The request (callback_requests.id).';
COMMENT ON COLUMN callback_events.at IS 'When it happened.';
COMMENT ON COLUMN callback_events.event IS 'What happened: accepted, routed, deferred, dialing, agent_answered, agent_accepted, connected, cancelled, failed, ...';
COMMENT ON COLUMN callback_events.from_state IS 'State before the event (NULL for the first event).';
COMMENT ON COLUMN callback_events.to_state IS 'State after the event.';
COMMENT ON COLUMN callback_events.actor IS 'Who caused it: intake, visitor, dialer, admin, retention.';
COMMENT ON COLUMN callback_events.detail IS 'Details as JSON (rule matched, hangup cause, message, ...).';

CREATE INDEX callback_events_request_idx ON callback_events (request_id, id);
CREATE INDEX callback_events_at_idx ON callback_events (at);


CREATE TABLE call_legs (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id        uuid        NOT NULL REFERENCES callback_requests (id) ON DELETE CASCADE,
    attempt           integer     NOT NULL,
    leg               text        NOT NULL CHECK (leg IN ('agent', 'customer')),
    destination       text,
    member            text,
    number_dialled    text        NOT NULL,
    trunk             text,
    asterisk_server   text,
    channel           text,
    uniqueid          text,
    linkedid          text,
    originated_at     timestamptz NOT NULL,
    ringing_at        timestamptz,
    answered_at       timestamptz,
    accepted_at       timestamptz,
    ended_at          timestamptz,
    disposition       text,
    hangup_cause      integer,
    hangup_cause_text text,
    sip_status        integer,
    billable_seconds  integer,
    CONSTRAINT call_legs_disposition_check CHECK (disposition IS NULL OR disposition IN (
        'answered', 'accepted', 'declined', 'no_answer', 'busy', 'congestion', 'unreachable',
        'cancelled', 'answered_elsewhere', 'failed'))
);

COMMENT ON TABLE call_legs IS
    'Call detail records: one row per dialled leg (agent or visitor) of every attempt. '
    'With simultaneous ringing one attempt has several agent legs, of which at most one is accepted.';
COMMENT ON COLUMN call_legs.id IS 'Sequence number of the leg.';
COMMENT ON COLUMN call_legs.request_id IS 'The request (callback_requests.id) this leg was dialled for.';
COMMENT ON COLUMN call_legs.attempt IS 'Attempt number within the request, from 1.';
COMMENT ON COLUMN call_legs.leg IS 'agent (the store, team or rep rung first) or customer (the visitor).';
COMMENT ON COLUMN call_legs.destination IS 'Routing destination (store/team/rep) the agent leg belongs to.';
COMMENT ON COLUMN call_legs.member IS 'The destination member rung (E.164 number or endpoint such as PJSIP/201).';
COMMENT ON COLUMN call_legs.number_dialled IS 'The number or endpoint actually dialled. Personal data for customer legs.';
COMMENT ON COLUMN call_legs.trunk IS 'Trunk (from the routing file) the leg went out on; NULL for internal endpoints.';
COMMENT ON COLUMN call_legs.asterisk_server IS 'Which Asterisk server carried the leg (when several are configured).';
COMMENT ON COLUMN call_legs.channel IS 'Asterisk channel name, e.g. PJSIP/carrier-00000012.';
COMMENT ON COLUMN call_legs.uniqueid IS 'Asterisk Uniqueid of the channel (pre-assigned by callswitch where possible).';
COMMENT ON COLUMN call_legs.linkedid IS 'Asterisk Linkedid: the same for every channel of one call.';
COMMENT ON COLUMN call_legs.originated_at IS 'When callswitch asked Asterisk to dial the leg.';
COMMENT ON COLUMN call_legs.ringing_at IS 'When the far end started ringing (NULL if it never rang).';
COMMENT ON COLUMN call_legs.answered_at IS 'When the far end answered (NULL if not answered).';
COMMENT ON COLUMN call_legs.accepted_at IS 'Agent legs: when the agent accepted the lead with a key press.';
COMMENT ON COLUMN call_legs.ended_at IS 'When the leg hung up.';
COMMENT ON COLUMN call_legs.disposition IS
    'How the leg ended: answered, accepted, declined, no_answer, busy, congestion, unreachable, '
    'cancelled, answered_elsewhere (ring-all: another member accepted), failed.';
COMMENT ON COLUMN call_legs.hangup_cause IS 'Q.850 hangup cause code reported by Asterisk (16 normal, 17 busy, 19 no answer, ...).';
COMMENT ON COLUMN call_legs.hangup_cause_text IS 'Asterisk''s text for hangup_cause.';
COMMENT ON COLUMN call_legs.sip_status IS 'SIP response code behind the hangup, when Asterisk reported one (TechCause).';
COMMENT ON COLUMN call_legs.billable_seconds IS 'Seconds from answer to end (talk time for a connected visitor leg).';

CREATE INDEX call_legs_request_idx ON call_legs (request_id, attempt);
CREATE INDEX call_legs_uniqueid_idx ON call_legs (uniqueid);
CREATE INDEX call_legs_originated_idx ON call_legs (originated_at);
