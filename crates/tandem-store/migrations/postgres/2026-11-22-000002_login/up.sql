-- A login started by /sso/login/initiate: single use, expiring, bound to
-- the app's cookie (only hashes of state and cookie are kept).
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

-- Every login attempt with the steps it reached and the failing step's diagnosis.
CREATE TABLE login_events (
    id TEXT PRIMARY KEY NOT NULL,
    oidc_client_id TEXT,
    customer_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    error_type TEXT,
    error_kind TEXT,
    failed_step TEXT,
    diagnosis TEXT,
    steps TEXT NOT NULL,
    oidc_user_id TEXT,
    email TEXT,
    scim_user_id TEXT
);
CREATE INDEX login_events_client ON login_events (oidc_client_id, id);
CREATE INDEX login_events_customer ON login_events (customer_id, id);

-- Every SSO identity seen at login, per OIDC client.
CREATE TABLE sso_users (
    id TEXT PRIMARY KEY NOT NULL,
    oidc_client_id TEXT NOT NULL,
    oidc_user_id TEXT NOT NULL,
    email TEXT,
    email_verified BOOLEAN,
    preferred_username TEXT,
    given_name TEXT,
    family_name TEXT,
    claims TEXT NOT NULL,
    first_login_at BIGINT NOT NULL,
    last_login_at BIGINT NOT NULL,
    login_count BIGINT NOT NULL
);
CREATE UNIQUE INDEX sso_users_identity ON sso_users (oidc_client_id, oidc_user_id);
