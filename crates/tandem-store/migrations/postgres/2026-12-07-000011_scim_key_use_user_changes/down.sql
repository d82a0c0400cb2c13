DROP INDEX scim_users_by_change;
ALTER TABLE scim_api_keys DROP COLUMN last_used_at;
