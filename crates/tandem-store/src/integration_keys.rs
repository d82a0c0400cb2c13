//! Integration keys: the app's credentials for the management and login
//! APIs, stored as hashes.

use crate::schema::integration_keys::dsl as k;
use crate::{micros, AnyConnection, StoreError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use tandem_core::keys::{generate, hash_key, KeyKind};
use tandem_core::secret::Redacted;

/// A stored integration key (never the key itself).
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::schema::integration_keys)]
pub struct IntegrationKey {
    pub id: String,
    pub name: String,
    pub display_prefix: String,
    pub key_hash: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// Creates a key named `name`; returns the row and the key to print once.
pub fn create(
    conn: &mut AnyConnection,
    name: &str,
    now: DateTime<Utc>,
) -> Result<(IntegrationKey, Redacted<String>), StoreError> {
    let generated = generate(KeyKind::Integration);
    let row = IntegrationKey {
        id: tandem_core::new_id(),
        name: name.to_string(),
        display_prefix: generated.display_prefix,
        key_hash: generated.hash,
        created_at: micros(now),
        last_used_at: None,
        revoked_at: None,
    };
    diesel::insert_into(k::integration_keys).values(&row).execute(conn)?;
    Ok((row, generated.plaintext))
}

/// Finds the live key matching `presented`. A read: its use is recorded
/// by [`record_use`], in a write of its own, when [`IntegrationKey::use_due`].
pub fn authenticate(conn: &mut AnyConnection, presented: &str) -> Result<Option<IntegrationKey>, StoreError> {
    let hash = hash_key(presented);
    Ok(k::integration_keys
        .filter(k::key_hash.eq(hash))
        .filter(k::revoked_at.is_null())
        .select(IntegrationKey::as_select())
        .first(conn)
        .optional()?)
}

impl IntegrationKey {
    /// Whether a use at `now` is to be recorded (see [`crate::use_due`]).
    pub fn use_due(&self, now: DateTime<Utc>) -> bool {
        crate::use_due(self.last_used_at, now)
    }
}

/// Records that the key `id` was used at `now`.
pub fn record_use(conn: &mut AnyConnection, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    diesel::update(k::integration_keys.filter(k::id.eq(id))).set(k::last_used_at.eq(micros(now))).execute(conn)?;
    Ok(())
}

/// All keys, newest first.
pub fn list(conn: &mut AnyConnection) -> Result<Vec<IntegrationKey>, StoreError> {
    Ok(k::integration_keys.order(k::id.desc()).select(IntegrationKey::as_select()).load(conn)?)
}

/// What [`revoke`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Revoked {
    /// The one active key with that id or name was revoked: its id.
    One(String),
    /// No active key has that id or name.
    None,
    /// Several active keys share that name (a rotation creates the new key
    /// under the old one's name): none was revoked; their ids, newest first.
    Ambiguous(Vec<String>),
}

/// Revokes the active key with this id, or the one active key with this
/// name: when several share the name, none (revoking both the old and the
/// new key of a rotation would lock the app out).
pub fn revoke(conn: &mut AnyConnection, id_or_name: &str, now: DateTime<Utc>) -> Result<Revoked, StoreError> {
    let by_id = k::integration_keys.filter(k::id.eq(id_or_name)).filter(k::revoked_at.is_null());
    if diesel::update(by_id).set(k::revoked_at.eq(micros(now))).execute(conn)? > 0 {
        return Ok(Revoked::One(id_or_name.to_string()));
    }
    let named: Vec<String> = k::integration_keys
        .filter(k::name.eq(id_or_name))
        .filter(k::revoked_at.is_null())
        .order(k::id.desc())
        .select(k::id)
        .load(conn)?;
    match named.as_slice() {
        [] => Ok(Revoked::None),
        [one] => {
            diesel::update(k::integration_keys.filter(k::id.eq(one)))
                .set(k::revoked_at.eq(micros(now)))
                .execute(conn)?;
            Ok(Revoked::One(one.clone()))
        }
        _ => Ok(Revoked::Ambiguous(named)),
    }
}
