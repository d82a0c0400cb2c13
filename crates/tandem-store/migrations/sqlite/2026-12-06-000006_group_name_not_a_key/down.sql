DROP INDEX scim_groups_display_name;
CREATE UNIQUE INDEX scim_groups_display_name ON scim_groups (scim_connection_id, display_name_lower);
