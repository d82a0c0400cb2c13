//! `POST /api/v1/sso/login/complete` `{state_from_cookie, callback_path_and_query}`
//! → the SSO identity joined to its SCIM user, or a precise error.
//!
//! The login comes out of its sealed state. One transaction on the success
//! path: it claims the login (single use, once its cookie binding and age
//! are checked) and reads its client. After the IdP exchange the SCIM join
//! reads, and the SSO user and the completion's part of the login event go
//! to the log writer, which commits them behind the answer in its batches.
//! Attempts refused before the claim (no or unknown state, cookie not
//! bound, expired, already claimed) claim nothing and get an event of their
//! own naming the login; once claimed, a later refusal is written to the
//! login's event.

use super::errors::{discovery_failed, idp, invalid_state};
use super::join::join;
use super::trace::Trace;
use crate::auth::Caller;
use crate::body;
use crate::error::ApiError;
use crate::state::{AppState, UserinfoWhen};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};
use tandem_core::fields::FieldReader;
use tandem_core::idp::IdpType;
use tandem_core::login::{explain_idp_error, parse_callback, Callback};
use tandem_core::login_state::{self, LoginState, NotBound};
use tandem_core::matching::SsoAttributes;
use tandem_core::oidc_client::redirect_path;
use tandem_oidc::flow::{exchange_code, userinfo, ClientConfig, FlowError};
use tandem_oidc::id_token::{validate, Expectations};
use tandem_store::oidc_clients::{self, OidcClientRow};
use tandem_store::sso::{self, SsoUser};

/// `POST /api/v1/sso/login/complete`
pub async fn complete(
    state: web::Data<AppState>,
    _caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = body::json(payload, &state.settings).await?;
    let mut r = FieldReader::new(&body, "");
    if !r.is_ok() {
        return Err(ApiError::invalid_fields(r.into_errors()));
    }
    let cookie = r.string("state_from_cookie");
    let raw_callback = r.required_string("callback_path_and_query");
    let callback = raw_callback.and_then(|c| match parse_callback(&c) {
        Ok(cb) => Some(cb),
        Err(m) => {
            r.error("callback_path_and_query", m);
            None
        }
    });
    r.reject_unknown();
    let (true, Some(callback)) = (r.is_ok(), callback) else { return Err(ApiError::invalid_fields(r.into_errors())) };
    // A callback that leads to no login is still an attempt: it gets an
    // event of its own, with no client.
    let unattributed = |state: &AppState| {
        let mut trace = Trace::new(state);
        trace.ok(state, "callback", callback_detail(&callback));
        trace
    };
    let Some(oauth_state) = callback.param("state").filter(|s| !s.is_empty()) else {
        let err = with_idp_error(invalid_state("missing", "the callback has no state parameter"), &callback);
        return Err(unattributed(&state).refuse(&state, "state", err).await);
    };

    // The login travels in its state: sealed by this deployment, or no login of ours.
    let Some(opened) = login_state::open(&state.secret_key, oauth_state) else {
        let err = with_idp_error(
            invalid_state("unknown", "the callback's state belongs to no login started here"),
            &callback,
        );
        return Err(unattributed(&state).refuse(&state, "state", err).await);
    };
    let login = &opened.login;
    let (id, expires_at, client_id) = (login.id(), login.expires_at, login.oidc_client_id.clone());
    // The cookie binding and the age are checked before the database is
    // asked anything: only the browser that started the login learns more.
    let checked = match opened.bind(cookie.as_deref()) {
        Err(NotBound) => {
            Err(("not_bound", "the state cookie does not belong to this login (missing, or from another browser)"))
        }
        Ok(_) if tandem_store::micros(state.clock.now()) > expires_at => {
            Err(("expired", "this login expired; start a new one"))
        }
        Ok(redirect) => Ok(redirect),
    };
    let (claimed, on_path, client) = match &checked {
        // Reads the login's client and claims the login (single use, also
        // across nodes: one insert, committed before the code is exchanged),
        // unless the callback came on another path than the client's: that
        // one is refused (RedirectUrlInvalid) without using the login up, so
        // the callback on the right path still completes it.
        Ok(_) => {
            let (id, client_id, path) = (id.clone(), client_id.clone(), callback.path.clone());
            state
                .store
                .write_autocommit(move |c| {
                    let client = oidc_clients::get(c, &client_id)?;
                    let on_path = client.as_ref().is_some_and(|cl| redirect_path(&cl.redirect_url) == path);
                    Ok((on_path && sso::claim_login(c, &id, expires_at)?, on_path, client))
                })
                .await?
        }
        // A refused attempt claims nothing; its client is read for its event's customer, when the database answers.
        Err(_) => {
            let client_id = client_id.clone();
            (false, false, state.store.read_indexed(move |c| oidc_clients::get(c, &client_id)).await.ok().flatten())
        }
    };
    let checked = match checked {
        Ok(_) if !claimed && on_path => Err(("reused", "this login was already completed; start a new one")),
        other => other,
    };
    // Only the attempt that claimed the login writes to the login's event;
    // a refused one gets an event of its own, which names the login.
    let customer = client.as_ref().map(|c| c.customer_id.as_str());
    let mut trace = Trace::for_login(&state, claimed.then(|| id.clone()), &client_id, customer);
    let mut detail = callback_detail(&callback);
    if !claimed {
        detail["login_id"] = json!(id);
    }
    trace.ok(&state, "callback", detail);
    let outcome = match (checked, client) {
        (Err((reason, message)), _) => Err(at(&state, &mut trace, "state", invalid_state(reason, message))),
        (Ok(_), None) => Err(at(
            &state,
            &mut trace,
            "state",
            ApiError::not_found("ClientNotFound", "the OIDC client of this login was deleted"),
        )),
        (Ok(redirect), Some(client)) => {
            trace.ok(&state, "state", json!({"bound": true}));
            finish(&state, &mut trace, login, redirect, &callback, &client).await
        }
    };
    match outcome {
        Ok(body) => Ok(HttpResponse::Ok().json(body)),
        Err(Failure { mut error, saved }) => {
            let event_id = trace.id().to_string();
            let stored = saved || {
                if trace.event.outcome != "failed" {
                    trace.failed(&state, "complete", &error);
                }
                trace.save(&state).await
            };
            // Named only when it is stored (a failure to store it is logged).
            if let Some(d) = error.details.as_object_mut().filter(|_| stored) {
                d.insert("login_event_id".into(), json!(event_id));
            }
            Err(error)
        }
    }
}

/// A completion's calls to the IdP take at most this many times
/// `oidc.http_timeout_secs` in all.
const COMPLETION_TIMEOUTS: u32 = 3;

/// The error codes of an authorization response: RFC 6749 §4.1.2.1 and
/// OpenID Connect Core §3.1.2.6.
const STANDARD_ERRORS: [&str; 16] = [
    "invalid_request",
    "unauthorized_client",
    "access_denied",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
    "interaction_required",
    "login_required",
    "account_selection_required",
    "consent_required",
    "invalid_request_uri",
    "invalid_request_object",
    "request_not_supported",
    "request_uri_not_supported",
    "registration_not_supported",
];

/// A state refusal of a callback that carries an IdP error (an IdP-side
/// failure, a stale or bookmarked callback) names that error too: it is
/// usually what the admin needs, and no login is there to report it.
fn with_idp_error(mut err: ApiError, callback: &Callback) -> ApiError {
    let Some(error) = callback.param("error") else { return err };
    let cut = tandem_oidc::idp_words;
    let (shown, description) = (cut(error), callback.param("error_description").map(cut));
    let explanation = explain_idp_error(error, description.as_deref());
    // No login vouches for this callback (anyone can send a browser to it
    // with any words): the message an app may show names only an error code
    // OAuth 2.0 or OpenID Connect defines (an attacker's `error` can be any
    // sentence of code-like characters); the free text, and the explanation
    // it picks, stay in `details`.
    err.message.push_str(&match STANDARD_ERRORS.contains(&error) {
        true => format!("; the callback carries the IdP's error {shown:?} (see details)"),
        false => "; the callback carries an IdP error (see details)".to_string(),
    });
    if let Some(d) = err.details.as_object_mut() {
        d.insert("idp_error".into(), json!(shown));
        d.insert("idp_error_description".into(), json!(description));
        d.insert("explanation".into(), json!(explanation));
    }
    err
}

/// What a login event says of the callback (never the code or state).
fn callback_detail(callback: &Callback) -> Value {
    json!({"path": callback.path, "has_code": callback.param("code").is_some(), "has_error": callback.param("error").is_some()})
}

/// A refused login, and whether its event was already saved.
struct Failure {
    error: ApiError,
    saved: bool,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Failure { error, saved: false }
    }
}

/// Fails the trace at `step` with `err`.
fn at(state: &AppState, trace: &mut Trace, step: &str, err: ApiError) -> Failure {
    trace.failed(state, step, &err);
    Failure { error: err, saved: false }
}

async fn finish(
    state: &AppState,
    trace: &mut Trace,
    login: &LoginState,
    redirect: Option<String>,
    cb: &Callback,
    client: &OidcClientRow,
) -> Result<Value, Failure> {
    // Each call to the IdP has its timeout, but a completion may make
    // several (discovery, the exchange and its other method, a key refetch,
    // userinfo, GETs sent twice): together they have a deadline. What
    // follows them (the SCIM join, the records) is the database's, not held to it.
    let deadline = state.http.timeout().saturating_mul(COMPLETION_TIMEOUTS);
    let Ok(heard) = tokio::time::timeout(deadline, hear(state, trace, login, cb, client)).await else {
        let message = format!(
            "the IdP's answers to this login took more than {} s in all ({COMPLETION_TIMEOUTS} times \
             oidc.http_timeout_secs); start a new login",
            deadline.as_secs()
        );
        let err = idp(StatusCode::BAD_GATEWAY, "ErrorCommunicatingWithIdp", message, json!({}));
        return Err(at(state, trace, "complete", err));
    };
    let (claims, email_from_userinfo, step_up) = heard?;
    let mut body = respond(state, trace, client, redirect, claims, email_from_userinfo).await?;
    body["step_up"] = step_up.unwrap_or(Value::Null);
    Ok(body)
}

/// What the IdP says of the login: its callback checked, the code exchanged,
/// the ID token validated (with a step-up's), userinfo merged when asked;
/// the claims, whether the email came from userinfo, and the step-up shown.
async fn hear(
    state: &AppState,
    trace: &mut Trace,
    login: &LoginState,
    cb: &Callback,
    client: &OidcClientRow,
) -> Result<(Map<String, Value>, bool, Option<Value>), Failure> {
    let expected_path = redirect_path(&client.redirect_url);
    if cb.path != expected_path {
        let err = ApiError::new(
            StatusCode::BAD_REQUEST,
            "RedirectUrlInvalid",
            format!("the callback path {:?} is not this client's redirect_url path {expected_path:?}", cb.path),
        );
        return Err(at(state, trace, "callback", err));
    }
    // An error response carrying another issuer's `iss` is not this IdP's
    // (RFC 9207 §2.4 applies to error responses too): refused as a mix-up,
    // not reported as the IdP's error.
    if let (Some(_), Some(iss)) = (cb.param("error"), cb.param("iss")) {
        if !tandem_core::oidc_client::same_issuer(iss, &client.issuer) {
            return Err(at(state, trace, "idp_response", issuer_mismatch(Some(iss), &client.issuer)));
        }
    }
    if let Some(error) = cb.param("error") {
        // An IdP that advertises sending `iss` sends it on errors too (RFC
        // 9207 §2.4): an error without it is not taken for this IdP's.
        if cb.param("iss").is_none() {
            if let Ok((meta, _)) = state.idp_cache.get(&state.http, &client.issuer, client.discovery_appid()).await {
                if meta.authorization_response_iss_parameter_supported {
                    return Err(at(state, trace, "idp_response", issuer_mismatch(None, &client.issuer)));
                }
            }
        }
        // The IdP's words, cut: the callback is anyone's to send.
        let cut = tandem_oidc::idp_words;
        let (error, description) = (cut(error), cb.param("error_description").map(cut));
        let (error, description) = (error.as_str(), description.as_deref());
        let explanation = explain_idp_error(error, description);
        let message = match (description, explanation) {
            (_, Some(why)) => why.to_string(),
            (_, None) if error.is_empty() => "the IdP returned an error without naming it".to_string(),
            (Some(d), None) => format!("the IdP returned {error}: {d}"),
            (None, None) => format!("the IdP returned {error}"),
        };
        // A page about the error, when it is one: an https URL, as parsed (a
        // `javascript:` one would run in any app that makes it a link, and
        // control characters would split a header it is put in).
        let error_uri = cb
            .param("error_uri")
            .filter(|u| u.len() <= 2048 && !u.chars().any(char::is_control))
            .and_then(|u| url::Url::parse(u).ok())
            .filter(|u| u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty()))
            .map(String::from);
        let details = json!({"error": error, "error_description": description, "error_uri": error_uri, "explanation": explanation});
        return Err(at(
            state,
            trace,
            "idp_response",
            idp(StatusCode::BAD_REQUEST, "IdpReturnedError", message, details),
        ));
    }
    let Some(code) = cb.param("code").filter(|c| !c.is_empty()) else {
        let err =
            idp(StatusCode::BAD_REQUEST, "NoCodeProvidedByIdp", "the IdP redirected back without a code", json!({}));
        return Err(at(state, trace, "idp_response", err));
    };
    let (meta, keys) = match state.idp_cache.get(&state.http, &client.issuer, client.discovery_appid()).await {
        Ok(found) => found,
        Err(e) => return Err(at(state, trace, "discovery", discovery_failed(&e))),
    };
    // RFC 9207 (mix-up defence): an `iss` in the callback must be this
    // login's issuer whether or not the IdP advertises sending one (§2.4: an
    // attacker's IdP would simply not advertise it), and an IdP that
    // advertises it must send it.
    let iss = cb.param("iss");
    let iss_checked = iss.is_some() || meta.authorization_response_iss_parameter_supported;
    if iss_checked && !iss.is_some_and(|i| tandem_core::oidc_client::same_issuer(i, &client.issuer)) {
        return Err(at(state, trace, "idp_response", issuer_mismatch(iss, &client.issuer)));
    }
    trace.ok(state, "idp_response", json!({"iss_checked": iss_checked}));

    // A private_key_jwt client signs with its keys and sends no secret. A
    // method this release does not know (a row written by a later one) is
    // refused, never taken for a client secret.
    // The credential refused before any request to the IdP, saying why.
    let unusable = |message: String| idp(StatusCode::BAD_GATEWAY, "InvalidClientCredentials", message, json!({}));
    let method = match client.client_authentication() {
        Ok(m) => m,
        Err(_) => {
            let err = unusable(format!(
                "the OIDC client's client_authentication {:?} is not one this Tandem knows (written by a later \
             release?)",
                client.client_authentication
            ));
            return Err(at(state, trace, "token_exchange", err));
        }
    };
    let keyed = method == tandem_core::oidc_client::ClientAuthentication::PrivateKeyJwt;
    let own_keys = match keyed.then(|| crate::api::oidc_clients::client_keys(client, &state.secret_key)) {
        None => None,
        Some(Ok(keys)) => Some(keys),
        Some(Err(e)) => {
            let err = unusable(format!(
                "{e} (a damaged row, or one written under another secret key): have new keys made with a PATCH \
             naming idp.client_authentication, and give the IdP the new certificate or JWK"
            ));
            return Err(at(state, trace, "token_exchange", err));
        }
    };
    // (A keyed client's secret column is not read: it is no concern of its logins.)
    let secret = match if keyed { Ok(None) } else { client.client_secret(&state.secret_key) } {
        Ok(secret) => secret,
        // A damaged row (or one written under another key): the secret the
        // IdP knows is gone, and only setting it again helps.
        Err(_) => {
            let err = unusable(
                "the OIDC client's stored secret cannot be decrypted (a damaged row, or one written under another \
             secret key): set the client's secret again with a PATCH"
                    .into(),
            );
            return Err(at(state, trace, "token_exchange", err));
        }
    };
    let scopes = client.scopes();
    let cfg = ClientConfig {
        client_id: &client.client_id,
        client_secret: secret.as_ref().map(|s| s.0.as_str()),
        redirect_url: &client.redirect_url,
        additional_scopes: &scopes,
        base_scopes: None,
        client_keys: own_keys
            .as_ref()
            .map(|k| (k, state.clock.now(), client.client_assertion_audience().unwrap_or_default())),
    };
    let verifier = login.pkce_verifier().map(|v| v.0);
    let tokens = match exchange_code(&state.http, &meta, &cfg, code, verifier).await {
        Ok(t) => t,
        Err(e) => {
            let err = match &e {
                FlowError::InvalidClient { error, description: d } => idp(
                    StatusCode::BAD_GATEWAY,
                    "InvalidClientCredentials",
                    if own_keys.is_some() {
                        format!(
                            "{e}. Give the IdP the client's current certificate or JWK (GET the OIDC client), or \
                         check its client_id."
                        )
                    } else {
                        format!("{e}. Rotate the client secret at the IdP and update the OIDC client.")
                    },
                    json!({"error": error, "error_description": d, "explanation": d.as_deref().and_then(|d| explain_idp_error("invalid_client", Some(d)))}),
                ),
                FlowError::Transport(_) => idp(
                    StatusCode::BAD_GATEWAY,
                    "ErrorCommunicatingWithIdp",
                    e.to_string(),
                    json!({"url": meta.token_endpoint}),
                ),
                FlowError::Refused { error, description } => idp(
                    StatusCode::BAD_GATEWAY,
                    "UnableToExchangeCodeForToken",
                    e.to_string(),
                    json!({"error": error, "error_description": description, "explanation": explain_idp_error(error, description.as_deref())}),
                ),
                _ => idp(StatusCode::BAD_GATEWAY, "UnableToExchangeCodeForToken", e.to_string(), json!({})),
            };
            return Err(at(state, trace, "token_exchange", err));
        }
    };
    // A login through only the key a rotation left working: counted,
    // logged, and recorded on the client (to the minute, for its answer and
    // page; a failure to record it costs the login nothing).
    let on_previous_key = match tokens.client_auth {
        tandem_oidc::flow::PREVIOUS_KEY_AUTH => Some(
            "the IdP refused the client's current key and took the previous one, which a rotation left working: \
         give the IdP the current certificate or JWK before the grace ends",
        ),
        tandem_oidc::flow::PREVIOUS_KEY_AUTH_CURRENT_UNUSABLE => Some(
            "the client's current key cannot sign (damaged) and the previous one, which a rotation left working, \
         signed: rotate the key again (force) and give the IdP the new certificate or JWK before the grace ends",
        ),
        _ => None,
    };
    if let Some(why) = on_previous_key {
        state.metrics.login_on_previous_client_key();
        tracing::warn!(oidc_client_id = %client.id, customer_id = %client.customer_id, "{why}");
        let now = state.clock.now();
        if tandem_store::use_due(client.previous_client_key_used_at, now) {
            let id = client.id.clone();
            if let Err(e) = state.store.write_small(move |c| oidc_clients::mark_previous_key_used(c, &id, now)).await {
                tracing::warn!(oidc_client_id = %client.id, error = %e, "the previous key's use could not be recorded");
            }
        }
    }
    trace.ok(
        state,
        "token_exchange",
        json!({"token_endpoint": meta.token_endpoint, "client_auth": tokens.client_auth}),
    );

    let nonce = login.nonce();
    let expect = Expectations {
        issuer: &client.issuer,
        client_id: &client.client_id,
        nonce: &nonce,
        advertised_algs: &meta.id_token_signing_alg_values_supported,
        client_secret: secret.as_ref().map(|s| s.0.as_str()),
        now: state.clock.now(),
    };
    let mut claims = match validate(&state.http, &keys, &tokens.id_token, &expect).await {
        Ok(c) => c,
        Err(e) => {
            let err = idp(StatusCode::BAD_GATEWAY, "InvalidIdToken", e.to_string(), json!({"check": e.check}));
            return Err(at(state, trace, "id_token", err));
        }
    };
    // A step-up is checked on the ID token's own claims, before userinfo
    // is merged (userinfo is not signed by the IdP for this login).
    let now = state.clock.now();
    // When the login started, by the clock of the node that began it (sealed
    // in the state); with no start known, a max_age is refused, never waived.
    let started = login.started_at().unwrap_or(i64::MAX);
    let checked = tandem_oidc::id_token::check_step_up(&claims, login.max_age(), login.acr_values(), started, now);
    if let Err(e) = checked {
        let err = idp(StatusCode::BAD_GATEWAY, "InvalidIdToken", e.to_string(), json!({"check": e.check}));
        return Err(at(state, trace, "id_token", err));
    }
    // What the app asked for and what the IdP answered: an app that asked
    // for a step-up compares it, as a plain login completes with null.
    let step_up = (login.max_age().is_some() || login.acr_values().is_some()).then(|| {
        json!({"max_age": login.max_age(), "acr_values": login.acr_values(),
           "auth_time": claims.get("auth_time"), "acr": claims.get("acr")})
    });
    trace.ok(state, "id_token", json!({"sub": claims.get("sub"), "step_up": step_up}));

    let lacks = |name: &str| claims.get(name).is_none_or(Value::is_null);
    // Groups asked for and not in the ID token: Okta's org authorization
    // server sends a thin ID token and groups through userinfo only.
    let asked_for_groups =
        scopes.iter().any(|s| s == "groups") || client.base_scopes().is_some_and(|b| b.iter().any(|s| s == "groups"));
    let ask = claims.get("email").and_then(Value::as_str).is_none()
        || (asked_for_groups && lacks("groups"))
        || (state.settings.userinfo == UserinfoWhen::ProfileIncomplete
            && ["given_name", "family_name", "email_verified"].iter().any(|c| lacks(c)));
    let mut email_from_userinfo = false;
    if ask && meta.userinfo_endpoint.is_some() {
        match userinfo(&state.http, &meta, &tokens.access_token).await {
            Ok(info) if tandem_oidc::id_token::claim_with_nul(&info).is_some() => {
                trace.ok(state, "userinfo", json!({"merged": false, "why": "a userinfo claim holds the NUL character"}))
            }
            Ok(info) if info.get("sub") == claims.get("sub") => {
                email_from_userinfo = text(&claims, "email").is_none() && text(&info, "email").is_some();
                // Userinfo's `email_verified` is about userinfo's `email`: it
                // says nothing of another address the ID token carries.
                let other_email = match (text(&claims, "email"), text(&info, "email")) {
                    (Some(token), Some(info)) => !token.eq_ignore_ascii_case(&info),
                    _ => false,
                };
                // The ID token's claims win; one it sends as `null` is one it does not send.
                for (k, v) in info {
                    if other_email && k == "email_verified" {
                        continue;
                    }
                    let slot = claims.entry(k).or_insert(Value::Null);
                    if slot.is_null() {
                        *slot = v;
                    }
                }
                trace.ok(state, "userinfo", json!({"merged": true}));
            }
            Ok(_) => {
                trace.ok(state, "userinfo", json!({"merged": false, "why": "userinfo sub differs from the ID token's"}))
            }
            Err(why) => trace.ok(state, "userinfo", json!({"merged": false, "why": why})),
        }
    }
    Ok((claims, email_from_userinfo, step_up))
}

/// The email allowlist's refusal of `email`, if any. No allowlist passes
/// every email; an email the IdP marks unverified passes none, as anyone
/// may claim an address they do not control and its domain proves nothing.
pub(crate) fn allowlist_refusal(
    (idp_type, issuer): (IdpType, &str),
    domains: &[String],
    email: Option<&str>,
    verified: Option<bool>,
) -> Option<ApiError> {
    if domains.is_empty() {
        return None;
    }
    let domain = email.and_then(|e| e.rsplit_once('@')).map(|(_, d)| d.to_ascii_lowercase());
    let (message, mut details) = match &domain {
        Some(_) if verified == Some(false) => {
            let (unverified, remedy) =
                crate::login::join::unverified_email(idp_type, issuer, email.unwrap_or_default());
            (
                format!("{unverified}, so its domain cannot pass this client's email_domain_allowlist. {remedy}"),
                json!({"email_verified": false}),
            )
        }
        Some(d) if domains.contains(d) => return None,
        Some(d) => (format!("the email domain {d:?} is not in this client's email_domain_allowlist"), json!({})),
        None => (
            "the IdP sent no email (or one without a domain), so this client's email_domain_allowlist cannot pass \
             the login; have the IdP send the user's email (Entra: the email optional claim, or a mailbox)"
                .to_string(),
            json!({}),
        ),
    };
    details["email"] = json!(email);
    details["allowed_domains"] = json!(domains);
    Some(ApiError::new(StatusCode::FORBIDDEN, "LoginBlockedByEmailAllowlist", message).with_details(details))
}

/// At Google, an email domain proves no membership of a Workspace: a
/// consumer Google account may be made for any address its owner could
/// once read (an employee's, kept after they left), and its email is
/// verified. Google's `hd` claim names the Workspace domain of the account
/// (absent for consumer accounts), so with an allowlist a Google login
/// must carry an `hd` it lists (Google's own advice for restricting sign-in
/// to a Workspace).
fn google_hosted_domain_refusal(issuer: &str, domains: &[String], claims: &Map<String, Value>) -> Option<ApiError> {
    if domains.is_empty() || !tandem_core::idp::is_google_issuer(issuer) {
        return None;
    }
    let hd = claims.get("hd").and_then(Value::as_str).map(str::to_ascii_lowercase);
    if hd.as_ref().is_some_and(|d| domains.contains(d)) {
        return None;
    }
    let message = match &hd {
        Some(d) => format!("the Google account belongs to the Workspace domain {d:?} (hd), which is not in this client's email_domain_allowlist"),
        None => "the Google account is not a Google Workspace account (no hd claim): with an email_domain_allowlist, only Workspace accounts of a listed domain may sign in".to_string(),
    };
    let details = json!({"hd": hd, "email": claims.get("email"), "allowed_domains": domains});
    Some(ApiError::new(StatusCode::FORBIDDEN, "LoginBlockedByEmailAllowlist", message).with_details(details))
}

/// Why a Google account's email may not identify a user in the SCIM join,
/// if it may not: a consumer account (no `hd` claim) may be made for any
/// address its owner could once read (an employee's, kept after they left,
/// or a reassigned one), and Google marks its email verified. A Workspace
/// account's email is on a domain its organisation verified.
fn google_email_doubt(issuer: &str, claims: &Map<String, Value>) -> Option<String> {
    let hd = claims.get("hd").and_then(Value::as_str).filter(|d| !d.is_empty());
    if !tandem_core::idp::is_google_issuer(issuer) || hd.is_some() {
        return None;
    }
    Some(
        "the Google account is a consumer account (no hd claim), and at Google an email proves no membership of a \
         Workspace: a consumer account can be made for any address its owner could once read, so an email strategy \
         does not join it. Sign in with the Workspace account, or match on OidcSubToScimExternalId"
            .to_string(),
    )
}

/// The refusal of a callback whose `iss` is not the login's issuer (RFC 9207).
fn issuer_mismatch(iss: Option<&str>, issuer: &str) -> ApiError {
    let message = match iss {
        Some(iss) => format!("the callback's iss parameter {iss:?} is not the issuer {issuer:?} (RFC 9207)"),
        None => format!("the callback has no iss parameter, which the issuer {issuer:?} advertises sending (RFC 9207)"),
    };
    idp(StatusCode::BAD_REQUEST, "IssuerMismatch", message, json!({}))
}

/// What an `email_verified` claim says: a boolean, or the strings `"true"` /
/// `"false"` some IdPs send. Absent or `null` says nothing (`None`); any
/// other value is not a clear yes, so it is read as unverified rather than
/// taken at its word.
fn email_verified(claim: Option<&Value>) -> Option<bool> {
    match claim {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(true),
        Some(_) => Some(false),
    }
}

/// Whether the login's email is verified, as the IdP says it: Entra ID's
/// way for an Entra client, and for a client of another type on Microsoft's
/// hosts (Entra's emails are no more verified for the type an admin chose).
fn email_verified_of(
    idp_type: IdpType,
    issuer: &str,
    claims: &Map<String, Value>,
    email_from_userinfo: bool,
) -> Option<bool> {
    match tandem_core::idp::reads_emails_as_entra(idp_type, issuer) {
        true => entra_email_verified(claims, email_from_userinfo),
        false => email_verified(claims.get("email_verified")),
    }
}

/// What an Entra ID login says of its email. Entra sends no
/// `email_verified`; its optional claim `xms_edov` says whether the
/// tenant verified the email's domain (a tenant may set any `mail` on its
/// users, a victim's address included: "nOAuth"). And since 2023 Entra
/// leaves out of a multi-tenant app's ID tokens an email on a domain the
/// tenant has not verified, which its userinfo endpoint still answers
/// with: an email that came only from userinfo is one Entra withheld, or
/// one it would not vouch for, so it counts as unverified.
fn entra_email_verified(claims: &Map<String, Value>, email_from_userinfo: bool) -> Option<bool> {
    if email_from_userinfo {
        return Some(false);
    }
    match claims.get("xms_edov") {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) if s == "1" || s.eq_ignore_ascii_case("true") => Some(true),
        Some(Value::String(s)) if s == "0" || s.eq_ignore_ascii_case("false") => Some(false),
        Some(Value::Number(n)) => Some(n.as_i64() == Some(1)),
        // Not a clear yes, as for `email_verified`.
        Some(v) if !v.is_null() => Some(false),
        _ => email_verified(claims.get("email_verified")),
    }
}

/// The longest OIDC user id accepted, in bytes (OpenID Connect Core §2).
const MAX_USER_ID_BYTES: usize = 255;

fn text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    claims.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
}

async fn respond(
    state: &AppState,
    trace: &mut Trace,
    client: &OidcClientRow,
    redirect: Option<String>,
    claims: Map<String, Value>,
    email_from_userinfo: bool,
) -> Result<Value, Failure> {
    let idp_type = client.idp_type().map_err(ApiError::from)?;
    let Some(oidc_user_id) = idp_type.oidc_user_id(&claims) else {
        let err = idp(
            StatusCode::BAD_GATEWAY,
            "InvalidIdToken",
            "the ID token has no user id (sub/oid)",
            json!({"check": "sub"}),
        );
        return Err(at(state, trace, "id_token", err));
    };
    // OpenID Connect Core §2: a `sub` is at most 255 ASCII characters (an
    // Entra `oid` is a GUID). A longer one could not be indexed on PostgreSQL.
    if oidc_user_id.len() > MAX_USER_ID_BYTES {
        let err = idp(
            StatusCode::BAD_GATEWAY,
            "InvalidIdToken",
            format!(
                "the ID token's user id (sub/oid) is {} bytes long; OpenID Connect allows at most {MAX_USER_ID_BYTES}",
                oidc_user_id.len()
            ),
            json!({"check": "sub"}),
        );
        return Err(at(state, trace, "id_token", err));
    }
    let email = text(&claims, "email");
    let email_verified = email_verified_of(idp_type, &client.issuer, &claims, email_from_userinfo);
    let verified_for_join = state.settings.email_verified_for_join(email_verified, client.accept_unverified_email);
    // AD FS sends the user's UPN as `upn`, and no preferred_username.
    let preferred_username = text(&claims, "preferred_username").or_else(|| text(&claims, "upn"));
    trace.event.oidc_user_id = Some(oidc_user_id.clone());
    trace.event.email = email.clone();
    let now = tandem_store::micros(state.clock.now());
    let seen = SsoUser {
        id: tandem_core::new_id(),
        oidc_client_id: client.id.clone(),
        oidc_user_id: oidc_user_id.clone(),
        email: email.clone(),
        email_verified,
        preferred_username: preferred_username.clone(),
        given_name: text(&claims, "given_name"),
        family_name: text(&claims, "family_name"),
        claims: serde_json::to_string(&claims).unwrap_or_else(|_| String::from("{}")),
        first_login_at: now,
        last_login_at: now,
        login_count: 1,
    };

    // The email allowlist is checked before the join; the SSO user is recorded either way.
    let domains = client.domains();
    let blocked = allowlist_refusal((idp_type, &client.issuer), &domains, email.as_deref(), verified_for_join)
        .or_else(|| google_hosted_domain_refusal(&client.issuer, &domains, &claims));
    let email_doubt = google_email_doubt(&client.issuer, &claims);

    // The join reads; the SSO user and the login event are written behind
    // the answer (see [`Trace::record_end`]).
    let verdict = match blocked {
        Some(err) => Err(("email_allowlist", err)),
        None => {
            let (st, client_row) = (state.clone(), client.clone());
            let (pu, id_for_join, email_for_join) = (preferred_username.clone(), oidc_user_id.clone(), email.clone());
            let joined = state
                .store
                .read_warm(move |c| {
                    let attrs = SsoAttributes {
                        oidc_user_id: Some(&id_for_join),
                        email: email_for_join.as_deref(),
                        preferred_username: pu.as_deref(),
                        email_verified: verified_for_join,
                    };
                    join(c, &st, &client_row, &attrs, email_doubt.as_deref())
                })
                .await
                .map_err(ApiError::from)?;
            joined.map_err(|e| ("scim_join", e))
        }
    };
    match &verdict {
        Ok(joined) => {
            trace.ok(state, "scim_join", joined.detail.clone());
            trace.event.outcome = "success".into();
            trace.event.scim_user_id = joined.scim_user_id.clone();
        }
        Err((step, err)) => trace.failed(state, step, err),
    }
    let saved = trace.record_end(state, Some(seen)).await;
    let joined = verdict.map_err(|(_, error)| Failure { error, saved })?;
    let mut body = json!({
        "customer_id": client.customer_id,
        "oidc_client_id": client.id,
        "oidc_user_id": oidc_user_id,
        "email": email,
        "email_verified": email_verified,
        "preferred_username": preferred_username,
        "given_name": text(&claims, "given_name"),
        "family_name": text(&claims, "family_name"),
        "post_login_redirect_url": redirect,
        // Named when it is queued or stored (a failure to store it is logged).
        "login_event_id": saved.then(|| trace.id()),
    });
    // Moved in: `json!` would serialise the claims and the SCIM user into copies.
    body["claims"] = Value::Object(claims);
    body["scim_user"] = joined.scim_user.unwrap_or(Value::Null);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn only_a_clear_yes_is_a_verified_email() {
        let read = |v: Value| email_verified(Some(&v));
        assert_eq!(email_verified(None), None);
        assert_eq!(read(Value::Null), None);
        assert_eq!((read(json!(true)), read(json!("TRUE"))), (Some(true), Some(true)));
        for unclear in
            [json!(false), json!("false"), json!(0), json!(1), json!("no"), json!("yes"), json!([true]), json!({})]
        {
            assert_eq!(read(unclear.clone()), Some(false), "{unclear}");
        }
    }

    #[test]
    fn a_refusal_of_an_entra_email_says_entras_remedy_whatever_the_clients_type() {
        let entra = "https://login.microsoftonline.com/3f2a6c1e-8b4d-4e2a-9c7f-1a2b3c4d5e6f/v2.0";
        for idp_type in [IdpType::MicrosoftEntra, IdpType::Generic] {
            let (said, remedy) = crate::login::join::unverified_email(idp_type, entra, "eve@acme.com");
            assert!(said.contains("Entra does not vouch") && remedy.contains("xms_edov"), "{idp_type:?}: {said}");
        }
        let (said, remedy) = crate::login::join::unverified_email(IdpType::Generic, "https://idp.example", "e@a.com");
        assert!(said.contains("email_verified: false") && remedy.contains("Keycloak"), "{said}");
    }

    #[test]
    fn an_entra_email_is_read_entras_way_whatever_the_clients_type() {
        let entra = "https://login.microsoftonline.com/3f2a6c1e-8b4d-4e2a-9c7f-1a2b3c4d5e6f/v2.0";
        let told = claims(json!({"email": "eve@acme.com", "email_verified": true, "xms_edov": false}));
        for idp_type in [IdpType::MicrosoftEntra, IdpType::Generic, IdpType::Okta] {
            assert_eq!(email_verified_of(idp_type, entra, &told, false), Some(false), "{idp_type:?}");
            let plain = claims(json!({"email": "eve@acme.com"}));
            assert_eq!(email_verified_of(idp_type, entra, &plain, true), Some(false), "{idp_type:?}: from userinfo");
        }
        assert_eq!(email_verified_of(IdpType::Generic, "https://idp.example", &told, false), Some(true));
        let plain = claims(json!({"email": "eve@acme.com"}));
        assert_eq!(email_verified_of(IdpType::Generic, "https://idp.example", &plain, true), None);
    }

    #[test]
    fn a_google_login_passes_an_allowlist_only_as_a_workspace_account_of_a_listed_domain() {
        let acme = vec!["acme.com".to_string()];
        let refused = |issuer: &str, domains: &[String], c: Value| {
            google_hosted_domain_refusal(issuer, domains, &claims(c)).map(|e| e.to_string())
        };
        let consumer = json!({"email": "bob@acme.com", "email_verified": true});
        let err = refused("https://accounts.google.com", &acme, consumer.clone()).unwrap();
        assert!(err.contains("not a Google Workspace account"), "{err}");
        let other =
            refused("https://accounts.google.com/", &acme, json!({"email": "bob@acme.com", "hd": "evil.example"}));
        assert!(other.unwrap().contains("evil.example"));
        assert!(
            refused("https://accounts.google.com", &acme, json!({"email": "bob@acme.com", "hd": "ACME.com"})).is_none()
        );
        // No allowlist, or another IdP: no hd rule.
        assert!(refused("https://accounts.google.com", &[], consumer.clone()).is_none());
        assert!(refused("https://acme.okta.com", &acme, consumer).is_none());
    }

    #[test]
    fn a_google_consumer_accounts_email_is_doubted_for_the_join_and_a_workspace_accounts_is_not() {
        let consumer = claims(json!({"email": "eve@acme.com", "email_verified": true}));
        let doubt = google_email_doubt("https://accounts.google.com/", &consumer).unwrap();
        assert!(doubt.contains("consumer account (no hd claim)"), "{doubt}");
        assert!(google_email_doubt("https://accounts.google.com", &claims(json!({"email": "e@acme.com", "hd": ""})))
            .is_some());
        let workspace = claims(json!({"email": "eve@acme.com", "email_verified": true, "hd": "acme.com"}));
        assert_eq!(google_email_doubt("https://accounts.google.com", &workspace), None);
        assert_eq!(google_email_doubt("https://acme.okta.com", &consumer), None);
    }
}
