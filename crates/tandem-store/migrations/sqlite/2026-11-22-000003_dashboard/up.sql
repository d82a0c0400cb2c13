-- Admin dashboard sessions: the cookie's token is kept only as a hash; each
-- session has its own CSRF token for its forms.
CREATE TABLE dashboard_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    integration_key_id TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
