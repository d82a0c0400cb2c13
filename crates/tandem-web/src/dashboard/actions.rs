//! Dashboard forms: save a matching strategy, rotate a SCIM key, require a
//! SCIM user or not, make a setup link. Each needs
//! a session and its CSRF token, and is recorded in the audit log.

use super::customer::{render, Notice};
use super::layout::{message, store_failure};
use super::overview::urlencode;
use super::session::require_form;
use crate::body::Form;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use tandem_core::matching::MatchingStrategy;
use tandem_store::scim_connections::Rotated;
use tandem_store::{audit, micros, oidc_clients};

/// `POST /dashboard/customers/{customer_id}/strategy` (form: `strategy`, `csrf`)
pub async fn save_strategy(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let admin = match require_form(&req, &state, &form).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let customer = path.into_inner();
    let Some(strategy) = form.get("strategy").and_then(|s| s.parse::<MatchingStrategy>().ok()) else {
        return message(
            StatusCode::BAD_REQUEST,
            "Unknown strategy",
            Some(&admin),
            "Choose one of the five matching strategies.",
        );
    };
    let saved = edit_client(
        &state,
        &customer,
        &admin,
        // The client's own choice already: nothing changes, nothing is recorded.
        move |row| {
            let new = Some(strategy.as_str().to_string());
            (row.matching_strategy != new).then(|| {
                let old = std::mem::replace(&mut row.matching_strategy, new);
                (
                    "oidc_client.strategy_changed",
                    json!({"via": "dashboard", "strategy": {"old": old, "new": strategy.as_str()}}),
                )
            })
        },
    )
    .await;
    edited(saved, &admin, format!("/dashboard/customers/{}?saved={}#matching", urlencode(&customer), strategy.as_str()))
}

/// Applies `change` to `customer`'s OIDC client, read and written in one
/// transaction (on PostgreSQL an edit committed in between is seen by the
/// next read, and kept), and records the audit action and details it
/// returns; `None` when the client already is as asked (nothing is written
/// or recorded). `Ok(false)` when the customer has no client.
async fn edit_client(
    state: &AppState,
    customer: &str,
    admin: &super::session::Admin,
    change: impl Fn(&mut oidc_clients::OidcClientRow) -> Option<(&'static str, serde_json::Value)> + Send + 'static,
) -> Result<bool, tandem_store::StoreError> {
    let now = state.clock.now();
    let (key, actor) = (customer.to_string(), admin.session.key_name.clone());
    state
        .store
        .write(move |c| {
            let (row, (action, details)) = loop {
                let Some(mut row) = oidc_clients::get_by_customer(c, &key)? else { return Ok(false) };
                let read_at = row.updated_at;
                let Some(recorded) = change(&mut row) else { return Ok(true) };
                row.updated_at = micros(now);
                match oidc_clients::update(c, &mut row, read_at)? {
                    oidc_clients::Updated::Done => break (row, recorded),
                    oidc_clients::Updated::Gone => return Ok(false),
                    oidc_clients::Updated::Changed => continue,
                }
            };
            audit::record(c, now, &actor, action, ("oidc_client", &row.id), details)?;
            Ok(true)
        })
        .await
}

/// The answer to a form that edited a client: back to `location`, or why not.
fn edited(
    saved: Result<bool, tandem_store::StoreError>,
    admin: &super::session::Admin,
    location: String,
) -> HttpResponse {
    match saved {
        Ok(true) => HttpResponse::SeeOther().insert_header(("Location", location)).finish(),
        Ok(false) => message(StatusCode::NOT_FOUND, "No OIDC client", Some(admin), "This customer has no OIDC client."),
        Err(e) => store_failure(&e, Some(admin)),
    }
}

/// `POST /dashboard/customers/{customer_id}/scim-required` (form:
/// `required`: `true` or `false`, `csrf`): whether the customer's logins
/// need a SCIM user (see the API's `scim_required`). Audited when it changes.
pub async fn set_scim_required(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let admin = match require_form(&req, &state, &form).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let customer = path.into_inner();
    let Some(required) = form.get("required").and_then(|v| v.parse::<bool>().ok()) else {
        return message(StatusCode::BAD_REQUEST, "Unknown choice", Some(&admin), "Choose true or false.");
    };
    let saved = edit_client(&state, &customer, &admin, move |row| {
        (row.scim_required != required).then(|| {
            row.scim_required = required;
            let details = json!({"via": "dashboard", "fields": ["scim_required"],
                                 "scim_required": {"old": !required, "new": required}});
            ("oidc_client.updated", details)
        })
    })
    .await;
    edited(saved, &admin, format!("/dashboard/customers/{}", urlencode(&customer)))
}

/// `POST /dashboard/customers/{customer_id}/rotate-key` (form: `csrf`,
/// `current_key`: the id of the key the form replaces, `cut_off_now`: `yes`
/// when no grace period is configured): the new key is shown once on the
/// answer page; a form whose key was already replaced rotates nothing (409).
pub async fn rotate_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let admin = match require_form(&req, &state, &form).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let customer = path.into_inner();
    let now = state.clock.now();
    let grace = state.settings.scim_key_rotation_grace;
    // The form names the key it replaces (see `scim_section`).
    let Some(replaces) = form.get("current_key").cloned() else {
        let text = "This form is from an older page; reload the customer page and rotate from there.";
        return message(StatusCode::BAD_REQUEST, "Not rotated", Some(&admin), text);
    };
    if grace <= chrono::Duration::zero() && form.get("cut_off_now").map(String::as_str) != Some("yes") {
        let text = "No grace period is configured (scim.rotation_grace_hours), so the current key would stop \
                    working at once: tick the box that says so to rotate anyway.";
        return message(StatusCode::BAD_REQUEST, "Not rotated", Some(&admin), text);
    }
    let (key, actor, replaces) = (customer.clone(), admin.session.key_name.clone(), replaces);
    let rotated = crate::api::scim_connections::rotate_customer_key(&state, key, replaces, (actor, "dashboard"), now)
        .await
        .map(|r| r.map_or(Rotated::NoConnection, |(_, rotated)| rotated));
    match rotated {
        Ok(Rotated::Done(_, plaintext)) => {
            render(&state, &admin, &customer, None, Some(Notice::NewKey(plaintext.0, now + grace))).await
        }
        Ok(Rotated::NotCurrent) => {
            let mut resp = render(&state, &admin, &customer, None, Some(Notice::AlreadyRotated)).await;
            if resp.status() == StatusCode::OK {
                *resp.status_mut() = StatusCode::CONFLICT;
            }
            resp
        }
        Ok(Rotated::NoConnection) => {
            message(StatusCode::NOT_FOUND, "No SCIM connection", Some(&admin), "This customer has no SCIM connection.")
        }
        Err(e) => store_failure(&e, Some(&admin)),
    }
}

/// `POST /dashboard/setup-links` (form: `csrf`, `customer_id`,
/// `redirect_url`, `expires_in_hours`): a setup link made as the API makes
/// one, by the session's key; its URL shown once.
pub async fn make_setup_link(req: HttpRequest, state: web::Data<AppState>, form: Form) -> HttpResponse {
    let admin = match require_form(&req, &state, &form).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let given = |name: &str| form.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut body = json!({"customer_id": given("customer_id").unwrap_or_default()});
    if let Some(url) = given("redirect_url") {
        body["redirect_url"] = json!(url);
    }
    if let Some(hours) = given("expires_in_hours") {
        body["expires_in_hours"] = hours.parse::<u64>().map_or_else(|_| json!(hours), |h| json!(h));
    }
    let caller = crate::auth::Caller { key_id: String::new(), name: admin.session.key_name.clone() };
    match crate::api::setup_links::create_from(&state, caller, body, Some("dashboard")).await {
        Ok(link) => {
            let url = link["url"].as_str().unwrap_or_default();
            let customer = link["customer_id"].as_str().unwrap_or_default();
            let expires = link["expires_at"].as_str().unwrap_or_default();
            let body = maud::html! {
                h1 { "Setup link for " code { (customer) } }
                div.notice.good role="status" {
                    "Copy the link now: it is shown only this once. Send it to the customer's IT admin only."
                }
                p { code { (url) } }
                p.muted { "It works until " (expires) ", or until it is revoked (on the Customers page, or DELETE /api/v1/setup-links/" (link["id"].as_str().unwrap_or_default()) ")." }
                p { a href="/dashboard" { "← Customers" } }
            };
            super::layout::page(StatusCode::OK, "Setup link", Some(&admin), body)
        }
        Err(e) if e.status.is_server_error() => message(e.status, "Not made", Some(&admin), &e.message),
        Err(e) => {
            let fields = e.details["fields"].as_array().cloned().unwrap_or_default();
            let body = maud::html! {
                h1 { "Not made" }
                p { (e.message) }
                @if fields.len() > 1 {
                    ul { @for f in &fields {
                        li { code { (f["field"].as_str().unwrap_or_default()) } ": " (f["message"].as_str().unwrap_or_default()) }
                    } }
                }
                p { a href="/dashboard#setup-link" { "← Back" } }
            };
            super::layout::page(e.status, "Not made", Some(&admin), body)
        }
    }
}

/// `POST /dashboard/setup-links/{id}/revoke` (form: `csrf`): the link stops
/// working at once, recorded as `setup_link.revoked` with `via: dashboard`.
pub async fn revoke_setup_link(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let admin = match require_form(&req, &state, &form).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let actor = admin.session.key_name.clone();
    match crate::api::setup_links::revoke_as(&state, actor, Some("dashboard"), path.into_inner()).await {
        Ok(Some((link, revoked))) => {
            let text = match revoked {
                true => format!(
                    "The setup link {}… for customer {:?} no longer works.",
                    link.display_prefix, link.customer_id
                ),
                false => format!(
                    "The setup link {}… for customer {:?} was revoked already.",
                    link.display_prefix, link.customer_id
                ),
            };
            message(StatusCode::OK, "Setup link revoked", Some(&admin), &text)
        }
        Ok(None) => message(StatusCode::NOT_FOUND, "No such setup link", Some(&admin), "There is no such setup link."),
        Err(e) => message(e.status, "Not revoked", Some(&admin), &e.message),
    }
}
