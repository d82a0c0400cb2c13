DROP TABLE login_claims;
CREATE TABLE login_transactions (
    id TEXT PRIMARY KEY NOT NULL,
    oidc_client_id TEXT NOT NULL,
    state_hash TEXT NOT NULL UNIQUE,
    cookie_hash TEXT NOT NULL,
    nonce TEXT NOT NULL,
    pkce_verifier_enc TEXT,
    post_login_redirect_url TEXT,
    login_event_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT
);
CREATE INDEX login_transactions_expires ON login_transactions (expires_at);
