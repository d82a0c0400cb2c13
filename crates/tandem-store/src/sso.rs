//! Logins as stored: transactions between initiate and complete, login
//! events (the trace an admin reads), and the SSO users seen.

use crate::schema::login_events::dsl as ev;
use crate::schema::login_transactions::dsl as tx;
use crate::schema::sso_users::dsl as su;
use crate::{micros, AnyConnection, StoreError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

/// A login between initiate and complete.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::schema::login_transactions)]
pub struct LoginTransaction {
    pub id: String,
    pub oidc_client_id: String,
    pub state_hash: String,
    pub cookie_hash: String,
    pub nonce: String,
    pub pkce_verifier_enc: Option<String>,
    pub post_login_redirect_url: Option<String>,
    pub login_event_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
}

/// The encryption context of a transaction's PKCE verifier.
pub fn verifier_context(id: &str) -> String {
    format!("login_transaction:{id}:pkce_verifier")
}

/// Records a new transaction.
pub fn insert_transaction(conn: &mut AnyConnection, t: &LoginTransaction) -> Result<(), StoreError> {
    diesel::insert_into(tx::login_transactions).values(t).execute(conn)?;
    Ok(())
}

/// The transaction whose `state` hashes to `state_hash`.
pub fn find_transaction(conn: &mut AnyConnection, state_hash: &str) -> Result<Option<LoginTransaction>, StoreError> {
    Ok(tx::login_transactions
        .filter(tx::state_hash.eq(state_hash))
        .select(LoginTransaction::as_select())
        .first(conn)
        .optional()?)
}

/// Marks a transaction used; false when it already was (single use, also
/// between nodes sharing one database).
pub fn consume_transaction(conn: &mut AnyConnection, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let n = diesel::update(tx::login_transactions.filter(tx::id.eq(id)).filter(tx::consumed_at.is_null()))
        .set(tx::consumed_at.eq(micros(now)))
        .execute(conn)?;
    Ok(n == 1)
}

/// Deletes transactions that expired more than a day before `now`.
pub fn purge_transactions(conn: &mut AnyConnection, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let cutoff = micros(now - chrono::Duration::days(1));
    Ok(diesel::delete(tx::login_transactions.filter(tx::expires_at.lt(cutoff))).execute(conn)?)
}

/// A login attempt as recorded.
#[derive(Clone, Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = crate::schema::login_events, treat_none_as_null = true)]
pub struct LoginEvent {
    pub id: String,
    pub oidc_client_id: Option<String>,
    pub customer_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// `pending`, `success` or `failed`.
    pub outcome: String,
    pub error_type: Option<String>,
    pub error_kind: Option<String>,
    pub failed_step: Option<String>,
    pub diagnosis: Option<String>,
    /// JSON array of `{"step", "at", "ok", "detail"}`.
    pub steps: String,
    pub oidc_user_id: Option<String>,
    pub email: Option<String>,
    pub scim_user_id: Option<String>,
}

/// Records a new event.
pub fn insert_event(conn: &mut AnyConnection, e: &LoginEvent) -> Result<(), StoreError> {
    diesel::insert_into(ev::login_events).values(e).execute(conn)?;
    Ok(())
}

/// Saves an event's progress.
pub fn update_event(conn: &mut AnyConnection, e: &LoginEvent) -> Result<(), StoreError> {
    diesel::update(ev::login_events.filter(ev::id.eq(&e.id))).set(e).execute(conn)?;
    Ok(())
}

/// An event by id.
pub fn get_event(conn: &mut AnyConnection, id: &str) -> Result<Option<LoginEvent>, StoreError> {
    Ok(ev::login_events.filter(ev::id.eq(id)).select(LoginEvent::as_select()).first(conn).optional()?)
}

/// Filters for listing events.
#[derive(Clone, Debug, Default)]
pub struct EventQuery {
    pub oidc_client_id: Option<String>,
    pub customer_id: Option<String>,
    pub outcome: Option<String>,
    pub email: Option<String>,
    pub before: Option<String>,
    pub limit: i64,
}

/// Events matching `q`, newest first.
pub fn list_events(conn: &mut AnyConnection, q: &EventQuery) -> Result<Vec<LoginEvent>, StoreError> {
    let mut query = ev::login_events.select(LoginEvent::as_select()).order(ev::id.desc()).limit(q.limit).into_boxed();
    if let Some(c) = &q.oidc_client_id {
        query = query.filter(ev::oidc_client_id.eq(c.clone()));
    }
    if let Some(c) = &q.customer_id {
        query = query.filter(ev::customer_id.eq(c.clone()));
    }
    if let Some(o) = &q.outcome {
        query = query.filter(ev::outcome.eq(o.clone()));
    }
    if let Some(e) = &q.email {
        query = query.filter(ev::email.eq(e.clone()));
    }
    if let Some(b) = &q.before {
        query = query.filter(ev::id.lt(b.clone()));
    }
    Ok(query.load(conn)?)
}

/// An SSO identity seen at login.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::schema::sso_users)]
pub struct SsoUser {
    pub id: String,
    pub oidc_client_id: String,
    pub oidc_user_id: String,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub preferred_username: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub claims: String,
    pub first_login_at: i64,
    pub last_login_at: i64,
    pub login_count: i64,
}

/// Records a sighting of an SSO identity: inserted the first time, its
/// attributes and last login refreshed afterwards.
pub fn record_sso_user(conn: &mut AnyConnection, seen: &SsoUser) -> Result<(), StoreError> {
    let existing: Option<(String, i64)> = su::sso_users
        .filter(su::oidc_client_id.eq(&seen.oidc_client_id))
        .filter(su::oidc_user_id.eq(&seen.oidc_user_id))
        .select((su::id, su::login_count))
        .first(conn)
        .optional()?;
    match existing {
        Some((id, count)) => {
            diesel::update(su::sso_users.filter(su::id.eq(id)))
                .set((
                    su::email.eq(&seen.email),
                    su::email_verified.eq(seen.email_verified),
                    su::preferred_username.eq(&seen.preferred_username),
                    su::given_name.eq(&seen.given_name),
                    su::family_name.eq(&seen.family_name),
                    su::claims.eq(&seen.claims),
                    su::last_login_at.eq(seen.last_login_at),
                    su::login_count.eq(count + 1),
                ))
                .execute(conn)?;
        }
        None => {
            diesel::insert_into(su::sso_users).values(seen).execute(conn)?;
        }
    }
    Ok(())
}

/// The SSO users seen on a client, a page at a time.
pub fn sso_users_of(
    conn: &mut AnyConnection,
    client: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<SsoUser>, StoreError> {
    let mut q = su::sso_users
        .filter(su::oidc_client_id.eq(client))
        .select(SsoUser::as_select())
        .order(su::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(su::id.gt(a.to_string()));
    }
    Ok(q.load(conn)?)
}
