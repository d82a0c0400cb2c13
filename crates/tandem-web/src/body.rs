//! Reading request bodies: a size limit and JSON parsing whose errors say
//! where the JSON broke, in the API's own error shape.

use crate::error::ApiError;
use crate::state::WebSettings;
use actix_web::http::StatusCode;
use actix_web::web;
use serde_json::Value;
use std::time::Duration;

/// Why a body could not be read.
pub enum BodyError {
    /// More than the limit.
    TooLarge,
    /// Not all of it within the timeout (a client that stalled midway:
    /// actix times out a request's head, not its body).
    TimedOut(Duration),
    /// The connection broke, or the body's framing was wrong.
    Broken(String),
}

/// Reads the whole body: at most `limit` bytes, within `timeout`.
pub async fn bytes_within(payload: web::Payload, limit: usize, timeout: Duration) -> Result<web::Bytes, BodyError> {
    match actix_web::rt::time::timeout(timeout, payload.to_bytes_limited(limit)).await {
        Ok(Ok(Ok(bytes))) => Ok(bytes),
        Ok(Ok(Err(e))) => Err(BodyError::Broken(e.to_string())),
        Ok(Err(_)) => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::TimedOut(timeout)),
    }
}

/// Reads the whole body within the API's limits (`server.max_body_bytes`,
/// `server.body_timeout_secs`).
pub async fn read_limited(payload: web::Payload, settings: &WebSettings) -> Result<web::Bytes, ApiError> {
    let limit = settings.max_body_bytes;
    bytes_within(payload, limit, settings.body_timeout).await.map_err(|e| match e {
        BodyError::Broken(e) => {
            ApiError::new(StatusCode::BAD_REQUEST, "InvalidBody", format!("could not read the request body: {e}"))
        }
        BodyError::TooLarge => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
            format!("the request body is larger than {limit} bytes"),
        ),
        BodyError::TimedOut(t) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "RequestTimeout",
            format!("the request body did not arrive within {} s", t.as_secs()),
        ),
    })
}

/// Parses a JSON body.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidJson",
            "the request body is empty; a JSON object is expected",
        ));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "InvalidJson", format!("the request body is not valid JSON: {e}"))
    })?;
    match tandem_core::fields::nul_at(&value) {
        Some(at) => Err(ApiError::invalid_field(at, "must not hold the NUL character (U+0000)")),
        None => Ok(value),
    }
}

/// Reads and parses a JSON body within the limits.
pub async fn json(payload: web::Payload, settings: &WebSettings) -> Result<Value, ApiError> {
    let bytes = read_limited(payload, settings).await?;
    parse_json(&bytes)
}
