-- Logins an IdP starts (OpenID Connect Core §4) name the client by issuer.
CREATE INDEX IF NOT EXISTS oidc_clients_issuer ON oidc_clients (issuer);
