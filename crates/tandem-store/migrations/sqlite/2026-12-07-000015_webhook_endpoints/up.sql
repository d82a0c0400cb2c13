-- Where the directory event feed is pushed: one row per receiving URL, with
-- its signing secret (encrypted), what it takes (a customer, event types),
-- the feed position delivered through, and its delivery state. A node
-- delivers an endpoint only while it holds its lease (leased_until).
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY NOT NULL,
    url TEXT NOT NULL,
    secret_enc TEXT NOT NULL,
    -- The secret a rotation replaced, signing beside the new one until then.
    previous_secret_enc TEXT,
    previous_secret_until BIGINT,
    customer_id TEXT,
    event_types TEXT,
    cursor_txid BIGINT NOT NULL,
    cursor_seq BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    leased_until BIGINT,
    -- The lease holder's token: a delivery records its outcome only while
    -- its lease is still the one held.
    lease_id TEXT,
    failures BIGINT NOT NULL DEFAULT 0,
    last_attempt_at BIGINT,
    last_success_at BIGINT,
    last_error TEXT,
    failing_since BIGINT,
    -- The last time events were skipped (deleted before they were delivered), and what.
    skipped_at BIGINT,
    skipped TEXT
);
