//! `POST /api/v1/sso/login/initiate`
//! `{customer_id | oidc_client_id | email | issuer, post_login_redirect_url?}` →
//! `{idp_url, state_for_cookie, expires_at, oidc_client_id, customer_id}`.

use super::errors::{discovery_failed, idp};
use super::trace::Trace;
use crate::auth::Caller;
use crate::body;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::json;
use tandem_core::fields::FieldReader;
use tandem_core::format_time;
use tandem_core::idp::{is_microsoft_issuer, shared_microsoft_tenant};
use tandem_core::login::{check_post_login_origin, check_post_login_redirect};
use tandem_core::login_state::LoginState;
use tandem_oidc::flow::{authorization_url, ClientConfig};
use tandem_store::oidc_clients::{self, OidcClientRow};

/// Finds the client a login is for.
async fn find_client(state: &AppState, by: &Selector) -> Result<OidcClientRow, ApiError> {
    let found =
        match by {
            Selector::Customer(c) => {
                let key = c.clone();
                state.store.read_warm(move |conn| oidc_clients::get_by_customer(conn, &key)).await?.ok_or_else(
                    || ApiError::not_found("ClientNotFound", format!("no OIDC client for customer_id {c:?}")),
                )?
            }
            Selector::Client(id) => {
                let key = id.clone();
                state
                    .store
                    .read_warm(move |conn| oidc_clients::get(conn, &key))
                    .await?
                    .ok_or_else(|| ApiError::not_found("ClientNotFound", format!("no OIDC client {id:?}")))?
            }
            Selector::Email(email) => {
                let domain = email.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
                let key = domain.clone();
                let clients = state.store.read_warm(move |conn| oidc_clients::find_by_domain(conn, &key)).await?;
                the_one(
                    clients,
                    || format!("no OIDC client lists the email domain {domain:?} in its email_domain_allowlist"),
                    "EmailDomainNotUnique",
                    |n| format!("{n} OIDC clients list the email domain {domain:?}; start the login by customer_id"),
                )?
            }
            Selector::Issuer(issuer) => {
                let key = tandem_core::oidc_client::normalize_issuer(issuer);
                let clients = state.store.read_warm(move |conn| oidc_clients::find_by_issuer(conn, &key)).await?;
                the_one(
                    clients,
                    || format!("no OIDC client has the issuer {issuer:?}"),
                    "IssuerNotUnique",
                    |n| {
                        format!(
                            "{n} OIDC clients have the issuer {issuer:?} (a shared IdP such as Google); start the \
                         login by customer_id"
                        )
                    },
                )?
            }
        };
    Ok(found)
}

/// The one client found, or `ClientNotFound` (none) or `conflict` (several).
fn the_one(
    mut clients: Vec<OidcClientRow>,
    none: impl FnOnce() -> String,
    conflict: &'static str,
    several: impl FnOnce(usize) -> String,
) -> Result<OidcClientRow, ApiError> {
    match clients.len() {
        0 => Err(ApiError::not_found("ClientNotFound", none())),
        1 => Ok(clients.remove(0)),
        n => Err(ApiError::new(StatusCode::CONFLICT, conflict, several(n))),
    }
}

enum Selector {
    Customer(String),
    Client(String),
    Email(String),
    /// A login the IdP started (OpenID Connect Core §4: its `iss`).
    Issuer(String),
}

impl Selector {
    /// What the login was started by, as its trace says.
    fn name(&self) -> &'static str {
        match self {
            Selector::Customer(_) => "customer",
            Selector::Client(_) => "client",
            Selector::Email(_) => "email",
            Selector::Issuer(_) => "issuer",
        }
    }

    /// Files an attempt that found no client under what was asked for.
    fn label(self, trace: &mut Trace) {
        match self {
            Selector::Customer(c) => trace.event.customer_id = Some(c),
            Selector::Client(id) => trace.event.oidc_client_id = Some(id),
            Selector::Email(e) => trace.event.email = Some(e),
            // The event has no issuer column; the diagnosis names it.
            Selector::Issuer(_) => {}
        }
    }
}

/// The longest email accepted as a selector (an address's limit, RFC 3696 errata).
const MAX_EMAIL_BYTES: usize = 320;

/// The longest `oidc_client_id` accepted as a selector (ids are UUIDs).
const MAX_CLIENT_ID_BYTES: usize = 64;

/// The longest `domain_hint` accepted, in bytes (a DNS name's limit).
const MAX_DOMAIN_BYTES: usize = 253;

/// Checks a free-text field: 1 to `max` bytes, no control characters.
fn check_text(value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(format!("must be 1 to {max} bytes without control characters"));
    }
    Ok(())
}

/// The longest `max_age` taken: a year, in seconds.
const MAX_MAX_AGE: u64 = 366 * 24 * 3600;
const _: () = assert!(MAX_MAX_AGE <= u32::MAX as u64);

/// Checks `acr_values` (OpenID Connect Core §3.1.2.1): space-separated
/// values, each once, as a whole at most `MAX_ACR_VALUES_BYTES`.
fn check_acr_values(acr: &str) -> Result<(), String> {
    let max = tandem_core::login_state::MAX_ACR_VALUES_BYTES;
    check_text(acr, max)?;
    let values: Vec<&str> = acr.split(' ').collect();
    if values.iter().any(|v| v.is_empty() || v.contains(['"', '\\'])) {
        return Err("must be values separated by single spaces, without quotes or backslashes".into());
    }
    if values.iter().enumerate().any(|(i, v)| values[..i].contains(v)) {
        return Err("names a value twice".into());
    }
    Ok(())
}

/// Checks a `prompt` (OpenID Connect Core §3.1.2.1): space-separated values
/// among `none`, `login`, `consent` and `select_account`, each once, and
/// `none` alone.
fn check_prompt(prompt: &str) -> Result<(), String> {
    const KNOWN: [&str; 4] = ["none", "login", "consent", "select_account"];
    let values: Vec<&str> = prompt.split(' ').collect();
    if let Some(v) = values.iter().find(|v| !KNOWN.contains(v)) {
        return Err(format!(
            "{v:?} is not a prompt value: give space-separated values among none, login, consent and select_account"
        ));
    }
    if values.iter().enumerate().any(|(i, v)| values[..i].contains(v)) {
        return Err("names a value twice".into());
    }
    if values.len() > 1 && values.contains(&"none") {
        return Err("none cannot be combined with other values".into());
    }
    Ok(())
}

/// `POST /api/v1/sso/login/initiate`
pub async fn initiate(
    state: web::Data<AppState>,
    _caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = body::json(payload, &state.settings).await?;
    let mut r = FieldReader::new(&body, "");
    if !r.is_ok() {
        return Err(ApiError::invalid_fields(r.into_errors()));
    }
    let customer = r.string("customer_id");
    let client_id = r.string("oidc_client_id");
    let email = r.string("email");
    let issuer = r.string("issuer");
    let redirect_after = r.string("post_login_redirect_url");
    let login_hint = r.string("login_hint");
    let prompt = r.string("prompt");
    // Entra ID's: the user's domain, so a federated domain's users go
    // straight to their own sign-in page; other IdPs ignore it.
    let domain_hint = r.string("domain_hint");
    // A step-up: an authentication at most this old, and of one of these
    // classes (the ID token's auth_time and acr are checked against them).
    let max_age = r.u64("max_age");
    let acr_values = r.string("acr_values");
    if let Some(m) = max_age.filter(|m| *m > MAX_MAX_AGE) {
        r.error("max_age", format!("must be at most {MAX_MAX_AGE} seconds (a year), got {m}"));
    }
    if let Some(Err(m)) = acr_values.as_deref().map(check_acr_values) {
        r.error("acr_values", m);
    }
    if let Some(Err(m)) = login_hint.as_deref().map(|h| check_text(h, MAX_EMAIL_BYTES)) {
        r.error("login_hint", m);
    }
    if let Some(Err(m)) = domain_hint.as_deref().map(|h| check_text(h, MAX_DOMAIN_BYTES)) {
        r.error("domain_hint", m);
    }
    if let Some(Err(m)) = prompt.as_deref().map(check_prompt) {
        r.error("prompt", m);
    }
    if let Some(u) = &redirect_after {
        if let Err(m) = check_post_login_redirect(u) {
            r.error("post_login_redirect_url", m);
        }
    }
    if let Some(e) = &email {
        if !e.contains('@') || e.starts_with('@') || e.ends_with('@') {
            r.error("email", "must be an email address");
        } else if e.len() > MAX_EMAIL_BYTES {
            r.error("email", format!("must be at most {MAX_EMAIL_BYTES} bytes"));
        }
    }
    // Apps pass on what their visitors type: checked before anything is
    // looked up, echoed or recorded.
    if let Some(c) = &customer {
        if let Err(m) = tandem_core::oidc_client::check_customer_id(c) {
            r.error("customer_id", m);
        }
    }
    if let Some(Err(m)) = client_id.as_deref().map(|id| check_text(id, MAX_CLIENT_ID_BYTES)) {
        r.error("oidc_client_id", m);
    }
    // Only looked up, never fetched: any http(s) URL an issuer may be.
    let any_url = tandem_core::oidc_client::UrlPolicy { allow_http_everywhere: true };
    if let Some(i) = &issuer {
        if let Err(m) = tandem_core::oidc_client::check_url(i, any_url, true) {
            r.error("issuer", m);
        }
    }
    let given =
        [customer.is_some(), client_id.is_some(), email.is_some(), issuer.is_some()].iter().filter(|b| **b).count();
    if given != 1 {
        r.error("customer_id", "give exactly one of customer_id, oidc_client_id, email or issuer");
    }
    r.reject_unknown();
    if !r.is_ok() {
        return Err(ApiError::invalid_fields(r.into_errors()));
    }
    let selector = match (customer, client_id, email.clone(), issuer) {
        (Some(c), _, _, _) => Selector::Customer(c),
        (_, Some(id), _, _) => Selector::Client(id),
        (_, _, Some(e), _) => Selector::Email(e),
        (_, _, _, Some(i)) => Selector::Issuer(i),
        _ => return Err(ApiError::new(StatusCode::BAD_REQUEST, "InvalidFields", "no selector")),
    };
    let client = match find_client(&state, &selector).await {
        Ok(client) => client,
        // No client is still an attempt: recorded under the customer, client or email asked for.
        Err(err) if matches!(err.kind, "ClientNotFound" | "EmailDomainNotUnique" | "IssuerNotUnique") => {
            let mut trace = Trace::new(&state);
            selector.label(&mut trace);
            return Err(trace.refuse(&state, "initiate", err).await);
        }
        Err(err) => return Err(err),
    };
    let origins = &state.settings.post_login_redirect_origins;
    if let Some(Err(message)) =
        redirect_after.as_deref().map(|u| check_post_login_origin(u, &client.redirect_url, origins))
    {
        return Err(ApiError::invalid_field("post_login_redirect_url", message));
    }
    let now = state.clock.now();
    let expires = now + state.settings.login_ttl;
    // Checked above: at most MAX_MAX_AGE, which a u32 holds.
    let max_age = max_age.map(|m| u32::try_from(m).unwrap_or(u32::MAX));
    let login = LoginState::new(&client.id, now, tandem_store::micros(expires), client.uses_pkce)
        .with_step_up(max_age, acr_values.as_deref())
        .map_err(|m| ApiError::invalid_field("acr_values", m))?;
    let mut trace = Trace::for_login(&state, Some(login.id()), &client.id, Some(&client.customer_id));
    // Who the login is for, as far as the app knows: findable by email even
    // when it fails before the IdP names the user (the completion's email wins).
    trace.event.email = login_hint.clone().or_else(|| email.clone());
    trace.ok(&state, "initiate", json!({"by": selector.name()}));
    // An issuer saved before Microsoft's shared tenants were refused as
    // issuers: anyone with a Microsoft account would sign in through it.
    if let Some(why) = Some(&client.issuer).filter(|i| is_microsoft_issuer(i)).and_then(|i| shared_microsoft_tenant(i))
    {
        let message = format!("this client's issuer {} {why}", client.issuer);
        let err = idp(StatusCode::BAD_GATEWAY, "DiscoveryFailed", message, json!({"url": client.issuer}));
        return Err(trace.refuse(&state, "discovery", err).await);
    }
    let (meta, _) = match state.idp_cache.get(&state.http, &client.issuer, client.discovery_appid()).await {
        Ok(found) => found,
        Err(e) => return Err(trace.refuse(&state, "discovery", discovery_failed(&e)).await),
    };
    trace.ok(
        &state,
        "discovery",
        json!({"issuer": meta.issuer, "authorization_endpoint": meta.authorization_endpoint}),
    );
    let scopes = client.scopes();
    let base_scopes = client.base_scopes();
    // The authorization request carries no secret; it is decrypted only for the exchange.
    let cfg = ClientConfig {
        client_id: &client.client_id,
        client_secret: None,
        redirect_url: &client.redirect_url,
        additional_scopes: &scopes,
        base_scopes: base_scopes.as_deref(),
        client_keys: None,
    };
    let issued = login.issue(&state.secret_key, redirect_after.as_deref());
    let verifier = login.pkce_verifier();
    // An explicit login_hint wins over the email the client was found by.
    // The allowlist is read (parsed) only for a Google client.
    let hd = tandem_core::idp::is_google_issuer(&client.issuer)
        .then(|| tandem_core::idp::google_hd_param(&client.domains()))
        .flatten();
    let max_age_param = max_age.map(|m| m.to_string());
    let extra: Vec<(&'static str, &str)> = [
        ("login_hint", login_hint.as_deref().or(email.as_deref())),
        ("prompt", prompt.as_deref()),
        ("domain_hint", domain_hint.as_deref()),
        ("max_age", max_age_param.as_deref()),
        ("acr_values", acr_values.as_deref()),
        ("hd", hd.as_deref()),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name, value?)))
    .collect();
    let url = match authorization_url(
        &meta,
        &cfg,
        &issued.state,
        &login.nonce(),
        verifier.as_ref().map(|v| v.0.as_str()),
        &extra,
    ) {
        Ok(url) => url,
        Err(e) => {
            let message = format!("the IdP's metadata cannot build a login URL: {e}");
            let err = idp(StatusCode::BAD_GATEWAY, "DiscoveryFailed", message, json!({}));
            return Err(trace.refuse(&state, "authorization_url", err).await);
        }
    };
    trace.ok(&state, "authorization_url", json!({"pkce": client.uses_pkce, "expires_at": format_time(expires)}));
    // Nothing is stored for the login to complete: it travels in its state.
    // Its event's first part is written behind this answer.
    state.log_sink.record_login_start(trace.into_event(&state));
    Ok(HttpResponse::Ok().json(json!({
        "idp_url": url,
        "state_for_cookie": issued.cookie.0,
        "expires_at": format_time(expires),
        "oidc_client_id": client.id,
        "customer_id": client.customer_id,
    })))
}
