-- The same index as on PostgreSQL, where a partial unique index keeps
-- renames of groups from taking a key lock (see its migration). SQLite has
-- no row locks; the index is kept the same so both schemas read alike.
DROP INDEX scim_groups_display_name;
CREATE UNIQUE INDEX scim_groups_display_name ON scim_groups (scim_connection_id, display_name_lower)
    WHERE display_name_lower IS NOT NULL;
