//! The NUL character (U+0000) in a request. PostgreSQL refuses it in text
//! ("invalid byte sequence for encoding UTF8: 0x00"), so a value holding one
//! made whichever statement it reached fail, and the request answer 500. No
//! identifier, name or address Tandem stores or looks up may hold it, on
//! either backend: it is refused where it enters, in a path or query (as
//! `%00`) by [`refuse_in_path_or_query`], in a JSON body by
//! [`tandem_core::fields::nul_at`], in a form (the dashboard's and the
//! setup pages') by [`in_form`].

use crate::error::ApiError;
use crate::scim::ScimFailure;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::ResponseError;
use tandem_scim::ScimError;

/// The name of a form field whose name or value holds the NUL character
/// (`%00` in the form), shown with `%00` in its place; the first in name
/// order.
pub fn in_form(form: &std::collections::HashMap<String, String>) -> Option<String> {
    let mut held: Vec<&String> =
        form.iter().filter(|(k, v)| k.contains('\0') || v.contains('\0')).map(|(k, _)| k).collect();
    held.sort();
    held.first().map(|k| k.replace('\0', "%00"))
}

/// What a page says of a form field holding the NUL character.
pub fn in_form_message(field: &str) -> String {
    format!("The field {field:?} holds the NUL character (%00), which no value may hold.")
}

/// Middleware: a request whose path or query holds `%00`, or a path that
/// is `%00` once decoded (`%%30%30`), is refused with
/// 400 before it is routed, in the SCIM error shape under `/scim/` and the
/// API's elsewhere.
pub async fn refuse_in_path_or_query(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let held = |s: &str| s.contains("%00");
    // The router matches a path already decoded once, except for `%`, `/`
    // and `+`, and its segments are decoded again when extracted: so
    // `%%30%30` is `%00` to the router and NUL to the handler. Both the
    // path as sent and as routed are looked at; a query is decoded once.
    if held(req.uri().path()) || held(req.match_info().as_str()) || req.uri().query().is_some_and(held) {
        let message = "the request's path or query holds the NUL character (%00), which no value may hold";
        let resp = if req.path().starts_with("/scim/") {
            ScimFailure(ScimError::invalid_value(message)).error_response()
        } else if req.path().trim_start_matches('/').starts_with("setup/") {
            // A setup page answers pages, never the API's JSON.
            crate::setup::message(
                crate::setup::site_of(req.request()),
                StatusCode::BAD_REQUEST,
                "Not understood",
                "The address holds the NUL character (%00).",
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "InvalidRequest", message).error_response()
        };
        return Ok(req.into_response(resp).map_into_right_body());
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}
