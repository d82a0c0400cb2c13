-- When each SCIM key last authenticated a request (written at most once a
-- minute), so that after a rotation an admin can see whether the IdP moved
-- to the new key, and a connection whose IdP never connected shows.
ALTER TABLE scim_api_keys ADD COLUMN last_used_at BIGINT;
-- The management API's users list by `updated_since`: an app polls it for
-- the users deprovisioned since its last look.
CREATE INDEX scim_users_by_change ON scim_users (scim_connection_id, updated_at);
