//! SCIM authentication: the connection's bearer key, with an answer that
//! says why a key is refused (expired when, rotated out when).

use super::response::ScimFailure;
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use std::future::Future;
use std::pin::Pin;
use tandem_core::format_time;
use tandem_scim::ScimError;
use tandem_store::scim_connections::{self, KeyRejection};

/// An authenticated SCIM request: which connection it acts on.
#[derive(Clone, Debug)]
pub struct ScimCaller {
    pub connection_id: String,
}

fn unauthorized(detail: impl Into<String>) -> ScimFailure {
    ScimFailure(ScimError::new(401, None, detail))
}

impl FromRequest for ScimCaller {
    type Error = ScimFailure;
    type Future = Pin<Box<dyn Future<Output = Result<ScimCaller, ScimFailure>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = crate::auth::bearer(req).map(str::to_string);
        let connection =
            req.extensions().get::<super::dispatch::ScimRoute>().map(|r| r.connection_id.clone()).unwrap_or_default();
        let state = req.app_data::<web::Data<AppState>>().cloned();
        // Kept for the log entry of a refusal, made only then (a handle, not a copy).
        let req = req.clone();
        Box::pin(async move {
            let token = token.map_err(|m| unauthorized(format!("{m} (the SCIM connection's API key)")))?;
            let state = state.ok_or_else(|| unauthorized("server not configured"))?;
            let now = state.clock.now();
            let hash = tandem_core::keys::hash_key(&token);
            let (stored, read) = match state.scim_keys.get(&hash, now) {
                Some(key) => (Some(key), false),
                None => {
                    let (lookup, generation) = (hash.clone(), state.scim_keys.generation());
                    let found = state.store.read(move |c| scim_connections::find_key(c, &lookup)).await?;
                    if let Some(key) = &found {
                        state.scim_keys.put(hash, key.clone(), now, generation);
                    }
                    (found, true)
                }
            };
            let verdict = scim_connections::check_key(stored, &connection, now);
            match verdict {
                Ok(key) => {
                    // The key's use, as read from the database (a remembered
                    // key is read again within seconds): at most once a minute.
                    if read && key.use_due(now) {
                        let id = key.id;
                        if let Err(e) =
                            state.store.write_small(move |c| scim_connections::record_key_use(c, &id, now)).await
                        {
                            tracing::warn!(error = %e, "could not record a SCIM key's use");
                        }
                    }
                    Ok(ScimCaller { connection_id: connection })
                }
                Err(rejection) => {
                    let detail = match &rejection {
                        KeyRejection::Unknown => "the API key is not valid for this SCIM connection".to_string(),
                        KeyRejection::Expired(at) => format!(
                            "the API key expired at {}; rotate the key in Tandem and update it in the identity provider",
                            format_time(*at)
                        ),
                        KeyRejection::Retired(at) => format!(
                            "the API key was replaced by a rotation and its grace period ended at {}; use the new key",
                            format_time(*at)
                        ),
                    };
                    // Debug-formatted: the id comes off the path, percent-decoded, and may hold line breaks.
                    let client = crate::span::Client::of(&req);
                    // A key pasted where the connection's id goes is cut to its prefix.
                    let shown = tandem_core::keys::redact_keys(&connection);
                    tracing::warn!(target: "audit", connection = ?shown, reason = %detail, %client, "SCIM request refused");
                    let failure = unauthorized(detail);
                    // An expired or rotated-out key is this connection's own: its IdP
                    // is failing to provision, which the provisioning log must show.
                    if !matches!(rejection, KeyRejection::Unknown) {
                        let log = super::request::LogContext::new(&req, &connection);
                        state.log_sink.record(log.entry(now, "fail", None, None, None, 401, Some(&failure.0)));
                    }
                    Err(failure)
                }
            }
        })
    }
}
