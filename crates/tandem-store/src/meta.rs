//! Deployment-wide facts kept in the database, such as the check value that
//! proves the configured secret key is the one the data was written with.

use crate::schema::tandem_meta::dsl as m;
use crate::{AnyConnection, StoreError};
use diesel::prelude::*;
use tandem_core::secret::{SecretKey, KEY_CHECK_CONTEXT, KEY_CHECK_PLAINTEXT};

const KEY_CHECK: &str = "secret_key_check";

/// Reads a value.
pub fn get(conn: &mut AnyConnection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(m::tandem_meta.filter(m::key.eq(key)).select(m::value).first(conn).optional()?)
}

/// The error of a key that is not the one this database's secrets were
/// encrypted with.
fn wrong_key() -> StoreError {
    StoreError::Corrupt(
        "the configured secret key (TANDEM_SECRET_KEY or the key file) is not the key this database's secrets were \
         encrypted with; restore the original key"
            .into(),
    )
}

/// Refuses `secret` when the database already holds a check value it does
/// not open. Anything else (a new database without the table yet, no check
/// value) passes: it runs before migrations, so that a node started with
/// the wrong key changes nothing, and [`verify_secret_key`] decides after them.
pub fn refuse_a_wrong_key(conn: &mut AnyConnection, secret: &SecretKey) -> Result<(), StoreError> {
    match get(conn, KEY_CHECK) {
        Ok(Some(stored)) if !opens(secret, &stored) => Err(wrong_key()),
        _ => Ok(()),
    }
}

/// Whether the database holds a key check value: secrets were (or may
/// have been) written under some key. `false` for a new database without
/// the table yet.
pub fn has_key_check(conn: &mut AnyConnection) -> bool {
    matches!(get(conn, KEY_CHECK), Ok(Some(_)))
}

/// Which key the database was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckedBy {
    /// `secret`'s current key: nothing was left to rotate.
    Current,
    /// Its previous key: a rotation was in progress.
    Previous,
}

/// Writes the check value under `secret`'s current key, and forgets the
/// next key's check (the end of a key rotation: the previous key is no
/// longer needed to start). Says which key the check was under before.
pub fn rewrite_key_check(conn: &mut AnyConnection, secret: &SecretKey) -> Result<CheckedBy, StoreError> {
    verify_secret_key(conn, secret)?;
    let stored = get(conn, KEY_CHECK)?.unwrap_or_default();
    let before = if opens_with_current(secret, &stored) { CheckedBy::Current } else { CheckedBy::Previous };
    let value = secret.encrypt(KEY_CHECK_PLAINTEXT, KEY_CHECK_CONTEXT);
    diesel::update(m::tandem_meta.filter(m::key.eq(KEY_CHECK))).set(m::value.eq(&value)).execute(conn)?;
    diesel::delete(m::tandem_meta.filter(m::key.eq(KEY_CHECK_NEXT))).execute(conn)?;
    Ok(before)
}

/// Whether `stored` is a check value `secret`'s current key opens.
fn opens_with_current(secret: &SecretKey, stored: &str) -> bool {
    secret.decrypt_with_current(stored, KEY_CHECK_CONTEXT).is_ok_and(|p| p.0 == KEY_CHECK_PLAINTEXT)
}

/// Whether `stored` is a check value `secret` opens, with its current key
/// or its previous one.
fn opens(secret: &SecretKey, stored: &str) -> bool {
    secret.decrypt(stored, KEY_CHECK_CONTEXT).is_ok_and(|p| p.0 == KEY_CHECK_PLAINTEXT)
}

/// During a key rotation, the key rotated to: its fingerprint and a check
/// value under it (`<fingerprint> <ciphertext>`). The first node started
/// with a previous key writes it, and every other node's current key must
/// open it, so that no node encrypts under a key the others do not have (a
/// typo in one node's new key).
const KEY_CHECK_NEXT: &str = "secret_key_check_next";

fn next_value(secret: &SecretKey) -> String {
    format!("{} {}", secret.fingerprint(), secret.encrypt(KEY_CHECK_PLAINTEXT, KEY_CHECK_CONTEXT))
}

/// Forgets the key a rotation was going to (an abandoned rotation, or one
/// whose first node had a mistyped key), for a `secret` that opens the
/// check value with its current key and every stored client secret and
/// webhook signing secret; the clients or endpoints whose secrets it does
/// not open are named instead.
pub fn abandon_rotation(
    conn: &mut AnyConnection,
    secret: &SecretKey,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<String>, StoreError> {
    let stored = get(conn, KEY_CHECK)?.unwrap_or_default();
    if !opens_with_current(secret, &stored) {
        return Err(StoreError::Corrupt(
            "give the key the database is checked against as TANDEM_SECRET_KEY (without a previous key) to abandon \
             a rotation"
                .into(),
        ));
    }
    let unreadable = crate::oidc_clients::secrets_not_under(conn, secret)?;
    if !unreadable.is_empty() {
        return Err(StoreError::Corrupt(format!(
            "the client secrets or keys of OIDC clients {} are not under this key (a node saved them under the key \
             the rotation was going to): finish that rotation instead, or save those secrets again (for keys, a PATCH \
             naming idp.client_authentication makes new ones)",
            unreadable.join(", ")
        )));
    }
    let unreadable = crate::webhooks::secrets_not_under(conn, secret, crate::micros(now))?;
    if !unreadable.is_empty() {
        return Err(StoreError::Corrupt(format!(
            "the signing secrets of webhook endpoints {} are not under this key (a node made them under the key \
             the rotation was going to): finish that rotation instead, or rotate those endpoints' secrets \
             (rotate-secret with grace_period_hours 0)",
            unreadable.join(", ")
        )));
    }
    let recorded = get(conn, KEY_CHECK_NEXT)?.and_then(|v| v.split_once(' ').map(|(fp, _)| fp.to_string()));
    diesel::delete(m::tandem_meta.filter(m::key.eq(KEY_CHECK_NEXT))).execute(conn)?;
    Ok(recorded)
}

/// Inserts `key` = `value` unless a row is there already (a lost race);
/// the insert runs in a savepoint, so the transaction stays usable.
fn insert_if_absent(conn: &mut AnyConnection, key: &str, value: &str) -> Result<(), StoreError> {
    let inserted = conn
        .transaction(|c| diesel::insert_into(m::tandem_meta).values((m::key.eq(key), m::value.eq(value))).execute(c));
    match inserted {
        Ok(_) | Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Verifies `secret` against the stored check value, writing one on first
/// use. A mismatch is an error that says what to do.
///
/// Nodes starting together on a new database all find no check value; the
/// first insert wins and the others check their key against the winner's.
/// While a key is rotated (the check opens with the previous key only),
/// the current key must be the one every other rotating node has.
pub fn verify_secret_key(conn: &mut AnyConnection, secret: &SecretKey) -> Result<(), StoreError> {
    if get(conn, KEY_CHECK)?.is_none() {
        insert_if_absent(conn, KEY_CHECK, &secret.encrypt(KEY_CHECK_PLAINTEXT, KEY_CHECK_CONTEXT))?;
    }
    let stored = get(conn, KEY_CHECK)?.unwrap_or_default();
    if opens_with_current(secret, &stored) {
        return Ok(());
    }
    if !opens(secret, &stored) {
        return Err(wrong_key());
    }
    // Opened by the previous key: a rotation in progress.
    let next = match get(conn, KEY_CHECK_NEXT)? {
        // One left by a rotation that has since completed (a node started
        // as it committed) is under the key the check is under now: stale.
        Some(v)
            if v.split_once(' ')
                .is_some_and(|(_, check)| opens(secret, check) && !opens_with_current(secret, check)) =>
        {
            let value = next_value(secret);
            diesel::update(m::tandem_meta.filter(m::key.eq(KEY_CHECK_NEXT))).set(m::value.eq(&value)).execute(conn)?;
            value
        }
        Some(v) => v,
        None => {
            insert_if_absent(conn, KEY_CHECK_NEXT, &next_value(secret))?;
            get(conn, KEY_CHECK_NEXT)?.unwrap_or_default()
        }
    };
    let (recorded, check) = next.split_once(' ').unwrap_or(("?", next.as_str()));
    if opens_with_current(secret, check) {
        return Ok(());
    }
    Err(StoreError::Corrupt(format!(
        "a key rotation to the key {recorded} is in progress (the first node started with a previous key recorded \
         it), and this node's key is {}: give every node {recorded}, or, if no node uses it any more (a rotation \
         abandoned, a mistyped key), run `tandem secret-key abandon-rotation` with the key the database is checked \
         against",
        secret.fingerprint()
    )))
}
