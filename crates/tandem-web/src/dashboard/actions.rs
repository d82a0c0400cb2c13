//! Dashboard forms: save a matching strategy, rotate a SCIM key. Each needs
//! a session and its CSRF token, and is recorded in the audit log.

use super::customer::{render, Notice};
use super::layout::{message, store_failure};
use super::overview::urlencode;
use super::session::require_form;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use std::collections::HashMap;
use tandem_core::matching::MatchingStrategy;
use tandem_store::scim_connections::Rotated;
use tandem_store::{audit, micros, oidc_clients, scim_connections};

/// `POST /dashboard/customers/{customer_id}/strategy` (form: `strategy`, `csrf`)
pub async fn save_strategy(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
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
    let now = state.clock.now();
    let (key, actor) = (customer.clone(), admin.session.key_name.clone());
    let saved = state
        .store
        .write(move |c| {
            // Read and written in one transaction; on PostgreSQL an edit
            // committed in between is seen by the next read, and kept.
            let (row, old) = loop {
                let Some(mut row) = oidc_clients::get_by_customer(c, &key)? else { return Ok(false) };
                let (old, read_at) = (row.matching_strategy.clone(), row.updated_at);
                // The client's own choice already: nothing changes, nothing is recorded.
                if old.as_deref() == Some(strategy.as_str()) {
                    return Ok(true);
                }
                row.matching_strategy = Some(strategy.as_str().to_string());
                row.updated_at = micros(now);
                match oidc_clients::update(c, &mut row, read_at)? {
                    oidc_clients::Updated::Done => break (row, old),
                    oidc_clients::Updated::Gone => return Ok(false),
                    oidc_clients::Updated::Changed => continue,
                }
            };
            audit::record(
                c,
                now,
                &actor,
                "oidc_client.strategy_changed",
                ("oidc_client", &row.id),
                json!({"via": "dashboard", "strategy": {"old": old, "new": strategy.as_str()}}),
            )?;
            Ok(true)
        })
        .await;
    match saved {
        Ok(true) => HttpResponse::SeeOther()
            .insert_header((
                "Location",
                format!("/dashboard/customers/{}?saved={}#matching", urlencode(&customer), strategy.as_str()),
            ))
            .finish(),
        Ok(false) => {
            message(StatusCode::NOT_FOUND, "No OIDC client", Some(&admin), "This customer has no OIDC client.")
        }
        Err(e) => store_failure(&e, Some(&admin)),
    }
}

/// `POST /dashboard/customers/{customer_id}/rotate-key` (form: `csrf`,
/// `current_key`: the id of the key the form replaces, `cut_off_now`: `yes`
/// when no grace period is configured): the new key is shown once on the
/// answer page; a form whose key was already replaced rotates nothing (409).
pub async fn rotate_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
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
    let (key, actor) = (customer.clone(), admin.session.key_name.clone());
    let rotated = state
        .store
        .write(move |c| {
            let Some(conn) = scim_connections::get_by_customer(c, &key)? else { return Ok(Rotated::NoConnection) };
            let rotated = scim_connections::rotate_key_if_current(c, &conn.id, &replaces, grace, now)?;
            if !matches!(rotated, Rotated::Done(..)) {
                return Ok(rotated);
            }
            audit::record(
                c,
                now,
                &actor,
                "scim_connection.key_rotated",
                ("scim_connection", &conn.id),
                json!({"via": "dashboard", "grace_period_seconds": grace.num_seconds()}),
            )?;
            Ok(rotated)
        })
        .await;
    state.scim_keys.clear();
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
