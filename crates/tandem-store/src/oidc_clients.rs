//! OIDC clients: one per customer id, with their email domains indexed for
//! home-realm discovery.

use crate::schema::oidc_client_domains::dsl as d;
use crate::schema::oidc_clients::dsl as c;
use crate::{from_micros, micros, AnyConnection, StoreError};
use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use tandem_core::idp::{IdpLocation, IdpType};
use tandem_core::matching::MatchingStrategy;
use tandem_core::oidc_client::{AssertionAudience, ClientAuthentication, OidcClientSpec};
use tandem_core::secret::{Redacted, SecretKey};

/// A stored OIDC client.
#[derive(Clone, Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = crate::schema::oidc_clients, treat_none_as_null = true)]
pub struct OidcClientRow {
    pub id: String,
    pub customer_id: String,
    pub idp_type: String,
    pub sso_domain: Option<String>,
    pub tenant_id: Option<String>,
    pub issuer_override: Option<String>,
    pub issuer: String,
    pub client_id: String,
    pub client_secret_enc: Option<String>,
    pub uses_pkce: bool,
    pub redirect_url: String,
    pub matching_strategy: Option<String>,
    pub email_domain_allowlist: String,
    pub additional_scopes: String,
    pub discovery: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub accept_unverified_email: Option<bool>,
    pub scopes: Option<String>,
    /// Whether a login needs a SCIM user (see [`require_scim`]).
    pub scim_required: bool,
    /// When the client secret expires at the IdP, as the admin gave it.
    pub client_secret_expires_at: Option<i64>,
    /// `client_secret` or `private_key_jwt`.
    pub client_authentication: String,
    /// A `private_key_jwt` client's keys (the stored form of
    /// `tandem_oidc::client_keys::ClientKeys`), encrypted under
    /// [`keys_context`]; such a client has no `client_secret_enc`.
    pub client_keys_enc: Option<String>,
    /// `token_endpoint` or `issuer`: the audience a `private_key_jwt`
    /// assertion names.
    pub client_assertion_audience: String,
    /// When a login last went through only with the previous key (to the
    /// minute; see [`mark_previous_key_used`]). Cleared when the keys change.
    pub previous_client_key_used_at: Option<i64>,
}

/// The encryption context of a client's secret: binds it to its row.
pub fn secret_context(id: &str) -> String {
    format!("oidc_client:{id}:client_secret")
}

/// The encryption context of a client's keys: binds them to their row, and
/// keeps them from ever opening as a secret.
pub fn keys_context(id: &str) -> String {
    format!("oidc_client:{id}:client_keys")
}

/// What a client keeps encrypted at rest: its secret or its keys.
#[derive(Clone, Copy, Debug)]
enum Sealed {
    Secret,
    Keys,
}

impl Sealed {
    const ALL: [Sealed; 2] = [Sealed::Secret, Sealed::Keys];

    fn context(self, id: &str) -> String {
        match self {
            Sealed::Secret => secret_context(id),
            Sealed::Keys => keys_context(id),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Sealed::Secret => "client secret",
            Sealed::Keys => "client keys",
        }
    }

    /// Every stored value of this kind: the client's id and the ciphertext.
    fn stored(self, conn: &mut AnyConnection) -> Result<Vec<(String, String)>, StoreError> {
        Ok(match self {
            Sealed::Secret => c::oidc_clients
                .filter(c::client_secret_enc.is_not_null())
                .select((c::id, c::client_secret_enc.assume_not_null()))
                .load(conn)?,
            Sealed::Keys => c::oidc_clients
                .filter(c::client_keys_enc.is_not_null())
                .select((c::id, c::client_keys_enc.assume_not_null()))
                .load(conn)?,
        })
    }

    /// Replaces `old` by `new` if the row still holds `old`; moves
    /// `updated_at`, so an edit that read the row before retries.
    fn replace(self, conn: &mut AnyConnection, id: &str, old: &str, new: &str) -> Result<usize, StoreError> {
        let row = c::oidc_clients.filter(c::id.eq(id));
        Ok(match self {
            Sealed::Secret => diesel::update(row.filter(c::client_secret_enc.eq(old)))
                .set((c::client_secret_enc.eq(new), c::updated_at.eq(c::updated_at + 1)))
                .execute(conn)?,
            Sealed::Keys => diesel::update(row.filter(c::client_keys_enc.eq(old)))
                .set((c::client_keys_enc.eq(new), c::updated_at.eq(c::updated_at + 1)))
                .execute(conn)?,
        })
    }

    /// The value a row holds now (`None`: the row or the value is gone).
    fn now(self, conn: &mut AnyConnection, id: &str) -> Result<Option<String>, StoreError> {
        let row = c::oidc_clients.filter(c::id.eq(id));
        let now: Option<Option<String>> = match self {
            Sealed::Secret => row.select(c::client_secret_enc).first(conn).optional()?,
            Sealed::Keys => row.select(c::client_keys_enc).first(conn).optional()?,
        };
        Ok(now.flatten())
    }
}

/// The ids of the clients whose secret or keys `key`'s current key does not open.
pub fn secrets_not_under(conn: &mut AnyConnection, key: &SecretKey) -> Result<Vec<String>, StoreError> {
    let mut ids = Vec::new();
    for sealed in Sealed::ALL {
        ids.extend(
            sealed
                .stored(conn)?
                .into_iter()
                .filter(|(id, enc)| key.decrypt_with_current(enc, &sealed.context(id)).is_err())
                .map(|(id, _)| id),
        );
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Re-encrypts under `key`'s current key every client secret and client
/// key set still under its previous one (a key rotation); returns how
/// many. A value that neither key opens fails the whole call, so that a
/// rotation either completes or changes nothing (run it in one transaction).
pub fn reencrypt_secrets(conn: &mut AnyConnection, key: &SecretKey) -> Result<usize, StoreError> {
    let mut changed = 0;
    for sealed in Sealed::ALL {
        for (id, mut enc) in sealed.stored(conn)? {
            let context = sealed.context(&id);
            // Written only if the value is still as read: a node's PATCH that
            // saved a new one meanwhile (PostgreSQL) is read again, not undone.
            // `updated_at` moves, so an edit that read the row before (the
            // dashboard writes the whole row back) retries instead of writing
            // the old ciphertext over this one.
            let mut done = false;
            for _ in 0..16 {
                if key.decrypt_with_current(&enc, &context).is_ok() {
                    done = true;
                    break;
                }
                let plain = key.decrypt(&enc, &context).map_err(|e| {
                    StoreError::Corrupt(format!(
                        "the {} of OIDC client {id} opens with neither key: {e}",
                        sealed.name()
                    ))
                })?;
                if sealed.replace(conn, &id, &enc, &key.encrypt(&plain.0, &context))? == 1 {
                    changed += 1;
                    done = true;
                    break;
                }
                match sealed.now(conn, &id)? {
                    Some(current) => enc = current,
                    None => {
                        done = true;
                        break;
                    }
                }
            }
            if !done {
                return Err(StoreError::Busy(format!(
                    "the {} of OIDC client {id} kept changing while it was re-encrypted; run the rotation again",
                    sealed.name()
                )));
            }
        }
    }
    Ok(changed)
}

impl OidcClientRow {
    /// A row for `spec`, encrypting its secret with `key`.
    pub fn from_spec(
        id: &str,
        spec: &OidcClientSpec,
        key: &SecretKey,
        discovery: Option<String>,
        created_at: i64,
        now: DateTime<Utc>,
    ) -> Self {
        OidcClientRow {
            id: id.to_string(),
            customer_id: spec.customer_id.clone(),
            idp_type: spec.idp_type.as_str().to_string(),
            sso_domain: spec.location.sso_domain.clone(),
            tenant_id: spec.location.tenant_id.clone(),
            issuer_override: spec.location.issuer.clone(),
            issuer: spec.issuer.clone(),
            client_id: spec.client_id.clone(),
            client_secret_enc: spec.client_secret.as_ref().map(|s| key.encrypt(&s.0, &secret_context(id))),
            uses_pkce: spec.uses_pkce,
            redirect_url: spec.redirect_url.clone(),
            matching_strategy: spec.matching_strategy.map(|m| m.as_str().to_string()),
            email_domain_allowlist: serde_json::Value::from(spec.email_domain_allowlist.clone()).to_string(),
            additional_scopes: serde_json::Value::from(spec.additional_scopes.clone()).to_string(),
            discovery,
            created_at,
            updated_at: micros(now),
            accept_unverified_email: spec.accept_unverified_email,
            scopes: spec.scopes.as_ref().map(|s| serde_json::Value::from(s.clone()).to_string()),
            scim_required: spec.scim_required.unwrap_or(false),
            client_secret_expires_at: spec.client_secret_expires_at.map(micros),
            client_authentication: spec.client_authentication.as_str().to_string(),
            client_keys_enc: spec.client_keys.as_ref().map(|k| key.encrypt(&k.0, &keys_context(id))),
            client_assertion_audience: spec.client_assertion_audience.as_str().to_string(),
            previous_client_key_used_at: None,
        }
    }

    /// How the client authenticates at the token endpoint.
    pub fn client_authentication(&self) -> Result<ClientAuthentication, StoreError> {
        self.client_authentication.parse().map_err(StoreError::Corrupt)
    }

    /// The audience a `private_key_jwt` assertion names.
    pub fn client_assertion_audience(&self) -> Result<AssertionAudience, StoreError> {
        self.client_assertion_audience.parse().map_err(StoreError::Corrupt)
    }

    /// Whether the client signs with keys (`private_key_jwt`).
    pub fn uses_client_keys(&self) -> bool {
        self.client_authentication == ClientAuthentication::PrivateKeyJwt.as_str()
    }

    /// The IdP type.
    pub fn idp_type(&self) -> Result<IdpType, StoreError> {
        self.idp_type.parse().map_err(|e: tandem_core::idp::UnknownIdpType| StoreError::Corrupt(e.to_string()))
    }

    /// The application id this client's discovery is asked for (Entra: see
    /// [`IdpType::discovery_appid`]).
    pub fn discovery_appid(&self) -> Option<&str> {
        self.idp_type().ok().and_then(|t| t.discovery_appid(&self.client_id))
    }

    /// The client's own strategy, if it chose one.
    pub fn strategy(&self) -> Result<Option<MatchingStrategy>, StoreError> {
        self.matching_strategy
            .as_deref()
            .map(|s| s.parse().map_err(|e: tandem_core::matching::UnknownStrategy| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    /// The email domain allowlist.
    pub fn domains(&self) -> Vec<String> {
        serde_json::from_str(&self.email_domain_allowlist).unwrap_or_default()
    }

    /// The scopes asked for in place of `openid email profile`, if the client sets them.
    pub fn base_scopes(&self) -> Option<Vec<String>> {
        self.scopes.as_deref().and_then(|s| serde_json::from_str(s).ok())
    }

    /// Scopes beyond `openid email profile`.
    pub fn scopes(&self) -> Vec<String> {
        serde_json::from_str(&self.additional_scopes).unwrap_or_default()
    }

    /// The decrypted client secret, if any.
    pub fn client_secret(&self, key: &SecretKey) -> Result<Option<Redacted<String>>, StoreError> {
        self.client_secret_enc
            .as_deref()
            .map(|enc| key.decrypt(enc, &secret_context(&self.id)).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    /// The decrypted keys of a `private_key_jwt` client (their stored form), if any.
    pub fn client_keys(&self, key: &SecretKey) -> Result<Option<Redacted<String>>, StoreError> {
        self.client_keys_enc
            .as_deref()
            .map(|enc| key.decrypt(enc, &keys_context(&self.id)).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    /// The configuration as a spec with `client_secret` and `client_keys`
    /// (decrypted by the caller, or none where a PATCH replaces a
    /// credential that cannot be read).
    pub fn spec_with(
        &self,
        client_secret: Option<Redacted<String>>,
        client_keys: Option<Redacted<String>>,
    ) -> Result<OidcClientSpec, StoreError> {
        Ok(OidcClientSpec {
            customer_id: self.customer_id.clone(),
            idp_type: self.idp_type()?,
            location: IdpLocation {
                sso_domain: self.sso_domain.clone(),
                tenant_id: self.tenant_id.clone(),
                issuer: self.issuer_override.clone(),
            },
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            client_authentication: self.client_authentication()?,
            client_assertion_audience: self.client_assertion_audience()?,
            client_secret,
            client_keys,
            client_secret_expires_at: self.client_secret_expires_at.map(from_micros),
            uses_pkce: self.uses_pkce,
            redirect_url: self.redirect_url.clone(),
            matching_strategy: self.strategy()?,
            email_domain_allowlist: self.domains(),
            additional_scopes: self.scopes(),
            accept_unverified_email: self.accept_unverified_email,
            scopes: self.base_scopes(),
            scim_required: Some(self.scim_required),
        })
    }
}

/// Serialises, until the transaction ends, the writes that may pair
/// `customer_id`'s client and connection (creating or renaming either):
/// each reads the other's table to pair them, and on PostgreSQL two such
/// writes at once (an onboarding script creating both) would each miss the
/// other's uncommitted row and leave the pair unmarked. SQLite's writes
/// are one at a time already.
pub fn lock_customer(conn: &mut AnyConnection, customer_id: &str) -> Result<(), StoreError> {
    lock_until_commit(conn, &format!("tandem customer {customer_id}"))
}

/// On PostgreSQL, a transaction-scoped advisory lock on `name` (hashed);
/// nothing on SQLite, whose writes are one at a time.
fn lock_until_commit(conn: &mut AnyConnection, name: &str) -> Result<(), StoreError> {
    if let AnyConnection::Postgresql(pg) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind::<diesel::sql_types::Text, _>(name)
            .execute(pg)?;
    }
    Ok(())
}

/// Serialises, until the transaction ends, the writes that give a client
/// `issuer` (creating one, or moving one onto it): a setup link's check
/// that no other customer's client has that issuer, made in the write,
/// then sees every other such write committed (on PostgreSQL two at once
/// would each miss the other's uncommitted row). Taken before
/// [`lock_customer`], so that two writes taking both cannot deadlock.
pub fn lock_issuer(conn: &mut AnyConnection, issuer: &str) -> Result<(), StoreError> {
    lock_until_commit(conn, &format!("tandem issuer {issuer}"))
}

/// Whether a client of another customer than `customer_id` has `issuer`.
pub fn issuer_held_by_another(conn: &mut AnyConnection, issuer: &str, customer_id: &str) -> Result<bool, StoreError> {
    Ok(find_by_issuer(conn, issuer)?.into_iter().any(|r| r.customer_id != customer_id))
}

/// Marks the client of `customer_id`, if it has one and it is not marked
/// yet, as needing a SCIM user at login: it has just been paired with a
/// SCIM connection (created for its customer, or renamed onto it). From
/// then on a login finding no connection (deleted, or renamed away) is
/// refused instead of passing without the deprovisioning check. Returns
/// the id of the client marked.
pub fn require_scim(
    conn: &mut AnyConnection,
    customer_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    let Some((id, read_at)) = c::oidc_clients
        .filter(c::customer_id.eq(customer_id))
        .filter(c::scim_required.eq(false))
        .select((c::id, c::updated_at))
        .first::<(String, i64)>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    // `updated_at` moves: an edit that read the client before retries.
    diesel::update(c::oidc_clients.filter(c::id.eq(&id)).filter(c::customer_id.eq(customer_id)))
        .set((c::scim_required.eq(true), c::updated_at.eq(micros(now).max(read_at.saturating_add(1)))))
        .execute(conn)?;
    Ok(Some(id))
}

fn customer_taken(customer_id: &str) -> StoreError {
    StoreError::Conflict(format!("customer_id {customer_id:?} already has an OIDC client"))
}

/// The customer ID of another client whose redirect URL has the path of
/// `row`'s, if any, unless the two may share it (Entra ID clients of one
/// multi-tenant application: [`tandem_core::idp::may_share_redirect_path`]).
///
/// A login's callback is matched to its client by the `state` it carries,
/// and checked against that client's redirect path. When two clients share
/// the path, one customer's IdP can send a victim's browser on to another
/// customer's IdP with its own login's `state`: the code that IdP issues
/// then arrives on the shared path under the first login, and Tandem would
/// redeem it at the first IdP's token endpoint (the OAuth mix-up attack,
/// RFC 9700 §4.4). Distinct paths make such a callback fail the path check;
/// RFC 9207's `iss` does too, but Entra ID does not send it.
///
/// With `lock` (the deployment refuses shared paths), on PostgreSQL the
/// client table is locked against other client writes until the
/// transaction ends, so two clients cannot take one path at once.
pub fn redirect_path_sharer(
    conn: &mut AnyConnection,
    row: &OidcClientRow,
    lock: bool,
) -> Result<Option<String>, StoreError> {
    if let (true, AnyConnection::Postgresql(pg)) = (lock, &mut *conn) {
        pg.batch_execute("LOCK TABLE oidc_clients IN SHARE ROW EXCLUSIVE MODE")?;
    }
    let path = tandem_core::oidc_client::redirect_path(&row.redirect_url);
    let others: Vec<PathHolder> = c::oidc_clients
        .filter(c::id.ne(&row.id))
        .select((c::customer_id, c::redirect_url, c::idp_type, c::client_id, c::issuer))
        .order(c::id.asc())
        .load(conn)?;
    let this = (row.idp_type.as_str(), row.client_id.as_str(), row.issuer.as_str());
    Ok(others
        .into_iter()
        .find(|(_, url, t, id, iss)| {
            tandem_core::oidc_client::redirect_path(url) == path && !may_share(this, (t, id, iss))
        })
        .map(|(customer, ..)| customer))
}

/// A client's customer ID, redirect URL, IdP type, client id and issuer.
type PathHolder = (String, String, String, String, String);

/// Whether clients of these (IdP type, client id, issuer) may share a redirect path.
fn may_share(
    (type_a, client_a, issuer_a): (&str, &str, &str),
    (type_b, client_b, issuer_b): (&str, &str, &str),
) -> bool {
    match (type_a.parse::<tandem_core::idp::IdpType>(), type_b.parse::<tandem_core::idp::IdpType>()) {
        (Ok(ta), Ok(tb)) => {
            tandem_core::idp::may_share_redirect_path((ta, client_a, issuer_a), (tb, client_b, issuer_b))
        }
        _ => false,
    }
}

/// The redirect paths more than one client has, each with its clients'
/// customer IDs (a start-up warning: shared paths allow the mix-up
/// [`redirect_path_sharer`] describes).
pub fn shared_redirect_paths(conn: &mut AnyConnection) -> Result<Vec<(String, Vec<String>)>, StoreError> {
    let all: Vec<PathHolder> = c::oidc_clients
        .select((c::customer_id, c::redirect_url, c::idp_type, c::client_id, c::issuer))
        .order(c::id.asc())
        .load(conn)?;
    type Holders = Vec<(String, (String, String, String))>;
    let mut by_path: std::collections::BTreeMap<String, Holders> = std::collections::BTreeMap::new();
    for (customer, url, t, id, iss) in all {
        by_path.entry(tandem_core::oidc_client::redirect_path(&url)).or_default().push((customer, (t, id, iss)));
    }
    // A path is reported when two of its clients may not share it (Entra
    // clients of one application may).
    Ok(by_path
        .into_iter()
        .filter(|(_, holders)| {
            fn idp((t, id, iss): &(String, String, String)) -> (&str, &str, &str) {
                (t, id, iss)
            }
            holders
                .iter()
                .enumerate()
                .any(|(i, (_, a))| holders[i + 1..].iter().any(|(_, b)| !may_share(idp(a), idp(b))))
        })
        .map(|(path, holders)| (path, holders.into_iter().map(|(customer, _)| customer).collect()))
        .collect())
}

/// What is wrong with a redirect path `customer`'s client has too.
pub fn shared_redirect_path(redirect_url: &str, customer: &str) -> String {
    format!(
        "the redirect_url path {:?} is also that of the OIDC client of customer_id {customer:?}: give each client \
         its own path (e.g. /sso/callback/{{customer_id}}), or a code one customer's IdP issues can be redeemed \
         under a login at the other's when the IdP sends no RFC 9207 iss, as Entra ID does not (OAuth mix-up, \
         RFC 9700 §4.4); only Entra ID clients of one application, each on a tenant of Microsoft's own hosts, \
         may share a path",
        tandem_core::oidc_client::redirect_path(redirect_url)
    )
}

/// A conflict if `customer_id` already has a client.
pub fn check_customer_free(conn: &mut AnyConnection, customer_id: &str) -> Result<(), StoreError> {
    match get_by_customer(conn, customer_id)? {
        Some(_) => Err(customer_taken(customer_id)),
        None => Ok(()),
    }
}

/// Inserts a client; a taken customer id is a conflict.
pub fn insert(conn: &mut AnyConnection, row: &OidcClientRow) -> Result<(), StoreError> {
    check_customer_free(conn, &row.customer_id)?;
    diesel::insert_into(c::oidc_clients)
        .values(row)
        .execute(conn)
        .map_err(|e| StoreError::from(e).unique_as(|| customer_taken(&row.customer_id)))?;
    write_domains(conn, row)
}

/// What [`update`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Updated {
    /// The row was replaced.
    Done,
    /// The client changed since it was read: read it again and reapply.
    Changed,
    /// The client was deleted.
    Gone,
}

/// Replaces a client's stored configuration, if the client is still as it
/// was read: `read_at` is the `updated_at` it was read with. A change or a
/// delete since that read is reported, not overwritten, so that of two
/// concurrent edits neither undoes the other. `row.updated_at` is moved
/// past `read_at` when it is not already (two edits within a microsecond,
/// or a clock set back), so that every replacement is seen as a change.
pub fn update(conn: &mut AnyConnection, row: &mut OidcClientRow, read_at: i64) -> Result<Updated, StoreError> {
    row.updated_at = row.updated_at.max(read_at.saturating_add(1));
    if let Some(other) = get_by_customer(conn, &row.customer_id)? {
        if other.id != row.id {
            return Err(customer_taken(&row.customer_id));
        }
    }
    let replaced = diesel::update(c::oidc_clients.filter(c::id.eq(&row.id)).filter(c::updated_at.eq(read_at)))
        .set(&*row)
        .execute(conn)
        .map_err(|e| StoreError::from(e).unique_as(|| customer_taken(&row.customer_id)))?;
    if replaced == 0 {
        return Ok(if get(conn, &row.id)?.is_some() { Updated::Changed } else { Updated::Gone });
    }
    diesel::delete(d::oidc_client_domains.filter(d::oidc_client_id.eq(&row.id))).execute(conn)?;
    write_domains(conn, row)?;
    Ok(Updated::Done)
}

fn write_domains(conn: &mut AnyConnection, row: &OidcClientRow) -> Result<(), StoreError> {
    for domain in row.domains() {
        diesel::insert_into(d::oidc_client_domains)
            .values((d::domain.eq(domain), d::oidc_client_id.eq(&row.id)))
            .execute(conn)?;
    }
    Ok(())
}

/// Records that a login of client `id` went through only with its
/// previous key, at `now`. Leaves `updated_at` alone: it is no edit, and an
/// edit that read the client before must not retry for it.
pub fn mark_previous_key_used(conn: &mut AnyConnection, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    diesel::update(c::oidc_clients.filter(c::id.eq(id)))
        .set(c::previous_client_key_used_at.eq(micros(now)))
        .execute(conn)?;
    Ok(())
}

/// The client secrets' expiries the admins gave (for the metrics).
pub fn secret_expiries(conn: &mut AnyConnection) -> Result<Vec<i64>, StoreError> {
    Ok(c::oidc_clients
        .filter(c::client_secret_expires_at.is_not_null())
        .select(c::client_secret_expires_at.assume_not_null())
        .load(conn)?)
}

/// A client by its id.
pub fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<OidcClientRow>, StoreError> {
    Ok(on_backend!(conn, |db| c::oidc_clients
        .filter(c::id.eq(id))
        .select(OidcClientRow::as_select())
        .first(db)
        .optional())?)
}

/// A client by its customer id.
pub fn get_by_customer(conn: &mut AnyConnection, customer_id: &str) -> Result<Option<OidcClientRow>, StoreError> {
    Ok(on_backend!(conn, |db| c::oidc_clients
        .filter(c::customer_id.eq(customer_id))
        .select(OidcClientRow::as_select())
        .first(db)
        .optional())?)
}

/// The clients whose allowlist contains `domain` (lower-case): a lookup by
/// the domain table's primary key.
pub fn find_by_domain(conn: &mut AnyConnection, domain: &str) -> Result<Vec<OidcClientRow>, StoreError> {
    // One static join (stays prepared), not a second query with a variable-length IN;
    // on the concrete connection, which keeps it under its type without rendering its SQL.
    Ok(on_backend!(conn, |db| c::oidc_clients
        .inner_join(d::oidc_client_domains)
        .filter(d::domain.eq(domain))
        .select(OidcClientRow::as_select())
        .order(c::id.asc())
        .load(db))?)
}

/// The clients of an issuer (as stored: without a trailing `/`, scheme and
/// host in lower case), by id.
pub fn find_by_issuer(conn: &mut AnyConnection, issuer: &str) -> Result<Vec<OidcClientRow>, StoreError> {
    Ok(c::oidc_clients.filter(c::issuer.eq(issuer)).select(OidcClientRow::as_select()).order(c::id.asc()).load(conn)?)
}

/// Brings stored issuers to the form clients are now saved in (see
/// [`tandem_core::oidc_client::normalize_issuer`]): a client saved with
/// `Acme.okta.com` before is then found by its IdP's `iss` and patched
/// without its secret. Returns how many changed.
pub fn normalize_issuers(conn: &mut AnyConnection) -> Result<usize, StoreError> {
    let rows: Vec<(String, String)> = c::oidc_clients.select((c::id, c::issuer)).load(conn)?;
    let mut changed = 0;
    for (id, issuer) in rows {
        let normal = tandem_core::oidc_client::normalize_issuer(&issuer);
        if normal != issuer {
            // Only if it is still as read, and as a change of the row: an
            // edit that read it before retries on the new version instead
            // of writing the old issuer back.
            changed += diesel::update(c::oidc_clients.filter(c::id.eq(&id)).filter(c::issuer.eq(&issuer)))
                .set((c::issuer.eq(&normal), c::updated_at.eq(c::updated_at + 1)))
                .execute(conn)?;
        }
    }
    Ok(changed)
}

/// A page of clients ordered by id, after `after` when given.
pub fn list(conn: &mut AnyConnection, after: Option<&str>, limit: i64) -> Result<Vec<OidcClientRow>, StoreError> {
    let mut q = c::oidc_clients.select(OidcClientRow::as_select()).order(c::id.asc()).limit(limit).into_boxed();
    if let Some(after) = after {
        q = q.filter(c::id.gt(after.to_string()));
    }
    Ok(q.load(conn)?)
}

/// Deletes a client; returns whether it existed.
pub fn delete(conn: &mut AnyConnection, id: &str) -> Result<bool, StoreError> {
    // The client's row first, then its domains, as `update` locks them: the
    // other order deadlocks with an update on PostgreSQL.
    let existed = diesel::delete(c::oidc_clients.filter(c::id.eq(id))).execute(conn)? > 0;
    diesel::delete(d::oidc_client_domains.filter(d::oidc_client_id.eq(id))).execute(conn)?;
    // The identities its logins saw, with their claims, are deleted by the
    // housekeeping (`sso::sso_users_gone`), in batches, with any its logins
    // queued meanwhile.
    Ok(existed)
}
