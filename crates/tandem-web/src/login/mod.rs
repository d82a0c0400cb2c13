//! The login: `POST /api/v1/sso/login/initiate` and `/complete`.
//!
//! Initiate finds the customer's OIDC client, discovers its IdP (cached),
//! stores a single-use transaction bound to the app's cookie and returns
//! the IdP URL. Complete checks that binding, exchanges the code, validates
//! the ID token, records the SSO user and joins it to the paired SCIM user.
//! Every attempt leaves a login event with the steps it reached.

mod complete;
mod errors;
mod initiate;
mod join;
mod trace;

pub use complete::complete;
pub use initiate::initiate;
