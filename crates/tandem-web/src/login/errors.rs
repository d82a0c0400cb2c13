//! The login's error answers (DESIGN §2), each with the details an app or
//! admin needs to act.

use crate::error::ApiError;
use actix_web::http::StatusCode;
use serde_json::{json, Value};

/// `InvalidCsrfState` (400): state missing, unknown, expired, reused, or not bound to the cookie.
pub fn invalid_state(reason: &str, message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "InvalidCsrfState", message).with_details(json!({"reason": reason}))
}

/// `IdentityProviderError` with a `kind`.
pub fn idp(status: StatusCode, kind: &str, message: impl Into<String>, extra: Value) -> ApiError {
    let mut details = json!({"kind": kind});
    if let (Some(d), Value::Object(e)) = (details.as_object_mut(), extra) {
        d.extend(e);
    }
    ApiError::new(status, "IdentityProviderError", message).with_details(details)
}

/// `IdentityProviderError` kind `DiscoveryFailed` (502): the issuer's
/// metadata or keys could not be had; names the URL and why.
pub fn discovery_failed(e: &tandem_oidc::discovery::DiscoveryError) -> ApiError {
    idp(StatusCode::BAD_GATEWAY, "DiscoveryFailed", e.to_string(), json!({"url": e.url, "reason": e.reason}))
}

/// `ScimUserNotActive` (403) with its reason.
pub fn not_active(reason: &str, message: String, extra: Value) -> ApiError {
    let mut details = json!({"reason": reason});
    if let (Some(d), Value::Object(e)) = (details.as_object_mut(), extra) {
        d.extend(e);
    }
    ApiError::new(StatusCode::FORBIDDEN, "ScimUserNotActive", message).with_details(details)
}
