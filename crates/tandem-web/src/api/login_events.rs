//! `/api/v1/login-events`: every login attempt with its steps and, for a
//! failure, the failing step's diagnosis.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use serde_json::{json, Value};
use tandem_core::format_time;
use tandem_store::from_micros;
use tandem_store::sso::{self, EventQuery, LoginEvent};

fn render(e: &LoginEvent) -> Value {
    json!({
        "id": e.id,
        "oidc_client_id": e.oidc_client_id,
        "customer_id": e.customer_id,
        "created_at": format_time(from_micros(e.created_at)),
        "updated_at": format_time(from_micros(e.updated_at)),
        "outcome": e.outcome,
        "error_type": e.error_type,
        "error_kind": e.error_kind,
        "failed_step": e.failed_step,
        "diagnosis": e.diagnosis,
        "oidc_user_id": e.oidc_user_id,
        "email": e.email,
        "scim_user_id": e.scim_user_id,
        "steps": serde_json::from_str::<Value>(&e.steps).unwrap_or(json!([])),
    })
}

/// `GET /api/v1/login-events?oidc_client_id=&customer_id=&outcome=&email=&before=&limit=`
pub async fn list(state: web::Data<AppState>, _c: Caller, query: super::Params) -> Result<HttpResponse, ApiError> {
    let (before, limit) =
        super::newest_first_page(&query, "login events", &["oidc_client_id", "customer_id", "outcome", "email"])?;
    let outcome = query.get("outcome").cloned();
    if let Some(o) = &outcome {
        if !["pending", "success", "failed"].contains(&o.as_str()) {
            return Err(ApiError::invalid_field("outcome", "must be pending, success or failed"));
        }
    }
    let q = EventQuery {
        oidc_client_id: query.get("oidc_client_id").cloned(),
        customer_id: query.get("customer_id").cloned(),
        outcome,
        email: query.get("email").cloned(),
        before,
        limit,
    };
    // A login's event is written in the background; make it visible first.
    state.flush_logs().await;
    let rows = state.store.read(move |c| sso::list_events(c, &q)).await?;
    Ok(super::page_answer(&rows, limit, |r| &r.id, rows.iter().map(render).collect()))
}

/// `GET /api/v1/login-events/{id}`
pub async fn get(state: web::Data<AppState>, _c: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let key = id.clone();
    state.flush_logs().await;
    let found = state.store.read(move |c| sso::get_event(c, &key)).await?;
    let e = found.ok_or_else(|| ApiError::not_found("LoginEventNotFound", format!("no login event {id:?}")))?;
    Ok(HttpResponse::Ok().json(render(&e)))
}
