//! Resources as JSON: canonicalisation for storage, `attributes`/`excludedAttributes` projection,
//! value access for indexing, and the ListResponse envelope.

mod access;
mod diff;
pub(crate) mod normalize;
mod project;
mod view;

pub use access::{email_values, list_response, list_response_text, primary_value_at, value_at};
pub use diff::changed_attributes;
pub use normalize::{ignored_attributes, normalize};
pub use project::{check_projection, project};
pub use view::{default_view, write_pair};
