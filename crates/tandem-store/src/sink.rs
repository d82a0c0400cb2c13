//! Records written behind the requests that make them, in batches: the
//! provisioning log of SCIM reads and refusals, and a login's event (the
//! part its initiate records, and the part its completion records with the
//! SSO identity it saw). None shares a transaction with a change, and a
//! request never waits on the database for them; a flush (before they are
//! listed) or a shutdown writes what is queued at once. Lost on a kill:
//! what was not yet committed, normally the last [`LINGER`], more while the
//! database is slow.

use crate::scim::logs::{insert, ProvisioningLog};
use crate::sso::{self, LoginEvent, SsoUser};
use crate::{AnyConnection, StoreError};

/// One record to write.
enum Record {
    Provisioning(Box<ProvisioningLog>),
    LoginStart(Box<LoginEvent>),
    LoginEnd(Box<LoginEnd>),
}

/// What a login's completion records: its part of the login event, and
/// the SSO identity it saw (none when it failed before the IdP named one).
pub struct LoginEnd {
    pub sso_user: Option<SsoUser>,
    pub event: LoginEvent,
}

impl LoginEnd {
    /// Writes the SSO identity and the event's part, in the caller's transaction.
    pub fn write(&self, c: &mut AnyConnection) -> Result<(), StoreError> {
        if let Some(u) = &self.sso_user {
            sso::record_sso_user(c, u)?;
        }
        sso::save_event(c, &self.event)
    }
}

/// The records gathered for one transaction.
#[derive(Default)]
struct Batch {
    entries: Vec<ProvisioningLog>,
    /// Login starts (with no SSO user) and ends, in the order they were queued.
    logins: Vec<LoginEnd>,
}

impl Batch {
    fn push(&mut self, r: Record) {
        match r {
            Record::Provisioning(e) => self.entries.push(*e),
            Record::LoginStart(e) => self.logins.push(LoginEnd { sso_user: None, event: *e }),
            Record::LoginEnd(e) => self.logins.push(*e),
        }
    }

    fn len(&self) -> usize {
        self.entries.len() + self.logins.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows the batch writes: a login's end writes its event and, when
    /// it saw one, its SSO user.
    fn rows(&self) -> usize {
        self.len() + self.logins.iter().filter(|l| l.sso_user.is_some()).count()
    }

    /// Writes the batch in one transaction: provisioning entries together
    /// (one statement on PostgreSQL), then SSO users and login events one
    /// by one (a login's parts in the batch as one), each in the order of its key. Two nodes' batches then take
    /// their row locks in one order and cannot deadlock on PostgreSQL; the
    /// parts of an event merge, and an SSO user's sightings settle on the
    /// latest, whatever the order they are written in.
    fn write(&self, c: &mut AnyConnection) -> Result<(), StoreError> {
        insert(c, &self.entries)?;
        let mut users: Vec<&SsoUser> = self.logins.iter().filter_map(|l| l.sso_user.as_ref()).collect();
        users.sort_by(|a, b| (&a.oidc_client_id, &a.oidc_user_id).cmp(&(&b.oidc_client_id, &b.oidc_user_id)));
        for u in users {
            sso::record_sso_user(c, u)?;
        }
        let mut events: Vec<&LoginEvent> = self.logins.iter().map(|l| &l.event).collect();
        events.sort_by(|a, b| a.id.cmp(&b.id));
        // A login's two parts in one batch (its initiate's and its
        // completion's, in the order queued: the sort is stable) are merged
        // here by the database's rules and written as one row.
        for parts in events.chunk_by(|a, b| a.id == b.id) {
            match parts {
                [one] => sso::save_event(c, one)?,
                [first, rest @ ..] => {
                    let mut merged = (*first).clone();
                    for part in rest {
                        sso::merge_part(&mut merged, (*part).clone());
                    }
                    sso::save_event(c, &merged)?
                }
                [] => {}
            }
        }
        Ok(())
    }

    /// Writes each record in a transaction of its own (after the batch's
    /// failed), for at most [`RETRY_BUDGET`]: a statement error that is not
    /// one record's (a lock wait that timed out) would fail every retry, each
    /// after its own wait, and hold up flushes and shutdown. Returns how many
    /// rows were not written (see [`Batch::rows`]).
    fn write_each(&self, store: &crate::Store) -> usize {
        let until = std::time::Instant::now() + RETRY_BUDGET;
        let in_time = || std::time::Instant::now() < until;
        let mut written = 0;
        for e in self.entries.iter().take_while(|_| in_time()) {
            written += usize::from(store.write_behind(|c| insert(c, std::slice::from_ref(e))).is_ok());
        }
        // An event and the SSO user beside it are written apart: one refused loses only itself.
        for l in self.logins.iter().take_while(|_| in_time()) {
            written += usize::from(store.write_behind(|c| sso::save_event(c, &l.event)).is_ok());
            if let Some(u) = &l.sso_user {
                written += usize::from(store.write_behind(|c| sso::record_sso_user(c, u)).is_ok());
            }
        }
        self.rows() - written
    }
}

/// A background writer for records that need not share a transaction with
/// a change: callers never wait on the database for them, and they are
/// written in batches.
#[derive(Clone)]
pub struct LogSink {
    tx: std::sync::mpsc::SyncSender<Msg>,
    thread: std::sync::Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
    /// The writer thread, woken early by a flush or close.
    writer: Option<std::thread::Thread>,
    /// Login starts queued and not yet taken by the writer (see [`MAX_QUEUED_LOGIN_STARTS`]).
    login_starts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// How many times the writer has tried to write a batch whole (a retry
    /// included), so a test can wait for the retry instead of timing it.
    #[cfg(test)]
    attempts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// How long the records of a failed batch are retried one by one.
#[cfg(not(test))]
const RETRY_BUDGET: std::time::Duration = std::time::Duration::from_secs(1);
/// Longer in tests: a writer thread held up on a busy machine would otherwise
/// skip the records a test expects written.
#[cfg(test)]
const RETRY_BUDGET: std::time::Duration = std::time::Duration::from_secs(30);

/// Records queued at most; more are dropped with an error log.
const QUEUE: usize = 10_000;
/// Login starts queued at most, so that a flood of initiates (anyone can
/// start logins through an app's sign-in page) leaves room in the queue for
/// the provisioning log. A login start dropped loses its event's first steps
/// only: its completion still writes its own part.
const MAX_QUEUED_LOGIN_STARTS: usize = QUEUE / 2;

enum Msg {
    Record(Record),
    Flush(std::sync::mpsc::Sender<()>),
    Close,
}

/// How long the writer gathers records after the first one of a batch. At
/// thousands of SCIM reads a second this turns a commit per entry or two
/// into one per few dozen (one commit cost ~25 µs of CPU per lookup); a
/// quiet server writes an entry this much later. A flush or close writes at
/// once. While it gathers, the writer sleeps instead of waiting on the
/// channel: a receiver blocked in `recv` is woken by every send, and was
/// (35 k wake-ups of this thread over 40 k lookups, each a futex call for
/// the request's worker and a context switch here).
const LINGER: std::time::Duration = std::time::Duration::from_millis(10);
/// Most records written in one transaction (which holds the write lock a
/// small write of a request may wait for: a few hundred rows keep that short).
const MAX_BATCH: usize = 256;

impl LogSink {
    /// Starts the writer thread.
    pub fn start(store: crate::Store) -> LogSink {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(QUEUE);
        let login_starts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let taken = login_starts.clone();
        #[cfg(test)]
        let attempts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        #[cfg(test)]
        let tried = attempts.clone();
        let spawned = std::thread::Builder::new().name("tandem-log-writer".into()).spawn(move || {
            let mut closing = false;
            while !closing {
                let Ok(first) = rx.recv() else { break };
                let deadline = std::time::Instant::now() + LINGER;
                let mut batch = Batch::default();
                let mut waiters = Vec::new();
                let mut next = Some(first);
                loop {
                    while let Some(msg) = next.take() {
                        match msg {
                            Msg::Record(r) => {
                                if let Record::LoginStart(_) = r {
                                    taken.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                                }
                                batch.push(r)
                            }
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
                    #[cfg(test)]
                    tried.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if let Err(e) = store.write_behind(|c| batch.write(c)) {
                        // The database refused a statement: one record may be
                        // at fault, and need not take the batch with it. (When
                        // it is unavailable, each retry would wait for it; see
                        // also write_each's time limit.)
                        // One the database could not do now (a deadlock, SQLite
                        // locked by another process past its busy timeout) is
                        // tried again whole first, then record by record. So is
                        // one on a connection that was lost (PostgreSQL
                        // restarted: the pool drops it, and the second try
                        // takes a fresh one), once: no one would retry it.
                        let lost = match e {
                            StoreError::Busy(_) | StoreError::Unavailable(_) => {
                                #[cfg(test)]
                                tried.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                match store.write_behind(|c| batch.write(c)) {
                                    Ok(()) => 0,
                                    Err(_) if matches!(e, StoreError::Busy(_)) && batch.rows() > 1 => {
                                        batch.write_each(&store)
                                    }
                                    Err(_) => batch.rows(),
                                }
                            }
                            StoreError::Query(_) if batch.rows() > 1 => batch.write_each(&store),
                            _ => batch.rows(),
                        };
                        if lost > 0 {
                            tracing::error!(error = %e, lost, "could not write log records");
                        } else {
                            tracing::warn!(error = %e, "log records were written on a second try");
                        }
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
                tracing::error!(error = %e, "could not start the log writer");
                None
            }
        };
        let writer = thread.as_ref().map(|h| h.thread().clone());
        LogSink {
            tx,
            thread: std::sync::Arc::new(std::sync::Mutex::new(thread)),
            writer,
            login_starts,
            #[cfg(test)]
            attempts,
        }
    }

    /// Writes what is queued and stops the writer (at shutdown), within
    /// [`CLOSE_WITHIN`]; records queued afterwards are dropped.
    pub fn close(&self) {
        self.close_within(CLOSE_WITHIN);
    }

    /// [`LogSink::close`] within `limit`: whether everything queued was
    /// written or given up on (as the writer does when the database
    /// refuses). A database that is down makes each batch wait out its
    /// connection timeout twice; past `limit` the rest is left unwritten,
    /// with a warning, so that a shutdown during an outage ends.
    pub fn close_within(&self, limit: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        // Sent, or the writer is gone already; or still full at the deadline.
        if let Err(std::sync::mpsc::TrySendError::Full(())) = self.send_by(Msg::Close, deadline) {
            return self.left_unwritten(limit);
        }
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            while !h.is_finished() {
                if std::time::Instant::now() >= deadline {
                    return self.left_unwritten(limit);
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let _ = h.join();
        }
        true
    }

    /// Warns that records still queued at a shutdown were not written.
    fn left_unwritten(&self, limit: std::time::Duration) -> bool {
        tracing::warn!(
            within_secs = limit.as_secs(),
            "the log writer did not finish writing within the shutdown's time: provisioning-log entries, login \
             events and SSO users still queued may not be written before the process ends (is the database \
             reachable?)"
        );
        false
    }

    /// Queues a provisioning log entry; when the queue is full the entry is
    /// dropped with an error log.
    pub fn record(&self, entry: ProvisioningLog) {
        self.queue(Record::Provisioning(Box::new(entry)));
    }

    /// Queues the part of a login event its initiate recorded (saved with
    /// [`sso::save_event`], so it merges with the completion's part
    /// whichever is written first); dropped with an error log when the
    /// queue is full.
    pub fn record_login_start(&self, event: LoginEvent) {
        use std::sync::atomic::Ordering;
        if self.login_starts.fetch_add(1, Ordering::AcqRel) >= MAX_QUEUED_LOGIN_STARTS {
            self.login_starts.fetch_sub(1, Ordering::AcqRel);
            tracing::error!("too many login starts queued; the first steps of a login event were dropped");
            return;
        }
        if !self.queue(Record::LoginStart(Box::new(event))) {
            self.login_starts.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Queues what a login's completion records; whether it was (when the
    /// queue is full it was not, and the caller writes it itself).
    /// Completions are not held to a share of the queue as starts are:
    /// each one first claimed its login in a transaction of its own.
    pub fn record_login_end(&self, end: LoginEnd) -> Result<(), Box<LoginEnd>> {
        use std::sync::mpsc::TrySendError::{Disconnected, Full};
        let back = match self.tx.try_send(Msg::Record(Record::LoginEnd(Box::new(end)))) {
            Ok(()) => return Ok(()),
            Err(Full(back) | Disconnected(back)) => back,
        };
        match back {
            Msg::Record(Record::LoginEnd(end)) => Err(end),
            // What comes back is what was sent.
            _ => Ok(()),
        }
    }

    /// Queues `record`; whether it was.
    fn queue(&self, record: Record) -> bool {
        match self.tx.try_send(Msg::Record(record)) {
            Ok(()) => return true,
            Err(std::sync::mpsc::TrySendError::Full(_)) => tracing::error!("log queue full; a record was dropped"),
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                tracing::debug!("log writer closed; a record was dropped")
            }
        }
        false
    }

    /// Blocks until every record queued before this call is written, or
    /// 10 s have passed (a full queue behind a stalled database included:
    /// the caller then reads what is written).
    pub fn flush(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let (tx, rx) = std::sync::mpsc::channel();
        if self.send_by(Msg::Flush(tx), deadline).is_ok() {
            let _ = rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()));
        }
    }

    /// Sends `msg` to the writer and wakes it, waking it meanwhile while the
    /// queue is full, until `deadline`: `Full` when it was still full then,
    /// `Disconnected` when the writer is gone.
    fn send_by(&self, mut msg: Msg, deadline: std::time::Instant) -> Result<(), std::sync::mpsc::TrySendError<()>> {
        use std::sync::mpsc::TrySendError;
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => {
                    self.wake();
                    return Ok(());
                }
                Err(TrySendError::Full(back)) if std::time::Instant::now() < deadline => {
                    msg = back;
                    self.wake();
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Err(TrySendError::Full(_)) => return Err(TrySendError::Full(())),
                Err(TrySendError::Disconnected(_)) => return Err(TrySendError::Disconnected(())),
            }
        }
    }

    fn wake(&self) {
        if let Some(t) = &self.writer {
            t.unpark();
        }
    }
}

/// How long a shutdown waits for the log writer (see [`LogSink::close`]).
pub const CLOSE_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::logs::{list, LogQuery};

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
    fn a_record_the_database_refuses_loses_only_itself_not_its_batch() {
        let (store, _dir) = crate::test_store();
        let sink = LogSink::start(store.clone());
        let first = entry(0);
        let mut twin = entry(1);
        twin.id = first.id.clone(); // refused: the id is taken
        sink.record(first);
        sink.record(twin);
        for n in 2..6 {
            sink.record(entry(n));
        }
        // Writes everything queued, however long that takes (a flush gives up after 10 s).
        sink.close();
        assert_eq!(stored(&store), 5, "all but the refused one");
    }

    /// Another process holding SQLite's write lock past the busy timeout
    /// (the CLI, 5 s) delays a record: it is written once the lock is free,
    /// not lost (a batch of one was dropped at the first refusal).
    /// A SQLite store, a sink on it with one entry queued, and another
    /// connection (another process) holding the database's write lock.
    fn one_queued_behind_a_lock() -> (crate::Store, crate::TestDir, LogSink, diesel::SqliteConnection) {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let (store, dir) = crate::test_store();
        let crate::TestDir::Sqlite(path) = &dir else { unreachable!() };
        let file = path.join("t.db").display().to_string();
        let mut other = diesel::SqliteConnection::establish(&file).unwrap();
        other.batch_execute("BEGIN IMMEDIATE").unwrap();
        let sink = LogSink::start(store.clone());
        sink.record(entry(0));
        (store, dir, sink, other)
    }

    #[test]
    fn a_record_waits_out_another_process_holding_the_write_lock() {
        use diesel::connection::SimpleConnection;
        use std::sync::atomic::Ordering;
        let (store, _dir, sink, mut other) = one_queued_behind_a_lock();
        // Held past one busy timeout, and let go while the second try waits:
        // once it has begun, not after a fixed time, which on a busy machine
        // could end before the first try did or after the second.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while sink.attempts.load(Ordering::SeqCst) < 2 {
            assert!(std::time::Instant::now() < deadline, "the record was not tried again");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        other.batch_execute("COMMIT").unwrap();
        sink.close();
        assert_eq!(stored(&store), 1);
    }

    /// PostgreSQL ended the store's connections (a restart, a failover): the
    /// next batch fails on the pooled connection it takes, which the pool
    /// then drops, and is written whole on a second try, not lost.
    #[test]
    fn a_batch_on_a_connection_the_server_ended_is_written_on_a_second_try() {
        use diesel::RunQueryDsl;
        let (store, dir) = crate::test_store_any_backend();
        let crate::TestDir::Postgres(admin, name) = &dir else { return };
        let sink = LogSink::start(store.clone());
        sink.record(entry(0));
        sink.flush();
        #[derive(diesel::QueryableByName)]
        struct Left {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let name = name.clone();
        let end_all = format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'");
        let left = format!("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = '{name}'");
        admin
            .read_blocking(move |c| {
                diesel::sql_query(&end_all).execute(c)?;
                // Until the backends are gone: a write before would still find them.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                while diesel::sql_query(&left).load::<Left>(c)?.first().is_some_and(|l| l.n > 0) {
                    assert!(std::time::Instant::now() < deadline, "the backends did not end");
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
        for n in 1..4 {
            sink.record(entry(n));
        }
        sink.close();
        assert_eq!(stored(&store), 4);
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

    /// A database that stays locked (or down) past the shutdown's time:
    /// close gives up, saying so, and returns, instead of holding the
    /// process's exit for as long as the retries take.
    #[test]
    fn close_ends_within_its_time_while_the_database_stays_locked() {
        use diesel::connection::SimpleConnection;
        let (store, _dir, sink, mut other) = one_queued_behind_a_lock();
        let began = std::time::Instant::now();
        assert!(!sink.close_within(std::time::Duration::from_millis(300)));
        assert!(began.elapsed() < std::time::Duration::from_secs(3), "{:?}", began.elapsed());
        assert_eq!(stored(&store), 0, "not written behind the lock");
        // The writer it left goes on: the lock let go, the entry is written after all.
        other.batch_execute("COMMIT").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while stored(&store) == 0 {
            assert!(std::time::Instant::now() < deadline, "the entry was never written");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
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

    #[test]
    fn a_login_start_is_written_behind_and_merges_with_its_completion() {
        let (store, _dir) = crate::test_store();
        let sink = LogSink::start(store.clone());
        let mut start = LoginEvent::pending(Some("client-1".into()), Some("acme".into()), 10);
        start.steps = r#"[{"step":"initiate"}]"#.into();
        let mut done = start.clone();
        done.outcome = "success".into();
        done.steps = r#"[{"step":"scim_join"}]"#.into();
        let id = start.id.clone();
        sink.record_login_start(start);
        sink.record(entry(1));
        store.write_blocking(move |c| sso::save_event(c, &done)).unwrap();
        sink.close();
        let e = store.read_blocking(move |c| sso::get_event(c, &id)).unwrap().unwrap();
        assert_eq!(e.outcome, "success");
        assert_eq!(e.steps, r#"[{"step":"initiate"},{"step":"scim_join"}]"#);
        assert_eq!(stored(&store), 1);
    }

    fn seen(client: &str, user: &str, at: i64) -> SsoUser {
        SsoUser {
            id: tandem_core::new_id(),
            oidc_client_id: client.into(),
            oidc_user_id: user.into(),
            email: Some(format!("{user}@example.com")),
            email_verified: Some(true),
            preferred_username: None,
            given_name: None,
            family_name: None,
            claims: "{}".into(),
            first_login_at: at,
            last_login_at: at,
            login_count: 1,
        }
    }

    /// A completion's part of a login event is written behind with the SSO
    /// user it saw, and merges with the initiate's part whichever is queued first.
    #[test]
    fn a_login_end_records_its_sso_user_and_merges_with_its_start_in_either_order() {
        let (store, _dir) = crate::test_store();
        let sink = LogSink::start(store.clone());
        let client = tandem_core::new_id();
        let mut ids = Vec::new();
        for (n, end_first) in [false, true].into_iter().enumerate() {
            let mut start = LoginEvent::pending(Some(client.clone()), Some("acme".into()), 10);
            start.steps = r#"[{"step":"initiate"}]"#.into();
            let mut done = start.clone();
            done.outcome = "success".into();
            done.steps = r#"[{"step":"scim_join"}]"#.into();
            done.oidc_user_id = Some("u-1".into());
            ids.push(start.id.clone());
            let end = LoginEnd { sso_user: Some(seen(&client, "u-1", 20 + n as i64)), event: done };
            if end_first {
                assert!(sink.record_login_end(end).is_ok());
                sink.record_login_start(start);
            } else {
                sink.record_login_start(start);
                assert!(sink.record_login_end(end).is_ok());
            }
        }
        sink.close();
        for id in ids {
            let e = store.read_blocking(move |c| sso::get_event(c, &id)).unwrap().unwrap();
            assert_eq!((e.outcome.as_str(), e.oidc_user_id.as_deref()), ("success", Some("u-1")));
            assert_eq!(e.steps, r#"[{"step":"initiate"},{"step":"scim_join"}]"#);
        }
        let key = client.clone();
        let users = store.read_blocking(move |c| sso::sso_users_of(c, &key, None, 10)).unwrap();
        assert_eq!(users.len(), 1, "one identity, seen twice");
        assert_eq!((users[0].login_count, users[0].last_login_at), (2, 21));
    }

    /// A login end alone in its batch whose SSO user the database refuses
    /// keeps its event: the two are written apart on the retry.
    #[test]
    fn a_login_end_whose_sso_user_is_refused_keeps_its_event() {
        use diesel::connection::SimpleConnection;
        let (store, _dir) = crate::test_store();
        store.write_blocking(|c| c.batch_execute("DROP TABLE sso_users").map_err(StoreError::from)).unwrap();
        let sink = LogSink::start(store.clone());
        let client = tandem_core::new_id();
        let mut event = LoginEvent::pending(Some(client.clone()), Some("acme".into()), 10);
        event.outcome = "success".into();
        let id = event.id.clone();
        assert!(sink.record_login_end(LoginEnd { sso_user: Some(seen(&client, "u-3", 40)), event }).is_ok());
        sink.close();
        let stored = store.read_blocking(move |c| sso::get_event(c, &id)).unwrap();
        assert_eq!(stored.map(|e| e.outcome), Some("success".to_string()));
    }

    /// With the queue full, a login end comes back whole to its caller
    /// (which writes it itself) instead of being dropped.
    #[test]
    fn a_login_end_comes_back_when_the_queue_is_full() {
        let (store, _dir) = crate::test_store();
        let sink = LogSink::start(store.clone());
        let (s, (holding, held)) = (store.clone(), std::sync::mpsc::channel());
        let (release, released) = std::sync::mpsc::channel::<()>();
        let busy = std::thread::spawn(move || {
            s.write_blocking(|_| {
                let _ = holding.send(());
                let _ = released.recv_timeout(std::time::Duration::from_secs(30));
                Ok(())
            })
        });
        held.recv().unwrap();
        for n in 0..QUEUE + MAX_BATCH + 10 {
            sink.record(entry(n));
        }
        // The writer takes one batch and waits on the held write; on a busy
        // machine it may take it only now, leaving room for that many more.
        let (mut fitted, client) = (0, tandem_core::new_id());
        let (back, id) = loop {
            let event = LoginEvent::pending(Some(client.clone()), Some("acme".into()), 10);
            let id = event.id.clone();
            match sink.record_login_end(LoginEnd { sso_user: Some(seen(&client, "u-2", 30)), event }) {
                Err(back) => break (back, id),
                Ok(()) => fitted += 1,
            }
            assert!(fitted <= MAX_BATCH, "the queue never filled: {fitted} login ends fitted");
        };
        assert_eq!(
            (back.event.id.as_str(), back.sso_user.as_ref().map(|u| u.oidc_user_id.as_str())),
            (id.as_str(), Some("u-2"))
        );
        release.send(()).unwrap();
        busy.join().unwrap().unwrap();
        sink.flush();
        sink.close();
    }

    #[test]
    fn a_flood_of_login_starts_leaves_room_for_the_provisioning_log() {
        let (store, _dir) = crate::test_store();
        let sink = LogSink::start(store.clone());
        // The database is busy until the flood is queued: the writer takes
        // one batch (at most MAX_BATCH starts) and waits, the rest queue.
        // Held until released, not for a fixed time: on a busy machine the
        // flood could outlast it, and the writer would make room for more.
        let (s, (holding, held)) = (store.clone(), std::sync::mpsc::channel());
        let (release, released) = std::sync::mpsc::channel::<()>();
        let busy = std::thread::spawn(move || {
            s.write_blocking(|_| {
                let _ = holding.send(());
                let _ = released.recv_timeout(std::time::Duration::from_secs(60));
                Ok(())
            })
        });
        held.recv().unwrap();
        let flood = MAX_QUEUED_LOGIN_STARTS + 300;
        for n in 0..flood {
            sink.record_login_start(LoginEvent::pending(None, Some("acme".into()), n as i64));
        }
        for n in 0..100 {
            sink.record(entry(n));
        }
        release.send(()).unwrap();
        busy.join().unwrap().unwrap();
        // Writes everything queued, however long that takes (a flush gives up after 10 s).
        sink.close();
        let q = crate::sso::EventQuery { customer_id: Some("acme".into()), limit: 100_000, ..Default::default() };
        let events = store.read_blocking(|c| crate::sso::list_events(c, &q)).unwrap().len();
        assert!((MAX_QUEUED_LOGIN_STARTS..flood).contains(&events), "{events} of {flood}");
        assert_eq!(stored(&store), 100, "every provisioning entry was kept");
    }
}
