-- displayName stays unique per connection (case-insensitively). A partial
-- index (its condition always holds: the column is NOT NULL) is not one a
-- foreign key could use, so PostgreSQL does not count display_name_lower
-- as a key column: renaming a group takes FOR NO KEY UPDATE on its row, as
-- any other change of it does, which does not wait for group writes that
-- add the group as a member (FOR KEY SHARE). With the full index, two
-- groups renamed and made members of each other at once deadlocked.
DROP INDEX scim_groups_display_name;
CREATE UNIQUE INDEX scim_groups_display_name ON scim_groups (scim_connection_id, display_name_lower)
    WHERE display_name_lower IS NOT NULL;
