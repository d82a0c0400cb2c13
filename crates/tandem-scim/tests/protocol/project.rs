//! `attributes` / `excludedAttributes` projection, value access and list responses.

use crate::common::*;
use serde_json::{json, Value};
use tandem_scim::resource::{list_response, primary_value_at, project, value_at};
use tandem_scim::schema::ResourceType;

fn keys(value: &Value) -> Vec<String> {
    let mut k: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn user_with_password() -> Value {
    let mut user = stored_user();
    user["password"] = json!("secret");
    user
}

#[test]
fn without_parameters_everything_but_never_returned_is_kept() {
    let got = project(user_with_password(), ResourceType::User, None, None).unwrap();
    assert_eq!(got, stored_user());
}

#[test]
fn attributes_selects_named_plus_always_returned() {
    let got = project(stored_user(), ResourceType::User, Some("userName,displayName"), None).unwrap();
    assert_eq!(keys(&got), ["displayName", "id", "schemas", "userName"]);
}

#[test]
fn attributes_are_matched_ignoring_case_and_spaces() {
    let got = project(stored_user(), ResourceType::User, Some(" USERNAME , Name.GivenName "), None).unwrap();
    assert_eq!(got["userName"], "bjensen@example.com");
    assert_eq!(got["name"], json!({"givenName": "Barbara"}));
}

#[test]
fn sub_attribute_selection_applies_to_each_value() {
    let got = project(stored_user(), ResourceType::User, Some("emails.value"), None).unwrap();
    assert_eq!(got["emails"], json!([{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}]));
}

#[test]
fn urn_qualified_selection_reaches_into_the_extension() {
    let got = project(stored_user(), ResourceType::User, Some(&format!("{ENTERPRISE}:department")), None).unwrap();
    assert_eq!(got[ENTERPRISE], json!({"department": "Tour Operations"}));
    assert_eq!(keys(&got), ["id", "schemas", ENTERPRISE]);
    assert_eq!(got["schemas"], json!([USER_URN, ENTERPRISE]));
}

#[test]
fn selecting_a_schema_urn_selects_its_attributes() {
    let got = project(stored_user(), ResourceType::User, Some(ENTERPRISE), None).unwrap();
    assert_eq!(got[ENTERPRISE], stored_user()[ENTERPRISE]);
    assert!(got.get("userName").is_none());
}

#[test]
fn core_urn_qualified_name_selects_core_attribute() {
    let got = project(stored_user(), ResourceType::User, Some(&format!("{USER_URN}:userName")), None).unwrap();
    assert_eq!(keys(&got), ["id", "schemas", "userName"]);
}

#[test]
fn excluded_attributes_are_removed() {
    let got = project(stored_user(), ResourceType::User, None, Some("emails,name.givenName,meta")).unwrap();
    assert!(got.get("emails").is_none());
    assert!(got.get("meta").is_none());
    assert_eq!(got["name"], json!({"familyName": "Jensen"}));
    assert_eq!(got["userName"], "bjensen@example.com");
}

#[test]
fn id_cannot_be_excluded() {
    let got = project(stored_user(), ResourceType::User, None, Some("id,userName")).unwrap();
    assert_eq!(got["id"], "2819c223-7f76-453a-919d-413861904646");
    assert!(got.get("userName").is_none());
}

#[test]
fn password_is_never_returned_even_when_asked() {
    let got = project(user_with_password(), ResourceType::User, Some("password,userName"), None).unwrap();
    assert!(got.get("password").is_none());
}

#[test]
fn excluding_extension_attributes_drops_extension_and_its_schema() {
    let got = project(
        stored_user(),
        ResourceType::User,
        None,
        Some(&format!("{ENTERPRISE}:employeeNumber,{ENTERPRISE}:department")),
    )
    .unwrap();
    assert!(got.get(ENTERPRISE).is_none());
    assert_eq!(got["schemas"], json!([USER_URN]));
}

#[test]
fn entra_group_fetch_excluding_members() {
    let got = project(stored_group(), ResourceType::Group, None, Some("members")).unwrap();
    assert_eq!(keys(&got), ["displayName", "id", "meta", "schemas"]);
}

#[test]
fn group_members_value_only() {
    let got = project(stored_group(), ResourceType::Group, Some("members.value"), None).unwrap();
    assert_eq!(
        got["members"],
        json!([{"value": "2819c223-7f76-453a-919d-413861904646"}, {"value": "902c246b-6245-4190-8e05-00816be7344a"}])
    );
}

#[test]
fn unknown_names_select_nothing() {
    let got = project(stored_user(), ResourceType::User, Some("shoeSize,urn:example:x:y"), None).unwrap();
    assert_eq!(keys(&got), ["id", "schemas"]);
}

#[test]
fn malformed_names_are_invalid_path() {
    let err = project(stored_user(), ResourceType::User, Some("user name"), None).unwrap_err();
    assert_eq!(err.scim_type, Some("invalidPath"));
    assert!(err.detail.starts_with("attributes: "), "{}", err.detail);
    let err = project(stored_user(), ResourceType::User, None, Some("a.b.c")).unwrap_err();
    assert!(err.detail.starts_with("excludedAttributes: "), "{}", err.detail);
}

#[test]
fn empty_parameters_count_as_absent() {
    assert_eq!(project(stored_user(), ResourceType::User, Some(""), Some(" ")).unwrap(), stored_user());
}

#[test]
fn value_at_reads_core_and_extension_values() {
    let user = stored_user();
    assert_eq!(value_at(&user, None, "userName", None), Some(&json!("bjensen@example.com")));
    assert_eq!(value_at(&user, None, "USERNAME", None), Some(&json!("bjensen@example.com")));
    assert_eq!(value_at(&user, None, "name", Some("givenname")), Some(&json!("Barbara")));
    assert_eq!(value_at(&user, Some(ENTERPRISE), "employeeNumber", None), Some(&json!("701984")));
    assert_eq!(value_at(&user, Some(ENTERPRISE), "manager", Some("value")), None);
    assert_eq!(value_at(&user, None, "nickName", None), None);
}

#[test]
fn value_at_on_multi_valued_attribute_returns_first_value() {
    let user = stored_user();
    assert_eq!(value_at(&user, None, "emails", Some("value")), Some(&json!("bjensen@example.com")));
    assert_eq!(value_at(&user, None, "emails", Some("display")), None);
    assert_eq!(value_at(&user, None, "emails", None).unwrap()["type"], "work");
}

#[test]
fn primary_value_at_prefers_the_primary_value() {
    let mut user = stored_user();
    user["emails"] = json!([{"value": "a@x"}, {"value": "b@x", "primary": true}]);
    assert_eq!(primary_value_at(&user, None, "emails", Some("value")), Some(&json!("b@x")));
    assert_eq!(value_at(&user, None, "emails", Some("value")), Some(&json!("a@x")));
    user["emails"] = json!([{"value": "a@x"}]);
    assert_eq!(primary_value_at(&user, None, "emails", Some("value")), Some(&json!("a@x")));
}

#[test]
fn list_response_has_rfc_envelope_with_integer_counts() {
    let got = list_response(42, 11, vec![json!({"id": "a"}), json!({"id": "b"})]);
    assert_eq!(
        got,
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": 42,
            "startIndex": 11,
            "itemsPerPage": 2,
            "Resources": [{"id": "a"}, {"id": "b"}]
        })
    );
}

const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:Custom:2.0:User";

fn user_with_custom() -> Value {
    let mut user = stored_user();
    user["schemas"].as_array_mut().unwrap().push(json!(CUSTOM));
    user[CUSTOM] = json!({"costCode": "42", "site": {"code": "OSL", "floor": 3}});
    user
}

#[test]
fn custom_extensions_are_returned_by_default_and_selected_like_the_enterprise_one() {
    let rt = ResourceType::User;
    assert_eq!(project(user_with_custom(), rt, None, None).unwrap(), user_with_custom());
    // A whole custom extension, by its URN in any case.
    let got = project(user_with_custom(), rt, Some(&CUSTOM.to_uppercase()), None).unwrap();
    assert_eq!(keys(&got), ["id", "schemas", CUSTOM]);
    assert_eq!(got["schemas"], json!([USER_URN, CUSTOM]));
    // One attribute, or one sub-attribute.
    let got = project(user_with_custom(), rt, Some(&format!("userName,{CUSTOM}:SITE.code")), None).unwrap();
    assert_eq!(got[CUSTOM], json!({"site": {"code": "OSL"}}));
    // Left out when not asked for, with its entry in `schemas`.
    let got = project(user_with_custom(), rt, Some("userName"), None).unwrap();
    assert_eq!(keys(&got), ["id", "schemas", "userName"]);
    assert_eq!(got["schemas"], json!([USER_URN]));
    // Excluded whole or in part.
    let got = project(user_with_custom(), rt, None, Some(CUSTOM)).unwrap();
    assert!(got.get(CUSTOM).is_none(), "{got}");
    assert_eq!(got["schemas"], json!([USER_URN, ENTERPRISE]));
    let got = project(user_with_custom(), rt, None, Some(&format!("{CUSTOM}:costCode"))).unwrap();
    assert_eq!(got[CUSTOM], json!({"site": {"code": "OSL", "floor": 3}}));
}
