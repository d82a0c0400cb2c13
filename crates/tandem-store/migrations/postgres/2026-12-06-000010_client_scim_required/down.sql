ALTER TABLE oidc_clients DROP COLUMN scim_required;
