//! `POST /api/v1/sso/login/complete` `{state_from_cookie, callback_path_and_query}`
//! → the SSO identity joined to its SCIM user, or a precise error.

use super::errors::{idp, invalid_state};
use super::join::join;
use super::trace::Trace;
use crate::auth::Caller;
use crate::body;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};
use tandem_core::fields::FieldReader;
use tandem_core::keys::hash_key;
use tandem_core::login::{explain_idp_error, parse_callback, Callback};
use tandem_core::matching::SsoAttributes;
use tandem_oidc::flow::{exchange_code, userinfo, ClientConfig, FlowError};
use tandem_oidc::id_token::{validate, Expectations};
use tandem_store::oidc_clients::{self, OidcClientRow};
use tandem_store::sso::{self, LoginTransaction, SsoUser};

/// `POST /api/v1/sso/login/complete`
pub async fn complete(
    state: web::Data<AppState>,
    _caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = body::json(payload, state.settings.max_body_bytes).await?;
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

    let Some(oauth_state) = callback.param("state").filter(|s| !s.is_empty()) else {
        return Err(invalid_state("missing", "the callback has no state parameter"));
    };
    let state_hash = hash_key(oauth_state);
    let found = state.store.read(move |c| sso::find_transaction(c, &state_hash)).await?;
    let Some(tx) = found else {
        return Err(invalid_state("unknown", "the callback's state belongs to no login started here"));
    };
    let event_id = tx.login_event_id.clone();
    let event = state.store.read(move |c| sso::get_event(c, &event_id)).await?;
    let mut trace = match event {
        Some(e) => Trace::resume(e),
        None => Trace::new(&state, None),
    };
    trace.ok(&state, "callback", json!({"path": callback.path, "has_code": callback.param("code").is_some(), "has_error": callback.param("error").is_some()}));
    let result = finish(&state, &mut trace, &tx, &callback, cookie.as_deref()).await;
    if let Err(err) = &result {
        let step = trace.event.failed_step.clone().unwrap_or_else(|| "complete".into());
        if trace.event.outcome != "failed" {
            trace.failed(&state, &step, err);
        }
    }
    let event_id = trace.id().to_string();
    trace.save(&state).await;
    result.map(|body| HttpResponse::Ok().json(body)).map_err(|mut e| {
        if let Some(d) = e.details.as_object_mut() {
            d.insert("login_event_id".into(), json!(event_id));
        }
        e
    })
}

/// Fails the trace at `step` with `err`.
fn at(state: &AppState, trace: &mut Trace, step: &str, err: ApiError) -> ApiError {
    trace.failed(state, step, &err);
    err
}

async fn finish(
    state: &AppState,
    trace: &mut Trace,
    tx: &LoginTransaction,
    cb: &Callback,
    cookie: Option<&str>,
) -> Result<Value, ApiError> {
    let now = state.clock.now();
    // The binding to the browser that started the login.
    if tx.consumed_at.is_some() {
        return Err(at(
            state,
            trace,
            "state",
            invalid_state("reused", "this login was already completed; start a new one"),
        ));
    }
    if tandem_store::micros(now) > tx.expires_at {
        return Err(at(state, trace, "state", invalid_state("expired", "this login expired; start a new one")));
    }
    let cookie_ok = cookie.is_some_and(|c| !c.is_empty() && hash_key(c) == tx.cookie_hash);
    if !cookie_ok {
        return Err(at(
            state,
            trace,
            "state",
            invalid_state(
                "not_bound",
                "the state cookie does not belong to this login (missing, or from another browser)",
            ),
        ));
    }
    let tx_id = tx.id.clone();
    if !state.store.write(move |c| sso::consume_transaction(c, &tx_id, now)).await? {
        return Err(at(
            state,
            trace,
            "state",
            invalid_state("reused", "this login was already completed; start a new one"),
        ));
    }
    trace.ok(state, "state", json!({"bound": true}));

    let client_id = tx.oidc_client_id.clone();
    let client = state
        .store
        .read(move |c| oidc_clients::get(c, &client_id))
        .await?
        .ok_or_else(|| ApiError::not_found("ClientNotFound", "the OIDC client of this login was deleted"))?;
    let expected_path = url::Url::parse(&client.redirect_url).map(|u| u.path().to_string()).unwrap_or_default();
    if cb.path != expected_path {
        return Err(at(
            state,
            trace,
            "callback",
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "RedirectUrlInvalid",
                format!("the callback path {:?} is not this client's redirect_url path {expected_path:?}", cb.path),
            ),
        ));
    }

    if let Some(error) = cb.param("error") {
        let description = cb.param("error_description");
        let explanation = explain_idp_error(error, description);
        let message = match (description, explanation) {
            (_, Some(why)) => why.to_string(),
            (Some(d), None) => format!("the IdP returned {error}: {d}"),
            (None, None) => format!("the IdP returned {error}"),
        };
        return Err(at(
            state,
            trace,
            "idp_response",
            idp(
                StatusCode::BAD_REQUEST,
                "IdpReturnedError",
                message,
                json!({
                    "error": error, "error_description": description, "error_uri": cb.param("error_uri"), "explanation": explanation,
                }),
            ),
        ));
    }
    let Some(code) = cb.param("code").filter(|c| !c.is_empty()) else {
        return Err(at(
            state,
            trace,
            "idp_response",
            idp(StatusCode::BAD_REQUEST, "NoCodeProvidedByIdp", "the IdP redirected back without a code", json!({})),
        ));
    };

    let (meta, keys) = state.idp_cache.get(&state.http, &client.issuer).await.map_err(|e| {
        at(
            state,
            trace,
            "discovery",
            idp(StatusCode::BAD_GATEWAY, "DiscoveryFailed", e.to_string(), json!({"url": e.url, "reason": e.reason})),
        )
    })?;
    // RFC 9207: an IdP that says it sends `iss` must send its own (mix-up defence).
    if meta.authorization_response_iss_parameter_supported
        && cb.param("iss").map(|i| i.trim_end_matches('/')) != Some(client.issuer.trim_end_matches('/'))
    {
        return Err(at(
            state,
            trace,
            "idp_response",
            idp(
                StatusCode::BAD_REQUEST,
                "IssuerMismatch",
                format!(
                    "the callback's iss parameter {:?} is not the issuer {:?} (RFC 9207)",
                    cb.param("iss"),
                    client.issuer
                ),
                json!({}),
            ),
        ));
    }
    trace.ok(state, "idp_response", json!({"iss_checked": meta.authorization_response_iss_parameter_supported}));

    let secret = client.client_secret(&state.secret_key)?;
    let scopes = client.scopes();
    let cfg = ClientConfig {
        client_id: &client.client_id,
        client_secret: secret.as_ref().map(|s| s.0.as_str()),
        redirect_url: &client.redirect_url,
        uses_pkce: client.uses_pkce,
        additional_scopes: &scopes,
    };
    let verifier = match &tx.pkce_verifier_enc {
        Some(enc) => Some(
            state
                .secret_key
                .decrypt(enc, &sso::verifier_context(&tx.id))
                .map_err(|e| ApiError::from(tandem_store::StoreError::Corrupt(e.to_string())))?
                .0,
        ),
        None => None,
    };
    let tokens = exchange_code(&state.http, &meta, &cfg, code, verifier).await.map_err(|e| {
        let err = match &e {
            FlowError::InvalidClient(d) => idp(StatusCode::BAD_GATEWAY, "InvalidClientCredentials",
                format!("{e}. Rotate the client secret at the IdP and update the OIDC client."),
                json!({"error_description": d, "explanation": d.as_deref().and_then(|d| explain_idp_error("invalid_client", Some(d)))})),
            FlowError::Transport(_) => idp(StatusCode::BAD_GATEWAY, "ErrorCommunicatingWithIdp", e.to_string(), json!({"url": meta.token_endpoint})),
            FlowError::Refused { error, description } => idp(StatusCode::BAD_GATEWAY, "UnableToExchangeCodeForToken", e.to_string(),
                json!({"error": error, "error_description": description, "explanation": explain_idp_error(error, description.as_deref())})),
            _ => idp(StatusCode::BAD_GATEWAY, "UnableToExchangeCodeForToken", e.to_string(), json!({})),
        };
        at(state, trace, "token_exchange", err)
    })?;
    trace.ok(state, "token_exchange", json!({"token_endpoint": meta.token_endpoint}));

    let expect = Expectations {
        issuer: &client.issuer,
        client_id: &client.client_id,
        nonce: &tx.nonce,
        advertised_algs: &meta.id_token_signing_alg_values_supported,
        now: state.clock.now(),
    };
    let mut claims = validate(&state.http, &keys, &tokens.id_token, &expect).await.map_err(|e| {
        at(
            state,
            trace,
            "id_token",
            idp(StatusCode::BAD_GATEWAY, "InvalidIdToken", e.to_string(), json!({"check": e.check})),
        )
    })?;
    trace.ok(state, "id_token", json!({"sub": claims.get("sub")}));

    if claims.get("email").and_then(Value::as_str).is_none() && meta.userinfo_endpoint.is_some() {
        match userinfo(&state.http, &meta, &tokens.access_token).await {
            Ok(info) if info.get("sub") == claims.get("sub") => {
                for (k, v) in info {
                    claims.entry(k).or_insert(v);
                }
                trace.ok(state, "userinfo", json!({"merged": true}));
            }
            Ok(_) => {
                trace.ok(state, "userinfo", json!({"merged": false, "why": "userinfo sub differs from the ID token's"}))
            }
            Err(why) => trace.ok(state, "userinfo", json!({"merged": false, "why": why})),
        }
    }

    respond(state, trace, &client, tx, claims).await
}

fn text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    claims.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
}

async fn respond(
    state: &AppState,
    trace: &mut Trace,
    client: &OidcClientRow,
    tx: &LoginTransaction,
    claims: Map<String, Value>,
) -> Result<Value, ApiError> {
    let idp_type = client.idp_type()?;
    let oidc_user_id = idp_type.oidc_user_id(&claims).ok_or_else(|| {
        at(
            state,
            trace,
            "id_token",
            idp(
                StatusCode::BAD_GATEWAY,
                "InvalidIdToken",
                "the ID token has no user id (sub/oid)",
                json!({"check": "sub"}),
            ),
        )
    })?;
    let email = text(&claims, "email");
    let email_verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) => Some(s.eq_ignore_ascii_case("true")),
        _ => None,
    };
    let preferred_username = text(&claims, "preferred_username");
    let given_name = text(&claims, "given_name");
    let family_name = text(&claims, "family_name");
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
        given_name: given_name.clone(),
        family_name: family_name.clone(),
        claims: Value::Object(claims.clone()).to_string(),
        first_login_at: now,
        last_login_at: now,
        login_count: 1,
    };
    state.store.write(move |c| sso::record_sso_user(c, &seen)).await?;

    let domains = client.domains();
    if !domains.is_empty() {
        let domain = email.as_deref().and_then(|e| e.rsplit_once('@')).map(|(_, d)| d.to_ascii_lowercase());
        if !domain.as_ref().is_some_and(|d| domains.contains(d)) {
            return Err(at(
                state,
                trace,
                "email_allowlist",
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "LoginBlockedByEmailAllowlist",
                    format!(
                        "the email domain {:?} is not in this client's email_domain_allowlist",
                        domain.unwrap_or_default()
                    ),
                )
                .with_details(json!({"email": email, "allowed_domains": domains})),
            ));
        }
    }

    let sso = SsoAttributes {
        oidc_user_id: Some(&oidc_user_id),
        email: email.as_deref(),
        preferred_username: preferred_username.as_deref(),
    };
    let joined = join(state, client, &sso).await.map_err(|e| at(state, trace, "scim_join", e))?;
    trace.ok(state, "scim_join", joined.detail.clone());
    trace.event.outcome = "success".into();
    trace.event.scim_user_id = joined.scim_user_id.clone();
    Ok(json!({
        "customer_id": client.customer_id,
        "oidc_client_id": client.id,
        "oidc_user_id": oidc_user_id,
        "email": email,
        "email_verified": email_verified,
        "preferred_username": preferred_username,
        "given_name": given_name,
        "family_name": family_name,
        "claims": claims,
        "scim_user": joined.scim_user,
        "post_login_redirect_url": tx.post_login_redirect_url,
        "login_event_id": trace.id(),
    }))
}
