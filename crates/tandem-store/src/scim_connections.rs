//! SCIM connections and their API keys: issue, rotate with a grace period,
//! expire, authenticate.

use crate::schema::scim_api_keys::dsl as k;
use crate::schema::scim_connections::dsl as s;
use crate::{from_micros, micros, AnyConnection, RowLock, StoreError};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use tandem_core::keys::{generate, hash_key, KeyKind};
use tandem_core::secret::Redacted;

/// A stored SCIM connection.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::schema::scim_connections)]
pub struct ScimConnectionRow {
    pub id: String,
    pub customer_id: String,
    pub api_key_ttl_days: Option<i64>,
    /// `reject` or `ignore`: what a group write naming unknown members gets.
    pub unknown_group_members: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A stored SCIM API key (its hash, never the key).
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::schema::scim_api_keys)]
pub struct ScimApiKeyRow {
    pub id: String,
    pub scim_connection_id: String,
    pub display_prefix: String,
    pub key_hash: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// When a rotation's grace period ends this key's validity.
    pub retired_at: Option<i64>,
    /// When the key last authenticated a request, to the minute.
    pub last_used_at: Option<i64>,
}

impl ScimApiKeyRow {
    /// Whether a use at `now` is to be recorded (see [`crate::use_due`]).
    pub fn use_due(&self, now: DateTime<Utc>) -> bool {
        crate::use_due(self.last_used_at, now)
    }

    /// Until when the key works: the earlier of its expiry and the end of
    /// a rotation's grace; `None` while it has neither.
    pub fn works_until(&self) -> Option<i64> {
        match (self.expires_at, self.retired_at) {
            (Some(expires), Some(retired)) => Some(expires.min(retired)),
            (expires, retired) => expires.or(retired),
        }
    }

    /// The expiry as a timestamp.
    pub fn expires(&self) -> Option<DateTime<Utc>> {
        self.expires_at.map(from_micros)
    }
}

/// Why a presented SCIM key was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyRejection {
    /// No such key for this connection.
    Unknown,
    /// The key expired at this time.
    Expired(DateTime<Utc>),
    /// The key was rotated out; its grace period ended at this time.
    Retired(DateTime<Utc>),
}

fn customer_taken(customer_id: &str) -> StoreError {
    StoreError::Conflict(format!("customer_id {customer_id:?} already has a SCIM connection"))
}

/// Creates a connection with its first key; returns both and the key's plaintext.
pub fn create(
    conn: &mut AnyConnection,
    customer_id: &str,
    ttl_days: Option<i64>,
    unknown_group_members: &str,
    now: DateTime<Utc>,
) -> Result<(ScimConnectionRow, ScimApiKeyRow, Redacted<String>), StoreError> {
    if get_by_customer(conn, customer_id)?.is_some() {
        return Err(customer_taken(customer_id));
    }
    let row = ScimConnectionRow {
        id: tandem_core::new_id(),
        customer_id: customer_id.to_string(),
        api_key_ttl_days: ttl_days,
        unknown_group_members: unknown_group_members.to_string(),
        created_at: micros(now),
        updated_at: micros(now),
    };
    diesel::insert_into(s::scim_connections)
        .values(&row)
        .execute(conn)
        .map_err(|e| StoreError::from(e).unique_as(|| customer_taken(customer_id)))?;
    let (key, plaintext) = issue_key(conn, &row, now)?;
    Ok((row, key, plaintext))
}

fn issue_key(
    conn: &mut AnyConnection,
    row: &ScimConnectionRow,
    now: DateTime<Utc>,
) -> Result<(ScimApiKeyRow, Redacted<String>), StoreError> {
    let generated = generate(KeyKind::Scim);
    let key = ScimApiKeyRow {
        id: tandem_core::new_id(),
        scim_connection_id: row.id.clone(),
        display_prefix: generated.display_prefix,
        key_hash: generated.hash,
        created_at: micros(now),
        expires_at: row.api_key_ttl_days.map(|d| micros(now + Duration::days(d))),
        retired_at: None,
        last_used_at: None,
    };
    diesel::insert_into(k::scim_api_keys).values(&key).execute(conn)?;
    Ok((key, generated.plaintext))
}

/// A connection by id.
pub fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<ScimConnectionRow>, StoreError> {
    Ok(on_backend!(conn, |c| s::scim_connections
        .filter(s::id.eq(id))
        .select(ScimConnectionRow::as_select())
        .first(c)
        .optional())?)
}

/// A connection by id, locked until the end of the transaction on
/// PostgreSQL (`FOR NO KEY UPDATE`), so that concurrent changes to it and
/// its keys (a PATCH, a rotation) run one after the other, each on the
/// other's result, and its delete waits for them. The lock lets SCIM writes
/// under the connection go on meanwhile (they hold it `FOR KEY SHARE`, see
/// [`get_for_group_write`]): with `FOR UPDATE` an admin's PATCH or key
/// rotation waited for every group write under way, a PATCH of thousands
/// of members included. A new `customer_id` (a unique column) makes the
/// UPDATE itself take the stronger lock. SQLite's writes are one at a time
/// already.
fn get_for_change(conn: &mut AnyConnection, id: &str) -> Result<Option<ScimConnectionRow>, StoreError> {
    get_locked(conn, id, RowLock::NoKeyUpdate)
}

/// [`get`] for a SCIM group write, as its first statement: on PostgreSQL
/// the connection's row stays locked (`FOR KEY SHARE`, which other SCIM
/// writes share) until the write ends. A connection's [`delete`] locks the
/// row first, so it waits for the group writes under way, and those that
/// come later wait for it, then find the connection gone. A group write
/// locks the groups it nests as members (see `scim::groups`): holding one
/// while the delete held another deadlocked the two.
pub fn get_for_group_write(conn: &mut AnyConnection, id: &str) -> Result<Option<ScimConnectionRow>, StoreError> {
    get_locked(conn, id, RowLock::KeyShare)
}

fn get_locked(conn: &mut AnyConnection, id: &str, lock: RowLock) -> Result<Option<ScimConnectionRow>, StoreError> {
    let AnyConnection::Postgresql(c) = conn else { return get(conn, id) };
    let query = s::scim_connections.filter(s::id.eq(id)).select(ScimConnectionRow::as_select());
    Ok(first_locked!(query, lock, c)?)
}

/// A connection by customer id.
pub fn get_by_customer(conn: &mut AnyConnection, customer_id: &str) -> Result<Option<ScimConnectionRow>, StoreError> {
    Ok(on_backend!(conn, |c| s::scim_connections
        .filter(s::customer_id.eq(customer_id))
        .select(ScimConnectionRow::as_select())
        .first(c)
        .optional())?)
}

/// A page of connections ordered by id.
pub fn list(conn: &mut AnyConnection, after: Option<&str>, limit: i64) -> Result<Vec<ScimConnectionRow>, StoreError> {
    let mut q = s::scim_connections.select(ScimConnectionRow::as_select()).order(s::id.asc()).limit(limit).into_boxed();
    if let Some(after) = after {
        q = q.filter(s::id.gt(after.to_string()));
    }
    Ok(q.load(conn)?)
}

/// The connection's current key (the newest one not rotated out).
pub fn current_key(conn: &mut AnyConnection, connection_id: &str) -> Result<Option<ScimApiKeyRow>, StoreError> {
    Ok(k::scim_api_keys
        .filter(k::scim_connection_id.eq(connection_id))
        .filter(k::retired_at.is_null())
        .order(k::id.desc())
        .select(ScimApiKeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// Keys rotated out that still work until their grace period ends.
pub fn keys_in_grace(
    conn: &mut AnyConnection,
    connection_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<ScimApiKeyRow>, StoreError> {
    Ok(k::scim_api_keys
        .filter(k::scim_connection_id.eq(connection_id))
        .filter(k::retired_at.gt(micros(now)))
        .order(k::id.desc())
        .select(ScimApiKeyRow::as_select())
        .load(conn)?)
}

/// Changes the connection's customer id and/or key lifetime. A new lifetime
/// also re-dates the current key (from its issue time). Returns the row
/// written and, when its customer id changed, the one it had.
pub fn update(
    conn: &mut AnyConnection,
    id: &str,
    customer_id: Option<&str>,
    ttl_days: Option<Option<i64>>,
    unknown_group_members: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<(ScimConnectionRow, Option<String>)>, StoreError> {
    let Some(mut row) = get_for_change(conn, id)? else { return Ok(None) };
    let renamed = customer_id.is_some_and(|c| c != row.customer_id).then(|| row.customer_id.clone());
    if let Some(customer) = customer_id {
        if let Some(other) = get_by_customer(conn, customer)? {
            if other.id != id {
                return Err(customer_taken(customer));
            }
        }
        row.customer_id = customer.to_string();
    }
    if let Some(ttl) = ttl_days {
        row.api_key_ttl_days = ttl;
        if let Some(key) = current_key(conn, id)? {
            let expires = ttl.map(|d| key.created_at + Duration::days(d).num_microseconds().unwrap_or(i64::MAX));
            diesel::update(k::scim_api_keys.filter(k::id.eq(&key.id))).set(k::expires_at.eq(expires)).execute(conn)?;
        }
    }
    if let Some(mode) = unknown_group_members {
        row.unknown_group_members = mode.to_string();
    }
    row.updated_at = micros(now);
    diesel::update(s::scim_connections.filter(s::id.eq(id)))
        .set((
            s::customer_id.eq(&row.customer_id),
            s::api_key_ttl_days.eq(row.api_key_ttl_days),
            s::unknown_group_members.eq(&row.unknown_group_members),
            s::updated_at.eq(row.updated_at),
        ))
        .execute(conn)
        .map_err(|e| StoreError::from(e).unique_as(|| customer_taken(&row.customer_id)))?;
    Ok(Some((row, renamed)))
}

/// Issues a new key; the previous current key keeps working for `grace`
/// (never past its own expiry). Returns the new key and its plaintext.
pub fn rotate_key(
    conn: &mut AnyConnection,
    id: &str,
    grace: Duration,
    now: DateTime<Utc>,
) -> Result<Option<(ScimApiKeyRow, Redacted<String>)>, StoreError> {
    let Some(row) = get_for_change(conn, id)? else { return Ok(None) };
    let retire_at = micros(now + grace);
    // The current key starts its grace now; keys already in grace keep
    // theirs only when it ends sooner: a rotation with a short grace (0 for
    // a key that leaked) also cuts off the keys an earlier, longer one left working.
    diesel::update(
        k::scim_api_keys
            .filter(k::scim_connection_id.eq(id))
            .filter(k::retired_at.is_null().or(k::retired_at.gt(retire_at))),
    )
    .set(k::retired_at.eq(retire_at))
    .execute(conn)?;
    issue_key(conn, &row, now).map(Some)
}

/// What [`rotate_key_if_current`] did.
pub enum Rotated {
    /// The new key (its row, and the key, shown once).
    Done(ScimApiKeyRow, Redacted<String>),
    /// The current key was no longer the one named: nothing rotated.
    NotCurrent,
    NoConnection,
}

/// [`rotate_key`], only while the connection's current key is `expected`
/// (its id; empty when there is none). The check runs under the row's lock
/// (PostgreSQL; SQLite's writes are one at a time): of two rotations sent
/// from one form at once (a double click, two admins), one rotates and the
/// other finds the key replaced.
pub fn rotate_key_if_current(
    conn: &mut AnyConnection,
    id: &str,
    expected: &str,
    grace: Duration,
    now: DateTime<Utc>,
) -> Result<Rotated, StoreError> {
    if get_for_change(conn, id)?.is_none() {
        return Ok(Rotated::NoConnection);
    }
    if current_key(conn, id)?.map(|k| k.id).unwrap_or_default() != expected {
        return Ok(Rotated::NotCurrent);
    }
    Ok(match rotate_key(conn, id, grace, now)? {
        Some((row, key)) => Rotated::Done(row, key),
        None => Rotated::NoConnection,
    })
}

/// Checks a presented key against a connection.
pub fn authenticate(
    conn: &mut AnyConnection,
    connection_id: &str,
    presented: &str,
    now: DateTime<Utc>,
) -> Result<Result<ScimApiKeyRow, KeyRejection>, StoreError> {
    let key = find_key(conn, &hash_key(presented))?;
    Ok(check_key(key, connection_id, now))
}

/// The stored key with this hash, whatever its state.
pub fn find_key(conn: &mut AnyConnection, hash: &str) -> Result<Option<ScimApiKeyRow>, StoreError> {
    Ok(on_backend!(conn, |c| k::scim_api_keys
        .filter(k::key_hash.eq(hash))
        .select(ScimApiKeyRow::as_select())
        .first(c)
        .optional())?)
}

/// Records that the SCIM key `id` authenticated a request at `now`.
pub fn record_key_use(conn: &mut AnyConnection, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    diesel::update(k::scim_api_keys.filter(k::id.eq(id))).set(k::last_used_at.eq(micros(now))).execute(conn)?;
    Ok(())
}

/// A connection's keys as the metrics show them.
#[derive(Clone, Debug)]
pub struct KeySummary {
    pub scim_connection_id: String,
    pub customer_id: String,
    /// The current key's expiry (`None`: it never expires).
    pub expires_at: Option<i64>,
    /// The latest use of any of the connection's keys, current, rotated
    /// out or expired: when its IdP last authenticated.
    pub last_used_at: Option<i64>,
    /// Whether the IdP still sends a key a rotation left working: one that
    /// still works was used since the current key was issued, and the
    /// current key not since. It fails when the grace period ends.
    pub on_previous_key: bool,
}

/// Every connection that has a current key (the newest not rotated out),
/// in connection order, with its keys as of `now`.
pub fn key_summaries(conn: &mut AnyConnection, now: DateTime<Utc>) -> Result<Vec<KeySummary>, StoreError> {
    let rows: Vec<(String, String, ScimApiKeyRow)> = k::scim_api_keys
        .inner_join(s::scim_connections)
        .order((s::id.asc(), k::retired_at.is_not_null().asc(), k::id.desc()))
        .select((s::id, s::customer_id, ScimApiKeyRow::as_select()))
        .load(conn)?;
    let now = micros(now);
    let mut out: Vec<KeySummary> = Vec::new();
    let mut current: Option<ScimApiKeyRow> = None;
    for (connection, customer_id, key) in rows {
        if out.last().is_none_or(|l| l.scim_connection_id != connection) {
            // A connection's first row is its current key, when it has one.
            if key.retired_at.is_some() {
                continue;
            }
            out.push(KeySummary {
                scim_connection_id: connection,
                customer_id,
                expires_at: key.expires_at,
                last_used_at: key.last_used_at,
                on_previous_key: false,
            });
            current = Some(key);
            continue;
        }
        let (Some(summary), Some(cur)) = (out.last_mut(), current.as_ref()) else { continue };
        summary.last_used_at = summary.last_used_at.max(key.last_used_at);
        let works = key.retired_at.is_some() && key.works_until().is_none_or(|until| until > now);
        if works
            && key
                .last_used_at
                .is_some_and(|used| used >= cur.created_at && cur.last_used_at.is_none_or(|cur_used| used > cur_used))
        {
            summary.on_previous_key = true;
        }
    }
    Ok(out)
}

/// Whether a stored key (or none) lets a request act on `connection_id` at `now`.
pub fn check_key(
    key: Option<ScimApiKeyRow>,
    connection_id: &str,
    now: DateTime<Utc>,
) -> Result<ScimApiKeyRow, KeyRejection> {
    let now_us = micros(now);
    match key {
        Some(key) if key.scim_connection_id != connection_id => Err(KeyRejection::Unknown),
        None => Err(KeyRejection::Unknown),
        Some(key) => match (key.expires_at, key.retired_at) {
            (Some(exp), _) if exp <= now_us => Err(KeyRejection::Expired(from_micros(exp))),
            (_, Some(ret)) if ret <= now_us => Err(KeyRejection::Retired(from_micros(ret))),
            _ => Ok(key),
        },
    }
}

/// Deletes a connection with its keys and SCIM data; returns whether it existed.
///
/// Only the connection's row is deleted: its keys, users and groups go with
/// it (`ON DELETE CASCADE`), and the groups' memberships with them. On
/// PostgreSQL the locks are taken in an order no SCIM write reverses:
/// - the connection's row first: it waits for the group writes and user
///   creates under way, which lock it before anything else
///   ([`get_for_group_write`]; a user's insert locks it before it takes
///   its userName); later ones wait for the delete, holding nothing it
///   needs, then find the connection gone;
/// - then its groups, then its users, in id order: a group DELETE, or a user
///   PATCH or DELETE, which lock their own row and never the connection's,
///   finish before the cascade reaches them.
///
/// In other orders the delete deadlocked with concurrent SCIM writes, and
/// PostgreSQL aborted one of them (a 500). SQLite's writes are one at a
/// time already.
pub fn delete(conn: &mut AnyConnection, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let postgres = matches!(conn, AnyConnection::Postgresql(_));
    if postgres && get_locked(conn, id, RowLock::Update)?.is_none() {
        return Ok(false);
    }
    if let AnyConnection::Postgresql(c) = conn {
        use crate::schema::{scim_groups as g, scim_users as u};
        g::table.filter(g::scim_connection_id.eq(id)).select(g::id).order(g::id).for_update().load::<String>(c)?;
        u::table.filter(u::scim_connection_id.eq(id)).select(u::id).order(u::id).for_update().load::<String>(c)?;
    }
    // Recorded while the connection (its customer ID) is still there; nothing when it is not.
    let event = crate::events::NewEvent {
        event_type: "scim_connection.deleted",
        resource_id: id.to_string(),
        data: serde_json::json!({"id": id}),
    };
    crate::events::record(conn, id, now, &[event])?;
    Ok(diesel::delete(s::scim_connections.filter(s::id.eq(id))).execute(conn)? > 0)
}
