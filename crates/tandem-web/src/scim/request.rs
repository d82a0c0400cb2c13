//! Reading SCIM requests: bodies within the size limit, list parameters,
//! and the provisioning-log entry each request leaves.

use super::response::ScimFailure;
use crate::body::BodyError;
use crate::state::AppState;
use actix_web::{web, HttpMessage, HttpRequest};
use serde_json::{json, Value};
use std::collections::HashMap;
use tandem_scim::filter::{parse_filter, Filter};
use tandem_scim::patch::{apply_patch, parse_patch, PatchOperation};
use tandem_scim::resource::normalize;
use tandem_scim::schema::ResourceType;
use tandem_scim::ScimError;
use tandem_store::scim::logs::ProvisioningLog;

/// Reads a JSON body.
pub async fn json_body(state: &AppState, payload: web::Payload) -> Result<Value, ScimFailure> {
    let limit = state.settings.scim_max_body_bytes;
    let bytes = match crate::body::bytes_within(payload, limit, state.settings.body_timeout).await {
        Ok(b) => b,
        Err(BodyError::Broken(e)) => {
            return Err(ScimError::invalid_syntax(format!("could not read the request body: {e}")).into())
        }
        Err(BodyError::TooLarge) => {
            return Err(ScimError::new(413, None, format!("the request body is larger than {limit} bytes")).into())
        }
        Err(BodyError::TimedOut(t)) => {
            let detail = format!("the request body did not arrive within {} s", t.as_secs());
            return Err(ScimError::new(408, None, detail).into());
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::invalid_syntax("the request body is empty; a JSON object is expected").into());
    }
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}")))?;
    if let Some(at) = tandem_core::fields::nul_at(&value) {
        return Err(ScimError::invalid_value(format!(
            "{at} holds the NUL character (U+0000), which no value may hold"
        ))
        .into());
    }
    Ok(value)
}

/// List parameters (RFC 7644 §3.4.2): filter, paging, attribute selection.
#[derive(Debug, Default)]
pub struct ListParams {
    pub filter: Option<Filter>,
    pub start_index: u64,
    pub count: u64,
    pub attributes: Option<String>,
    pub excluded: Option<String>,
}

/// An integer list parameter. One past what 64 bits hold is taken as the
/// largest (or smallest) there is: the caller clamps it to what it allows
/// (RFC 7644 §3.4.2.4 has a `count` above the maximum answered with the maximum).
fn int_param(name: &str, raw: Option<&Value>) -> Result<Option<i64>, ScimError> {
    let saturated = |negative: bool| if negative { i64::MIN } else { i64::MAX };
    match raw {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Ok(Some(i)),
            (None, Some(_), _) => Ok(Some(i64::MAX)),
            (None, None, Some(f)) if f.is_finite() && f.fract() == 0.0 => Ok(Some(f as i64)),
            _ => Err(ScimError::invalid_value(format!("{name} must be an integer, got {n}"))),
        },
        Some(Value::String(s)) => {
            let t = s.trim();
            let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
            match t.parse::<i64>() {
                Ok(i) => Ok(Some(i)),
                Err(_) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                    Ok(Some(saturated(t.starts_with('-'))))
                }
                Err(_) => Err(ScimError::invalid_value(format!("{name} must be an integer, got {s:?}"))),
            }
        }
        Some(_) => Err(ScimError::invalid_value(format!("{name} must be an integer"))),
    }
}

/// Drops value filters from attribute lists: Microsoft's test collection
/// sends `attributes=emails[type eq "work"]`, which selects `emails`.
pub fn strip_value_filters(list: &str) -> String {
    let mut out = String::with_capacity(list.len());
    let mut depth = 0usize;
    for c in list.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The most names an `attributes` or `excludedAttributes` list may hold,
/// and its longest text: a schema has a few dozen attributes, and each
/// resource of a page is projected through the list.
pub const MAX_LISTED_ATTRIBUTES: usize = 200;
const MAX_LIST_CHARS: usize = 8192;

fn list_param(name: &str, raw: Option<&Value>) -> Result<Option<String>, ScimError> {
    let list = match raw {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => strip_value_filters(s),
        Some(Value::Array(items)) => {
            let parts: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            parts
                .map(|p| strip_value_filters(&p.join(",")))
                .ok_or_else(|| ScimError::invalid_value(format!("{name} must be a list of strings")))?
        }
        Some(_) => return Err(ScimError::invalid_value(format!("{name} must be a list of attribute names"))),
    };
    if list.len() > MAX_LIST_CHARS || list.split(',').count() > MAX_LISTED_ATTRIBUTES {
        return Err(ScimError::invalid_value(format!(
            "{name} may list at most {MAX_LISTED_ATTRIBUTES} names in {MAX_LIST_CHARS} characters"
        )));
    }
    Ok(Some(list))
}

impl ListParams {
    /// Reads parameters from a query string or a SearchRequest body (as a JSON object).
    pub fn from_json(source: &Value, max_results: u32) -> Result<ListParams, ScimError> {
        let get = |k: &str| {
            source.as_object().and_then(|o| o.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)).map(|(_, v)| v))
        };
        let filter = match get("filter") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(parse_filter(s)?),
            Some(_) => return Err(ScimError::invalid_filter("filter must be a string")),
        };
        let start_index = int_param("startIndex", get("startIndex"))?.unwrap_or(1).max(1) as u64;
        let count =
            int_param("count", get("count"))?.unwrap_or(i64::from(max_results)).clamp(0, i64::from(max_results)) as u64;
        Ok(ListParams {
            filter,
            start_index,
            count,
            attributes: list_param("attributes", get("attributes"))?,
            excluded: list_param("excludedAttributes", get("excludedAttributes"))?,
        })
    }

    /// Reads parameters from the query string.
    pub fn from_query(query: &HashMap<String, String>, max_results: u32) -> Result<ListParams, ScimError> {
        let obj: serde_json::Map<String, Value> =
            query.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        Self::from_json(&Value::Object(obj), max_results)
    }

    /// Whether the response may need `attr` (so it can skip loading it when
    /// not): `attributes` names it, one of its sub-attributes
    /// (`members.value`) or a whole schema (`urn:…:core:2.0:Group`), or
    /// `excludedAttributes` does not name it whole (`members.display`
    /// excludes a sub-attribute only).
    pub fn wants(&self, attr: &str) -> bool {
        if let Some(list) = &self.attributes {
            return Listed::all(list).any(|l| l.name.is_none_or(|n| n.eq_ignore_ascii_case(attr)));
        }
        // Only a core attribute named whole excludes `attr` (`members`,
        // `groups`): an extension's attribute of the same name is another
        // attribute, and `members.display` a part of it.
        !self.excluded.as_deref().is_some_and(|list| {
            Listed::all(list).any(|l| l.core && !l.sub && l.name.is_some_and(|n| n.eq_ignore_ascii_case(attr)))
        })
    }
}

/// One name of an `attributes` or `excludedAttributes` list.
struct Listed<'a> {
    /// The attribute; `None` for a schema URN alone (the whole schema).
    name: Option<&'a str>,
    /// Whether it names a sub-attribute (`members.value`).
    sub: bool,
    /// Whether it is a core attribute (unqualified, or under a core schema URN).
    core: bool,
}

impl<'a> Listed<'a> {
    /// The names of a comma-separated list.
    fn all(list: &'a str) -> impl Iterator<Item = Listed<'a>> {
        list.split(',').map(str::trim).filter(|a| !a.is_empty()).map(Listed::of)
    }

    fn of(a: &'a str) -> Listed<'a> {
        let tail = a.rsplit(':').next().unwrap_or(a);
        let qualified = a.contains(':');
        if qualified && ["User", "Group"].iter().any(|s| tail.eq_ignore_ascii_case(s)) {
            return Listed { name: None, sub: false, core: true };
        }
        let (name, sub) = tail.split_once('.').map_or((tail, false), |(n, _)| (n, true));
        Listed { name: Some(name), sub, core: !qualified || a.to_ascii_lowercase().contains(":schemas:core:") }
    }
}

/// The attribute-selection query parameters of a single-resource request.
pub fn projection(query: &HashMap<String, String>) -> (Option<String>, Option<String>) {
    let find = |k: &str| query.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
    (find("attributes").map(|a| strip_value_filters(&a)), find("excludedAttributes").map(|a| strip_value_filters(&a)))
}

/// The longest request path (with its query) a provisioning-log entry keeps, in characters.
const MAX_LOGGED_PATH: usize = 2000;

/// Keeps the first `max` characters of `s`, cut in place (collecting the
/// characters one by one cost ~7 % of a lookup's instructions). A string of
/// at most `max` bytes has at most `max` characters.
fn cut_chars(s: &mut String, max: usize) {
    if s.len() > max {
        if let Some((cut, _)) = s.char_indices().nth(max) {
            s.truncate(cut);
        }
    }
}

/// What a request is, for its provisioning-log entry.
#[derive(Clone)]
pub struct LogContext {
    pub connection_id: String,
    pub method: String,
    pub path: String,
    pub request_id: Option<String>,
}

impl LogContext {
    pub fn new(req: &HttpRequest, connection_id: &str) -> LogContext {
        let mut path = match req.query_string() {
            "" => req.path().to_string(),
            q => format!("{}?{}", req.path(), q),
        };
        cut_chars(&mut path, MAX_LOGGED_PATH);
        LogContext {
            connection_id: connection_id.to_string(),
            method: req.method().to_string(),
            path,
            request_id: req.extensions().get::<tracing_actix_web::RequestId>().map(|r| r.to_string()),
        }
    }

    /// A log entry.
    #[allow(clippy::too_many_arguments)]
    pub fn entry(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        operation: &str,
        resource_type: Option<&str>,
        resource_id: Option<&str>,
        user_name: Option<&str>,
        status: u16,
        error: Option<&ScimError>,
    ) -> ProvisioningLog {
        let reasons = match error {
            Some(e) => tandem_scim::to_text(
                &json!([{"attribute": attribute_of(&e.detail), "reason": e.detail, "scimType": e.scim_type}]),
            ),
            None => String::from("[]"),
        };
        ProvisioningLog {
            id: tandem_core::new_id(),
            scim_connection_id: self.connection_id.clone(),
            created_at: tandem_store::micros(now),
            request_id: self.request_id.clone(),
            method: self.method.clone(),
            // What the caller sent is kept, but a key pasted in it (an id,
            // a filter value) only by its prefix.
            path: redacted_path(&self.path),
            operation: operation.to_string(),
            resource_type: resource_type.map(str::to_string),
            resource_id: resource_id.map(|id| tandem_core::keys::redact_keys(id).into_owned()),
            user_name: user_name.map(str::to_string),
            status: i32::from(status),
            detail: error.map(|e| tandem_core::keys::redact_keys(&e.detail).into_owned()),
            reasons: tandem_core::keys::redact_keys(&reasons).into_owned(),
        }
    }
}

/// A request's path and query as sent, but with any key in it cut to its
/// prefix, also one sent percent-encoded (`tandem%5Fik%5F…`): then the
/// path is kept decoded, as the redaction reads it.
fn redacted_path(path: &str) -> String {
    let cut = tandem_core::keys::redact_keys(path);
    if !path.contains('%') {
        return cut.into_owned();
    }
    let decoded = percent_encoding::percent_decode_str(&cut).decode_utf8_lossy();
    match tandem_core::keys::redact_keys(&decoded) {
        std::borrow::Cow::Owned(recut) => recut,
        std::borrow::Cow::Borrowed(_) => cut.into_owned(),
    }
}

/// The attribute an error detail is about, when it starts with one
/// (`userName is required`, `Operations[0]: active must be …`).
fn attribute_of(detail: &str) -> Option<String> {
    let d = detail
        .split_once(": ")
        .map(|(head, tail)| if head.starts_with("Operations[") { tail } else { detail })
        .unwrap_or(detail);
    let first = d.split_whitespace().next()?;
    let first = first.trim_matches(|c: char| c == '"' || c == ',');
    let looks_like_attr = first.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && first.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']' | '_' | '$'))
        && !matches!(first, "the" | "unknown" | "no" | "filter" | "resource" | "expected" | "too" | "If-Match");
    looks_like_attr.then(|| first.to_string())
}

/// Records a refused request in the provisioning log and passes the error on.
pub fn refused(
    state: &AppState,
    ctx: &LogContext,
    resource_type: &str,
    id: Option<&str>,
    e: ScimFailure,
) -> ScimFailure {
    state.log_sink.record(ctx.entry(state.clock.now(), "fail", Some(resource_type), id, None, e.0.status, Some(&e.0)));
    e
}

/// Answers a list or search: the ListResponse, or the refusal, logged either way.
pub fn listed(
    state: &AppState,
    ctx: &LogContext,
    resource_type: &str,
    outcome: Result<String, ScimFailure>,
) -> Result<actix_web::HttpResponse, ScimFailure> {
    let body = outcome.map_err(|e| refused(state, ctx, resource_type, None, e))?;
    state.log_sink.record(ctx.entry(state.clock.now(), "read", Some(resource_type), None, None, 200, None));
    Ok(super::response::scim_text(actix_web::http::StatusCode::OK, body))
}

/// How an update turns the stored document into the next one.
pub type Transform = Box<dyn FnOnce(&Value) -> Result<Value, ScimError> + Send>;

/// Whether an update replaces the resource (PUT) or patches it (PATCH).
#[derive(Clone, Copy)]
pub enum UpdateKind {
    Replace,
    Patch,
}

/// Most attributes one log entry names as not kept; the rest are counted.
const IGNORED_NAMED: usize = 50;

/// The provisioning log's reasons for attributes a write did not keep
/// (see [`tandem_scim::resource::ignored_attributes`]): each named once, at
/// most [`IGNORED_NAMED`] of them and 200 characters of each name, so a
/// body of a million unknown keys does not make a log entry of its size.
pub fn ignored_reasons(ignored: &[String]) -> Vec<Value> {
    const REASON: &str = "ignored: not an attribute of the core or enterprise schema, so not kept";
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<&String> = ignored.iter().filter(|a| seen.insert(a.as_str())).collect();
    let mut out: Vec<Value> = unique
        .iter()
        .take(IGNORED_NAMED)
        .map(|a| json!({"attribute": a.chars().take(200).collect::<String>(), "reason": REASON}))
        .collect();
    if unique.len() > IGNORED_NAMED {
        out.push(json!({"attribute": null, "reason": format!("{REASON}: {} more", unique.len() - IGNORED_NAMED)}));
    }
    out
}

/// Reads a PUT or PATCH body into the transform it applies (refusals
/// logged), and the attributes it names that are not kept.
pub async fn read_update(
    state: &AppState,
    ctx: &LogContext,
    rt: ResourceType,
    id: &str,
    kind: UpdateKind,
    payload: web::Payload,
) -> Result<(Transform, Vec<String>), ScimFailure> {
    let body = json_body(state, payload).await;
    let transform: Result<(Transform, Vec<String>), ScimFailure> = body.and_then(|b| match kind {
        UpdateKind::Replace => {
            let ignored = tandem_scim::resource::ignored_attributes(rt, &b);
            let mut doc = normalize(rt, b)?;
            let transform = Box::new(move |stored: &Value| {
                // A PUT that leaves `active` out keeps the stored value: a
                // missing `active` reads as true, and a deactivated user
                // must not be let back in by omission.
                if let (Some(doc), Some(active)) = (doc.as_object_mut(), stored.get("active")) {
                    if rt == ResourceType::User && !doc.contains_key("active") {
                        doc.insert("active".to_owned(), active.clone());
                    }
                }
                Ok(doc)
            }) as Transform;
            Ok((transform, ignored))
        }
        UpdateKind::Patch => {
            let ops = parse_patch(&b, 1000)?;
            let ignored = tandem_scim::patch::ignored_in_patch(rt, &ops);
            Ok((patch_transform(ops, rt), ignored))
        }
    });
    transform.map_err(|e| refused(state, ctx, rt.name(), Some(id), e))
}

/// A PATCH body's operations; a malformed body is refused (and logged).
pub async fn read_patch(
    state: &AppState,
    ctx: &LogContext,
    rt: ResourceType,
    id: &str,
    payload: web::Payload,
) -> Result<Vec<PatchOperation>, ScimFailure> {
    let ops = json_body(state, payload).await.and_then(|b| Ok(parse_patch(&b, 1000)?));
    ops.map_err(|e| refused(state, ctx, rt.name(), Some(id), e))
}

/// The update applying PATCH `ops` to the stored document.
pub fn patch_transform(ops: Vec<PatchOperation>, rt: ResourceType) -> Transform {
    Box::new(move |doc: &Value| {
        let mut next = doc.clone();
        apply_patch(&mut next, &ops, rt)?;
        normalize(rt, next)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_is_read_off_the_detail() {
        assert_eq!(attribute_of("userName is required").as_deref(), Some("userName"));
        assert_eq!(attribute_of("Operations[0]: active must be a boolean").as_deref(), Some("active"));
        assert_eq!(attribute_of("the request body is not valid JSON"), None);
    }

    #[test]
    fn the_logged_path_keeps_its_query_and_is_cut_at_the_limit() {
        let req = actix_web::test::TestRequest::get()
            .uri("/scim/v2/c1/Users?filter=userName%20eq%20%22a%22")
            .to_http_request();
        let ctx = LogContext::new(&req, "c1");
        assert_eq!(ctx.path, "/scim/v2/c1/Users?filter=userName%20eq%20%22a%22");
        assert_eq!((ctx.method.as_str(), ctx.connection_id.as_str()), ("GET", "c1"));
        let long = format!("/scim/v2/c1/Users?filter={}", "a".repeat(3000));
        let ctx = LogContext::new(&actix_web::test::TestRequest::get().uri(&long).to_http_request(), "c1");
        assert_eq!(ctx.path, long[..MAX_LOGGED_PATH]);
    }

    #[test]
    fn paths_are_cut_by_characters_not_bytes() {
        let mut s = "é".repeat(1500);
        cut_chars(&mut s, 2000);
        assert_eq!(s.chars().count(), 1500, "3,000 bytes but 1,500 characters: kept whole");
        let mut s = format!("a{}", "é".repeat(2500));
        cut_chars(&mut s, 2000);
        assert_eq!(s, format!("a{}", "é".repeat(1999)));
        let mut s = String::from("short");
        cut_chars(&mut s, 2000);
        assert_eq!(s, "short");
    }

    #[test]
    fn count_is_clamped_and_start_index_is_at_least_one() {
        let p = ListParams::from_json(&json!({"count": "5000", "startIndex": "0"}), 100).unwrap();
        assert_eq!((p.count, p.start_index), (100, 1));
        let p = ListParams::from_json(&json!({"count": -1}), 100).unwrap();
        assert_eq!(p.count, 0);
        assert!(ListParams::from_json(&json!({"count": "ten"}), 100).is_err());
        // Past 64 bits: the largest there is, then clamped, as `count=5000` is.
        for huge in [json!("99999999999999999999"), json!(u64::MAX), json!(1e20), json!(" +99999999999999999999 ")] {
            let p = ListParams::from_json(&json!({"count": huge, "startIndex": huge}), 100).unwrap();
            assert_eq!((p.count, p.start_index), (100, i64::MAX as u64), "{huge}");
        }
        let p = ListParams::from_json(&json!({"count": "-99999999999999999999", "startIndex": -1e30}), 100).unwrap();
        assert_eq!((p.count, p.start_index), (0, 1));
        let err = ListParams::from_json(&json!({"count": 2.5}), 100).unwrap_err();
        assert_eq!(err.detail, "count must be an integer, got 2.5");
        assert!(ListParams::from_json(&json!({"count": "1e5"}), 100).is_err());
        assert!(ListParams::from_json(&json!({"count": "-"}), 100).is_err());
    }

    #[test]
    fn wants_follows_attributes_and_exclusions() {
        let p = ListParams { excluded: Some("members".into()), ..Default::default() };
        assert!(!p.wants("members"));
        let p = ListParams { attributes: Some("displayName".into()), ..Default::default() };
        assert!(!p.wants("members"));
        let p = ListParams { attributes: Some("members.value".into()), ..Default::default() };
        assert!(p.wants("members"));
        // A sub-attribute excluded leaves the rest of the attribute to load.
        let p = ListParams { excluded: Some("members.display".into()), ..Default::default() };
        assert!(p.wants("members"));
        let p = ListParams {
            excluded: Some("urn:ietf:params:scim:schemas:core:2.0:Group:members".into()),
            ..Default::default()
        };
        assert!(!p.wants("members"));
        // A whole schema asked for holds the attribute.
        let p =
            ListParams { attributes: Some("urn:ietf:params:scim:schemas:core:2.0:Group".into()), ..Default::default() };
        assert!(p.wants("members"));
        let p = ListParams {
            attributes: Some("urn:ietf:params:scim:schemas:core:2.0:Group:displayName".into()),
            ..Default::default()
        };
        assert!(!p.wants("members"));
        // An extension's attribute of the same name is not the core one.
        let p = ListParams {
            excluded: Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:groups".into()),
            ..Default::default()
        };
        assert!(p.wants("groups"));
    }
}
