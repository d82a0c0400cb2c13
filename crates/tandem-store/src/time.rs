//! Timestamps are stored as microseconds since the Unix epoch (UTC), so both
//! backends keep and compare them at the same precision.

use chrono::{DateTime, Utc};

/// A timestamp as stored.
pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Whether a key's use at `now` is to be recorded, its last recorded use
/// being `last_used_at`: at most once a minute, so that authentication
/// stays a read on the hot path (integration keys and SCIM keys alike).
pub fn use_due(last_used_at: Option<i64>, now: DateTime<Utc>) -> bool {
    last_used_at.is_none_or(|t| micros(now) - t > 60_000_000)
}

/// A stored timestamp back as a `DateTime`.
pub fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(DateTime::UNIX_EPOCH)
}
