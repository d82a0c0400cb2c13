-- The directory event feed: one row per change a SCIM write made, written
-- in the change's own transaction. SQLite has one writer at a time, so
-- `seq` (the rowid: the largest so far plus one) is commit order. The
-- retention purge never deletes the newest row, so no `seq` is handed out
-- twice (a reader's cursor would skip the new rows); AUTOINCREMENT would
-- promise the same at the cost of a second table written per change.
-- `txid` is PostgreSQL's and stays 0 here.
CREATE TABLE directory_events (
    seq INTEGER PRIMARY KEY,
    txid BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    scim_connection_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    data TEXT NOT NULL
);
-- How far the retention purge has deleted, in feed order: a cursor before
-- it may have missed events.
CREATE TABLE directory_event_purges (
    id BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    txid BIGINT NOT NULL,
    seq BIGINT NOT NULL
);
