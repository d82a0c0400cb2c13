//! Reading request bodies: a size limit, a deadline, and JSON parsing whose
//! errors say where the JSON broke, in the API's own error shape; and the
//! pages' forms, read the same way.

use crate::error::ApiError;
use crate::state::{AppState, WebSettings};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;
use std::collections::HashMap;
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

/// Most bytes a page's form may have (the dashboard's and the setup
/// pages': a few fields, a client secret at most).
pub const FORM_LIMIT: usize = 16 * 1024;

/// How the pages under a scope answer a form they could not read: the
/// request, the status, and what was wrong. Set as `app_data` beside the
/// routes that take a [`Form`].
#[derive(Clone, Copy)]
pub struct FormPage(pub fn(&HttpRequest, StatusCode, &str) -> HttpResponse);

/// A page's form (`application/x-www-form-urlencoded`), read within
/// [`FORM_LIMIT`] and `server.body_timeout_secs` (actix's own `Form` has no
/// timeout: a form that stopped midway held its connection for good). A
/// name given twice, or a field not UTF-8, is refused (see [`fields`]).
pub struct Form(pub HashMap<String, String>);

impl std::ops::Deref for Form {
    type Target = HashMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl actix_web::FromRequest for Form {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        let payload = <web::Payload as actix_web::FromRequest>::from_request(&req, payload).into_inner();
        Box::pin(async move {
            let refused = |status: StatusCode, why: String| {
                let text = format!("The form could not be read: {why}.");
                let mut page = match req.app_data::<FormPage>() {
                    Some(FormPage(page)) => page(&req, status, &text),
                    None => HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(text),
                };
                if status == StatusCode::REQUEST_TIMEOUT {
                    // The rest of the body may still come: not read, so not kept.
                    page.head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
                }
                actix_web::error::InternalError::from_response(why, page).into()
            };
            // The media type before any parameters (RFC 9110 §8.3.1: spaces may come before `;`).
            let content_type = req.headers().get(actix_web::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            let essence = content_type.and_then(|t| t.split(';').next()).map(str::trim);
            if !essence.is_some_and(|e| e.eq_ignore_ascii_case(FORM_TYPE)) {
                return Err(refused(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("it is not sent as {FORM_TYPE}")));
            }
            let timeout = req.app_data::<web::Data<AppState>>().map_or(DEFAULT_TIMEOUT, |s| s.settings.body_timeout);
            let bytes = match (payload, timeout) {
                (Ok(payload), timeout) => bytes_within(payload, FORM_LIMIT, timeout).await,
                (Err(e), _) => Err(BodyError::Broken(e.to_string())),
            };
            match bytes {
                Ok(bytes) => fields(&bytes).map(Form).map_err(|why| refused(StatusCode::BAD_REQUEST, why)),
                Err(BodyError::TooLarge) => {
                    Err(refused(StatusCode::PAYLOAD_TOO_LARGE, format!("it is larger than {FORM_LIMIT} bytes")))
                }
                Err(BodyError::TimedOut(t)) => {
                    Err(refused(StatusCode::REQUEST_TIMEOUT, format!("it did not arrive within {} s", t.as_secs())))
                }
                Err(BodyError::Broken(e)) => Err(refused(StatusCode::BAD_REQUEST, e)),
            }
        })
    }
}

const FORM_TYPE: &str = "application/x-www-form-urlencoded";

/// A form's fields by name. A name or value that is not UTF-8 once decoded
/// (read as U+FFFD, it would be saved so: a customer ID, a client secret)
/// or a name given twice (one value would be dropped unseen) is refused.
fn fields(body: &[u8]) -> Result<HashMap<String, String>, String> {
    let mut fields = HashMap::new();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        let decoded = |raw: &[u8]| {
            let spaced: Vec<u8> = raw.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
            let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
            String::from_utf8(bytes).ok()
        };
        let Some(name) = decoded(name) else {
            return Err("a field's name is not UTF-8".into());
        };
        let Some(value) = decoded(value) else {
            return Err(format!("the field {name:?} is not UTF-8"));
        };
        if fields.insert(name.clone(), value).is_some() {
            return Err(format!("the field {name:?} is given more than once"));
        }
    }
    Ok(fields)
}
/// Only where no `AppState` is set up (it always is in the server).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::fields;

    #[test]
    fn a_forms_fields_are_utf8_each_named_once() {
        let read = |body: &str| fields(body.as_bytes());
        let got = read("a=1&b=x+y%20z&c&d=%C3%A9").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (got["a"].as_str(), got["b"].as_str(), got["c"].as_str(), got["d"].as_str()),
            ("1", "x y z", "", "é")
        );
        assert!(read("").is_ok_and(|f| f.is_empty()));
        assert_eq!(read("csrf=a&csrf=b"), Err("the field \"csrf\" is given more than once".to_string()));
        assert_eq!(read("customer_id=%FF"), Err("the field \"customer_id\" is not UTF-8".to_string()));
        assert!(read("%C3=1").is_err());
    }
}
