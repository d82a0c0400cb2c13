//! `/Users`: create, read, list, replace, patch, delete.

use super::auth::ScimCaller;
use super::dispatch::ResourceId;
use super::request::{
    ignored_reasons, json_body, listed, projection, read_update, refused, ListParams, LogContext, Transform, UpdateKind,
};
use super::response::{check_if_match, if_match, meta, meta_text, not_modified, resource, resource_text, ScimFailure};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use std::collections::HashMap;
use tandem_scim::resource::{
    check_projection, default_view, list_response, list_response_text, normalize, project, write_pair,
};
use tandem_scim::schema::ResourceType;
use tandem_scim::ScimError;
use tandem_store::events::NewEvent;
use tandem_store::scim::logs;
use tandem_store::scim::users::{self, ScimUserRow, UserWriteError};
use tandem_store::{AnyConnection, StoreError};

const RT: ResourceType = ResourceType::User;

fn location(state: &AppState, connection: &str, id: &str) -> String {
    format!("{}/scim/v2/{connection}/Users/{id}", state.settings.public_url)
}

/// The full SCIM representation of a stored user.
pub fn render(state: &AppState, row: &ScimUserRow, groups: Option<&[(String, String)]>) -> Value {
    render_doc(state, row, row.document(), groups)
}

/// [`render`] from the stored document already parsed (a write has it in
/// hand: parsing the stored text again cost a create ~5 % of its instructions).
fn render_doc(state: &AppState, row: &ScimUserRow, mut doc: Value, groups: Option<&[(String, String)]>) -> Value {
    let loc = location(state, &row.scim_connection_id, &row.id);
    if let Some(o) = doc.as_object_mut() {
        o.insert("id".into(), json!(row.id));
        if let Some(groups) = groups.filter(|g| !g.is_empty()) {
            o.insert("groups".into(), group_refs(state, row, groups));
        }
        o.insert("meta".into(), meta("User", row.created_at, row.updated_at, row.version, &loc));
    }
    doc
}

/// A user's `groups`: the groups it is a direct member of, as (id, display name).
fn group_refs(state: &AppState, row: &ScimUserRow, groups: &[(String, String)]) -> Value {
    let items = groups
        .iter()
        .map(|(gid, name)| {
            json!({"value": gid, "display": name, "type": "direct",
                   "$ref": format!("{}/scim/v2/{}/Groups/{gid}", state.settings.public_url, row.scim_connection_id)})
        })
        .collect();
    Value::Array(items)
}

/// A user's answer with no `attributes`/`excludedAttributes`, written from
/// its stored text with `id`, `meta` and `groups` put in ([`default_view`]:
/// building it as a `Value` and projecting it took half of a lookup handler's
/// instructions). `None` when the projection would change the stored
/// document; the caller then builds the answer as a `Value`.
fn default_text(state: &AppState, row: &ScimUserRow, groups: Option<&[(String, String)]>) -> Option<String> {
    let id = serde_json::to_string(&row.id).ok()?;
    let loc = location(state, &row.scim_connection_id, &row.id);
    let meta = meta_text("User", row.created_at, row.updated_at, row.version, &loc);
    let groups = groups.filter(|g| !g.is_empty()).map(|g| tandem_scim::to_text(&group_refs(state, row, g)));
    let mut added = vec![("id", id.as_str()), ("meta", meta.as_str())];
    if let Some(g) = &groups {
        added.push(("groups", g.as_str()));
    }
    default_view(RT, &row.resource, &added)
}

/// A user's answer to a read with the given attribute lists.
fn projected_text(
    state: &AppState,
    row: &ScimUserRow,
    groups: Option<&[(String, String)]>,
    attributes: Option<&str>,
    excluded: Option<&str>,
) -> Result<String, ScimError> {
    if attributes.is_none() && excluded.is_none() {
        if let Some(text) = default_text(state, row, groups) {
            return Ok(text);
        }
    }
    Ok(tandem_scim::to_text(&project(render(state, row, groups), RT, attributes, excluded)?))
}

fn not_found(id: &str) -> ScimError {
    // A key pasted where the id goes is cut to its prefix (the detail is logged and kept).
    ScimError::not_found(format!("user {:?} not found in this SCIM connection", tandem_core::keys::redact_keys(id)))
}

/// A userName clash that failed (and so rolled back) a transaction, as SCIM's 409.
fn conflict_as_uniqueness(e: StoreError) -> ScimFailure {
    match e {
        StoreError::Conflict(name) => ScimFailure(taken(&name)),
        other => other.into(),
    }
}

fn taken(name: &str) -> ScimError {
    ScimError::uniqueness(format!("userName {name:?} is already taken in this SCIM connection"))
}

/// How a change to `active` reads in the log.
pub fn classify(before_active: bool, after_active: bool) -> &'static str {
    match (before_active, after_active) {
        (true, false) => "deactivate",
        (false, true) => "reactivate",
        _ => "update",
    }
}

/// The directory event of a user change the log calls `op`.
fn user_event(op: &str) -> &'static str {
    match op {
        "deactivate" => "user.deactivated",
        "reactivate" => "user.reactivated",
        _ => "user.updated",
    }
}

/// The attribute names in a change's log reasons.
pub(crate) fn changed_names(reasons: &[Value]) -> Vec<String> {
    reasons.iter().filter_map(|r| r.get("attribute").and_then(Value::as_str)).map(str::to_string).collect()
}

/// `POST /Users`; the answer follows `attributes` / `excludedAttributes`
/// when the request gives them (RFC 7644 §3.9).
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ScimCaller,
    query: web::Query<HashMap<String, String>>,
    payload: web::Payload,
) -> Result<HttpResponse, ScimFailure> {
    let ctx = LogContext::new(&req, &caller.connection_id);
    let (attributes, excluded) = projection(&query);
    let outcome = async {
        // A malformed projection is refused before anything is written.
        check_projection(RT, attributes.as_deref(), excluded.as_deref())?;
        let body = json_body(&state, payload).await?;
        let ignored = tandem_scim::resource::ignored_attributes(RT, &body);
        let doc = normalize(RT, body)?;
        let now = state.clock.now();
        // The stored text and the answer are written in one pass: a new user
        // is version 1, created and modified now, under an id chosen here.
        let id = tandem_core::new_id();
        let at = tandem_store::micros(now);
        let loc = location(&state, &caller.connection_id, &id);
        let meta = meta_text("User", at, at, 1, &loc);
        let pair = serde_json::to_string(&id).ok().and_then(|id| write_pair(&doc, &[("id", &id), ("meta", &meta)]));
        let (text, answer) = match pair {
            Some((text, answer)) => (text, Some(answer)),
            None => (tandem_scim::to_text(&doc), None),
        };
        let (conn, log) = (caller.connection_id.clone(), ctx.clone());
        let created = state
            .store
            .write_small(move |c| match users::insert_written(c, &conn, id, &doc, text, now) {
                Ok(row) => {
                    let mut entry =
                        log.entry(now, "create", Some("User"), Some(&row.id), Some(&row.user_name), 201, None);
                    if !ignored.is_empty() {
                        entry.reasons = tandem_scim::to_text(&Value::Array(ignored_reasons(&ignored)));
                    }
                    logs::insert_change(c, &entry, &conn, now, &[NewEvent::user("user.created", &row, &[])])?;
                    Ok((row, doc))
                }
                // Failing the transaction rolls it back on both backends.
                Err(UserWriteError::UserNameTaken(n)) => Err(StoreError::Conflict(n)),
                Err(UserWriteError::Store(e)) => Err(e),
            })
            .await
            .map_err(conflict_as_uniqueness)?;
        let answer = answer.filter(|_| created_as_written(&created.0, at));
        Ok::<_, ScimFailure>((created, answer, loc))
    }
    .await;
    let ((row, doc), answer, loc) = outcome.map_err(|e| refused(&state, &ctx, "User", None, e))?;
    if attributes.is_some() || excluded.is_some() {
        let body = project(render_doc(&state, &row, doc, None), RT, attributes.as_deref(), excluded.as_deref())
            .map_err(|e| refused(&state, &ctx, "User", Some(&row.id), e.into()))?;
        return Ok(resource(StatusCode::CREATED, &body, row.version, Some(&loc)));
    }
    let body = answer.unwrap_or_else(|| tandem_scim::to_text(&render_doc(&state, &row, doc, None)));
    Ok(resource_text(StatusCode::CREATED, body, row.version, Some(&loc)))
}

/// Whether a created row has the version and times its answer was written with.
fn created_as_written(row: &ScimUserRow, at: i64) -> bool {
    row.version == 1 && row.created_at == at && row.updated_at == at
}

/// `GET /Users/{id}`
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ScimCaller,
    ResourceId(id): ResourceId,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ScimFailure> {
    let ctx = LogContext::new(&req, &caller.connection_id);
    let (conn, key) = (caller.connection_id.clone(), id.clone());
    let found = state
        .store
        .read_indexed(move |c| {
            let Some(row) = users::get(c, &conn, &key)? else {
                return Ok(None);
            };
            let groups = users::groups_of(c, std::slice::from_ref(&row.id))?.remove(&row.id).unwrap_or_default();
            Ok(Some((row, groups)))
        })
        .await?;
    let Some((row, groups)) = found else {
        return Err(refused(&state, &ctx, "User", Some(&id), not_found(&id).into()));
    };
    // Logged with the status sent: 304, or 200 once the projection is made
    // (a projection refused is logged as that refusal only).
    let read = |status: u16| {
        let entry =
            ctx.entry(state.clock.now(), "read", Some("User"), Some(&row.id), Some(&row.user_name), status, None);
        state.log_sink.record(entry);
    };
    if not_modified(&req, row.version) {
        read(304);
        return Ok(super::response::not_modified_answer(row.version));
    }
    let (attrs, excluded) = projection(&query);
    let body = projected_text(&state, &row, Some(&groups), attrs.as_deref(), excluded.as_deref())
        .map_err(|e| refused(&state, &ctx, "User", Some(&id), e.into()))?;
    read(200);
    Ok(resource_text(StatusCode::OK, body, row.version, None))
}

/// A page of a list or search: the total, the users, and each one's groups when they are wanted.
async fn read_page(state: &AppState, connection: &str, params: &ListParams) -> Result<users::Page, ScimFailure> {
    // Refused whether or not anything matches, before the read.
    check_projection(RT, params.attributes.as_deref(), params.excluded.as_deref())?;
    let conn = connection.to_string();
    let want_groups = params.wants("groups");
    let filter = params.filter.clone();
    let (start, count) = (params.start_index, params.count);
    let indexed = users::is_point_search(filter.as_ref());
    let run =
        move |c: &mut AnyConnection| users::search_with_groups(c, &conn, filter.as_ref(), (start, count), want_groups);
    Ok(if indexed { state.store.read_indexed(run).await } else { state.store.read(run).await }??)
}

/// Runs a list or search and renders the ListResponse.
pub async fn list_users(state: &AppState, connection: &str, params: ListParams) -> Result<Value, ScimFailure> {
    let ((total, rows), groups) = read_page(state, connection, &params).await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let g = groups.get(&row.id).map(Vec::as_slice).or(Some(&[]));
        items.push(project(render(state, row, g), RT, params.attributes.as_deref(), params.excluded.as_deref())?);
    }
    Ok(list_response(total.max(0) as u64, params.start_index, items))
}

/// [`list_users`] written out; each user written from its stored text where it can be.
async fn list_users_text(state: &AppState, connection: &str, params: ListParams) -> Result<String, ScimFailure> {
    let ((total, rows), groups) = read_page(state, connection, &params).await?;
    let (attributes, excluded) = (params.attributes.as_deref(), params.excluded.as_deref());
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let g = groups.get(&row.id).map(Vec::as_slice).or(Some(&[]));
        items.push(projected_text(state, row, g, attributes, excluded)?);
    }
    Ok(list_response_text(total.max(0) as u64, params.start_index, &items))
}

/// `GET /Users`
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ScimCaller,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ScimFailure> {
    let ctx = LogContext::new(&req, &caller.connection_id);
    let outcome = async {
        let params = ListParams::from_query(&query, state.settings.scim_max_results)?;
        list_users_text(&state, &caller.connection_id, params).await
    }
    .await;
    listed(&state, &ctx, "User", outcome)
}

/// `POST /Users/.search`
pub async fn search(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ScimCaller,
    payload: web::Payload,
) -> Result<HttpResponse, ScimFailure> {
    let ctx = LogContext::new(&req, &caller.connection_id);
    let outcome = async {
        let body = json_body(&state, payload).await?;
        let params = ListParams::from_json(&body, state.settings.scim_max_results)?;
        list_users_text(&state, &caller.connection_id, params).await
    }
    .await;
    listed(&state, &ctx, "User", outcome)
}

/// Applies `transform` to a stored user inside one transaction and logs
/// what it amounted to (update, deactivate, reactivate, or skip).
/// The answer is the user, projected by `attributes` / `excludedAttributes`
/// when the request gives them (RFC 7644 §3.5.2).
async fn update(
    state: &AppState,
    ctx: &LogContext,
    id: &str,
    if_match: Option<String>,
    (transform, ignored): (Transform, Vec<String>),
    (attributes, excluded): (Option<String>, Option<String>),
) -> Result<HttpResponse, ScimFailure> {
    check_projection(RT, attributes.as_deref(), excluded.as_deref())
        .map_err(|e| refused(state, ctx, "User", Some(id), e.into()))?;
    let now = state.clock.now();
    let (conn, key, log) = (ctx.connection_id.clone(), id.to_string(), ctx.clone());
    let (row, groups, doc) = state
        .store
        .write_small(move |c| {
            let Some(current) = users::get_for_change(c, &conn, &key)? else {
                return Ok(Err(not_found(&key)));
            };
            if let Err(e) = check_if_match(if_match.as_deref(), current.version) {
                return Ok(Err(e));
            }
            let stored = current.document();
            let next = match transform(&stored) {
                Ok(doc) => doc,
                Err(e) => return Ok(Err(e)),
            };
            let (row, op) = if next == stored {
                (current, "skip")
            } else {
                match users::replace(c, &current, &next, now) {
                    Ok(row) => {
                        let op = classify(current.active, row.active);
                        (row, op)
                    }
                    Err(UserWriteError::UserNameTaken(n)) => return Err(StoreError::Conflict(n)),
                    Err(UserWriteError::Store(e)) => return Err(e),
                }
            };
            let mut entry = log.entry(now, op, Some("User"), Some(&row.id), Some(&row.user_name), 200, None);
            let mut reasons =
                if op == "skip" { Vec::new() } else { tandem_scim::resource::changed_attributes(&stored, &next) };
            let made: Vec<NewEvent> = if op == "skip" {
                Vec::new()
            } else {
                vec![NewEvent::user(user_event(op), &row, &changed_names(&reasons))]
            };
            reasons.extend(ignored_reasons(&ignored));
            if !reasons.is_empty() {
                entry.reasons = tandem_scim::to_text(&Value::Array(reasons));
            }
            logs::insert_change(c, &entry, &conn, now, &made)?;
            let groups = users::groups_of(c, std::slice::from_ref(&row.id))?.remove(&row.id).unwrap_or_default();
            Ok(Ok((row, groups, next)))
        })
        .await
        .map_err(|e| refused(state, ctx, "User", Some(id), conflict_as_uniqueness(e)))?
        .map_err(|e| refused(state, ctx, "User", Some(id), e.into()))?;
    let body = project(render_doc(state, &row, doc, Some(&groups)), RT, attributes.as_deref(), excluded.as_deref())
        .map_err(|e| refused(state, ctx, "User", Some(id), e.into()))?;
    Ok(resource(StatusCode::OK, &body, row.version, None))
}

/// `PUT /Users/{id}`: full replacement (Okta sends every update, deactivation included, this way).
pub async fn replace(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ScimCaller,
    ResourceId(id): ResourceId,
    query: web::Query<HashMap<String, String>>,
    payload: web::Payload,
) -> Result<HttpResponse, ScimFailure> {
    let ctx = LogContext::new(&req, &caller.connection_id);
    let (transform, ignored) = read_update(&state, &ctx, RT, &id, UpdateKind::Replace, payload).await?;
    update(&state, &ctx, &id, if_match(&req), (transform, ignored), projection(&query)).await
}

/// `PATCH /Users/{id}`: RFC 7644 §3.5.2 with what Entra and Okta send.
pub async fn patch(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ScimCaller,
    ResourceId(id): ResourceId,
    query: web::Query<HashMap<String, String>>,
    payload: web::Payload,
) -> Result<HttpResponse, ScimFailure> {
    let ctx = LogContext::new(&req, &caller.connection_id);
    let (transform, ignored) = read_update(&state, &ctx, RT, &id, UpdateKind::Patch, payload).await?;
    update(&state, &ctx, &id, if_match(&req), (transform, ignored), projection(&query)).await
}

/// `DELETE /Users/{id}`: gone from SCIM reads; a tombstone stays so a later
/// login is refused as deleted rather than never provisioned.
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ScimCaller,
    ResourceId(id): ResourceId,
) -> Result<HttpResponse, ScimFailure> {
    let ctx = LogContext::new(&req, &caller.connection_id);
    let now = state.clock.now();
    let if_match = if_match(&req);
    let (conn, key, log) = (caller.connection_id.clone(), id.clone(), ctx.clone());
    let held_by = state
        .store
        .write(move |c| {
            let Some(current) = users::get_for_update(c, &conn, &key)? else {
                return Ok(Err(not_found(&key)));
            };
            if let Err(e) = check_if_match(if_match.as_deref(), current.version) {
                return Ok(Err(e));
            }
            let held_by = tandem_store::scim::groups::holding(c, &key)?;
            users::tombstone(c, &conn, &key, now)?;
            let mut gone = vec![NewEvent::user("user.deleted", &current, &[]).deleted()];
            gone.extend(held_by.iter().map(|g| NewEvent::member("group.member_removed", g, (&key, "User"), None)));
            let entry = log.entry(now, "delete", Some("User"), Some(&key), Some(&current.user_name), 204, None);
            logs::insert_change(c, &entry, &conn, now, &gone)?;
            Ok(Ok(held_by))
        })
        .await?
        .map_err(|e| refused(&state, &ctx, "User", Some(&id), e.into()))?;
    super::groups::members_changed(&state, &caller.connection_id, held_by).await;
    Ok(HttpResponse::NoContent().finish())
}
