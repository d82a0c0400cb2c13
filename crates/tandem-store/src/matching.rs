//! What the matching report reads: only the key columns of the SSO users
//! seen on a client and of the live SCIM users of a connection.

use crate::schema::scim_users::dsl as u;
use crate::schema::sso_users::dsl as s;
use crate::{AnyConnection, StoreError};
use diesel::prelude::*;
use tandem_core::report::{ScimSide, SsoSide};

/// An SSO user with what the report lists about it.
#[derive(Clone, Debug)]
pub struct SeenUser {
    pub keys: SsoSide,
    pub last_login_at: i64,
}

/// An SSO user's row: oidc_user_id, email, preferred_username, email_verified, last_login_at.
type SeenRow = (String, Option<String>, Option<String>, Option<bool>, i64);

/// The SSO users seen on `client`: all of them, or those whose last login
/// was at or after `since` (µs).
pub fn sso_side(conn: &mut AnyConnection, client: &str, since: Option<i64>) -> Result<Vec<SeenUser>, StoreError> {
    let query = s::sso_users.filter(s::oidc_client_id.eq(client)).into_boxed();
    let query = match since {
        Some(t) => query.filter(s::last_login_at.ge(t)),
        None => query,
    };
    let mut rows: Vec<SeenRow> = query
        .select((s::oidc_user_id, s::email, s::preferred_username, s::email_verified, s::last_login_at))
        .order(s::id.asc())
        .load(conn)?;
    // Most recently seen first, so a capped list shows who fails today
    // before identities of long ago (first seen first among equals).
    rows.sort_by_key(|r| std::cmp::Reverse(r.4));
    Ok(rows
        .into_iter()
        .map(|(oidc_user_id, email, preferred_username, email_verified, last_login_at)| SeenUser {
            keys: SsoSide { oidc_user_id, email, preferred_username, email_verified },
            last_login_at,
        })
        .collect())
}

/// The OIDC user ids of the SSO users seen on `client` whose last login's
/// claims lack `claim` (a Google account without `hd`: see the login).
pub fn sso_users_without_claim(
    conn: &mut AnyConnection,
    client: &str,
    claim: &str,
) -> Result<std::collections::HashSet<String>, StoreError> {
    let rows: Vec<(String, String)> =
        s::sso_users.filter(s::oidc_client_id.eq(client)).select((s::oidc_user_id, s::claims)).load(conn)?;
    Ok(rows
        .into_iter()
        .filter(|(_, claims)| {
            serde_json::from_str::<serde_json::Value>(claims)
                .ok()
                .and_then(|c| c.get(claim).and_then(serde_json::Value::as_str).map(|v| !v.is_empty()))
                != Some(true)
        })
        .map(|(id, _)| id)
        .collect())
}

/// All live SCIM users of `connection`.
pub fn scim_side(conn: &mut AnyConnection, connection: &str) -> Result<Vec<ScimSide>, StoreError> {
    users_of(conn, connection, false)
}

/// The deleted SCIM users (tombstones) of `connection`, oldest first (by
/// id): shown as the reason an SSO user matches no live user, and weighed
/// as the login weighs them by local part.
pub fn deleted_side(conn: &mut AnyConnection, connection: &str) -> Result<Vec<ScimSide>, StoreError> {
    users_of(conn, connection, true)
}

fn users_of(conn: &mut AnyConnection, connection: &str, deleted: bool) -> Result<Vec<ScimSide>, StoreError> {
    let query = u::scim_users.filter(u::scim_connection_id.eq(connection)).into_boxed();
    let query = if deleted { query.filter(u::deleted_at.is_not_null()) } else { query.filter(u::deleted_at.is_null()) };
    let rows: Vec<(String, String, Option<String>, bool)> =
        query.select((u::id, u::user_name, u::external_id, u::active)).order(u::id.asc()).load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, user_name, external_id, active)| ScimSide { id, user_name, external_id, active })
        .collect())
}

/// The `emails` values of the SCIM users `ids` of `connection`, live or
/// deleted, by id (users without any are absent).
pub fn emails_of(
    conn: &mut AnyConnection,
    connection: &str,
    ids: &[String],
) -> Result<std::collections::HashMap<String, Vec<String>>, StoreError> {
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, String)> = u::scim_users
            .filter(u::scim_connection_id.eq(connection))
            .filter(u::id.eq_any(chunk))
            .select((u::id, u::resource))
            .load(conn)?;
        for (id, resource) in rows {
            let doc: serde_json::Value = serde_json::from_str(&resource).unwrap_or_default();
            let emails: Vec<String> = tandem_scim::resource::email_values(&doc).map(str::to_string).collect();
            if !emails.is_empty() {
                out.insert(id, emails);
            }
        }
    }
    Ok(out)
}
