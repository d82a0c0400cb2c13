//! Tandem's black-box suite: every test starts the real server on port 0
//! and talks HTTP to it. It runs on SQLite by default and on PostgreSQL when
//! `SUITE_DATABASE_URL` is a `postgres://` URL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods, clippy::zombie_processes)]

mod helpers;
mod login_support;
mod stub_idp;
mod tls_idp;

mod client_keys;
mod config_and_startup;
mod dashboard;
mod events;
mod login_attacks;
mod login_join;
mod login_real_idp;
mod management_auth;
mod matching_report;
mod oidc_clients;
mod operations;
mod schema;
mod scim_connections;
mod scim_entra;
mod scim_okta;
mod scim_protocol;
mod setup_links;
mod webhooks;
