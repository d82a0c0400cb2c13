//! Tandem's domain logic: identity-provider types, matching strategies, the
//! validation of management requests, key material and secret encryption.
//!
//! Nothing here knows about HTTP servers, databases or upstream HTTP clients,
//! so every rule is testable in microseconds. Time is always a parameter.

pub mod clock;
pub mod fields;
pub mod idp;
pub mod keys;
pub mod login;
pub mod login_state;
pub mod matching;
pub mod oidc_client;
pub mod report;
pub mod scim_connection;
pub mod secret;
pub mod webhook;

use chrono::{DateTime, Utc};

/// A new random, time-ordered identifier (UUIDv7 in text form).
///
/// Time-ordered ids keep inserts local in B-tree indexes and give list
/// endpoints a stable order.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Whether `s` is an identifier as [`new_id`] writes them (lower-case
/// hyphenated UUID text): what a list's `after` cursor must be.
pub fn is_id(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok_and(|u| u.hyphenated().to_string() == s)
}

/// Formats a timestamp the way every API response does: RFC 3339, UTC,
/// millisecond precision (both databases keep at least that).
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
