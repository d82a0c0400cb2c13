//! The NUL character (U+0000) in a request. PostgreSQL refuses it in text
//! ("invalid byte sequence for encoding UTF8: 0x00"), so a value holding one
//! made whichever statement it reached fail, and the request answer 500. No
//! identifier, name or address Tandem stores or looks up may hold it, on
//! either backend: it is refused where it enters, in a path or query (as
//! `%00`) by [`refuse_in_path_or_query`], in a JSON body by [`nul_at`].

use crate::error::ApiError;
use crate::scim::ScimFailure;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::ResponseError;
use serde_json::Value;
use tandem_scim::ScimError;

/// Middleware: a request whose path or query holds `%00` is refused with
/// 400 before it is routed, in the SCIM error shape under `/scim/` and the
/// API's elsewhere.
pub async fn refuse_in_path_or_query(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let held = |s: &str| s.contains("%00");
    if held(req.uri().path()) || req.uri().query().is_some_and(held) {
        let message = "the request's path or query holds the NUL character (%00), which no value may hold";
        let resp = if req.path().starts_with("/scim/") {
            ScimFailure(ScimError::invalid_value(message)).error_response()
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "InvalidRequest", message).error_response()
        };
        return Ok(req.into_response(resp).map_into_right_body());
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

/// Where in `value` a string or a key first holds the NUL character, as a
/// path (`members[2].display`, `$` for the whole value); `None` when none does.
pub fn nul_at(value: &Value) -> Option<String> {
    fn walk(value: &Value, path: &mut String) -> bool {
        match value {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            Value::Object(map) => map.iter().any(|(key, item)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key.replace('\0', "\\u0000"));
                let found = key.contains('\0') || walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            _ => false,
        }
    }
    let mut path = String::new();
    walk(value, &mut path).then(|| if path.is_empty() { "$".to_string() } else { path })
}

#[cfg(test)]
mod tests {
    use super::nul_at;
    use serde_json::json;

    #[test]
    fn the_first_nul_is_found_by_its_path() {
        assert_eq!(nul_at(&json!({"userName": "a@b.c", "emails": [{"value": "x"}]})), None);
        assert_eq!(
            nul_at(&json!({"emails": [{"value": "x"}, {"value": "a\u{0}b"}]})).as_deref(),
            Some("emails[1].value")
        );
        assert_eq!(nul_at(&json!({"a\u{0}": 1})).as_deref(), Some("a\\u0000"));
        assert_eq!(nul_at(&json!("\u{0}")).as_deref(), Some("$"));
        assert_eq!(
            nul_at(&json!({"Operations": [{"value": {"members": [{"value": "g\u{0}"}]}}]})).as_deref(),
            Some("Operations[0].value.members[0].value")
        );
    }
}
