ALTER TABLE oidc_clients DROP COLUMN client_authentication;
