//! The login: `POST /api/v1/sso/login/initiate` and `/complete`.
//!
//! Initiate finds the customer's OIDC client, discovers its IdP (cached),
//! seals the login into the OAuth `state` (bound to the cookie value it
//! hands out) and returns the IdP URL; it stores nothing, and its part of
//! the login event is written behind its answer. Complete opens the state,
//! checks the cookie and the age, claims the login (single use), exchanges
//! the code, validates the ID token, records the SSO user and joins it to
//! the paired SCIM user. Every attempt leaves a login event with the steps
//! it reached.

pub(crate) mod complete;
mod errors;
mod initiate;
pub mod join;
mod trace;

pub use complete::complete;
pub use initiate::initiate;
