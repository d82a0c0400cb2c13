//! The provisioning log: one row per SCIM request, with the operation it
//! amounted to and, for failures, attribute-level reasons.

use super::filter_sql::Bind;
use super::query::execute_fixed;
use crate::schema::provisioning_logs::dsl as l;
use crate::{AnyConnection, StoreError};
use diesel::prelude::*;

// One entry as a static statement that stays prepared (diesel builds an
// INSERT's text again on every call when the row has optional columns).
crate::fixed_sql!(
    InsertOne = "INSERT INTO provisioning_logs (id, scim_connection_id, created_at, request_id, method, path, operation, \
         resource_type, resource_id, user_name, status, detail, reasons) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
);

/// One SCIM request as recorded.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::schema::provisioning_logs)]
pub struct ProvisioningLog {
    pub id: String,
    pub scim_connection_id: String,
    pub created_at: i64,
    pub request_id: Option<String>,
    pub method: String,
    pub path: String,
    /// create, update, deactivate, reactivate, delete, read, skip or fail.
    pub operation: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub user_name: Option<String>,
    pub status: i32,
    pub detail: Option<String>,
    /// JSON array of `{"attribute", "reason"}`.
    pub reasons: String,
}

/// Records entries: on PostgreSQL many rows per statement (one round
/// trip); on SQLite, which runs in-process, one kept-prepared statement per
/// row (building a multi-row statement's text for each batch costs more).
pub fn insert(conn: &mut AnyConnection, entries: &[ProvisioningLog]) -> Result<(), StoreError> {
    if let (AnyConnection::Postgresql(c), true) = (&mut *conn, entries.len() > 1) {
        for chunk in entries.chunks(200) {
            diesel::insert_into(l::provisioning_logs).values(chunk).execute(c)?;
        }
        return Ok(());
    }
    for one in entries {
        execute_fixed::<InsertOne>(conn, &binds_of(one))?;
    }
    Ok(())
}

/// The values of [`InsertOne`] for `one`.
fn binds_of(one: &ProvisioningLog) -> Vec<Bind> {
    vec![
        Bind::Text(one.id.clone()),
        Bind::Text(one.scim_connection_id.clone()),
        Bind::Int(one.created_at),
        Bind::OptText(one.request_id.clone()),
        Bind::Text(one.method.clone()),
        Bind::Text(one.path.clone()),
        Bind::Text(one.operation.clone()),
        Bind::OptText(one.resource_type.clone()),
        Bind::OptText(one.resource_id.clone()),
        Bind::OptText(one.user_name.clone()),
        Bind::Int(i64::from(one.status)),
        Bind::OptText(one.detail.clone()),
        Bind::Text(one.reasons.clone()),
    ]
}

// A change's log entry and its one directory event in one statement: one
// round trip on PostgreSQL instead of two (−15 % of a create's throughput
// at concurrency 8 when they were two).
crate::fixed_sql!(
    InsertOneWithEvent = "WITH event AS (INSERT INTO directory_events (created_at, scim_connection_id, customer_id, \
         event_type, resource_id, data) SELECT ?, id, customer_id, ?, ?, ? FROM scim_connections WHERE id = ?) \
         INSERT INTO provisioning_logs (id, scim_connection_id, created_at, request_id, method, path, operation, \
         resource_type, resource_id, user_name, status, detail, reasons) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
);

/// Records a change: its log `entry` and the directory `events` of
/// `connection` it made at `at` (see [`crate::events::record`]), in the
/// caller's transaction.
pub fn insert_change(
    conn: &mut AnyConnection,
    entry: &ProvisioningLog,
    connection: &str,
    at: chrono::DateTime<chrono::Utc>,
    events: &[crate::events::NewEvent],
) -> Result<(), StoreError> {
    if let (AnyConnection::Postgresql(_), [event]) = (&*conn, events) {
        let mut binds = crate::events::insert_one_binds(connection, at, event);
        binds.extend(binds_of(entry));
        execute_fixed::<InsertOneWithEvent>(conn, &binds)?;
        return Ok(());
    }
    insert(conn, std::slice::from_ref(entry))?;
    crate::events::record(conn, connection, at, events)
}

/// Filters for listing.
#[derive(Clone, Debug, Default)]
pub struct LogQuery {
    pub scim_connection_id: Option<String>,
    pub operation: Option<String>,
    pub resource_id: Option<String>,
    pub user_name: Option<String>,
    pub status: Option<i32>,
    pub failed_only: bool,
    /// Return entries older than this id (newest first).
    pub before: Option<String>,
    pub limit: i64,
}

/// Entries matching `q`, newest first.
pub fn list(conn: &mut AnyConnection, q: &LogQuery) -> Result<Vec<ProvisioningLog>, StoreError> {
    let mut query =
        l::provisioning_logs.select(ProvisioningLog::as_select()).order(l::id.desc()).limit(q.limit).into_boxed();
    if let Some(c) = &q.scim_connection_id {
        query = query.filter(l::scim_connection_id.eq(c.clone()));
    }
    if let Some(o) = &q.operation {
        query = query.filter(l::operation.eq(o.clone()));
    }
    if let Some(r) = &q.resource_id {
        query = query.filter(l::resource_id.eq(r.clone()));
    }
    if let Some(u) = &q.user_name {
        // userName is case-insensitive in SCIM: an entry is found however the IdP wrote it.
        query = query.filter(crate::conn::lower(l::user_name).eq(u.to_lowercase()));
    }
    if let Some(s) = q.status {
        query = query.filter(l::status.eq(s));
    }
    if q.failed_only {
        query = query.filter(l::status.ge(400));
    }
    if let Some(b) = &q.before {
        query = query.filter(l::id.lt(b.clone()));
    }
    Ok(query.load(conn)?)
}
