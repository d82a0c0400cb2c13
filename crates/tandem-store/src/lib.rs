//! Tandem's storage: one diesel schema over SQLite (the embedded default)
//! and PostgreSQL, chosen by the database URL's scheme.
//!
//! Every query is written once against [`AnyConnection`]; the rare statement
//! a backend spells differently sits behind a small `match` in its module.
//! Reads run on tokio's blocking pool through [`Store::read`] (on SQLite,
//! point reads on the calling thread: [`Store::read_indexed`]); writes
//! through [`Store::write`], on SQLite by the group-commit writer
//! (`writer.rs`), on PostgreSQL on the blocking pool. On SQLite a small
//! write ([`Store::write_small`]) commits on the calling thread while writes
//! are quiet. All carry the caller's tracing span.

/// Runs a diesel query on the concrete connection inside an
/// [`AnyConnection`]: `on_backend!(conn, |c| query.first(c))`.
///
/// Through the enum, diesel's `MultiConnection` renders a query's whole SQL
/// text on every call just to learn whether its prepared statement may be
/// kept (~11 % of a mixed run's instructions under callgrind); on the concrete
/// connection the kept statement is found by the query's static type. The
/// body is compiled once per backend, so it must suit both (as any query
/// written against `AnyConnection` already does). Used on the hot reads and
/// for the hand-written statements (`scim::query`).
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::AnyConnection::Sqlite($c) => $body,
            $crate::AnyConnection::Postgresql($c) => $body,
        }
    };
}

/// The first row of a diesel `query` on PostgreSQL, if any, locked with a
/// [`RowLock`]: `first_locked!(query, lock, c)`. The three locking clauses
/// are three types in diesel, so each is spelled out once here.
macro_rules! first_locked {
    ($query:expr, $lock:expr, $c:expr) => {
        match $lock {
            $crate::RowLock::Update => $query.for_update().first($c).optional(),
            $crate::RowLock::NoKeyUpdate => $query.for_no_key_update().first($c).optional(),
            $crate::RowLock::KeyShare => $query.for_key_share().first($c).optional(),
        }
    };
}

pub mod audit;
pub mod background;
mod checkpoint;
mod conn;
pub mod dashboard_sessions;
pub mod events;
pub mod integration_keys;
pub mod matching;
pub mod meta;
pub mod oidc_clients;
pub mod schema;
pub mod schema_check;
pub mod scim;
pub mod scim_connections;
pub mod setup_links;
pub mod sink;
pub mod sso;
mod time;
pub mod webhooks;
mod writer;

pub use conn::{AnyConnection, DatabaseUrl};
pub use time::{from_micros, micros, use_due};

use diesel::connection::SimpleConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No connection could be had (database down, pool exhausted), or the
    /// one held was lost.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database could not do a statement now, and may on a retry: a
    /// deadlock or serialization failure, a cancelled statement, SQLite
    /// busy past its timeout on a pooled connection (see
    /// `conn::transient`; the SQLite writer's own failures are `Unavailable`).
    #[error("the database could not do it now: {0}")]
    Busy(String),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// A uniqueness rule was broken; names the rule.
    #[error("{0}")]
    Conflict(String),
    /// Another OIDC client's redirect URL has the same path; names it.
    #[error("{0}")]
    RedirectPathTaken(String),
    /// Stored data could not be read back (e.g. a secret that does not decrypt).
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// A row the write refers to was deleted by a concurrent transaction
    /// (where a foreign key would have refused the write); names it.
    #[error("{0} was deleted while the write ran")]
    Gone(String),
    /// Migrations failed.
    #[error("database migration failed: {0}")]
    Migration(String),
}

impl StoreError {
    /// Whether this is a unique-constraint clash (from a race the pre-check missed).
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            StoreError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }

    /// This error, or `clash()` when it broke a uniqueness rule (a race the
    /// check before the write missed); otherwise the error as `E`.
    pub fn unique_as<E: From<StoreError>>(self, clash: impl FnOnce() -> E) -> E {
        if self.is_unique_violation() {
            clash()
        } else {
            self.into()
        }
    }

    /// Whether a row referred to a row that is gone (deleted by a
    /// concurrent transaction after this one checked it).
    pub fn is_foreign_key_violation(&self) -> bool {
        matches!(
            self,
            StoreError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _
            ))
        )
    }
}

/// The lock a write transaction takes on a row it reads, on PostgreSQL
/// (SQLite's writes are one at a time). Held until the transaction ends.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RowLock {
    /// `FOR UPDATE`: the row will be deleted (or marked deleted), or its
    /// key changed; writes that will refer to it (holding `KeyShare`) wait,
    /// and it waits for them.
    Update,
    /// `FOR NO KEY UPDATE`: the row will be changed and kept; rows referring
    /// to it may still be written meanwhile.
    NoKeyUpdate,
    /// `FOR KEY SHARE`: the row must stay (something will refer to it).
    KeyShare,
}

/// The PostgreSQL advisory lock key migrations run under ("tandem" in ASCII).
const MIGRATION_LOCK: i64 = 0x74_61_6e_64_65_6d;

/// Pool settings.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    /// Most connections held open.
    pub max_size: u32,
    /// How long a caller waits for a free connection.
    pub connect_timeout: Duration,
    /// Connections kept open while idle; the pool opens them on its own
    /// threads. 0 for a short-lived process (a CLI command): a connection
    /// still being opened on a pool thread when the process exits can crash
    /// it, as libpq's TLS libraries are torn down at exit under it.
    pub min_idle: u32,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions { max_size: 8, connect_timeout: Duration::from_secs(5), min_idle: 1 }
    }
}

type Pool = r2d2::Pool<conn::Manager>;

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    url: Arc<DatabaseUrl>,
    // SQLite: the WAL checkpoint thread, stopped when the last handle goes.
    _checkpointer: Option<Arc<checkpoint::Checkpointer>>,
    // SQLite: the group-commit writer of `write` (see writer.rs). SQLite
    // allows one writer; serialising writes in-process, on one connection,
    // avoids deferred-transaction upgrade deadlocks and busy-waiting.
    writer: Option<Arc<writer::Writer>>,
}

/// Applies SQLite's pending migrations in one transaction that takes the
/// database's write lock before it reads which are pending (`BEGIN
/// IMMEDIATE`; each migration is a savepoint in it). Two processes starting
/// on one new file (the server and a CLI command) both read the list before
/// either wrote, and the second failed on a table the first had just made;
/// now the second waits for the first (the busy timeout) and finds nothing
/// pending. The migrations hold no statement SQLite refuses in a
/// transaction (no PRAGMA, no VACUUM).
fn migrate_sqlite(c: &mut diesel::SqliteConnection) -> Result<usize, StoreError> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
    let applied =
        c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()).map_err(|e| StoreError::Migration(e.to_string()));
    match applied {
        Ok(n) => {
            AnsiTransactionManager::commit_transaction(c)?;
            Ok(n)
        }
        Err(e) => {
            let _ = AnsiTransactionManager::rollback_transaction(c);
            Err(e)
        }
    }
}

/// Creates a SQLite file's missing directories (mode 0700) and the file
/// itself (mode 0600) when it does not exist: it holds SCIM users' data and
/// hashes of keys, and SQLite gives its `-wal` and `-shm` files the
/// database file's mode. An existing file or directory is left as it is.
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        create_private_dir(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates `dir` and its missing parents, mode 0700 (the data directory,
/// which holds the database and the key file). An existing one is left as it is.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

impl Store {
    /// Opens a pool on `url` (`sqlite://path`, a bare path, or `postgres://…`).
    /// A SQLite file's directory is created when missing.
    pub fn open(url: &str, options: &PoolOptions) -> Result<Store, StoreError> {
        let url = DatabaseUrl::parse(url).map_err(StoreError::Unavailable)?;
        if let DatabaseUrl::Sqlite(path) = &url {
            create_private(std::path::Path::new(path))
                .map_err(|e| StoreError::Unavailable(format!("cannot create {path}: {e}")))?;
        }
        let pool = r2d2::Pool::builder()
            .max_size(options.max_size)
            .min_idle(Some(options.min_idle))
            .connection_timeout(options.connect_timeout)
            .test_on_check_out(matches!(url, DatabaseUrl::Postgres(_)))
            .build(conn::Manager::new(url.clone()))
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let checkpointer = match &url {
            DatabaseUrl::Sqlite(path) => checkpoint::Checkpointer::start(path.clone()).map(Arc::new),
            DatabaseUrl::Postgres(_) => None,
        };
        let writer = match &url {
            DatabaseUrl::Sqlite(_) => Some(Arc::new(
                writer::Writer::start(pool.clone(), conn::Manager::new(url.clone()))
                    .map_err(|e| StoreError::Unavailable(format!("cannot start the database writer: {e}")))?,
            )),
            DatabaseUrl::Postgres(_) => None,
        };
        Ok(Store { pool, url: Arc::new(url), _checkpointer: checkpointer, writer })
    }

    /// Which backend this store talks to.
    pub fn backend(&self) -> &'static str {
        match *self.url {
            DatabaseUrl::Sqlite(_) => "sqlite",
            DatabaseUrl::Postgres(_) => "postgres",
        }
    }

    /// Applies every pending migration; returns how many ran.
    ///
    /// On PostgreSQL under a session advisory lock, so that nodes starting
    /// together (a rollout, several replicas on an empty database) migrate
    /// one after the other: the others then find nothing pending, instead
    /// of failing on a table the first one just created. On SQLite in one
    /// transaction that takes the write lock first, for the same reason
    /// (see [`migrate_sqlite`]).
    /// How many migrations the database has applied, and how many of this
    /// release's it has not (both 0 on a database nothing set up yet but
    /// the migrations' own table).
    pub fn migration_state(&self) -> Result<(usize, usize), StoreError> {
        let mut conn = self.conn()?;
        let migrations = match *self.url {
            DatabaseUrl::Sqlite(_) => SQLITE_MIGRATIONS,
            DatabaseUrl::Postgres(_) => POSTGRES_MIGRATIONS,
        };
        let failed = |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(e.to_string());
        let applied = conn.applied_migrations().map_err(failed)?.len();
        let pending = conn.pending_migrations(migrations).map_err(failed)?.len();
        Ok((applied, pending))
    }

    pub fn migrate(&self) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let migrations = match *self.url {
            DatabaseUrl::Sqlite(_) => SQLITE_MIGRATIONS,
            DatabaseUrl::Postgres(_) => POSTGRES_MIGRATIONS,
        };
        // Waiting for another node's migrations, and a migration itself,
        // may take longer than a statement may: no timeout meanwhile.
        let timeout = match &mut **conn {
            AnyConnection::Postgresql(c) => Some(conn::statement_timeout(c)?),
            AnyConnection::Sqlite(_) => None,
        };
        let locked = timeout.is_some();
        if let (AnyConnection::Postgresql(pg), Some(t)) = (&mut **conn, &timeout) {
            let waited = pg.batch_execute("SET statement_timeout = 0").and_then(|()| wait_for_migration_lock(pg));
            if let Err(e) = waited {
                // The pooled connection keeps the timeout it had.
                let _ = conn::set_statement_timeout(pg, t);
                return Err(e.into());
            }
        }
        let applied = match &mut **conn {
            AnyConnection::Sqlite(c) => migrate_sqlite(c),
            _ => conn
                .run_pending_migrations(migrations)
                .map(|v| v.len())
                .map_err(|e| StoreError::Migration(e.to_string())),
        };
        // Under the same lock: one node at a time. A failure leaves the
        // clients as they are (they still sign in), and is logged.
        if applied.is_ok() {
            match oidc_clients::normalize_issuers(&mut conn) {
                Ok(0) => {}
                Ok(n) => tracing::info!(clients = n, "issuers brought to lower case"),
                Err(e) => tracing::warn!(error = %e, "could not bring stored issuers to lower case"),
            }
            match events::renumber_moved(&mut conn) {
                Ok(0) => {}
                Ok(n) => tracing::warn!(
                    events = n,
                    "directory events brought from another PostgreSQL server put before new ones; \
                     cursors from before the move are refused as expired"
                ),
                Err(e) => tracing::warn!(error = %e, "could not renumber directory events from another server"),
            }
        }
        if locked {
            // Released with the session too, should this fail.
            let _ = conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"));
        }
        if let (Some(t), AnyConnection::Postgresql(pg)) = (timeout, &mut **conn) {
            let restored = conn::set_statement_timeout(pg, &t);
            // A failed migration's own error is the answer.
            let applied = applied?;
            restored?;
            return Ok(applied);
        }
        applied
    }

    /// Reverts every migration (tests of the down scripts).
    pub fn revert_all(&self) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let migrations = match *self.url {
            DatabaseUrl::Sqlite(_) => SQLITE_MIGRATIONS,
            DatabaseUrl::Postgres(_) => POSTGRES_MIGRATIONS,
        };
        conn.revert_all_migrations(migrations).map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(())
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<conn::Manager>, StoreError> {
        self.pool.get().map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// Runs `f` with a connection on the blocking pool (reads, or a single
    /// autocommit statement).
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            store.read_blocking(f)
        })
        .instrument(tracing::Span::current())
        .await
        .map_err(|e| StoreError::Unavailable(format!("database task failed: {e}")))?
    }

    /// Runs a read that an index answers in microseconds (a row by its key,
    /// an `eq` search on an indexed column) at once on the calling thread,
    /// when the database is SQLite and a pooled connection is free: handing
    /// it to a blocking thread and back costs two thread wake-ups, more than
    /// such a read. Anything else, and every read on PostgreSQL (a network
    /// round trip), goes through [`Store::read`].
    pub async fn read_indexed<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        if let DatabaseUrl::Sqlite(_) = *self.url {
            if let Some(mut conn) = self.pool.try_get() {
                let result = f(&mut conn);
                return conn.settle(result);
            }
        }
        self.read(f).await
    }

    /// Like [`Store::read_indexed`], for a read between writes (a login's,
    /// whose claim and records are writes): on SQLite it runs on the write
    /// connection when no write is under way, whose page cache the writes
    /// keep (see [`writer::Writer::read_now`]).
    pub async fn read_warm<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let f = match &self.writer {
            Some(writer) => match writer.read_now(f) {
                Ok(result) => return result,
                Err(f) => f,
            },
            None => f,
        };
        self.read_indexed(f).await
    }

    /// Runs `f` inside one transaction: on SQLite through the group-commit
    /// writer (concurrent transactions share a commit, each in its own
    /// savepoint), on PostgreSQL on the blocking pool.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        if let Some(writer) = &self.writer {
            return writer.write(f).await;
        }
        let store = self.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            store.write_blocking(f)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("database task failed: {e}")))?
    }

    /// Runs a transaction of a few rows found by key (a SCIM user written,
    /// a login's steps) like [`Store::write`], except that on SQLite, when
    /// no other write is queued or running, none overlapped in the last
    /// 20 ms, it runs and commits at once (on the write connection) on
    /// the calling thread instead of on the writer's (two thread wake-ups
    /// fewer). It then holds that thread for the transaction: normally tens
    /// of microseconds, but up to the busy timeout (5 s) if another process
    /// (the CLI) is writing the file, and a commit that finds the WAL past
    /// its automatic-checkpoint size (the background checkpointer fell far
    /// behind) runs that checkpoint. Anything that may touch many rows goes
    /// through `write`, which never holds up the caller's thread.
    pub async fn write_small<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer.write_now(f).await,
            None => self.write(f).await,
        }
    }

    /// Runs `f`, whose writes are each complete in one statement (an
    /// insert that claims a key), like [`Store::write_small`] on SQLite; on
    /// PostgreSQL without a transaction around them: each statement commits
    /// on its own, which saves the round trips of `BEGIN` and `COMMIT`. Use
    /// it only where `f`'s statements need not commit together: when `f`
    /// fails after a write, SQLite undoes the write and PostgreSQL keeps it.
    pub async fn write_autocommit<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer.write_now(f).await,
            None => self.read(f).await,
        }
    }

    /// A transaction written behind requests (batched log records), on the
    /// calling thread; on SQLite it does not make the requests' own small
    /// writes queue (see [`writer::Writer::write_behind`]).
    pub fn write_behind<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError>,
    {
        match &self.writer {
            Some(writer) => writer.write_behind(f),
            None => self.write_blocking(f),
        }
    }

    /// The synchronous form of [`Store::write`], for the CLI, housekeeping
    /// and tests; on SQLite it is [`Store::write_behind`] (the write connection).
    pub fn write_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError>,
    {
        if let Some(writer) = &self.writer {
            return writer.write_behind(f);
        }
        let mut conn = self.conn()?;
        let result = writer::write_transaction(&mut conn, f);
        conn.settle(result)
    }

    /// The synchronous form of [`Store::read`].
    pub fn read_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError>,
    {
        let mut conn = self.conn()?;
        let result = f(&mut conn);
        conn.settle(result)
    }

    /// Refreshes the query planner's statistics where the backend needs it
    /// (SQLite's `PRAGMA optimize`; PostgreSQL's autovacuum does it itself).
    pub fn optimize(&self) -> Result<(), StoreError> {
        if let DatabaseUrl::Sqlite(_) = *self.url {
            self.read_blocking(|c| c.batch_execute("PRAGMA optimize").map_err(StoreError::from))?;
        }
        Ok(())
    }

    /// Whether the database's `lower()` folds letters beyond ASCII, as
    /// SCIM's `caseExact: false` filters and the login-event email search
    /// need: on SQLite Tandem's own (Unicode); on PostgreSQL the database's
    /// ctype's, which under `C` or `POSIX` folds ASCII letters only.
    pub fn folds_unicode_case(&self) -> Result<bool, StoreError> {
        #[derive(diesel::QueryableByName)]
        struct Folds {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            folds: bool,
        }
        self.read_blocking(|c| {
            let row: Folds =
                diesel::RunQueryDsl::get_result(diesel::sql_query("SELECT lower('ÉÅ') = 'éå' AS folds"), c)?;
            Ok(row.folds)
        })
    }

    /// Checks the database answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.batch_execute("SELECT 1").map_err(StoreError::from)).await
    }
}

/// Takes the migration lock, asking again every second while another
/// session holds it, and saying so: at once, then every 30 s as a warning
/// (a node migrating for that long, or a session of a pooler in
/// transaction mode that kept the lock when its client went).
fn wait_for_migration_lock(pg: &mut diesel::PgConnection) -> Result<(), diesel::result::Error> {
    let began = std::time::Instant::now();
    let mut said: Option<u64> = None;
    while !try_migration_lock(pg)? {
        let waited = began.elapsed().as_secs();
        match said {
            None => {
                tracing::info!(lock = MIGRATION_LOCK, "waiting for another node's migrations to finish");
                said = Some(waited);
            }
            Some(last) if waited >= last + 30 => {
                said = Some(waited);
                tracing::warn!(
                    waited_secs = waited,
                    lock = format!(
                        "pg_locks: locktype 'advisory', classid {}, objid {}",
                        MIGRATION_LOCK >> 32,
                        MIGRATION_LOCK & 0xFFFF_FFFF
                    ),
                    "still waiting for the migration lock: another node is migrating, or a session holds the lock \
                 (one a pooler in transaction mode kept); pg_stat_activity names it, pg_terminate_backend ends it"
                );
            }
            Some(_) => {}
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    Ok(())
}

/// Takes the migration lock if no other session holds it.
fn try_migration_lock(pg: &mut diesel::PgConnection) -> Result<bool, diesel::result::Error> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Taken {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        taken: bool,
    }
    let row: Taken =
        diesel::sql_query(format!("SELECT pg_try_advisory_lock({MIGRATION_LOCK}) AS taken")).get_result(pg)?;
    Ok(row.taken)
}

/// A migrated store on a fresh SQLite file, for the crate's own tests; the
/// directory is removed when the guard drops.
#[cfg(test)]
pub(crate) fn test_store() -> (Store, TestDir) {
    let dir = std::env::temp_dir().join(format!("tandem-store-test-{}", tandem_core::new_id()));
    let store = Store::open(&format!("sqlite://{}", dir.join("t.db").display()), &PoolOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    store.migrate().unwrap_or_else(|e| panic!("{e}"));
    (store, TestDir::Sqlite(dir))
}

/// A migrated store for tests of SQL that differs by backend: on a fresh
/// PostgreSQL database beside the suite's when `SUITE_DATABASE_URL` names
/// one (as `.ci/run`'s second pass does), on a fresh SQLite file otherwise.
/// The scratch database is named `tandem_scratch_…` (`.ci/run` drops any
/// left behind); the store must be dropped before the guard.
#[cfg(test)]
pub(crate) fn test_store_any_backend() -> (Store, TestDir) {
    let Some(base) = std::env::var("SUITE_DATABASE_URL").ok().filter(|u| u.starts_with("postgres")) else {
        return test_store();
    };
    let name = format!("tandem_scratch_{}", tandem_core::new_id().replace('-', ""));
    let admin =
        Store::open(&base, &PoolOptions { max_size: 1, ..Default::default() }).unwrap_or_else(|e| panic!("{e}"));
    let create = format!("CREATE DATABASE {name}");
    admin.read_blocking(move |c| c.batch_execute(&create).map_err(StoreError::from)).unwrap_or_else(|e| panic!("{e}"));
    let (prefix, _) = base.rsplit_once('/').unwrap_or_else(|| panic!("{base}"));
    let store = Store::open(&format!("{prefix}/{name}"), &PoolOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    store.migrate().unwrap_or_else(|e| panic!("{e}"));
    (store, TestDir::Postgres(admin, name))
}

/// What a test's store lives in, removed on drop.
#[cfg(test)]
pub(crate) enum TestDir {
    /// A SQLite file's directory.
    Sqlite(std::path::PathBuf),
    /// A scratch PostgreSQL database, and a store on the suite's database to drop it from.
    Postgres(Store, String),
}

#[cfg(test)]
impl Drop for TestDir {
    fn drop(&mut self) {
        match self {
            TestDir::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            TestDir::Postgres(admin, name) => {
                let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let _ = admin.read_blocking(move |c| c.batch_execute(&drop).map_err(StoreError::from));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issuers stored before they were kept in lower case are brought to it
    /// when the store migrates (at every start).
    #[test]
    fn stored_issuers_are_brought_to_lower_case_at_start() {
        let (store, _dir) = test_store_any_backend();
        let spec = tandem_core::oidc_client::parse_create(
            &serde_json::json!({"customer_id": "acme", "redirect_url": "https://app.example/cb",
                "idp": {"type": "Generic", "client_id": "c", "client_secret": "s", "issuer": "https://idp.example/Realms/A"}}),
            tandem_core::oidc_client::UrlPolicy::default(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"))
        .spec;
        let (key, _) = tandem_core::secret::SecretKey::generate().unwrap_or_else(|e| panic!("{e}"));
        let mut row = oidc_clients::OidcClientRow::from_spec("c1", &spec, &key, None, 0, chrono::DateTime::UNIX_EPOCH);
        row.issuer = "https://IdP.Example/Realms/A/".into();
        store.write_blocking(|c| oidc_clients::insert(c, &row)).unwrap_or_else(|e| panic!("{e}"));
        store.migrate().unwrap_or_else(|e| panic!("{e}"));
        let stored = store.read_blocking(|c| oidc_clients::get(c, "c1")).unwrap_or_else(|e| panic!("{e}"));
        // As a change of the row: an edit that read it before tries again on the new version.
        assert_eq!(
            stored.map(|r| (r.issuer, r.updated_at)),
            Some(("https://idp.example/Realms/A".into(), row.updated_at + 1))
        );
    }

    /// The migration that brought `scim_required` sets it on every client
    /// paired at the time, and on no other.
    #[test]
    fn clients_paired_before_scim_required_existed_start_with_it_set() {
        let (store, _dir) = test_store_any_backend();
        let (key, _) = tandem_core::secret::SecretKey::generate().unwrap_or_else(|e| panic!("{e}"));
        let row = |id: &str, customer: &str| {
            let spec = tandem_core::oidc_client::parse_create(
                &serde_json::json!({"customer_id": customer, "redirect_url": format!("https://app.example/{id}"),
                    "idp": {"type": "Generic", "client_id": "c", "client_secret": "s", "issuer": "https://idp.example"}}),
                tandem_core::oidc_client::UrlPolicy::default(),
            )
            .unwrap_or_else(|e| panic!("{e:?}"))
            .spec;
            oidc_clients::OidcClientRow::from_spec(id, &spec, &key, None, 0, chrono::DateTime::UNIX_EPOCH)
        };
        let (paired, lone) = (row("c1", "acme"), row("c2", "solo"));
        let reverted = store
            .write_blocking(|c| {
                oidc_clients::insert(c, &paired)?;
                oidc_clients::insert(c, &lone)?;
                scim_connections::create(c, "acme", None, "reject", chrono::DateTime::UNIX_EPOCH)?;
                // Back to the schema before the column (reverting the later
                // migrations first), then forward again.
                let mut reverted = 0;
                loop {
                    let version = match c {
                        AnyConnection::Sqlite(s) => s.revert_last_migration(SQLITE_MIGRATIONS),
                        AnyConnection::Postgresql(p) => p.revert_last_migration(POSTGRES_MIGRATIONS),
                    };
                    let version = version.map_err(|e| StoreError::Migration(e.to_string()))?.to_string();
                    reverted += 1;
                    assert!(version.as_str() >= "20261206000010", "went past the scim_required migration: {version}");
                    if version == "20261206000010" {
                        return Ok(reverted);
                    }
                }
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.migrate().unwrap_or_else(|e| panic!("{e}")), reverted);
        let required = |id: &'static str| {
            store
                .read_blocking(move |c| oidc_clients::get(c, id))
                .unwrap_or_else(|e| panic!("{e}"))
                .map(|r| r.scim_required)
        };
        assert_eq!((required("c1"), required("c2")), (Some(true), Some(false)));
    }

    /// The start-up warning's shared paths: Entra clients of one application
    /// on one path are not reported; two clients of any other kind are, even
    /// with the same settings.
    #[test]
    fn paths_shared_by_one_entra_application_are_not_reported() {
        let (store, _dir) = test_store_any_backend();
        let (key, _) = tandem_core::secret::SecretKey::generate().unwrap_or_else(|e| panic!("{e}"));
        let row = |id: &str, path: &str, idp: serde_json::Value| {
            let spec = tandem_core::oidc_client::parse_create(
                &serde_json::json!({"customer_id": id, "redirect_url": format!("https://app.example{path}"), "idp": idp}),
                tandem_core::oidc_client::UrlPolicy::default(),
            )
            .unwrap_or_else(|e| panic!("{e:?}"))
            .spec;
            oidc_clients::OidcClientRow::from_spec(id, &spec, &key, None, 0, chrono::DateTime::UNIX_EPOCH)
        };
        let entra = |tenant: &str| serde_json::json!({"type": "MicrosoftEntra", "client_id": "app-1", "client_secret": "s", "tenant_id": tenant});
        let generic = serde_json::json!({"type": "Generic", "client_id": "c", "client_secret": "s", "issuer": "https://idp.example"});
        let rows = [
            row("e1", "/cb", entra("00000000-0000-0000-0000-000000000001")),
            row("e2", "/cb", entra("00000000-0000-0000-0000-000000000002")),
            row("g1", "/g", generic.clone()),
            row("g2", "/g", generic),
            row("alone", "/alone", entra("00000000-0000-0000-0000-000000000003")),
        ];
        store
            .write_blocking(move |c| {
                for r in &rows {
                    oidc_clients::insert(c, r)?;
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let shared = store.read_blocking(oidc_clients::shared_redirect_paths).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(shared, [("/g".to_string(), vec!["g1".to_string(), "g2".to_string()])]);
    }

    /// `lower()` folds more than ASCII on SQLite and on a PostgreSQL
    /// database of a UTF-8 ctype, not on one of ctype `C` (which the server
    /// then warns of at start).
    #[test]
    fn lower_folds_unicode_unless_the_postgresql_ctype_is_c() {
        let (store, dir) = test_store_any_backend();
        assert!(store.folds_unicode_case().unwrap_or_else(|e| panic!("{e}")));
        let TestDir::Postgres(admin, name) = &dir else { return };
        let c_name = format!("{name}_c");
        let create = format!("CREATE DATABASE {c_name} TEMPLATE template0 ENCODING 'UTF8' LC_CTYPE 'C' LC_COLLATE 'C'");
        admin
            .read_blocking(move |c| c.batch_execute(&create).map_err(StoreError::from))
            .unwrap_or_else(|e| panic!("{e}"));
        let base = std::env::var("SUITE_DATABASE_URL").unwrap_or_default();
        let (prefix, _) = base.rsplit_once('/').unwrap_or_else(|| panic!("{base}"));
        let c_store =
            Store::open(&format!("{prefix}/{c_name}"), &PoolOptions { max_size: 1, min_idle: 0, ..Default::default() })
                .unwrap_or_else(|e| panic!("{e}"));
        let folds = c_store.folds_unicode_case();
        drop(c_store);
        let drop_it = format!("DROP DATABASE IF EXISTS {c_name} WITH (FORCE)");
        let _ = admin.read_blocking(move |c| c.batch_execute(&drop_it).map_err(StoreError::from));
        assert!(!folds.unwrap_or_else(|e| panic!("{e}")), "ctype C folds ASCII only");
    }

    /// PostgreSQL statements are cancelled after a minute, unless the URL
    /// (or the role, or the database) sets a timeout of its own; migrations
    /// run without one and leave it as it was.
    #[test]
    fn postgresql_statements_time_out_after_a_minute_unless_the_url_says_otherwise() {
        let (store, dir) = test_store_any_backend();
        let TestDir::Postgres(_, name) = &dir else { return };
        let show = |s: &Store| {
            s.read_blocking(|c| match c {
                AnyConnection::Postgresql(pg) => conn::statement_timeout(pg).map_err(StoreError::from),
                AnyConnection::Sqlite(_) => panic!("a PostgreSQL store"),
            })
            .unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(show(&store), "1min");
        store.migrate().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(show(&store), "1min");
        let base = std::env::var("SUITE_DATABASE_URL").unwrap_or_default();
        let (prefix, _) = base.rsplit_once('/').unwrap_or_else(|| panic!("{base}"));
        let url = format!("{prefix}/{name}?options=-c%20statement_timeout%3D5s");
        let own = Store::open(&url, &PoolOptions { max_size: 1, min_idle: 0, ..Default::default() })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(show(&own), "5s");
        drop(own);
        // None on purpose is none.
        let url = format!("{prefix}/{name}?options=-c%20statement_timeout%3D0");
        let own = Store::open(&url, &PoolOptions { max_size: 1, min_idle: 0, ..Default::default() })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(show(&own), "0");
        drop(own);
        drop(store);
    }

    /// Transactions are READ COMMITTED, which the store's locks rely on,
    /// even where the database's default is stricter.
    #[test]
    fn postgresql_transactions_read_committed_whatever_the_databases_default() {
        use diesel::connection::SimpleConnection;
        use diesel::RunQueryDsl;
        let (store, dir) = test_store_any_backend();
        let TestDir::Postgres(_, name) = &dir else { return };
        let name = name.clone();
        store
            .write_blocking(move |c| {
                c.batch_execute(&format!(
                    "ALTER DATABASE \"{name}\" SET default_transaction_isolation = 'repeatable read'"
                ))?;
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let base = std::env::var("SUITE_DATABASE_URL").unwrap_or_default();
        let (prefix, _) = base.rsplit_once('/').unwrap_or_else(|| panic!("{base}"));
        let TestDir::Postgres(_, name) = &dir else { return };
        let own =
            Store::open(&format!("{prefix}/{name}"), &PoolOptions { max_size: 1, min_idle: 0, ..Default::default() })
                .unwrap_or_else(|e| panic!("{e}"));
        #[derive(diesel::QueryableByName)]
        struct Level {
            #[diesel(sql_type = diesel::sql_types::Text)]
            transaction_isolation: String,
        }
        let level = own
            .write_blocking(|c| {
                let rows: Vec<Level> = diesel::sql_query("SHOW transaction_isolation").load(c)?;
                Ok(rows.into_iter().next().map(|r| r.transaction_isolation).unwrap_or_default())
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(level, "read committed");
        drop(own);
        drop(store);
    }

    /// A statement the database cancels (here by its timeout; a deadlock or
    /// a serialization failure is the same kind of answer) is the database
    /// unavailable for now, which the API answers 503, not a query error
    /// (500); the connection stays usable.
    #[test]
    fn a_cancelled_statement_reads_as_the_database_unavailable_for_now() {
        let lost = diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::SerializationFailure,
            Box::new(String::from("could not serialize access")),
        );
        assert_eq!(conn::transient(&lost).map(|(dropped, _)| dropped), Some(false));
        let unique = diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            Box::new(String::from("duplicate key")),
        );
        assert_eq!(conn::transient(&unique), None);
        let busy = diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            Box::new(String::from("deadlock detected")),
        );
        assert!(conn::transient(&busy).is_some());
        let (store, _dir) = test_store_any_backend();
        let sql = match *store.url {
            DatabaseUrl::Postgres(_) => "SET statement_timeout = 1; SELECT pg_sleep(0.2)",
            DatabaseUrl::Sqlite(_) => return,
        };
        let result = store.read_blocking(|c| c.batch_execute(sql).map_err(StoreError::from));
        assert!(matches!(&result, Err(StoreError::Busy(m)) if m.contains("canceling statement")), "{result:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_indexed_read_on_sqlite_runs_on_the_calling_thread_and_others_do_not() {
        let (store, _dir) = test_store();
        let here = std::thread::current().id();
        let indexed = store.read_indexed(|_| Ok(std::thread::current().id())).await.unwrap();
        let other = store.read(|_| Ok(std::thread::current().id())).await.unwrap();
        assert_eq!(indexed, here);
        assert_ne!(other, here);
        // With every connection taken it waits for one on the blocking pool instead.
        let held: Vec<_> = (0..PoolOptions::default().max_size).map(|_| store.conn().unwrap()).collect();
        let s = store.clone();
        let waiting = tokio::spawn(async move { s.read_indexed(|_| Ok(std::thread::current().id())).await });
        tokio::task::yield_now().await; // it starts, finds no free connection and hands the read over
        drop(held);
        assert_ne!(waiting.await.unwrap().unwrap(), here);
    }
}
