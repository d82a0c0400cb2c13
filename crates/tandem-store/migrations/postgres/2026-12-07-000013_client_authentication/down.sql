ALTER TABLE oidc_clients DROP COLUMN client_assertion_audience;
ALTER TABLE oidc_clients DROP COLUMN client_keys_enc;
ALTER TABLE oidc_clients DROP COLUMN client_authentication;
