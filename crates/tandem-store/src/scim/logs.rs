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
        let binds = [
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
        ];
        execute_fixed::<InsertOne>(conn, &binds)?;
    }
    Ok(())
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
        query = query.filter(l::user_name.eq(u.clone()));
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

/// A background writer for entries that need not share a transaction with
/// a change (reads and refusals): callers never wait on the database for
/// them, and entries are written in batches.
#[derive(Clone)]
pub struct LogSink {
    tx: std::sync::mpsc::SyncSender<Msg>,
    thread: std::sync::Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
    /// The writer thread, woken early by a flush or close.
    writer: Option<std::thread::Thread>,
}

enum Msg {
    Entry(Box<ProvisioningLog>),
    Flush(std::sync::mpsc::Sender<()>),
    Close,
}

/// How long the writer gathers entries after the first one of a batch. At
/// thousands of SCIM reads a second this turns a commit per entry or two
/// into one per few dozen (one commit cost ~25 µs of CPU per lookup); a
/// quiet server writes an entry this much later. A flush or close writes at
/// once. While it gathers, the writer sleeps instead of waiting on the
/// channel: a receiver blocked in `recv` is woken by every send, and was
/// (35 k wake-ups of this thread over 40 k lookups, each a futex call for
/// the request's worker and a context switch here).
const LINGER: std::time::Duration = std::time::Duration::from_millis(10);
/// Most entries written in one transaction.
const MAX_BATCH: usize = 1000;

impl LogSink {
    /// Starts the writer thread.
    pub fn start(store: crate::Store) -> LogSink {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(10_000);
        let spawned = std::thread::Builder::new().name("tandem-provisioning-log".into()).spawn(move || {
            let mut closing = false;
            while !closing {
                let Ok(first) = rx.recv() else { break };
                let deadline = std::time::Instant::now() + LINGER;
                let mut batch = Vec::new();
                let mut waiters = Vec::new();
                let mut next = Some(first);
                loop {
                    while let Some(msg) = next.take() {
                        match msg {
                            Msg::Entry(e) => batch.push(*e),
                            Msg::Flush(w) => waiters.push(w),
                            Msg::Close => closing = true,
                        }
                        if batch.len() < MAX_BATCH {
                            next = rx.try_recv().ok();
                        }
                    }
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if batch.len() >= MAX_BATCH || closing || !waiters.is_empty() || left.is_zero() {
                        break;
                    }
                    // Woken early only by a flush or close (or spuriously).
                    std::thread::park_timeout(left);
                    next = rx.try_recv().ok();
                }
                if !batch.is_empty() {
                    if let Err(e) = store.write_blocking(|c| insert(c, &batch)) {
                        tracing::error!(error = %e, lost = batch.len(), "could not write provisioning log entries");
                    }
                }
                for w in waiters {
                    let _ = w.send(());
                }
            }
        });
        let thread = match spawned {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::error!(error = %e, "could not start the provisioning log writer");
                None
            }
        };
        let writer = thread.as_ref().map(|h| h.thread().clone());
        LogSink { tx, thread: std::sync::Arc::new(std::sync::Mutex::new(thread)), writer }
    }

    /// Writes what is queued and stops the writer (at shutdown); entries
    /// recorded afterwards are dropped.
    pub fn close(&self) {
        let _ = self.tx.send(Msg::Close);
        self.wake();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// Queues an entry; when the queue is full the entry is dropped with an error log.
    pub fn record(&self, entry: ProvisioningLog) {
        match self.tx.try_send(Msg::Entry(Box::new(entry))) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(_)) => {
                tracing::error!("provisioning log queue full; an entry was dropped")
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                tracing::debug!("provisioning log closed; an entry was dropped")
            }
        }
    }

    /// Blocks until every entry queued before this call is written.
    pub fn flush(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            self.wake();
            let _ = rx.recv_timeout(std::time::Duration::from_secs(10));
        }
    }

    fn wake(&self) {
        if let Some(t) = &self.writer {
            t.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> ProvisioningLog {
        ProvisioningLog {
            id: tandem_core::new_id(),
            scim_connection_id: "conn-1".into(),
            created_at: n as i64,
            request_id: None,
            method: "GET".into(),
            path: format!("/Users/{n}"),
            operation: "read".into(),
            resource_type: Some("User".into()),
            resource_id: None,
            user_name: None,
            status: 200,
            detail: None,
            reasons: "[]".into(),
        }
    }

    fn stored(store: &crate::Store) -> usize {
        let q = LogQuery { limit: 10_000, ..LogQuery::default() };
        store.read_blocking(|c| list(c, &q)).unwrap().len()
    }

    #[test]
    fn a_flush_writes_what_was_recorded_before_it() {
        let (store, _dir) = crate::test_store();
        let sink = LogSink::start(store.clone());
        for n in 0..3 {
            sink.record(entry(n));
        }
        sink.flush();
        assert_eq!(stored(&store), 3);
        // More than one batch's worth, recorded faster than the writer lingers.
        for n in 0..MAX_BATCH + 5 {
            sink.record(entry(n));
        }
        sink.flush();
        assert_eq!(stored(&store), MAX_BATCH + 8);
        sink.close();
    }

    #[test]
    fn close_writes_the_entries_still_gathering() {
        let (store, _dir) = crate::test_store();
        let sink = LogSink::start(store.clone());
        sink.record(entry(1));
        sink.record(entry(2));
        sink.close();
        assert_eq!(stored(&store), 2);
        sink.record(entry(3)); // after close: dropped, not a panic
        assert_eq!(stored(&store), 2);
    }
}
