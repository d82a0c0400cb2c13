-- Per client: whether an email its IdP marks unverified may still identify
-- a user (NULL: the deployment's oidc.accept_unverified_email decides).
ALTER TABLE oidc_clients ADD COLUMN accept_unverified_email BOOLEAN;
