//! Integration-key authentication for the management and login APIs.

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, FromRequest, HttpRequest};
use std::future::Future;
use std::pin::Pin;

/// The integration key a request was made with.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The key's id.
    pub key_id: String,
    /// The key's name (recorded as the actor in the audit log).
    pub name: String,
}

/// The bearer token of a request, if it has one.
pub fn bearer(req: &HttpRequest) -> Result<&str, &'static str> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .ok_or("the Authorization header is missing; send Authorization: Bearer <key>")?;
    let value = header.to_str().map_err(|_| "the Authorization header is not valid text")?;
    let (scheme, token) = value.split_once(' ').ok_or("the Authorization header must be 'Bearer <key>'")?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err("the Authorization header must be 'Bearer <key>'");
    }
    Ok(token.trim())
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer(req).map(str::to_string);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let token = token.map_err(|m| ApiError::unauthorized("MissingIntegrationKey", m))?;
            let state =
                state.ok_or_else(|| ApiError::unauthorized("InvalidIntegrationKey", "server not configured"))?;
            let now = state.clock.now();
            let hash = tandem_core::keys::hash_key(&token);
            // Keys are issued and revoked by the CLI: a revocation reaches a
            // running server within the cache's TTL.
            if let Some(caller) = state.integration_keys.get(&hash, now) {
                return Ok(caller);
            }
            let key = state.store.read(move |c| tandem_store::integration_keys::authenticate(c, &token, now)).await?;
            match key {
                Some(k) => {
                    let caller = Caller { key_id: k.id, name: k.name };
                    state.integration_keys.put(hash, caller.clone(), now);
                    Ok(caller)
                }
                None => {
                    tracing::warn!(target: "audit", "rejected an unknown or revoked integration key");
                    Err(ApiError::unauthorized("InvalidIntegrationKey", "the integration key is unknown or revoked"))
                }
            }
        })
    }
}
