//! Background housekeeping: the claims of expired logins are deleted a day
//! after they expire, so the table stays small without a cron job, and
//! SQLite's planner statistics are kept fresh.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;
use tandem_core::clock::Clock;
use tandem_store::background::Background;
use tandem_store::Store;

/// How often housekeeping runs.
pub const INTERVAL: Duration = Duration::from_secs(600);

/// Keeps housekeeping running; dropping it stops the thread and waits for it.
pub struct Housekeeping {
    _thread: Option<Background<()>>,
}

/// Starts the housekeeping thread; it runs until the returned guard is dropped.
pub fn start(store: Store, clock: Arc<dyn Clock>) -> Housekeeping {
    let spawned = Background::spawn("tandem-housekeeping", move |stopped: Receiver<()>| {
        // Runs every INTERVAL until the guard is dropped (the channel disconnects).
        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
            let now = clock.now();
            match store.write_blocking(|c| tandem_store::sso::purge_claims(c, now)) {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "claims of expired logins deleted"),
                Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
            }
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
