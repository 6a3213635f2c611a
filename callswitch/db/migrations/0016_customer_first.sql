-- 0016: customer-first mode (the visitor is called first and waits on hold for an agent).
-- No schema change: the visitor's leg is a call_legs row with leg = 'customer' originated by the daemon
-- (ChannelId = leg_id), and a new final outcome exists. Only the analysts' descriptions change.

COMMENT ON COLUMN callback_requests.outcome IS
    'Final outcome once finished: connected, no_agent, agent_declined, customer_busy, customer_no_answer, '
    'customer_unreachable, customer_abandoned (customer-first: the visitor hung up on hold before an agent '
    'accepted), cancelled, expired, rejected, failed. NULL while the request is active.';
COMMENT ON COLUMN call_attempts.outcome IS
    'connected, no_agent, customer_busy, customer_no_answer, customer_unreachable, customer_abandoned '
    '(customer-first: the visitor hung up on hold), cancelled, failed, unknown (reconciled after a crash).';
COMMENT ON COLUMN call_legs.leg IS
    'agent (the store, team or rep) or customer (the visitor). Agent-first destinations ring the agent leg '
    'first and the dialplan dials the customer leg after acceptance; customer-first destinations originate '
    'the customer leg first and ring the agent legs while the visitor waits on hold.';
