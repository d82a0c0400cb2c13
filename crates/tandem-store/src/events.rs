//! The directory event feed: one row per change a SCIM write made to a
//! connection's users and groups (created, changed, deactivated,
//! reactivated, deleted; a member added to or removed from a group) and per
//! connection deleted, written in the transaction of the change itself, so
//! that an event exists exactly when its change does. An app reads the feed
//! in commit order from a cursor and never misses or skips one.
//!
//! This is a transactional outbox, written here because the ordering it
//! needs is the database's own and no maintained crate offers it over
//! diesel for both backends:
//! - On SQLite one writer holds the lock from a row's insert to its commit,
//!   so `seq` (the rowid, the largest so far plus one) is commit order. The
//!   purge never deletes the newest row, so no `seq` is handed out twice.
//! - On PostgreSQL a sequence hands `seq` out before the commit, so a
//!   transaction that took a lower one can commit after a reader passed a
//!   higher one. Each row keeps its transaction's id (`txid`), the feed is
//!   ordered by (txid, seq), and a read goes only as far as the oldest
//!   transaction still running (`pg_snapshot_xmin`): every transaction that
//!   commits later has a larger id than any row returned.
//!
//! A position in the feed is (txid, seq); on SQLite txid is always 0.
//!
//! A position the database has not reached (a cursor of a database since
//! restored from an older backup, or, on PostgreSQL, moved to another server
//! whose transaction ids are lower) would skip the events that fill the gap:
//! such a cursor is refused as expired; and as a restored database goes on,
//! it hands the positions after its backup out again, to other events, so
//! a reader's cursor also carries its event's stamp (see [`Cursor`]). Rows brought over from another
//! PostgreSQL server keep transaction ids that server had reached;
//! [`renumber_moved`] (run at start) puts them before every new one.

use crate::scim::filter_sql::Bind;
use crate::scim::groups::ScimGroupRow;
use crate::scim::query::{execute_fixed, load_fixed};
use crate::scim::users::ScimUserRow;
use crate::{AnyConnection, StoreError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde_json::{json, Value};

crate::fixed_sql!(
    InsertEvent =
        "INSERT INTO directory_events (created_at, scim_connection_id, customer_id, event_type, resource_id, \
                   data) VALUES (?, ?, ?, ?, ?, ?)"
);
// One event with its connection's customer ID, in one statement (one round trip on PostgreSQL).
crate::fixed_sql!(
    InsertOneEvent = "INSERT INTO directory_events (created_at, scim_connection_id, customer_id, event_type, \
                      resource_id, data) SELECT ?, id, customer_id, ?, ?, ? FROM scim_connections WHERE id = ?"
);
crate::fixed_sql!(CustomerOf = "SELECT customer_id AS value FROM scim_connections WHERE id = ?");
crate::fixed_sql!(
    SqliteAfter = "SELECT seq, txid, created_at, scim_connection_id, customer_id, event_type, resource_id, \
                   data FROM directory_events WHERE seq > ? ORDER BY seq LIMIT ?"
);
crate::fixed_sql!(
    PgAfter = "SELECT seq, txid, created_at, scim_connection_id, customer_id, event_type, resource_id, \
                   data FROM directory_events WHERE (txid, seq) > (?, ?) \
                   AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint ORDER BY txid, seq LIMIT ?"
);
crate::fixed_sql!(SqliteLast = "SELECT txid, seq, created_at FROM directory_events ORDER BY seq DESC LIMIT 1");
crate::fixed_sql!(PgLast = "SELECT txid, seq, created_at FROM directory_events \
                   WHERE txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint ORDER BY txid DESC, seq DESC LIMIT 1");
crate::fixed_sql!(StampAt = "SELECT created_at AS n FROM directory_events WHERE txid = ? AND seq = ?");
crate::fixed_sql!(PurgedThrough = "SELECT txid, seq FROM directory_event_purges WHERE id = 1");
crate::fixed_sql!(SqliteMaxSeq = "SELECT COALESCE(MAX(seq), 0) AS n FROM directory_events");
// The next transaction id PostgreSQL will hand out, as the statement's own
// snapshot has it: no position can be at or past it, and every row the
// statement sees that this server wrote has a smaller one, however many
// transactions started since an earlier statement (a limit read once would
// take their rows for moved ones).
macro_rules! next_txid {
    () => {
        "pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
    };
}
crate::fixed_sql!(PgNextTxid = concat!("SELECT ", next_txid!(), " AS n"));
// Whether the feed was brought from another server: an event, the purge's
// mark or a webhook endpoint's position carries a transaction id at or
// past the next this one hands out (the mark and the positions too: the
// purge may have left no event). Then every event with a transaction id
// was (the new server's range may overlap the old one's: a restore onto a
// server already past some of the old ids).
macro_rules! moved_here {
    () => {
        concat!(
            "(EXISTS (SELECT 1 FROM directory_events WHERE txid >= ",
            next_txid!(),
            ") OR EXISTS (SELECT 1 FROM directory_event_purges WHERE txid >= ",
            next_txid!(),
            ") OR EXISTS (SELECT 1 FROM webhook_endpoints WHERE cursor_txid >= ",
            next_txid!(),
            "))"
        )
    };
}
// Events moved from another server (see `moved_here`), each with the
// sequence number it takes: the numbers they hold, in ascending order,
// dealt out in feed order (txid, seq), so that under transaction id 0
// they keep their order.
macro_rules! moved_map {
    () => {
        concat!(
            "WITH moved AS (SELECT txid, seq, row_number() OVER (ORDER BY txid, seq) AS k, \
                                   row_number() OVER (ORDER BY seq) AS slot \
                            FROM directory_events WHERE txid > 0 AND ",
            moved_here!(),
            "), map AS (SELECT moved.txid, moved.seq, slots.seq AS new_seq \
                        FROM moved JOIN moved AS slots ON slots.slot = moved.k) "
        )
    };
}
// A position among moved events goes to the moved event at or before it,
// else to just before the first of them; with none moved, it keeps its seq.
macro_rules! moved_position {
    ($txid:literal, $seq:literal) => {
        concat!(
            "COALESCE((SELECT new_seq FROM map WHERE (map.txid, map.seq) <= (",
            $txid,
            ", ",
            $seq,
            ") ORDER BY map.txid DESC, map.seq DESC LIMIT 1), (SELECT MIN(new_seq) - 1 FROM map), ",
            $seq,
            ")"
        )
    };
}
crate::fixed_sql!(
    PgRenumberMoved = concat!(
        moved_map!(),
        "UPDATE directory_events SET txid = 0, seq = -map.new_seq FROM map \
         WHERE directory_events.txid = map.txid AND directory_events.seq = map.seq"
    )
);
// Then back to positive: seq is unique, so no other row holds these numbers.
crate::fixed_sql!(PgRenumberMovedSigns = "UPDATE directory_events SET seq = -seq WHERE seq < 0");
crate::fixed_sql!(
    PgRenumberMovedMark = concat!(
        moved_map!(),
        "UPDATE directory_event_purges SET txid = 0, seq = ",
        moved_position!("directory_event_purges.txid", "directory_event_purges.seq"),
        " WHERE txid > 0 AND ",
        moved_here!()
    )
);
crate::fixed_sql!(
    PgRenumberMovedEndpoints = concat!(
        moved_map!(),
        "UPDATE webhook_endpoints SET cursor_txid = 0, cursor_seq = ",
        moved_position!("webhook_endpoints.cursor_txid", "webhook_endpoints.cursor_seq"),
        " WHERE cursor_txid > 0 AND ",
        moved_here!()
    )
);
crate::fixed_sql!(SqliteOldest = "SELECT txid, seq, created_at FROM directory_events ORDER BY seq LIMIT ?");
crate::fixed_sql!(
    PgOldest = "SELECT txid, seq, created_at FROM directory_events \
                   WHERE txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint ORDER BY txid, seq LIMIT ?"
);
crate::fixed_sql!(SqliteDeleteThrough = "DELETE FROM directory_events WHERE seq <= ?");
crate::fixed_sql!(PgDeleteThrough = "DELETE FROM directory_events WHERE (txid, seq) <= (?, ?)");
crate::fixed_sql!(
    MarkPurged = "INSERT INTO directory_event_purges (id, txid, seq) VALUES (1, ?, ?) \
                  ON CONFLICT (id) DO UPDATE SET txid = excluded.txid, seq = excluded.seq \
                  WHERE (directory_event_purges.txid, directory_event_purges.seq) < (excluded.txid, excluded.seq)"
);

/// Every event type, as the feed names them.
pub const TYPES: &[&str] = &[
    "user.created",
    "user.updated",
    "user.deactivated",
    "user.reactivated",
    "user.deleted",
    "group.created",
    "group.updated",
    "group.deleted",
    "group.member_added",
    "group.member_removed",
    "scim_connection.deleted",
];

/// A position in the feed: an event's, or the start (0, 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub txid: i64,
    pub seq: i64,
}

impl Position {
    /// The cursor text of this position: `{txid}-{seq}`.
    pub fn cursor(self) -> String {
        format!("{}-{}", self.txid, self.seq)
    }

    /// Reads a cursor made by [`Position::cursor`].
    pub fn parse(cursor: &str) -> Option<Position> {
        let (txid, seq) = cursor.split_once('-')?;
        let digits = |s: &str| !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(txid) || !digits(seq) {
            return None;
        }
        Some(Position { txid: txid.parse().ok()?, seq: seq.parse().ok()? })
    }
}

/// A cursor a reader holds: a position and, when it names an event, that
/// event's time (µs) as its stamp, `{txid}-{seq}-{stamp}` with the stamp in
/// base 36. A database restored from an older backup hands the positions
/// after the backup out again, to other events: the stamp tells them apart,
/// so such a cursor is refused rather than read past the events that fill
/// the gap, and event ids are never reused. A cursor without a stamp
/// (`{txid}-{seq}`, a position no event holds, or one given by an earlier
/// release) is read by its position alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    pub position: Position,
    pub stamp: Option<i64>,
}

impl Cursor {
    /// The cursor's text.
    pub fn text(self) -> String {
        match self.stamp {
            Some(stamp) => format!("{}-{}", self.position.cursor(), base36(stamp)),
            None => self.position.cursor(),
        }
    }

    /// Reads a cursor made by [`Cursor::text`] (or [`Position::cursor`]).
    pub fn parse(cursor: &str) -> Option<Cursor> {
        let (position, stamp) = match cursor.rsplit_once('-') {
            Some((position, stamp)) if position.contains('-') => (position, Some(from_base36(stamp)?)),
            _ => (cursor, None),
        };
        Some(Cursor { position: Position::parse(position)?, stamp })
    }
}

fn base36(mut n: i64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let negative = n < 0;
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36).unsigned_abs() as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    if negative {
        out.push(b'~');
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn from_base36(s: &str) -> Option<i64> {
    let (negative, digits) = match s.strip_prefix('~') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if digits.is_empty() || digits.len() > 13 || !digits.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()) {
        return None;
    }
    let n = i64::from_str_radix(digits, 36).ok()?;
    Some(if negative { -n } else { n })
}

/// What a reader narrows the feed to; `None` takes all.
#[derive(Clone, Debug, Default)]
pub struct Narrowing {
    pub customer_id: Option<String>,
    pub scim_connection_id: Option<String>,
    pub types: Option<Vec<String>>,
}

/// Events a narrowed read looks at past its cursor: the page holds those of
/// them that match, and the read's position moves past the rest.
pub const NARROWED_SCAN: i64 = 1_000;

impl Narrowing {
    pub fn is_some(&self) -> bool {
        self.customer_id.is_some() || self.scim_connection_id.is_some() || self.types.is_some()
    }

    pub fn admits(&self, e: &EventRow) -> bool {
        self.customer_id.as_ref().is_none_or(|c| *c == e.customer_id)
            && self.scim_connection_id.as_ref().is_none_or(|c| *c == e.scim_connection_id)
            && self.types.as_ref().is_none_or(|t| t.contains(&e.event_type))
    }

    /// Up to `limit` events after `from` that this admits: the events, the
    /// position reached (the last event taken when the page filled, else the
    /// last one looked at; `from` when none), and whether more may follow;
    /// `Err` as [`after`]'s.
    pub fn page(
        &self,
        conn: &mut AnyConnection,
        from: Option<Position>,
        limit: i64,
    ) -> Result<Result<Page, Option<Position>>, StoreError> {
        self.page_from(conn, from.map(|position| Cursor { position, stamp: None }), limit)
    }

    /// [`Narrowing::page`] from a reader's cursor (its stamp checked, see [`Cursor`]).
    pub fn page_from(
        &self,
        conn: &mut AnyConnection,
        from: Option<Cursor>,
        limit: i64,
    ) -> Result<Result<Page, Option<Position>>, StoreError> {
        let scan = if self.is_some() { NARROWED_SCAN } else { limit };
        let rows = match after(conn, from, scan)? {
            Ok(rows) => rows,
            Err(mark) => return Ok(Err(mark)),
        };
        let mut events = Vec::new();
        let mut reached = from;
        for row in &rows {
            reached = Some(row.cursor());
            if self.admits(row) {
                events.push(row.clone());
                if events.len() as i64 == limit {
                    break;
                }
            }
        }
        // More may follow when the read was cut short, or the page ended before the read did.
        let has_more = rows.len() as i64 == scan || rows.last().is_some_and(|l| Some(l.cursor()) != reached);
        Ok(Ok(Page { events, reached: reached.map(|c| c.position), reached_cursor: reached, has_more }))
    }
}

/// One page of a narrowed read (see [`Narrowing::page`]).
#[derive(Clone, Debug)]
pub struct Page {
    pub events: Vec<EventRow>,
    pub reached: Option<Position>,
    /// `reached` as a reader's cursor: the last event read's, or the one
    /// the read started from when it read none.
    pub reached_cursor: Option<Cursor>,
    pub has_more: bool,
}

/// An event to record: its type, the resource it is about, and its data (JSON).
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub event_type: &'static str,
    pub resource_id: String,
    pub data: Value,
}

impl NewEvent {
    /// A user's event (`user.created`, `.updated`, `.deactivated`,
    /// `.reactivated`, `.deleted`), with the user as it is after the change
    /// and, for an update, the attributes it changed (by name).
    pub fn user(event_type: &'static str, row: &ScimUserRow, changed: &[String]) -> NewEvent {
        let mut data = json!({"id": row.id, "user_name": row.user_name, "external_id": row.external_id,
                              "active": row.active && row.deleted_at.is_none(), "version": row.version});
        if !changed.is_empty() {
            data["changed"] = json!(changed);
        }
        NewEvent { event_type, resource_id: row.id.clone(), data }
    }

    /// A group's event (`group.created`, `.updated`, `.deleted`).
    pub fn group(event_type: &'static str, row: &ScimGroupRow, changed: &[String]) -> NewEvent {
        let mut data = json!({"id": row.id, "display_name": row.display_name, "external_id": row.external_id,
                              "version": row.version});
        if !changed.is_empty() {
            data["changed"] = json!(changed);
        }
        NewEvent { event_type, resource_id: row.id.clone(), data }
    }

    /// `group.member_added` or `group.member_removed`: `member`, of
    /// `member_type` (`User`, or `Group` for a nested group), joined or left
    /// `group`, whose write gave it `group_version` (`None` when the
    /// member's own deletion removed it).
    pub fn member(
        event_type: &'static str,
        group: &str,
        (member, member_type): (&str, &str),
        group_version: Option<i64>,
    ) -> NewEvent {
        NewEvent {
            event_type,
            resource_id: group.to_string(),
            data: json!({"group_id": group, "member_id": member, "member_type": member_type,
                         "group_version": group_version}),
        }
    }

    /// The event of a deletion: the resource as it was, with `active` false
    /// (a user's) and a version one past its last.
    pub fn deleted(mut self) -> NewEvent {
        if self.data.get("active").is_some() {
            self.data["active"] = Value::Bool(false);
        }
        if let Some(v) = self.data.get("version").and_then(Value::as_i64) {
            self.data["version"] = json!(v + 1);
        }
        self
    }
}

/// An event as stored.
#[derive(Clone, Debug, QueryableByName)]
pub struct EventRow {
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
    #[diesel(sql_type = BigInt)]
    pub txid: i64,
    /// µs since the epoch, when the change was made.
    #[diesel(sql_type = BigInt)]
    pub created_at: i64,
    #[diesel(sql_type = Text)]
    pub scim_connection_id: String,
    /// The connection's customer ID when the change was made.
    #[diesel(sql_type = Text)]
    pub customer_id: String,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = Text)]
    pub resource_id: String,
    #[diesel(sql_type = Text)]
    pub data: String,
}

impl EventRow {
    pub fn position(&self) -> Position {
        Position { txid: self.txid, seq: self.seq }
    }

    /// The event's cursor, its id in the feed.
    pub fn cursor(&self) -> Cursor {
        Cursor { position: self.position(), stamp: Some(self.created_at) }
    }
}

#[derive(QueryableByName)]
struct OneText {
    #[diesel(sql_type = Text)]
    value: String,
}

#[derive(QueryableByName)]
struct PositionRow {
    #[diesel(sql_type = BigInt)]
    txid: i64,
    #[diesel(sql_type = BigInt)]
    seq: i64,
}

#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn number<K: crate::scim::query::FixedSql>(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    let rows: Vec<Number> = load_fixed::<K, _>(conn, &[])?;
    Ok(rows.first().map_or(0, |r| r.n))
}

#[derive(QueryableByName)]
struct AgedPosition {
    #[diesel(sql_type = BigInt)]
    txid: i64,
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = BigInt)]
    created_at: i64,
}

fn is_postgres(conn: &AnyConnection) -> bool {
    matches!(conn, AnyConnection::Postgresql(_))
}

/// The values of an `INSERT … SELECT ?, id, customer_id, ?, ?, ? FROM
/// scim_connections WHERE id = ?` of one event.
pub(crate) fn insert_one_binds(connection: &str, at: DateTime<Utc>, e: &NewEvent) -> Vec<Bind> {
    vec![
        Bind::Int(crate::micros(at)),
        Bind::Text(e.event_type.to_string()),
        Bind::Text(e.resource_id.clone()),
        Bind::Text(tandem_scim::to_text(&e.data)),
        Bind::Text(connection.to_string()),
    ]
}

/// Records `events` of `connection` made at `at`, in the caller's
/// transaction; nothing when the connection does not exist (any more).
pub fn record(
    conn: &mut AnyConnection,
    connection: &str,
    at: DateTime<Utc>,
    events: &[NewEvent],
) -> Result<(), StoreError> {
    if let [e] = events {
        execute_fixed::<InsertOneEvent>(conn, &insert_one_binds(connection, at, e))?;
        return Ok(());
    }
    let at = crate::micros(at);
    if events.is_empty() {
        return Ok(());
    }
    let customers: Vec<OneText> = load_fixed::<CustomerOf, _>(conn, &[Bind::Text(connection.to_string())])?;
    let Some(customer) = customers.into_iter().next().map(|c| c.value) else {
        return Ok(());
    };
    if let AnyConnection::Postgresql(c) = conn {
        // Many rows per statement: a group write may add thousands of members.
        use crate::schema::directory_events::dsl as d;
        for chunk in events.chunks(500) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|e| {
                    (
                        d::created_at.eq(at),
                        d::scim_connection_id.eq(connection),
                        d::customer_id.eq(&customer),
                        d::event_type.eq(e.event_type),
                        d::resource_id.eq(&e.resource_id),
                        d::data.eq(tandem_scim::to_text(&e.data)),
                    )
                })
                .collect();
            diesel::insert_into(d::directory_events).values(&rows).execute(c)?;
        }
        return Ok(());
    }
    for e in events {
        let binds = [
            Bind::Int(at),
            Bind::Text(connection.to_string()),
            Bind::Text(customer.clone()),
            Bind::Text(e.event_type.to_string()),
            Bind::Text(e.resource_id.clone()),
            Bind::Text(tandem_scim::to_text(&e.data)),
        ];
        execute_fixed::<InsertEvent>(conn, &binds)?;
    }
    Ok(())
}

/// The events after `after` (from the oldest kept when `None`), up to
/// `limit`, in commit order; or, when the retention purge has deleted
/// events after `after` or the database has not reached it, `Err` with the
/// position the purge has deleted through, if it ever ran.
pub fn after(
    conn: &mut AnyConnection,
    from: Option<Cursor>,
    limit: i64,
) -> Result<Result<Vec<EventRow>, Option<Position>>, StoreError> {
    let stamp = from.and_then(|c| c.stamp);
    let from = from.map(|c| c.position);
    let after = from.unwrap_or_default();
    let rows: Vec<EventRow> = if is_postgres(conn) {
        load_fixed::<PgAfter, _>(conn, &[Bind::Int(after.txid), Bind::Int(after.seq), Bind::Int(limit)])?
    } else {
        load_fixed::<SqliteAfter, _>(conn, &[Bind::Int(after.seq), Bind::Int(limit)])?
    };
    // Read after the rows: a purge that ran meanwhile is seen.
    if from.is_none() {
        return Ok(Ok(rows));
    }
    let mark = purged_through(conn)?;
    if mark.is_some_and(|m| after < m) || !reached(conn, after, mark)? {
        return Ok(Err(mark));
    }
    // The event the cursor names, as it was: gone though not purged, or
    // another event in its place, the database went back to an older state.
    if let Some(stamp) = stamp {
        let held: Vec<Number> = load_fixed::<StampAt, _>(conn, &[Bind::Int(after.txid), Bind::Int(after.seq)])?;
        let purged = mark.is_some_and(|m| after <= m);
        if !purged && held.first().map(|r| r.n) != Some(stamp) {
            return Ok(Err(mark));
        }
    }
    Ok(Ok(rows))
}

/// Whether the database has reached `position`: not a position of the
/// future (see the module's doc); `mark` is the purge's.
fn reached(conn: &mut AnyConnection, position: Position, mark: Option<Position>) -> Result<bool, StoreError> {
    if is_postgres(conn) {
        return Ok(position.txid < number::<PgNextTxid>(conn)?);
    }
    if position.txid != 0 {
        return Ok(false);
    }
    let newest = number::<SqliteMaxSeq>(conn)?.max(mark.map_or(0, |m| m.seq));
    Ok(position.seq <= newest)
}

/// PostgreSQL: when the feed was brought over from another server by a
/// dump and restore or logical replication (an event, the purge's mark or
/// an endpoint's position carries a transaction id this server has not
/// reached: see `moved_here`), gives every event with a
/// transaction id, and the positions among them (the purge's mark, the
/// webhook endpoints'), transaction id 0, so that they come before every
/// event made here, in their order (cursors from before the move are
/// refused as expired). All of them, not only those past this server's
/// ids: its range may overlap the old server's. In one transaction: a
/// reader never sees half of it. Run at start, before this server's nodes
/// write events. Returns how many events it moved; nothing on SQLite.
pub fn renumber_moved(conn: &mut AnyConnection) -> Result<usize, StoreError> {
    if !is_postgres(conn) {
        return Ok(0);
    }
    conn.transaction(|c| {
        // The positions first, read against the events' old ones: the purge's
        // mark, and the webhook endpoints', so what they have not had yet is
        // delivered and nothing they had is again.
        execute_fixed::<PgRenumberMovedMark>(c, &[])?;
        execute_fixed::<PgRenumberMovedEndpoints>(c, &[])?;
        let moved = execute_fixed::<PgRenumberMoved>(c, &[])?;
        execute_fixed::<PgRenumberMovedSigns>(c, &[])?;
        Ok(moved)
    })
}

/// How far the retention purge has deleted, if it ever has.
pub fn purged_through(conn: &mut AnyConnection) -> Result<Option<Position>, StoreError> {
    let rows: Vec<PositionRow> = load_fixed::<PurgedThrough, _>(conn, &[])?;
    Ok(rows.into_iter().next().map(|r| Position { txid: r.txid, seq: r.seq }))
}

/// The position of the newest event a read can return now (on PostgreSQL,
/// committed and older than every transaction still running); the purge's
/// mark when none is left; `None` when there never was one.
pub fn latest(conn: &mut AnyConnection) -> Result<Option<Position>, StoreError> {
    Ok(latest_cursor(conn)?.map(|c| c.position))
}

/// [`latest`] as a reader's cursor: the newest event's, or the purge's
/// mark without a stamp.
pub fn latest_cursor(conn: &mut AnyConnection) -> Result<Option<Cursor>, StoreError> {
    let rows: Vec<AgedPosition> =
        if is_postgres(conn) { load_fixed::<PgLast, _>(conn, &[])? } else { load_fixed::<SqliteLast, _>(conn, &[])? };
    match rows.into_iter().next() {
        Some(r) => Ok(Some(Cursor { position: Position { txid: r.txid, seq: r.seq }, stamp: Some(r.created_at) })),
        None => Ok(purged_through(conn)?.map(|position| Cursor { position, stamp: None })),
    }
}

/// Deletes, oldest first in feed order, up to `limit` events made before
/// `before`, stopping at the first one made since (so what is left is
/// always a tail of the feed), on SQLite never deleting the newest (the
/// next `seq` follows it; on PostgreSQL the purge mark stands in for a
/// feed emptied), and records how far it got; returns how many it deleted.
pub fn purge_older(conn: &mut AnyConnection, before: DateTime<Utc>, limit: i64) -> Result<usize, StoreError> {
    let postgres = is_postgres(conn);
    let oldest: Vec<AgedPosition> = if postgres {
        load_fixed::<PgOldest, _>(conn, &[Bind::Int(limit)])?
    } else {
        load_fixed::<SqliteOldest, _>(conn, &[Bind::Int(limit)])?
    };
    let cutoff = crate::micros(before);
    let mut old: Vec<&AgedPosition> = oldest.iter().take_while(|r| r.created_at < cutoff).collect();
    // On SQLite the newest event stays: the next `seq` is the largest kept plus one.
    if !postgres && !old.is_empty() {
        let newest = number::<SqliteMaxSeq>(conn)?;
        if old.last().is_some_and(|r| r.seq >= newest) {
            old.pop();
        }
    }
    let Some(last) = old.last() else {
        return Ok(0);
    };
    let deleted = if postgres {
        execute_fixed::<PgDeleteThrough>(conn, &[Bind::Int(last.txid), Bind::Int(last.seq)])?
    } else {
        execute_fixed::<SqliteDeleteThrough>(conn, &[Bind::Int(last.seq)])?
    };
    execute_fixed::<MarkPurged>(conn, &[Bind::Int(last.txid), Bind::Int(last.seq)])?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn event(id: &str) -> NewEvent {
        NewEvent { event_type: "user.created", resource_id: id.to_string(), data: json!({"id": id}) }
    }

    /// SQLite: the next `seq` is the largest kept plus one, so the purge
    /// keeps the newest event even when every event is old and they fill a
    /// batch; a cursor before what it deleted, or one the database has not
    /// reached, is refused.
    #[test]
    fn the_purge_keeps_the_newest_event_so_no_position_is_handed_out_twice() {
        let (store, _dir) = crate::test_store();
        let old = at("2026-01-01T00:00:00Z");
        let connection = store
            .write_blocking(move |c| Ok(crate::scim_connections::create(c, "acme", None, "reject", old)?.0.id))
            .unwrap_or_else(|e| panic!("{e}"));
        let add = |id: &'static str| {
            let connection = connection.clone();
            store.write_blocking(move |c| record(c, &connection, old, &[event(id)])).unwrap_or_else(|e| panic!("{e}"))
        };
        add("u1");
        add("u2");
        let purge = |limit| store.write_blocking(move |c| purge_older(c, at("2026-06-01T00:00:00Z"), limit));
        assert_eq!(purge(2).unwrap_or_else(|e| panic!("{e}")), 1);
        assert_eq!(purge(2).unwrap_or_else(|e| panic!("{e}")), 0);
        add("u3");
        let read = |from: Position| {
            store
                .read_blocking(move |c| after(c, Some(Cursor { position: from, stamp: None }), 10))
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let ids = |rows: Vec<EventRow>| rows.into_iter().map(|r| (r.seq, r.resource_id)).collect::<Vec<_>>();
        let p = |txid, seq| Position { txid, seq };
        assert_eq!(read(p(0, 1)).map(ids), Ok(vec![(2, "u2".to_string()), (3, "u3".to_string())]));
        assert_eq!(read(p(0, 2)).map(ids), Ok(vec![(3, "u3".to_string())]));
        assert_eq!(read(p(0, 3)).map(ids), Ok(vec![]));
        // Before the purge's mark; past the newest; a PostgreSQL position.
        for refused in [p(0, 0), p(0, 4), p(5, 1)] {
            assert_eq!(read(refused).map(ids), Err(Some(p(0, 1))), "{refused:?}");
        }
    }

    /// A webhook endpoint of every customer and type at `at`.
    fn endpoint_at(id: &str, at: Position) -> crate::webhooks::WebhookEndpointRow {
        let url = "https://hooks.example.com/a".to_string();
        crate::webhooks::WebhookEndpointRow::new(id.into(), url, "x".into(), (None, None), at, 0)
    }

    /// PostgreSQL: events moved from another server keep their feed order
    /// (txid, seq) under transaction id 0, where seq alone orders them, and
    /// the positions among them (an endpoint's cursor, the purge's mark)
    /// stay where they were, so an endpoint still gets what it has not had.
    /// All of them move, also those whose ids this server has passed
    /// already (O: its range overlaps the old server's), else a position
    /// at O would skip the others.
    #[test]
    fn moved_events_keep_their_order_and_positions_among_them_their_place() {
        use diesel::RunQueryDsl;
        let (store, dir) = crate::test_store_any_backend();
        let crate::TestDir::Postgres(..) = &dir else { return };
        const T: i64 = 9_000_000_000_000;
        let p = |txid, seq| Position { txid, seq };
        store
            .write_blocking(|c| {
                // In feed order A (T, 6), B (T+1, 5), C (T+2, 4): a transaction
                // that took its id first can insert its event after another's.
                for (txid, seq, id) in [(1, 2, "O"), (T, 6, "A"), (T + 1, 5, "B"), (T + 2, 4, "C")] {
                    diesel::sql_query(format!(
                        "INSERT INTO directory_events (txid, seq, created_at, scim_connection_id, customer_id, \
                         event_type, resource_id, data) VALUES ({txid}, {seq}, 0, 'c', 'acme', 'user.created', '{id}', '{{}}')"
                    ))
                    .execute(c)?;
                }
                diesel::sql_query("INSERT INTO directory_event_purges (id, txid, seq) VALUES (1, 1, 1)").execute(c)?;
                crate::webhooks::insert(c, &endpoint_at("had-a", p(T, 6)))?;
                crate::webhooks::insert(c, &endpoint_at("had-o", p(1, 2)))?;
                crate::webhooks::insert(c, &endpoint_at("had-b", p(T + 1, 6)))
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.write_blocking(renumber_moved).unwrap_or_else(|e| panic!("{e}")), 4);
        let ids = |from: Position| {
            let rows = store
                .read_blocking(move |c| after(c, Some(Cursor { position: from, stamp: None }), 10))
                .unwrap_or_else(|e| panic!("{e}"));
            rows.unwrap_or_else(|e| panic!("refused: {e:?}")).into_iter().map(|r| r.resource_id).collect::<Vec<_>>()
        };
        let cursor = |id: &'static str| {
            let row = store.read_blocking(move |c| crate::webhooks::get(c, id)).unwrap_or_else(|e| panic!("{e}"));
            row.unwrap_or_else(|| panic!("no endpoint {id}")).cursor()
        };
        assert_eq!(cursor("had-a"), p(0, 4));
        assert_eq!(ids(cursor("had-a")), ["B", "C"]);
        assert_eq!(ids(cursor("had-b")), ["C"]);
        assert_eq!(ids(cursor("had-o")), ["A", "B", "C"]);
        let mark = store.read_blocking(purged_through).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mark, Some(p(0, 1)), "before the first moved event");
        assert_eq!(ids(p(0, 1)), ["O", "A", "B", "C"]);
        // Done once: at the next start nothing has moved.
        assert_eq!(store.write_blocking(renumber_moved).unwrap_or_else(|e| panic!("{e}")), 0);
    }

    /// PostgreSQL: a feed the purge emptied before the move still has the
    /// purge's mark and the endpoints' positions at the old server's ids:
    /// they are brought before every new event too, so the events this
    /// server makes are read and delivered after them.
    #[test]
    fn an_emptied_feeds_mark_and_positions_are_moved_too() {
        use diesel::RunQueryDsl;
        let (store, dir) = crate::test_store_any_backend();
        let crate::TestDir::Postgres(..) = &dir else { return };
        const T: i64 = 9_000_000_000_000;
        let p = |txid, seq| Position { txid, seq };
        store
            .write_blocking(|c| {
                diesel::sql_query(format!("INSERT INTO directory_event_purges (id, txid, seq) VALUES (1, {T}, 7)"))
                    .execute(c)?;
                crate::webhooks::insert(c, &endpoint_at("kept-up", p(T, 7)))
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.write_blocking(renumber_moved).unwrap_or_else(|e| panic!("{e}")), 0, "no event to move");
        let mark = store.read_blocking(purged_through).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mark, Some(p(0, 7)));
        let row = store.read_blocking(|c| crate::webhooks::get(c, "kept-up")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(row.map(|r| r.cursor()), Some(p(0, 7)));
    }

    /// PostgreSQL: events this server writes while the renumbering runs
    /// (another node's, or this one's during a rolling start) are never
    /// taken for moved ones, whatever transaction ids they got meanwhile.
    #[test]
    fn events_written_during_a_renumbering_are_not_taken_for_moved_ones() {
        use diesel::RunQueryDsl;
        let (store, dir) = crate::test_store_any_backend();
        let crate::TestDir::Postgres(..) = &dir else { return };
        let now = at("2026-01-01T00:00:00Z");
        let connection = store
            .write_blocking(move |c| Ok(crate::scim_connections::create(c, "acme", None, "reject", now)?.0.id))
            .unwrap_or_else(|e| panic!("{e}"));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let connection = connection.clone();
                    store
                        .write_blocking(move |c| record(c, &connection, now, &[event("u")]))
                        .unwrap_or_else(|e| panic!("{e}"));
                }
            })
        };
        for _ in 0..200 {
            assert_eq!(store.write_blocking(renumber_moved).unwrap_or_else(|e| panic!("{e}")), 0);
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        writer.join().unwrap_or_else(|_| panic!("the writer failed"));
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let zero = store
            .read_blocking(|c| {
                Ok(diesel::sql_query("SELECT count(*) AS n FROM directory_events WHERE txid = 0").load::<N>(c)?)
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(zero.first().map(|z| z.n), Some(0));
    }

    /// The purge's mark only moves forward: a purge that finished after a
    /// later one (two nodes at once) does not take it back.
    #[test]
    fn the_purge_mark_never_moves_back() {
        let (store, _dir) = crate::test_store_any_backend();
        let mark = |txid, seq| {
            store
                .write_blocking(move |c| execute_fixed::<MarkPurged>(c, &[Bind::Int(txid), Bind::Int(seq)]))
                .unwrap_or_else(|e| panic!("{e}"));
            store.read_blocking(purged_through).unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(mark(0, 5), Some(Position { txid: 0, seq: 5 }));
        assert_eq!(mark(0, 3), Some(Position { txid: 0, seq: 5 }));
        assert_eq!(mark(0, 7), Some(Position { txid: 0, seq: 7 }));
    }

    /// A database restored from an older backup hands the positions after
    /// the backup out again, to other events: a cursor of an event the
    /// restore took away is refused (its stamp names another event, or
    /// none), not read past the events that fill the gap; one of an event
    /// still there reads on, as does one at the purge's mark.
    #[test]
    fn a_cursor_of_an_event_a_restore_took_away_is_refused() {
        use diesel::RunQueryDsl;
        let (store, _dir) = crate::test_store_any_backend();
        let connection = store
            .write_blocking(|c| {
                Ok(crate::scim_connections::create(c, "acme", None, "reject", at("2026-01-01T00:00:00Z"))?.0.id)
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let add = |id: &'static str, when: &str| {
            let (connection, when) = (connection.clone(), at(when));
            store.write_blocking(move |c| record(c, &connection, when, &[event(id)])).unwrap_or_else(|e| panic!("{e}"))
        };
        // On PostgreSQL an event shows once every transaction that began
        // before it has ended (other tests' too): a read waits for `want`.
        let settled = |from: Option<Cursor>, want: usize| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            loop {
                let rows = store.read_blocking(move |c| after(c, from, 10)).unwrap_or_else(|e| panic!("{e}"));
                match rows {
                    Ok(rows) if rows.len() < want && std::time::Instant::now() < deadline => {
                        std::thread::sleep(std::time::Duration::from_millis(50))
                    }
                    done => return done,
                }
            }
        };
        let read = |from: Cursor, want: usize| {
            settled(Some(from), want).map(|rows| rows.into_iter().map(|r| r.resource_id).collect::<Vec<_>>())
        };
        let all = |want: usize| settled(None, want).unwrap_or_else(|e| panic!("{e:?}"));
        add("u1", "2026-01-01T00:00:00Z");
        add("u2", "2026-07-01T00:00:01Z");
        add("u3", "2026-07-01T00:00:02Z");
        let before = all(3);
        let (u1, u2) = (before[0].cursor(), before[1].cursor());
        assert_eq!(Cursor::parse(&u2.text()), Some(u2));
        assert_eq!(read(u2, 1), Ok(vec!["u3".to_string()]));
        // Restored from a backup made after u1: u2 and u3 are gone, and new events come.
        let (txid, seq) = (u1.position.txid, u1.position.seq);
        store
            .write_blocking(move |c| {
                let sql =
                    format!("DELETE FROM directory_events WHERE txid > {txid} OR (txid = {txid} AND seq > {seq})");
                Ok(diesel::sql_query(sql).execute(c)?)
            })
            .unwrap_or_else(|e| panic!("{e}"));
        add("v2", "2026-07-02T00:00:00Z");
        add("v3", "2026-07-02T00:00:01Z");
        assert!(read(u2, 0).is_err(), "u2's cursor after the restore: {:?}", read(u2, 0));
        assert_eq!(read(u1, 2), Ok(vec!["v2".to_string(), "v3".to_string()]));
        let after_restore = all(3);
        assert!(after_restore.iter().all(|e| e.cursor() != u2), "no id is handed out again");
        // A cursor at the purge's mark reads on, though its event is gone.
        let purged = store.write_blocking(|c| purge_older(c, at("2026-06-01T00:00:00Z"), 10));
        assert_eq!(purged.unwrap_or_else(|e| panic!("{e}")), 1);
        assert_eq!(read(u1, 2), Ok(vec!["v2".to_string(), "v3".to_string()]));
    }

    #[test]
    fn a_cursor_reads_back_with_its_stamp_and_without_one() {
        for c in [
            Cursor { position: Position { txid: 0, seq: 17 }, stamp: Some(1_780_000_000_123_456) },
            Cursor { position: Position { txid: 9_123_456, seq: 3 }, stamp: Some(0) },
            Cursor { position: Position { txid: 0, seq: 17 }, stamp: None },
        ] {
            assert_eq!(Cursor::parse(&c.text()), Some(c), "{}", c.text());
        }
        assert_eq!(Cursor { position: Position { txid: 0, seq: 2 }, stamp: Some(36) }.text(), "0-2-10");
        for bad in ["", "0-1-", "0-1-A", "0-1-!", "0-1-2-3", "0-1-zzzzzzzzzzzzzz", "x-1-2"] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_cursor_reads_back_as_its_position_and_nothing_else_reads_as_one() {
        for p in [Position::default(), Position { txid: 0, seq: 17 }, Position { txid: 9_123_456, seq: i64::MAX }] {
            assert_eq!(Position::parse(&p.cursor()), Some(p));
        }
        for bad in ["", "-", "1", "1-", "-1", "a-1", "1-2-3", "+1-2", "1- 2", "99999999999999999999-1", "1-1e3"] {
            assert_eq!(Position::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn positions_order_by_transaction_then_sequence() {
        let p = |txid, seq| Position { txid, seq };
        assert!(p(5, 100) < p(6, 1));
        assert!(p(6, 1) < p(6, 2));
        assert!(Position::default() < p(0, 1));
    }
}
