//! Integration-key authentication for the management and login APIs.

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, FromRequest, HttpRequest};
use std::future::Future;
use std::pin::Pin;
use tandem_store::integration_keys::{self, IntegrationKey};
use tandem_store::StoreError;

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

/// The live integration key `presented`, if any, its use recorded (at most
/// once a minute, in a write of its own: a failure to record it is logged and
/// does not refuse the key).
pub async fn find_integration_key(
    state: &AppState,
    presented: String,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<IntegrationKey>, StoreError> {
    let key = state.store.read(move |c| integration_keys::authenticate(c, &presented)).await?;
    if let Some(k) = key.as_ref().filter(|k| k.use_due(now)) {
        let id = k.id.clone();
        if let Err(e) = state.store.write_small(move |c| integration_keys::record_use(c, &id, now)).await {
            tracing::warn!(error = %e, "could not record an integration key's use");
        }
    }
    Ok(key)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer(req).map(str::to_string);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        // Kept for the audit line of a refusal (a handle, not a copy).
        let req = req.clone();
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
            let generation = state.integration_keys.generation();
            let key = find_integration_key(&state, token, now).await?;
            match key {
                Some(k) => {
                    let caller = Caller { key_id: k.id, name: k.name };
                    state.integration_keys.put(hash, caller.clone(), now, generation);
                    Ok(caller)
                }
                None => {
                    let client = crate::span::Client::of(&req);
                    tracing::warn!(target: "audit", %client, "rejected an unknown or revoked integration key");
                    Err(ApiError::unauthorized("InvalidIntegrationKey", "the integration key is unknown or revoked"))
                }
            }
        })
    }
}
