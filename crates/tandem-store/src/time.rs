//! Timestamps are stored as microseconds since the Unix epoch (UTC), so both
//! backends keep and compare them at the same precision.

use chrono::{DateTime, Utc};

/// A timestamp as stored.
pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A stored timestamp back as a `DateTime`.
pub fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(DateTime::UNIX_EPOCH)
}
