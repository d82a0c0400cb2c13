-- Per client: the scopes asked for in place of openid email profile (a JSON
-- array; NULL: those three). An IdP may refuse one (Cognito: profile, when
-- the app client does not allow it).
ALTER TABLE oidc_clients ADD COLUMN scopes TEXT;
