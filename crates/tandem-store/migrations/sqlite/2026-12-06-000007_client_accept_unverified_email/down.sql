ALTER TABLE oidc_clients DROP COLUMN accept_unverified_email;
