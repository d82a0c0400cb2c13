-- How a client authenticates at its IdP's token endpoint: 'client_secret'
-- (its secret, or none for a public client), or 'private_key_jwt' (a JWT
-- signed with a key Tandem holds; the keys are then what client_secret_enc
-- holds, encrypted as a secret is).
ALTER TABLE oidc_clients ADD COLUMN client_authentication TEXT NOT NULL DEFAULT 'client_secret';
