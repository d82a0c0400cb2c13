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

/// Writes the check value under `secret`'s current key (the end of a key
/// rotation: the previous key is no longer needed to start).
pub fn rewrite_key_check(conn: &mut AnyConnection, secret: &SecretKey) -> Result<(), StoreError> {
    let value = secret.encrypt(KEY_CHECK_PLAINTEXT, KEY_CHECK_CONTEXT);
    let updated = diesel::update(m::tandem_meta.filter(m::key.eq(KEY_CHECK))).set(m::value.eq(&value)).execute(conn)?;
    if updated == 0 {
        diesel::insert_into(m::tandem_meta).values((m::key.eq(KEY_CHECK), m::value.eq(&value))).execute(conn)?;
    }
    Ok(())
}

/// Verifies `secret` against the stored check value, writing one on first
/// use. A mismatch is an error that says what to do.
///
/// Nodes starting together on a new database all find no check value; the
/// first insert wins and the others check their key against the winner's
/// (the insert runs in a savepoint, so a lost race leaves the transaction
/// usable for the re-read).
pub fn verify_secret_key(conn: &mut AnyConnection, secret: &SecretKey) -> Result<(), StoreError> {
    if get(conn, KEY_CHECK)?.is_none() {
        let value = secret.encrypt(KEY_CHECK_PLAINTEXT, KEY_CHECK_CONTEXT);
        let inserted = conn.transaction(|c| {
            diesel::insert_into(m::tandem_meta).values((m::key.eq(KEY_CHECK), m::value.eq(&value))).execute(c)
        });
        match inserted {
            Ok(_) => return Ok(()),
            Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let stored = get(conn, KEY_CHECK)?.unwrap_or_default();
    match secret.decrypt(&stored, KEY_CHECK_CONTEXT) {
        Ok(p) if p.0 == KEY_CHECK_PLAINTEXT => Ok(()),
        _ => Err(wrong_key()),
    }
}
