//! SCIM schemas (RFC 7643): URN constants, attribute definitions for User, Enterprise User and Group,
//! attribute resolution, and the discovery documents (`/Schemas`, `/ResourceTypes`, `/ServiceProviderConfig`).

mod common;
mod discovery;
mod enterprise;
mod group;
mod model;
mod resource_type;
mod user;

pub use common::{common_attribute, COMMON_ATTRIBUTES};
pub use discovery::{
    resource_type_json, resource_types_json, schema_json, schemas_json, service_provider_config_json,
    ServiceProviderConfig,
};
pub use enterprise::ENTERPRISE_USER;
pub use group::GROUP;
pub use model::{AttrType, AttributeDef, Mutability, Returned, SchemaDef, Uniqueness};
pub use resource_type::{resolve, resolve_in_path, split_urn, ResolvedAttr, ResourceType};
pub use user::USER;

/// Core User schema URN.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Enterprise User extension schema URN.
pub const ENTERPRISE_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Core Group schema URN.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// List response message URN (RFC 7644 §3.4.2).
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// PATCH request message URN (RFC 7644 §3.5.2).
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Error response message URN (RFC 7644 §3.12).
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// Search request message URN (RFC 7644 §3.4.3).
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
/// Service provider configuration schema URN (RFC 7643 §5).
pub const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
/// Resource type schema URN (RFC 7643 §6).
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
/// Schema definition schema URN (RFC 7643 §7).
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
