//! Logging: `tracing` to stderr as text or JSON, filtered by `log.level`.
//! Each HTTP request's lines carry its request id (tracing-actix-web's span).
//! A line stderr does not take is lost, never the server.

use crate::settings::{Log, LogFormat};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (a second call is a no-op).
pub fn init(log: &Log) {
    let filter = EnvFilter::try_new(&log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // A line that cannot be written (stderr closed: the log reader is
        // gone) is dropped. Reporting the failure, tracing-subscriber
        // printed to that same stderr, which panics, so the first log line
        // after the reader went away took the server down.
        .log_internal_errors(false);
    let _ = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
