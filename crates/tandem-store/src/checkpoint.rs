//! SQLite's write-ahead log copied back into the database file by a
//! background thread instead of by whichever request's commit crosses
//! SQLite's threshold.
//!
//! With SQLite's automatic checkpoint (every 1,000 pages) a SCIM create now
//! and then paid for copying the WAL and two fsyncs, which was the p99 of
//! creates, and a page rewritten by many commits was copied once per
//! threshold. Here a thread of the store runs a PASSIVE checkpoint (it
//! never blocks readers or the writer) every [`INTERVAL`]; the automatic
//! checkpoint stays as a safety net at [`AUTO_CHECKPOINT_PAGES`].

use crate::background::Background;
use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// How often the WAL is checkpointed.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// The automatic checkpoint threshold of pool connections (pages of 4 KiB):
/// reached only when the background thread falls behind.
pub const AUTO_CHECKPOINT_PAGES: u32 = 16_000;

/// The running checkpoint thread; dropping it stops the thread and waits for it.
pub struct Checkpointer {
    _thread: Background<()>,
}

impl Checkpointer {
    /// Starts checkpointing the SQLite database at `path` on its own connection.
    pub fn start(path: String) -> Option<Checkpointer> {
        let spawned = Background::spawn("tandem-checkpoint", move |stopped: Receiver<()>| {
            let opened = SqliteConnection::establish(&path).map_err(|e| e.to_string()).and_then(|mut c| {
                c.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA cache_size = 8")
                    .map(|()| c)
                    .map_err(|e| e.to_string())
            });
            let mut conn = match opened {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "the WAL checkpoint thread has no connection; SQLite checkpoints by itself");
                    return;
                }
            };
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                if let Err(e) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE)") {
                    tracing::debug!(error = %e, "WAL checkpoint skipped");
                }
            }
        });
        match spawned {
            Ok(thread) => Some(Checkpointer { _thread: thread }),
            Err(e) => {
                tracing::warn!(error = %e, "could not start the WAL checkpoint thread; SQLite checkpoints by itself");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_wal_reaches_the_database_file_without_a_commit_crossing_the_threshold() {
        // The migrations are far below the automatic threshold: only the thread copies them.
        let (store, dir) = crate::test_store();
        let crate::TestDir::Sqlite(dir_path) = &dir else { unreachable!("test_store is SQLite") };
        let path = dir_path.join("t.db");
        let wal_pages = std::fs::metadata(dir_path.join("t.db-wal")).unwrap().len() / 4096;
        assert!(wal_pages > 10 && wal_pages < u64::from(super::AUTO_CHECKPOINT_PAGES), "{wal_pages}");
        // The loop ends as soon as the pages are there; the deadline only
        // allows for fsync stalling on a busy disk.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut db_pages = 0;
        while std::time::Instant::now() < deadline {
            db_pages = std::fs::metadata(&path).unwrap().len() / 4096;
            if db_pages > 10 {
                break;
            }
            std::thread::sleep(super::INTERVAL / 5);
        }
        assert!(db_pages > 10, "the database file still holds {db_pages} pages");
        drop(store);
    }
}
