//! SCIM responses: `application/scim+json`, the SCIM error schema, `meta`
//! with ETags and locations.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError};
use serde_json::{json, Value};
use std::fmt;
use tandem_core::format_time;
use tandem_scim::ScimError;
use tandem_store::from_micros;

/// The SCIM media type.
pub const SCIM_JSON: &str = "application/scim+json";

/// The connection of the request's key was deleted after the key was
/// checked (through another node, whose deletion this node's key cache has
/// not seen yet, or while the request ran).
pub fn connection_gone() -> ScimError {
    ScimError::new(401, None, "the SCIM connection of this API key was deleted while the request ran")
}

/// A SCIM error as an actix response.
#[derive(Debug)]
pub struct ScimFailure(pub ScimError);

impl From<ScimError> for ScimFailure {
    fn from(e: ScimError) -> Self {
        ScimFailure(e)
    }
}

impl From<tandem_store::StoreError> for ScimFailure {
    fn from(e: tandem_store::StoreError) -> Self {
        match e {
            tandem_store::StoreError::Unavailable(msg) | tandem_store::StoreError::Busy(msg) => {
                tracing::error!(error = %msg, "database unavailable");
                ScimFailure(ScimError::new(503, None, "the database is unavailable; retry shortly"))
            }
            // SCIM rows refer to their connection: the connection was deleted
            // (through another node, whose deletion this node's key cache has
            // not seen yet) after the request's key was checked: refused by
            // the foreign key, or found gone by a write that looks first.
            e if e.is_foreign_key_violation() || matches!(e, tandem_store::StoreError::Gone(_)) => {
                ScimFailure(connection_gone())
            }
            other => {
                tracing::error!(error = %other, "storage error");
                ScimFailure(ScimError::new(500, None, "an internal error occurred; see the server log"))
            }
        }
    }
}

impl fmt::Display for ScimFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for ScimFailure {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::BAD_REQUEST)
    }

    fn error_response(&self) -> HttpResponse {
        let mut b = HttpResponse::build(self.status_code());
        if self.0.status == 401 {
            b.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if self.0.status == 408 {
            // As the API's (see `ApiError`): a stalled body is not drained.
            b.force_close();
        }
        b.content_type(SCIM_JSON).body(tandem_scim::to_text(&self.0.to_json()))
    }
}

/// A SCIM JSON response.
pub fn scim_json(status: StatusCode, body: &Value) -> HttpResponse {
    scim_text(status, tandem_scim::to_text(body))
}

/// A SCIM response of JSON already written out.
pub fn scim_text(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status).content_type(SCIM_JSON).body(body)
}

/// The weak ETag of a resource version.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// A resource response with its ETag (and Location on create).
pub fn resource(status: StatusCode, body: &Value, version: i64, location: Option<&str>) -> HttpResponse {
    resource_text(status, tandem_scim::to_text(body), version, location)
}

/// [`resource`] of JSON already written out.
pub fn resource_text(status: StatusCode, body: String, version: i64, location: Option<&str>) -> HttpResponse {
    let mut b = HttpResponse::build(status);
    b.content_type(SCIM_JSON).insert_header(("ETag", etag(version)));
    if let Some(l) = location {
        b.insert_header(("Location", l));
    }
    b.body(body)
}

/// `meta` of a stored resource.
pub fn meta(resource_type: &str, created: i64, modified: i64, version: i64, location: &str) -> Value {
    json!({
        "resourceType": resource_type,
        "created": format_time(from_micros(created)),
        "lastModified": format_time(from_micros(modified)),
        "location": location,
        "version": etag(version),
    })
}

/// [`meta`] written out as `to_text` writes it (keys in byte order), for
/// answers written from the stored text.
pub fn meta_text(resource_type: &str, created: i64, modified: i64, version: i64, location: &str) -> String {
    let text = |s: &str| serde_json::to_string(s).unwrap_or_default();
    format!(
        "{{\"created\":\"{}\",\"lastModified\":\"{}\",\"location\":{},\"resourceType\":{},\"version\":\"W/\\\"{version}\\\"\"}}",
        format_time(from_micros(created)),
        format_time(from_micros(modified)),
        text(location),
        text(resource_type),
    )
}

/// Checks `If-Match` against the current version (412 when it differs).
pub fn check_if_match(if_match: Option<&str>, version: i64) -> Result<(), ScimError> {
    let Some(h) = if_match else { return Ok(()) };
    let current = etag(version);
    let strong = format!("\"{version}\"");
    if h.split(',').map(str::trim).any(|t| t == "*" || t == current || t == strong) {
        Ok(())
    } else {
        Err(ScimError::new(412, None, format!("If-Match {h} does not match the current version {current}")))
    }
}

/// The `If-Match` header of a request. One with bytes outside ASCII is
/// read lossily, not as absent: it matches no version, so the write is
/// refused (412) instead of going ahead without its precondition.
pub fn if_match(req: &HttpRequest) -> Option<String> {
    req.headers().get("if-match").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// Whether `If-None-Match` names the current version (answer 304).
pub fn not_modified(req: &HttpRequest, version: i64) -> bool {
    // Weak comparison (RFC 9110 §13.1.2): `"3"` and `W/"3"` are the same tag.
    let weak = |t: &str| t.strip_prefix("W/").unwrap_or(t).to_string();
    let current = weak(&etag(version));
    req.headers()
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|h| h.split(',').map(str::trim).any(|t| t == "*" || weak(t) == current))
}

/// The error for a SCIM path that does not exist.
pub fn no_endpoint(req: &HttpRequest) -> ScimFailure {
    ScimFailure(ScimError::not_found(format!("no SCIM endpoint {} {}", req.method(), crate::error::shown(req))))
}

/// The answer for a SCIM path that does not exist: 501 for the endpoints
/// RFC 7644 defines that Tandem does not serve (`/Me`, §3.11; `/Bulk`,
/// which `ServiceProviderConfig` says is not supported), 404 for others.
pub async fn unknown_endpoint(req: HttpRequest) -> HttpResponse {
    let mut segments = req.match_info().unprocessed().trim_start_matches('/').split('/').skip(1);
    let detail = match (segments.next(), segments.next()) {
        (Some(me), _) if me.eq_ignore_ascii_case("Me") => Some(
            "/Me is not supported: a SCIM client authenticates with its connection's token, not as a user \
             (RFC 7644 §3.11)",
        ),
        (Some(bulk), None) if bulk.eq_ignore_ascii_case("Bulk") => {
            Some("bulk operations are not supported (ServiceProviderConfig: bulk.supported is false); send each operation as a request of its own")
        }
        _ => None,
    };
    match detail {
        Some(detail) => ScimFailure(ScimError::new(501, None, detail)).error_response(),
        None => no_endpoint(&req).error_response(),
    }
}

/// The answer for a method an endpoint does not support, with the `Allow`
/// header RFC 9110 §15.5.6 requires.
pub async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let allow = req.extensions().get::<super::dispatch::ScimRoute>().map(|r| r.endpoint.allow());
    let mut answer = ScimFailure(ScimError::new(
        405,
        None,
        format!("{} is not supported on {}", req.method(), crate::error::shown(&req)),
    ))
    .error_response();
    if let Some(allow) = allow {
        answer.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static(allow));
    }
    answer
}

/// The answer to a conditional GET whose `If-None-Match` holds the
/// current version: 304 with that `ETag` (RFC 9110 §15.4.5).
pub fn not_modified_answer(version: i64) -> HttpResponse {
    HttpResponse::NotModified().insert_header((header::ETAG, etag(version))).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly() {
        let asks = |h: &str| {
            let req = actix_web::test::TestRequest::get().insert_header(("if-none-match", h)).to_http_request();
            not_modified(&req, 3)
        };
        assert!(asks(r#"W/"3""#) && asks(r#""3""#) && asks(r#""1", W/"3""#) && asks("*"));
        assert!(!asks(r#"W/"4""#) && !asks(r#""33""#) && !asks("3"));
    }

    #[test]
    fn meta_text_is_meta_written_out() {
        for (location, version) in
            [("https://sso.example.com/scim/v2/c1/Users/u1", 1), ("http://h/\"odd\"\\path", 1234567)]
        {
            let value = meta("User", 1_763_874_000_123_456, 1_763_874_999_000_000, version, location);
            assert_eq!(
                meta_text("User", 1_763_874_000_123_456, 1_763_874_999_000_000, version, location),
                tandem_scim::to_text(&value)
            );
        }
    }
}
