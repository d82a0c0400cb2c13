//! Discovery endpoints: ServiceProviderConfig, Schemas, ResourceTypes.

use super::auth::ScimCaller;
use super::dispatch::ResourceId;
use super::response::{scim_json, ScimFailure};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use tandem_scim::schema::{self, ServiceProviderConfig};
use tandem_scim::ScimError;

fn base(state: &AppState, caller: &ScimCaller) -> String {
    format!("{}/scim/v2/{}", state.settings.public_url, caller.connection_id)
}

/// `GET /ServiceProviderConfig`
pub async fn service_provider_config(state: web::Data<AppState>, caller: ScimCaller) -> HttpResponse {
    let cfg = ServiceProviderConfig {
        max_filter_results: state.settings.scim_max_results,
        max_payload_bytes: state.settings.scim_max_body_bytes as u64,
        documentation_uri: None,
    };
    scim_json(StatusCode::OK, &schema::service_provider_config_json(&cfg, &base(&state, &caller)))
}

/// `GET /Schemas`
pub async fn schemas(state: web::Data<AppState>, caller: ScimCaller) -> HttpResponse {
    scim_json(StatusCode::OK, &schema::schemas_json(&base(&state, &caller)))
}

/// `GET /Schemas/{id}`
pub async fn schema(
    state: web::Data<AppState>,
    caller: ScimCaller,
    ResourceId(id): ResourceId,
) -> Result<HttpResponse, ScimFailure> {
    let body = schema::schema_json(&id, &base(&state, &caller))
        .ok_or_else(|| ScimError::not_found(format!("no schema {id:?}")))?;
    Ok(scim_json(StatusCode::OK, &body))
}

/// `GET /ResourceTypes`
pub async fn resource_types(state: web::Data<AppState>, caller: ScimCaller) -> HttpResponse {
    scim_json(StatusCode::OK, &schema::resource_types_json(&base(&state, &caller)))
}

/// `GET /ResourceTypes/{name}`
pub async fn resource_type(
    state: web::Data<AppState>,
    caller: ScimCaller,
    ResourceId(id): ResourceId,
) -> Result<HttpResponse, ScimFailure> {
    let body = schema::resource_type_json(&id, &base(&state, &caller))
        .ok_or_else(|| ScimError::not_found(format!("no resource type {id:?}")))?;
    Ok(scim_json(StatusCode::OK, &body))
}
