//! Webhook endpoints: URLs the directory event feed is pushed to, each with
//! its signing secret (encrypted at rest), what it takes, the feed position
//! delivered through, and its delivery state. Deliveries are made by one
//! node at a time per endpoint, the one holding its lease.

use crate::events::Position;
use crate::schema::webhook_endpoints::dsl as w;
use crate::{AnyConnection, StoreError};
use diesel::prelude::*;
use tandem_core::secret::SecretKey;

/// An endpoint as stored; times in µs since the epoch.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::schema::webhook_endpoints)]
pub struct WebhookEndpointRow {
    pub id: String,
    pub url: String,
    pub secret_enc: String,
    pub customer_id: Option<String>,
    /// Event types taken, separated by commas; `None`: all.
    pub event_types: Option<String>,
    pub cursor_txid: i64,
    pub cursor_seq: i64,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub leased_until: Option<i64>,
    /// Failed attempts since the last delivery.
    pub failures: i64,
    pub last_attempt_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub failing_since: Option<i64>,
}

impl WebhookEndpointRow {
    /// The feed position delivered through.
    pub fn cursor(&self) -> Position {
        Position { txid: self.cursor_txid, seq: self.cursor_seq }
    }

    /// The event types taken, `None`: all.
    pub fn types(&self) -> Option<Vec<String>> {
        self.event_types.as_ref().map(|t| t.split(',').map(str::to_string).collect())
    }
}

/// The encryption context of an endpoint's signing secret.
pub fn secret_context(id: &str) -> String {
    format!("webhook_endpoint:{id}:secret")
}

pub fn insert(conn: &mut AnyConnection, row: &WebhookEndpointRow) -> Result<(), StoreError> {
    diesel::insert_into(w::webhook_endpoints).values(row).execute(conn)?;
    Ok(())
}

pub fn list(conn: &mut AnyConnection) -> Result<Vec<WebhookEndpointRow>, StoreError> {
    Ok(w::webhook_endpoints.select(WebhookEndpointRow::as_select()).order(w::id).load(conn)?)
}

pub fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<WebhookEndpointRow>, StoreError> {
    Ok(w::webhook_endpoints.filter(w::id.eq(id)).select(WebhookEndpointRow::as_select()).first(conn).optional()?)
}

/// Deletes an endpoint; whether it existed.
pub fn delete(conn: &mut AnyConnection, id: &str) -> Result<bool, StoreError> {
    Ok(diesel::delete(w::webhook_endpoints.filter(w::id.eq(id))).execute(conn)? > 0)
}

/// The endpoints due for an attempt at `now` whose lease is free.
pub fn due(conn: &mut AnyConnection, now: i64) -> Result<Vec<String>, StoreError> {
    Ok(w::webhook_endpoints
        .filter(w::next_attempt_at.le(now))
        .filter(w::leased_until.is_null().or(w::leased_until.lt(now)))
        .select(w::id)
        .order(w::next_attempt_at)
        .load(conn)?)
}

/// Takes the endpoint's lease until `until` if it is due and free: whether
/// this caller holds it now (of nodes asking at once, one does).
pub fn lease(conn: &mut AnyConnection, id: &str, now: i64, until: i64) -> Result<bool, StoreError> {
    let taken = diesel::update(
        w::webhook_endpoints
            .filter(w::id.eq(id))
            .filter(w::next_attempt_at.le(now))
            .filter(w::leased_until.is_null().or(w::leased_until.lt(now))),
    )
    .set(w::leased_until.eq(until))
    .execute(conn)?;
    Ok(taken == 1)
}

/// Moves the endpoint's position to `cursor` and frees its lease: after a
/// delivery made at `delivered_at` (which clears its failures), or past
/// events it does not take. Next attempt at `next_at`.
pub fn advance(
    conn: &mut AnyConnection,
    id: &str,
    cursor: Position,
    delivered_at: Option<i64>,
    next_at: i64,
) -> Result<(), StoreError> {
    let target = w::webhook_endpoints.filter(w::id.eq(id));
    let moved = (w::cursor_txid.eq(cursor.txid), w::cursor_seq.eq(cursor.seq), w::leased_until.eq(None::<i64>));
    match delivered_at {
        Some(at) => diesel::update(target)
            .set((
                moved,
                w::next_attempt_at.eq(next_at),
                w::failures.eq(0),
                w::last_attempt_at.eq(at),
                w::last_success_at.eq(at),
                w::last_error.eq(None::<String>),
                w::failing_since.eq(None::<i64>),
            ))
            .execute(conn)?,
        None => diesel::update(target).set((moved, w::next_attempt_at.eq(next_at))).execute(conn)?,
    };
    Ok(())
}

/// Records a failed attempt at `now` (`error` says why; no secret in it),
/// frees the lease and sets the next attempt.
pub fn failed(conn: &mut AnyConnection, id: &str, error: &str, now: i64, next_at: i64) -> Result<(), StoreError> {
    let Some(row) = get(conn, id)? else {
        return Ok(());
    };
    diesel::update(w::webhook_endpoints.filter(w::id.eq(id)))
        .set((
            w::failures.eq(row.failures + 1),
            w::last_attempt_at.eq(now),
            w::last_error.eq(error),
            w::failing_since.eq(row.failing_since.unwrap_or(now)),
            w::next_attempt_at.eq(next_at),
            w::leased_until.eq(None::<i64>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records `error` without counting a failure (a position moved past
/// events the retention purge deleted before they were delivered).
pub fn note(conn: &mut AnyConnection, id: &str, error: &str) -> Result<(), StoreError> {
    diesel::update(w::webhook_endpoints.filter(w::id.eq(id))).set(w::last_error.eq(error)).execute(conn)?;
    Ok(())
}

/// The endpoints whose signing secret does not open with `key`'s current key.
pub fn secrets_not_under(conn: &mut AnyConnection, key: &SecretKey) -> Result<Vec<String>, StoreError> {
    let rows: Vec<(String, String)> = w::webhook_endpoints.select((w::id, w::secret_enc)).order(w::id).load(conn)?;
    Ok(rows
        .into_iter()
        .filter(|(id, enc)| key.decrypt_with_current(enc, &secret_context(id)).is_err())
        .map(|(id, _)| id)
        .collect())
}

/// Re-encrypts every signing secret not under `key`'s current key (the
/// last step of a secret-key rotation); returns how many it rewrote.
pub fn reencrypt_secrets(conn: &mut AnyConnection, key: &SecretKey) -> Result<usize, StoreError> {
    let rows: Vec<(String, String)> = w::webhook_endpoints.select((w::id, w::secret_enc)).order(w::id).load(conn)?;
    let mut changed = 0;
    for (id, enc) in rows {
        let context = secret_context(&id);
        if key.decrypt_with_current(&enc, &context).is_ok() {
            continue;
        }
        let plain = key.decrypt(&enc, &context).map_err(|e| {
            StoreError::Corrupt(format!("the signing secret of webhook endpoint {id} opens with neither key: {e}"))
        })?;
        // The secret never changes once made: compare-and-set on the text read.
        changed += diesel::update(w::webhook_endpoints.filter(w::id.eq(&id)).filter(w::secret_enc.eq(&enc)))
            .set(w::secret_enc.eq(key.encrypt(&plain.0, &context)))
            .execute(conn)?;
    }
    Ok(changed)
}
