//! Reading request bodies: a size limit and JSON parsing whose errors say
//! where the JSON broke, in the API's own error shape.

use crate::error::ApiError;
use actix_web::http::StatusCode;
use actix_web::web;
use serde_json::Value;

/// Reads the whole body, refusing more than `limit` bytes.
pub async fn read_limited(payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    match payload.to_bytes_limited(limit).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, "InvalidBody", format!("could not read the request body: {e}")))
        }
        Err(_) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
            format!("the request body is larger than {limit} bytes"),
        )),
    }
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

/// Reads and parses a JSON body within the limit.
pub async fn json(payload: web::Payload, limit: usize) -> Result<Value, ApiError> {
    let bytes = read_limited(payload, limit).await?;
    parse_json(&bytes)
}
