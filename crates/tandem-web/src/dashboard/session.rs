//! Dashboard sign-in with an integration key, the session cookie, and the
//! CSRF checks every form goes through.

use super::layout::page;
use crate::body::Form;
use crate::state::AppState;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;
use std::collections::HashMap;
use tandem_core::keys::{hash_key, random_token};
use tandem_store::dashboard_sessions::{self, Session};

const SESSION_COOKIE: &str = "tandem_dashboard";
const LOGIN_CSRF_COOKIE: &str = "tandem_dashboard_login";
const SESSION_HOURS: i64 = 8;

/// A signed-in admin.
pub struct Admin {
    pub session: Session,
    token_hash: String,
}

/// Whether cookies must be `Secure` (the deployment is served over https).
fn secure(state: &AppState) -> bool {
    state.settings.public_url.starts_with("https://")
}

/// A dashboard cookie's name. Over https it has the `__Host-` prefix, which
/// a browser accepts only from this host itself, `Secure`, without `Domain`
/// and on the path `/` (RFC 6265bis §4.1.3.2): a sibling subdomain cannot
/// plant one to shadow the admin's session or sign-in form.
fn named(state: &AppState, name: &'static str) -> &'static str {
    match (secure(state), name) {
        (true, SESSION_COOKIE) => "__Host-tandem_dashboard",
        (true, LOGIN_CSRF_COOKIE) => "__Host-tandem_dashboard_login",
        _ => name,
    }
}

/// A dashboard cookie. `SameSite=Lax`, not `Strict`: a link to a dashboard
/// page from a ticket or a chat then opens it in the admin's session instead
/// of asking for the key again. Cross-site POSTs still carry no cookie, and
/// every form is checked against the session's CSRF token besides. Over
/// plain http its path is `/dashboard`; over https `/`, as `__Host-` asks.
fn cookie(state: &AppState, name: &'static str, value: String, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build(named(state, name), value)
        .path(if secure(state) { "/" } else { "/dashboard" })
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure(state))
        .max_age(actix_web::cookie::time::Duration::seconds(max_age_secs))
        .finish()
}

/// Compares two secrets in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (hash_key(a), hash_key(b));
    a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Where a sign-in may send the admin on: a dashboard page (the one a link
/// led to before the session was there), never another site.
fn dashboard_page(next: &str) -> Option<&str> {
    let page = next == "/dashboard" || next.starts_with("/dashboard/") || next.starts_with("/dashboard?");
    (page && next.len() <= 2048 && !next.contains(['\\', '#']) && !next.chars().any(char::is_control)).then_some(next)
}

/// The signed-in admin, or the response to send instead: a redirect to the
/// sign-in page for a GET (which sends the admin back to the page after),
/// 403 for anything else.
pub async fn require(req: &HttpRequest, state: &AppState) -> Result<Admin, HttpResponse> {
    let refuse = || {
        if req.method() == actix_web::http::Method::GET {
            let asked = req.uri().path_and_query().map_or("/dashboard", |p| p.as_str());
            let location = match dashboard_page(asked).filter(|p| *p != "/dashboard") {
                Some(page) => format!("/dashboard/login?next={}", super::overview::urlencode(page)),
                None => "/dashboard/login".to_string(),
            };
            HttpResponse::SeeOther().insert_header(("Location", location)).finish()
        } else {
            super::layout::message(
                StatusCode::FORBIDDEN,
                "Not signed in",
                None,
                "Your session is missing or has expired; sign in again.",
            )
        }
    };
    let Some(token) = req.cookie(named(state, SESSION_COOKIE)).map(|c| c.value().to_string()) else {
        return Err(refuse());
    };
    let token_hash = hash_key(&token);
    let now = state.clock.now();
    let key = token_hash.clone();
    match state.store.read(move |c| dashboard_sessions::find(c, &key, now)).await {
        Ok(Some(session)) => Ok(Admin { session, token_hash }),
        Ok(None) => Err(refuse()),
        Err(e) => {
            tracing::error!(error = %e, "dashboard session lookup failed");
            Err(super::layout::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                None,
                "The database is unavailable; retry shortly.",
            ))
        }
    }
}

/// The signed-in admin for a form post whose `csrf` field must match the session's.
pub async fn require_form(
    req: &HttpRequest,
    state: &AppState,
    form: &HashMap<String, String>,
) -> Result<Admin, HttpResponse> {
    let admin = require(req, state).await?;
    match form.get("csrf") {
        Some(t) if same(t, &admin.session.csrf_token) => match crate::nul::in_form(form) {
            // PostgreSQL refuses the NUL character in text: said here, not a 500 later.
            Some(field) => Err(super::layout::message(
                StatusCode::BAD_REQUEST,
                "Not understood",
                Some(&admin),
                &crate::nul::in_form_message(&field),
            )),
            None => Ok(admin),
        },
        _ => {
            tracing::warn!(target: "audit", key = %admin.session.key_name, "dashboard form refused: CSRF token missing or wrong");
            Err(super::layout::message(
                StatusCode::FORBIDDEN,
                "Form refused",
                Some(&admin),
                "The form's security token is missing or wrong; reload the page and try again.",
            ))
        }
    }
}

/// The sign-in form. Its token is the browser's sign-in cookie's when it
/// has one (renewed for 10 minutes): a form in each of several tabs (each
/// sent to sign-in when the session ended) signs in, not only the last one
/// shown.
fn login_form(
    req: &HttpRequest,
    state: &AppState,
    error: Option<&str>,
    status: StatusCode,
    next: Option<&str>,
) -> HttpResponse {
    let held = req.cookie(named(state, LOGIN_CSRF_COOKIE)).map(|c| c.value().to_string());
    let csrf = held
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .unwrap_or_else(|| random_token(24));
    let body = html! {
        h1 { "Sign in" }
        p { "Sign in with an integration key (" code { "tandem integration-key create --name …" } ")." }
        @if let Some(e) = error { div.notice.bad role="alert" { (e) } }
        form method="post" action="/dashboard/login" {
            input type="hidden" name="csrf" value=(csrf);
            @if let Some(next) = next.and_then(dashboard_page) { input type="hidden" name="next" value=(next); }
            p.row {
                label for="key" { "Integration key" }
                input #key type="password" name="key" autocomplete="off" required;
                button.primary type="submit" { "Sign in" }
            }
        }
    };
    let mut resp = page(status, "Sign in", None, body);
    let _ = resp.add_cookie(&cookie(state, LOGIN_CSRF_COOKIE, csrf, 600));
    resp
}

/// `GET /dashboard/login[?next=/dashboard/…]`
pub async fn login_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    login_form(&req, &state, None, StatusCode::OK, query.get("next").map(String::as_str))
}

/// `POST /dashboard/login` (form: `key`, `csrf` matching the sign-in cookie)
pub async fn login(req: HttpRequest, state: web::Data<AppState>, form: Form) -> HttpResponse {
    let next = form.get("next").map(String::as_str).and_then(dashboard_page);
    let expected = req.cookie(named(&state, LOGIN_CSRF_COOKIE)).map(|c| c.value().to_string());
    let given = form.get("csrf");
    if !matches!((&expected, given), (Some(e), Some(g)) if same(e, g)) {
        // A Secure cookie is never sent back over plain http: say so, or
        // every attempt there reads as an expired form.
        let why = if expected.is_none() && secure(&state) {
            "The sign-in form expired, or its cookie was not sent back: server.public_url is https, so the \
             dashboard's cookies are Secure; open the dashboard over https."
        } else {
            "The sign-in form expired; try again."
        };
        return login_form(&req, &state, Some(why), StatusCode::FORBIDDEN, next);
    }
    let key = form.get("key").cloned().unwrap_or_default();
    let now = state.clock.now();
    let found = crate::auth::find_integration_key(&state, key.trim().to_string(), now).await;
    let key_row = match found {
        Ok(Some(k)) => k,
        Ok(None) => {
            let client = crate::span::Client::of(&req);
            tracing::warn!(target: "audit", %client, "dashboard sign-in refused: unknown or revoked integration key");
            return login_form(
                &req,
                &state,
                Some("That integration key is unknown or revoked."),
                StatusCode::UNAUTHORIZED,
                next,
            );
        }
        Err(_) => {
            return login_form(
                &req,
                &state,
                Some("The database is unavailable; retry shortly."),
                StatusCode::SERVICE_UNAVAILABLE,
                next,
            )
        }
    };
    let token = random_token(32);
    let csrf = random_token(32);
    let (hash, key_id) = (hash_key(&token), key_row.id.clone());
    let expires = now + chrono::Duration::hours(SESSION_HOURS);
    if state.store.write(move |c| dashboard_sessions::open(c, &hash, &key_id, &csrf, now, expires)).await.is_err() {
        return login_form(
            &req,
            &state,
            Some("The database is unavailable; retry shortly."),
            StatusCode::SERVICE_UNAVAILABLE,
            next,
        );
    }
    tracing::info!(target: "audit", key = %key_row.name, "dashboard sign-in");
    let mut resp = HttpResponse::SeeOther().insert_header(("Location", next.unwrap_or("/dashboard"))).finish();
    let _ = resp.add_cookie(&cookie(&state, SESSION_COOKIE, token, SESSION_HOURS * 3600));
    // The sign-in cookie stays (10 minutes at most): a form in another tab
    // still signs in.
    resp
}

/// `POST /dashboard/logout`
pub async fn logout(req: HttpRequest, state: web::Data<AppState>, form: Form) -> HttpResponse {
    let admin = match require_form(&req, &state, &form).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let hash = admin.token_hash.clone();
    // Signed out only once the session is gone: a copy of its cookie would
    // otherwise keep working until it expires.
    if let Err(e) = state.store.write(move |c| dashboard_sessions::close(c, &hash)).await {
        tracing::warn!(error = %e, "dashboard sign-out failed: the session is still open");
        return login_form(
            &req,
            &state,
            Some("The database is unavailable, so the session could not be closed; retry shortly."),
            StatusCode::SERVICE_UNAVAILABLE,
            None,
        );
    }
    let mut resp = HttpResponse::SeeOther().insert_header(("Location", "/dashboard/login")).finish();
    let _ = resp.add_cookie(&cookie(&state, SESSION_COOKIE, String::new(), 0));
    resp
}
