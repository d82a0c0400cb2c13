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
        Ok(Some(stored))
            if secret.decrypt(&stored, KEY_CHECK_CONTEXT).map(|p| p.0).ok().as_deref() != Some(KEY_CHECK_PLAINTEXT) =>
        {
            Err(wrong_key())
        }
        _ => Ok(()),
    }
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

fn opens_with_current(secret: &SecretKey, stored: &str) -> bool {
    secret.decrypt_with_current(stored, KEY_CHECK_CONTEXT).is_ok_and(|p| p.0 == KEY_CHECK_PLAINTEXT)
}

/// During a key rotation, the check value of the key rotated to: the first
/// node started with a previous key writes it, and every other node's
/// current key must open it, so that no node encrypts under a key the
/// others do not have (a typo in one node's new key).
const KEY_CHECK_NEXT: &str = "secret_key_check_next";

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
    match secret.decrypt(&stored, KEY_CHECK_CONTEXT) {
        Ok(p) if p.0 == KEY_CHECK_PLAINTEXT => {}
        _ => return Err(wrong_key()),
    }
    // Opened by the previous key: a rotation in progress.
    if get(conn, KEY_CHECK_NEXT)?.is_none() {
        insert_if_absent(conn, KEY_CHECK_NEXT, &secret.encrypt(KEY_CHECK_PLAINTEXT, KEY_CHECK_CONTEXT))?;
    }
    if opens_with_current(secret, &get(conn, KEY_CHECK_NEXT)?.unwrap_or_default()) {
        return Ok(());
    }
    Err(StoreError::Corrupt(
        "a key rotation is in progress and another node rotates to a different secret key: give every node the \
         same new TANDEM_SECRET_KEY (secrets.key) beside the previous one"
            .into(),
    ))
}
