ALTER TABLE oidc_clients DROP COLUMN previous_client_key_used_at;
ALTER TABLE oidc_clients DROP COLUMN client_assertion_audience;
ALTER TABLE oidc_clients DROP COLUMN client_keys_enc;
ALTER TABLE oidc_clients DROP COLUMN client_authentication;
