//! `/api/v1/oidc-clients`: create, fetch, patch, delete.

use crate::auth::Caller;
use crate::body;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Value};
use tandem_core::format_time;
use tandem_core::oidc_client::{
    parse_create, parse_patch, redirect_path, ClientAuthentication, OidcClientRequest, OidcClientSpec,
};
use tandem_oidc::client_keys::{ClientKey, ClientKeys};
use tandem_store::oidc_clients::{self as repo, OidcClientRow};
use tandem_store::{audit, from_micros, scim_connections};

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("ClientNotFound", format!("no OIDC client {id:?}"))
}

/// The API form of a stored client (never its secret).
fn render(row: &OidcClientRow, state: &AppState) -> Result<Value, ApiError> {
    let idp_type = row.idp_type()?;
    let (strategy, source) = match row.strategy()? {
        Some(s) => (s, "client"),
        None => state.settings.default_strategy(idp_type),
    };
    let discovery = row.discovery.as_deref().and_then(|d| serde_json::from_str::<Value>(d).ok());
    let secret_expires = row.client_secret_expires_at.map(from_micros);
    let keyed = row.uses_client_keys();
    let client_keys = keyed.then(|| client_keys_view(row, state));
    Ok(json!({
        "oidc_client_id": row.id,
        "customer_id": row.customer_id,
        "idp": {
            "type": row.idp_type,
            "client_id": row.client_id,
            "client_authentication": row.client_authentication,
            "has_client_secret": !keyed && row.client_secret_enc.is_some(),
            "client_secret_expires_at": secret_expires.map(format_time),
            "client_secret_warning_level": secret_expires
                .map(|at| tandem_core::scim_connection::warning_level(Some(at), state.clock.now())),
            "uses_pkce": row.uses_pkce,
            "sso_domain": row.sso_domain,
            "tenant_id": row.tenant_id,
            "issuer": row.issuer,
            "issuer_override": row.issuer_override,
            "client_keys": client_keys,
            "client_assertion_audience": keyed.then_some(row.client_assertion_audience.as_str()),
            "jwks_url": keyed.then(|| jwks_url(state, &row.id)),
        },
        "redirect_url": row.redirect_url,
        "scim_matching_definition": {"strategy": strategy.as_str(), "source": source},
        "email_domain_allowlist": row.domains(),
        "additional_scopes": row.scopes(),
        "accept_unverified_email": row.accept_unverified_email,
        "scopes": row.base_scopes(),
        "scim_required": row.scim_required,
        "discovery": discovery.unwrap_or_else(|| json!({"status": "skipped"})),
        "created_at": format_time(from_micros(row.created_at)),
        "updated_at": format_time(from_micros(row.updated_at)),
    }))
}

/// The keys of a `private_key_jwt` client, decrypted; an error says why
/// they cannot be read (a damaged row, or one written under another key).
pub fn client_keys(row: &OidcClientRow, secret_key: &tandem_core::secret::SecretKey) -> Result<ClientKeys, String> {
    match row.client_keys(secret_key) {
        Ok(Some(stored)) => ClientKeys::parse(&stored.0),
        Ok(None) => Err("the client has no keys".into()),
        Err(e) => Err(format!("the stored client keys cannot be decrypted: {e}")),
    }
}

/// An error for a key that could not be made (the system's random source failed).
fn key_not_made(e: &str) -> ApiError {
    tracing::error!(error = %e, "a client key could not be made");
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "KeyGenerationFailed", format!("{e}; retry shortly"))
}

/// Where the public keys of a `private_key_jwt` client are published.
pub fn jwks_url(state: &AppState, id: &str) -> String {
    format!("{}/oidc/{id}/jwks.json", state.settings.public_url)
}

/// The keys of a `private_key_jwt` client as the API shows them (public
/// parts only): each with its JWK, its certificate (PEM, as Entra takes
/// it) and its thumbprint; the previous key while its grace lasts. Null
/// when the stored keys cannot be read.
fn client_keys_view(row: &OidcClientRow, state: &AppState) -> Value {
    let now = state.clock.now();
    let Ok(keys) = client_keys(row, &state.secret_key) else { return Value::Null };
    let view = |k: &ClientKey, status: &str| {
        json!({
            "kid": k.kid,
            "status": status,
            "created_at": format_time(k.created_at),
            "certificate_expires_at": format_time(k.not_after),
            "valid_until": k.valid_until.map(format_time),
            "certificate_thumbprint_sha1": k.thumbprint_sha1_hex(),
            "certificate_pem": k.certificate_pem(),
            "jwk": k.jwk().unwrap_or(Value::Null),
        })
    };
    let mut out = vec![view(keys.current(), "current")];
    out.extend(keys.previous(now).map(|k| {
        let mut v = view(k, "previous");
        // Set: the IdP took a login only with this key since the rotation
        // (it lacks the current one, and those logins fail when the grace ends).
        v["last_used_at"] = json!(row.previous_client_key_used_at.map(|t| format_time(from_micros(t))));
        v
    }));
    Value::Array(out)
}

/// Gives a `private_key_jwt` spec its keys: the kept ones, or new ones
/// (`made`, reused across a PATCH's retries); its secret expiry is the
/// current key's certificate's. A client secret spec is left as it is.
async fn with_client_keys(
    spec: &mut OidcClientSpec,
    id: &str,
    now: chrono::DateTime<chrono::Utc>,
    made: &mut Option<ClientKeys>,
) -> Result<(), ApiError> {
    if spec.client_authentication != ClientAuthentication::PrivateKeyJwt {
        return Ok(());
    }
    let keys = match &spec.client_keys {
        Some(stored) => ClientKeys::parse(&stored.0).map_err(|e| {
            ApiError::invalid_field(
                "idp.client_authentication",
                format!("{e}: send client_authentication with this change to have new keys made"),
            )
        })?,
        None => match made {
            Some(keys) => keys.clone(),
            None => {
                let subject = key_subject(id);
                let keys = web::block(move || ClientKeys::generate(&subject, now))
                    .await
                    .map_err(|e| key_not_made(&e.to_string()))?
                    .map_err(|e| key_not_made(&e))?;
                *made = Some(keys.clone());
                keys
            }
        },
    };
    spec.client_secret_expires_at = Some(keys.current().not_after);
    spec.client_secret = None;
    spec.client_keys = Some(tandem_core::secret::Redacted(keys.to_stored()));
    Ok(())
}

/// The subject of a client key's certificate.
fn key_subject(id: &str) -> String {
    format!("Tandem OIDC client {id}")
}

/// Refuses `private_key_jwt` for a client whose IdP's discovery (as it
/// will be stored) lists its token endpoint's authentication methods
/// without it. An IdP that lists none may still take it.
fn check_method_listed(spec: &OidcClientSpec, discovery: Option<&str>) -> Result<(), ApiError> {
    if spec.client_authentication != ClientAuthentication::PrivateKeyJwt {
        return Ok(());
    }
    let listed: Vec<String> = discovery
        .and_then(|d| serde_json::from_str::<Value>(d).ok())
        .and_then(|d| serde_json::from_value(d["metadata"]["token_endpoint_auth_methods_supported"].clone()).ok())
        .unwrap_or_default();
    if listed.is_empty() || listed.iter().any(|m| m == "private_key_jwt") {
        return Ok(());
    }
    Err(ApiError::invalid_field(
        "idp.client_authentication",
        format!("the IdP's discovery lists token_endpoint_auth_methods_supported {listed:?}, without private_key_jwt"),
    ))
}

/// Runs discovery when asked; returns the document to store.
async fn discover(state: &AppState, req: &OidcClientRequest) -> Result<Option<String>, ApiError> {
    if !req.verify {
        return Ok(None);
    }
    let appid = req.spec.idp_type.discovery_appid(&req.spec.client_id);
    match tandem_oidc::discovery::discover(&state.http, &req.spec.issuer, appid).await {
        Ok(m) => Ok(Some(
            json!({"status": "ok", "discovered_at": format_time(state.clock.now()), "metadata": m}).to_string(),
        )),
        Err(e) => Err(ApiError::new(StatusCode::BAD_REQUEST, "IdentityProviderError", e.to_string()).with_details(json!({
            "kind": "DiscoveryFailed",
            "url": e.url,
            "reason": e.reason,
            "hint": "fix the issuer (sso_domain, tenant_id, issuer), or send \"verify\": false to save without discovery",
        }))),
    }
}

/// `POST /api/v1/oidc-clients`
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = body::json(payload, &state.settings).await?;
    Ok(HttpResponse::Created().json(create_from(&state, caller, body, None).await?))
}

/// A setup link's limits on what it changes (see `crate::setup`): only
/// its customer's client, and never onto an issuer another customer's
/// client has (which would take that customer's IdP-started logins); a
/// save that keeps the client's issuer is not checked.
pub(crate) struct LinkGuard<'a> {
    pub customer_id: &'a str,
}

impl LinkGuard<'_> {
    /// Refuses an issuer another customer's client has, before discovery
    /// (the write checks again, under the issuer's lock).
    async fn check_issuer(&self, state: &AppState, issuer: &str) -> Result<(), ApiError> {
        let (issuer, customer) = (issuer.to_string(), self.customer_id.to_string());
        if state.store.read(move |c| repo::issuer_held_by_another(c, &issuer, &customer)).await? {
            return Err(issuer_in_use());
        }
        Ok(())
    }
}

/// Where a client sends its logins, as its audit records carry it (no
/// secret): enough to tell, after the fact, which IdP a change pointed the
/// customer's sign-in at.
fn audited_idp(row: &OidcClientRow) -> Value {
    json!({"type": row.idp_type, "issuer": row.issuer, "client_id": row.client_id,
           "client_authentication": row.client_authentication})
}

/// A setup link's save onto an issuer another customer's client has.
fn issuer_in_use() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "IssuerInUse",
        "another customer's sign-in already uses this issuer, and a setup link cannot give it to a second one; ask \
         the application's administrators",
    )
}

/// In a write giving a client `issuer`: takes the issuer's lock and, for a
/// setup link's save (`link_customer`), whether another customer's client
/// has it (committed, whatever ran at the same time).
fn issuer_taken(
    c: &mut tandem_store::AnyConnection,
    issuer: &str,
    link_customer: Option<&str>,
) -> Result<bool, tandem_store::StoreError> {
    repo::lock_issuer(c, issuer)?;
    match link_customer {
        Some(customer) => repo::issuer_held_by_another(c, issuer, customer),
        None => Ok(false),
    }
}

/// [`create`] of a body already read (a setup link's form makes one too,
/// with its `guard`): the new client's answer.
pub(crate) async fn create_from(
    state: &AppState,
    caller: Caller,
    body: Value,
    guard: Option<&LinkGuard<'_>>,
) -> Result<Value, ApiError> {
    let mut req = parse_create(&body, state.settings.url_policy).map_err(ApiError::invalid_fields)?;
    if let Some(g) = guard {
        g.check_issuer(state, &req.spec.issuer).await?;
    }
    let discovery = discover(state, &req).await?;
    check_method_listed(&req.spec, discovery.as_deref())?;
    let now = state.clock.now();
    let id = tandem_core::new_id();
    with_client_keys(&mut req.spec, &id, now, &mut None).await?;
    let mut stored =
        OidcClientRow::from_spec(&id, &req.spec, &state.secret_key, discovery, tandem_store::micros(now), now);
    let require = state.settings.require_distinct_redirect_paths;
    let scim_required_given = req.spec.scim_required.is_some();
    let link_customer = guard.map(|g| g.customer_id.to_string());
    let written = state
        .store
        .write(move |c| {
            if issuer_taken(c, &stored.issuer, link_customer.as_deref())? {
                return Ok(None);
            }
            // A taken customer ID is the answer before a taken path (the
            // same request sent twice has both).
            repo::lock_customer(c, &stored.customer_id)?;
            repo::check_customer_free(c, &stored.customer_id)?;
            let sharer = shared_path_check(c, &stored, require)?;
            if !scim_required_given {
                stored.scim_required = scim_connections::get_by_customer(c, &stored.customer_id)?.is_some();
            }
            repo::insert(c, &stored)?;
            audit::record(
                c,
                now,
                &caller.name,
                "oidc_client.created",
                ("oidc_client", &stored.id),
                json!({"customer_id": stored.customer_id, "strategy": stored.matching_strategy,
                       "scim_required": stored.scim_required, "idp": audited_idp(&stored),
                       "redirect_url": stored.redirect_url}),
            )?;
            Ok(Some((stored, sharer)))
        })
        .await?;
    let (row, sharer) = written.ok_or_else(issuer_in_use)?;
    Ok(with_warnings(render(&row, state)?, &row, sharer, state))
}

/// Looks for another client on `row`'s redirect path: refused when the
/// deployment requires distinct paths, else its customer ID is returned
/// for a warning.
fn shared_path_check(
    c: &mut tandem_store::AnyConnection,
    row: &OidcClientRow,
    require: bool,
) -> Result<Option<String>, tandem_store::StoreError> {
    match repo::redirect_path_sharer(c, row, require)? {
        Some(other) if require => {
            Err(tandem_store::StoreError::RedirectPathTaken(repo::shared_redirect_path(&row.redirect_url, &other)))
        }
        sharer => Ok(sharer),
    }
}

/// The answer for a client just written, with a warning when its redirect
/// path is another client's too (logged as well), and when its IdP signs
/// ID tokens only with HMAC and the client has no secret long enough to
/// verify them (from the discovery just run).
fn with_warnings(mut body: Value, row: &OidcClientRow, sharer: Option<String>, state: &AppState) -> Value {
    let mut warnings = Vec::new();
    if let Some(other) = sharer {
        let message = repo::shared_redirect_path(&row.redirect_url, &other);
        tracing::warn!(oidc_client_id = %row.id, customer_id = %row.customer_id, shares_with = %other, "{message}");
        warnings.push(json!({"field": "redirect_url", "message": message}));
    }
    let advertised: Vec<String> = row
        .discovery
        .as_deref()
        .and_then(|d| serde_json::from_str::<Value>(d).ok())
        .and_then(|d| serde_json::from_value(d["metadata"]["id_token_signing_alg_values_supported"].clone()).ok())
        .unwrap_or_default();
    let secret_bytes = row.client_secret(&state.secret_key).ok().flatten().map(|s| s.0.len());
    if let Some(message) = tandem_oidc::id_token::hmac_only_warning(&advertised, secret_bytes) {
        warnings.push(json!({"field": "idp.client_secret", "message": message}));
    }
    if !warnings.is_empty() {
        body["warnings"] = Value::Array(warnings);
    }
    body
}

/// `GET /api/v1/oidc-clients[?customer_id=…]`
pub async fn list(state: web::Data<AppState>, _caller: Caller, query: super::Params) -> Result<HttpResponse, ApiError> {
    let (after, limit) = super::id_page(&query, &["customer_id"])?;
    let customer = query.get("customer_id").cloned();
    // A customer has one client at most: its page, past `after` or not, is the last.
    let page_limit = if customer.is_some() { i64::MAX } else { limit };
    let rows = state
        .store
        .read(move |c| match customer {
            Some(customer) => Ok(super::past_cursor(repo::get_by_customer(c, &customer)?, after.as_deref(), |r| &r.id)),
            None => repo::list(c, after.as_deref(), limit),
        })
        .await?;
    let data = rows.iter().map(|r| render(r, &state)).collect::<Result<Vec<_>, _>>()?;
    Ok(super::page_answer(&rows, page_limit, |r| &r.id, data))
}

/// `GET /api/v1/oidc-clients/{id}`
pub async fn get(state: web::Data<AppState>, _caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let key = id.clone();
    let row = state.store.read(move |c| repo::get(c, &key)).await?.ok_or_else(|| not_found(&id))?;
    Ok(HttpResponse::Ok().json(render(&row, &state)?))
}

/// `GET /api/v1/oidc-clients/by-customer-id/{customer_id}`
pub async fn get_by_customer(
    state: web::Data<AppState>,
    _caller: Caller,
    customer: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let customer = customer.into_inner();
    let key = customer.clone();
    let row =
        state.store.read(move |c| repo::get_by_customer(c, &key)).await?.ok_or_else(|| {
            ApiError::not_found("ClientNotFound", format!("no OIDC client for customer_id {customer:?}"))
        })?;
    Ok(HttpResponse::Ok().json(render(&row, &state)?))
}

/// How many times a PATCH is applied to a client that other edits keep
/// changing under it before it gives up with 409 `ClientChangedConcurrently`.
/// Each round lets at least one of the racing edits land, so this many
/// concurrent edits of one client all land.
const PATCH_ATTEMPTS: usize = 16;

/// `PATCH /api/v1/oidc-clients/{id}`
///
/// The patch is applied to the client as read and written only if nobody
/// changed it since; otherwise it is applied again to the new version. Two
/// admins editing different fields at once both keep their change, and an
/// edit racing a delete is either applied before it or answered 404.
/// Discovery (network) runs outside the write, once per metadata URL.
pub async fn patch(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = body::json(payload, &state.settings).await?;
    Ok(HttpResponse::Ok().json(patch_from(&state, caller, id.into_inner(), body, None).await?))
}

/// [`patch`] of a body already read (a setup link's form makes one too,
/// with its `guard`: a client no longer the link's customer's is not
/// found): the client's answer.
pub(crate) async fn patch_from(
    state: &AppState,
    caller: Caller,
    id: String,
    body: Value,
    guard: Option<&LinkGuard<'_>>,
) -> Result<Value, ApiError> {
    // `"verify": false` on an unchanged issuer keeps the discovery on record.
    let verify_requested = body.get("verify") == Some(&serde_json::Value::Bool(true));
    let mut discovered: Option<(String, Option<String>)> = None;
    let mut made_keys = None;
    for _ in 0..PATCH_ATTEMPTS {
        let key = id.clone();
        let current = state.store.read(move |c| repo::get(c, &key)).await?.ok_or_else(|| not_found(&id))?;
        // Written only as read (`repo::update` compares), so this holds for the write too.
        if guard.is_some_and(|g| g.customer_id != current.customer_id) {
            return Err(not_found(&id));
        }
        let readable = if current.uses_client_keys() {
            client_keys(&current, &state.secret_key)
                .map(|k| current.spec_with(None, Some(tandem_core::secret::Redacted(k.to_stored()))))
        } else {
            current.client_secret(&state.secret_key).map(|s| current.spec_with(s, None)).map_err(|e| e.to_string())
        };
        // What the PATCH names as the method, if anything.
        let method_named = body.get("idp").and_then(|i| i.get("client_authentication")).and_then(Value::as_str);
        let spec = match readable {
            Ok(spec) => spec?,
            // Keys that cannot be read are made anew when the PATCH names
            // the method (the IdP must then be given the new key).
            Err(_) if current.uses_client_keys() && method_named.is_some() => current.spec_with(None, None)?,
            Err(_) if current.uses_client_keys() => {
                return Err(ApiError::invalid_field(
                    "idp.client_authentication",
                    "the stored client keys cannot be read (a damaged row, or one written under another \
                              secret key): send \"client_authentication\" with this change to have new keys made, \
                              then give the IdP the new certificate or JWK",
                ))
            }
            // A stored secret that cannot be read (a row damaged, or written
            // under another key) is one a PATCH can replace, and must: with a
            // new secret, or with keys.
            Err(_)
                if method_named == Some("private_key_jwt")
                    || body
                        .get("idp")
                        .and_then(|i| i.get("client_secret"))
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.is_empty()) =>
            {
                current.spec_with(None, None)?
            }
            Err(_) => {
                return Err(ApiError::invalid_field(
                    "idp.client_secret",
                    "the stored client secret cannot be decrypted (a damaged row, or one written under \
                              another secret key): send the IdP's client_secret with this change, or switch to \
                              \"client_authentication\": \"private_key_jwt\"",
                ))
            }
        };
        let mut req = parse_patch(&body, &spec, state.settings.url_policy).map_err(ApiError::invalid_fields)?;
        if let Some(g) = guard.filter(|_| !tandem_core::oidc_client::same_issuer(&req.spec.issuer, &current.issuer)) {
            g.check_issuer(state, &req.spec.issuer).await?;
        }
        // `"scim_required": null` says nothing, as on create: the stored value stays.
        req.spec.scim_required = req.spec.scim_required.or(Some(current.scim_required));
        // What discovery fetches: the issuer's document, or an Entra application's.
        let source = |s: &tandem_core::oidc_client::OidcClientSpec| {
            tandem_oidc::discovery::metadata_url(&s.issuer, s.idp_type.discovery_appid(&s.client_id))
        };
        let wanted = source(&req.spec);
        let discovery = if wanted != source(&spec) || verify_requested {
            match &discovered {
                Some((fetched, doc)) if *fetched == wanted => doc.clone(),
                _ => {
                    let doc = discover(state, &req).await?;
                    discovered = Some((wanted, doc.clone()));
                    doc
                }
            }
        } else {
            current.discovery.clone()
        };
        check_method_listed(&req.spec, discovery.as_deref())?;
        let now = state.clock.now();
        with_client_keys(&mut req.spec, &id, now, &mut made_keys).await?;
        let mut row = OidcClientRow::from_spec(&id, &req.spec, &state.secret_key, discovery, current.created_at, now);
        // The previous key's last use stays with the keys it is about.
        if req.spec.client_keys.is_some() && req.spec.client_keys == spec.client_keys {
            row.previous_client_key_used_at = current.previous_client_key_used_at;
        }
        let (actor, fields) = (caller.name.clone(), body.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()));
        // Compared as text: the stored ciphertexts differ on every write.
        let secret_replaced = req.spec.client_secret.is_some() && req.spec.client_secret != spec.client_secret;
        let (old_strategy, old_required, read_at) =
            (current.matching_strategy.clone(), current.scim_required, current.updated_at);
        // Only a new path is checked, or a new IdP on a path shared as
        // Entra clients of one application may share it: an edit of
        // anything else leaves it as it is.
        let new_path = redirect_path(&row.redirect_url) != redirect_path(&current.redirect_url);
        let new_idp =
            (&row.idp_type, &row.client_id, &row.issuer) != (&current.idp_type, &current.client_id, &current.issuer);
        let before = current.clone();
        let new_customer = row.customer_id != current.customer_id;
        // A client renamed onto a customer with a SCIM connection is paired
        // now, unless the same PATCH says otherwise.
        let pairs_if_connected =
            new_customer && !row.scim_required && body.get("scim_required").is_none_or(Value::is_null);
        let require = state.settings.require_distinct_redirect_paths;
        let new_issuer = !tandem_core::oidc_client::same_issuer(&row.issuer, &current.issuer);
        let link_customer = guard.map(|g| g.customer_id.to_string());
        let written = state
            .store
            .write(move |c| {
                let mut row = row;
                if new_issuer && issuer_taken(c, &row.issuer, link_customer.as_deref())? {
                    return Ok(None);
                }
                // A taken customer ID is the answer before a taken path, as on create.
                if new_customer {
                    repo::lock_customer(c, &row.customer_id)?;
                    repo::check_customer_free(c, &row.customer_id)?;
                }
                let sharer = if new_path {
                    shared_path_check(c, &row, require)?
                } else if new_idp && repo::redirect_path_sharer(c, &before, false)?.is_none() {
                    // Shared safely before the edit: it must stay so.
                    shared_path_check(c, &row, require)?
                } else {
                    None
                };
                if pairs_if_connected {
                    row.scim_required = scim_connections::get_by_customer(c, &row.customer_id)?.is_some();
                }
                let outcome = repo::update(c, &mut row, read_at)?;
                if outcome == repo::Updated::Done && new_customer {
                    let via = "oidc_client.renamed";
                    super::setup_links::revoke_working_of(c, &before.customer_id, now, &actor, via)?;
                }
                if outcome == repo::Updated::Done {
                    let mut details = json!({
                        "fields": fields.unwrap_or_default(),
                        "strategy": {"old": old_strategy, "new": row.matching_strategy},
                        "scim_required": {"old": old_required, "new": row.scim_required},
                        "client_secret_replaced": secret_replaced,
                    });
                    let (old_idp, new_idp) = (audited_idp(&before), audited_idp(&row));
                    if old_idp != new_idp {
                        details["idp"] = json!({"old": old_idp, "new": new_idp});
                    }
                    if before.redirect_url != row.redirect_url {
                        details["redirect_url"] = json!({"old": before.redirect_url, "new": row.redirect_url});
                    }
                    audit::record(c, now, &actor, "oidc_client.updated", ("oidc_client", &row.id), details)?;
                    // As the dashboard records it, so one filter finds every change of strategy.
                    if old_strategy != row.matching_strategy {
                        audit::record(
                            c,
                            now,
                            &actor,
                            "oidc_client.strategy_changed",
                            ("oidc_client", &row.id),
                            json!({"strategy": {"old": old_strategy, "new": row.matching_strategy}}),
                        )?;
                    }
                }
                Ok(Some((outcome, row, sharer)))
            })
            .await?;
        let (outcome, row, sharer) = written.ok_or_else(issuer_in_use)?;
        match outcome {
            repo::Updated::Done => return Ok(with_warnings(render(&row, state)?, &row, sharer, state)),
            repo::Updated::Gone => return Err(not_found(&id)),
            repo::Updated::Changed => continue,
        }
    }
    Err(changed_concurrently(&id, "this PATCH was applied"))
}

/// `POST /api/v1/oidc-clients/{id}/rotate-client-key` `{"grace_period_hours": 168, "force": false}`
/// (optional): a new current key for a `private_key_jwt` client. The
/// previous one is still used, when the IdP refuses the new one, for the
/// grace period (default a week, at most 30 days; 0 drops it at once).
/// While an earlier rotation's previous key is in its grace, a rotation is
/// refused (409) unless forced: it would drop the key the IdP may hold alone.
pub async fn rotate_client_key(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let (grace, force) = super::rotation_grace(payload, &state.settings, true).await?;
    let grace = grace.unwrap_or(chrono::Duration::hours(DEFAULT_KEY_GRACE_HOURS));
    let mut made: Option<ClientKeys> = None;
    for _ in 0..PATCH_ATTEMPTS {
        let (current, stored) = keyed_client(&state, &id).await?;
        let now = state.clock.now();
        // Checked on every attempt: on a retry, a previous key in its grace
        // is another rotation's (this one's write never landed).
        if let (Some(previous), false) = (stored.previous(now), force) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "ClientKeyRotationInProgress",
                format!(
                    "the previous key {} is still in its grace, until {}, and the IdP may hold only it: once the IdP \
                     has the current key, end the grace (DELETE …/previous-client-key) and rotate; or send \"force\": \
                     true to drop the previous key now",
                    previous.kid,
                    format_time(previous.valid_until.unwrap_or(now))
                ),
            ));
        }
        // One new key per request, whatever the retries.
        let keys = match &made {
            Some(k) => {
                let mut k = k.clone();
                k.keep_previous(&stored, now, grace);
                k
            }
            None => {
                let (subject, old) = (key_subject(&id), stored.clone());
                let rotated = web::block(move || {
                    let mut k = old;
                    k.rotate(&subject, now, grace).map(|_| k)
                })
                .await
                .map_err(|e| key_not_made(&e.to_string()))?
                .map_err(|e| key_not_made(&e))?;
                made = Some(rotated.clone());
                rotated
            }
        };
        let details = json!({"kid": keys.current().kid, "grace_period_seconds": grace.num_seconds()});
        if let Some(done) =
            write_client_keys(&state, &caller, current, &keys, "oidc_client.key_rotated", details).await?
        {
            return Ok(done);
        }
    }
    Err(changed_concurrently(&id, "its key was rotated"))
}

/// `DELETE /api/v1/oidc-clients/{id}/previous-client-key`: ends a
/// rotation's grace now (the IdP holds the current key, or the previous
/// one leaked): the previous key is no longer used nor published.
pub async fn drop_previous_client_key(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    for _ in 0..PATCH_ATTEMPTS {
        let (current, stored) = keyed_client(&state, &id).await?;
        let Some(previous) = stored.previous(state.clock.now()).map(|k| k.kid.clone()) else {
            return Err(ApiError::not_found(
                "ClientKeyNotFound",
                format!("the OIDC client {id:?} has no previous key in its grace"),
            ));
        };
        let mut keys = stored.clone();
        keys.drop_previous();
        let details = json!({"dropped_kid": previous});
        if let Some(done) =
            write_client_keys(&state, &caller, current, &keys, "oidc_client.previous_key_dropped", details).await?
        {
            return Ok(done);
        }
    }
    Err(changed_concurrently(&id, "its previous key was dropped"))
}

/// A `private_key_jwt` client as stored, with its keys.
async fn keyed_client(state: &AppState, id: &str) -> Result<(OidcClientRow, ClientKeys), ApiError> {
    let key = id.to_string();
    let current = state.store.read(move |c| repo::get(c, &key)).await?.ok_or_else(|| not_found(id))?;
    if !current.uses_client_keys() {
        return Err(ApiError::invalid_field(
            "idp.client_authentication",
            "is client_secret: a client secret is rotated at the IdP and set with a PATCH; client keys are \
                      for private_key_jwt clients",
        ));
    }
    let stored = client_keys(&current, &state.secret_key).map_err(|e| {
        ApiError::invalid_field(
            "idp.client_authentication",
            format!(
                "{e}: PATCH the client with \"idp\": {{\"client_authentication\": \"private_key_jwt\"}} to have new \
                 keys made"
            ),
        )
    })?;
    Ok((current, stored))
}

/// Writes `keys` over the client as read (`current`), with an audit
/// event; the answer, or `None` when the client changed since it was read
/// (read it again and retry).
async fn write_client_keys(
    state: &AppState,
    caller: &Caller,
    current: OidcClientRow,
    keys: &ClientKeys,
    action: &'static str,
    details: Value,
) -> Result<Option<HttpResponse>, ApiError> {
    let now = state.clock.now();
    let mut spec = current.spec_with(None, Some(tandem_core::secret::Redacted(keys.to_stored())))?;
    spec.client_secret_expires_at = Some(keys.current().not_after);
    let id = current.id.clone();
    let mut row =
        OidcClientRow::from_spec(&id, &spec, &state.secret_key, current.discovery.clone(), current.created_at, now);
    let (actor, read_at) = (caller.name.clone(), current.updated_at);
    let (outcome, row) = state
        .store
        .write(move |c| {
            let outcome = repo::update(c, &mut row, read_at)?;
            if outcome == repo::Updated::Done {
                audit::record(c, now, &actor, action, ("oidc_client", &row.id), details)?;
            }
            Ok((outcome, row))
        })
        .await?;
    match outcome {
        repo::Updated::Done => Ok(Some(HttpResponse::Ok().json(render(&row, state)?))),
        repo::Updated::Gone => Err(not_found(&id)),
        repo::Updated::Changed => Ok(None),
    }
}

/// 409 `ClientChangedConcurrently`: other edits kept changing the client.
fn changed_concurrently(id: &str, while_: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "ClientChangedConcurrently",
        format!("the OIDC client {id:?} was changed {PATCH_ATTEMPTS} times while {while_}; send it again"),
    )
}

/// The default grace of a rotated-out client key: long enough for a
/// customer's admin to upload the new certificate.
const DEFAULT_KEY_GRACE_HOURS: i64 = 24 * 7;

/// `GET /oidc/{id}/jwks.json`, public: the JWK Set of a `private_key_jwt`
/// client's keys, for an IdP that fetches a client's keys by URL (Okta's
/// "Use a URL to fetch keys dynamically", Keycloak's "Use JWKS URL").
pub async fn jwks(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let key = id.clone();
    let row = state.store.read(move |c| repo::get(c, &key)).await?;
    let gone = || ApiError::not_found("ClientNotFound", format!("no private_key_jwt OIDC client {id:?}"));
    let row = row.filter(OidcClientRow::uses_client_keys).ok_or_else(gone)?;
    // Never an empty key set an IdP would cache, nor why in public.
    let jwks = client_keys(&row, &state.secret_key).and_then(|k| k.jwks(state.clock.now())).map_err(|e| {
        tracing::error!(oidc_client_id = %row.id, error = %e, "the JWKS of a client could not be served");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ClientKeysUnreadable",
            "the client's keys cannot be read; the server log says why",
        )
    })?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .content_type("application/jwk-set+json")
        .json(jwks))
}

/// `DELETE /api/v1/oidc-clients/{id}`: also revokes the customer's setup
/// links still working.
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let target = ("oidc_client", id.as_str());
    let actor = caller.name.clone();
    let delete = move |c: &mut tandem_store::AnyConnection, k: &str, now| {
        let Some(row) = repo::get(c, k)? else { return Ok(false) };
        let existed = repo::delete(c, k)?;
        if existed {
            super::setup_links::revoke_working_of(c, &row.customer_id, now, &actor, "oidc_client.deleted")?;
        }
        Ok(existed)
    };
    if super::delete_audited(&state, caller, target, "oidc_client.deleted", delete).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(not_found(&id))
    }
}
