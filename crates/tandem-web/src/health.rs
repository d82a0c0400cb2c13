//! Liveness and readiness.

use crate::state::AppState;
use actix_web::{web, HttpResponse};
use serde_json::json;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database answers.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.store.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready", "database": state.store.backend()})),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            HttpResponse::ServiceUnavailable()
                .json(json!({"status": "unavailable", "database": state.store.backend(), "reason": "the database does not answer"}))
        }
    }
}
