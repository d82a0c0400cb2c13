//! Shared fixtures for the integration tests: stored resources and a PATCH helper.

use serde_json::{json, Value};
use tandem_scim::patch::{apply_patch, parse_patch};
use tandem_scim::schema::{ResourceType, PATCH_OP};
use tandem_scim::ScimError;

pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// A stored user as the server keeps it: canonical attributes plus id and meta.
pub fn stored_user() -> Value {
    json!({
        "schemas": [USER_URN, ENTERPRISE],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "bjensen",
        "userName": "bjensen@example.com",
        "name": {"familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z",
            "location": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646",
            "version": "W/\"a330bc54f0671c9\""
        },
        ENTERPRISE: {"employeeNumber": "701984", "department": "Tour Operations"}
    })
}

/// A stored group with two members.
pub fn stored_group() -> Value {
    json!({
        "schemas": [GROUP_URN],
        "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
        "displayName": "Tour Guides",
        "members": [
            {"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen", "type": "User"},
            {"value": "902c246b-6245-4190-8e05-00816be7344a", "display": "Mandy Pepperidge", "type": "User"}
        ],
        "meta": {"resourceType": "Group", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"}
    })
}

/// Wraps operations in a PatchOp body.
pub fn body(operations: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

/// Parses and applies a PatchOp body.
pub fn patch(resource: &mut Value, rt: ResourceType, operations: Value) -> Result<(), ScimError> {
    let ops = parse_patch(&body(operations), 100)?;
    apply_patch(resource, &ops, rt)
}

/// Applies operations to a fresh stored user and returns it.
pub fn patched_user(operations: Value) -> Value {
    let mut user = stored_user();
    patch(&mut user, ResourceType::User, operations).unwrap();
    user
}

/// Applies operations to a fresh stored group and returns it.
pub fn patched_group(operations: Value) -> Value {
    let mut group = stored_group();
    patch(&mut group, ResourceType::Group, operations).unwrap();
    group
}

/// Applies operations to a fresh stored user, expecting an error, and checks the user is unchanged.
pub fn user_patch_error(operations: Value) -> ScimError {
    let mut user = stored_user();
    let err = patch(&mut user, ResourceType::User, operations).unwrap_err();
    assert_eq!(user, stored_user(), "resource changed despite the error");
    err
}

/// The member ids of a group, in order.
pub fn member_ids(group: &Value) -> Vec<String> {
    group["members"]
        .as_array()
        .map(|m| m.iter().map(|x| x["value"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}
