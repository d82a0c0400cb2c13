//! SCIM PATCH (RFC 7644 §3.5.2): parsing a PatchOp body and applying it to a resource held as JSON.

mod apply;
pub(crate) mod edit;
mod members;
mod parse;
pub(crate) mod target;

pub use apply::{apply_patch, ignored_in_patch};
pub use members::{MemberPatch, MemberState};
pub use parse::{parse_patch, PatchOpKind, PatchOperation};
