//! `POST /.search` at the root: users then groups, paged as one list.

use super::auth::ScimCaller;
use super::request::{json_body, ListParams, LogContext};
use super::response::{scim_json, ScimFailure};
use super::{groups, users};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;
use tandem_scim::resource::list_response;

fn total_and_items(v: &Value) -> (u64, Vec<Value>) {
    let total = v.get("totalResults").and_then(Value::as_u64).unwrap_or(0);
    let items = v.get("Resources").and_then(Value::as_array).cloned().unwrap_or_default();
    (total, items)
}

/// Whether a list was refused for a filter naming an attribute its type lacks.
fn names_unknown_attribute(result: &Result<Value, ScimFailure>) -> bool {
    matches!(result, Err(e) if e.0.scim_type == Some("invalidFilter") && e.0.detail.contains("unknown attribute"))
}

/// A filter naming an attribute one type lacks matches nothing of that type.
async fn part(result: Result<Value, ScimFailure>) -> Result<(u64, Vec<Value>), ScimFailure> {
    match result {
        Ok(v) => Ok(total_and_items(&v)),
        Err(_) if names_unknown_attribute(&result) => Ok((0, Vec::new())),
        Err(e) => Err(e),
    }
}

/// `POST /.search`
pub async fn root(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ScimCaller,
    payload: web::Payload,
) -> Result<HttpResponse, ScimFailure> {
    let ctx = LogContext::new(&req, &caller.connection_id);
    let body = json_body(&state, payload).await?;
    let max = state.settings.scim_max_results;
    let params = ListParams::from_json(&body, max)?;
    let (start, count) = (params.start_index, params.count);
    // Totals first, then the slice of the concatenated list this page covers.
    let count_only = |b: &Value| {
        let mut b = b.clone();
        if let Some(o) = b.as_object_mut() {
            o.insert("count".into(), Value::from(0));
        }
        ListParams::from_json(&b, max)
    };
    let users_counted = users::list_users(&state, &caller.connection_id, count_only(&body)?).await;
    let groups_counted = groups::list_groups(&state, &caller.connection_id, count_only(&body)?).await;
    // An attribute neither type has is a mistake in the filter, not a match of nothing.
    if names_unknown_attribute(&users_counted) && names_unknown_attribute(&groups_counted) {
        return users_counted.map(|_| HttpResponse::Ok().finish());
    }
    let (user_total, _) = part(users_counted).await?;
    let (group_total, _) = part(groups_counted).await?;
    let mut items = Vec::new();
    let offset = start - 1;
    if offset < user_total && count > 0 {
        let p = ListParams { count: count.min(user_total - offset), ..ListParams::from_json(&body, max)? };
        items.extend(part(users::list_users(&state, &caller.connection_id, p).await).await?.1);
    }
    let remaining = count.saturating_sub(items.len() as u64);
    if remaining > 0 {
        let group_start = offset.saturating_sub(user_total) + 1;
        if group_start <= group_total {
            let mut p = ListParams::from_json(&body, max)?;
            p.start_index = group_start;
            p.count = remaining;
            items.extend(part(groups::list_groups(&state, &caller.connection_id, p).await).await?.1);
        }
    }
    state.log_sink.record(ctx.entry(state.clock.now(), "read", None, None, None, 200, None));
    Ok(scim_json(StatusCode::OK, &list_response(user_total + group_total, start, items)))
}
