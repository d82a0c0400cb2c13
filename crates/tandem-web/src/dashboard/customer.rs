//! `GET /dashboard/customers/{customer_id}`: one customer's OIDC client with
//! its discovered endpoints, SCIM connection and key, the matching report
//! with a strategy preview, SCIM users and groups, the provisioning log and
//! login events with each failing step's diagnosis.

use super::layout::{csrf_field, key_badge, message, page, store_failure};
use super::overview::{effective, urlencode};
use super::session::{require, Admin};
use crate::api::matching::report;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde_json::Value;
use std::collections::HashMap;
use tandem_core::format_time;
use tandem_core::matching::MatchingStrategy;
use tandem_core::scim_connection::warning_level;
use tandem_store::from_micros;
use tandem_store::oidc_clients::{self, OidcClientRow};
use tandem_store::scim::logs::{self, LogQuery};
use tandem_store::scim::{groups, users};
use tandem_store::scim_connections::{self, ScimApiKeyRow, ScimConnectionRow};
use tandem_store::sso::{self, EventQuery};

/// `GET /dashboard/customers/{customer_id}/client-certificate.pem`: the
/// current key's certificate of a `private_key_jwt` client, to hand to the
/// customer (Entra takes it under Certificates & secrets).
pub async fn client_certificate(req: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    let admin = match require(&req, &state).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let customer = path.into_inner();
    let key = customer.clone();
    let client = match state.store.read(move |c| oidc_clients::get_by_customer(c, &key)).await {
        Ok(client) => client,
        Err(e) => return store_failure(&e, Some(&admin)),
    };
    let keys = client
        .filter(OidcClientRow::uses_client_keys)
        .map(|c| crate::api::oidc_clients::client_keys(&c, &state.secret_key));
    match keys {
        Some(Ok(keys)) => HttpResponse::Ok()
            .content_type("application/x-pem-file")
            .insert_header((
                "Content-Disposition",
                format!(
                    "attachment; filename=\"tandem-client-{}.pem\"",
                    keys.current().kid.chars().filter(char::is_ascii_alphanumeric).take(12).collect::<String>()
                ),
            ))
            .body(keys.current().certificate_pem()),
        Some(Err(_)) => message(
            StatusCode::CONFLICT,
            "Client keys unreadable",
            Some(&admin),
            "The stored client keys cannot be read: have new ones made with a PATCH naming idp.client_authentication.",
        ),
        None => message(
            StatusCode::NOT_FOUND,
            "No client keys",
            Some(&admin),
            "This customer has no OIDC client that signs with keys (private_key_jwt).",
        ),
    }
}

/// Something to show once at the top of the page.
pub enum Notice {
    Saved(String),
    /// A rotation's new key, and when the keys it replaced stop working.
    NewKey(String, chrono::DateTime<chrono::Utc>),
    /// A rotation refused: the key its form was for is no longer current.
    AlreadyRotated,
}

/// `GET /dashboard/customers/{customer_id}[?preview=Strategy]`
pub async fn page_handler(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let admin = match require(&req, &state).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    // Only a strategy's name: the link is anyone's to write, and the notice must not repeat their text.
    let notice = query
        .get("saved")
        .and_then(|s| s.parse::<tandem_core::matching::MatchingStrategy>().ok())
        .map(|s| Notice::Saved(s.as_str().to_string()));
    render(&state, &admin, &path.into_inner(), query.get("preview").map(String::as_str), notice).await
}

struct Data {
    client: Option<OidcClientRow>,
    connection: Option<(ScimConnectionRow, Option<ScimApiKeyRow>)>,
    users: Vec<users::ScimUserRow>,
    user_groups: HashMap<String, Vec<(String, String)>>,
    groups: Vec<(groups::ScimGroupRow, usize)>,
    logs: Vec<logs::ProvisioningLog>,
    events: Vec<sso::LoginEvent>,
}

/// Renders the customer page (also after a form action, with its notice).
pub async fn render(
    state: &AppState,
    admin: &Admin,
    customer: &str,
    preview: Option<&str>,
    notice: Option<Notice>,
) -> HttpResponse {
    let key = customer.to_string();
    // Log entries, login events and SSO users are written in the background; show them.
    state.flush_logs().await;
    let loaded = state
        .store
        .read(move |c| {
            let client = oidc_clients::get_by_customer(c, &key)?;
            let connection = match scim_connections::get_by_customer(c, &key)? {
                Some(conn) => {
                    let k = scim_connections::current_key(c, &conn.id)?;
                    Some((conn, k))
                }
                None => None,
            };
            let (mut us, mut ug, mut gs, mut lg) = (Vec::new(), HashMap::new(), Vec::new(), Vec::new());
            if let Some((conn, _)) = &connection {
                us = users::list(c, &conn.id, &users::UserListQuery { limit: 50, ..Default::default() })?;
                let ids: Vec<String> = us.iter().map(|u| u.id.clone()).collect();
                ug = users::groups_of(c, &ids)?;
                let grs = groups::list(c, &conn.id, None, 50, None)?;
                let gids: Vec<String> = grs.iter().map(|g| g.id.clone()).collect();
                let members = groups::members_of(c, &gids)?;
                gs = grs
                    .into_iter()
                    .map(|g| {
                        let n = members.get(&g.id).map_or(0, Vec::len);
                        (g, n)
                    })
                    .collect();
                lg = logs::list(
                    c,
                    &LogQuery { scim_connection_id: Some(conn.id.clone()), limit: 25, ..Default::default() },
                )?;
            }
            let events =
                sso::list_events(c, &EventQuery { customer_id: Some(key.clone()), limit: 25, ..Default::default() })?;
            Ok(Data { client, connection, users: us, user_groups: ug, groups: gs, logs: lg, events })
        })
        .await;
    let data = match loaded {
        Ok(data) => data,
        Err(e) => {
            // A new key committed is still shown, page or no page: it is shown only now.
            if let Some(Notice::NewKey(k, until)) = &notice {
                tracing::warn!(error = %e, "the customer page could not load after a SCIM key rotation");
                let body = html! {
                    h1 { "New SCIM API key" }
                    (new_key_notice(k, *until, state.clock.now()))
                    p { "The rest of the customer page could not be loaded; reload it later." }
                };
                return page(StatusCode::OK, "New SCIM API key", Some(admin), body);
            }
            return store_failure(&e, Some(admin));
        }
    };
    if data.client.is_none() && data.connection.is_none() {
        return message(
            StatusCode::NOT_FOUND,
            "No such customer",
            Some(admin),
            &format!("Nothing is configured for customer {:?}.", tandem_core::keys::redact_keys(customer)),
        );
    }
    // "Saved" comes off the link a save redirects to, which anyone can send:
    // it is shown only when it is the strategy in force.
    let in_force = data.client.as_ref().map(|c| super::overview::effective(state, c).0);
    let notice = notice.filter(|n| !matches!(n, Notice::Saved(s) if in_force.as_deref() != Some(s.as_str())));
    let preview = preview.and_then(|p| p.parse::<MatchingStrategy>().ok());
    let matching = match (&data.client, &data.connection) {
        (Some(client), Some(_)) => report(state, &client.id, preview, 100, None).await.ok(),
        _ => None,
    };
    let body = html! {
        p { a href="/dashboard" { "← Customers" } }
        h1 { "Customer " code { (customer) } }
        @match &notice {
            Some(Notice::Saved(s)) => div.notice.good role="status" { "Saved: the matching strategy is now " strong { (s) } "." },
            Some(Notice::NewKey(k, until)) => (new_key_notice(k, *until, state.clock.now())),
            Some(Notice::AlreadyRotated) => div.notice.bad role="alert" {
                strong { "Not rotated." } " The key this form was for had already been replaced (the form was sent \
                again, or another admin rotated it meanwhile). The key below is the current one; if its value was \
                lost, rotate again from this page."
            },
            None => {},
        }
        (oidc_section(state, admin, customer, data.client.as_ref()))
        (scim_section(state, admin, customer, data.connection.as_ref(), data.client.as_ref().is_some_and(|c| c.scim_required)))
        @if let Some(r) = &matching { (matching_section(admin, customer, r)) }
        @else if data.client.is_some() && data.connection.is_some() { h2 { "Matching" } p { "The matching report could not be computed." } }
        @if data.connection.is_some() { (users_section(&data)) }
        @if data.connection.is_some() { (log_section(&data.logs)) }
        (events_section(&data.events))
    };
    page(StatusCode::OK, &format!("Customer {customer}"), Some(admin), body)
}

fn oidc_section(state: &AppState, admin: &Admin, customer: &str, client: Option<&OidcClientRow>) -> Markup {
    html! {
        h2 { "OIDC client" }
        @match client {
            None => p.muted { "No OIDC client: logins are not possible for this customer." },
            Some(c) => {
                @let (strategy, from) = effective(state, c);
                @let discovery: Option<Value> = c.discovery.as_deref().and_then(|d| serde_json::from_str(d).ok());
                dl {
                    dt { "Client id (Tandem)" } dd.mono { (c.id) }
                    dt { "IdP type" } dd { (c.idp_type) }
                    dt { "Issuer" } dd.mono { (c.issuer) }
                    dt { "Client id at the IdP" } dd.mono { (c.client_id) }
                    dt { "Client authentication" } dd {
                        @if c.uses_client_keys() {
                            "private_key_jwt: public keys at " span.mono { (crate::api::oidc_clients::jwks_url(state, &c.id)) }
                        } @else if c.client_secret_enc.is_some() { "client secret" } @else { "none (public client, PKCE)" }
                    }
                    @if c.uses_client_keys() {
                        dt { "Client keys" } dd {
                            @match crate::api::oidc_clients::client_keys(c, &state.secret_key) {
                                Ok(keys) => {
                                    @let now = state.clock.now();
                                    "current: " span.mono { (keys.current().thumbprint_sha1_hex()) }
                                    " (SHA-1 thumbprint, as Entra lists it) "
                                    a href=(format!("/dashboard/customers/{}/client-certificate.pem", urlencode(customer))) { "download the certificate" }
                                    @if let Some(p) = keys.previous(now) {
                                        br;
                                        "previous: " span.mono { (p.thumbprint_sha1_hex()) }
                                        span.muted { " still used, when the IdP refuses the current one, until " (format_time(p.valid_until.unwrap_or(now))) }
                                        @if let Some(used) = c.previous_client_key_used_at.map(from_micros) {
                                            br;
                                            span.bad { "The IdP took a login only with the previous key at " (format_time(used)) ": give it the current certificate or JWK before the grace ends." }
                                        }
                                    }
                                }
                                Err(_) => { span.bad { "the stored keys cannot be read: have new ones made (PATCH naming idp.client_authentication)" } }
                            }
                        }
                    }
                    @if let Some(at) = c.client_secret_expires_at.map(from_micros) {
                        dt { @if c.uses_client_keys() { "Key certificate" } @else { "Client secret" } } dd {
                            @let level = warning_level(Some(at), state.clock.now());
                            (key_badge(level)) " "
                            span.muted {
                                @if level == tandem_core::scim_connection::KeyWarningLevel::Expired { "expired " } @else { "expires " }
                                (format_time(at))
                            }
                        }
                    }
                    dt { "Redirect URL" } dd.mono { (c.redirect_url) }
                    dt { "PKCE" } dd { @if c.uses_pkce { "S256" } @else { "off" } }
                    dt { "Email domains" } dd { @if c.domains().is_empty() { span.muted { "any" } } @else { (c.domains().join(", ")) } }
                    dt { "Matching strategy" } dd { strong { (strategy) } " " span.muted { "(" (from.replace('_', " ")) ")" } }
                    dt { "SCIM user required" } dd {
                        @if c.scim_required { "yes: without a SCIM connection every login is refused" }
                        @else { "no: without a SCIM connection logins are SSO-only" }
                        form.inline method="post" action=(format!("/dashboard/customers/{}/scim-required", urlencode(customer))) {
                            (csrf_field(admin))
                            input type="hidden" name="required" value=(if c.scim_required { "false" } else { "true" });
                            " "
                            button type="submit" {
                                @if c.scim_required { "Let logins through without a SCIM connection" }
                                @else { "Require a SCIM user" }
                            }
                        }
                    }
                }
                h3 { "Discovered endpoints" }
                @match discovery.as_ref().and_then(|d| d.get("metadata")) {
                    Some(m) => dl {
                        dt { "Discovered at" } dd { (discovery.as_ref().and_then(|d| d.get("discovered_at")).and_then(Value::as_str).unwrap_or("")) }
                        @for key in ["authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"] {
                            dt { (key) } dd.mono { (m.get(key).and_then(Value::as_str).unwrap_or("—")) }
                        }
                        dt { "RFC 9207 iss" } dd { @if m.get("authorization_response_iss_parameter_supported").and_then(Value::as_bool).unwrap_or(false) { "advertised, checked" } @else { "not advertised" } }
                    },
                    None => p.muted { "Not verified: the client was saved without discovery." },
                }
            }
        }
    }
}

/// The new key of a rotation, shown once, and when the keys it replaced stop working.
fn new_key_notice(key: &str, until: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> Markup {
    html! {
        div.notice.good role="status" {
            p {
                strong { "New SCIM API key — shown only now." } " Enter it in the identity provider; "
                @if until > now { "the previous key keeps working until " (format_time(until)) "." }
                @else { "the previous key stopped working now (no grace period is configured)." }
            }
            p { code #new-scim-key { (key) } }
        }
    }
}

/// What the rotate form says of the grace period, and what it asks when
/// there is none (the current key then stops working at once).
fn grace_text(grace: chrono::Duration) -> String {
    match grace.num_hours() {
        0 => "The new key is shown once, and the current one stops working at once: no grace period is \
              configured (scim.rotation_grace_hours)."
            .into(),
        1 => "The new key is shown once; the current one keeps working for 1 hour.".into(),
        h => format!("The new key is shown once; the current one keeps working for {h} hours."),
    }
}

fn scim_section(
    state: &AppState,
    admin: &Admin,
    customer: &str,
    conn: Option<&(ScimConnectionRow, Option<ScimApiKeyRow>)>,
    scim_required: bool,
) -> Markup {
    let now = state.clock.now();
    html! {
        h2 { "SCIM connection" }
        @match conn {
            None => @if scim_required {
                p.notice.bad role="alert" { "No SCIM connection, and the OIDC client requires a SCIM user: every login is refused. Create the SCIM connection again, or set the client's scim_required to false." }
            } @else {
                p.muted { "No SCIM connection: logins are SSO-only (no deprovisioning check)." }
            },
            Some((c, key)) => {
                dl {
                    dt { "Base URL" } dd.mono { (format!("{}/scim/v2/{}", state.settings.public_url, c.id)) }
                    dt { "API key" } dd {
                        @if let Some(k) = key {
                            code { (k.display_prefix) "…" } " "
                            (key_badge(warning_level(k.expires(), now))) " "
                            span.muted { @match k.expires() { Some(t) => { "expires " (format_time(t)) }, None => { "never expires" } } }
                            " · "
                            span.muted { @match k.last_used_at { Some(t) => { "last used " (format_time(from_micros(t))) }, None => { "never used" } } }
                        }
                    }
                    dt { "Unknown group members" } dd { (c.unknown_group_members) }
                }
                form method="post" action=(format!("/dashboard/customers/{}/rotate-key", urlencode(customer))) {
                    (csrf_field(admin))
                    // Which key this form replaces: sent twice (a reload), or after another admin's rotation, it rotates nothing.
                    input type="hidden" name="current_key" value=(key.as_ref().map_or("", |k| k.id.as_str()));
                    @if state.settings.scim_key_rotation_grace <= chrono::Duration::zero() {
                        label { input type="checkbox" name="cut_off_now" value="yes" required; " The current key stops working at once" } " "
                    }
                    button type="submit" { "Rotate the SCIM key" } " "
                    span.muted { (grace_text(state.settings.scim_key_rotation_grace)) }
                }
            }
        }
    }
}

fn count(report: &Value, strategy: &str, field: &str) -> u64 {
    report["strategies"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["strategy"] == strategy))
        .and_then(|s| s[field].as_u64())
        .unwrap_or(0)
}

fn matching_section(admin: &Admin, customer: &str, r: &Value) -> Markup {
    let current = r["current_strategy"].as_str().unwrap_or("");
    let shown = r["report_strategy"].as_str().unwrap_or(current);
    let recommended = r["recommended_strategy"].as_str();
    let unmatched = r["unmatched_sso_users"].as_array().cloned().unwrap_or_default();
    let ambiguous = r["ambiguous_sso_users"].as_array().cloned().unwrap_or_default();
    html! {
        h2 #matching { "Matching" }
        p { (r["sso_users_seen"]) " SSO users seen at login, " (r["scim_users"]) " SCIM users provisioned." }
        @if r["blocked_by_allowlist"].as_u64().is_some_and(|n| n > 0) {
            p #blocked-by-allowlist { (r["blocked_by_allowlist"]) " of the SSO users seen are refused by the email domain allowlist before the join, and are counted under no strategy." }
        }
        table {
            thead { tr { th scope="col" { "Strategy" } th scope="col" { "Matched" } th scope="col" { "…of them inactive" } th scope="col" { "Unmatched" } th scope="col" { "Ambiguous" } th scope="col" { "Shared" } th scope="col" { "" } } }
            tbody {
                @for s in MatchingStrategy::ALL {
                    @let name = s.as_str();
                    tr class=[(name == current).then_some("current")] {
                        th scope="row" { (name) }
                        td { (count(r, name, "matched")) } td { (count(r, name, "matched_inactive")) }
                        td { (count(r, name, "unmatched")) } td { (count(r, name, "ambiguous")) }
                        td { (count(r, name, "shared")) }
                        td {
                            @if name == current { span.badge.ok { "current" } " " }
                            @if Some(name) == recommended { span.badge.warning { "recommended" } }
                        }
                    }
                }
            }
        }
        form.row method="get" action=(format!("/dashboard/customers/{}#matching", urlencode(customer))) {
            label for="preview" { "Preview strategy" }
            select #preview name="preview" {
                @for s in MatchingStrategy::ALL {
                    option value=(s.as_str()) selected[s.as_str() == shown] { (s.as_str()) @if Some(s.as_str()) == recommended { " (recommended)" } }
                }
            }
            button type="submit" { "Preview" }
        }
        @if shown != current {
            div.notice role="status" {
                "Previewing " strong { (shown) } ": " (count(r, shown, "matched")) " matched, " (count(r, shown, "unmatched")) " unmatched, "
                (count(r, shown, "ambiguous")) " ambiguous (current " (current) ": " (count(r, current, "matched")) " matched)."
                form method="post" action=(format!("/dashboard/customers/{}/strategy", urlencode(customer))) {
                    (csrf_field(admin))
                    input type="hidden" name="strategy" value=(shown);
                    button.primary type="submit" { "Save " (shown) " as this customer's strategy" }
                }
            }
        }
        h3 { "Unmatched SSO users under " (shown) " (" (count(r, shown, "unmatched")) ")" }
        @if unmatched.is_empty() { p #unmatched-empty { "None: every SSO user seen matches a SCIM user." } }
        @else { (sso_table("unmatched", &unmatched)) }
        @if !ambiguous.is_empty() {
            h3 { "Ambiguous SSO users under " (shown) }
            (sso_table("ambiguous", &ambiguous))
        }
        h3 { "SCIM users no seen SSO user matches (" (r["unmatched_scim_users_total"]) ")" }
        p.muted { "Users provisioned but not (yet) seen at login; normal for people who have not signed in." }
    }
}

fn sso_table(id: &str, rows: &[Value]) -> Markup {
    html! {
        table id=(id) {
            thead { tr {
                th scope="col" { "OIDC user id" } th scope="col" { "Email" } th scope="col" { "preferred_username" }
                th scope="col" { "Nearest SCIM users (userName · externalId · emails) and the strategies that would match them" }
            } }
            tbody {
                @for u in rows {
                    tr {
                        td.mono { (u["oidc_user_id"].as_str().unwrap_or("")) }
                        td { (u["email"].as_str().unwrap_or("—")) }
                        td { (u["preferred_username"].as_str().unwrap_or("—")) }
                        td {
                            @let cands = u["candidates"].as_array().cloned().unwrap_or_default();
                            @if cands.is_empty() { span.muted { "no SCIM user matches under any strategy" } }
                            ul {
                                @for c in &cands {
                                    li {
                                        code { (c["user_name"].as_str().unwrap_or("")) } " · "
                                        code { (c["external_id"].as_str().unwrap_or("—")) } " · "
                                        (c["emails"].as_array().map(|e| e.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default())
                                        @if c["deleted"] == true { " " span.badge.bad { "deleted" } }
                                        @else if c["active"] == false { " " span.badge.bad { "inactive" } }
                                        br; span.muted { "matches under: " (c["matches_under"].as_array().map(|e| e.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                                    }
                                }
                            }
                            @let more = u["candidates_total"].as_u64().unwrap_or(0).saturating_sub(cands.len() as u64);
                            @if more > 0 { span.muted { "and " (more) " more" } }
                        }
                    }
                }
            }
        }
    }
}

fn users_section(d: &Data) -> Markup {
    html! {
        h2 { "SCIM users" } p.muted { "The first 50." }
        table {
            thead { tr { th scope="col" { "userName" } th scope="col" { "externalId" } th scope="col" { "Display name" } th scope="col" { "Active" } th scope="col" { "Groups" } } }
            tbody {
                @for u in &d.users {
                    tr {
                        td { (u.user_name) } td.mono { (u.external_id.as_deref().unwrap_or("—")) } td { (u.display_name.as_deref().unwrap_or("—")) }
                        td { @if u.active { span.badge.ok { "active" } } @else { span.badge.bad { "inactive" } } }
                        td { (d.user_groups.get(&u.id).map(|g| g.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                    }
                }
            }
        }
        h2 { "SCIM groups" }
        table {
            thead { tr { th scope="col" { "displayName" } th scope="col" { "externalId" } th scope="col" { "Members" } } }
            tbody { @for (g, n) in &d.groups { tr { td { (g.display_name) } td.mono { (g.external_id.as_deref().unwrap_or("—")) } td { (n) } } } }
        }
    }
}

fn log_section(logs: &[logs::ProvisioningLog]) -> Markup {
    html! {
        h2 { "Provisioning log" } p.muted { "The last 25 SCIM requests." }
        table {
            thead { tr { th scope="col" { "When" } th scope="col" { "Operation" } th scope="col" { "Request" } th scope="col" { "userName" } th scope="col" { "Status" } th scope="col" { "Detail" } } }
            tbody {
                @for e in logs {
                    tr {
                        td { (format_time(from_micros(e.created_at))) }
                        td { @if e.operation == "fail" { span.badge.bad { "fail" } } @else { (e.operation) } }
                        td.mono { (e.method) " " (e.path) } td { (e.user_name.as_deref().unwrap_or("")) } td { (e.status) }
                        td { (e.detail.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    }
}

fn events_section(events: &[sso::LoginEvent]) -> Markup {
    html! {
        h2 { "Login events" } p.muted { "The last 25 login attempts, with each failing step's diagnosis." }
        table {
            thead { tr { th scope="col" { "When" } th scope="col" { "Outcome" } th scope="col" { "Email" } th scope="col" { "Failed step" } th scope="col" { "Diagnosis" } th scope="col" { "Steps" } } }
            tbody {
                @for e in events {
                    tr {
                        td { (format_time(from_micros(e.created_at))) }
                        td { @match e.outcome.as_str() { "success" => span.badge.ok { "success" }, "failed" => span.badge.bad { "failed" }, o => (o) } }
                        td { (e.email.as_deref().unwrap_or("—")) }
                        td { (e.failed_step.as_deref().unwrap_or("")) " " span.muted { (e.error_type.as_deref().unwrap_or("")) } }
                        td { (e.diagnosis.as_deref().unwrap_or("")) }
                        td.muted {
                            @let steps: Vec<Value> = serde_json::from_str(&e.steps).unwrap_or_default();
                            (steps.iter().map(|s| format!("{}{}", s["step"].as_str().unwrap_or("?"), if s["ok"] == true { "" } else { " ✗" })).collect::<Vec<_>>().join(" → "))
                        }
                    }
                }
            }
        }
    }
}
