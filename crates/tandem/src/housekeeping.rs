//! Background housekeeping: the claims of expired logins are deleted a day
//! after they expire, so the table stays small without a cron job; the
//! logs, the event feed and the SSO users not seen within their retention
//! (and those of deleted clients) are deleted; and SQLite's planner
//! statistics are kept fresh.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;
use tandem_core::clock::Clock;
use tandem_store::background::Background;
use tandem_store::Store;

/// How often housekeeping runs.
pub const INTERVAL: Duration = Duration::from_secs(600);

/// The least pause between two purge transactions. Each pause is at least
/// as long as the transaction before it, so a backlog of millions of rows
/// takes at most half the write lock: SQLite's is a plain mutex, which the
/// purge would otherwise take again before the waiting request writers
/// and the log writer (whose queue would fill and drop records) got it.
const BATCH_PAUSE: Duration = Duration::from_millis(10);

/// Keeps housekeeping running; dropping it stops the thread and waits for it.
pub struct Housekeeping {
    _thread: Option<Background<()>>,
}

/// Rows deleted per transaction when trimming a log.
const PURGE_BATCH: i64 = 5_000;

/// Starts the housekeeping thread; it runs until the returned guard is
/// dropped. `log_retention_days` (0: kept) trims the login events, the
/// provisioning log and the directory event feed; `sso_user_retention_days`
/// (0: kept) the SSO users (the identities logins saw, with their claims)
/// not seen since. Those of deleted clients go whatever it says.
pub fn start(
    store: Store,
    clock: Arc<dyn Clock>,
    log_retention_days: u64,
    sso_user_retention_days: u64,
) -> Housekeeping {
    let spawned = Background::spawn("tandem-housekeeping", move |stopped: Receiver<()>| {
        // Runs every INTERVAL until the guard is dropped (the channel disconnects).
        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
            let now = clock.now();
            match store.write_blocking(|c| tandem_store::sso::purge_claims(c, now)) {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "claims of expired logins deleted"),
                Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
            }
            let days_before =
                |days: u64| now - chrono::Duration::days(i64::try_from(days).unwrap_or(36_500).min(36_500));
            if log_retention_days > 0 {
                trim_logs(&store, days_before(log_retention_days), &stopped);
            }
            let unseen = (sso_user_retention_days > 0).then(|| days_before(sso_user_retention_days));
            trim_sso_users_in_batches(&store, unseen, &stopped, PURGE_BATCH);
            if let Err(e) = store.optimize() {
                tracing::warn!(error = %e, "refreshing planner statistics failed");
            }
        }
    });
    let thread = match spawned {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(error = %e, "could not start housekeeping");
            None
        }
    };
    Housekeeping { _thread: thread }
}

/// Deletes the login events, provisioning-log entries and directory
/// events made before `before`, a batch per transaction, until none is
/// left or the server stops.
pub fn trim_logs(store: &Store, before: chrono::DateTime<chrono::Utc>, stopped: &Receiver<()>) -> usize {
    trim_logs_in_batches(store, before, stopped, PURGE_BATCH)
}

/// [`trim_logs`] with `batch` rows per transaction (tests use small ones).
pub fn trim_logs_in_batches(
    store: &Store,
    before: chrono::DateTime<chrono::Utc>,
    stopped: &Receiver<()>,
    batch: i64,
) -> usize {
    use tandem_store::sso::{purge_older, LogTable};
    let mut total = 0;
    for table in [LogTable::LoginEvents, LogTable::ProvisioningLogs] {
        total += in_batches(store, stopped, batch, &format!("{table:?}"), |c| purge_older(c, table, before, batch));
    }
    // The directory event feed, oldest first in feed order.
    total +=
        in_batches(store, stopped, batch, "directory events", |c| tandem_store::events::purge_older(c, before, batch));
    if total > 0 {
        tracing::info!(deleted = total, before = %tandem_core::format_time(before), "old login events, provisioning-log entries and directory events deleted");
    }
    total
}

/// Deletes the SSO users of deleted OIDC clients, and those not seen since
/// `unseen` when given, `batch` at a time: each batch is found by a read
/// (off the write lock: the table has no index for it) and deleted in a
/// write that checks again, with the same pauses as [`trim_logs`].
pub fn trim_sso_users_in_batches(
    store: &Store,
    unseen: Option<chrono::DateTime<chrono::Utc>>,
    stopped: &Receiver<()>,
    batch: i64,
) -> usize {
    use tandem_store::sso::{delete_sso_users, sso_users_gone, SsoUsersGone};
    let mut total = 0;
    for which in unseen.map(SsoUsersGone::NotSeenSince).into_iter().chain([SsoUsersGone::OfDeletedClients]) {
        loop {
            let ids = match store.read_blocking(|c| sso_users_gone(c, which, batch)) {
                Ok(ids) => ids,
                Err(e) => {
                    tracing::warn!(error = %e, "finding SSO users to delete failed");
                    break;
                }
            };
            if ids.is_empty() {
                break;
            }
            let began = std::time::Instant::now();
            match store.write_blocking(|c| delete_sso_users(c, &ids, which)) {
                Ok(n) => total += n,
                Err(e) => {
                    tracing::warn!(error = %e, "deleting SSO users failed");
                    break;
                }
            }
            if (ids.len() as i64) < batch || !paused(stopped, began) {
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(
            deleted = total,
            "SSO users not seen within sso_user_retention_days, or of deleted OIDC clients, deleted"
        );
    }
    total
}

/// Pauses after a purge transaction that began at `began`, at least as long
/// as it took ([`BATCH_PAUSE`] at least); false when the server stops meanwhile.
fn paused(stopped: &Receiver<()>, began: std::time::Instant) -> bool {
    matches!(stopped.recv_timeout(began.elapsed().max(BATCH_PAUSE)), Err(RecvTimeoutError::Timeout))
}

/// Runs `purge` (which deletes at most `batch` rows) a transaction at a
/// time until it deletes fewer (none old is left) or the server stops;
/// how many rows it deleted. A failure is logged and ends it.
fn in_batches(
    store: &Store,
    stopped: &Receiver<()>,
    batch: i64,
    what: &str,
    purge: impl Fn(&mut tandem_store::AnyConnection) -> Result<usize, tandem_store::StoreError>,
) -> usize {
    let mut total = 0;
    loop {
        let began = std::time::Instant::now();
        match store.write_blocking(&purge) {
            Ok(n) => {
                total += n;
                // A pause (ended early by a stop) lets the other writers in.
                if (n as i64) < batch || !paused(stopped, began) {
                    return total;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, table = what, "trimming a log failed");
                return total;
            }
        }
    }
}
