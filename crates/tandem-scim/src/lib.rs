//! `tandem-scim`: SCIM 2.0 (RFC 7643 / RFC 7644) building blocks for Tandem's SCIM server —
//! schemas and discovery documents, filters, PATCH paths and operations, and resource handling
//! over `serde_json::Value`.
//!
//! ```
//! use serde_json::json;
//! use tandem_scim::filter::{matches, parse_filter};
//! use tandem_scim::patch::{apply_patch, parse_patch};
//! use tandem_scim::resource::normalize;
//! use tandem_scim::schema::ResourceType;
//!
//! let mut user = normalize(ResourceType::User, json!({"UserName": "bjensen", "active": "True"}))?;
//! let ops = parse_patch(
//!     &json!({"Operations": [{"op": "Replace", "path": "active", "value": "False"}]}),
//!     100,
//! )?;
//! apply_patch(&mut user, &ops, ResourceType::User)?;
//! assert_eq!(user["active"], false);
//! assert!(matches(&parse_filter("userName eq \"BJENSEN\" and active eq false")?, &user, ResourceType::User));
//! # Ok::<(), tandem_scim::ScimError>(())
//! ```

#![warn(missing_docs)]

mod coerce;
mod custom;
mod datetime;
pub mod error;
pub mod filter;
mod json;
mod keys;
pub mod patch;
pub mod path;
pub mod resource;
pub mod schema;

pub use custom::{is_custom_urn, MAX_CUSTOM_BYTES};
pub use datetime::instant_micros;
pub use error::ScimError;
pub use json::to_text;
