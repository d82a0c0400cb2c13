//! `/api/v1/events`: the directory event feed, every change the customers'
//! IdPs made over SCIM (users created, changed, deactivated, reactivated
//! and deleted; groups created, changed and deleted; members added and
//! removed; connections deleted), oldest first, in the order the changes
//! committed, resumable from a cursor (see `tandem_store::events`).

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Value};
use std::collections::HashMap;
use tandem_core::format_time;
use tandem_store::events::{self, Cursor, EventRow, Narrowing, Position, TYPES};
use tandem_store::from_micros;

/// An event as the feed and the webhooks give it.
pub(crate) fn render(e: &EventRow) -> Value {
    json!({
        "id": e.cursor().text(),
        "type": e.event_type,
        "occurred_at": format_time(from_micros(e.created_at)),
        "customer_id": e.customer_id,
        "scim_connection_id": e.scim_connection_id,
        "data": serde_json::from_str::<Value>(&e.data).unwrap_or(json!({})),
    })
}

/// Reads `type`: event types separated by commas, each one of [`TYPES`].
fn types(query: &HashMap<String, String>) -> Result<Option<Vec<String>>, ApiError> {
    let Some(list) = query.get("type") else {
        return Ok(None);
    };
    let named: Vec<String> = list.split(',').map(|t| t.trim().to_string()).collect();
    if let Some(bad) = named.iter().find(|t| !TYPES.contains(&t.as_str())) {
        return Err(ApiError::invalid_field(
            "type",
            format!("unknown event type {bad:?}; the types are {} (several separated by commas)", TYPES.join(", ")),
        ));
    }
    Ok(Some(named))
}

/// `GET /api/v1/events?after=&limit=&customer_id=&scim_connection_id=&type=`
pub async fn list(state: web::Data<AppState>, _c: Caller, query: super::Params) -> Result<HttpResponse, ApiError> {
    let (after, limit) = super::page(&query, &["customer_id", "scim_connection_id", "type"])?;
    let from = match after.as_deref() {
        None => None,
        Some(cursor) => Some(Cursor::parse(cursor).ok_or_else(|| {
            ApiError::invalid_field(
                "after",
                "not a cursor of this feed: pass an event's id or a next_cursor as it was given",
            )
        })?),
    };
    let narrowing = Narrowing {
        customer_id: query.get("customer_id").cloned(),
        scim_connection_id: query.get("scim_connection_id").cloned(),
        types: types(&query)?,
    };
    let page = match state.store.read(move |c| narrowing.page_from(c, from, limit)).await? {
        Ok(page) => page,
        Err(mark) => return Err(expired(mark)),
    };
    Ok(HttpResponse::Ok().json(json!({
        "data": page.events.iter().map(render).collect::<Vec<_>>(),
        "next_cursor": page.reached_cursor.map(Cursor::text),
        "has_more": page.has_more,
    })))
}

/// `GET /api/v1/events/cursor`: the cursor of the newest event, to follow
/// the feed from now on (after reading the users and groups as they are).
pub async fn cursor(state: web::Data<AppState>, _c: Caller, query: super::Params) -> Result<HttpResponse, ApiError> {
    super::known_params(&query, &[])?;
    let latest = state.store.read(events::latest_cursor).await?;
    Ok(HttpResponse::Ok().json(json!({"cursor": latest.map(Cursor::text)})))
}

/// 410 `EventCursorExpired`: events after the cursor are gone (the
/// retention purge deleted them), or the cursor is one the database has not
/// reached (it was restored from an older backup, or moved to another
/// PostgreSQL server).
fn expired(mark: Option<Position>) -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "EventCursorExpired",
        "events after this cursor are no longer in the feed: the retention purge deleted them \
         (database.log_retention_days), or the database was restored from an older backup or moved to another \
         server since the cursor was given. Some may have been missed: read the users and groups again, then \
         follow the feed from GET /api/v1/events/cursor",
    )
    .with_details(json!({"purged_through": mark.map(Position::cursor)}))
}
