//! Tandem's HTTP layer: the management API, the SCIM server and the
//! operational endpoints on actix-web. Handlers stay thin: they read the
//! request, call the domain and storage crates, and shape the answer.

pub mod api;
pub mod auth;
mod body;
mod dashboard;
pub mod error;
mod health;
pub mod keycache;
pub mod listeners;
mod login;
mod metrics;
mod nul;
mod scim;
mod setup;
mod span;
pub mod state;
pub mod webhooks;

/// The SCIM join of a login, for tests that drive it with identities no
/// test IdP can issue (a Google account).
pub use login::join::join as scim_join;
pub use metrics::Metrics;
pub use state::{AppState, WebSettings};

use actix_web::{dev::Server, middleware, web, App, HttpServer};
use std::net::TcpListener;
use tracing_actix_web::TracingLogger;

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // GET and HEAD (a load balancer's check may send either); another
    // method is 405 with `Allow`, as on the API.
    cfg.service(
        web::resource("/healthz")
            .route(web::get().to(health::healthz))
            .route(web::head().to(health::healthz))
            .default_service(error::method_not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/readyz")
            .route(web::get().to(health::readyz))
            .route(web::head().to(health::readyz))
            .default_service(error::method_not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/metrics")
            .route(web::get().to(metrics::render))
            .default_service(error::method_not_allowed("GET")),
    )
    // Answers carry keys shown once, login states and users' details:
    // never kept by a cache on the way (RFC 9111 §5.2.2.5).
    .service(
        web::scope("/api/v1")
            .wrap(middleware::DefaultHeaders::new().add(("Cache-Control", "no-store")))
            .configure(api::routes),
    )
    .service(
        web::resource("/oidc/{id}/jwks.json")
            .route(web::get().to(api::oidc_clients::jwks))
            .default_service(error::method_not_allowed("GET")),
    )
    .configure(scim::routes)
    .configure(dashboard::routes)
    .configure(setup::routes)
    .default_service(web::to(error::unknown_route));
}

/// Builds the HTTP server on already-bound listeners: the main one, and
/// the admin one when `server.admin_bind` is set.
pub fn server(
    state: AppState,
    listener: TcpListener,
    admin: Option<TcpListener>,
    workers: usize,
) -> std::io::Result<Server> {
    let server = HttpServer::new(move || {
        // Run once on each worker's thread: the worker's own IdP client.
        let mut state = state.clone();
        match state.http.for_this_worker() {
            Ok(http) => state.http = http,
            Err(e) => tracing::warn!(error = %e, "a worker shares the IdP client of the others"),
        }
        App::new()
            .app_data(web::Data::new(state))
            .wrap(middleware::from_fn(metrics::track))
            // Outside the metrics: a refused path is never a series of its own.
            .wrap(middleware::from_fn(nul::refuse_in_path_or_query))
            .wrap(middleware::from_fn(listeners::admin_routes_off_the_public_listener))
            .wrap(middleware::from_fn(scim::paths::canonical_endpoints))
            .wrap(TracingLogger::<span::RequestSpan>::new())
            .configure(routes)
    })
    .workers(workers.max(1))
    .shutdown_timeout(10)
    .listen(listener)?;
    let server = match admin {
        Some(admin) => server.listen(admin)?,
        None => server,
    };
    Ok(server.run())
}
