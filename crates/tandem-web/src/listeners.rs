//! Which listener serves which routes. By default one listener serves
//! everything. With an admin listener (`server.admin_bind`), the main one
//! serves only what must be reachable from outside, the SCIM server (Okta
//! and Entra push from their clouds), the public keys of `private_key_jwt`
//! clients (an IdP may fetch them), the setup pages (a customer's admin
//! opens them) and the health checks, and the admin
//! one serves everything: the management API (the app's backend, its login
//! calls included), the dashboard and the metrics can then sit on a private
//! network.

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};

/// Whether the main listener serves `path` when an admin listener is set.
fn public(path: &str) -> bool {
    path.starts_with("/scim/")
        || path.starts_with("/setup/")
        || (path.starts_with("/oidc/") && path.ends_with("/jwks.json"))
        || matches!(path, "/healthz" | "/readyz")
}

/// Middleware: with an admin listener, a request on the main one for
/// anything but what [`public`] lists (SCIM, client JWK Sets, setup pages,
/// health checks) is answered 404, as a route that is not there.
pub async fn admin_routes_off_the_public_listener(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let public_listener = req.app_data::<web::Data<AppState>>().and_then(|s| s.settings.public_listener);
    // The path as the router reads it (`/%73etup/…` is a setup page there).
    let routed = req.match_info().as_str();
    if public_listener.is_some_and(|a| a == req.app_config().local_addr()) && !public(routed) {
        let message = format!(
            "no route for {} {} on this address: the management API, the dashboard and the metrics are served \
             on the admin address (server.admin_bind)",
            req.method(),
            crate::span::safe_path(req.path(), routed)
        );
        let resp = ApiError::not_found("RouteNotFound", message).error_response();
        return Ok(req.into_response(resp).map_into_right_body());
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}
