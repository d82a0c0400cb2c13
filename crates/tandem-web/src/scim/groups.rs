//! `/Groups`: create (members included), read, list, replace, patch, delete.

use super::auth::ScimCaller;
use super::dispatch::ResourceId;
use super::request::{
    json_body, listed, patch_transform, projection, read_patch, read_update, refused, ListParams, LogContext,
    Transform, UpdateKind,
};
use super::response::{
    check_if_match, connection_gone, etag, if_match, meta, not_modified, resource, resource_text, ScimFailure,
};
use crate::state::{AppState, GroupPatchAnswer};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use std::collections::HashMap;
use tandem_scim::patch::{apply_patch, MemberPatch, MemberState};
use tandem_scim::resource::{check_projection, list_response, normalize, project};
use tandem_scim::schema::ResourceType;
use tandem_scim::ScimError;
use tandem_store::events::NewEvent;
use tandem_store::scim::groups::{self, GroupWriteError, Member, ScimGroupRow};
use tandem_store::scim::logs;

const RT: ResourceType = ResourceType::Group;

fn location(state: &AppState, connection: &str, kind: &str, id: &str) -> String {
    format!("{}/scim/v2/{connection}/{kind}/{id}", state.settings.public_url)
}

/// The full SCIM representation of a stored group.
pub fn render(state: &AppState, row: &ScimGroupRow, members: Option<&[Member]>) -> Value {
    let loc = location(state, &row.scim_connection_id, "Groups", &row.id);
    let mut doc = row.document();
    if let Some(o) = doc.as_object_mut() {
        o.insert("id".into(), json!(row.id));
        if let Some(members) = members {
            // The members as `render_text` writes them: one shape for both.
            let members = MembersText { state, connection: &row.scim_connection_id, members };
            o.insert("members".into(), serde_json::to_value(&members).unwrap_or_default());
        }
        o.insert("meta".into(), meta("Group", row.created_at, row.updated_at, row.version, &loc));
    }
    doc
}

/// [`render`] written out, members included, without building a JSON value
/// per member: a group of 10,000 members answers 2 MB, and the values cost
/// more than the text. The same text as `to_text(&render(..))` (keys in
/// byte order, a member's as `$ref`, `display`, `type`, `value`).
pub fn render_text(state: &AppState, row: &ScimGroupRow, members: &[Member]) -> String {
    let doc = render(state, row, None);
    let members = MembersText { state, connection: &row.scim_connection_id, members };
    let text = match doc.as_object() {
        Some(map) => serde_json::to_string(&WithMembers { map, members }),
        None => serde_json::to_string(&doc),
    };
    text.unwrap_or_else(|_| String::from("null"))
}

/// A group's document with its members put in at their place among the keys.
struct WithMembers<'a> {
    map: &'a serde_json::Map<String, Value>,
    members: MembersText<'a>,
}

impl serde::Serialize for WithMembers<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut out = s.serialize_map(Some(self.map.len() + 1))?;
        let mut placed = false;
        for (key, value) in self.map {
            if !placed && key.as_str() > "members" {
                out.serialize_entry("members", &self.members)?;
                placed = true;
            }
            out.serialize_entry(key, value)?;
        }
        if !placed {
            out.serialize_entry("members", &self.members)?;
        }
        out.end()
    }
}

struct MembersText<'a> {
    state: &'a AppState,
    connection: &'a str,
    members: &'a [Member],
}

#[derive(serde::Serialize)]
struct MemberText<'a> {
    #[serde(rename = "$ref")]
    reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'a str,
    value: &'a str,
}

impl serde::Serialize for MembersText<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut out = s.serialize_seq(Some(self.members.len()))?;
        for m in self.members {
            let kind = if m.kind == "Group" { "Groups" } else { "Users" };
            out.serialize_element(&MemberText {
                reference: location(self.state, self.connection, kind, &m.value),
                display: m.display.as_deref(),
                kind: &m.kind,
                value: &m.value,
            })?;
        }
        out.end()
    }
}

fn not_found(id: &str) -> ScimError {
    // A key pasted where the id goes is cut to its prefix (the detail is logged and kept).
    ScimError::not_found(format!("group {:?} not found in this SCIM connection", tandem_core::keys::redact_keys(id)))
}

fn write_error(e: GroupWriteError) -> Result<ScimError, tandem_store::StoreError> {
    match e {
        GroupWriteError::DisplayNameTaken(n) => {
            Ok(ScimError::uniqueness(format!("a group with displayName {n:?} already exists in this SCIM connection")))
        }
        GroupWriteError::UnknownMembers(ids) => {
            // Named up to a few: the message is logged, and a write may name
            // thousands of ids.
            const NAMED: usize = 10;
            let mut named = ids.iter().take(NAMED).map(|i| format!("{i:?}")).collect::<Vec<_>>().join(", ");
            if ids.len() > NAMED {
                named.push_str(&format!(" and {} more", ids.len() - NAMED));
            }
            Ok(ScimError::invalid_value(format!(
                "members.value: no user or group with id {named} in this SCIM connection"
            )))
        }
        GroupWriteError::SelfMember => {
            Ok(ScimError::invalid_value("members.value: a group cannot be a member of itself"))
        }
        GroupWriteError::Store(e) => Err(e),
    }
}

/// Whether the connection drops unknown member ids instead of refusing the
/// write; `None` when it was deleted. A group write's first statement: it
/// holds the connection until the write ends (see
/// `scim_connections::get_for_group_write`).
fn ignores_unknown(
    c: &mut tandem_store::AnyConnection,
    connection: &str,
) -> Result<Option<bool>, tandem_store::StoreError> {
    Ok(tandem_store::scim_connections::get_for_group_write(c, connection)?.map(|r| r.unknown_group_members == "ignore"))
}

/// Notes dropped member ids in a log entry.
fn with_ignored(entry: logs::ProvisioningLog, ignored: &[String]) -> logs::ProvisioningLog {
    with_reasons(entry, Vec::new(), ignored)
}

/// The entry with `changed` attributes and the ignored unknown members as its reasons.
fn with_reasons(
    mut entry: logs::ProvisioningLog,
    mut reasons: Vec<Value>,
    ignored: &[String],
) -> logs::ProvisioningLog {
    reasons.extend(
        ignored
            .iter()
            .map(|id| json!({"attribute": "members.value", "reason": format!("ignored unknown member {id:?}")})),
    );
    if !reasons.is_empty() {
        entry.reasons = tandem_scim::to_text(&Value::Array(reasons));
    }
    entry
}

/// A group write's directory events: the group's own (`kind`, when its
/// attributes changed), then a member event for each member it added or
/// removed.
fn group_events(written: &groups::Written, kind: impl Into<Option<&'static str>>, changed: &[String]) -> Vec<NewEvent> {
    let (group, version) = (&written.row.id, Some(written.row.version));
    let own = kind.into().map(|k| NewEvent::group(k, &written.row, changed));
    own.into_iter()
        .chain(written.added.iter().map(|(m, t)| NewEvent::member("group.member_added", group, (m, t), version)))
        .chain(written.removed.iter().map(|(m, t)| NewEvent::member("group.member_removed", group, (m, t), version)))
        .collect()
}

/// How the members changed, from two lists sorted by value.
fn members_change(before: &[groups::MemberRef], after: &[groups::MemberRef]) -> Option<Value> {
    let (mut i, mut j, mut added, mut removed) = (0, 0, 0usize, 0usize);
    while i < before.len() || j < after.len() {
        match (before.get(i), after.get(j)) {
            (Some(b), Some(a)) if b.value == a.value => (i, j) = (i + 1, j + 1),
            (Some(b), Some(a)) if b.value < a.value => (i, removed) = (i + 1, removed + 1),
            (Some(_), None) => (i, removed) = (i + 1, removed + 1),
            _ => (j, added) = (j + 1, added + 1),
        }
    }
    (added + removed > 0)
        .then(|| json!({"attribute": "members", "reason": format!("{added} added, {removed} removed")}))
}

/// `POST /Groups`
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
        let doc = normalize(RT, json_body(&state, payload).await?)?;
        let now = state.clock.now();
        let (conn, log) = (caller.connection_id.clone(), ctx.clone());
        let created = state
            .store
            .write(move |c| {
                let Some(ignore) = ignores_unknown(c, &conn)? else {
                    return Ok(Err(connection_gone()));
                };
                match groups::insert(c, &conn, doc, ignore, now) {
                    Ok(written) => {
                        let entry = log.entry(now, "create", Some("Group"), Some(&written.row.id), None, 201, None);
                        let made = group_events(&written, "group.created", &[]);
                        logs::insert_change(c, &with_ignored(entry, &written.ignored), &conn, now, &made)?;
                        let row = written.row;
                        let members =
                            groups::members_of(c, std::slice::from_ref(&row.id))?.remove(&row.id).unwrap_or_default();
                        Ok(Ok((row, members)))
                    }
                    Err(e) => write_error(e).map(Err),
                }
            })
            .await??;
        Ok::<_, ScimFailure>(created)
    }
    .await;
    let (row, members) = outcome.map_err(|e| refused(&state, &ctx, "Group", None, e))?;
    let loc = location(&state, &row.scim_connection_id, "Groups", &row.id);
    // The answer follows `attributes` / `excludedAttributes` when the request gives them (RFC 7644 §3.9).
    if attributes.is_some() || excluded.is_some() {
        let body = project(render(&state, &row, Some(&members)), RT, attributes.as_deref(), excluded.as_deref())
            .map_err(|e| refused(&state, &ctx, "Group", Some(&row.id), e.into()))?;
        return Ok(resource(StatusCode::CREATED, &body, row.version, Some(&loc)));
    }
    Ok(resource_text(StatusCode::CREATED, render_text(&state, &row, &members), row.version, Some(&loc)))
}

/// `GET /Groups/{id}`
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ScimCaller,
    ResourceId(id): ResourceId,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ScimFailure> {
    let ctx = LogContext::new(&req, &caller.connection_id);
    let (attrs, excluded) = projection(&query);
    let params = ListParams { attributes: attrs.clone(), excluded: excluded.clone(), ..Default::default() };
    let want_members = params.wants("members");
    let (conn, key) = (caller.connection_id.clone(), id.clone());
    let found = state
        .store
        .read(move |c| {
            let Some(row) = groups::get(c, &conn, &key)? else {
                return Ok(None);
            };
            let members = if want_members {
                Some(groups::members_of(c, std::slice::from_ref(&row.id))?.remove(&row.id).unwrap_or_default())
            } else {
                None
            };
            Ok(Some((row, members)))
        })
        .await?;
    let Some((row, members)) = found else {
        return Err(refused(&state, &ctx, "Group", Some(&id), not_found(&id).into()));
    };
    // Logged with the status sent: 304, or 200 once the projection is made.
    let read = |status: u16| {
        state.log_sink.record(ctx.entry(state.clock.now(), "read", Some("Group"), Some(&row.id), None, status, None));
    };
    if not_modified(&req, row.version) {
        read(304);
        return Ok(super::response::not_modified_answer(row.version));
    }
    if let (None, None, Some(members)) = (&attrs, &excluded, &members) {
        read(200);
        return Ok(resource_text(StatusCode::OK, render_text(&state, &row, members), row.version, None));
    }
    let body = project(render(&state, &row, members.as_deref()), RT, attrs.as_deref(), excluded.as_deref())
        .map_err(|e| refused(&state, &ctx, "Group", Some(&id), e.into()))?;
    read(200);
    Ok(resource(StatusCode::OK, &body, row.version, None))
}

/// Runs a list or search and renders the ListResponse.
pub async fn list_groups(state: &AppState, connection: &str, params: ListParams) -> Result<Value, ScimFailure> {
    // Refused whether or not anything matches, before the read.
    check_projection(RT, params.attributes.as_deref(), params.excluded.as_deref())?;
    let conn = connection.to_string();
    let want_members = params.wants("members");
    let filter = params.filter.clone();
    let (start, count) = (params.start_index, params.count);
    let budget = state.settings.scim_members_per_page;
    let ((total, rows), members) = state
        .store
        .read(move |c| {
            let mut page = match groups::search(c, &conn, filter.as_ref(), start, count)? {
                Ok(p) => p,
                Err(e) => return Ok(Err(e)),
            };
            let members = if want_members {
                let ids: Vec<String> = page.1.iter().map(|r| r.id.clone()).collect();
                // A page holds its groups' members whole: one of up to
                // `count` groups of many thousand members each would be held
                // in memory at once. It ends at the group that takes it past
                // `scim.members_per_page` (one group at least); `itemsPerPage`
                // says how many came, and the next page starts after them
                // (RFC 7644 §3.4.2.4 lets a page hold fewer than asked).
                let counts = groups::member_counts(c, &ids)?;
                let mut listed = 0u64;
                let kept = ids
                    .iter()
                    .enumerate()
                    .take_while(|(i, id)| {
                        listed += counts.get(*id).map_or(0, |n| u64::try_from(*n).unwrap_or(0));
                        *i == 0 || listed <= budget
                    })
                    .count();
                page.1.truncate(kept);
                groups::members_of(c, &ids[..kept])?
            } else {
                HashMap::new()
            };
            Ok(Ok((page, members)))
        })
        .await??;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let m = want_members.then(|| members.get(&row.id).map(Vec::as_slice).unwrap_or(&[]));
        items.push(project(render(state, row, m), RT, params.attributes.as_deref(), params.excluded.as_deref())?);
    }
    Ok(list_response(total.max(0) as u64, params.start_index, items))
}

/// `GET /Groups`
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ScimCaller,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ScimFailure> {
    let ctx = LogContext::new(&req, &caller.connection_id);
    let outcome = async {
        let params = ListParams::from_query(&query, state.settings.scim_max_results)?;
        list_groups(&state, &caller.connection_id, params).await.map(|v| tandem_scim::to_text(&v))
    }
    .await;
    listed(&state, &ctx, "Group", outcome)
}

/// `POST /Groups/.search`
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
        list_groups(&state, &caller.connection_id, params).await.map(|v| tandem_scim::to_text(&v))
    }
    .await;
    listed(&state, &ctx, "Group", outcome)
}

/// How an update changes a group.
enum Edit {
    /// A PUT, or a PATCH that needs the whole member list: `transform` runs
    /// on the document with its members.
    Whole(Transform),
    /// A PATCH whose member edits are applied to the members they name; when
    /// the operations on the rest of the group are refused, the transform
    /// runs as in [`Edit::Whole`] and gives the refusal.
    Members(MemberPatch, Transform),
}

/// What an update answers: the whole group; 204 No Content; or the group
/// projected by `attributes` or `excludedAttributes`.
enum Answer {
    Whole,
    NoContent,
    Projected { attributes: Option<String>, excluded: Option<String> },
}

impl Answer {
    /// A PUT's or PATCH's answer: `unprojected`, unless the request asks for
    /// attributes (`attributes` / `excludedAttributes`).
    fn pick(unprojected: Answer, (attributes, excluded): (Option<String>, Option<String>)) -> Answer {
        match (attributes, excluded) {
            (None, None) => unprojected,
            (attributes, excluded) => Answer::Projected { attributes, excluded },
        }
    }

    fn wants_members(&self) -> bool {
        match self {
            Answer::Whole => true,
            Answer::NoContent => false,
            Answer::Projected { attributes, excluded } => {
                ListParams { attributes: attributes.clone(), excluded: excluded.clone(), ..Default::default() }
                    .wants("members")
            }
        }
    }
}

/// A group before and after an edit: documents without members, and the
/// members compared (all of them, or both sides limited to those a PATCH names).
struct Change {
    doc: Value,
    next_doc: Value,
    before: Vec<groups::MemberRef>,
    after: Vec<groups::MemberRef>,
}

/// The change `transform` makes to the group with all its members.
fn whole_change(
    c: &mut tandem_store::AnyConnection,
    current: &ScimGroupRow,
    transform: Transform,
) -> Result<Result<Change, ScimError>, tandem_store::StoreError> {
    let mut doc = current.document();
    // With each member's type, which a value filter may compare (`members[type eq "Group"]`).
    let typed = groups::member_refs_typed(c, &current.id)?;
    if let Some(o) = doc.as_object_mut() {
        let items = typed
            .iter()
            .map(|(m, kind)| match &m.display {
                Some(d) => json!({"value": m.value, "display": d, "type": kind}),
                None => json!({"value": m.value, "type": kind}),
            })
            .collect();
        o.insert("members".into(), Value::Array(items));
    }
    let refs: Vec<groups::MemberRef> = typed.into_iter().map(|(m, _)| m).collect();
    let next = match transform(&doc) {
        Ok(n) => n,
        Err(e) => return Ok(Err(e)),
    };
    // The stored document again, without the members put in for the transform.
    if let Some(o) = doc.as_object_mut() {
        o.remove("members");
    }
    // In member order, as `refs` are stored (the order carries no meaning).
    let (next_doc, mut after) = groups::split_members(next);
    after.sort_by(|a, b| a.value.cmp(&b.value));
    Ok(Ok(Change { doc, next_doc, before: refs, after }))
}

/// The change a member PATCH makes, reading only the members it names;
/// `None` when the operations on the rest of the group are refused.
fn member_change(
    c: &mut tandem_store::AnyConnection,
    current: &ScimGroupRow,
    plan: &MemberPatch,
) -> Result<Option<Change>, tandem_store::StoreError> {
    let doc = current.document();
    let next_doc = if plan.rest.is_empty() {
        doc.clone()
    } else {
        let mut next = doc.clone();
        match apply_patch(&mut next, &plan.rest, RT).and_then(|()| normalize(RT, next)) {
            Ok(n) => n,
            Err(_) => return Ok(None),
        }
    };
    let before =
        if plan.edits_members() { groups::member_refs_among(c, &current.id, &plan.touched())? } else { Vec::new() };
    let stored: Vec<MemberState> = before.iter().map(|m| (m.value.clone(), m.display.clone())).collect();
    let after =
        plan.members_after(&stored).into_iter().map(|(value, display)| groups::MemberRef { value, display }).collect();
    Ok(Some(Change { doc, next_doc, before, after }))
}

/// Applies `edit` to a stored group in one transaction; only changed
/// membership rows are written.
async fn update(
    state: &AppState,
    ctx: &LogContext,
    id: &str,
    if_match: Option<String>,
    edit: Edit,
    answer: Answer,
) -> Result<HttpResponse, ScimFailure> {
    if let Answer::Projected { attributes, excluded } = &answer {
        check_projection(RT, attributes.as_deref(), excluded.as_deref())
            .map_err(|e| refused(state, ctx, "Group", Some(id), e.into()))?;
    }
    let now = state.clock.now();
    let want_members = answer.wants_members();
    let status: u16 = if matches!(answer, Answer::NoContent) { 204 } else { 200 };
    let (conn, key, log) = (ctx.connection_id.clone(), id.to_string(), ctx.clone());
    let (row, members) = state
        .store
        .write(move |c| {
            let Some(ignore) = ignores_unknown(c, &conn)? else {
                return Ok(Err(connection_gone()));
            };
            let Some(current) = groups::get_for_change(c, &conn, &key)? else {
                return Ok(Err(not_found(&key)));
            };
            if let Err(e) = check_if_match(if_match.as_deref(), current.version) {
                return Ok(Err(e));
            }
            let planned = match &edit {
                Edit::Members(plan, _) => member_change(c, &current, plan)?,
                Edit::Whole(_) => None,
            };
            let change = match (planned, edit) {
                (Some(change), _) => change,
                (None, Edit::Whole(transform) | Edit::Members(_, transform)) => {
                    match whole_change(c, &current, transform)? {
                        Ok(change) => change,
                        Err(e) => return Ok(Err(e)),
                    }
                }
            };
            let Change { doc, next_doc, before, after } = change;
            let (mut changed, mut made) = (Vec::new(), Vec::new());
            let row = if next_doc == doc && after == before {
                (current, "skip", Vec::new())
            } else {
                changed = tandem_scim::resource::changed_attributes(&doc, &next_doc);
                let attributes = super::users::changed_names(&changed);
                changed.extend(members_change(&before, &after));
                match groups::replace(c, &current, &before, (next_doc, after), ignore, now) {
                    Ok(written) => {
                        let kind = if attributes.is_empty() { None } else { Some("group.updated") };
                        made = group_events(&written, kind, &attributes);
                        (written.row, "update", written.ignored)
                    }
                    Err(e) => return write_error(e).map(Err),
                }
            };
            let (row, op, ignored) = (row.0, row.1, row.2);
            let entry = log.entry(now, op, Some("Group"), Some(&row.id), None, status, None);
            logs::insert_change(c, &with_reasons(entry, changed, &ignored), &conn, now, &made)?;
            let members = if want_members {
                Some(groups::members_of(c, std::slice::from_ref(&row.id))?.remove(&row.id).unwrap_or_default())
            } else {
                None
            };
            Ok(Ok((row, members)))
        })
        .await?
        .map_err(|e| refused(state, ctx, "Group", Some(id), e.into()))?;
    match answer {
        Answer::Whole => {
            let text = render_text(state, &row, members.as_deref().unwrap_or_default());
            Ok(resource_text(StatusCode::OK, text, row.version, None))
        }
        Answer::NoContent => Ok(HttpResponse::NoContent().insert_header(("ETag", etag(row.version))).finish()),
        Answer::Projected { attributes, excluded } => {
            let body = project(render(state, &row, members.as_deref()), RT, attributes.as_deref(), excluded.as_deref())
                .map_err(|e| refused(state, ctx, "Group", Some(id), e.into()))?;
            Ok(resource(StatusCode::OK, &body, row.version, None))
        }
    }
}

/// `PUT /Groups/{id}` (Okta sends memberships inside the body): 200 with the
/// group, projected when `attributes` or `excludedAttributes` are given.
pub async fn replace(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ScimCaller,
    ResourceId(id): ResourceId,
    query: web::Query<HashMap<String, String>>,
    payload: web::Payload,
) -> Result<HttpResponse, ScimFailure> {
    let ctx = LogContext::new(&req, &caller.connection_id);
    let (transform, _) = read_update(&state, &ctx, RT, &id, UpdateKind::Replace, payload).await?;
    update(&state, &ctx, &id, if_match(&req), Edit::Whole(transform), Answer::pick(Answer::Whole, projection(&query)))
        .await
}

/// `PATCH /Groups/{id}`: member add/remove in both Entra shapes, Okta's
/// rename-with-membership. Member adds and removes are applied to the members
/// they name, so writing them does not cost more in a larger group. The
/// answer is the group, projected when `attributes` or `excludedAttributes`
/// are given; with `scim.group_patch_answer = "no_content"` it is 204 No
/// Content (with the ETag) unless they are (RFC 7644 §3.5.2 allows both).
pub async fn patch(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ScimCaller,
    ResourceId(id): ResourceId,
    query: web::Query<HashMap<String, String>>,
    payload: web::Payload,
) -> Result<HttpResponse, ScimFailure> {
    let ctx = LogContext::new(&req, &caller.connection_id);
    let ops = read_patch(&state, &ctx, RT, &id, payload).await?;
    let edit = match MemberPatch::plan(&ops) {
        Some(plan) => Edit::Members(plan, patch_transform(ops, RT)),
        None => Edit::Whole(patch_transform(ops, RT)),
    };
    let unprojected = match state.settings.scim_group_patch_answer {
        GroupPatchAnswer::Group => Answer::Whole,
        GroupPatchAnswer::NoContent => Answer::NoContent,
    };
    let answer = Answer::pick(unprojected, projection(&query));
    update(&state, &ctx, &id, if_match(&req), edit, answer).await
}

/// `DELETE /Groups/{id}`
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
            let Some(current) = groups::get_for_update(c, &conn, &key)? else {
                return Ok(Err(not_found(&key)));
            };
            if let Err(e) = check_if_match(if_match.as_deref(), current.version) {
                return Ok(Err(e));
            }
            let held_by = groups::holding(c, &key)?;
            groups::delete(c, &conn, &key)?;
            let mut gone = vec![NewEvent::group("group.deleted", &current, &[]).deleted()];
            gone.extend(held_by.iter().map(|g| NewEvent::member("group.member_removed", g, (&key, "Group"), None)));
            let entry = log.entry(now, "delete", Some("Group"), Some(&key), None, 204, None);
            logs::insert_change(c, &entry, &conn, now, &gone)?;
            Ok(Ok(held_by))
        })
        .await?
        .map_err(|e| refused(&state, &ctx, "Group", Some(&id), e.into()))?;
    members_changed(&state, &caller.connection_id, held_by).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Gives `groups` a new version and `lastModified` after a delete took one
/// of their members (RFC 7644 §3.14: a changed resource has a new ETag), in
/// a transaction of its own (see [`groups::touch`]). The delete is done
/// whatever happens here; a failure leaves their versions as they were, and
/// is logged.
pub async fn members_changed(state: &AppState, connection: &str, groups: Vec<String>) {
    if groups.is_empty() {
        return;
    }
    let (conn, now) = (connection.to_string(), state.clock.now());
    if let Err(e) = state.store.write(move |c| groups::touch(c, &conn, &groups, now)).await {
        tracing::warn!(error = %e, "could not give the groups of a deleted member a new version");
    }
}
