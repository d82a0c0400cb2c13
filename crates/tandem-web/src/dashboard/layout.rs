//! The dashboard's page shell, stylesheet and small shared pieces.

use super::session::Admin;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use maud::{html, Markup, DOCTYPE};
use tandem_core::scim_connection::KeyWarningLevel;

/// The stylesheet of the dashboard and the setup pages.
pub(crate) const STYLESHEET: &str = r#"
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg: #fff; --accent: #0a58ca; --ok: #1a7f37; --warn: #9a6700; --warn-bg: #fff8c5; --bad: #cf222e; --bad-bg: #ffebe9; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 1rem; padding: .6rem 1.5rem; border-bottom: 1px solid var(--line); }
header .brand { font-weight: 700; text-decoration: none; color: var(--fg); }
header form { margin-left: auto; }
main { max-width: 1200px; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; } h2 { font-size: 1.15rem; margin: 2rem 0 .5rem; border-bottom: 1px solid var(--line); padding-bottom: .25rem; }
a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; font-size: 14px; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; word-break: break-all; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: .5rem 0; } dt { font-weight: 600; color: var(--muted); } dd { margin: 0; }
.badge { display: inline-block; padding: 0 .5rem; border-radius: 1rem; font-size: 12px; font-weight: 600; border: 1px solid currentColor; }
.ok { color: var(--ok); } .warning { color: var(--warn); background: var(--warn-bg); } .critical, .expired, .bad { color: var(--bad); background: var(--bad-bg); }
.notice { padding: .75rem 1rem; border: 1px solid var(--line); border-left: 4px solid var(--accent); margin: 1rem 0; background: #f6f8fa; }
.notice.bad { border-left-color: var(--bad); } .notice.good { border-left-color: var(--ok); }
button, .button { font: inherit; padding: .35rem .9rem; border: 1px solid var(--line); border-radius: 6px; background: #f6f8fa; cursor: pointer; }
button.primary { background: var(--accent); color: #fff; border-color: var(--accent); }
label { font-weight: 600; margin-right: .5rem; } input[type=password], input[type=text], select { font: inherit; padding: .35rem .5rem; border: 1px solid var(--line); border-radius: 6px; min-width: 20rem; }
.row { display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; } form.inline { display: inline; }
.current { font-weight: 700; } tr.current td { background: #eef6ff; }
.muted { color: var(--muted); }
"#;

/// `GET /dashboard/assets/dashboard.css`
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(STYLESHEET)
}

/// A whole page.
pub fn page(status: StatusCode, title: &str, admin: Option<&Admin>, body: Markup) -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Tandem" }
                link rel="stylesheet" href="/dashboard/assets/dashboard.css";
            }
            body {
                header {
                    a.brand href="/dashboard" { "Tandem" }
                    @if let Some(a) = admin {
                        span.muted { "Signed in with key " strong { (a.session.key_name) } }
                        form method="post" action="/dashboard/logout" {
                            (csrf_field(a))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    };
    html_response(status, markup.into_string())
}

/// An HTML response with the dashboard's security headers.
pub fn html_response(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("Cache-Control", "no-store"))
        .body(body)
}

/// The hidden CSRF field of a form.
pub fn csrf_field(admin: &Admin) -> Markup {
    html! { input type="hidden" name="csrf" value=(admin.session.csrf_token); }
}

/// A key's warning level as a badge (text, not only colour).
pub fn key_badge(level: KeyWarningLevel) -> Markup {
    let (class, text) = match level {
        KeyWarningLevel::Ok => ("ok", "ok"),
        KeyWarningLevel::Warning => ("warning", "expires in < 30 days"),
        KeyWarningLevel::Critical => ("critical", "expires in < 7 days"),
        KeyWarningLevel::Expired => ("expired", "expired"),
    };
    html! { span class=(format!("badge {class}")) { (text) } }
}

/// A message page.
pub fn message(status: StatusCode, title: &str, admin: Option<&Admin>, text: &str) -> HttpResponse {
    page(
        status,
        title,
        admin,
        html! { h1 { (title) } p { (text) } p { a href="/dashboard" { "Back to the dashboard" } } },
    )
}

/// The answer for an unknown dashboard path; counted in the metrics under
/// `unmatched`, not under its path (anyone may send any path).
pub async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    actix_web::HttpMessage::extensions_mut(&req).insert(crate::metrics::Unmatched);
    message(StatusCode::NOT_FOUND, "Not found", None, "There is no such dashboard page.")
}

/// The page for a store failure: 503 "retry shortly" when the database is
/// unavailable or busy, and otherwise 500 saying the server log has it
/// (logged here), not a database outage that did not happen.
pub fn store_failure(err: &tandem_store::StoreError, admin: Option<&Admin>) -> HttpResponse {
    use tandem_store::StoreError;
    match err {
        StoreError::Unavailable(m) | StoreError::Busy(m) => {
            tracing::error!(error = %m, "database unavailable");
            message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                admin,
                "The database is unavailable; retry shortly.",
            )
        }
        other => {
            tracing::error!(error = %other, "storage error");
            message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                admin,
                "The page could not be made; the server log has the details.",
            )
        }
    }
}
