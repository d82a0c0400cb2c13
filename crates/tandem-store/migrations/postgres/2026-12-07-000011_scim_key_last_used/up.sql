-- When each SCIM key last authenticated a request (written at most once a
-- minute), so that after a rotation an admin can see whether the IdP moved
-- to the new key, and a connection whose IdP stopped provisioning shows.
ALTER TABLE scim_api_keys ADD COLUMN last_used_at BIGINT;
