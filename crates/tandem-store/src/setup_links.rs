//! Setup links: a customer's IT admin sets up the customer's own IdP (its
//! sign-in client and its SCIM connection) through a link the app made,
//! without an integration key. Stored as hashes, like keys.

use crate::schema::setup_links::dsl as s;
use crate::{micros, AnyConnection, StoreError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use tandem_core::keys::{generate, hash_key, KeyKind};
use tandem_core::secret::Redacted;

/// A stored setup link (never its token).
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::schema::setup_links)]
pub struct SetupLinkRow {
    pub id: String,
    pub customer_id: String,
    pub token_hash: String,
    pub display_prefix: String,
    pub redirect_url: Option<String>,
    /// The app's settings for a client the link creates (a JSON object).
    pub client_settings: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl SetupLinkRow {
    /// `active`, `expired` or `revoked` at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at <= micros(now) {
            "expired"
        } else {
            "active"
        }
    }

    /// Whether a use at `now` is to be recorded (see [`crate::use_due`]).
    pub fn use_due(&self, now: DateTime<Utc>) -> bool {
        crate::use_due(self.last_used_at, now)
    }
}

/// Creates a link for `customer_id`, working until `expires_at`, with the
/// redirect URL and settings of a client it creates; returns the row and
/// the token to hand out once.
pub fn create(
    conn: &mut AnyConnection,
    customer_id: &str,
    (redirect_url, client_settings): (Option<&str>, Option<&str>),
    created_by: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(SetupLinkRow, Redacted<String>), StoreError> {
    let generated = generate(KeyKind::SetupLink);
    let row = SetupLinkRow {
        id: tandem_core::new_id(),
        customer_id: customer_id.to_string(),
        token_hash: generated.hash,
        display_prefix: generated.display_prefix,
        redirect_url: redirect_url.map(str::to_string),
        client_settings: client_settings.map(str::to_string),
        created_by: created_by.to_string(),
        created_at: micros(now),
        expires_at: micros(expires_at),
        revoked_at: None,
        last_used_at: None,
    };
    diesel::insert_into(s::setup_links).values(&row).execute(conn)?;
    Ok((row, generated.plaintext))
}

/// The link `presented` is the token of, while it works at `now`.
pub fn find_active(
    conn: &mut AnyConnection,
    presented: &str,
    now: DateTime<Utc>,
) -> Result<Option<SetupLinkRow>, StoreError> {
    Ok(s::setup_links
        .filter(s::token_hash.eq(hash_key(presented)))
        .filter(s::revoked_at.is_null())
        .filter(s::expires_at.gt(micros(now)))
        .select(SetupLinkRow::as_select())
        .first(conn)
        .optional()?)
}

/// The link `id`.
pub fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<SetupLinkRow>, StoreError> {
    Ok(s::setup_links.filter(s::id.eq(id)).select(SetupLinkRow::as_select()).first(conn).optional()?)
}

/// Links, newest first, of one customer or of all; at most `limit`, older
/// than the link `before` (ids sort in creation order).
pub fn list(
    conn: &mut AnyConnection,
    customer_id: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<SetupLinkRow>, StoreError> {
    let mut query = s::setup_links.select(SetupLinkRow::as_select()).order(s::id.desc()).limit(limit).into_boxed();
    if let Some(customer) = customer_id {
        query = query.filter(s::customer_id.eq(customer.to_string()));
    }
    if let Some(before) = before {
        query = query.filter(s::id.lt(before.to_string()));
    }
    Ok(query.load(conn)?)
}

/// Revokes the link `id`: `None` when there is none, else the row and
/// whether this call revoked it (of two at once, one does).
pub fn revoke(
    conn: &mut AnyConnection,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<(SetupLinkRow, bool)>, StoreError> {
    let Some(row) = get(conn, id)? else { return Ok(None) };
    let changed = diesel::update(s::setup_links.filter(s::id.eq(id)).filter(s::revoked_at.is_null()))
        .set(s::revoked_at.eq(micros(now)))
        .execute(conn)?;
    Ok(Some((row, changed == 1)))
}

/// `customer_id`'s links still working at `now`, oldest first.
pub fn working_of(
    conn: &mut AnyConnection,
    customer_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<SetupLinkRow>, StoreError> {
    Ok(s::setup_links
        .select(SetupLinkRow::as_select())
        .filter(s::customer_id.eq(customer_id))
        .filter(s::revoked_at.is_null())
        .filter(s::expires_at.gt(micros(now)))
        .order(s::id)
        .load(conn)?)
}

/// Every customer's links still working at `now`, newest first, at most `limit`.
pub fn working(conn: &mut AnyConnection, now: DateTime<Utc>, limit: i64) -> Result<Vec<SetupLinkRow>, StoreError> {
    Ok(s::setup_links
        .select(SetupLinkRow::as_select())
        .filter(s::revoked_at.is_null())
        .filter(s::expires_at.gt(micros(now)))
        .order(s::id.desc())
        .limit(limit)
        .load(conn)?)
}

/// Records that the link `id` was used at `now`.
pub fn record_use(conn: &mut AnyConnection, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    diesel::update(s::setup_links.filter(s::id.eq(id))).set(s::last_used_at.eq(micros(now))).execute(conn)?;
    Ok(())
}
