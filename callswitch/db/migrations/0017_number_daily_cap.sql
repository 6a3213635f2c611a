-- 0017: the dialer's daily cap per visitor number (dialing.max_calls_per_number_per_day) counts the visitor
-- legs of the last 24 hours for one number before every attempt; this index answers that.

CREATE INDEX call_legs_customer_number_idx ON call_legs (number_dialled, originated_at) WHERE leg = 'customer';
COMMENT ON INDEX call_legs_customer_number_idx IS
    'Visitor legs per number and time: the dialer''s daily cap per number (dialing.max_calls_per_number_per_day).';
