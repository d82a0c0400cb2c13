//! Resources as JSON: canonicalisation for storage, `attributes`/`excludedAttributes` projection,
//! value access for indexing, and the ListResponse envelope.

mod access;
mod normalize;
mod project;

pub use access::{list_response, primary_value_at, value_at};
pub use normalize::normalize;
pub use project::project;
