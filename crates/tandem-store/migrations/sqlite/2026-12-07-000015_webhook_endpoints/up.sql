-- Where the directory event feed is pushed: one row per receiving URL, with
-- its signing secret (encrypted), what it takes (a customer, event types),
-- the feed position delivered through, and its delivery state. A node
-- delivers an endpoint only while it holds its lease (leased_until).
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY NOT NULL,
    url TEXT NOT NULL,
    secret_enc TEXT NOT NULL,
    customer_id TEXT,
    event_types TEXT,
    cursor_txid BIGINT NOT NULL,
    cursor_seq BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    leased_until BIGINT,
    failures BIGINT NOT NULL DEFAULT 0,
    last_attempt_at BIGINT,
    last_success_at BIGINT,
    last_error TEXT,
    failing_since BIGINT
);
