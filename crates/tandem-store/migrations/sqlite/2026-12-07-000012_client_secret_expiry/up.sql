-- When a client's secret expires at its IdP, as the admin gives it (Entra's
-- secrets last at most two years; an expired one refuses every login), so
-- that it can be warned of before it comes.
ALTER TABLE oidc_clients ADD COLUMN client_secret_expires_at BIGINT;
