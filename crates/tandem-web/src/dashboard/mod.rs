//! The admin dashboard at `/dashboard`: server-rendered HTML, no JavaScript,
//! no external assets. Signed in with an integration key; the session lives
//! in an HttpOnly, SameSite=Lax cookie (`Secure` when `public_url` is https), and every form carries the
//! session's CSRF token.

mod actions;
mod customer;
pub(crate) mod layout;
mod overview;
mod session;

use crate::body::FormPage;
use actix_web::web;

/// Registers the dashboard routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/dashboard")
            .app_data(FormPage(|_, status, text| layout::message(status, "Not understood", None, text)))
            .route("", web::get().to(overview::page_handler))
            .route("/login", web::get().to(session::login_page))
            .route("/login", web::post().to(session::login))
            .route("/logout", web::post().to(session::logout))
            .route("/assets/dashboard.css", web::get().to(layout::stylesheet))
            .route("/setup-links", web::post().to(actions::make_setup_link))
            .route("/setup-links/{id}/revoke", web::post().to(actions::revoke_setup_link))
            .route("/customers/{customer_id}", web::get().to(customer::page_handler))
            .route("/customers/{customer_id}/client-certificate.pem", web::get().to(customer::client_certificate))
            .route("/customers/{customer_id}/strategy", web::post().to(actions::save_strategy))
            .route("/customers/{customer_id}/rotate-key", web::post().to(actions::rotate_key))
            .route("/customers/{customer_id}/scim-required", web::post().to(actions::set_scim_required))
            .default_service(web::to(layout::not_found)),
    );
}
