//! The SCIM 2.0 server at `/scim/v2/{scim_connection_id}`: what each
//! customer's IdP pushes users and groups to, with that connection's key.

mod auth;
mod discovery;
mod dispatch;
mod groups;
pub mod paths;
mod request;
mod response;
mod search;
mod users;

use actix_web::web;

pub use groups::render as render_group;
pub use response::ScimFailure;
pub use users::render as render_user;

/// Registers the SCIM server: one static scope whose requests
/// [`dispatch::dispatch`] routes (see there for why not actix's router).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/scim/v2").default_service(actix_web::dev::fn_service(dispatch::dispatch)));
}
