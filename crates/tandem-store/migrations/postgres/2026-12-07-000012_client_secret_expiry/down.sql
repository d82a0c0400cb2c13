ALTER TABLE oidc_clients DROP COLUMN client_secret_expires_at;
