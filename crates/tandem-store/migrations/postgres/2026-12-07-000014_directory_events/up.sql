-- The directory event feed: one row per change a SCIM write made, written
-- in the change's own transaction. A sequence hands out `seq` before the
-- transaction commits, so two writers can commit out of `seq` order. Each
-- row therefore keeps its transaction's id, and the feed is read in
-- (txid, seq) order, only as far as the oldest transaction still running
-- (pg_snapshot_xmin): no transaction that commits later can add a row
-- before a position already read.
-- The key is the feed's order, so that a change writes one index.
CREATE TABLE directory_events (
    seq BIGSERIAL NOT NULL,
    txid BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    created_at BIGINT NOT NULL,
    scim_connection_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (txid, seq)
);
-- How far the retention purge has deleted, in feed order: a cursor before
-- it may have missed events.
CREATE TABLE directory_event_purges (
    id BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    txid BIGINT NOT NULL,
    seq BIGINT NOT NULL
);
