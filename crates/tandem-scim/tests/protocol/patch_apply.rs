//! Applying PATCH operations: RFC 7644 §3.5.2.1 add, §3.5.2.2 remove, §3.5.2.3 replace.

use crate::common::*;
use serde_json::json;
use tandem_scim::patch::{apply_patch, PatchOpKind, PatchOperation};
use tandem_scim::path::parse_path;
use tandem_scim::schema::ResourceType;

#[test]
fn add_with_path_sets_a_single_valued_attribute() {
    let user = patched_user(json!([{"op": "add", "path": "title", "value": "Tour Guide"}]));
    assert_eq!(user["title"], "Tour Guide");
}

#[test]
fn attribute_names_in_paths_resolve_to_canonical_spelling() {
    let user = patched_user(json!([{"op": "replace", "path": "DISPLAYNAME", "value": "Babs"}]));
    assert_eq!(user["displayName"], "Babs");
    assert!(user.get("DISPLAYNAME").is_none());
}

#[test]
fn add_with_sub_attribute_path_sets_it_and_keeps_siblings() {
    let user = patched_user(json!([{"op": "add", "path": "name.middleName", "value": "Jane"}]));
    assert_eq!(user["name"], json!({"familyName": "Jensen", "givenName": "Barbara", "middleName": "Jane"}));
}

#[test]
fn add_to_multi_valued_attribute_appends() {
    let user =
        patched_user(json!([{"op": "add", "path": "emails", "value": [{"value": "b@example.org", "type": "other"}]}]));
    assert_eq!(user["emails"].as_array().unwrap().len(), 3);
    assert_eq!(user["emails"][2]["value"], "b@example.org");
}

#[test]
fn add_of_an_existing_value_does_not_duplicate_it() {
    let user = patched_user(
        json!([{"op": "add", "path": "emails", "value": [{"value": "BJENSEN@example.com", "type": "work"}]}]),
    );
    assert_eq!(user["emails"].as_array().unwrap().len(), 2);
}

#[test]
fn add_of_a_complex_value_merges_sub_attributes() {
    let user = patched_user(json!([{"op": "add", "path": "name", "value": {"honorificPrefix": "Ms."}}]));
    assert_eq!(user["name"]["honorificPrefix"], "Ms.");
    assert_eq!(user["name"]["givenName"], "Barbara");
}

#[test]
fn add_without_path_merges_each_named_attribute() {
    let user = patched_user(json!([{
        "op": "add",
        "value": {
            "emails": [{"value": "babs@jensen.org", "type": "home"}, {"value": "new@example.com", "type": "other"}],
            "nickName": "Babs",
            "name.honorificSuffix": "III"
        }
    }]));
    assert_eq!(user["emails"].as_array().unwrap().len(), 3);
    assert_eq!(user["nickName"], "Babs");
    assert_eq!(user["name"]["honorificSuffix"], "III");
    assert_eq!(user["name"]["familyName"], "Jensen");
}

#[test]
fn add_primary_value_clears_other_primaries() {
    let user = patched_user(
        json!([{"op": "add", "path": "emails", "value": [{"value": "n@example.com", "type": "other", "primary": true}]}]),
    );
    let primaries: Vec<_> = user["emails"].as_array().unwrap().iter().filter(|e| e["primary"] == true).collect();
    assert_eq!(primaries.len(), 1);
    assert_eq!(primaries[0]["value"], "n@example.com");
    assert_eq!(user["emails"][0]["primary"], false);
}

#[test]
fn replace_of_multi_valued_attribute_replaces_the_whole_set() {
    let user = patched_user(
        json!([{"op": "replace", "path": "emails", "value": [{"value": "only@example.com", "type": "work"}]}]),
    );
    assert_eq!(user["emails"], json!([{"value": "only@example.com", "type": "work"}]));
}

#[test]
fn replace_of_complex_attribute_merges_given_sub_attributes() {
    let user = patched_user(json!([{"op": "replace", "path": "name", "value": {"givenName": "Babs"}}]));
    assert_eq!(user["name"], json!({"familyName": "Jensen", "givenName": "Babs"}));
}

#[test]
fn replace_with_null_clears_the_attribute() {
    let user = patched_user(json!([{"op": "replace", "path": "displayName", "value": null}]));
    assert!(user.get("displayName").is_none());
}

#[test]
fn replace_through_value_filter_sets_sub_attribute_on_matches() {
    let user =
        patched_user(json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "babs@example.com"}]));
    assert_eq!(user["emails"][0], json!({"value": "babs@example.com", "type": "work", "primary": true}));
    assert_eq!(user["emails"][1]["value"], "babs@jensen.org");
}

#[test]
fn replace_through_value_filter_without_sub_attribute_replaces_matches() {
    let user = patched_user(
        json!([{"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "home@jensen.org", "display": "home"}}]),
    );
    // The filter's type stays.
    assert_eq!(user["emails"][1], json!({"value": "home@jensen.org", "type": "home", "display": "home"}));
    // RFC 7644 §3.5.2.3: the matching record is replaced, not merged into (its primary and display go).
    let user = patched_user(json!([
        {"op": "add", "path": "emails[type eq \"work\"].display", "value": "Work"},
        {"op": "replace", "path": "emails[type eq \"work\"]", "value": {"value": "new@example.com", "type": "work"}}
    ]));
    assert_eq!(user["emails"][0], json!({"value": "new@example.com", "type": "work"}));
    // A replacement without a value keeps the address.
    let user = patched_user(json!([{"op": "replace", "path": "emails[type eq \"work\"]", "value": {"display": "W"}}]));
    assert_eq!(user["emails"][0], json!({"value": "bjensen@example.com", "type": "work", "display": "W"}));
    // An add through the filter still merges.
    let user = patched_user(json!([{"op": "add", "path": "emails[type eq \"work\"]", "value": {"display": "Work"}}]));
    assert_eq!(
        user["emails"][0],
        json!({"value": "bjensen@example.com", "type": "work", "primary": true, "display": "Work"})
    );
}

#[test]
fn primary_is_true_on_one_value_at_most() {
    // RFC 7643 §2.4. A whole array (POST, PUT, a replace without path): the first primary wins.
    let user = patched_user(json!([{"op": "replace", "path": "emails", "value": [
        {"value": "a@x.example", "primary": true}, {"value": "b@x.example", "primary": true}]}]));
    assert_eq!(user["emails"][0]["primary"], true);
    assert_eq!(user["emails"][1]["primary"], false);
    // The sub-attribute set on every value: the first keeps it.
    let user = patched_user(json!([{"op": "replace", "path": "emails.primary", "value": true}]));
    let primaries: Vec<&serde_json::Value> = user["emails"].as_array().unwrap().iter().map(|e| &e["primary"]).collect();
    assert_eq!(primaries, [&json!(true), &json!(false)]);
}

#[test]
fn replace_through_unmatched_eq_filter_creates_the_value() {
    let user = patched_user(
        json!([{"op": "replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "100 Universal City Plaza"}]),
    );
    assert_eq!(user["addresses"], json!([{"type": "work", "streetAddress": "100 Universal City Plaza"}]));
}

#[test]
fn replace_through_unmatched_conjunction_creates_value_from_all_pairs() {
    let user = patched_user(
        json!([{"op": "replace", "path": "phoneNumbers[type eq \"mobile\" and primary eq true].value", "value": "555-0100"}]),
    );
    let phones = user["phoneNumbers"].as_array().unwrap();
    assert_eq!(phones.len(), 2);
    assert_eq!(phones[1], json!({"type": "mobile", "primary": true, "value": "555-0100"}));
}

#[test]
fn replace_through_unmatched_non_eq_filter_is_no_target() {
    let err =
        user_patch_error(json!([{"op": "replace", "path": "emails[value co \"@nowhere\"].type", "value": "work"}]));
    assert_eq!(err.scim_type, Some("noTarget"));
    assert_eq!(err.detail, r#"Operations[0]: no value of emails matches emails[value co "@nowhere"].type"#);
}

#[test]
fn replace_through_filter_with_primary_true_clears_other_primaries() {
    let user = patched_user(json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]));
    assert_eq!(user["emails"][0]["primary"], false);
    assert_eq!(user["emails"][1]["primary"], true);
}

#[test]
fn remove_with_path_removes_the_attribute() {
    let user = patched_user(json!([{"op": "remove", "path": "displayName"}]));
    assert!(user.get("displayName").is_none());
}

#[test]
fn remove_of_a_sub_attribute_keeps_the_rest() {
    let user = patched_user(json!([{"op": "remove", "path": "name.givenName"}]));
    assert_eq!(user["name"], json!({"familyName": "Jensen"}));
}

#[test]
fn remove_of_last_sub_attribute_removes_the_attribute() {
    let user = patched_user(json!([
        {"op": "remove", "path": "name.givenName"},
        {"op": "remove", "path": "name.familyName"}
    ]));
    assert!(user.get("name").is_none());
}

#[test]
fn remove_through_value_filter_removes_matching_values() {
    let user = patched_user(json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]));
    assert_eq!(user["emails"].as_array().unwrap().len(), 1);
    assert_eq!(user["emails"][0]["type"], "work");
}

#[test]
fn remove_through_value_filter_with_sub_attribute_removes_only_that_sub_attribute() {
    let user = patched_user(json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]));
    assert_eq!(user["emails"][0], json!({"value": "bjensen@example.com", "type": "work"}));
}

#[test]
fn remove_of_every_value_leaves_attribute_unassigned() {
    let user = patched_user(json!([{"op": "remove", "path": "phoneNumbers[type eq \"work\"]"}]));
    assert!(user.get("phoneNumbers").is_none());
}

#[test]
fn remove_through_filter_matching_nothing_changes_nothing() {
    let user = patched_user(json!([{"op": "remove", "path": "emails[type eq \"other\"]"}]));
    assert_eq!(user, stored_user());
}

#[test]
fn remove_of_an_absent_attribute_changes_nothing() {
    let user = patched_user(json!([{"op": "remove", "path": "nickName"}]));
    assert_eq!(user, stored_user());
}

#[test]
fn removing_user_name_is_rejected_as_required() {
    let err = user_patch_error(json!([{"op": "remove", "path": "userName"}]));
    assert_eq!(err.scim_type, Some("invalidValue"));
    assert_eq!(err.detail, "Operations[0]: userName is required and cannot be removed");
}

#[test]
fn replacing_user_name_with_null_fails_validation() {
    let err = user_patch_error(json!([{"op": "replace", "path": "userName", "value": null}]));
    assert_eq!(err.detail, "userName is required");
}

#[test]
fn remove_without_path_built_directly_is_no_target() {
    let mut user = stored_user();
    let op = PatchOperation { op: PatchOpKind::Remove, path: None, value: None };
    let err = apply_patch(&mut user, &[op], ResourceType::User).unwrap_err();
    assert_eq!(err.scim_type, Some("noTarget"));
}

#[test]
fn read_only_id_cannot_be_replaced() {
    let err = user_patch_error(json!([{"op": "replace", "path": "id", "value": "new"}]));
    assert_eq!(err.scim_type, Some("mutability"));
    assert_eq!(err.detail, "Operations[0]: id is read-only");
}

#[test]
fn read_only_meta_sub_attribute_cannot_be_changed() {
    let err =
        user_patch_error(json!([{"op": "replace", "path": "meta.lastModified", "value": "2020-01-01T00:00:00Z"}]));
    assert_eq!(err.scim_type, Some("mutability"));
    assert_eq!(err.detail, "Operations[0]: meta.lastModified is read-only");
    let err = user_patch_error(json!([{"op": "remove", "path": "meta"}]));
    assert_eq!(err.scim_type, Some("mutability"));
}

#[test]
fn user_groups_are_read_only() {
    let err = user_patch_error(json!([{"op": "add", "path": "groups", "value": [{"value": "g1"}]}]));
    assert_eq!(err.scim_type, Some("mutability"));
}

#[test]
fn path_less_value_repeating_id_schemas_and_meta_is_accepted() {
    let user = patched_user(json!([{"op": "replace", "value": {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "something-else",
        "meta": {"resourceType": "User"},
        "groups": [{"value": "g1"}],
        "title": "Guide"
    }}]));
    assert_eq!(user["id"], "2819c223-7f76-453a-919d-413861904646");
    assert_eq!(user["meta"], stored_user()["meta"]);
    assert!(user.get("groups").is_none());
    assert_eq!(user["title"], "Guide");
}

#[test]
fn read_only_attributes_of_the_stored_resource_survive_a_patch() {
    let mut user = stored_user();
    user["groups"] = json!([{"value": "g1", "display": "Guides", "type": "direct"}]);
    patch(&mut user, ResourceType::User, json!([{"op": "replace", "path": "title", "value": "x"}])).unwrap();
    assert_eq!(user["groups"][0]["value"], "g1");
    assert_eq!(user["id"], "2819c223-7f76-453a-919d-413861904646");
    assert_eq!(user["meta"]["version"], "W/\"a330bc54f0671c9\"");
}

#[test]
fn unknown_attribute_in_path_is_invalid_path_naming_it() {
    let err = user_patch_error(json!([{"op": "add", "path": "shoeSize", "value": "42"}]));
    assert_eq!(err.scim_type, Some("invalidPath"));
    assert_eq!(err.detail, r#"Operations[0]: unknown attribute "shoeSize""#);
}

#[test]
fn unknown_attribute_under_known_schema_in_path_is_ignored() {
    let user = patched_user(json!([{"op": "add", "path": format!("{ENTERPRISE}:shoeSize"), "value": "42"}]));
    assert_eq!(user, stored_user());
}

const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:Custom:2.0:User";

/// The stored user with `custom` as its custom extension's object.
fn with_custom(custom: serde_json::Value) -> serde_json::Value {
    let mut expected = stored_user();
    expected["schemas"].as_array_mut().unwrap().push(json!(CUSTOM));
    expected[CUSTOM] = custom;
    expected
}

#[test]
fn custom_extension_paths_are_applied_without_a_schema() {
    // As Entra ID sends a mapped custom attribute.
    let user = patched_user(json!([
        {"op": "Add", "path": format!("{CUSTOM}:costCode"), "value": "42"},
        {"op": "add", "path": format!("{CUSTOM}:roles"), "value": ["a"]},
        {"op": "add", "path": format!("{CUSTOM}:ROLES"), "value": ["a", "b"]},
        {"op": "replace", "path": format!("{CUSTOM}:site.code"), "value": "OSL"}
    ]));
    assert_eq!(user, with_custom(json!({"costCode": "42", "roles": ["a", "b"], "site": {"code": "OSL"}})));
    let mut user = user;
    let ops = tandem_scim::patch::parse_patch(
        &json!({"Operations": [
            {"op": "remove", "path": format!("{CUSTOM}:roles"), "value": "a"},
            {"op": "replace", "path": format!("{CUSTOM}:costcode"), "value": 7},
            {"op": "remove", "path": format!("{CUSTOM}:site")}
        ]}),
        100,
    )
    .unwrap();
    apply_patch(&mut user, &ops, ResourceType::User).unwrap();
    assert_eq!(user, with_custom(json!({"costCode": 7, "roles": ["b"]})));
}

#[test]
fn a_custom_extension_path_is_added_to_replaced_in_or_removed_whole() {
    let user = patched_user(json!([
        {"op": "add", "path": CUSTOM, "value": {"a": 1, "b": 2}},
        {"op": "add", "path": CUSTOM, "value": {"b": 3, "c": 4}}
    ]));
    assert_eq!(user, with_custom(json!({"a": 1, "b": 3, "c": 4})));
    let user = patched_user(json!([
        {"op": "add", "path": CUSTOM, "value": {"a": 1, "b": 2}},
        {"op": "replace", "path": CUSTOM, "value": {"b": null, "c": 4}}
    ]));
    // The attributes the value names are set (null removes), the others left (RFC 7644 §3.5.2.3).
    assert_eq!(user, with_custom(json!({"a": 1, "c": 4})));
    // A replace of the whole extension with nothing removes it.
    for nothing in [json!(null), json!({})] {
        let user = patched_user(json!([
            {"op": "add", "path": CUSTOM, "value": {"a": 1}},
            {"op": "replace", "path": CUSTOM, "value": nothing}
        ]));
        assert_eq!(user, stored_user());
    }
    let user = patched_user(json!([
        {"op": "add", "path": CUSTOM, "value": {"a": 1}},
        {"op": "remove", "path": CUSTOM}
    ]));
    assert_eq!(user, stored_user());
}

#[test]
fn a_value_filter_on_a_custom_attribute_is_refused() {
    // No schema says what its values are compared by; ignoring it would
    // leave a value the IdP removed (a role) in place.
    for ops in [
        json!([{"op": "remove", "path": format!("{CUSTOM}:roles[value eq \"admin\"]")}]),
        json!([{"op": "replace", "value": {format!("{CUSTOM}:roles[value eq \"a\"].display"): "A"}}]),
    ] {
        let mut user = stored_user();
        let err = patch(&mut user, ResourceType::User, ops).unwrap_err();
        assert_eq!(err.scim_type, Some("invalidPath"));
        assert!(err.detail.contains("a value filter cannot select values of"), "{}", err.detail);
        assert_eq!(user, stored_user());
    }
}

#[test]
fn path_less_keys_keep_custom_extensions_and_ignore_unknown_names() {
    let user = patched_user(json!([{"op": "replace", "value": {
        "favouriteColour": "blue",
        CUSTOM: {"costCode": "42"},
        format!("{CUSTOM}:badge"): "7",
        "title": "Guide"
    }}]));
    let mut expected = with_custom(json!({"badge": "7", "costCode": "42"}));
    expected["title"] = json!("Guide");
    assert_eq!(user, expected);
}

#[test]
fn a_custom_attribute_a_patch_adds_under_a_new_urn_survives_the_next_patch() {
    // `urn:example:acme` with a value that is no object: the attribute `acme` of `urn:example`.
    let mut user = patched_user(json!([{"op": "add", "path": "urn:example:acme", "value": "7"}]));
    assert_eq!(user["urn:example"], json!({"acme": "7"}), "{user}");
    let ops = tandem_scim::patch::parse_patch(
        &json!({"Operations": [{"op": "replace", "path": "title", "value": "Guide"}]}),
        100,
    )
    .unwrap();
    apply_patch(&mut user, &ops, ResourceType::User).unwrap();
    assert_eq!(user["urn:example"], json!({"acme": "7"}), "{user}");
    assert!(user["schemas"].as_array().unwrap().contains(&json!("urn:example")), "{user}");
}

#[test]
fn unknown_attribute_under_known_schema_is_ignored_and_the_rest_applied() {
    // As Entra sends a deactivation with an admin's custom attribute under the enterprise URN.
    let user = patched_user(json!([
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Add", "path": format!("{ENTERPRISE}:badgeId"), "value": "7"},
        {"op": "replace", "value": {format!("{ENTERPRISE}:shoeSize"): "42"}},
        {"op": "replace", "value": {ENTERPRISE: {"shoeSize": "42", "department": "Sales"}}}
    ]));
    let mut expected = stored_user();
    expected["active"] = json!(false);
    expected[ENTERPRISE]["department"] = json!("Sales");
    assert_eq!(user, expected);
    // An unqualified unknown path is still a typo to report.
    let err = user_patch_error(json!([{"op": "replace", "path": "shoeSize", "value": "42"}]));
    assert_eq!(err.scim_type, Some("invalidPath"));
}

#[test]
fn path_less_schema_key_with_object_sets_extension_attributes() {
    let user =
        patched_user(json!([{"op": "replace", "value": {ENTERPRISE: {"Department": "Sales", "costCenter": "4130"}}}]));
    assert_eq!(user[ENTERPRISE], json!({"employeeNumber": "701984", "department": "Sales", "costCenter": "4130"}));
}

#[test]
fn type_error_names_the_attribute() {
    let err = user_patch_error(json!([{"op": "replace", "path": "title", "value": {"a": 1}}]));
    assert_eq!(err.scim_type, Some("invalidValue"));
    assert_eq!(err.detail, "Operations[0]: title must be a string, got an object");
    let err = user_patch_error(json!([{"op": "replace", "path": "active", "value": "maybe"}]));
    assert_eq!(err.detail, r#"Operations[0]: active must be a boolean, got "maybe""#);
}

#[test]
fn value_filter_on_single_valued_attribute_is_invalid_path() {
    let err = user_patch_error(json!([{"op": "replace", "path": "title[value eq \"x\"]", "value": "y"}]));
    assert_eq!(err.scim_type, Some("invalidPath"));
}

#[test]
fn operations_apply_in_order() {
    let user = patched_user(json!([
        {"op": "replace", "path": "title", "value": "one"},
        {"op": "replace", "path": "title", "value": "two"},
        {"op": "add", "path": "nickName", "value": "n"},
        {"op": "remove", "path": "nickName"}
    ]));
    assert_eq!(user["title"], "two");
    assert!(user.get("nickName").is_none());
}

#[test]
fn failing_later_operation_leaves_resource_unchanged() {
    let err = user_patch_error(json!([
        {"op": "replace", "path": "title", "value": "changed"},
        {"op": "replace", "path": "id", "value": "x"}
    ]));
    assert!(err.detail.starts_with("Operations[1]: "));
}

#[test]
fn last_extension_attribute_removed_drops_extension_and_its_schema() {
    let user = patched_user(json!([
        {"op": "remove", "path": format!("{ENTERPRISE}:employeeNumber")},
        {"op": "remove", "path": format!("{ENTERPRISE}:department")}
    ]));
    assert!(user.get(ENTERPRISE).is_none());
    assert_eq!(user["schemas"], json!([USER_URN]));
}

#[test]
fn first_extension_attribute_added_lists_the_extension_schema() {
    let mut user = stored_user();
    user.as_object_mut().unwrap().remove(ENTERPRISE);
    user["schemas"] = json!([USER_URN]);
    patch(
        &mut user,
        ResourceType::User,
        json!([{"op": "add", "path": format!("{ENTERPRISE}:division"), "value": "Theme Park"}]),
    )
    .unwrap();
    assert_eq!(user[ENTERPRISE], json!({"division": "Theme Park"}));
    assert_eq!(user["schemas"], json!([USER_URN, ENTERPRISE]));
}

#[test]
fn immutable_member_value_cannot_be_rewritten() {
    let mut group = stored_group();
    let err = patch(
        &mut group,
        ResourceType::Group,
        json!([{"op": "replace", "path": "members[value eq \"902c246b-6245-4190-8e05-00816be7344a\"].value", "value": "other"}]),
    )
    .unwrap_err();
    assert_eq!(err.scim_type, Some("mutability"));
    assert_eq!(group, stored_group());
}

#[test]
fn member_display_can_be_updated_through_filter() {
    let group = patched_group(
        json!([{"op": "replace", "path": "members[value eq \"902c246b-6245-4190-8e05-00816be7344a\"].display", "value": "Mandy P."}]),
    );
    assert_eq!(group["members"][1]["display"], "Mandy P.");
}

#[test]
fn path_less_key_with_value_filter_is_applied_as_a_path() {
    let user = patched_user(json!([{"op": "replace", "value": {"emails[type eq \"work\"].value": "w@example.com"}}]));
    assert_eq!(user["emails"][0]["value"], "w@example.com");
}

#[test]
fn patch_path_struct_can_be_built_from_parse_path() {
    let mut user = stored_user();
    let op = PatchOperation {
        op: PatchOpKind::Replace,
        path: Some(parse_path("name.givenName").unwrap()),
        value: Some(json!("B")),
    };
    apply_patch(&mut user, &[op], ResourceType::User).unwrap();
    assert_eq!(user["name"]["givenName"], "B");
}

#[test]
fn sub_attribute_of_multi_valued_attribute_without_filter_sets_every_value() {
    let user = patched_user(json!([{"op": "replace", "path": "emails.display", "value": "mail"}]));
    let emails = user["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 2, "{user}");
    assert!(emails.iter().all(|e| e["display"] == "mail"));
}

#[test]
fn add_sub_attribute_of_empty_multi_valued_attribute_creates_a_value() {
    let user = patched_user(json!([{"op": "add", "path": "ims.value", "value": "babs-aim"}]));
    assert_eq!(user["ims"], json!([{"value": "babs-aim"}]));
}

/// An `add` of `null` through a value filter adds nothing, and takes
/// nothing away (only `replace` and `remove` do).
#[test]
fn an_add_of_null_through_a_value_filter_changes_nothing() {
    for path in ["emails[type eq \"work\"]", "emails[type eq \"work\"].value"] {
        let user = patched_user(json!([{"op": "add", "path": path, "value": null}]));
        let again = patched_user(json!([{"op": "replace", "path": "displayName", "value": "Babs Jensen"}]));
        assert_eq!(user["emails"], again["emails"], "{path}");
    }
}

/// A path naming the core schema is read as no path: its value's keys are
/// the attributes, so `{"active": false}` under it deactivates.
#[test]
fn path_naming_the_core_schema_writes_the_attributes_its_value_names() {
    use serde_json::json;
    use tandem_scim::patch::{apply_patch, parse_patch};
    use tandem_scim::schema::ResourceType;
    let core = "urn:ietf:params:scim:schemas:core:2.0:User";
    let mut user = json!({"schemas": [core], "userName": "a@b.c", "active": true, "displayName": "A"});
    let ops =
        parse_patch(&json!({"Operations": [{"op": "replace", "path": core, "value": {"active": false}}]}), 10).unwrap();
    apply_patch(&mut user, &ops, ResourceType::User).unwrap();
    assert_eq!((&user["active"], &user["displayName"]), (&json!(false), &json!("A")));
    let ops = parse_patch(&json!({"Operations": [{"op": "remove", "path": core}]}), 10).unwrap();
    let err = apply_patch(&mut user, &ops, ResourceType::User).unwrap_err();
    assert_eq!((err.status, err.scim_type), (400, Some("invalidPath")), "{}", err.detail);
}

#[test]
fn path_naming_the_whole_enterprise_extension_adds_replaces_and_removes_it() {
    use serde_json::json;
    use tandem_scim::patch::{apply_patch, parse_patch};
    use tandem_scim::schema::ResourceType;
    let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let mut user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a@b.c"});
    let ops = parse_patch(
        &json!({"Operations": [{"op": "add", "path": urn, "value": {"department": "R&D", "employeeNumber": "7"}}]}),
        10,
    )
    .unwrap();
    apply_patch(&mut user, &ops, ResourceType::User).unwrap();
    assert_eq!(user[urn]["department"], "R&D");
    let ops = parse_patch(&json!({"Operations": [{"op": "replace", "path": urn, "value": {"costCenter": "42"}}]}), 10)
        .unwrap();
    apply_patch(&mut user, &ops, ResourceType::User).unwrap();
    // The attributes its value names are set, the others left (RFC 7644 §3.5.2.3).
    assert_eq!(user[urn], json!({"department": "R&D", "employeeNumber": "7", "costCenter": "42"}));
    let ops = parse_patch(&json!({"Operations": [{"op": "replace", "path": urn, "value": {"department": null}}]}), 10)
        .unwrap();
    apply_patch(&mut user, &ops, ResourceType::User).unwrap();
    assert_eq!(user[urn], json!({"employeeNumber": "7", "costCenter": "42"}), "a null value removes");
    // A replace of the whole extension with nothing removes it.
    let ops = parse_patch(&json!({"Operations": [{"op": "replace", "path": urn, "value": null}]}), 10).unwrap();
    apply_patch(&mut user, &ops, ResourceType::User).unwrap();
    assert!(user.get(urn).is_none(), "{user}");
    let ops =
        parse_patch(&json!({"Operations": [{"op": "add", "path": urn, "value": {"department": "R&D"}}]}), 10).unwrap();
    apply_patch(&mut user, &ops, ResourceType::User).unwrap();
    let ops = parse_patch(&json!({"Operations": [{"op": "remove", "path": urn}]}), 10).unwrap();
    apply_patch(&mut user, &ops, ResourceType::User).unwrap();
    assert!(user.get(urn).is_none());
    assert!(!user["schemas"].as_array().unwrap().iter().any(|s| s == urn));
}

/// Adding or removing many values compares each with the values sharing its
/// text, not with every value. What a resource may hold is bounded (64 KiB),
/// but a request may send far more: 20,000 emails go through an add, and
/// are refused for the size they would make, in milliseconds (with a
/// comparison against every value it took minutes, holding the write lock).
/// The bound is generous; the point is n, not n².
#[test]
fn many_values_added_and_removed_are_matched_by_their_text() {
    let values = |n: usize| (0..n).map(|i| json!({"value": format!("u{i}@example.com")})).collect::<Vec<_>>();
    let mut twice = values(500);
    twice.push(json!({"value": "U7@EXAMPLE.COM", "display": "again"}));
    let user = patched_user(json!([{"op": "add", "path": "emails", "value": twice}]));
    let emails = user["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 502, "the stored two and the new ones, the repeated one merged");
    assert_eq!(emails[9]["display"], "again");
    let mut stored = user.clone();
    let removed =
        patch(&mut stored, ResourceType::User, json!([{"op": "remove", "path": "emails", "value": values(500)}]));
    assert!(removed.is_ok(), "{removed:?}");
    assert_eq!(stored["emails"].as_array().unwrap().len(), 2, "{}", stored["emails"]);
    let started = std::time::Instant::now();
    let mut stored = stored_user();
    let err = patch(&mut stored, ResourceType::User, json!([{"op": "add", "path": "emails", "value": values(20_000)}]));
    assert!(err.is_err_and(|e| e.detail.contains("at most 65536")), "refused for its size");
    let mut stored = user.clone();
    let removed =
        patch(&mut stored, ResourceType::User, json!([{"op": "remove", "path": "emails", "value": values(20_000)}]));
    assert!(removed.is_ok(), "{removed:?}");
    assert_eq!(stored["emails"].as_array().unwrap().len(), 2, "{}", stored["emails"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
}

/// Values without a `value` (addresses), and values of one text under many
/// types, are found by what makes them the same too: 40,000 of each go
/// through an add (refused for the size they would make) in well under a
/// second (compared with every value, as they were, it took minutes while
/// holding the write lock). The bound is generous; the point is n, not n².
#[test]
fn many_values_without_a_value_or_of_one_text_are_not_compared_with_each_other() {
    let addresses = |n: usize| (0..n).map(|i| json!({"country": format!("c{i}")})).collect::<Vec<_>>();
    let mut again = addresses(300);
    again.push(json!({"country": "c7"}));
    let user = patched_user(json!([{"op": "add", "path": "addresses", "value": again}]));
    assert_eq!(user["addresses"].as_array().unwrap().len(), 300, "the repeated one is the same address");
    let mut stored = user.clone();
    let removed =
        patch(&mut stored, ResourceType::User, json!([{"op": "remove", "path": "addresses", "value": addresses(300)}]));
    assert!(removed.is_ok(), "{removed:?}");
    assert!(stored.get("addresses").is_none(), "{}", stored["addresses"]);
    let typed =
        |n: usize| (0..n).map(|i| json!({"value": "same@example.com", "type": format!("t{i}")})).collect::<Vec<_>>();
    let untyped =
        |n: usize| (0..n).map(|i| json!({"value": "SAME@example.com", "display": format!("d{i}")})).collect::<Vec<_>>();
    let user = patched_user(json!([{"op": "add", "path": "emails", "value": typed(300)},
                                    {"op": "add", "path": "emails", "value": untyped(300)}]));
    let emails = user["emails"].as_array().unwrap();
    // The typed ones are new; each untyped one is the same as the first of its text.
    assert_eq!(emails.len(), 2 + 300, "{}", emails.len());
    let first = emails.iter().find(|e| e["type"] == "t0").unwrap();
    assert_eq!(first["display"], "d299", "{first}");
    let started = std::time::Instant::now();
    for ops in [
        json!([{"op": "add", "path": "addresses", "value": addresses(40_000)}]),
        json!([{"op": "add", "path": "emails", "value": typed(40_000)}, {"op": "add", "path": "emails", "value": untyped(40_000)}]),
    ] {
        let err = patch(&mut stored_user(), ResourceType::User, ops);
        assert!(err.is_err_and(|e| e.detail.contains("at most 65536")), "refused for its size");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
}

/// A user holding `n` emails, as stored.
fn user_with_emails(n: usize) -> serde_json::Value {
    let mut user = stored_user();
    user["emails"] = (0..n).map(|i| json!({"value": format!("e{i}@x.example"), "type": "work"})).collect();
    user
}

/// Many operations on a resource of many values are refused before they
/// run (`tooMany`, naming the limit), instead of holding the writer for
/// seconds; as many on a resource of a few values, or a few on one of
/// many, are applied.
#[test]
fn a_patch_may_go_through_at_most_a_million_values() {
    let ops = |n: usize| -> Vec<PatchOperation> {
        let op = json!({"op": "replace", "path": "emails[value eq \"e0@x.example\"].display", "value": "d"});
        tandem_scim::patch::parse_patch(&body(serde_json::Value::Array(vec![op; n])), 1000).unwrap()
    };
    let mut user = user_with_emails(2_000);
    let before = user.clone();
    let err = apply_patch(&mut user, &ops(600), ResourceType::User).unwrap_err();
    assert_eq!((err.status, err.scim_type), (400, Some("tooMany")), "{}", err.detail);
    assert!(err.detail.contains("1000000") && err.detail.starts_with("Operations[499]: "), "{}", err.detail);
    assert_eq!(user, before, "nothing applied");
    apply_patch(&mut user, &ops(400), ResourceType::User).unwrap();
    assert_eq!(user["emails"][0]["display"], "d");
    let mut small = user_with_emails(5);
    apply_patch(&mut small, &ops(1000), ResourceType::User).unwrap();
    // A path filter of many terms is charged for each: 2,003 values x 150
    // terms x 4 operations is past the bound.
    let terms = (0..150).map(|i| format!("value eq \"n{i}\"")).collect::<Vec<_>>().join(" or ");
    let op = json!({"op": "remove", "path": format!("emails[{terms}]")});
    let four = tandem_scim::patch::parse_patch(&body(json!([op, op, op, op])), 1000).unwrap();
    let err = apply_patch(&mut user, &four, ResourceType::User).unwrap_err();
    assert!(err.detail.starts_with("Operations[3]: "), "{}", err.detail);
    // One path-less operation whose value names many filtered paths goes
    // through the values once for each (and each may add one): charged so.
    let keys: serde_json::Map<String, serde_json::Value> =
        (0..2_000).map(|i| (format!("emails[type eq \"t{i}\"].value"), json!("x@x.example"))).collect();
    let one = tandem_scim::patch::parse_patch(&body(json!([{"op": "add", "value": keys}])), 1000).unwrap();
    let started = std::time::Instant::now();
    let err = apply_patch(&mut user_with_emails(100), &one, ResourceType::User).unwrap_err();
    assert_eq!((err.status, err.scim_type), (400, Some("tooMany")), "{}", err.detail);
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "refused before it runs");
    // The same under the core schema's URN as the path, which reads as none.
    let Some(serde_json::Value::Object(keys)) = one[0].value.clone() else { panic!("an object value") };
    let core = "urn:ietf:params:scim:schemas:core:2.0:User";
    let under_core =
        tandem_scim::patch::parse_patch(&body(json!([{"op": "add", "path": core, "value": keys}])), 1000).unwrap();
    let err = apply_patch(&mut user_with_emails(100), &under_core, ResourceType::User).unwrap_err();
    assert_eq!((err.status, err.scim_type), (400, Some("tooMany")), "{}", err.detail);
    let keys: serde_json::Map<String, serde_json::Value> =
        (0..20).map(|i| (format!("emails[type eq \"t{i}\"].value"), json!(format!("t{i}@x.example")))).collect();
    let few = tandem_scim::patch::parse_patch(&body(json!([{"op": "add", "value": keys}])), 1000).unwrap();
    let mut user = user_with_emails(100);
    apply_patch(&mut user, &few, ResourceType::User).unwrap();
    assert_eq!(user["emails"].as_array().map(Vec::len), Some(120));
}
