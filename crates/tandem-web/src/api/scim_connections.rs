//! `/api/v1/scim-connections`: create (the key is returned once), fetch,
//! patch, delete, rotate the key.

use crate::auth::Caller;
use crate::body;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use serde_json::{json, Value};
use tandem_core::format_time;
use tandem_core::scim_connection::{parse_request, warning_level, KeyTtl};
use tandem_store::scim_connections::{self as repo, ScimApiKeyRow, ScimConnectionRow};
use tandem_store::{audit, from_micros};

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("ScimConnectionNotFound", format!("no SCIM connection {id:?}"))
}

fn ttl_days(ttl: KeyTtl, default_days: Option<u64>) -> Option<i64> {
    match ttl {
        KeyTtl::Default => default_days.map(|d| d as i64),
        KeyTtl::Never => None,
        KeyTtl::Days(d) => Some(d as i64),
    }
}

/// The API form of a connection with its current key's expiry.
fn render(state: &AppState, row: &ScimConnectionRow, key: Option<&ScimApiKeyRow>, in_grace: &[ScimApiKeyRow]) -> Value {
    let now = state.clock.now();
    let expires = key.and_then(ScimApiKeyRow::expires);
    // A rotated-out key works until its grace ends or it expires, whichever
    // comes first; one that expired in its grace is listed no more.
    let previous: Vec<(&ScimApiKeyRow, i64)> = in_grace
        .iter()
        .filter_map(|k| Some((k, k.works_until()?)))
        .filter(|(_, until)| *until > tandem_store::micros(now))
        .collect();
    json!({
        "scim_connection_id": row.id,
        "customer_id": row.customer_id,
        "scim_base_url": format!("{}/scim/v2/{}", state.settings.public_url, row.id),
        "api_key_prefix": key.map(|k| k.display_prefix.clone()),
        "api_key_ttl_days": row.api_key_ttl_days,
        "unknown_group_members": row.unknown_group_members,
        "api_key_expires_at": expires.map(format_time),
        "api_key_warning_level": warning_level(expires, now),
        "api_key_last_used_at": key.and_then(|k| k.last_used_at).map(|t| format_time(from_micros(t))),
        "previous_keys_valid_until": previous.iter().map(|(_, until)| format_time(from_micros(*until))).collect::<Vec<_>>(),
        "previous_keys": previous.iter().map(|(k, until)| json!({
            "api_key_prefix": k.display_prefix,
            "valid_until": format_time(from_micros(*until)),
            "last_used_at": k.last_used_at.map(|t| format_time(from_micros(t))),
        })).collect::<Vec<_>>(),
        "created_at": format_time(from_micros(row.created_at)),
        "updated_at": format_time(from_micros(row.updated_at)),
    })
}

pub(crate) async fn load(state: &AppState, id: String) -> Result<Value, ApiError> {
    let now = state.clock.now();
    let key = id.clone();
    let found = state
        .store
        .read(move |c| {
            let Some(row) = repo::get(c, &key)? else {
                return Ok(None);
            };
            let current = repo::current_key(c, &row.id)?;
            let grace = repo::keys_in_grace(c, &row.id, now)?;
            Ok(Some((row, current, grace)))
        })
        .await?;
    let (row, current, grace) = found.ok_or_else(|| not_found(&id))?;
    Ok(render(state, &row, current.as_ref(), &grace))
}

/// `POST /api/v1/scim-connections`
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = body::json(payload, &state.settings).await?;
    Ok(HttpResponse::Created().json(create_from(&state, caller, body).await?))
}

/// [`create`] of a body already read (a setup link's form makes one too):
/// the new connection's answer, with its key.
pub(crate) async fn create_from(state: &AppState, caller: Caller, body: Value) -> Result<Value, ApiError> {
    let req = parse_request(&body, true).map_err(ApiError::invalid_fields)?;
    let customer = req.customer_id.unwrap_or_default();
    let mode = req.unknown_group_members.unwrap_or("reject");
    let ttl = ttl_days(req.api_key_ttl, state.settings.scim_key_ttl_days);
    let now = state.clock.now();
    let (row, key, plaintext) = state
        .store
        .write(move |c| {
            tandem_store::oidc_clients::lock_customer(c, &customer)?;
            let created = repo::create(c, &customer, ttl, mode, now)?;
            audit::record(
                c,
                now,
                &caller.name,
                "scim_connection.created",
                ("scim_connection", &created.0.id),
                json!({"customer_id": customer, "api_key_ttl_days": ttl}),
            )?;
            pair_client(c, &customer, &created.0.id, &caller.name, now)?;
            Ok(created)
        })
        .await?;
    let mut out = render(state, &row, Some(&key), &[]);
    out["scim_api_key"] = json!(plaintext.0);
    Ok(out)
}

/// A new key for `customer`'s connection if its current key is still
/// `replaces` (the key a form showed: a second click replaces nothing), in
/// one transaction that finds the connection by that customer; audited as
/// made by `actor` `via` the dashboard or a setup link. The connection's
/// id and the outcome; `None` when the customer has no connection.
/// `now`: when the key is made (its predecessor works until then plus the
/// grace).
pub(crate) async fn rotate_customer_key(
    state: &AppState,
    customer: String,
    replaces: String,
    (actor, via): (String, &'static str),
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<(String, repo::Rotated)>, tandem_store::StoreError> {
    let grace = state.settings.scim_key_rotation_grace;
    let rotated = state
        .store
        .write(move |c| {
            let Some(conn) = repo::get_by_customer(c, &customer)? else { return Ok(None) };
            let rotated = repo::rotate_key_if_current(c, &conn.id, &replaces, grace, now)?;
            if matches!(rotated, repo::Rotated::Done(..)) {
                audit::record(
                    c,
                    now,
                    &actor,
                    "scim_connection.key_rotated",
                    ("scim_connection", &conn.id),
                    json!({"via": via, "grace_period_seconds": grace.num_seconds()}),
                )?;
            }
            Ok(Some((conn.id, rotated)))
        })
        .await;
    state.scim_keys.clear();
    rotated
}

/// Marks the OIDC client of `customer`, now paired with the connection
/// `connection_id`, as needing a SCIM user at login (see
/// [`tandem_store::oidc_clients::require_scim`]), and audits the change.
fn pair_client(
    c: &mut tandem_store::AnyConnection,
    customer: &str,
    connection_id: &str,
    actor: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), tandem_store::StoreError> {
    if let Some(client) = tandem_store::oidc_clients::require_scim(c, customer, now)? {
        audit::record(
            c,
            now,
            actor,
            "oidc_client.updated",
            ("oidc_client", &client),
            json!({"fields": ["scim_required"], "scim_required": {"old": false, "new": true},
                   "paired_with": {"scim_connection_id": connection_id}}),
        )?;
    }
    Ok(())
}

/// `GET /api/v1/scim-connections[?customer_id=…]`
pub async fn list(state: web::Data<AppState>, _caller: Caller, query: super::Params) -> Result<HttpResponse, ApiError> {
    let (after, limit) = super::id_page(&query, &["customer_id"])?;
    let customer = query.get("customer_id").cloned();
    // A customer has one connection at most: its page, past `after` or not, is the last.
    let page_limit = if customer.is_some() { i64::MAX } else { limit };
    let now = state.clock.now();
    let rows = state
        .store
        .read(move |c| {
            let rows: Vec<ScimConnectionRow> = match customer {
                Some(customer) => super::past_cursor(repo::get_by_customer(c, &customer)?, after.as_deref(), |r| &r.id),
                None => repo::list(c, after.as_deref(), limit)?,
            };
            rows.into_iter()
                .map(|r| {
                    let key = repo::current_key(c, &r.id)?;
                    let grace = repo::keys_in_grace(c, &r.id, now)?;
                    Ok((r, key, grace))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    let data: Vec<Value> = rows.iter().map(|(r, k, g)| render(&state, r, k.as_ref(), g)).collect();
    Ok(super::page_answer(&rows, page_limit, |r| &r.0.id, data))
}

/// `GET /api/v1/scim-connections/{id}`
pub async fn get(state: web::Data<AppState>, _caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(load(&state, id.into_inner()).await?))
}

/// `GET /api/v1/scim-connections/by-customer-id/{customer_id}`
pub async fn get_by_customer(
    state: web::Data<AppState>,
    _caller: Caller,
    customer: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let customer = customer.into_inner();
    let key = customer.clone();
    let row = state.store.read(move |c| repo::get_by_customer(c, &key)).await?.ok_or_else(|| {
        ApiError::not_found("ScimConnectionNotFound", format!("no SCIM connection for customer_id {customer:?}"))
    })?;
    Ok(HttpResponse::Ok().json(load(&state, row.id).await?))
}

/// `PATCH /api/v1/scim-connections/{id}`: `customer_id`, `api_key_ttl_days`.
pub async fn patch(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let body = body::json(payload, &state.settings).await?;
    let req = parse_request(&body, false).map_err(ApiError::invalid_fields)?;
    let ttl_given =
        body.get("api_key_ttl_days").is_some() || body.as_object().is_some_and(|o| o.contains_key("api_key_ttl_days"));
    let ttl = ttl_given.then(|| ttl_days(req.api_key_ttl, state.settings.scim_key_ttl_days));
    let now = state.clock.now();
    let key = id.clone();
    let updated = state
        .store
        .write(move |c| {
            if let Some(to) = req.customer_id.as_deref() {
                tandem_store::oidc_clients::lock_customer(c, to)?;
            }
            let updated = repo::update(c, &key, req.customer_id.as_deref(), ttl, req.unknown_group_members, now)?;
            if let Some((row, renamed)) = &updated {
                audit::record(c, now, &caller.name, "scim_connection.updated", ("scim_connection", &key), body)?;
                // Only a rename pairs: repeating the customer ID leaves an
                // explicit `scim_required: false` of its client alone.
                if let Some(old) = renamed {
                    pair_client(c, &row.customer_id, &key, &caller.name, now)?;
                    let via = "scim_connection.renamed";
                    super::setup_links::revoke_working_of(c, old, now, &caller.name, via)?;
                }
            }
            Ok(updated)
        })
        .await?;
    if updated.is_none() {
        return Err(not_found(&id));
    }
    state.scim_keys.clear();
    Ok(HttpResponse::Ok().json(load(&state, id).await?))
}

/// `DELETE /api/v1/scim-connections/{id}`: removes the connection and its
/// SCIM data, and revokes the customer's setup links still working.
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let target = ("scim_connection", id.as_str());
    let actor = caller.name.clone();
    let delete = move |c: &mut tandem_store::AnyConnection, k: &str, now| {
        let Some(row) = repo::get(c, k)? else { return Ok(false) };
        let existed = repo::delete(c, k, now)?;
        if existed {
            super::setup_links::revoke_working_of(c, &row.customer_id, now, &actor, "scim_connection.deleted")?;
        }
        Ok(existed)
    };
    let existed = super::delete_audited(&state, caller, target, "scim_connection.deleted", delete).await?;
    // Its keys stop working on this node at once (other nodes' caches within seconds).
    state.scim_keys.clear();
    if existed {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(not_found(&id))
    }
}

/// `POST /api/v1/scim-connections/{id}/rotate-key` `{"grace_period_hours": 24}` (optional):
/// a new key, shown once; the previous one keeps working for the grace period.
pub async fn rotate_key(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (grace, _) = super::rotation_grace(payload, &state.settings, false).await?;
    Ok(HttpResponse::Ok().json(rotate_key_of(&state, caller, id.into_inner(), grace).await?))
}

/// [`rotate_key`] with the grace read (`None`: the default): the
/// connection's answer, with its new key.
pub(crate) async fn rotate_key_of(
    state: &AppState,
    caller: Caller,
    id: String,
    grace: Option<chrono::Duration>,
) -> Result<Value, ApiError> {
    let grace = grace.unwrap_or(state.settings.scim_key_rotation_grace);
    let now = state.clock.now();
    let key = id.clone();
    let rotated = state
        .store
        .write(move |c| {
            let rotated = repo::rotate_key(c, &key, grace, now)?;
            if rotated.is_some() {
                audit::record(
                    c,
                    now,
                    &caller.name,
                    "scim_connection.key_rotated",
                    ("scim_connection", &key),
                    json!({"grace_period_seconds": grace.num_seconds()}),
                )?;
            }
            Ok(rotated)
        })
        .await?;
    state.scim_keys.clear();
    let (_, plaintext) = rotated.ok_or_else(|| not_found(&id))?;
    let mut out = load(state, id).await?;
    out["scim_api_key"] = json!(plaintext.0);
    Ok(out)
}
