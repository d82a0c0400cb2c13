//! Group commit for SQLite: concurrent write transactions share one commit.
//!
//! SQLite has one writer at a time, and most of a small write's cost is the
//! commit itself: the WAL frames of every page it touched (a SCIM user row
//! touches its table and six indexes, plus the provisioning log). When
//! several requests write at once, one thread runs them one after the other
//! inside a single transaction, each in its own savepoint, and commits once:
//! pages they share are written once. A transaction that fails rolls back to
//! its savepoint without touching the others; nobody hears of success before
//! the commit that made it durable. No crate does this for diesel; it is the
//! same technique as PostgreSQL's group commit, done in-process.

use crate::background::Background;
use crate::{AnyConnection, StoreError};
use diesel::connection::TransactionManager;
use diesel::Connection;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

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

/// The writer thread; dropping the last handle stops it after the queue drains.
pub struct Writer {
    thread: Background<Job>,
}

impl Writer {
    /// Starts the writer on connections of `pool`, holding `lock` (the
    /// store's in-process write lock) while it writes.
    pub fn start(pool: Pool, lock: Arc<Mutex<()>>) -> std::io::Result<Writer> {
        let thread = Background::spawn("tandem-writer", move |jobs: Receiver<Job>| run(&pool, &lock, &jobs))?;
        Ok(Writer { thread })
    }

    /// Runs `f` as one transaction; resolves after the commit that holds it.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(Pending { f, done, span: tracing::Span::current() });
        let queue =
            self.thread.sender().ok_or_else(|| StoreError::Unavailable("the database writer stopped".into()))?;
        queue.send(job).map_err(|_| StoreError::Unavailable("the database writer stopped".into()))?;
        result.await.map_err(|_| StoreError::Unavailable("a database write was abandoned".into()))?
    }
}

fn run(pool: &Pool, lock: &Mutex<()>, jobs: &Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut conn = match pool.get() {
            Ok(c) => c,
            Err(e) => {
                let e = StoreError::Unavailable(e.to_string());
                fail_all(batch, &e);
                continue;
            }
        };
        let _guard = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        commit_batch(&mut conn, batch);
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

fn commit_batch(conn: &mut AnyConnection, batch: Vec<Job>) {
    if let Err(e) = Tm::begin_transaction(conn) {
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

    /// Holds the writer busy so the next writes queue up and share one batch.
    fn hold_writer(store: &Store) -> tokio::task::JoinHandle<Result<(), StoreError>> {
        let s = store.clone();
        let held = tokio::spawn(async move {
            s.write(|_| {
                std::thread::sleep(Duration::from_millis(300));
                Ok(())
            })
            .await
        });
        std::thread::sleep(Duration::from_millis(50));
        held
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
        held.await.unwrap().unwrap();
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
        held.await.unwrap().unwrap();
        assert!(matches!(before.await.unwrap(), Err(StoreError::Unavailable(_))));
        assert!(matches!(boom.await.unwrap(), Err(StoreError::Unavailable(_))));
        store.write(|c| integration_keys::create(c, "after", at()).map(|_| ())).await.unwrap();
        assert_eq!(names(&store), ["after"]);
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
}
