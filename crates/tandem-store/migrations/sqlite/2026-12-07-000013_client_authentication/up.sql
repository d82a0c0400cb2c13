-- How a client authenticates at its IdP's token endpoint: 'client_secret'
-- (its secret, or none for a public client), or 'private_key_jwt' (a JWT
-- signed with a key Tandem holds). The keys have a column and an encryption
-- context of their own, so that a release that knows only secrets (a node
-- not yet upgraded, or a rollback) finds no secret for such a client
-- instead of reading its keys as one.
ALTER TABLE oidc_clients ADD COLUMN client_authentication TEXT NOT NULL DEFAULT 'client_secret';
ALTER TABLE oidc_clients ADD COLUMN client_keys_enc TEXT;
-- The audience a private_key_jwt assertion names: 'token_endpoint' or 'issuer'.
ALTER TABLE oidc_clients ADD COLUMN client_assertion_audience TEXT NOT NULL DEFAULT 'token_endpoint';
-- When a login last went through only with the key a rotation left working
-- (to the minute): the IdP lacks the current key. Cleared by a rotation.
ALTER TABLE oidc_clients ADD COLUMN previous_client_key_used_at BIGINT;
