DROP INDEX scim_users_user_name_deleted;
CREATE INDEX scim_users_user_name_lower ON scim_users (scim_connection_id, user_name_lower, id);
