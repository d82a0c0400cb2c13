//! Self-serve setup at `/setup/{token}`: the page a customer's IT admin
//! opens from a setup link the app made (`POST /api/v1/setup-links`) to
//! set up the customer's own IdP in Tandem, without an integration key:
//! the sign-in (OIDC) client's IdP and credentials, and the SCIM endpoint
//! with its token. The link's token is the credential, for that customer
//! only, until the link expires or is revoked; what a page sends goes
//! through the management API's own code, audited as `setup_link:{id}`.
//!
//! Server-rendered HTML with the dashboard's stylesheet and security
//! headers (no JavaScript, a strict Content-Security-Policy, no referrer,
//! no caching). The token travels in the path, so forms need no CSRF token
//! of their own (a page elsewhere cannot name it), the request span shows
//! the path without it (see [`crate::span`]), and with an admin listener
//! the main one serves these pages, since the customer's admin is outside.
//! What the app decides stays out of reach: the customer ID, the redirect
//! URL, the matching strategy, whether logins need a SCIM user.

use crate::api::{oidc_clients, scim_connections};
use crate::auth::Caller;
use crate::dashboard::layout::{html_response, STYLESHEET};
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use maud::{html, Markup, DOCTYPE};
use serde_json::{json, Value};
use std::collections::HashMap;
use tandem_core::format_time;
use tandem_core::keys::KeyKind;
use tandem_store::from_micros;
use tandem_store::oidc_clients::OidcClientRow;
use tandem_store::scim_connections::{ScimApiKeyRow, ScimConnectionRow};
use tandem_store::setup_links::{self as repo, SetupLinkRow};

/// Registers the setup pages.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/setup/assets/setup.css", web::get().to(stylesheet))
        .route("/setup/{token}", web::get().to(page_handler))
        .route("/setup/{token}/oidc", web::post().to(save_oidc))
        .route("/setup/{token}/scim", web::post().to(save_scim));
}

/// `GET /setup/assets/setup.css`: the dashboard's stylesheet, here so that
/// the main listener serves it beside the pages.
async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(STYLESHEET)
}

fn shell(status: StatusCode, title: &str, body: Markup) -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) " · Tandem" }
                link rel="stylesheet" href="/setup/assets/setup.css";
            }
            body {
                header { span.brand { "Tandem single sign-on setup" } }
                main { (body) }
            }
        }
    };
    html_response(status, markup.into_string())
}

/// The page for a link that does not work, whatever the reason (no oracle
/// for which tokens existed).
fn not_working() -> HttpResponse {
    shell(
        StatusCode::NOT_FOUND,
        "Setup link not valid",
        html! {
            h1 { "This setup link does not work" }
            p { "It may have expired or been revoked, or the address may be incomplete. \
                 Ask whoever sent it to you for a new one." }
        },
    )
}

fn unavailable(err: &ApiError) -> HttpResponse {
    tracing::error!(kind = err.kind, error = %err.message, "setup page failed");
    shell(err.status, "Unavailable", html! { h1 { "Something went wrong" } p { (err.message) } p { "Retry shortly." } })
}

/// The live link a path's token opens, its use recorded (at most once a minute).
async fn open(state: &AppState, token: &str) -> Result<Option<SetupLinkRow>, ApiError> {
    if !token.starts_with(KeyKind::SetupLink.prefix()) || token.len() > 128 {
        return Ok(None);
    }
    let now = state.clock.now();
    let presented = token.to_string();
    let link = state.store.read(move |c| repo::find_active(c, &presented, now)).await?;
    if let Some(l) = link.as_ref().filter(|l| l.use_due(now)) {
        let id = l.id.clone();
        if let Err(e) = state.store.write(move |c| repo::record_use(c, &id, now)).await {
            tracing::warn!(error = %e, "could not record a setup link's use");
        }
    }
    Ok(link)
}

/// [`open`], or the page to answer instead.
async fn live(state: &AppState, token: &str) -> Result<SetupLinkRow, HttpResponse> {
    match open(state, token).await {
        Ok(Some(link)) => Ok(link),
        Ok(None) => Err(not_working()),
        Err(e) => Err(unavailable(&e)),
    }
}

/// What the customer has set up so far.
struct Current {
    client: Option<OidcClientRow>,
    connection: Option<(ScimConnectionRow, Option<ScimApiKeyRow>)>,
}

async fn current(state: &AppState, customer: &str) -> Result<Current, ApiError> {
    let customer = customer.to_string();
    Ok(state
        .store
        .read(move |c| {
            let client = tandem_store::oidc_clients::get_by_customer(c, &customer)?;
            let connection = match tandem_store::scim_connections::get_by_customer(c, &customer)? {
                Some(conn) => {
                    let key = tandem_store::scim_connections::current_key(c, &conn.id)?;
                    Some((conn, key))
                }
                None => None,
            };
            Ok(Current { client, connection })
        })
        .await?)
}

/// The changes a link makes are the app's API calls, by this caller.
fn caller(link: &SetupLinkRow) -> Caller {
    let name = format!("setup_link:{}", link.id);
    Caller { key_id: name.clone(), name }
}

/// A notice above the sections.
enum Notice {
    Saved(&'static str),
    Refused(ApiError),
}

/// `GET /setup/{token}`
async fn page_handler(
    state: web::Data<AppState>,
    token: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let saved = match query.get("saved").map(String::as_str) {
        Some("oidc") => {
            Some(Notice::Saved("The sign-in settings are saved, and Tandem read your IdP's OpenID configuration."))
        }
        _ => None,
    };
    render_page(&state, &token, StatusCode::OK, saved, None).await
}

/// The page with the customer's state, a notice, and the sign-in form
/// filled from `entered` (what a refused form sent, but its secret).
async fn render_page(
    state: &AppState,
    token: &str,
    status: StatusCode,
    notice: Option<Notice>,
    entered: Option<&HashMap<String, String>>,
) -> HttpResponse {
    let link = match live(state, token).await {
        Ok(link) => link,
        Err(page) => return page,
    };
    let now = match current(state, &link.customer_id).await {
        Ok(now) => now,
        Err(e) => return unavailable(&e),
    };
    let base = format!("/setup/{token}");
    let body = html! {
        h1 { "Single sign-on for " code { (link.customer_id) } }
        p {
            "This page sets up your organisation's identity provider (Okta, Microsoft Entra ID, or any \
             OpenID Provider) for sign-in to the application that sent you this link, and the SCIM \
             endpoint your IdP provisions users to. The link works until "
            strong { (format_time(from_micros(link.expires_at))) }
            ". Anyone who has it can change these settings: do not forward it."
        }
        @match &notice {
            Some(Notice::Saved(text)) => div.notice.good { (text) },
            Some(Notice::Refused(err)) => div.notice.bad {
                strong { "Not saved: " } (err.message)
                @if let Some(reason) = err.details.get("reason").and_then(Value::as_str) {
                    br; (reason)
                }
                @if let Some(fields) = err.details.get("fields").and_then(Value::as_array).filter(|f| f.len() > 1) {
                    ul { @for f in fields {
                        li { code { (f["field"].as_str().unwrap_or_default()) } ": " (f["message"].as_str().unwrap_or_default()) }
                    } }
                }
            },
            None => {}
        }
        (oidc_section(&base, &link, now.client.as_ref(), entered))
        (scim_section(state, &base, now.connection.as_ref()))
    };
    shell(status, "Single sign-on setup", body)
}

fn oidc_section(
    base: &str,
    link: &SetupLinkRow,
    client: Option<&OidcClientRow>,
    entered: Option<&HashMap<String, String>>,
) -> Markup {
    let redirect = client.map(|c| c.redirect_url.as_str()).or(link.redirect_url.as_deref());
    let field = |name: &str, stored: Option<&str>| -> String {
        entered.and_then(|e| e.get(name)).map(String::as_str).or(stored).unwrap_or_default().to_string()
    };
    let idp_type = field("idp_type", client.map(|c| c.idp_type.as_str()));
    let issuer_stored = client
        .and_then(|c| c.issuer_override.as_deref())
        .or(client.filter(|c| c.idp_type == "Generic").map(|c| c.issuer.as_str()));
    let keys = client.is_some_and(|c| c.client_authentication == "private_key_jwt");
    html! {
        h2 { "1. Sign-in (OpenID Connect)" }
        @match redirect {
            Some(url) => p {
                "In your IdP, create an OpenID Connect web application (Okta: Applications → Create App \
                 Integration → OIDC, Web Application; Entra ID: App registrations → New registration, \
                 platform Web) with this sign-in redirect URI, and assign it the users and groups who \
                 sign in:" br; code { (url) }
            },
            None => div.notice.bad {
                "This link cannot create the sign-in application: it was made without the application's \
                 redirect URL. Ask whoever sent it for a new one."
            },
        }
        @if let Some(c) = client {
            dl {
                dt { "Identity provider" } dd { (c.idp_type) }
                dt { "Issuer" } dd { code { (c.issuer) } }
                dt { "Client ID" } dd { code { (c.client_id) } }
                dt { "Client secret" } dd {
                    @if keys { "none: the application signs in with a key (private_key_jwt)" }
                    @else if c.client_secret_enc.is_some() { "set (never shown)" } @else { "none (PKCE only)" }
                }
                dt { "OpenID configuration" } dd {
                    @if c.discovery.is_some() { "read" } @else { "not read yet" }
                }
            }
        }
        @if redirect.is_some() {
            form method="post" action=(format!("{base}/oidc")) {
                p.row {
                    label for="idp_type" { "Identity provider" }
                    select id="idp_type" name="idp_type" {
                        @for (value, text) in [("Okta", "Okta"), ("MicrosoftEntra", "Microsoft Entra ID"), ("Generic", "Another OpenID Provider")] {
                            option value=(value) selected[idp_type == value] { (text) }
                        }
                    }
                }
                p.row {
                    label for="sso_domain" { "Okta domain" }
                    input type="text" id="sso_domain" name="sso_domain" placeholder="acme.okta.com" value=(field("sso_domain", client.and_then(|c| c.sso_domain.as_deref())));
                    span.muted { "Okta only" }
                }
                p.row {
                    label for="tenant_id" { "Entra tenant ID" }
                    input type="text" id="tenant_id" name="tenant_id" placeholder="00000000-0000-0000-0000-000000000000" value=(field("tenant_id", client.and_then(|c| c.tenant_id.as_deref())));
                    span.muted { "Microsoft Entra ID only" }
                }
                p.row {
                    label for="issuer" { "Issuer URL" }
                    input type="text" id="issuer" name="issuer" placeholder="https://idp.example.com" value=(field("issuer", issuer_stored));
                    span.muted { "another OpenID Provider; for Okta or Entra ID only to override the issuer (a custom authorization server)" }
                }
                p.row {
                    label for="client_id" { "Client ID" }
                    input type="text" id="client_id" name="client_id" value=(field("client_id", client.map(|c| c.client_id.as_str())));
                }
                @if !keys {
                    p.row {
                        label for="client_secret" { "Client secret" }
                        input type="password" id="client_secret" name="client_secret" autocomplete="off";
                        @if client.is_some() { span.muted { "leave empty to keep the one saved" } }
                    }
                }
                p { button.primary type="submit" { "Save and check" } }
                p.muted { "Saving reads your IdP's OpenID configuration, and is refused with the reason if it cannot." }
            }
        }
    }
}

fn scim_section(
    state: &AppState,
    base: &str,
    connection: Option<&(ScimConnectionRow, Option<ScimApiKeyRow>)>,
) -> Markup {
    html! {
        h2 { "2. Provisioning (SCIM 2.0)" }
        p {
            "Your IdP creates, updates and deactivates the application's users through this endpoint; \
             a user it deactivates or never provisioned cannot sign in. In Okta: the app's Provisioning → \
             Integration (SCIM connector base URL, unique identifier userName, authentication HTTP Header); \
             in Entra ID: an Enterprise application's Provisioning → Admin credentials (Tenant URL, Secret \
             Token, Test Connection)."
        }
        @match connection {
            Some((conn, key)) => {
                dl {
                    dt { "SCIM base URL" } dd { code { (format!("{}/scim/v2/{}", state.settings.public_url, conn.id)) } }
                    dt { "Token" } dd {
                        @match key {
                            Some(k) => { code { (k.display_prefix) "…" } " (shown once when it was made)" @if let Some(exp) = k.expires() { ", expires " (format_time(exp)) } },
                            None => "none",
                        }
                    }
                }
                form method="post" action=(format!("{base}/scim")) {
                    input type="hidden" name="action" value="rotate";
                    button type="submit" { "Make a new token" }
                    " " span.muted { "The current token keeps working for its grace period, so provisioning does not stop while you replace it." }
                }
            },
            None => form method="post" action=(format!("{base}/scim")) {
                input type="hidden" name="action" value="create";
                button.primary type="submit" { "Create the SCIM endpoint and its token" }
            },
        }
    }
}

/// `POST /setup/{token}/oidc` (form: `idp_type`, `sso_domain`, `tenant_id`,
/// `issuer`, `client_id`, `client_secret`): creates the customer's client
/// or changes its IdP settings, with discovery; back to the page, or the
/// page with the reason and what was entered (but the secret).
async fn save_oidc(
    state: web::Data<AppState>,
    token: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let link = match live(&state, &token).await {
        Ok(link) => link,
        Err(page) => return page,
    };
    let given = |name: &str| form.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut idp = serde_json::Map::new();
    idp.insert("type".into(), json!(given("idp_type").unwrap_or_default()));
    idp.insert("client_id".into(), json!(given("client_id").unwrap_or_default()));
    let type_field = match given("idp_type") {
        Some("Okta") => Some("sso_domain"),
        Some("MicrosoftEntra") => Some("tenant_id"),
        _ => None,
    };
    for name in type_field.into_iter().chain(["issuer"]) {
        if let Some(v) = given(name) {
            idp.insert(name.into(), json!(v));
        }
    }
    if let Some(secret) = form.get("client_secret").filter(|s| !s.is_empty()) {
        idp.insert("client_secret".into(), json!(secret));
    }
    let existing = match current(&state, &link.customer_id).await {
        Ok(now) => now.client,
        Err(e) => return unavailable(&e),
    };
    let outcome = match (existing, &link.redirect_url) {
        (Some(client), _) => {
            // `verify`: the IdP's configuration is read again even when the issuer stays.
            let body = json!({"idp": idp, "verify": true});
            oidc_clients::patch_from(&state, caller(&link), client.id, body).await
        }
        (None, Some(redirect)) => {
            let body = json!({"customer_id": link.customer_id, "redirect_url": redirect, "idp": idp});
            oidc_clients::create_from(&state, caller(&link), body).await
        }
        (None, None) => Err(ApiError::invalid_field(
            "redirect_url",
            "this link was made without the application's redirect URL, so it cannot create the sign-in application",
        )),
    };
    match outcome {
        Ok(_) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("/setup/{}?saved=oidc", token.as_str())))
            .insert_header(("Cache-Control", "no-store"))
            .finish(),
        Err(e) if e.status.is_server_error() => unavailable(&e),
        Err(e) => {
            let mut entered = form.into_inner();
            entered.remove("client_secret");
            render_page(&state, &token, e.status, Some(Notice::Refused(e)), Some(&entered)).await
        }
    }
}

/// `POST /setup/{token}/scim` (form: `action` = `create` or `rotate`):
/// creates the customer's SCIM connection, or makes its key anew (the
/// previous one keeps working for `scim.rotation_grace_hours`), and shows
/// the new token once.
async fn save_scim(
    state: web::Data<AppState>,
    token: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let link = match live(&state, &token).await {
        Ok(link) => link,
        Err(page) => return page,
    };
    let connection = match current(&state, &link.customer_id).await {
        Ok(now) => now.connection.map(|(c, _)| c),
        Err(e) => return unavailable(&e),
    };
    let outcome = match (form.get("action").map(String::as_str), connection) {
        (Some("create"), None) => {
            scim_connections::create_from(&state, caller(&link), json!({"customer_id": link.customer_id})).await
        }
        (Some("rotate"), Some(conn)) => scim_connections::rotate_key_of(&state, caller(&link), conn.id, None).await,
        (Some("create"), Some(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "ScimConnectionExists",
            "the SCIM endpoint exists already (made meanwhile?); make a new token instead",
        )),
        (Some("rotate"), None) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "ScimConnectionNotFound",
            "there is no SCIM endpoint yet (deleted meanwhile?); create it instead",
        )),
        _ => Err(ApiError::invalid_field("action", "must be create or rotate")),
    };
    match outcome {
        Ok(made) => {
            let body = html! {
                h1 { "Your SCIM endpoint and token" }
                div.notice.good { "Copy the token now: it is shown only this once. If it is lost, make a new one." }
                dl {
                    dt { "SCIM base URL" } dd { code { (made["scim_base_url"].as_str().unwrap_or_default()) } }
                    dt { "Token" } dd { code { (made["scim_api_key"].as_str().unwrap_or_default()) } }
                    dt { "Expires" } dd { (made["api_key_expires_at"].as_str().unwrap_or("never")) }
                }
                p { "Enter both in your IdP's provisioning settings (Okta: SCIM connector base URL and, with \
                     HTTP Header authentication, the token; Entra ID: Tenant URL and Secret Token), then test \
                     the connection." }
                p { a href=(format!("/setup/{}", token.as_str())) { "Back to the setup page" } }
            };
            shell(StatusCode::OK, "SCIM token", body)
        }
        Err(e) if e.status.is_server_error() => unavailable(&e),
        Err(e) => render_page(&state, &token, e.status, Some(Notice::Refused(e)), None).await,
    }
}
