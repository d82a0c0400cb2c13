//! Admin dashboard sessions, opened with an integration key. A session ends
//! when it expires, on logout, or when its key is revoked.

use crate::schema::dashboard_sessions::dsl as d;
use crate::schema::integration_keys::dsl as k;
use crate::{micros, AnyConnection, StoreError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

/// A live session: who opened it and its CSRF token.
#[derive(Clone, Debug)]
pub struct Session {
    pub key_name: String,
    pub csrf_token: String,
}

/// Opens a session for `integration_key_id`; `token_hash` is the hash of
/// the cookie's token.
pub fn open(
    conn: &mut AnyConnection,
    token_hash: &str,
    integration_key_id: &str,
    csrf_token: &str,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::delete(d::dashboard_sessions.filter(d::expires_at.lt(micros(now)))).execute(conn)?;
    diesel::insert_into(d::dashboard_sessions)
        .values((
            d::id.eq(token_hash),
            d::integration_key_id.eq(integration_key_id),
            d::csrf_token.eq(csrf_token),
            d::created_at.eq(micros(now)),
            d::expires_at.eq(micros(expires)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The session whose token hashes to `token_hash`, if it is live and its key is not revoked.
pub fn find(conn: &mut AnyConnection, token_hash: &str, now: DateTime<Utc>) -> Result<Option<Session>, StoreError> {
    let found: Option<(String, String)> = d::dashboard_sessions
        .inner_join(k::integration_keys.on(k::id.eq(d::integration_key_id)))
        .filter(d::id.eq(token_hash))
        .filter(d::expires_at.gt(micros(now)))
        .filter(k::revoked_at.is_null())
        .select((k::name, d::csrf_token))
        .first(conn)
        .optional()?;
    Ok(found.map(|(key_name, csrf_token)| Session { key_name, csrf_token }))
}

/// Ends a session.
pub fn close(conn: &mut AnyConnection, token_hash: &str) -> Result<(), StoreError> {
    diesel::delete(d::dashboard_sessions.filter(d::id.eq(token_hash))).execute(conn)?;
    Ok(())
}
