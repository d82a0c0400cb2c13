//! Management reads of what IdPs provisioned: a connection's SCIM users and
//! groups, and the provisioning log.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use serde_json::{json, Value};
use std::collections::HashMap;
use tandem_core::fields::FieldError;
use tandem_core::format_time;
use tandem_store::scim::logs::{self, LogQuery, ProvisioningLog};
use tandem_store::scim::{groups, users};
use tandem_store::{from_micros, scim_connections};

async fn require_connection(state: &AppState, id: &str) -> Result<(), ApiError> {
    let key = id.to_string();
    match state.store.read(move |c| scim_connections::get(c, &key)).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("ScimConnectionNotFound", format!("no SCIM connection {id:?}"))),
    }
}

/// `GET /api/v1/scim-connections/{id}/users`
pub async fn list_users(
    state: web::Data<AppState>,
    _c: Caller,
    id: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    require_connection(&state, &id).await?;
    let (after, limit) = super::page(&query)?;
    let conn = id.clone();
    let (rows, groups) = state
        .store
        .read(move |c| {
            let rows = users::list(c, &conn, after.as_deref(), limit)?;
            let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
            Ok((rows, users::groups_of(c, &ids)?))
        })
        .await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|r| crate::scim::render_user(&state, r, Some(groups.get(&r.id).map(Vec::as_slice).unwrap_or(&[]))))
        .collect();
    Ok(super::page_answer(&rows, limit, |r| &r.id, data))
}

/// `GET /api/v1/scim-connections/{id}/users/{user_id}`
pub async fn get_user(
    state: web::Data<AppState>,
    _c: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, user) = path.into_inner();
    require_connection(&state, &id).await?;
    let (conn, key) = (id.clone(), user.clone());
    let found = state
        .store
        .read(move |c| {
            let Some(row) = users::get(c, &conn, &key)? else {
                return Ok(None);
            };
            let g = users::groups_of(c, std::slice::from_ref(&row.id))?.remove(&row.id).unwrap_or_default();
            Ok(Some((row, g)))
        })
        .await?;
    let (row, g) = found.ok_or_else(|| {
        ApiError::not_found("ScimUserNotFound", format!("no SCIM user {user:?} in connection {id:?}"))
    })?;
    Ok(HttpResponse::Ok().json(crate::scim::render_user(&state, &row, Some(&g))))
}

/// `GET /api/v1/scim-connections/{id}/groups`
pub async fn list_groups(
    state: web::Data<AppState>,
    _c: Caller,
    id: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    require_connection(&state, &id).await?;
    let (after, limit) = super::page(&query)?;
    let conn = id.clone();
    let (rows, members) = state
        .store
        .read(move |c| {
            let rows = groups::list(c, &conn, after.as_deref(), limit)?;
            let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
            Ok((rows, groups::members_of(c, &ids)?))
        })
        .await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|r| crate::scim::render_group(&state, r, Some(members.get(&r.id).map(Vec::as_slice).unwrap_or(&[]))))
        .collect();
    Ok(super::page_answer(&rows, limit, |r| &r.id, data))
}

/// `GET /api/v1/scim-connections/{id}/groups/{group_id}`
pub async fn get_group(
    state: web::Data<AppState>,
    _c: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, group) = path.into_inner();
    require_connection(&state, &id).await?;
    let (conn, key) = (id.clone(), group.clone());
    let found = state
        .store
        .read(move |c| {
            let Some(row) = groups::get(c, &conn, &key)? else {
                return Ok(None);
            };
            let m = groups::members_of(c, std::slice::from_ref(&row.id))?.remove(&row.id).unwrap_or_default();
            Ok(Some((row, m)))
        })
        .await?;
    let (row, m) = found.ok_or_else(|| {
        ApiError::not_found("ScimGroupNotFound", format!("no SCIM group {group:?} in connection {id:?}"))
    })?;
    Ok(HttpResponse::Ok().json(crate::scim::render_group(&state, &row, Some(&m))))
}

fn render_log(e: &ProvisioningLog) -> Value {
    json!({
        "id": e.id,
        "scim_connection_id": e.scim_connection_id,
        "created_at": format_time(from_micros(e.created_at)),
        "request_id": e.request_id,
        "method": e.method,
        "path": e.path,
        "operation": e.operation,
        "resource_type": e.resource_type,
        "resource_id": e.resource_id,
        "user_name": e.user_name,
        "status": e.status,
        "detail": e.detail,
        "reasons": serde_json::from_str::<Value>(&e.reasons).unwrap_or(Value::Array(vec![])),
    })
}

const OPERATIONS: [&str; 8] = ["create", "update", "deactivate", "reactivate", "delete", "read", "skip", "fail"];

/// `GET /api/v1/provisioning-logs?scim_connection_id=&operation=&status=&failed=true&resource_id=&user_name=&before=&limit=`
pub async fn provisioning_logs(
    state: web::Data<AppState>,
    _c: Caller,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let limit = super::newest_first_page(&query, "provisioning log entries")?;
    let mut errors = Vec::new();
    let operation = query.get("operation").cloned();
    if let Some(op) = &operation {
        if !OPERATIONS.contains(&op.as_str()) {
            errors.push(FieldError {
                field: "operation".into(),
                message: format!("must be one of {}", OPERATIONS.join(", ")),
            });
        }
    }
    let status = match query.get("status").map(|s| s.parse::<i32>()) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(_)) => {
            errors.push(FieldError { field: "status".into(), message: "must be an HTTP status code".into() });
            None
        }
    };
    let failed_only = match query.get("failed").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            errors.push(FieldError { field: "failed".into(), message: "must be true or false".into() });
            false
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid_fields(errors));
    }
    let q = LogQuery {
        scim_connection_id: query.get("scim_connection_id").cloned(),
        operation,
        resource_id: query.get("resource_id").cloned(),
        user_name: query.get("user_name").cloned(),
        status,
        failed_only,
        before: query.get("before").cloned(),
        limit,
    };
    // Entries of reads and refusals are written in the background; make them visible first.
    state.flush_logs().await;
    let rows = state.store.read(move |c| logs::list(c, &q)).await?;
    Ok(super::page_answer(&rows, limit, |r| &r.id, rows.iter().map(render_log).collect()))
}
