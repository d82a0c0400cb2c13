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
use tandem_store::scim::groups;
use tandem_store::scim::logs::{self, LogQuery, ProvisioningLog};
use tandem_store::scim::users::{self, UserListQuery};
use tandem_store::{from_micros, scim_connections};

async fn require_connection(state: &AppState, id: &str) -> Result<(), ApiError> {
    let key = id.to_string();
    match state.store.read(move |c| scim_connections::get(c, &key)).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("ScimConnectionNotFound", format!("no SCIM connection {id:?}"))),
    }
}

/// Reads the users list's filters: `active`, `user_name`, `external_id`,
/// `updated_since` (RFC 3339) and `include_deleted`.
fn user_list_query(query: &HashMap<String, String>) -> Result<UserListQuery, ApiError> {
    let (after, limit) =
        super::id_page(query, &["active", "user_name", "external_id", "updated_since", "include_deleted"])?;
    let mut errors = Vec::new();
    let active = super::bool_param(query, "active", &mut errors);
    let include_deleted = super::bool_param(query, "include_deleted", &mut errors).unwrap_or(false);
    let updated_since = super::time_param(query, "updated_since", &mut errors).map(tandem_store::micros);
    if !errors.is_empty() {
        return Err(ApiError::invalid_fields(errors));
    }
    Ok(UserListQuery {
        after,
        limit,
        active,
        user_name: query.get("user_name").cloned(),
        external_id: query.get("external_id").cloned(),
        updated_since,
        include_deleted,
    })
}

/// `GET /api/v1/scim-connections/{id}/users?active=&user_name=&external_id=&updated_since=&include_deleted=&after=&limit=`
///
/// A deleted user (listed with `include_deleted=true`) carries
/// `deleted_at` and `active: false`, whatever it was when deleted; its
/// `meta.lastModified` is when it was deleted.
pub async fn list_users(
    state: web::Data<AppState>,
    _c: Caller,
    id: web::Path<String>,
    query: super::Params,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let q = user_list_query(&query)?;
    require_connection(&state, &id).await?;
    let (conn, limit) = (id.clone(), q.limit);
    let (rows, groups) = state
        .store
        .read(move |c| {
            let rows = users::list(c, &conn, &q)?;
            let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
            Ok((rows, users::groups_of(c, &ids)?))
        })
        .await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut user =
                crate::scim::render_user(&state, r, Some(groups.get(&r.id).map(Vec::as_slice).unwrap_or(&[])));
            if let (Some(at), Some(doc)) = (r.deleted_at, user.as_object_mut()) {
                doc.insert("deleted_at".into(), json!(format_time(from_micros(at))));
                doc.insert("active".into(), json!(false));
            }
            user
        })
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

/// `GET /api/v1/scim-connections/{id}/groups?updated_since=&after=&limit=`
pub async fn list_groups(
    state: web::Data<AppState>,
    _c: Caller,
    id: web::Path<String>,
    query: super::Params,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let (after, limit) = super::id_page(&query, &["updated_since"])?;
    let mut errors = Vec::new();
    let updated_since = super::time_param(&query, "updated_since", &mut errors).map(tandem_store::micros);
    if !errors.is_empty() {
        return Err(ApiError::invalid_fields(errors));
    }
    require_connection(&state, &id).await?;
    let conn = id.clone();
    let (rows, members) = state
        .store
        .read(move |c| {
            let rows = groups::list(c, &conn, after.as_deref(), limit, updated_since)?;
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
    query: super::Params,
) -> Result<HttpResponse, ApiError> {
    let (before, limit) = super::newest_first_page(
        &query,
        "provisioning log entries",
        &["scim_connection_id", "operation", "status", "failed", "resource_id", "user_name"],
    )?;
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
        Some(Ok(s)) if (100..=599).contains(&s) => Some(s),
        Some(_) => {
            errors
                .push(FieldError { field: "status".into(), message: "must be an HTTP status code (100–599)".into() });
            None
        }
    };
    let failed_only = super::bool_param(&query, "failed", &mut errors).unwrap_or(false);
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
        before,
        limit,
    };
    // Entries of reads and refusals are written in the background; make them visible first.
    state.flush_logs().await;
    let rows = state.store.read(move |c| logs::list(c, &q)).await?;
    Ok(super::page_answer(&rows, limit, |r| &r.id, rows.iter().map(render_log).collect()))
}
