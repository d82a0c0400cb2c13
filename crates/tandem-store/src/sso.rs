//! Logins as stored: transactions between initiate and complete, login
//! events (the trace an admin reads), and the SSO users seen.

use crate::schema::login_events::dsl as ev;
use crate::schema::login_transactions::dsl as tx;
use crate::schema::sso_users::dsl as su;
use crate::scim::filter_sql::Bind;
use crate::scim::query::execute_fixed;
use crate::{micros, AnyConnection, StoreError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

// A login's UPDATEs as static statements that stay prepared (diesel
// prepares an UPDATE afresh on every call).
crate::fixed_sql!(Consume = "UPDATE login_transactions SET consumed_at = ? WHERE id = ? AND consumed_at IS NULL");
crate::fixed_sql!(
    UpdateEvent =
        "UPDATE login_events SET updated_at = ?, outcome = ?, error_type = ?, error_kind = ?, failed_step = ?, \
         diagnosis = ?, steps = ?, oidc_user_id = ?, email = ?, scim_user_id = ? WHERE id = ?"
);
// Their INSERTs too: diesel builds an INSERT's text again on every call when
// the row has optional columns.
crate::fixed_sql!(
    InsertTransaction =
        "INSERT INTO login_transactions (id, oidc_client_id, state_hash, cookie_hash, nonce, pkce_verifier_enc, \
         post_login_redirect_url, login_event_id, created_at, expires_at, consumed_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
);
crate::fixed_sql!(
    InsertEvent =
        "INSERT INTO login_events (id, oidc_client_id, customer_id, created_at, updated_at, outcome, error_type, \
         error_kind, failed_step, diagnosis, steps, oidc_user_id, email, scim_user_id) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
);
crate::fixed_sql!(
    InsertSsoUser =
        "INSERT INTO sso_users (id, oidc_client_id, oidc_user_id, email, email_verified, preferred_username, \
         given_name, family_name, claims, first_login_at, last_login_at, login_count) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
);
crate::fixed_sql!(
    SeenAgain = "UPDATE sso_users SET email = ?, email_verified = ?, preferred_username = ?, given_name = ?, \
         family_name = ?, claims = ?, last_login_at = ?, login_count = login_count + 1 WHERE id = ?"
);

/// A login between initiate and complete.
#[derive(Clone, Debug, Queryable, Selectable)]
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
    let binds = [
        Bind::Text(t.id.clone()),
        Bind::Text(t.oidc_client_id.clone()),
        Bind::Text(t.state_hash.clone()),
        Bind::Text(t.cookie_hash.clone()),
        Bind::Text(t.nonce.clone()),
        Bind::OptText(t.pkce_verifier_enc.clone()),
        Bind::OptText(t.post_login_redirect_url.clone()),
        Bind::Text(t.login_event_id.clone()),
        Bind::Int(t.created_at),
        Bind::Int(t.expires_at),
        Bind::OptInt(t.consumed_at),
    ];
    execute_fixed::<InsertTransaction>(conn, &binds)?;
    Ok(())
}

/// The transaction whose `state` hashes to `state_hash`.
pub fn find_transaction(conn: &mut AnyConnection, state_hash: &str) -> Result<Option<LoginTransaction>, StoreError> {
    Ok(on_backend!(conn, |c| tx::login_transactions
        .filter(tx::state_hash.eq(state_hash))
        .select(LoginTransaction::as_select())
        .first(c)
        .optional())?)
}

/// Marks a transaction used; false when it already was (single use, also
/// between nodes sharing one database).
pub fn consume_transaction(conn: &mut AnyConnection, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let binds = [Bind::Int(micros(now)), Bind::Text(id.to_string())];
    Ok(execute_fixed::<Consume>(conn, &binds)? == 1)
}

/// Deletes transactions that expired more than a day before `now`.
pub fn purge_transactions(conn: &mut AnyConnection, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let cutoff = micros(now - chrono::Duration::days(1));
    Ok(diesel::delete(tx::login_transactions.filter(tx::expires_at.lt(cutoff))).execute(conn)?)
}

/// A login attempt as recorded.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = crate::schema::login_events)]
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

impl LoginEvent {
    /// A new event (not yet stored) of a login that has just started.
    pub fn pending(oidc_client_id: Option<String>, customer_id: Option<String>, now: i64) -> LoginEvent {
        LoginEvent {
            id: tandem_core::new_id(),
            oidc_client_id,
            customer_id,
            created_at: now,
            updated_at: now,
            outcome: "pending".into(),
            error_type: None,
            error_kind: None,
            failed_step: None,
            diagnosis: None,
            steps: "[]".into(),
            oidc_user_id: None,
            email: None,
            scim_user_id: None,
        }
    }
}

/// An event's progress, as both its INSERT and its UPDATE bind it
/// (`outcome` to `scim_user_id`, in column order).
fn progress(e: &LoginEvent) -> [Bind; 9] {
    [
        Bind::Text(e.outcome.clone()),
        Bind::OptText(e.error_type.clone()),
        Bind::OptText(e.error_kind.clone()),
        Bind::OptText(e.failed_step.clone()),
        Bind::OptText(e.diagnosis.clone()),
        Bind::Text(e.steps.clone()),
        Bind::OptText(e.oidc_user_id.clone()),
        Bind::OptText(e.email.clone()),
        Bind::OptText(e.scim_user_id.clone()),
    ]
}

/// Records a new event.
pub fn insert_event(conn: &mut AnyConnection, e: &LoginEvent) -> Result<(), StoreError> {
    let mut binds = vec![
        Bind::Text(e.id.clone()),
        Bind::OptText(e.oidc_client_id.clone()),
        Bind::OptText(e.customer_id.clone()),
        Bind::Int(e.created_at),
        Bind::Int(e.updated_at),
    ];
    binds.extend(progress(e));
    execute_fixed::<InsertEvent>(conn, &binds)?;
    Ok(())
}

/// Saves an event's progress. Its client, customer and creation time are
/// fixed when it is inserted (and not rewritten: they are indexed).
pub fn update_event(conn: &mut AnyConnection, e: &LoginEvent) -> Result<(), StoreError> {
    let mut binds = vec![Bind::Int(e.updated_at)];
    binds.extend(progress(e));
    binds.push(Bind::Text(e.id.clone()));
    execute_fixed::<UpdateEvent>(conn, &binds)?;
    Ok(())
}

/// An event by id.
pub fn get_event(conn: &mut AnyConnection, id: &str) -> Result<Option<LoginEvent>, StoreError> {
    Ok(on_backend!(conn, |c| ev::login_events
        .filter(ev::id.eq(id))
        .select(LoginEvent::as_select())
        .first(c)
        .optional())?)
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
#[derive(Clone, Debug, Queryable, Selectable)]
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

/// An SSO user's attributes as its INSERT and its refresh bind them
/// (`email` to `claims`, in column order).
fn attributes(seen: &SsoUser) -> [Bind; 6] {
    [
        Bind::OptText(seen.email.clone()),
        Bind::OptBool(seen.email_verified),
        Bind::OptText(seen.preferred_username.clone()),
        Bind::OptText(seen.given_name.clone()),
        Bind::OptText(seen.family_name.clone()),
        Bind::Text(seen.claims.clone()),
    ]
}

/// Records a sighting of an SSO identity: inserted the first time, its
/// attributes and last login refreshed afterwards.
pub fn record_sso_user(conn: &mut AnyConnection, seen: &SsoUser) -> Result<(), StoreError> {
    let existing: Option<String> = on_backend!(&mut *conn, |c| su::sso_users
        .filter(su::oidc_client_id.eq(&seen.oidc_client_id))
        .filter(su::oidc_user_id.eq(&seen.oidc_user_id))
        .select(su::id)
        .first(c)
        .optional())?;
    match existing {
        Some(id) => {
            let mut binds = Vec::from(attributes(seen));
            binds.extend([Bind::Int(seen.last_login_at), Bind::Text(id)]);
            execute_fixed::<SeenAgain>(conn, &binds)?;
        }
        None => {
            let mut binds = vec![
                Bind::Text(seen.id.clone()),
                Bind::Text(seen.oidc_client_id.clone()),
                Bind::Text(seen.oidc_user_id.clone()),
            ];
            binds.extend(attributes(seen));
            binds.extend([Bind::Int(seen.first_login_at), Bind::Int(seen.last_login_at), Bind::Int(seen.login_count)]);
            execute_fixed::<InsertSsoUser>(conn, &binds)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn seen(email: Option<&str>, at_us: i64) -> SsoUser {
        SsoUser {
            id: tandem_core::new_id(),
            oidc_client_id: "client-1".into(),
            oidc_user_id: "sub-1".into(),
            email: email.map(str::to_string),
            email_verified: Some(true),
            preferred_username: None,
            given_name: Some("Ada".into()),
            family_name: None,
            claims: "{}".into(),
            first_login_at: at_us,
            last_login_at: at_us,
            login_count: 1,
        }
    }

    #[test]
    fn an_sso_user_seen_again_is_refreshed_and_counted() {
        let (store, _dir) = crate::test_store();
        store
            .write_blocking(|c| {
                record_sso_user(c, &seen(Some("ada@acme.com"), 10))?;
                record_sso_user(c, &seen(None, 20))?;
                record_sso_user(c, &seen(Some("ada@acme.org"), 30))
            })
            .unwrap();
        let users = store.read_blocking(|c| sso_users_of(c, "client-1", None, 10)).unwrap();
        assert_eq!(users.len(), 1);
        let u = &users[0];
        assert_eq!((u.login_count, u.first_login_at, u.last_login_at), (3, 10, 30));
        assert_eq!(u.email.as_deref(), Some("ada@acme.org"));
        assert_eq!(u.email_verified, Some(true));
        assert_eq!(u.family_name, None);
    }

    #[test]
    fn a_login_transaction_is_consumed_once_and_its_event_saved_whole() {
        let (store, _dir) = crate::test_store();
        let mut event = LoginEvent::pending(None, Some("acme".into()), 1);
        let tx = LoginTransaction {
            id: tandem_core::new_id(),
            oidc_client_id: "client-1".into(),
            state_hash: "s".into(),
            cookie_hash: "c".into(),
            nonce: "n".into(),
            pkce_verifier_enc: None,
            post_login_redirect_url: None,
            login_event_id: event.id.clone(),
            created_at: 1,
            expires_at: 2,
            consumed_at: None,
        };
        let (e, t) = (event.clone(), tx.clone());
        store
            .write_blocking(move |c| {
                insert_event(c, &e)?;
                insert_transaction(c, &t)
            })
            .unwrap();
        let id = tx.id.clone();
        let (first, second) = store
            .write_blocking(move |c| Ok((consume_transaction(c, &id, at(1))?, consume_transaction(c, &id, at(2))?)))
            .unwrap();
        assert!(first && !second);
        event.outcome = "failed".into();
        event.error_type = Some("ScimUserNotActive".into());
        event.customer_id = None; // fixed at insert: not rewritten
        event.updated_at = 5;
        let e = event.clone();
        store.write_blocking(move |c| update_event(c, &e)).unwrap();
        let id = event.id.clone();
        let stored = store.read_blocking(move |c| get_event(c, &id)).unwrap().unwrap();
        assert_eq!(
            (stored.outcome.as_str(), stored.error_type.as_deref(), stored.customer_id.as_deref(), stored.updated_at),
            ("failed", Some("ScimUserNotActive"), Some("acme"), 5)
        );
        let found = store.read_blocking(|c| find_transaction(c, "s")).unwrap().unwrap();
        assert_eq!(found.consumed_at, Some(micros(at(1))));
    }
}
