//! Logins as stored: the claims that make each login single use, login
//! events (the trace an admin reads), and the SSO users seen.
//!
//! A login between initiate and complete is not stored: it travels sealed
//! in its `state` (`tandem_core::login_state`).

use crate::schema::login_claims::dsl as lc;
use crate::schema::login_events::dsl as ev;
use crate::schema::sso_users::dsl as su;
use crate::scim::filter_sql::Bind;
use crate::scim::query::execute_fixed;
use crate::{AnyConnection, StoreError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

// The writes of a login as static statements that stay prepared (diesel
// builds an INSERT's text again on every call when the row has optional
// columns, and cannot express an upsert through `MultiConnection`).
crate::fixed_sql!(ClaimLogin = "INSERT INTO login_claims (expires_at, login_id) VALUES (?, ?) ON CONFLICT DO NOTHING");
// A login's event is written in parts: the part its initiate recorded
// (outcome `pending`) and the part its completion recorded, each inserting
// the row or merging into it, in whichever order they reach the database.
// Steps join in login order: the pending part's go first. The outcome, the
// error and the user come from the completion's part (the email too: the
// pending part's is the one a login was started by, kept only while no
// completion has named the user; a named user's email is the IdP's, or none).
crate::fixed_sql!(
    SaveEvent = "INSERT INTO login_events (id, oidc_client_id, customer_id, created_at, updated_at, outcome, \
         error_type, error_kind, failed_step, diagnosis, steps, oidc_user_id, email, scim_user_id) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET \
         created_at = CASE WHEN excluded.created_at < login_events.created_at \
            THEN excluded.created_at ELSE login_events.created_at END, \
         updated_at = CASE WHEN excluded.updated_at > login_events.updated_at \
            THEN excluded.updated_at ELSE login_events.updated_at END, \
         outcome = CASE WHEN excluded.outcome = 'pending' THEN login_events.outcome ELSE excluded.outcome END, \
         error_type = CASE WHEN excluded.outcome = 'pending' THEN login_events.error_type ELSE excluded.error_type END, \
         error_kind = CASE WHEN excluded.outcome = 'pending' THEN login_events.error_kind ELSE excluded.error_kind END, \
         failed_step = CASE WHEN excluded.outcome = 'pending' \
            THEN login_events.failed_step ELSE excluded.failed_step END, \
         diagnosis = CASE WHEN excluded.outcome = 'pending' THEN login_events.diagnosis ELSE excluded.diagnosis END, \
         oidc_user_id = COALESCE(excluded.oidc_user_id, login_events.oidc_user_id), \
         email = CASE WHEN excluded.outcome = 'pending' THEN \
              CASE WHEN login_events.oidc_user_id IS NULL THEN COALESCE(login_events.email, excluded.email) \
              ELSE login_events.email END \
            WHEN excluded.oidc_user_id IS NULL THEN COALESCE(excluded.email, login_events.email) \
            ELSE excluded.email END, \
         scim_user_id = COALESCE(excluded.scim_user_id, login_events.scim_user_id), \
         steps = CASE WHEN login_events.steps = '[]' THEN excluded.steps \
            WHEN excluded.steps = '[]' THEN login_events.steps \
            WHEN excluded.outcome = 'pending' \
            THEN substr(excluded.steps, 1, length(excluded.steps) - 1) || ',' || substr(login_events.steps, 2) \
            ELSE substr(login_events.steps, 1, length(login_events.steps) - 1) || ',' || substr(excluded.steps, 2) END"
);
// Sightings are written behind their logins' answers, in batches that two
// nodes commit independently, so an older one may arrive last: the stored
// attributes are the latest login's whatever the order, and every sighting counts.
crate::fixed_sql!(
    SeeSsoUser = "INSERT INTO sso_users (id, oidc_client_id, oidc_user_id, email, email_verified, preferred_username, \
         given_name, family_name, claims, first_login_at, last_login_at, login_count) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (oidc_client_id, oidc_user_id) DO UPDATE SET \
         email = CASE WHEN excluded.last_login_at >= sso_users.last_login_at THEN excluded.email ELSE sso_users.email END, \
         email_verified = CASE WHEN excluded.last_login_at >= sso_users.last_login_at \
            THEN excluded.email_verified ELSE sso_users.email_verified END, \
         preferred_username = CASE WHEN excluded.last_login_at >= sso_users.last_login_at \
            THEN excluded.preferred_username ELSE sso_users.preferred_username END, \
         given_name = CASE WHEN excluded.last_login_at >= sso_users.last_login_at \
            THEN excluded.given_name ELSE sso_users.given_name END, \
         family_name = CASE WHEN excluded.last_login_at >= sso_users.last_login_at \
            THEN excluded.family_name ELSE sso_users.family_name END, \
         claims = CASE WHEN excluded.last_login_at >= sso_users.last_login_at THEN excluded.claims ELSE sso_users.claims END, \
         first_login_at = CASE WHEN excluded.first_login_at < sso_users.first_login_at \
            THEN excluded.first_login_at ELSE sso_users.first_login_at END, \
         last_login_at = CASE WHEN excluded.last_login_at > sso_users.last_login_at \
            THEN excluded.last_login_at ELSE sso_users.last_login_at END, \
         login_count = sso_users.login_count + 1"
);

/// Claims the login `login_id` (expiring at `expires_at`, µs) for the
/// completion that calls this: true the first time, false when it was
/// already claimed (single use, also between nodes sharing one database).
pub fn claim_login(conn: &mut AnyConnection, login_id: &str, expires_at: i64) -> Result<bool, StoreError> {
    let binds = [Bind::Int(expires_at), Bind::Text(login_id.to_string())];
    Ok(execute_fixed::<ClaimLogin>(conn, &binds)? == 1)
}

/// Deletes the claims of logins that expired more than a day before `now`
/// (a replay of one is refused as expired anyway).
pub fn purge_claims(conn: &mut AnyConnection, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let cutoff = crate::micros(now - chrono::Duration::days(1));
    Ok(diesel::delete(lc::login_claims.filter(lc::expires_at.lt(cutoff))).execute(conn)?)
}

/// The lowest UUIDv7 (text) of the millisecond `t`: every id made at or
/// after `t` sorts after it, every one made before sorts before it.
pub fn first_id_at(t: DateTime<Utc>) -> String {
    let ms = u64::try_from(t.timestamp_millis()).unwrap_or(0) & 0xFFFF_FFFF_FFFF;
    format!("{:08x}-{:04x}-7000-8000-000000000000", ms >> 16, ms & 0xFFFF)
}

/// Deletes up to `limit` rows of `table` (`login_events` or
/// `provisioning_logs`, whose ids are UUIDv7s) made before `before`;
/// returns how many. Batched, so that a large backlog never holds the
/// write lock for long.
pub fn purge_older(
    conn: &mut AnyConnection,
    table: LogTable,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<usize, StoreError> {
    let name = match table {
        LogTable::LoginEvents => "login_events",
        LogTable::ProvisioningLogs => "provisioning_logs",
    };
    let (a, b) = match conn {
        AnyConnection::Postgresql(_) => ("$1", "$2"),
        AnyConnection::Sqlite(_) => ("?", "?"),
    };
    let sql = format!("DELETE FROM {name} WHERE id IN (SELECT id FROM {name} WHERE id < {a} ORDER BY id LIMIT {b})");
    Ok(diesel::sql_query(sql)
        .bind::<diesel::sql_types::Text, _>(first_id_at(before))
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .execute(conn)?)
}

/// Which SSO users (the identities logins saw, with their claims) are to
/// be deleted: those not seen since a time, or those of OIDC clients that
/// are gone.
#[derive(Clone, Copy, Debug)]
pub enum SsoUsersGone {
    NotSeenSince(DateTime<Utc>),
    OfDeletedClients,
}

/// Up to `limit` ids of the SSO users `which` names: a read, off the write
/// lock (no index on `last_login_at`: one row per person and client, read
/// every few minutes at most). Delete them with [`delete_sso_users`].
pub fn sso_users_gone(conn: &mut AnyConnection, which: SsoUsersGone, limit: i64) -> Result<Vec<String>, StoreError> {
    use crate::schema::oidc_clients::dsl as oc;
    let q = su::sso_users.select(su::id).limit(limit).into_boxed();
    Ok(match which {
        SsoUsersGone::NotSeenSince(t) => q.filter(su::last_login_at.lt(crate::micros(t))).load(conn)?,
        SsoUsersGone::OfDeletedClients => {
            q.filter(diesel::dsl::not(su::oidc_client_id.eq_any(oc::oidc_clients.select(oc::id)))).load(conn)?
        }
    })
}

/// Deletes the SSO users `ids` that `which` still names (one seen again,
/// or of a client made again meanwhile, is kept); returns how many.
pub fn delete_sso_users(conn: &mut AnyConnection, ids: &[String], which: SsoUsersGone) -> Result<usize, StoreError> {
    use crate::schema::oidc_clients::dsl as oc;
    let q = diesel::delete(su::sso_users).filter(su::id.eq_any(ids));
    Ok(match which {
        SsoUsersGone::NotSeenSince(t) => q.filter(su::last_login_at.lt(crate::micros(t))).execute(conn)?,
        SsoUsersGone::OfDeletedClients => {
            q.filter(diesel::dsl::not(su::oidc_client_id.eq_any(oc::oidc_clients.select(oc::id)))).execute(conn)?
        }
    })
}

/// The tables [`purge_older`] trims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogTable {
    LoginEvents,
    ProvisioningLogs,
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

/// Writes `e`: inserts it, or merges it into the part of the same event
/// already stored (see [`SaveEvent`]). `e.steps` holds the steps this
/// write adds (a JSON array).
pub fn save_event(conn: &mut AnyConnection, e: &LoginEvent) -> Result<(), StoreError> {
    let binds = [
        Bind::Text(e.id.clone()),
        Bind::OptText(e.oidc_client_id.clone()),
        Bind::OptText(e.customer_id.clone()),
        Bind::Int(e.created_at),
        Bind::Int(e.updated_at),
        Bind::Text(e.outcome.clone()),
        Bind::OptText(e.error_type.clone()),
        Bind::OptText(e.error_kind.clone()),
        Bind::OptText(e.failed_step.clone()),
        Bind::OptText(e.diagnosis.clone()),
        Bind::Text(e.steps.clone()),
        Bind::OptText(e.oidc_user_id.clone()),
        Bind::OptText(e.email.clone()),
        Bind::OptText(e.scim_user_id.clone()),
    ];
    execute_fixed::<SaveEvent>(conn, &binds)?;
    Ok(())
}

/// Merges the part `later` into `stored`, an event's part as [`SaveEvent`]
/// would store it: the same rules, for two parts of one event that reach
/// the log writer in one batch and are written as one row. Both are the
/// same event's (`later.id == stored.id`).
pub fn merge_part(stored: &mut LoginEvent, later: LoginEvent) {
    let pending = later.outcome == "pending";
    stored.created_at = stored.created_at.min(later.created_at);
    stored.updated_at = stored.updated_at.max(later.updated_at);
    stored.email = if pending {
        match stored.oidc_user_id {
            None => stored.email.take().or(later.email),
            Some(_) => stored.email.take(),
        }
    } else if later.oidc_user_id.is_none() {
        later.email.or(stored.email.take())
    } else {
        later.email
    };
    stored.steps = match (stored.steps.as_str(), later.steps.as_str()) {
        ("[]", _) => later.steps,
        (_, "[]") => std::mem::take(&mut stored.steps),
        (mine, theirs) => {
            let (first, then) = if pending { (theirs, mine) } else { (mine, theirs) };
            let head = first.strip_suffix(']').unwrap_or(first);
            let tail = then.strip_prefix('[').unwrap_or(then);
            format!("{head},{tail}")
        }
    };
    if !pending {
        stored.outcome = later.outcome;
        stored.error_type = later.error_type;
        stored.error_kind = later.error_kind;
        stored.failed_step = later.failed_step;
        stored.diagnosis = later.diagnosis;
    }
    stored.oidc_user_id = later.oidc_user_id.or(stored.oidc_user_id.take());
    stored.scim_user_id = later.scim_user_id.or(stored.scim_user_id.take());
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
        // IdPs send emails in the case they were typed in (Entra: Alice@Contoso.com).
        query = query.filter(crate::conn::lower(ev::email).eq(e.to_lowercase()));
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

/// Records a sighting of an SSO identity: inserted the first time, its
/// attributes and last login refreshed and its logins counted afterwards.
pub fn record_sso_user(conn: &mut AnyConnection, seen: &SsoUser) -> Result<(), StoreError> {
    let binds = [
        Bind::Text(seen.id.clone()),
        Bind::Text(seen.oidc_client_id.clone()),
        Bind::Text(seen.oidc_user_id.clone()),
        Bind::OptText(seen.email.clone()),
        Bind::OptBool(seen.email_verified),
        Bind::OptText(seen.preferred_username.clone()),
        Bind::OptText(seen.given_name.clone()),
        Bind::OptText(seen.family_name.clone()),
        Bind::Text(seen.claims.clone()),
        Bind::Int(seen.first_login_at),
        Bind::Int(seen.last_login_at),
        Bind::Int(seen.login_count),
    ];
    execute_fixed::<SeeSsoUser>(conn, &binds)?;
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
mod retention_tests {
    use super::*;

    #[test]
    fn the_first_id_of_a_millisecond_sorts_between_the_ids_around_it() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-12-06T09:00:00.123Z").unwrap().with_timezone(&Utc);
        let at = |t: DateTime<Utc>| {
            let ms = u64::try_from(t.timestamp_millis()).unwrap();
            uuid_v7_at(ms)
        };
        let cutoff = first_id_at(t);
        assert!(at(t - chrono::Duration::milliseconds(1)) < cutoff);
        assert!(at(t) >= cutoff);
        assert!(at(t + chrono::Duration::days(400)) > cutoff);
        // A new id (UUIDv7 from the system clock) against the cutoffs of a
        // second either side of the clock read just before and just after it
        // (the test may be held up between any two lines on a busy machine).
        use tandem_core::clock::{Clock, SystemClock};
        let before = SystemClock.now();
        let id = tandem_core::new_id();
        let after = SystemClock.now();
        assert!(id > first_id_at(before - chrono::Duration::seconds(1)), "{id}");
        assert!(id < first_id_at(after + chrono::Duration::seconds(1)), "{id}");
    }

    /// A UUIDv7 text of the millisecond `ms` with its other bits set.
    fn uuid_v7_at(ms: u64) -> String {
        format!("{:08x}-{:04x}-7fff-bfff-ffffffffffff", ms >> 16, ms & 0xFFFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two parts of one event merged in memory and written as one row give
    /// the row the database gives when they are written one after the other.
    #[test]
    fn parts_merged_before_writing_make_the_row_the_database_makes() {
        let (store, _dir) = crate::test_store_any_backend();
        let part = |outcome: &str, at: i64, steps: &str, user: Option<&str>, email: Option<&str>| LoginEvent {
            outcome: outcome.into(),
            created_at: at,
            updated_at: at,
            steps: steps.into(),
            oidc_user_id: user.map(str::to_string),
            email: email.map(str::to_string),
            scim_user_id: user.map(|u| format!("scim-{u}")),
            error_type: (outcome == "failed").then(|| "IdentityProviderError".into()),
            failed_step: (outcome == "failed").then(|| "token".into()),
            ..LoginEvent::pending(Some("client-1".into()), Some("acme".into()), at)
        };
        let mut start = part("pending", 10, r#"[{"step":"initiate"}]"#, None, Some("typed@acme.com"));
        // A start whose client and customer differ from the end's: the row keeps the first written's.
        start.oidc_client_id = Some("client-0".into());
        start.customer_id = None;
        let ends = [
            part("success", 20, r#"[{"step":"callback"},{"step":"scim_join"}]"#, Some("u1"), Some("idp@acme.com")),
            part("success", 20, r#"[{"step":"scim_join"}]"#, Some("u1"), None),
            part("failed", 20, r#"[{"step":"token"}]"#, None, None),
            part("failed", 20, "[]", None, Some("other@acme.com")),
        ];
        let row = |id: &str| {
            let id = id.to_string();
            let e = store.read_blocking(move |c| get_event(c, &id)).unwrap().unwrap();
            format!("{:?}", LoginEvent { id: String::new(), ..e })
        };
        for end in ends {
            for (first, second) in [(start.clone(), end.clone()), (end.clone(), start.clone())] {
                let (one, two) = (tandem_core::new_id(), tandem_core::new_id());
                let (a, b) =
                    (LoginEvent { id: one.clone(), ..first.clone() }, LoginEvent { id: one.clone(), ..second.clone() });
                store.write_blocking(move |c| save_event(c, &a).and_then(|()| save_event(c, &b))).unwrap();
                let mut merged = LoginEvent { id: two.clone(), ..first };
                merge_part(&mut merged, LoginEvent { id: two.clone(), ..second });
                store.write_blocking(move |c| save_event(c, &merged)).unwrap();
                assert_eq!(row(&one), row(&two));
            }
        }
    }

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
        let (store, _dir) = crate::test_store_any_backend();
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

    /// Sightings are written behind their logins, so an older one can
    /// arrive last: it is counted, and moves no attribute or time back.
    #[test]
    fn an_older_sighting_arriving_last_is_counted_and_changes_nothing_else() {
        let (store, _dir) = crate::test_store_any_backend();
        store
            .write_blocking(|c| {
                record_sso_user(c, &seen(Some("ada@acme.org"), 30))?;
                let mut older = seen(Some("ada@acme.com"), 10);
                older.email_verified = Some(false);
                older.given_name = None;
                older.claims = r#"{"old":true}"#.into();
                record_sso_user(c, &older)
            })
            .unwrap();
        let users = store.read_blocking(|c| sso_users_of(c, "client-1", None, 10)).unwrap();
        let u = &users[0];
        assert_eq!((u.login_count, u.first_login_at, u.last_login_at), (2, 10, 30));
        assert_eq!((u.email.as_deref(), u.email_verified), (Some("ada@acme.org"), Some(true)));
        assert_eq!((u.given_name.as_deref(), u.claims.as_str()), (Some("Ada"), "{}"));
    }

    /// Whether the login `login_id` was claimed.
    fn login_claimed(conn: &mut AnyConnection, login_id: &str, expires_at: i64) -> Result<bool, StoreError> {
        let found: Option<String> = on_backend!(conn, |c| lc::login_claims
            .filter(lc::expires_at.eq(expires_at))
            .filter(lc::login_id.eq(login_id))
            .select(lc::login_id)
            .first(c)
            .optional())?;
        Ok(found.is_some())
    }

    #[test]
    fn a_login_is_claimed_once_and_its_claim_purged_a_day_after_it_expired() {
        let (store, _dir) = crate::test_store_any_backend();
        let expires = crate::micros(at(600));
        let (first, second, other) = store
            .write_blocking(move |c| {
                Ok((
                    claim_login(c, "login-1", expires)?,
                    claim_login(c, "login-1", expires)?,
                    claim_login(c, "login-2", expires)?,
                ))
            })
            .unwrap();
        assert!(first && !second && other);
        assert!(store.read_blocking(move |c| login_claimed(c, "login-1", expires)).unwrap());
        assert!(!store.read_blocking(move |c| login_claimed(c, "login-3", expires)).unwrap());
        assert_eq!(store.write_blocking(|c| purge_claims(c, at(600 + 86_399))).unwrap(), 0);
        assert_eq!(store.write_blocking(|c| purge_claims(c, at(600 + 86_401))).unwrap(), 2);
        assert!(!store.read_blocking(move |c| login_claimed(c, "login-1", expires)).unwrap());
    }

    /// The initiate's part of an event (pending) and the completion's part,
    /// as two writes of the same id.
    fn parts() -> (LoginEvent, LoginEvent) {
        let mut opening = LoginEvent::pending(Some("client-1".into()), Some("acme".into()), 10);
        opening.steps = r#"[{"step":"initiate"},{"step":"discovery"}]"#.into();
        opening.email = Some("hint@acme.com".into());
        let mut done = opening.clone();
        (done.created_at, done.updated_at) = (20, 30);
        done.outcome = "failed".into();
        done.error_type = Some("ScimUserNotActive".into());
        done.failed_step = Some("scim_join".into());
        done.diagnosis = Some("deactivated: émile".into());
        done.oidc_user_id = Some("sub-1".into());
        done.email = Some("ada@acme.com".into());
        done.steps = r#"[{"step":"callback","detail":"é"},{"step":"scim_join"}]"#.into();
        (opening, done)
    }

    #[test]
    fn an_events_parts_merge_whole_in_login_order_whichever_is_written_first() {
        for opening_first in [true, false] {
            let (store, _dir) = crate::test_store_any_backend();
            let (opening, done) = parts();
            let id = opening.id.clone();
            let order = if opening_first { [opening, done] } else { [done, opening] };
            for part in order {
                store.write_blocking(move |c| save_event(c, &part)).unwrap();
            }
            let e = store.read_blocking(move |c| get_event(c, &id)).unwrap().unwrap();
            let steps: Vec<serde_json::Value> = serde_json::from_str(&e.steps).unwrap();
            let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
            assert_eq!(names, ["initiate", "discovery", "callback", "scim_join"], "opening first: {opening_first}");
            assert_eq!(steps[2]["detail"], "é");
            assert_eq!((e.created_at, e.updated_at), (10, 30));
            assert_eq!(e.outcome, "failed");
            assert_eq!(e.error_type.as_deref(), Some("ScimUserNotActive"));
            assert_eq!(e.diagnosis.as_deref(), Some("deactivated: émile"));
            assert_eq!(e.oidc_user_id.as_deref(), Some("sub-1"));
            // The IdP's email, not the one the login was started by.
            assert_eq!(e.email.as_deref(), Some("ada@acme.com"), "opening first: {opening_first}");
            assert_eq!((e.oidc_client_id.as_deref(), e.customer_id.as_deref()), (Some("client-1"), Some("acme")));
        }
    }

    /// The email a login was started by is someone else's once the IdP named
    /// a user who has none; it stays while no user is named.
    #[test]
    fn the_starting_email_goes_once_the_idp_names_a_user() {
        for opening_first in [true, false] {
            for named in [true, false] {
                let (store, _dir) = crate::test_store_any_backend();
                let (opening, mut done) = parts();
                done.email = None;
                done.oidc_user_id = named.then(|| "sub-bob".to_string());
                let id = opening.id.clone();
                let order = if opening_first { [opening, done] } else { [done, opening] };
                for part in order {
                    store.write_blocking(move |c| save_event(c, &part)).unwrap();
                }
                let e = store.read_blocking(move |c| get_event(c, &id)).unwrap().unwrap();
                let want = (!named).then_some("hint@acme.com");
                assert_eq!(e.email.as_deref(), want, "opening first: {opening_first}, named: {named}");
            }
        }
    }

    #[test]
    fn a_later_part_of_a_completion_adds_its_steps_and_its_outcome() {
        let (store, _dir) = crate::test_store_any_backend();
        let (_, mut done) = parts();
        done.outcome = "pending".into();
        done.steps = "[]".into();
        let first = done.clone();
        store.write_blocking(move |c| save_event(c, &first)).unwrap();
        done.outcome = "success".into();
        (done.error_type, done.failed_step, done.diagnosis) = (None, None, None);
        done.steps = r#"[{"step":"id_token"}]"#.into();
        done.scim_user_id = Some("u1".into());
        let id = done.id.clone();
        store.write_blocking(move |c| save_event(c, &done)).unwrap();
        let e = store.read_blocking(move |c| get_event(c, &id)).unwrap().unwrap();
        assert_eq!(e.steps, r#"[{"step":"id_token"}]"#);
        assert_eq!((e.outcome.as_str(), e.error_type, e.scim_user_id.as_deref()), ("success", None, Some("u1")));
    }
}
