//! The SCIM 2.0 server at `/scim/v2/{scim_connection_id}`: what each
//! customer's IdP pushes users and groups to, with that connection's key.

mod auth;
mod discovery;
mod groups;
pub mod paths;
mod request;
mod response;
mod search;
mod users;

use actix_web::web;

pub use groups::render as render_group;
pub use users::render as render_user;

/// Registers the SCIM routes: Users and Groups first, as actix tries
/// routes in order and each pattern with a `{segment}` is a regex run.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let not_allowed = || web::to(response::method_not_allowed);
    cfg.service(
        web::scope("/scim/v2/{connection_id}")
            .service(
                web::resource("/Users")
                    .route(web::get().to(users::list))
                    .route(web::post().to(users::create))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/Users/.search").route(web::post().to(users::search)).default_service(not_allowed()),
            )
            .service(
                web::resource("/Users/{id}")
                    .route(web::get().to(users::get))
                    .route(web::put().to(users::replace))
                    .route(web::patch().to(users::patch))
                    .route(web::delete().to(users::delete))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/Groups")
                    .route(web::get().to(groups::list))
                    .route(web::post().to(groups::create))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/Groups/.search").route(web::post().to(groups::search)).default_service(not_allowed()),
            )
            .service(
                web::resource("/Groups/{id}")
                    .route(web::get().to(groups::get))
                    .route(web::put().to(groups::replace))
                    .route(web::patch().to(groups::patch))
                    .route(web::delete().to(groups::delete))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/ServiceProviderConfig")
                    .route(web::get().to(discovery::service_provider_config))
                    .default_service(not_allowed()),
            )
            .service(web::resource("/Schemas").route(web::get().to(discovery::schemas)).default_service(not_allowed()))
            .service(
                web::resource("/Schemas/{id}").route(web::get().to(discovery::schema)).default_service(not_allowed()),
            )
            .service(
                web::resource("/ResourceTypes")
                    .route(web::get().to(discovery::resource_types))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/ResourceTypes/{name}")
                    .route(web::get().to(discovery::resource_type))
                    .default_service(not_allowed()),
            )
            .service(web::resource("/.search").route(web::post().to(search::root)).default_service(not_allowed()))
            .default_service(web::to(response::unknown_endpoint)),
    );
}
