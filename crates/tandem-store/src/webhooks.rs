//! Webhook endpoints: URLs the directory event feed is pushed to, each with
//! its signing secret (encrypted at rest; after a rotation, the previous one
//! too, until its grace ends), what it takes, the feed position delivered
//! through, and its delivery state. A node delivers an endpoint only while
//! it holds its lease, and records the outcome only if the lease is still
//! the one it took (its token), so a node whose lease ran out cannot move
//! the position or the state another node has since written.

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
    pub previous_secret_enc: Option<String>,
    pub previous_secret_until: Option<i64>,
    pub customer_id: Option<String>,
    /// Event types taken, separated by commas; `None`: all.
    pub event_types: Option<String>,
    pub cursor_txid: i64,
    pub cursor_seq: i64,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub leased_until: Option<i64>,
    pub lease_id: Option<String>,
    /// Failed attempts since the last delivery.
    pub failures: i64,
    pub last_attempt_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub failing_since: Option<i64>,
    pub skipped_at: Option<i64>,
    pub skipped: Option<String>,
}

impl WebhookEndpointRow {
    /// A new endpoint, due at `now` (µs), delivering the events after `from`.
    pub fn new(
        id: String,
        url: String,
        secret_enc: String,
        (customer_id, event_types): (Option<String>, Option<String>),
        from: Position,
        now: i64,
    ) -> WebhookEndpointRow {
        WebhookEndpointRow {
            id,
            url,
            secret_enc,
            previous_secret_enc: None,
            previous_secret_until: None,
            customer_id,
            event_types,
            cursor_txid: from.txid,
            cursor_seq: from.seq,
            created_at: now,
            next_attempt_at: now,
            leased_until: None,
            lease_id: None,
            failures: 0,
            last_attempt_at: None,
            last_success_at: None,
            last_error: None,
            failing_since: None,
            skipped_at: None,
            skipped: None,
        }
    }

    /// The feed position delivered through.
    pub fn cursor(&self) -> Position {
        Position { txid: self.cursor_txid, seq: self.cursor_seq }
    }

    /// The filter (customer and types) as read now.
    pub fn filter(&self) -> Filter {
        Filter { customer_id: self.customer_id.clone(), event_types: self.event_types.clone() }
    }

    /// The event types taken, `None`: all.
    pub fn types(&self) -> Option<Vec<String>> {
        self.event_types.as_ref().map(|t| t.split(',').map(str::to_string).collect())
    }

    /// What of the feed this endpoint takes.
    pub fn narrowing(&self) -> crate::events::Narrowing {
        crate::events::Narrowing {
            customer_id: self.customer_id.clone(),
            scim_connection_id: None,
            types: self.types(),
        }
    }

    /// The previous secret's ciphertext while its grace lasts at `now` (µs).
    pub fn previous_secret(&self, now: i64) -> Option<&str> {
        self.previous_secret_enc.as_deref().filter(|_| self.previous_secret_until.is_some_and(|u| u > now))
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

/// [`get`] for a change of the endpoint, as its write's first statement:
/// on PostgreSQL the row stays locked until the write ends, so two changes
/// at once (one of the URL, one of the types) are made one after the
/// other, each on the other's result, instead of the later writing back
/// what it read before the earlier committed. SQLite's writes are one at a
/// time already.
pub fn get_for_change(conn: &mut AnyConnection, id: &str) -> Result<Option<WebhookEndpointRow>, StoreError> {
    let AnyConnection::Postgresql(c) = conn else { return get(conn, id) };
    let query = w::webhook_endpoints.filter(w::id.eq(id)).select(WebhookEndpointRow::as_select());
    Ok(first_locked!(query, crate::RowLock::NoKeyUpdate, c)?)
}

/// What a change of an endpoint sets: each `Some` replaces the stored
/// value (`customer_id` and `event_types` `Some(None)`: all).
#[derive(Clone, Debug, Default)]
pub struct Change {
    pub url: Option<String>,
    pub customer_id: Option<Option<String>>,
    pub event_types: Option<Option<String>>,
    /// A position to move on to (forward only, checked by the caller):
    /// events up to it are never sent, the failures are forgotten, the
    /// endpoint is due at once, and a delivery under way records nothing.
    pub skip_to: Option<Position>,
}

/// Changes an endpoint, keeping its position and delivery state; a new URL,
/// or `retry`, makes it due at `now` (µs): a receiver fixed or moved is
/// tried at once rather than when its backoff ends. The row as written, or
/// `None` when there is none.
pub fn update(
    conn: &mut AnyConnection,
    id: &str,
    change: &Change,
    retry: bool,
    now: i64,
) -> Result<Option<WebhookEndpointRow>, StoreError> {
    let Some(mut row) = get(conn, id)? else { return Ok(None) };
    if let Some(url) = &change.url {
        row.url = url.clone();
    }
    if let Some(customer_id) = &change.customer_id {
        row.customer_id = customer_id.clone();
    }
    if let Some(types) = &change.event_types {
        row.event_types = types.clone();
    }
    let due = change.url.is_some() || retry || change.skip_to.is_some();
    let target = w::webhook_endpoints.filter(w::id.eq(id));
    if let Some(to) = change.skip_to {
        // The lease goes too: a delivery under way, of the events skipped,
        // must not move the position back when it ends.
        diesel::update(target)
            .set((
                w::cursor_txid.eq(to.txid),
                w::cursor_seq.eq(to.seq),
                w::failures.eq(0),
                w::failing_since.eq(None::<i64>),
                w::lease_id.eq(None::<String>),
                w::leased_until.eq(None::<i64>),
            ))
            .execute(conn)?;
    }
    let n = match due {
        true => diesel::update(target)
            .set((
                w::url.eq(&row.url),
                w::customer_id.eq(&row.customer_id),
                w::event_types.eq(&row.event_types),
                w::next_attempt_at.eq(now),
            ))
            .execute(conn)?,
        false => diesel::update(target)
            .set((w::url.eq(&row.url), w::customer_id.eq(&row.customer_id), w::event_types.eq(&row.event_types)))
            .execute(conn)?,
    };
    if n == 0 {
        return Ok(None);
    }
    get(conn, id)
}

/// Deletes an endpoint; whether it existed.
pub fn delete(conn: &mut AnyConnection, id: &str) -> Result<bool, StoreError> {
    Ok(diesel::delete(w::webhook_endpoints.filter(w::id.eq(id))).execute(conn)? > 0)
}

/// What a secret rotation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotated {
    Done,
    NotFound,
    /// An earlier rotation's previous secret is still in its grace (until, µs).
    InGrace(i64),
    /// The secret kept changing under it (other rotations).
    Busy,
}

/// Gives the endpoint a new signing secret (`secret_enc`), keeping the
/// current one as the previous until `until` (µs; `None`: dropped now).
/// Refused while an earlier rotation's previous secret is in its grace at
/// `now`, unless `force` (which drops that one).
pub fn rotate_secret(
    conn: &mut AnyConnection,
    id: &str,
    secret_enc: &str,
    (until, now, force): (Option<i64>, i64, bool),
) -> Result<Rotated, StoreError> {
    for _ in 0..16 {
        let Some(row) = get(conn, id)? else {
            return Ok(Rotated::NotFound);
        };
        if let (Some(grace), false) = (row.previous_secret(now).and(row.previous_secret_until), force) {
            return Ok(Rotated::InGrace(grace));
        }
        let previous = until.map(|_| row.secret_enc.clone());
        // Compare-and-set on the secret read: of two rotations at once, one lands, the other reads again.
        let n = diesel::update(w::webhook_endpoints.filter(w::id.eq(id)).filter(w::secret_enc.eq(&row.secret_enc)))
            .set((
                w::secret_enc.eq(secret_enc),
                w::previous_secret_enc.eq(previous),
                w::previous_secret_until.eq(until),
            ))
            .execute(conn)?;
        if n == 1 {
            return Ok(Rotated::Done);
        }
    }
    Ok(Rotated::Busy)
}

/// The endpoints due for an attempt at `now` whose lease is free.
pub fn due_rows(conn: &mut AnyConnection, now: i64) -> Result<Vec<WebhookEndpointRow>, StoreError> {
    Ok(w::webhook_endpoints
        .filter(w::next_attempt_at.le(now))
        .filter(w::leased_until.is_null().or(w::leased_until.lt(now)))
        .select(WebhookEndpointRow::as_select())
        .order(w::next_attempt_at)
        .load(conn)?)
}

/// Moves a free endpoint's position from `from` to `to`, past events it
/// does not take, without a lease: nothing if its position or lease
/// changed meanwhile, or if `to` is not past `from` (a head read before
/// another node's turn moved the position further).
pub fn move_past(
    conn: &mut AnyConnection,
    (id, filter): (&str, &Filter),
    from: Position,
    to: Position,
    now: i64,
) -> Result<(), StoreError> {
    if to <= from {
        return Ok(());
    }
    diesel::update(
        w::webhook_endpoints
            .filter(w::id.eq(id))
            .filter(w::cursor_txid.eq(from.txid))
            .filter(w::cursor_seq.eq(from.seq))
            .filter(w::leased_until.is_null().or(w::leased_until.lt(now)))
            .filter(coalesce(w::customer_id, "").eq(filter.customer()))
            .filter(coalesce(w::event_types, "").eq(filter.types())),
    )
    .set((w::cursor_txid.eq(to.txid), w::cursor_seq.eq(to.seq)))
    .execute(conn)?;
    Ok(())
}

/// Takes the endpoint's lease until `until` under `token` if it is due and
/// free: whether this caller holds it now (of nodes asking at once, one does).
pub fn lease(conn: &mut AnyConnection, id: &str, now: i64, until: i64, token: &str) -> Result<bool, StoreError> {
    let taken = diesel::update(
        w::webhook_endpoints
            .filter(w::id.eq(id))
            .filter(w::next_attempt_at.le(now))
            .filter(w::leased_until.is_null().or(w::leased_until.lt(now))),
    )
    .set((w::leased_until.eq(until), w::lease_id.eq(token)))
    .execute(conn)?;
    Ok(taken == 1)
}

/// What becomes of the lease after a step.
#[derive(Clone, Copy, Debug)]
pub enum Then {
    /// Kept, until this time (µs): another batch follows.
    Keep(i64),
    /// Freed; the next attempt at this time (µs).
    Release(i64),
}

/// The endpoint with a given id.
type ById<'a> = diesel::dsl::Filter<w::webhook_endpoints, diesel::dsl::Eq<w::id, &'a str>>;
/// The endpoint with a given id, as leased under a given token.
type Leased<'a> = diesel::dsl::Filter<ById<'a>, diesel::dsl::Eq<w::lease_id, &'a str>>;

/// The endpoint `id` as leased under `token` (a lease another node took
/// since matches nothing).
fn leased<'a>(id: &'a str, token: &'a str) -> Leased<'a> {
    w::webhook_endpoints.filter(w::id.eq(id)).filter(w::lease_id.eq(token))
}

/// Sets the lease as `then` says, if `token` still holds it; whether it did.
fn lease_then(conn: &mut AnyConnection, id: &str, token: &str, then: Then) -> Result<bool, StoreError> {
    let n = match then {
        Then::Keep(until) => diesel::update(leased(id, token)).set(w::leased_until.eq(until)).execute(conn)?,
        Then::Release(next_at) => diesel::update(leased(id, token))
            .set((w::leased_until.eq(None::<i64>), w::lease_id.eq(None::<String>), w::next_attempt_at.eq(next_at)))
            .execute(conn)?,
    };
    Ok(n == 1)
}

/// Frees the endpoint's lease, if `token` still holds it, leaving when it
/// is due as it was (a node told to stop in the middle of a turn: the next
/// node takes it by its own clock); whether it did.
pub fn release(conn: &mut AnyConnection, (id, token): (&str, &str)) -> Result<bool, StoreError> {
    let n = diesel::update(leased(id, token))
        .set((w::leased_until.eq(None::<i64>), w::lease_id.eq(None::<String>)))
        .execute(conn)?;
    Ok(n == 1)
}

/// Moves the endpoint's position to `cursor`: after a delivery made at
/// `delivered_at` (which clears its failures), or past events it does not
/// take; then the lease as `then` says. Nothing when `token` no longer
/// holds the lease; whether it did.
pub fn advance(
    conn: &mut AnyConnection,
    (id, token, filter): (&str, &str, &Filter),
    cursor: Position,
    delivered_at: Option<i64>,
    then: Then,
) -> Result<bool, StoreError> {
    let moved = (w::cursor_txid.eq(cursor.txid), w::cursor_seq.eq(cursor.seq));
    // Under the filter the batch was read with: moved past events a filter
    // changed meanwhile (widened `types`) would now take, it would skip them.
    let leased = leased(id, token)
        .filter(coalesce(w::customer_id, "").eq(filter.customer()))
        .filter(coalesce(w::event_types, "").eq(filter.types()));
    let n = match delivered_at {
        Some(at) => diesel::update(leased)
            .set((
                moved,
                w::failures.eq(0),
                w::last_attempt_at.eq(at),
                w::last_success_at.eq(at),
                w::last_error.eq(None::<String>),
                w::failing_since.eq(None::<i64>),
            ))
            .execute(conn)?,
        None => diesel::update(leased).set(moved).execute(conn)?,
    };
    Ok(n == 1 && lease_then(conn, id, token, then)?)
}

diesel::define_sql_function! {
    /// SQL's `COALESCE` of a nullable text and a text.
    fn coalesce(x: diesel::sql_types::Nullable<diesel::sql_types::Text>, y: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// An endpoint's filter as a delivery or a look read it: a write it makes
/// holds only while the endpoint still has it (a PATCH may change it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    customer_id: Option<String>,
    event_types: Option<String>,
}

impl Filter {
    /// `None` as the empty text, which neither ever is when set.
    fn customer(&self) -> &str {
        self.customer_id.as_deref().unwrap_or_default()
    }

    fn types(&self) -> &str {
        self.event_types.as_deref().unwrap_or_default()
    }
}

/// Records a failed attempt at `now` (`error` says why; no secret or URL in
/// it) and frees the lease, the next attempt at `next_at`, if `token` still
/// holds it.
pub fn failed(
    conn: &mut AnyConnection,
    (id, token): (&str, &str),
    error: &str,
    now: i64,
    next_at: i64,
) -> Result<(), StoreError> {
    not_delivered(conn, (id, token), error, (now, next_at), true)
}

/// Frees the lease without counting a failure, the next attempt at
/// `next_at`, noting `error` (this node could not deliver; another may)
/// and, from `now` unless already set, `failing_since`: an endpoint no node
/// can deliver shows as failing, without backing off.
pub fn pass(
    conn: &mut AnyConnection,
    (id, token): (&str, &str),
    error: &str,
    (now, next_at): (i64, i64),
) -> Result<(), StoreError> {
    not_delivered(conn, (id, token), error, (now, next_at), false)
}

/// [`failed`] (`counted`: a failed attempt at `now`) or [`pass`]: notes
/// `error`, `failing_since` from `now` unless set, and frees the lease.
fn not_delivered(
    conn: &mut AnyConnection,
    (id, token): (&str, &str),
    error: &str,
    (now, next_at): (i64, i64),
    counted: bool,
) -> Result<(), StoreError> {
    // Only the lease's holder writes the row: reading it first is safe.
    let Some(row) = get(conn, id)?.filter(|r| r.lease_id.as_deref() == Some(token)) else {
        return Ok(());
    };
    let noted = (w::last_error.eq(error), w::failing_since.eq(row.failing_since.unwrap_or(now)));
    if counted {
        diesel::update(leased(id, token))
            .set((noted, w::failures.eq(row.failures + 1), w::last_attempt_at.eq(now)))
            .execute(conn)?;
    } else {
        diesel::update(leased(id, token)).set(noted).execute(conn)?;
    }
    lease_then(conn, id, token, Then::Release(next_at))?;
    Ok(())
}

/// Moves the position past events that were deleted before they were
/// delivered (`to`), recording when and what (`skipped`); a delivery does
/// not clear that record.
pub fn skip(
    conn: &mut AnyConnection,
    (id, token): (&str, &str),
    to: Position,
    skipped: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let n = diesel::update(leased(id, token))
        .set((
            w::cursor_txid.eq(to.txid),
            w::cursor_seq.eq(to.seq),
            w::skipped_at.eq(now),
            w::skipped.eq(skipped),
            // What was failing is gone: the next attempt starts afresh.
            w::failures.eq(0),
            w::failing_since.eq(None::<i64>),
            w::last_error.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(n == 1 && lease_then(conn, id, token, Then::Release(now))?)
}

/// The endpoints whose signing secrets (current, or previous while its
/// grace lasts at `now`) do not open with `key`'s current key.
pub fn secrets_not_under(conn: &mut AnyConnection, key: &SecretKey, now: i64) -> Result<Vec<String>, StoreError> {
    Ok(list(conn)?
        .into_iter()
        .filter(|r| {
            let context = secret_context(&r.id);
            let opens = |e: &str| key.decrypt_with_current(e, &context).is_ok();
            !opens(&r.secret_enc) || r.previous_secret(now).is_some_and(|p| !opens(p))
        })
        .map(|r| r.id)
        .collect())
}

/// Re-encrypts every signing secret (and previous one, while its grace
/// lasts at `now`; an expired one is dropped) not under `key`'s current key
/// (the last step of a secret-key rotation); returns how many endpoints it
/// rewrote. An endpoint whose secret a node rotates meanwhile is read again.
pub fn reencrypt_secrets(conn: &mut AnyConnection, key: &SecretKey, now: i64) -> Result<usize, StoreError> {
    let ids: Vec<String> = w::webhook_endpoints.select(w::id).order(w::id).load(conn)?;
    let mut changed = 0;
    for id in ids {
        let context = secret_context(&id);
        let under = |e: &str| -> Result<Option<String>, StoreError> {
            if key.decrypt_with_current(e, &context).is_ok() {
                return Ok(None);
            }
            let plain = key.decrypt(e, &context).map_err(|err| {
                StoreError::Corrupt(format!("a signing secret of webhook endpoint {id} opens with neither key: {err}"))
            })?;
            Ok(Some(key.encrypt(&plain.0, &context)))
        };
        let mut done = false;
        for _ in 0..16 {
            let Some(row) = get(conn, &id)? else {
                done = true;
                break;
            };
            let expired = row.previous_secret_enc.is_some() && row.previous_secret(now).is_none();
            let new_current = under(&row.secret_enc)?;
            let new_previous = match row.previous_secret(now) {
                Some(p) => under(p)?,
                None => None,
            };
            if new_current.is_none() && new_previous.is_none() && !expired {
                done = true;
                break;
            }
            let keep_previous = if expired { None } else { new_previous.or(row.previous_secret_enc.clone()) };
            // Compare-and-set on the texts read.
            let values = (
                w::secret_enc.eq(new_current.unwrap_or(row.secret_enc.clone())),
                w::previous_secret_enc.eq(keep_previous.clone()),
                w::previous_secret_until.eq(keep_previous.as_ref().and(row.previous_secret_until)),
            );
            let same = w::webhook_endpoints.filter(w::id.eq(&id)).filter(w::secret_enc.eq(&row.secret_enc));
            let n = match &row.previous_secret_enc {
                Some(p) => diesel::update(same.filter(w::previous_secret_enc.eq(p))).set(values).execute(conn)?,
                None => diesel::update(same.filter(w::previous_secret_enc.is_null())).set(values).execute(conn)?,
            };
            if n == 1 {
                changed += 1;
                done = true;
                break;
            }
        }
        if !done {
            return Err(StoreError::Busy(format!(
                "the signing secret of webhook endpoint {id} kept changing while it was re-encrypted; run the rotation again"
            )));
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(id: &str) -> WebhookEndpointRow {
        let url = "https://hooks.example.com/x".to_string();
        WebhookEndpointRow::new(id.into(), url, "sealed".into(), (None, None), Position { txid: 0, seq: 5 }, 0)
    }

    /// A rotation of the secret key is not abandoned while an endpoint's
    /// signing secret is under the key it was going to (a node with that
    /// key made it): the endpoint is named, and once its secret is under
    /// the database's key again the rotation is abandoned.
    #[test]
    fn abandoning_a_key_rotation_is_refused_while_a_signing_secret_is_under_the_next_key() {
        let (store, _dir) = crate::test_store_any_backend();
        let (current, encoded) = SecretKey::generate().unwrap_or_else(|e| panic!("{e}"));
        let (next, _) = SecretKey::generate().unwrap_or_else(|e| panic!("{e}"));
        let again = move || SecretKey::from_base64(&encoded).unwrap_or_else(|e| panic!("{e}"));
        let context = secret_context("e2");
        let mut row = endpoint("e2");
        row.secret_enc = next.encrypt("whsec_made-under-the-next-key", &context);
        let sealed_now = current.encrypt("whsec_made-under-the-next-key", &context);
        store
            .write_blocking(move |c| {
                crate::meta::verify_secret_key(c, &current)?;
                insert(c, &row)
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let key = again();
        let refused = store
            .write_blocking(move |c| crate::meta::abandon_rotation(c, &key, crate::from_micros(1_800_000_000_000_000)))
            .expect_err("refused while e2's secret is under the next key");
        assert!(refused.to_string().contains("webhook endpoints e2 are not under this key"), "{refused}");
        let key = again();
        store
            .write_blocking(move |c| {
                diesel::update(w::webhook_endpoints.filter(w::id.eq("e2")))
                    .set(w::secret_enc.eq(sealed_now))
                    .execute(c)?;
                crate::meta::abandon_rotation(c, &key, crate::from_micros(1_800_000_000_000_000))
            })
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// A node whose lease ran out, and was taken by another, records
    /// nothing: not the position, not a failure, not a release.
    #[test]
    fn only_the_lease_still_held_records_an_outcome() {
        let (store, _dir) = crate::test_store_any_backend();
        type Step = Box<dyn FnOnce(&mut AnyConnection) -> Result<bool, StoreError> + Send>;
        let run = |f: Step| store.write_blocking(f).unwrap_or_else(|e| panic!("{e}"));
        run(Box::new(|c| insert(c, &endpoint("e1")).map(|()| true)));
        assert!(run(Box::new(|c| lease(c, "e1", 10, 20, "a"))));
        assert!(!run(Box::new(|c| lease(c, "e1", 15, 40, "b"))), "held until 20");
        assert!(run(Box::new(|c| lease(c, "e1", 25, 60, "b"))), "a's lease ran out");
        let to = Position { txid: 0, seq: 9 };
        let all = Filter { customer_id: None, event_types: None };
        let (all_a, all_b) = (all.clone(), all.clone());
        assert!(!run(Box::new(move |c| advance(c, ("e1", "a", &all_a), to, Some(26), Then::Release(26)))));
        run(Box::new(|c| failed(c, ("e1", "a"), "late", 27, 99).map(|()| true)));
        let row =
            store.read_blocking(|c| get(c, "e1")).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("gone"));
        assert_eq!(
            (row.cursor_seq, row.failures, row.lease_id.as_deref(), row.leased_until),
            (5, 0, Some("b"), Some(60))
        );
        // Read under another filter (a PATCH changed it meanwhile): nothing moves.
        let narrower = Filter { customer_id: None, event_types: Some("user.deleted".into()) };
        assert!(!run(Box::new(move |c| advance(c, ("e1", "b", &narrower), to, Some(28), Then::Release(28)))));
        assert!(run(Box::new(move |c| advance(c, ("e1", "b", &all_b), to, Some(28), Then::Release(28)))));
        let row =
            store.read_blocking(|c| get(c, "e1")).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("gone"));
        assert_eq!((row.cursor_seq, row.last_success_at, row.lease_id, row.leased_until), (9, Some(28), None, None));
    }

    /// Moving a free endpoint past events it does not take only moves it
    /// forward: a head read before another node's turn moved the position
    /// further leaves that position where it is.
    #[test]
    fn move_past_never_moves_a_position_back() {
        let (store, _dir) = crate::test_store_any_backend();
        store.write_blocking(|c| insert(c, &endpoint("e3"))).unwrap_or_else(|e| panic!("{e}"));
        let seq = |store: &crate::Store| {
            store.read_blocking(|c| get(c, "e3")).unwrap_or_else(|e| panic!("{e}")).map(|r| r.cursor_seq)
        };
        let (at5, at3, at8) =
            (Position { txid: 0, seq: 5 }, Position { txid: 0, seq: 3 }, Position { txid: 0, seq: 8 });
        let all = Filter { customer_id: None, event_types: None };
        let (a, b) = (all.clone(), all);
        store.write_blocking(move |c| move_past(c, ("e3", &a), at5, at3, 10)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(seq(&store), Some(5), "not moved back to an older head");
        // Looked at under another filter (changed since): left where it is.
        let other = Filter { customer_id: Some("acme".into()), event_types: None };
        store.write_blocking(move |c| move_past(c, ("e3", &other), at5, at8, 10)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(seq(&store), Some(5), "another filter's look");
        store.write_blocking(move |c| move_past(c, ("e3", &b), at5, at8, 10)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(seq(&store), Some(8), "moved forward");
    }
}
