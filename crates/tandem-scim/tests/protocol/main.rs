//! The SCIM protocol crate's tests, by concern: filters, PATCH (RFC shapes and
//! what Entra and Okta send), normalization and projection.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

mod common;
mod filter_eval;
mod filter_parse;
mod normalize;
mod patch_apply;
mod patch_entra;
mod patch_okta;
mod patch_parse;
mod project;
