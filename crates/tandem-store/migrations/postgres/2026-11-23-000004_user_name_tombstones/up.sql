-- Live users are found by userName through the unique partial index
-- scim_users_user_name_live; only the login join also looks for tombstones.
-- So the userName index covers tombstones only, and creating a user writes
-- one index fewer.
DROP INDEX scim_users_user_name_lower;
CREATE INDEX scim_users_user_name_deleted ON scim_users (scim_connection_id, user_name_lower, id) WHERE deleted_at IS NOT NULL;
