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

/// Verifies `secret` against the stored check value, writing one on first
/// use. A mismatch is an error that says what to do.
pub fn verify_secret_key(conn: &mut AnyConnection, secret: &SecretKey) -> Result<(), StoreError> {
    match get(conn, KEY_CHECK)? {
        Some(stored) => match secret.decrypt(&stored, KEY_CHECK_CONTEXT) {
            Ok(p) if p.0 == KEY_CHECK_PLAINTEXT => Ok(()),
            _ => Err(StoreError::Corrupt(
                "the configured secret key (TANDEM_SECRET_KEY or the key file) is not the key this database's \
                 secrets were encrypted with; restore the original key"
                    .into(),
            )),
        },
        None => {
            diesel::insert_into(m::tandem_meta)
                .values((m::key.eq(KEY_CHECK), m::value.eq(secret.encrypt(KEY_CHECK_PLAINTEXT, KEY_CHECK_CONTEXT))))
                .execute(conn)?;
            Ok(())
        }
    }
}
