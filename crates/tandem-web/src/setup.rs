//! Self-serve setup at `/setup/{token}`: the page a customer's IT admin
//! opens from a setup link the app made (`POST /api/v1/setup-links`) to
//! set up the customer's own IdP in Tandem, without an integration key:
//! the sign-in (OIDC) client's IdP and credentials, and the SCIM endpoint
//! with its token. The link's token is the credential, for that customer
//! only, until the link expires or is revoked; what a page sends goes
//! through the management API's own code, audited as `setup_link:{id}`,
//! held to the link's customer (a client or connection renamed away
//! meanwhile is not touched) and to issuers no other customer's client
//! has.
//!
//! Server-rendered HTML with the dashboard's stylesheet and security
//! headers (no JavaScript, a strict Content-Security-Policy, no referrer,
//! no caching). The token travels in the path, so forms need no CSRF token
//! of their own (a page elsewhere cannot name it), the request span shows
//! the path without it (see [`crate::span`]), and with an admin listener
//! the main one serves these pages, since the customer's admin is outside.
//! What the app decides stays out of reach: the customer ID, the redirect
//! URL, the matching strategy, the email domains and scopes. Links work
//! only where their holders cannot point Tandem at its own network
//! (`AppState::settings.setup_links`), and each takes at most
//! [`CHANGES_PER_WINDOW`] changes per ten minutes on a node.

use crate::api::oidc_clients::{self, LinkGuard};
use crate::api::scim_connections;
use crate::auth::Caller;
use crate::body::{Form, FormPage};
use crate::dashboard::layout::{html_response, STYLESHEET};
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup, DOCTYPE};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tandem_core::format_time;
use tandem_core::keys::KeyKind;
use tandem_store::from_micros;
use tandem_store::oidc_clients::OidcClientRow;
use tandem_store::scim_connections::{self as connections, Rotated, ScimApiKeyRow, ScimConnectionRow};
use tandem_store::setup_links::{self as repo, SetupLinkRow};

/// What the page says of a redirect path another customer's client has
/// (the API's message names that customer).
const SHARED_PATH: &str =
    "the application's redirect URL for you is another customer's too; ask the application's administrators";

/// Most changes (form posts) one link makes in [`WINDOW`] on a node: each
/// may fetch an issuer's configuration or mint a SCIM token.
pub const CHANGES_PER_WINDOW: usize = 20;
const WINDOW: Duration = Duration::from_secs(600);

/// Registers the setup pages. Another method on them answers a page, not
/// the API's JSON (which would echo the path, token and all).
pub fn routes(cfg: &mut web::ServiceConfig) {
    let form = FormPage(|req, status, text| message(site_of(req), status, "Not understood", text));
    cfg.service(
        web::resource("/setup/assets/setup.css")
            .route(web::get().to(stylesheet))
            .default_service(web::to(|req: HttpRequest| wrong_method(req, "GET"))),
    )
    .service(
        web::resource("/setup/{token}")
            .route(web::get().to(page_handler))
            .route(web::head().to(page_handler))
            .default_service(web::to(|req: HttpRequest| wrong_method(req, "GET, HEAD"))),
    )
    .service(
        web::resource("/setup/{token}/oidc")
            .app_data(form)
            .route(web::post().to(save_oidc))
            .default_service(web::to(|req: HttpRequest| wrong_method(req, "POST"))),
    )
    .service(
        web::resource("/setup/{token}/scim")
            .app_data(form)
            .route(web::post().to(save_scim))
            .default_service(web::to(|req: HttpRequest| wrong_method(req, "POST"))),
    )
    .service(
        web::resource("/setup/{token}/client-certificate.pem")
            .route(web::get().to(client_certificate))
            .default_service(web::to(|req: HttpRequest| wrong_method(req, "GET"))),
    )
    .service(web::resource("/setup/{token}/{rest:.*}").to(no_such_page));
}

/// `GET /setup/{token}/client-certificate.pem`: the current certificate of
/// the customer's `private_key_jwt` client, for the IdP (Entra ID takes it
/// under Certificates & secrets). Public by nature; behind the link since
/// only its holder needs it.
async fn client_certificate(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    let link = match live(&state, &token).await {
        Ok(link) => link,
        Err(page) => return page,
    };
    let client = match current(&state, &link.customer_id).await {
        Ok(now) => now.client.filter(OidcClientRow::uses_client_keys),
        Err(e) => return unavailable(&state, &e),
    };
    match client.map(|c| oidc_clients::client_keys(&c, &state.secret_key)) {
        Some(Ok(keys)) => HttpResponse::Ok()
            .content_type("application/x-pem-file")
            .insert_header(("Content-Disposition", "attachment; filename=\"client-certificate.pem\""))
            .insert_header(("Cache-Control", "no-store"))
            .body(keys.current().certificate_pem()),
        Some(Err(_)) => message(
            &state.settings.public_path,
            StatusCode::CONFLICT,
            "Certificate unreadable",
            "The application's key for your IdP cannot be read now; ask the application's administrators.",
        ),
        None => message(
            &state.settings.public_path,
            StatusCode::NOT_FOUND,
            "No certificate",
            "Your sign-in application does not sign in with a key.",
        ),
    }
}

/// Any other address under a link: a page, not the API's JSON 404 (which
/// would echo the path, token and all).
async fn no_such_page(state: web::Data<AppState>) -> HttpResponse {
    message(&state.settings.public_path, StatusCode::NOT_FOUND, "No such page", "Open the link you were sent again.")
}

/// `GET /setup/assets/setup.css`: the dashboard's stylesheet, here so that
/// the main listener serves it beside the pages.
async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(STYLESHEET)
}

async fn wrong_method(req: HttpRequest, allow: &'static str) -> HttpResponse {
    let mut page = message(
        site_of(&req),
        StatusCode::METHOD_NOT_ALLOWED,
        "Not here",
        "This address takes a form from the setup page; open the link you were sent again.",
    );
    page.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static(allow));
    page
}

/// The path the pages are served under (`server.public_url`'s), for a
/// request that has no [`AppState`] at hand.
pub(crate) fn site_of(req: &HttpRequest) -> &str {
    req.app_data::<web::Data<AppState>>().map_or("", |s| s.settings.public_path.as_str())
}

/// A page under `site` (`server.public_url`'s path, `""` at the root): its
/// addresses start with it, as the link handed out does, so that behind a
/// proxy serving Tandem under a path the pages' forms, links and stylesheet
/// stay under it.
fn shell(site: &str, status: StatusCode, title: &str, body: Markup) -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) " · Tandem" }
                link rel="stylesheet" href=(format!("{site}/setup/assets/setup.css"));
            }
            body {
                header { span.brand { "Tandem single sign-on setup" } }
                main { (body) }
            }
        }
    };
    html_response(status, markup.into_string())
}

pub(crate) fn message(site: &str, status: StatusCode, title: &str, text: &str) -> HttpResponse {
    shell(site, status, title, html! { h1 { (title) } p { (text) } })
}

/// The page for a link that does not work, whatever the reason (no oracle
/// for which tokens existed).
fn not_working(site: &str) -> HttpResponse {
    message(
        site,
        StatusCode::NOT_FOUND,
        "This setup link does not work",
        "It may have expired or been revoked, or the address may be incomplete. Ask whoever sent it to you for a new one.",
    )
}

fn unavailable(state: &AppState, err: &ApiError) -> HttpResponse {
    tracing::error!(kind = err.kind, error = %err.message, "setup page failed");
    message(&state.settings.public_path, err.status, "Something went wrong", &format!("{} Retry shortly.", err.message))
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

/// [`open`], or the page to answer instead (also when links are turned off).
async fn live(state: &AppState, token: &str) -> Result<SetupLinkRow, HttpResponse> {
    if !state.settings.setup_links {
        return Err(message(
            &state.settings.public_path,
            StatusCode::NOT_FOUND,
            "Setup links are turned off",
            "This server does not take setup links now. Ask whoever sent it to you.",
        ));
    }
    match open(state, token).await {
        Ok(Some(link)) => Ok(link),
        Ok(None) => Err(not_working(&state.settings.public_path)),
        Err(e) => Err(unavailable(state, &e)),
    }
}

/// Counts a change through `link`: `false` once it made
/// [`CHANGES_PER_WINDOW`] in the last [`WINDOW`] on this node.
fn allow_change(link: &str) -> bool {
    static RECENT: OnceLock<Mutex<HashMap<String, VecDeque<Instant>>>> = OnceLock::new();
    let now = Instant::now();
    let mut recent = RECENT.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    recent.retain(|_, times| {
        while times.front().is_some_and(|t| now.duration_since(*t) > WINDOW) {
            times.pop_front();
        }
        !times.is_empty()
    });
    let times = recent.entry(link.to_string()).or_default();
    if times.len() >= CHANGES_PER_WINDOW {
        return false;
    }
    times.push_back(now);
    true
}

/// [`live`] for a form that changes something, counted by [`allow_change`].
async fn changing(state: &AppState, token: &str) -> Result<SetupLinkRow, HttpResponse> {
    let link = live(state, token).await?;
    if !allow_change(&link.id) {
        return Err(too_many(&state.settings.public_path));
    }
    Ok(link)
}

fn too_many(site: &str) -> HttpResponse {
    message(
        site,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many changes",
        "This link has made many changes in the last minutes. Wait ten minutes, then open it again.",
    )
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
            let connection = match connections::get_by_customer(c, &customer)? {
                Some(conn) => {
                    let key = connections::current_key(c, &conn.id)?;
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
    Saved(&'static str, Vec<String>),
    Refused(ApiError),
}

/// `GET /setup/{token}`
async fn page_handler(
    state: web::Data<AppState>,
    token: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let saved = (query.get("saved").map(String::as_str) == Some("oidc")).then(|| {
        Notice::Saved("The sign-in settings are saved, and Tandem read your IdP's OpenID configuration.", Vec::new())
    });
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
        Err(e) => return unavailable(state, &e),
    };
    let base = format!("{}/setup/{token}", state.settings.public_path);
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
            Some(Notice::Saved(text, warnings)) => div.notice.good {
                (text)
                @if !warnings.is_empty() { ul { @for w in warnings { li { strong { "Warning: " } (w) } } } }
            },
            Some(Notice::Refused(err)) => div.notice.bad {
                strong { "Not saved: " } (err.message)
                @if let Some(reason) = err.details.get("reason").and_then(Value::as_str).filter(|r| !err.message.contains(r)) {
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
        (oidc_section(state, &base, &link, now.client.as_ref(), entered))
        (scim_section(state, &base, now.connection.as_ref()))
    };
    shell(&state.settings.public_path, status, "Single sign-on setup", body)
}

fn oidc_section(
    state: &AppState,
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
    // A Generic client's issuer, and an Okta or Entra ID client's override, are separate fields,
    // so that switching the type does not carry one IdP's issuer over to the other.
    let generic_issuer = client.filter(|c| c.idp_type == "Generic").map(|c| c.issuer.as_str());
    let override_issuer = client.filter(|c| c.idp_type != "Generic").and_then(|c| c.issuer_override.as_deref());
    let keys = client.is_some_and(|c| c.client_authentication == "private_key_jwt");
    html! {
        h2 { "1. Sign-in (OpenID Connect)" }
        @match redirect {
            Some(url) => p {
                "In your IdP, create an OpenID Connect web application (Okta: Applications → Create App \
                 Integration → OIDC, Web Application; Entra ID: App registrations → New registration, \
                 platform Web, then Certificates & secrets → New client secret) with this sign-in redirect \
                 URI, and assign it the users and groups who sign in:" br; code { (url) }
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
                    @if keys {
                        "none: the application signs in with a key (private_key_jwt); give your IdP its "
                        a href=(format!("{base}/client-certificate.pem")) { "certificate" }
                        " (Entra ID: Certificates & secrets → Upload certificate), or its public keys at "
                        code { (oidc_clients::jwks_url(state, &c.id)) }
                    }
                    @else if c.client_secret_enc.is_some() { "set (never shown)" } @else { "none (PKCE only)" }
                }
                dt { "OpenID configuration" } dd {
                    @if c.discovery.is_some() { "read" } @else { "not read yet" }
                }
            }
        }
        @if redirect.is_some() {
            form method="post" action=(format!("{base}/oidc")) {
                // The settings this page shows: a save over settings changed
                // since (another admin, another tab) is refused, not made blind.
                input type="hidden" name="version" value=(client.map(|c| c.updated_at.to_string()).unwrap_or_default());
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
                    input type="text" id="issuer" name="issuer" placeholder="https://idp.example.com" value=(field("issuer", generic_issuer));
                    span.muted { "another OpenID Provider only" }
                }
                p.row {
                    label for="issuer_override" { "Issuer override" }
                    input type="text" id="issuer_override" name="issuer_override" placeholder="https://acme.okta.com/oauth2/default" value=(field("issuer_override", override_issuer));
                    span.muted { "optional, Okta or Entra ID only: a custom authorization server, a sovereign cloud; leave empty for the usual one" }
                }
                p.row {
                    label for="client_id" { "Client ID" }
                    input type="text" id="client_id" name="client_id" value=(field("client_id", client.map(|c| c.client_id.as_str())));
                }
                @if !keys {
                    p.row {
                        label for="client_secret" { "Client secret" }
                        input type="password" id="client_secret" name="client_secret" autocomplete="off";
                        @if client.is_some() { span.muted { "leave empty to keep the one saved (a new IdP needs its own)" } }
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
    let grace = state.settings.scim_key_rotation_grace;
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
                    input type="hidden" name="current_key" value=(key.as_ref().map(|k| k.id.as_str()).unwrap_or_default());
                    @if grace > chrono::Duration::zero() {
                        button type="submit" { "Make a new token" }
                        " " span.muted { (format!("The current token keeps working for {} hours, so provisioning does not stop while you replace it.", grace.num_hours())) }
                    } @else {
                        p {
                            input type="checkbox" id="cut_off_now" name="cut_off_now" value="yes";
                            label for="cut_off_now" { "The current token stops working at once, and provisioning fails until the IdP has the new one" }
                        }
                        button type="submit" { "Make a new token" }
                    }
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
/// `issuer` (another OpenID Provider's), `issuer_override` (Okta's or Entra
/// ID's, empty to remove), `client_id`, `client_secret`): creates the
/// customer's client (a secret needed) or changes its IdP settings, with
/// discovery; back to the page, or the page with the reason (or with the
/// save's warnings) and what was entered, but the secret.
async fn save_oidc(state: web::Data<AppState>, token: web::Path<String>, form: Form) -> HttpResponse {
    let link = match changing(&state, &token).await {
        Ok(link) => link,
        Err(page) => return page,
    };
    if let Some(field) = crate::nul::in_form(&form) {
        return message(
            &state.settings.public_path,
            StatusCode::BAD_REQUEST,
            "Not understood",
            &crate::nul::in_form_message(&field),
        );
    }
    let existing = match current(&state, &link.customer_id).await {
        Ok(now) => now.client,
        Err(e) => return unavailable(&state, &e),
    };
    // Made from a page that showed other settings than there are now (a
    // form without the field is from an earlier release's page: saved).
    let shown = form.get("version").map(String::as_str);
    if shown.is_some_and(|v| v != existing.as_ref().map(|c| c.updated_at.to_string()).unwrap_or_default()) {
        let e = ApiError::new(
            StatusCode::CONFLICT,
            "SettingsChangedMeanwhile",
            "the sign-in settings changed after this page was opened (another admin, or another tab), so nothing \
             was saved: they are shown below as they are now; enter your change again if it is still needed",
        );
        return render_page(&state, &token, e.status, Some(Notice::Refused(e)), None).await;
    }
    let idp = oidc_body(&form, existing.as_ref());
    let guard = LinkGuard { customer_id: &link.customer_id };
    let outcome = match (existing, &link.redirect_url) {
        (Some(client), _) => {
            // `verify`: the IdP's configuration is read again even when the issuer stays.
            let body = json!({"idp": idp, "verify": true});
            oidc_clients::patch_from(&state, caller(&link), client.id, body, Some(&guard)).await
        }
        (None, Some(redirect)) => {
            let mut body = json!({"customer_id": link.customer_id, "redirect_url": redirect, "idp": idp});
            // The app's settings for the client, given with the link.
            for (k, v) in crate::api::setup_links::client_settings(&link) {
                body[k] = v;
            }
            if body["idp"].get("client_secret").is_none() {
                Err(refuse_without_secret(&state, &body))
            } else {
                oidc_clients::create_from(&state, caller(&link), body, Some(&guard)).await
            }
        }
        (None, None) => Err(ApiError::invalid_field(
            "redirect_url",
            "this link was made without the application's redirect URL, so it cannot create the sign-in \
             application",
        )),
    };
    match outcome {
        Ok(saved) => {
            // A shared redirect path's warning names the other customer: said without it.
            let warnings: Vec<String> = saved["warnings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|w| match w["field"].as_str() {
                    Some("redirect_url") => Some(SHARED_PATH.to_string()),
                    _ => w["message"].as_str().map(str::to_string),
                })
                .collect();
            if warnings.is_empty() {
                return HttpResponse::SeeOther()
                    .insert_header((
                        header::LOCATION,
                        format!("{}/setup/{}?saved=oidc", state.settings.public_path, token.as_str()),
                    ))
                    .insert_header(("Cache-Control", "no-store"))
                    .finish();
            }
            let notice = Notice::Saved("The sign-in settings are saved, but:", warnings);
            render_page(&state, &token, StatusCode::OK, Some(notice), None).await
        }
        Err(e) if e.status.is_server_error() => unavailable(&state, &e),
        Err(mut e) => {
            if e.kind == "RedirectUrlInUse" {
                // Its message names the other customer.
                e.message = SHARED_PATH.to_string();
            }
            let mut entered = form.0;
            entered.remove("client_secret");
            render_page(&state, &token, e.status, Some(Notice::Refused(e)), Some(&entered)).await
        }
    }
}

/// The `idp` a sign-in form asks for: the type only when it changes (so a
/// client saved before a rule the type's change would apply is still
/// saved), the type's own location field, the issuer (another OpenID
/// Provider's, or an override, `null` to remove one), the client ID, and
/// the secret when one is typed.
fn oidc_body(form: &HashMap<String, String>, existing: Option<&OidcClientRow>) -> Value {
    let given = |name: &str| form.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let kind = given("idp_type").unwrap_or_default();
    let mut idp = serde_json::Map::new();
    if existing.is_none_or(|c| c.idp_type != kind) {
        idp.insert("type".into(), json!(kind));
    }
    idp.insert("client_id".into(), json!(given("client_id").unwrap_or_default()));
    match kind {
        "Okta" | "MicrosoftEntra" => {
            let location = if kind == "Okta" { "sso_domain" } else { "tenant_id" };
            if let Some(v) = given(location) {
                idp.insert(location.into(), json!(v));
            }
            // The other type's override, left in the field on a switch, is not this type's.
            let carried = existing.is_some_and(|c| {
                c.idp_type != kind
                    && c.idp_type != "Generic"
                    && c.issuer_override.is_some()
                    && c.issuer_override.as_deref() == given("issuer_override")
            });
            let issuer = given("issuer_override").filter(|_| !carried);
            idp.insert("issuer".into(), issuer.map_or(Value::Null, |v| json!(v)));
        }
        _ => {
            if let Some(v) = given("issuer") {
                idp.insert("issuer".into(), json!(v));
            }
        }
    }
    if let Some(secret) = form.get("client_secret").filter(|s| !s.is_empty()) {
        idp.insert("client_secret".into(), json!(secret));
    }
    Value::Object(idp)
}

/// A create without a client secret, refused with every bad field: a
/// link makes confidential clients only (the IdP apps its page describes
/// have a secret, and a public one would fail every login at the IdP).
fn refuse_without_secret(state: &AppState, body: &Value) -> ApiError {
    let mut errors = tandem_core::oidc_client::parse_create(body, state.settings.url_policy).err().unwrap_or_default();
    errors.push(tandem_core::fields::FieldError {
        field: "idp.client_secret".into(),
        message: "is required: the client secret your IdP made for the web application".into(),
    });
    ApiError::invalid_fields(errors)
}

/// `POST /setup/{token}/scim` (form: `action` = `create`, or `rotate` with
/// `current_key`, the key the page showed, and `cut_off_now` = `yes` when
/// no grace is configured): creates the customer's SCIM connection, or
/// makes its key anew (the previous one keeps working for
/// `scim.rotation_grace_hours`; a form whose key was replaced meanwhile, a
/// second click, replaces nothing), and shows the new token once.
async fn save_scim(state: web::Data<AppState>, token: web::Path<String>, form: Form) -> HttpResponse {
    let link = match changing(&state, &token).await {
        Ok(link) => link,
        Err(page) => return page,
    };
    if let Some(field) = crate::nul::in_form(&form) {
        return message(
            &state.settings.public_path,
            StatusCode::BAD_REQUEST,
            "Not understood",
            &crate::nul::in_form_message(&field),
        );
    }
    let outcome = match form.get("action").map(String::as_str) {
        Some("create") => {
            let body = json!({"customer_id": link.customer_id});
            match current(&state, &link.customer_id).await {
                Ok(now) if now.connection.is_some() => Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "ScimConnectionExists",
                    "the SCIM endpoint exists already (made meanwhile?); make a new token instead",
                )),
                Ok(_) => scim_connections::create_from(&state, caller(&link), body).await,
                Err(e) => Err(e),
            }
        }
        Some("rotate") => rotate(&state, &link, &form).await,
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
                p { a href=(format!("{}/setup/{}", state.settings.public_path, token.as_str())) { "Back to the setup page" } }
            };
            shell(&state.settings.public_path, StatusCode::OK, "SCIM token", body)
        }
        Err(e) if e.status.is_server_error() => unavailable(&state, &e),
        Err(e) => render_page(&state, &token, e.status, Some(Notice::Refused(e)), None).await,
    }
}

/// A new key for the link's customer's connection, in one transaction that
/// finds the connection by that customer and replaces only the key the
/// form names; audited as the API's rotation is.
async fn rotate(state: &AppState, link: &SetupLinkRow, form: &HashMap<String, String>) -> Result<Value, ApiError> {
    let grace = state.settings.scim_key_rotation_grace;
    if grace <= chrono::Duration::zero() && form.get("cut_off_now").map(String::as_str) != Some("yes") {
        return Err(ApiError::invalid_field(
            "cut_off_now",
            "no grace period is configured, so the current token would stop working at once: tick the box that \
             says so to make a new one anyway",
        ));
    }
    let replaces = form.get("current_key").cloned().unwrap_or_default();
    let (customer, actor) = (link.customer_id.clone(), caller(link).name);
    let rotated =
        scim_connections::rotate_customer_key(state, customer, replaces, (actor, "setup_link"), state.clock.now())
            .await?;
    match rotated {
        Some((id, Rotated::Done(_, plaintext))) => {
            let mut out = scim_connections::load(state, id).await?;
            out["scim_api_key"] = json!(plaintext.0);
            Ok(out)
        }
        Some((_, Rotated::NotCurrent)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "ScimKeyAlreadyReplaced",
            "the token this page was for was replaced already (a second click, or another admin's page), and a \
             new token is shown only once, to the page that made it: if nobody has the new token, open the link \
             again and make another",
        )),
        None | Some((_, Rotated::NoConnection)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "ScimConnectionNotFound",
            "there is no SCIM endpoint now (deleted meanwhile?); create it instead",
        )),
    }
}
