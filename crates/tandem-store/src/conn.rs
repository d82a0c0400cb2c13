//! The connection type over both backends and the pool manager that picks
//! the backend from the URL scheme and sets SQLite's pragmas on connect.

use diesel::connection::SimpleConnection;
use diesel::{Connection, ConnectionError, PgConnection, SqliteConnection};
use std::time::{Duration, Instant};

/// A connection to either backend; queries are written once against it.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    /// PostgreSQL.
    Postgresql(PgConnection),
    /// SQLite.
    Sqlite(SqliteConnection),
}

/// A database location, by backend.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file path.
    Sqlite(String),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseUrl::Sqlite(p) => write!(f, "sqlite://{p}"),
            // The URL may carry a password.
            DatabaseUrl::Postgres(_) => f.write_str("postgres://***"),
        }
    }
}

impl DatabaseUrl {
    /// Parses `sqlite://path`, `sqlite:path`, or `postgres://…` /
    /// `postgresql://…`. Anything else is refused with a message.
    pub fn parse(url: &str) -> Result<DatabaseUrl, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            check_postgres_url(url)?;
            return Ok(DatabaseUrl::Postgres(url.to_string()));
        }
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err("the sqlite:// database URL needs a file path, e.g. sqlite://./data/tandem.db".into());
            }
            // Every pooled connection and the writer open the path: an
            // in-memory database would be a different, empty one for each.
            if path == ":memory:" || path.starts_with("file:") {
                return Err(format!(
                    "the SQLite database must be a file ({url:?} is in memory or a URI): each of Tandem's connections \
                     opens the path, e.g. sqlite://./data/tandem.db"
                ));
            }
            // Read as part of the file name, not as options: refused, unless
            // that file exists (a database made so before, kept working).
            if path.contains('?') && !std::path::Path::new(path).exists() {
                return Err(format!(
                    "the sqlite:// database URL takes a file path without options ({url:?} has a `?`); Tandem sets \
                     its own (WAL, busy timeout), e.g. sqlite://./data/tandem.db"
                ));
            }
            return Ok(DatabaseUrl::Sqlite(path.to_string()));
        }
        Err("the database URL must start with sqlite:// or postgres:// (e.g. sqlite://./data/tandem.db)".into())
    }
}

/// Refuses a PostgreSQL URL that libpq would refuse with a message quoting
/// the part it could not read, which may be the password (`invalid
/// percent-encoded token: "…"`): a `%` not followed by two hex digits, or a
/// URL that does not parse (an unencoded `/` or `@` in the password). These
/// messages never hold the URL.
fn check_postgres_url(url: &str) -> Result<(), String> {
    let bytes = url.as_bytes();
    let hex = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_hexdigit);
    if bytes.iter().enumerate().any(|(i, b)| *b == b'%' && !(hex(i + 1) && hex(i + 2))) {
        return Err("the postgres:// database URL has a % not followed by two hex digits: percent-encode the \
                    user name and password (a % as %25)"
            .into());
    }
    url::Url::parse(url).map(|_| ()).map_err(|e| {
        format!(
            "the postgres:// database URL does not parse ({e}): percent-encode /, @, : and % in the user name and \
             password"
        )
    })
}

/// A pooled connection and what the pool knows of its health.
pub struct Pooled {
    conn: AnyConnection,
    /// When it last went back to the pool.
    returned_at: Option<Instant>,
    /// A query on it found the server gone: the pool drops it.
    lost: bool,
}

impl std::ops::Deref for Pooled {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

impl Pooled {
    /// Whether it must not be used again: lost, or left inside a
    /// transaction (see [`Manager::has_broken`]).
    pub(crate) fn is_broken(&mut self) -> bool {
        use diesel::connection::TransactionManager;
        let open = <AnyConnection as Connection>::TransactionManager::transaction_manager_status_mut(&mut self.conn)
            .transaction_depth()
            .map_or(true, |depth| depth.is_some());
        self.lost || open
    }

    /// Passes `result` on; a failure that a retry may not meet (see
    /// [`transient`]) reads as the database being unavailable (503, "retry
    /// shortly", instead of a 500), and one that leaves the connection
    /// unusable marks it lost (the pool drops it).
    pub(crate) fn settle<T>(&mut self, result: Result<T, crate::StoreError>) -> Result<T, crate::StoreError> {
        let (result, lost) = classify(result);
        self.lost |= lost;
        result
    }
}

/// `result` with a failure a retry may not meet (see [`transient`]) read as
/// the database being unavailable (the connection is lost: the `true`) or
/// busy; anything else as it is.
pub(crate) fn classify<T>(result: Result<T, crate::StoreError>) -> (Result<T, crate::StoreError>, bool) {
    match result {
        Err(crate::StoreError::Query(e)) => match transient(&e) {
            Some((true, why)) => (Err(crate::StoreError::Unavailable(why)), true),
            Some((false, why)) => (Err(crate::StoreError::Busy(why)), false),
            None => (Err(crate::StoreError::Query(e)), false),
        },
        other => (other, false),
    }
}

/// Whether a failed statement says the database could not do it now rather
/// than that it cannot be done: the connection closed or unusable, a
/// serialization failure or deadlock (PostgreSQL chose this transaction to
/// fail), a read-only server (a failover in progress), a statement
/// cancelled (a timeout, an operator), SQLite busy past its timeout. With
/// whether the connection is to be dropped, and the reason for the log.
pub(crate) fn transient(e: &diesel::result::Error) -> Option<(bool, String)> {
    use diesel::result::DatabaseErrorKind as K;
    let diesel::result::Error::DatabaseError(kind, info) = e else { return None };
    let message = info.message();
    match kind {
        K::ClosedConnection => Some((true, format!("the database closed the connection: {message}"))),
        K::UnableToSendCommand => Some((true, format!("the database could not be sent the statement: {message}"))),
        // The next connection may reach the new primary.
        K::ReadOnlyTransaction => Some((true, format!("the database is read-only: {message}"))),
        K::SerializationFailure => Some((false, format!("the transaction lost a race, retry it: {message}"))),
        // Matched by PostgreSQL's and SQLite's English texts (diesel passes
        // on no SQLSTATE): a server set to another `lc_messages` answers
        // these as before, a query error (500).
        K::Unknown => {
            const RETRYABLE: [&str; 5] = [
                "deadlock detected",
                "canceling statement due to",
                "terminating connection",
                "database is locked",
                "database table is locked",
            ];
            let lost = message.starts_with("terminating connection");
            RETRYABLE.iter().any(|m| message.contains(m)).then(|| (lost, message.to_string()))
        }
        _ => None,
    }
}

/// A PostgreSQL connection back in the pool for less than this is handed
/// out again without a `SELECT 1` first (HikariCP's "alive bypass"): a
/// server restart inside that window fails one request per connection,
/// which then leaves the pool; a round trip per checkout was a large share
/// of a login's cost.
pub const ALIVE_BYPASS: Duration = Duration::from_millis(500);

/// Opens connections for the pool.
pub struct Manager {
    url: DatabaseUrl,
}

impl Manager {
    pub fn new(url: DatabaseUrl) -> Self {
        Manager { url }
    }
}

/// A connection that could not be opened or checked.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(transparent)]
    Connect(#[from] ConnectionError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

impl r2d2::ManageConnection for Manager {
    type Connection = Pooled;
    type Error = ManagerError;

    fn connect(&self) -> Result<Pooled, ManagerError> {
        Ok(Pooled { conn: self.open()?, returned_at: None, lost: false })
    }

    fn is_valid(&self, conn: &mut Pooled) -> Result<(), ManagerError> {
        if conn.returned_at.is_some_and(|t| t.elapsed() < ALIVE_BYPASS) {
            return Ok(());
        }
        conn.conn.batch_execute("SELECT 1").map_err(ManagerError::from)
    }

    /// Besides a lost connection, one coming back inside a transaction is
    /// dropped (which rolls the transaction back): that happens only when
    /// the code using it panicked mid-transaction. Kept, its next user's
    /// `BEGIN` and `COMMIT` would become a savepoint and its release inside
    /// the abandoned transaction, answered as committed but never committed,
    /// with the abandoned transaction's row locks (SQLite: the write lock)
    /// held on.
    fn has_broken(&self, conn: &mut Pooled) -> bool {
        conn.returned_at = Some(Instant::now());
        conn.is_broken() || std::thread::panicking()
    }
}

diesel::define_sql_function! {
    /// Unicode lower-casing, registered over SQLite's ASCII-only `lower()`.
    fn lower(s: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

impl Manager {
    fn open(&self) -> Result<AnyConnection, ManagerError> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                let mut c = SqliteConnection::establish(path)?;
                // WAL lets readers run beside the writer; NORMAL sync in WAL
                // mode survives a killed process; busy_timeout covers other
                // processes (the CLI) writing the same file; checkpoints are
                // the store's background thread's job (see checkpoint.rs).
                c.batch_execute(&format!(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; \
                     PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = {};",
                    crate::checkpoint::AUTO_CHECKPOINT_PAGES
                ))?;
                // SQLite's own lower() folds ASCII only: a filter on a
                // case-insensitive attribute (a user's displayName, emails,
                // name.familyName) would then miss "Émile" for "émile", and
                // even "Émile" itself once the value is lower-cased. This
                // lower() is Unicode's, as `str::to_lowercase` is for the
                // stored userName and group displayName keys. No index is
                // built on lower(), so none depends on which one is in place.
                lower_utils::register_impl(&mut c, |s: Option<String>| s.map(|s| s.to_lowercase()))?;
                Ok(AnyConnection::Sqlite(c))
            }
            DatabaseUrl::Postgres(url) => {
                let mut c = PgConnection::establish(url)?;
                // A statement that runs past a minute (a runaway filter, a
                // lock held elsewhere) is cancelled instead of holding a
                // pooled connection for good; it answers 503 (see
                // `transient`). One the URL's `options`, the role or the
                // database sets is kept.
                if statement_timeout_is_default(&mut c)? {
                    set_statement_timeout(&mut c, STATEMENT_TIMEOUT)?;
                }
                // The store's locks (a customer's advisory lock while it is
                // paired, the client table's while a redirect path is taken,
                // FOR UPDATE / FOR KEY SHARE rows) rely on READ COMMITTED: a
                // statement after a lock wait sees what the holder committed.
                // A database or role whose default is REPEATABLE READ or
                // SERIALIZABLE would give a transaction one snapshot from its
                // first statement, and two writers could each miss the
                // other's row. The session keeps PostgreSQL's own default.
                c.batch_execute("SET default_transaction_isolation = 'read committed'")?;
                Ok(AnyConnection::Postgresql(c))
            }
        }
    }
}

/// PostgreSQL's `statement_timeout` on pooled connections, unless the URL,
/// the role or the database sets one.
pub const STATEMENT_TIMEOUT: &str = "60s";

/// Whether nothing (the URL's `options`, the role, the database, the
/// server's configuration) has set `statement_timeout`; a `0` set on
/// purpose is kept.
fn statement_timeout_is_default(c: &mut PgConnection) -> Result<bool, diesel::result::Error> {
    use diesel::{QueryableByName, RunQueryDsl};
    #[derive(QueryableByName)]
    struct Source {
        #[diesel(sql_type = diesel::sql_types::Text)]
        source: String,
    }
    let rows: Vec<Source> =
        diesel::sql_query("SELECT source FROM pg_settings WHERE name = 'statement_timeout'").load(c)?;
    Ok(rows.first().is_some_and(|r| r.source == "default"))
}

/// Sets a session's `statement_timeout` (a value as `SHOW` prints it, bound, not spliced).
pub(crate) fn set_statement_timeout(c: &mut PgConnection, value: &str) -> Result<(), diesel::result::Error> {
    use diesel::RunQueryDsl;
    diesel::sql_query("SELECT set_config('statement_timeout', $1, false)")
        .bind::<diesel::sql_types::Text, _>(value)
        .execute(c)
        .map(|_| ())
}

/// A PostgreSQL connection's `statement_timeout` as `SHOW` prints it (`0`: none).
pub(crate) fn statement_timeout(c: &mut PgConnection) -> Result<String, diesel::result::Error> {
    use diesel::{QueryableByName, RunQueryDsl};
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement_timeout: String,
    }
    let rows: Vec<Setting> = diesel::sql_query("SHOW statement_timeout").load(c)?;
    Ok(rows.into_iter().next().map(|r| r.statement_timeout).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_picks_the_backend() {
        assert_eq!(DatabaseUrl::parse("sqlite://./data/t.db").unwrap(), DatabaseUrl::Sqlite("./data/t.db".into()));
        assert!(matches!(DatabaseUrl::parse("postgresql://u@h/db").unwrap(), DatabaseUrl::Postgres(_)));
        assert!(DatabaseUrl::parse("mysql://x").unwrap_err().contains("sqlite://"));
        assert_eq!(DatabaseUrl::parse("sqlite:/abs/t.db").unwrap(), DatabaseUrl::Sqlite("/abs/t.db".into()));
        for url in ["sqlite::memory:", "sqlite://:memory:", "sqlite://file:t.db", "sqlite://no-such.db?mode=rwc"] {
            let refused = DatabaseUrl::parse(url).unwrap_err();
            assert!(refused.contains(url) && refused.contains("sqlite://./data/tandem.db"), "{url}: {refused}");
        }
        // A file made so before (its name holding the `?`) is still opened.
        let dir = std::env::temp_dir().join(format!("tandem-url-{}", tandem_core::new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let odd = dir.join("t.db?mode=rwc");
        std::fs::write(&odd, b"").unwrap();
        let url = format!("sqlite://{}", odd.display());
        assert_eq!(DatabaseUrl::parse(&url).unwrap(), DatabaseUrl::Sqlite(odd.display().to_string()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[derive(diesel::QueryableByName)]
    struct CompileOption {
        #[diesel(sql_type = diesel::sql_types::Text)]
        compile_options: String,
    }

    #[test]
    fn bundled_sqlite_is_built_with_the_workspace_flags() {
        use diesel::RunQueryDsl;
        let mut c = SqliteConnection::establish(":memory:").unwrap();
        let options: Vec<String> = diesel::sql_query("PRAGMA compile_options")
            .load::<CompileOption>(&mut c)
            .unwrap()
            .into_iter()
            .map(|o| o.compile_options)
            .collect();
        // .cargo/config.toml sets these; without QPSG kept statements are re-prepared on every call.
        assert!(options.iter().any(|o| o == "ENABLE_QPSG"), "{options:?}");
        assert!(options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"), "{options:?}");
        assert!(options.iter().any(|o| o == "THREADSAFE=2"), "{options:?}");
    }

    #[test]
    fn a_postgres_url_libpq_would_quote_is_refused_without_quoting_it() {
        for bad in ["postgres://tandem:S3cr%t@db/tandem", "postgres://tandem:S3cr/t@db:5432/tandem"] {
            let err = DatabaseUrl::parse(bad).unwrap_err();
            assert!(!err.contains("S3cr"), "{err}");
            assert!(err.contains("percent-encode"), "{err}");
        }
        for good in [
            "postgres://tandem:S3cr%25t%2F@db:5432/tandem",
            "postgresql:///tandem?host=/var/run/postgresql",
            "postgres://postgres@127.0.0.1:5432/t",
        ] {
            assert!(matches!(DatabaseUrl::parse(good), Ok(DatabaseUrl::Postgres(_))), "{good}");
        }
    }

    #[test]
    fn postgres_url_is_not_printed() {
        let url = DatabaseUrl::parse("postgres://u:hunter2@h/db").unwrap();
        assert!(!format!("{url:?}").contains("hunter2"));
    }
}
