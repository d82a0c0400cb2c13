//! `/api/v1/audit-events`: who changed which configuration, when, from what
//! to what (OIDC clients, SCIM connections and their keys, strategies
//! saved on the dashboard), newest first.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use serde_json::{json, Value};
use tandem_core::format_time;
use tandem_store::audit::{self, AuditEvent, AuditQuery};
use tandem_store::from_micros;

fn render(e: &AuditEvent) -> Value {
    json!({
        "id": e.id,
        "created_at": format_time(from_micros(e.created_at)),
        "actor": e.actor,
        "action": e.action,
        "target_type": e.target_type,
        "target_id": e.target_id,
        "details": serde_json::from_str::<Value>(&e.details).unwrap_or(json!({})),
    })
}

/// `GET /api/v1/audit-events?target_type=&target_id=&action=&actor=&before=&limit=`
pub async fn list(state: web::Data<AppState>, _c: Caller, query: super::Params) -> Result<HttpResponse, ApiError> {
    let (before, limit) =
        super::newest_first_page(&query, "audit events", &["target_type", "target_id", "action", "actor"])?;
    // A misspelt type would answer an empty page, read as "nothing happened".
    const TARGET_TYPES: [&str; 6] =
        ["oidc_client", "scim_connection", "webhook_endpoint", "setup_link", "integration_key", "deployment"];
    if let Some(t) = query.get("target_type").filter(|t| !TARGET_TYPES.contains(&t.as_str())) {
        return Err(ApiError::invalid_field(
            "target_type",
            format!("must be one of {}, got {t:?}", TARGET_TYPES.join(", ")),
        ));
    }
    let q = AuditQuery {
        target_type: query.get("target_type").cloned(),
        target_id: query.get("target_id").cloned(),
        action: query.get("action").cloned(),
        actor: query.get("actor").cloned(),
        before,
        limit,
    };
    let rows = state.store.read(move |c| audit::list(c, &q)).await?;
    Ok(super::page_answer(&rows, limit, |r| &r.id, rows.iter().map(render).collect()))
}
