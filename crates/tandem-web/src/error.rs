//! The management and login APIs' error body,
//! `{"error": {"type", "message", "details"}}`, and how storage errors map to it.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};
use std::fmt;
use tandem_core::fields::FieldError;
use tandem_store::StoreError;

/// An API error with a stable `type`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, kind, message: message.into(), details: json!({}) }
    }

    /// Adds details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// `InvalidFields`, naming every bad field.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        // One entry per field, its distinct messages joined (`scopes` lacking
        // openid and profile), so the message names each field once.
        let mut fields: Vec<FieldError> = Vec::with_capacity(errors.len());
        for e in errors {
            match fields.iter_mut().find(|f| f.field == e.field) {
                Some(f) if f.message.split("; ").any(|m| m == e.message) => {}
                Some(f) => {
                    f.message.push_str("; ");
                    f.message.push_str(&e.message);
                }
                None => fields.push(e),
            }
        }
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        let message = match fields.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields are invalid: {}", fields.len(), names.join(", ")),
        };
        ApiError::new(StatusCode::BAD_REQUEST, "InvalidFields", message).with_details(json!({ "fields": fields }))
    }

    /// `InvalidFields` naming one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::invalid_fields(vec![FieldError { field: field.into(), message: message.into() }])
    }

    /// A 404 of the given type.
    pub fn not_found(kind: &'static str, message: impl Into<String>) -> Self {
        // It names what was looked for: a key pasted where an id goes is not echoed.
        let message = message.into();
        ApiError::new(StatusCode::NOT_FOUND, kind, tandem_core::keys::redact_keys(&message))
    }

    /// A 401.
    pub fn unauthorized(kind: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, kind, message)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            builder.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The rest of a stalled body would otherwise be drained, with
            // no timer, before the connection is used again (chunked).
            builder.force_close();
        }
        builder.json(json!({"error": {"type": self.kind, "message": self.message, "details": self.details}}))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(msg) => ApiError::new(StatusCode::CONFLICT, "CustomerIdAlreadyTaken", msg),
            StoreError::RedirectPathTaken(msg) => ApiError::new(StatusCode::CONFLICT, "RedirectUrlInUse", msg),
            StoreError::Unavailable(msg) | StoreError::Busy(msg) => {
                tracing::error!(error = %msg, "database unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "DatabaseUnavailable",
                    "the database is unavailable; retry shortly",
                )
            }
            other => {
                tracing::error!(error = %other, "storage error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "an internal error occurred; see the server log",
                )
            }
        }
    }
}

/// The default of a resource serving only `allow`: 405 with the `Allow`
/// header and an error body saying what is served (actix's own 405 has no body).
pub fn method_not_allowed(allow: &'static str) -> actix_web::Route {
    actix_web::web::to(move |req: actix_web::HttpRequest| async move {
        let message = format!("{} is not served at {}; use {allow}", req.method(), shown(&req));
        let mut resp = ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", message).error_response();
        resp.headers_mut()
            .insert(actix_web::http::header::ALLOW, actix_web::http::header::HeaderValue::from_static(allow));
        resp
    })
}

/// The answer for a route that does not exist.
pub async fn unknown_route(req: actix_web::HttpRequest) -> HttpResponse {
    actix_web::HttpMessage::extensions_mut(&req).insert(crate::metrics::Unmatched);
    ApiError::not_found("RouteNotFound", format!("no route for {} {}", req.method(), shown(&req))).error_response()
}

/// A request's path as an error may echo it: without a setup link's token
/// (`/Setup/tandem_setup_…` reaches no setup page, but is a token still).
pub(crate) fn shown(req: &actix_web::HttpRequest) -> String {
    crate::span::safe_path(req.path(), req.match_info().as_str())
}
