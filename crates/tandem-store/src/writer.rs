//! Group commit for SQLite: concurrent write transactions share one commit.
//!
//! SQLite has one writer at a time, and most of a small write's cost is the
//! commit itself: the WAL frames of every page it touched (a SCIM user row
//! touches its table and five indexes, plus the provisioning log). When
//! several requests write at once, one thread runs them one after the other
//! inside a single transaction, each in its own savepoint, and commits once:
//! pages they share are written once. A transaction that fails rolls back to
//! its savepoint without touching the others; nobody hears of success before
//! the commit that made it durable. No crate does this for diesel; it is the
//! same technique as PostgreSQL's group commit, done in-process.
//!
//! A small write (a few rows found by key) that arrives while writes are
//! quiet runs and commits on its caller's thread instead: handing it to the
//! writer and back cost two thread wake-ups, 20-27 % of the server's context
//! switches over creates and logins. While writes overlap, small ones queue
//! and share commits as above.
//!
//! Every write, wherever it runs, runs on one connection of its own beside
//! the read pool ([`WriteConn`], behind the write lock). SQLite empties a
//! connection's page cache whenever another connection has written since
//! its last transaction, so writes spread over the pool read every page
//! they touch back from the file (16 `pread`s in a login's last write);
//! on the one connection that only writes, the cache stays warm.

use crate::background::Background;
use crate::{AnyConnection, StoreError};
use diesel::connection::TransactionManager;
use diesel::Connection;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

/// Most transactions sharing one commit.
const MAX_BATCH: usize = 64;

/// What a finished transaction does once its batch's commit is known.
type Completion = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

/// A queued transaction.
trait Work: Send {
    /// Runs on the writer's connection (inside a savepoint when `nested`);
    /// says whether it succeeded, and how to report once the commit is known.
    fn run(self: Box<Self>, conn: &mut AnyConnection, nested: bool) -> (bool, Completion);
    /// Reports `e` without running.
    fn cancel(self: Box<Self>, e: &StoreError);
}

type Job = Box<dyn Work>;

struct Pending<T, F> {
    f: F,
    done: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
    span: tracing::Span,
}

impl<T, F> Work for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut AnyConnection, nested: bool) -> (bool, Completion) {
        let Pending { f, done, span } = *self;
        let outcome = span.in_scope(|| if nested { conn.transaction(f) } else { f(conn) });
        let ok = outcome.is_ok();
        let completion: Completion = Box::new(move |commit: Result<(), &StoreError>| {
            let reply = match (outcome, commit) {
                (Ok(value), Ok(())) => Ok(value),
                (Ok(_), Err(e)) => Err(StoreError::Unavailable(format!("the transaction could not commit: {e}"))),
                (Err(e), _) => Err(e),
            };
            let _ = done.send(reply);
        });
        (ok, completion)
    }

    fn cancel(self: Box<Self>, e: &StoreError) {
        let _ = self.done.send(Err(StoreError::Unavailable(e.to_string())));
    }
}

type Pool = r2d2::Pool<crate::conn::Manager>;

type Tm = <AnyConnection as Connection>::TransactionManager;

/// The connection SQLite writes run on, behind the store's write lock
/// (holding the lock is holding the connection).
pub struct WriteConn {
    manager: crate::conn::Manager,
    conn: Option<crate::conn::Pooled>,
}

impl WriteConn {
    /// A slot for the write connection, opened at its first use.
    pub fn new(manager: crate::conn::Manager) -> WriteConn {
        WriteConn { manager, conn: None }
    }

    /// The write connection, opened when missing; a write connection left
    /// inside a transaction (its user panicked) or lost is dropped and
    /// opened again. `None` when it cannot be opened.
    fn own(&mut self) -> Option<&mut crate::conn::Pooled> {
        use r2d2::ManageConnection;
        if self.conn.as_mut().is_some_and(|c| c.is_broken()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            self.conn = self.manager.connect().ok();
        }
        self.conn.as_mut()
    }

    /// The write connection, or, when it cannot be opened, one from `pool`
    /// (waiting for it up to the pool's timeout).
    fn get(&mut self, pool: &Pool) -> Result<Held<'_>, StoreError> {
        match self.own() {
            Some(conn) => Ok(Held::Own(conn)),
            None => pool.get().map(|c| Held::Pooled(Box::new(c))).map_err(|e| StoreError::Unavailable(e.to_string())),
        }
    }

    /// Like [`WriteConn::get`] without waiting: `None` when the write
    /// connection cannot be opened and no pooled one is free.
    fn try_get(&mut self, pool: &Pool) -> Option<Held<'_>> {
        match self.own() {
            Some(conn) => Some(Held::Own(conn)),
            None => pool.try_get().map(|c| Held::Pooled(Box::new(c))),
        }
    }
}

/// A connection a write runs on.
enum Held<'a> {
    Own(&'a mut crate::conn::Pooled),
    /// The fallback, when the write connection cannot be opened (boxed: rare).
    Pooled(Box<r2d2::PooledConnection<crate::conn::Manager>>),
}

impl std::ops::Deref for Held<'_> {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match self {
            Held::Own(c) => c,
            Held::Pooled(c) => c,
        }
    }
}

impl std::ops::DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Held::Own(c) => c,
            Held::Pooled(c) => c,
        }
    }
}

/// The writer thread; dropping the last handle stops it after the queue drains.
pub struct Writer {
    thread: Background<Job>,
    pool: Pool,
    lock: Arc<Mutex<WriteConn>>,
    traffic: Arc<Traffic>,
    /// The write lock is held for a write behind requests (see [`Writer::write_behind`]).
    behind: AtomicBool,
    /// The write lock is held for a read (see [`Writer::read_now`]).
    reading: AtomicBool,
}

/// How long after writes last overlapped a small write still queues.
const BUSY_FOR: Duration = Duration::from_millis(20);

/// Where a small write runs.
enum Here<'a> {
    /// On the caller's thread, holding the write lock (and connection).
    Now(MutexGuard<'a, WriteConn>),
    /// Queued: another write is queued or running.
    Contended,
    /// Queued without opening the busy window: writes overlapped a moment
    /// ago, or a write behind requests holds the lock.
    NotNow,
}

/// Whether writes are arriving together, which decides where a small one runs.
struct Traffic {
    /// Jobs handed to the thread and not finished yet.
    queued: AtomicUsize,
    /// Until when (µs after `epoch`) small writes queue even when the writer
    /// is idle: set when writes overlap (one found another queued or
    /// running, or a batch held several), so that under concurrent writes
    /// they keep sharing commits instead of each committing alone (that
    /// cost creates at concurrency 8 ~10 % of their CPU). It is not renewed
    /// by writes it alone sent to the queue, so a lone writer is back on
    /// its own thread [`BUSY_FOR`] after the last overlap.
    busy_until: AtomicU64,
    epoch: Instant,
}

impl Traffic {
    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Writes had to queue at `now_us`.
    fn busy_at(&self, now_us: u64) {
        let until = now_us.saturating_add(u64::try_from(BUSY_FOR.as_micros()).unwrap_or(u64::MAX));
        self.busy_until.fetch_max(until, Ordering::AcqRel);
    }

    /// Why a small write at `now_us` must queue (another write is queued or
    /// running: `Contended`; writes overlapped a moment ago: `NotNow`), or
    /// `None` when it may run on its caller's thread.
    fn queue_reason_at(&self, now_us: u64) -> Option<Here<'static>> {
        if self.queued.load(Ordering::Acquire) != 0 {
            Some(Here::Contended)
        } else if now_us < self.busy_until.load(Ordering::Acquire) {
            Some(Here::NotNow)
        } else {
            None
        }
    }
}

impl Writer {
    /// Starts the writer: every write runs on the write connection `own`
    /// opens, behind the write lock, or on one of `pool` when it cannot be opened.
    pub fn start(pool: Pool, own: crate::conn::Manager) -> std::io::Result<Writer> {
        let traffic =
            Arc::new(Traffic { queued: AtomicUsize::new(0), busy_until: AtomicU64::new(0), epoch: Instant::now() });
        let lock = Arc::new(Mutex::new(WriteConn::new(own)));
        let (p, l, t) = (pool.clone(), lock.clone(), traffic.clone());
        let thread = Background::spawn("tandem-writer", move |jobs: Receiver<Job>| run(&p, &l, &t, &jobs))?;
        Ok(Writer { thread, pool, lock, traffic, behind: AtomicBool::new(false), reading: AtomicBool::new(false) })
    }

    /// Runs `f` as one transaction; resolves after the commit that holds it.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let (job, result) = Pending::job(f);
        self.enqueue(job)?;
        result.await.map_err(|_| StoreError::Unavailable("a database write was abandoned".into()))?
    }

    /// Like [`Writer::write`], but when no write is queued or running and
    /// none had to queue in the last [`BUSY_FOR`], runs `f` and commits at
    /// once on the calling thread: handing a transaction of a few rows to
    /// the writer thread and back costs two thread wake-ups. Under
    /// concurrent writes it queues, and shares a commit.
    pub async fn write_now<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let (job, result) = Pending::job(f);
        match self.idle() {
            Here::Now(mut slot) => match slot.try_get(&self.pool) {
                Some(mut conn) => commit_batch(&mut conn, vec![job]),
                // No connection to be had without waiting (the pool's are all reading).
                None => {
                    drop(slot);
                    self.enqueue(job)?
                }
            },
            Here::Contended => {
                self.traffic.busy_at(self.traffic.now_us());
                self.enqueue(job)?
            }
            // Queued without renewing the window: a lone writer gets back to
            // its own thread once the window has passed.
            Here::NotNow => self.enqueue(job)?,
        }
        result.await.map_err(|_| StoreError::Unavailable("a database write was abandoned".into()))?
    }

    /// Runs `f` as one transaction on the calling thread, for writes made
    /// behind requests (batched log records). Holding the write lock for it
    /// is no sign that requests write together: a small write that finds it
    /// held queues for the writer thread without opening the [`BUSY_FOR`]
    /// window (which would send every write of the next 20 ms there too).
    pub fn write_behind<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError>,
    {
        let mut slot = self.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.behind.store(true, Ordering::Release);
        let ran = match slot.get(&self.pool) {
            Ok(mut conn) => catch_unwind(AssertUnwindSafe(|| write_transaction(&mut conn, f))),
            Err(e) => Ok(Err(e)),
        };
        self.behind.store(false, Ordering::Release);
        match ran {
            // A lock another process held past the busy timeout (the CLI) is
            // `Busy`, as on a pooled connection: the caller may try again.
            Ok(result) => crate::conn::classify(result).0,
            Err(panic) => {
                // Closed now, which rolls its transaction back: left open
                // until the next write, it would hold SQLite's write lock
                // against other processes (the CLI).
                slot.conn = None;
                drop(slot);
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// Runs the read `f` on the write connection, at once on the calling
    /// thread, when no write is queued, running or overlapping (as
    /// [`Writer::write_now`] would run a write); hands `f` back otherwise.
    /// Every write commits on that connection, so its page cache holds what
    /// they wrote and read, while SQLite empties a pooled connection's
    /// cache whenever another connection changed the database: a read
    /// there after each write reads its pages from the file again.
    pub fn read_now<T, F>(&self, f: F) -> Result<Result<T, StoreError>, F>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError>,
    {
        let Here::Now(mut slot) = self.idle() else { return Err(f) };
        /// Lowers the flag however the read ends (a panic in `f` included).
        struct Reading<'a>(&'a AtomicBool);
        impl Drop for Reading<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        self.reading.store(true, Ordering::Release);
        let _reading = Reading(&self.reading);
        match slot.own() {
            // Its statements run in autocommit: no transaction is left open
            // (a panic mid-statement finalises it), and a connection the
            // read found unusable is marked lost, to be opened again.
            Some(conn) => {
                let result = f(conn);
                Ok(conn.settle(result))
            }
            None => Err(f),
        }
    }

    /// Whether a small write can run on its caller's thread now.
    fn idle(&self) -> Here<'_> {
        if let Some(reason) = self.traffic.queue_reason_at(self.traffic.now_us()) {
            return reason;
        }
        match self.lock.try_lock() {
            Ok(guard) => Here::Now(guard),
            Err(TryLockError::Poisoned(poisoned)) => Here::Now(poisoned.into_inner()),
            // A write behind requests holds it for a batch of log records,
            // or a read for a moment: no sign that writes arrive together.
            Err(TryLockError::WouldBlock)
                if self.behind.load(Ordering::Acquire) || self.reading.load(Ordering::Acquire) =>
            {
                Here::NotNow
            }
            Err(TryLockError::WouldBlock) => Here::Contended,
        }
    }

    fn enqueue(&self, job: Job) -> Result<(), StoreError> {
        let stopped = || StoreError::Unavailable("the database writer stopped".into());
        let queue = self.thread.sender().ok_or_else(stopped)?;
        self.traffic.queued.fetch_add(1, Ordering::AcqRel);
        queue.send(job).map_err(|_| {
            self.traffic.queued.fetch_sub(1, Ordering::AcqRel);
            stopped()
        })
    }
}

impl<T, F> Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
{
    /// The job for `f`, and where its result arrives.
    fn job(f: F) -> (Job, tokio::sync::oneshot::Receiver<Result<T, StoreError>>) {
        let (done, result) = tokio::sync::oneshot::channel::<Result<T, StoreError>>();
        (Box::new(Pending { f, done, span: tracing::Span::current() }), result)
    }
}

/// The writer thread. It writes its batches on the write connection,
/// opened beside the pool, so reads never hold up a queued write however
/// many of them are running: a connection asked of the pool per batch
/// waited for them (up to the pool's timeout, then 503). Should that
/// connection fail to open, a batch takes one from the pool.
fn run(pool: &Pool, lock: &Mutex<WriteConn>, traffic: &Traffic, jobs: &Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Taken off the queue: from here the write lock shows the batch
        // running. (A read on the write connection may still take the lock
        // first, for the microseconds it runs.)
        traffic.queued.fetch_sub(batch.len(), Ordering::AcqRel);
        if batch.len() > 1 {
            // Several writes arrived together: small ones queue a while, more may be on their way.
            traffic.busy_at(traffic.now_us());
        }
        let mut slot = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match slot.get(pool) {
            Ok(mut conn) => commit_batch(&mut conn, batch),
            Err(e) => fail_all(batch, &e),
        }
    }
}

/// Tells every job of `batch` that it failed with `e`, without running it.
fn fail_all(batch: Vec<Job>, e: &StoreError) {
    tracing::warn!(error = %e, writes = batch.len(), "database writes could not start");
    for job in batch {
        job.cancel(e);
    }
}

/// Rolls back the savepoint a panic left open and the batch's transaction.
fn roll_back_everything(conn: &mut AnyConnection) {
    for _ in 0..16 {
        match Tm::transaction_manager_status_mut(conn).transaction_depth() {
            Ok(Some(_)) => {
                if Tm::rollback_transaction(conn).is_err() {
                    break;
                }
            }
            _ => return,
        }
    }
}

/// Opens a write transaction. On SQLite it is `BEGIN IMMEDIATE`, which
/// takes the database's write lock at once: with a plain (deferred) `BEGIN`
/// a transaction that reads before it writes fails at its first write
/// (SQLITE_BUSY_SNAPSHOT, without waiting) when another process, such as
/// the CLI managing integration keys, committed in between, and with it
/// every write sharing its commit. With the lock taken first, the other
/// process waits for it (its busy timeout) instead.
pub(crate) fn begin_write(conn: &mut AnyConnection) -> diesel::QueryResult<()> {
    match conn {
        AnyConnection::Sqlite(c) => {
            diesel::connection::AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
        }
        other => Tm::begin_transaction(other),
    }
}

/// Runs `f` in a write transaction (see [`begin_write`]): committed when it
/// succeeds, rolled back when it fails.
pub(crate) fn write_transaction<T, F>(conn: &mut AnyConnection, f: F) -> Result<T, StoreError>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, StoreError>,
{
    begin_write(conn)?;
    match f(conn) {
        Ok(value) => match Tm::commit_transaction(conn) {
            Ok(()) => Ok(value),
            Err(e) => {
                let _ = Tm::rollback_transaction(conn);
                Err(e.into())
            }
        },
        Err(e) => {
            let _ = Tm::rollback_transaction(conn);
            Err(e)
        }
    }
}

fn commit_batch(conn: &mut AnyConnection, batch: Vec<Job>) {
    if let Err(e) = begin_write(conn) {
        fail_all(batch, &StoreError::from(e));
        return;
    }
    // One transaction alone needs no savepoint: its failure rolls back the whole.
    let nested = batch.len() > 1;
    let mut completions = Vec::with_capacity(batch.len());
    let mut all_ok = true;
    for job in batch {
        match catch_unwind(AssertUnwindSafe(|| job.run(conn, nested))) {
            Ok((ok, completion)) => {
                all_ok &= ok;
                completions.push(completion);
            }
            Err(_) => {
                // A panic leaves the savepoint in an unknown state: roll back the batch.
                tracing::error!("a database write panicked; its batch is rolled back");
                roll_back_everything(conn);
                let e = StoreError::Unavailable("a database write failed unexpectedly".into());
                for c in completions {
                    c(Err(&e));
                }
                return;
            }
        }
    }
    let outcome = if nested || all_ok {
        Tm::commit_transaction(conn).map_err(StoreError::from)
    } else {
        // The lone transaction failed: undo it (its completion reports its own error).
        Tm::rollback_transaction(conn).map_err(StoreError::from)
    };
    if outcome.is_err() {
        let _ = Tm::rollback_transaction(conn);
    }
    for c in completions {
        c(outcome.as_ref().map(|_| ()));
    }
}

#[cfg(test)]
mod tests {
    use crate::{integration_keys, Store, StoreError};
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    fn at() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn names(store: &Store) -> Vec<String> {
        let mut n: Vec<String> =
            store.read_blocking(integration_keys::list).unwrap().into_iter().map(|k| k.name).collect();
        n.sort();
        n
    }

    /// A read runs on the write connection, which sees the writes at once,
    /// only while no write is under way: with the write lock held, or a
    /// write queued, it is handed back (to run on a pooled connection), and
    /// it never makes the writes after it queue.
    #[test]
    fn a_read_runs_on_the_write_connection_only_when_no_write_is_under_way() {
        let (store, _dir) = crate::test_store();
        let writer = store.writer.as_ref().expect("a SQLite store has a writer");
        store.write_blocking(|c| integration_keys::create(c, "seen", at()).map(|_| ())).unwrap();
        let read = writer.read_now(|c| integration_keys::list(c).map(|k| k.len()));
        assert_eq!(read.ok().map(Result::unwrap), Some(1));
        // While a read holds the lock, a small write queues without opening the busy window.
        let inside = writer.read_now(|_| Ok(matches!(writer.idle(), super::Here::NotNow)));
        assert_eq!(inside.ok().map(Result::unwrap), Some(true));
        {
            let _held = writer.lock.lock().unwrap();
            assert!(writer.read_now(integration_keys::list).is_err(), "handed back while the lock is held");
        }
        writer.traffic.queued.fetch_add(1, Ordering::AcqRel);
        assert!(writer.read_now(integration_keys::list).is_err(), "handed back while a write is queued");
        writer.traffic.queued.fetch_sub(1, Ordering::AcqRel);
        assert!(writer.read_now(integration_keys::list).is_ok());
    }

    /// The writer thread running a transaction that holds it until released.
    struct HeldWriter {
        held: tokio::task::JoinHandle<Result<(), StoreError>>,
        release: std::sync::mpsc::Sender<()>,
    }

    /// Holds the writer busy (returns once it runs the held transaction) so
    /// the next writes queue up.
    fn hold_writer(store: &Store) -> HeldWriter {
        let s = store.clone();
        let (running, started) = std::sync::mpsc::channel();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let held = tokio::spawn(async move {
            s.write(move |_| {
                let _ = running.send(());
                let _ = wait.recv_timeout(Duration::from_secs(30));
                Ok(())
            })
            .await
        });
        started.recv_timeout(Duration::from_secs(30)).expect("the writer runs the held transaction");
        HeldWriter { held, release }
    }

    impl HeldWriter {
        /// Lets the writer go once `n` more writes are queued behind the
        /// held one (the writer then takes them as one batch), and waits for it.
        async fn release_after(self, store: &Store, n: usize) {
            let traffic = &store.writer.as_ref().expect("a SQLite store has a writer").traffic;
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            // Counts jobs queued and not yet taken (the held one was taken).
            while traffic.queued.load(Ordering::Acquire) < n {
                assert!(std::time::Instant::now() < deadline, "the writes never queued");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            self.release.send(()).expect("the held transaction waits");
            self.held.await.expect("the held write's task").expect("the held write");
        }
    }

    /// Every way of writing runs on the one write connection (whose page
    /// cache no other connection's writes empty): a TEMP table exists only
    /// on the connection that made it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_write_path_runs_on_the_write_connection() {
        use diesel::connection::SimpleConnection;
        let (store, _dir) = crate::test_store();
        let probe =
            |sql: &'static str| move |c: &mut crate::AnyConnection| c.batch_execute(sql).map_err(StoreError::from);
        store.write_blocking(probe("CREATE TEMP TABLE probe (x INTEGER)")).unwrap();
        store.write_small(probe("INSERT INTO temp.probe VALUES (1)")).await.unwrap();
        store.write_autocommit(probe("INSERT INTO temp.probe VALUES (2)")).await.unwrap();
        store.write(probe("INSERT INTO temp.probe VALUES (3)")).await.unwrap();
        store.write_behind(probe("INSERT INTO temp.probe VALUES (4)")).unwrap();
        // Queued behind a held writer, in a shared batch.
        let held = hold_writer(&store);
        let s = store.clone();
        let queued = tokio::spawn(async move { s.write_small(probe("INSERT INTO temp.probe VALUES (5)")).await });
        held.release_after(&store, 1).await;
        queued.await.unwrap().unwrap();
        let count = store
            .write_blocking(|c| {
                use diesel::prelude::*;
                diesel::sql_query("SELECT count(*) AS n FROM temp.probe")
                    .get_result::<Count>(c)
                    .map(|r| r.n)
                    .map_err(StoreError::from)
            })
            .unwrap();
        assert_eq!(count, 5);
        // A pooled (read) connection has no such table.
        assert!(store.read_blocking(probe("INSERT INTO temp.probe VALUES (6)")).is_err());
    }

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_transaction_in_a_shared_commit_rolls_back_alone() {
        let (store, _dir) = crate::test_store();
        let held = hold_writer(&store);
        let mut writes = Vec::new();
        for i in 0..10 {
            let s = store.clone();
            writes.push(tokio::spawn(async move {
                s.write(move |c| {
                    integration_keys::create(c, &format!("k{i:02}"), at())?;
                    if i % 3 == 0 {
                        return Err(StoreError::Conflict(format!("k{i:02} refused")));
                    }
                    Ok(i)
                })
                .await
            }));
        }
        held.release_after(&store, 10).await;
        for (i, w) in writes.into_iter().enumerate() {
            match w.await.unwrap() {
                Ok(n) => assert_eq!(n, i),
                Err(StoreError::Conflict(m)) => assert!(i % 3 == 0 && m.contains(&format!("k{i:02}"))),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(names(&store), ["k01", "k02", "k04", "k05", "k07", "k08"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_transaction_fails_its_batch_and_the_writer_goes_on() {
        let (store, _dir) = crate::test_store();
        let held = hold_writer(&store);
        let s = store.clone();
        let before =
            tokio::spawn(async move { s.write(|c| integration_keys::create(c, "before", at()).map(|_| ())).await });
        let s = store.clone();
        let boom = tokio::spawn(async move {
            s.write(|c| {
                integration_keys::create(c, "boom", at())?;
                if matches!(c, crate::AnyConnection::Sqlite(_)) {
                    panic!("a bug in a transaction");
                }
                Ok(())
            })
            .await
        });
        held.release_after(&store, 2).await;
        assert!(matches!(before.await.unwrap(), Err(StoreError::Unavailable(_))));
        assert!(matches!(boom.await.unwrap(), Err(StoreError::Unavailable(_))));
        store.write(|c| integration_keys::create(c, "after", at()).map(|_| ())).await.unwrap();
        assert_eq!(names(&store), ["after"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_queued_write_does_not_wait_for_reads_holding_the_pool() {
        let dir = std::env::temp_dir().join(format!("tandem-writer-pool-{}", std::process::id()));
        let url = format!("sqlite://{}", dir.join("t.db").display());
        let options = crate::PoolOptions { max_size: 3, connect_timeout: Duration::from_secs(5), min_idle: 0 };
        let store = Store::open(&url, &options).unwrap();
        store.migrate().unwrap();
        // As many reads as the pool has connections: they hold them all
        // until the write is done (a write that waited for one would never be).
        let (holding, held) = std::sync::mpsc::channel();
        let mut releases = Vec::new();
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (s, holding) = (store.clone(), holding.clone());
                let (release, wait) = std::sync::mpsc::channel::<()>();
                releases.push(release);
                std::thread::spawn(move || {
                    s.read_blocking(move |_| {
                        let _ = holding.send(());
                        let _ = wait.recv_timeout(Duration::from_secs(30));
                        Ok(())
                    })
                })
            })
            .collect();
        for _ in 0..3 {
            held.recv_timeout(Duration::from_secs(30)).expect("a read holds a connection");
        }
        let write = store.write(|c| integration_keys::create(c, "queued", at()).map(|_| ()));
        tokio::time::timeout(Duration::from_secs(20), write)
            .await
            .expect("the write waited for a pooled connection")
            .unwrap();
        releases.clear();
        for r in readers {
            r.join().unwrap().unwrap();
        }
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_connection_given_back_inside_a_transaction_leaves_the_pool() {
        use diesel::connection::SimpleConnection;
        let (store, dir) = crate::test_store();
        for _ in 0..3 {
            let s = store.clone();
            let panicked = std::thread::spawn(move || {
                s.write_blocking(|c| -> Result<(), StoreError> {
                    integration_keys::create(c, "boom", at())?;
                    panic!("a bug in a transaction")
                })
            })
            .join();
            assert!(panicked.is_err());
        }
        // Another process (the CLI) gets SQLite's write lock at once: the
        // panicked transaction was rolled back, not left open until the next write.
        let crate::TestDir::Sqlite(path) = &dir else { unreachable!() };
        let mut other =
            <diesel::SqliteConnection as diesel::Connection>::establish(&path.join("t.db").display().to_string())
                .unwrap();
        other.batch_execute("PRAGMA busy_timeout = 0; BEGIN IMMEDIATE; ROLLBACK;").unwrap();
        drop(other);
        store.write_blocking(|c| integration_keys::create(c, "after", at()).map(|_| ())).unwrap();
        assert_eq!(names(&store), ["after"]);
    }

    fn thread_name() -> String {
        std::thread::current().name().unwrap_or_default().to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_write_runs_on_its_caller_when_writes_are_quiet_and_queues_when_they_are_not() {
        let (store, _dir) = crate::test_store();
        let alone = store
            .write_small(|c| {
                integration_keys::create(c, "alone", at())?;
                Ok(thread_name())
            })
            .await
            .unwrap();
        assert_ne!(alone, "tandem-writer");
        let failed = store
            .write_small(|c| {
                integration_keys::create(c, "undone", at())?;
                Err::<(), _>(StoreError::Conflict("no".into()))
            })
            .await;
        assert!(matches!(failed, Err(StoreError::Conflict(_))), "{failed:?}");
        assert_eq!(names(&store), ["alone"], "committed on the caller's thread; the failed one rolled back");

        let held = hold_writer(&store);
        let mut writes = Vec::new();
        for i in 0..3 {
            let s = store.clone();
            writes.push(tokio::spawn(async move {
                s.write_small(move |c| {
                    integration_keys::create(c, &format!("k{i}"), at())?;
                    Ok(thread_name())
                })
                .await
            }));
        }
        held.release_after(&store, 3).await;
        for w in writes {
            assert_eq!(w.await.unwrap().unwrap(), "tandem-writer", "queued behind the running write");
        }
        assert_eq!(names(&store), ["alone", "k0", "k1", "k2"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_write_the_window_alone_queued_does_not_renew_it() {
        let (store, _dir) = crate::test_store();
        let writer = store.writer.clone().unwrap();
        let far = u64::MAX / 2;
        writer.traffic.busy_until.store(far, std::sync::atomic::Ordering::Release);
        let ran = store.write_small(|_| Ok(thread_name())).await.unwrap();
        assert_eq!(ran, "tandem-writer", "queued while writes were busy a moment ago");
        assert_eq!(writer.traffic.busy_until.load(std::sync::atomic::Ordering::Acquire), far, "not pushed further");
        writer.traffic.busy_until.store(0, std::sync::atomic::Ordering::Release);
        until_the_writer_lets_go(&writer);
        let ran = store.write_small(|_| Ok(thread_name())).await.unwrap();
        assert_ne!(ran, "tandem-writer", "a lone batch of one marks nothing: back on the caller's thread");
    }

    /// The writer thread answers a write before it lets go of the write
    /// lock; waits until it has, so the next small write finds it free.
    fn until_the_writer_lets_go(writer: &super::Writer) {
        while writer.lock.try_lock().is_err() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_behind_requests_makes_a_small_write_queue_without_opening_the_busy_window() {
        use std::future::Future;
        let (store, _dir) = crate::test_store();
        let (s, (holding, held)) = (store.clone(), std::sync::mpsc::channel());
        let (release, wait) = std::sync::mpsc::channel::<()>();
        // Holds the write lock until released, not for a fixed time: on a
        // busy machine the small write could otherwise come after it let go.
        let behind = std::thread::spawn(move || {
            s.write_behind(|c| {
                integration_keys::create(c, "behind", at())?;
                let _ = holding.send(());
                let _ = wait.recv_timeout(Duration::from_secs(60));
                Ok(())
            })
        });
        held.recv().unwrap();
        let small = store.write_small(|c| {
            integration_keys::create(c, "small", at())?;
            Ok(thread_name())
        });
        tokio::pin!(small);
        // Its first poll decides where it runs and queues it, while the
        // write behind is known to hold the lock.
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(small.as_mut().poll(cx))).await;
        if let std::task::Poll::Ready(r) = first {
            panic!("ran while the write behind held the lock: {r:?}");
        }
        release.send(()).unwrap();
        let ran = small.await.unwrap();
        assert_eq!(ran, "tandem-writer", "queued, not holding its caller until the write behind is done");
        behind.join().unwrap().unwrap();
        let writer = store.writer.clone().unwrap();
        assert_eq!(writer.traffic.busy_until.load(std::sync::atomic::Ordering::Acquire), 0, "no busy window opened");
        assert_eq!(names(&store), ["behind", "small"]);
        until_the_writer_lets_go(&writer);
        let ran = store.write_small(|_| Ok(thread_name())).await.unwrap();
        assert_ne!(ran, "tandem-writer", "the next one runs on its caller again");
    }

    #[test]
    fn small_writes_queue_for_a_while_after_writes_overlapped() {
        let traffic = super::Traffic {
            queued: std::sync::atomic::AtomicUsize::new(0),
            busy_until: std::sync::atomic::AtomicU64::new(0),
            epoch: std::time::Instant::now(),
        };
        let busy_us = u64::try_from(super::BUSY_FOR.as_micros()).unwrap();
        assert!(traffic.queue_reason_at(5).is_none());
        traffic.busy_at(1_000);
        assert!(matches!(traffic.queue_reason_at(1_000 + busy_us - 1), Some(super::Here::NotNow)));
        assert!(traffic.queue_reason_at(1_000 + busy_us).is_none());
        traffic.queued.store(1, std::sync::atomic::Ordering::Release);
        assert!(
            matches!(traffic.queue_reason_at(u64::MAX), Some(super::Here::Contended)),
            "never while a write is queued"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lone_failed_transaction_is_rolled_back() {
        let (store, _dir) = crate::test_store();
        let r = store
            .write(|c| {
                integration_keys::create(c, "lone", at())?;
                Err::<(), _>(StoreError::Conflict("no".into()))
            })
            .await;
        assert!(matches!(r, Err(StoreError::Conflict(_))));
        assert!(names(&store).is_empty());
    }

    /// Another process writing the file (the CLI creating or revoking an
    /// integration key while the server runs) between a transaction's first
    /// read and its first write: the transaction holds the write lock from
    /// its start, so the other writer waits instead of making this one fail
    /// (a deferred `BEGIN` fails it with SQLITE_BUSY_SNAPSHOT, and with it
    /// every write sharing its commit).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_that_reads_first_is_not_failed_by_another_process_writing() {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let (store, dir) = crate::test_store();
        let crate::TestDir::Sqlite(path) = &dir else { unreachable!() };
        let file = path.join("t.db").display().to_string();
        let (read_done, wait_read) = std::sync::mpsc::channel::<()>();
        let (writing, cli_writes) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            wait_read.recv().unwrap();
            let mut cli = diesel::SqliteConnection::establish(&file).unwrap();
            // Waits as long as the server's transaction may take on a busy machine.
            cli.batch_execute("PRAGMA busy_timeout = 60000").unwrap();
            let mut cli = crate::AnyConnection::Sqlite(cli);
            let _ = writing.send(());
            cli.transaction(|c| integration_keys::create(c, "from-the-cli", at()).map(|_| ()))
        });
        let s = store.clone();
        let wrote = s
            .write(move |c| {
                let before = integration_keys::list(c)?.len();
                read_done.send(()).unwrap();
                // The other process writes while this transaction is open
                // (it may start late on a busy machine), then this one writes.
                let _ = cli_writes.recv_timeout(Duration::from_secs(60));
                std::thread::sleep(Duration::from_millis(300));
                integration_keys::create(c, "from-the-server", at())?;
                Ok(before)
            })
            .await;
        assert_eq!(wrote.unwrap(), 0);
        other.join().unwrap().unwrap();
        assert_eq!(names(&store), ["from-the-cli", "from-the-server"]);
        drop(store);
    }
}
