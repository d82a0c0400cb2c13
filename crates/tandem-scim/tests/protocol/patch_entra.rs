//! PATCH shapes Microsoft Entra ID sends (see Microsoft's "Known issues and resolutions with SCIM
//! 2.0 protocol compliance of the Microsoft Entra user provisioning service").

use crate::common::*;
use serde_json::json;
use tandem_scim::filter::{matches, parse_filter};
use tandem_scim::schema::ResourceType;

#[test]
fn entra_capitalised_replace_op_is_accepted() {
    let user = patched_user(json!([{"op": "Replace", "path": "displayName", "value": "Barbara J."}]));
    assert_eq!(user["displayName"], "Barbara J.");
}

#[test]
fn entra_string_false_for_active_becomes_boolean() {
    let user = patched_user(json!([{"op": "Replace", "path": "active", "value": "False"}]));
    assert_eq!(user["active"], false);
    let user = patched_user(json!([{"op": "Replace", "path": "active", "value": "True"}]));
    assert_eq!(user["active"], true);
}

#[test]
fn entra_path_less_active_string_becomes_boolean() {
    let user = patched_user(json!([{"op": "Replace", "value": {"active": "False"}}]));
    assert_eq!(user["active"], false);
}

#[test]
fn entra_path_less_replace_with_dotted_and_urn_keys_is_applied() {
    let user = patched_user(json!([{
        "op": "Replace",
        "value": {
            "displayName": "Babs",
            "name.givenName": "Barb",
            "name.familyName": "Jensen-Smith",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "1",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Finance",
            "active": false
        }
    }]));
    assert_eq!(user["displayName"], "Babs");
    assert_eq!(user["name"], json!({"givenName": "Barb", "familyName": "Jensen-Smith"}));
    assert_eq!(user[ENTERPRISE]["employeeNumber"], "1");
    assert_eq!(user[ENTERPRISE]["department"], "Finance");
    assert_eq!(user["active"], false);
}

#[test]
fn entra_add_external_id_sets_it() {
    let user =
        patched_user(json!([{"op": "Add", "path": "externalId", "value": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"}]));
    assert_eq!(user["externalId"], "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef");
}

#[test]
fn entra_add_work_email_value_updates_existing_work_email() {
    let user =
        patched_user(json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "babs@contoso.com"}]));
    assert_eq!(user["emails"][0]["value"], "babs@contoso.com");
    assert_eq!(user["emails"].as_array().unwrap().len(), 2);
}

#[test]
fn entra_replace_mobile_phone_creates_it_when_missing() {
    let user = patched_user(
        json!([{"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"}]),
    );
    let phones = user["phoneNumbers"].as_array().unwrap();
    assert_eq!(phones.len(), 2);
    assert_eq!(phones[1], json!({"type": "mobile", "value": "+1 555 0100"}));
}

#[test]
fn entra_replace_work_address_component_creates_work_address() {
    let user = patched_user(json!([
        {"op": "Replace", "path": "addresses[type eq \"work\"].locality", "value": "Redmond"},
        {"op": "Replace", "path": "addresses[type eq \"work\"].postalCode", "value": "98052"}
    ]));
    assert_eq!(user["addresses"], json!([{"type": "work", "locality": "Redmond", "postalCode": "98052"}]));
}

#[test]
fn entra_manager_as_plain_string_is_stored_as_object() {
    let user = patched_user(json!([{
        "op": "Add",
        "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "value": "26118915-6090-4610-87e4-49d8ca9f808d"
    }]));
    assert_eq!(user[ENTERPRISE]["manager"], json!({"value": "26118915-6090-4610-87e4-49d8ca9f808d"}));
}

#[test]
fn entra_manager_as_value_object_is_stored() {
    let user = patched_user(json!([{
        "op": "Replace",
        "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "value": {"value": "26118915"}
    }]));
    assert_eq!(user[ENTERPRISE]["manager"], json!({"value": "26118915"}));
}

#[test]
fn entra_legacy_manager_array_with_null_ref_is_unwrapped() {
    let user = patched_user(json!([{
        "op": "Add",
        "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "value": [{"$ref": null, "value": "26118915"}]
    }]));
    assert_eq!(user[ENTERPRISE]["manager"], json!({"value": "26118915"}));
}

#[test]
fn entra_new_manager_replaces_old_reference_entirely() {
    let mut user = stored_user();
    user[ENTERPRISE]["manager"] = json!({"value": "old", "$ref": "https://example.com/v2/Users/old"});
    patch(
        &mut user,
        ResourceType::User,
        json!([{"op": "Replace", "path": format!("{ENTERPRISE}:manager"), "value": "new"}]),
    )
    .unwrap();
    assert_eq!(user[ENTERPRISE]["manager"], json!({"value": "new"}));
}

#[test]
fn entra_manager_with_empty_value_clears_it() {
    let mut user = patched_user(json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": "26118915"}]));
    patch(
        &mut user,
        ResourceType::User,
        json!([{"op": "Replace", "path": format!("{ENTERPRISE}:manager"), "value": {"value": ""}}]),
    )
    .unwrap();
    assert!(user[ENTERPRISE].get("manager").is_none());
    assert_eq!(user[ENTERPRISE]["department"], "Tour Operations");
}

#[test]
fn entra_manager_replaced_with_null_clears_it() {
    let mut user = patched_user(json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": "26118915"}]));
    patch(
        &mut user,
        ResourceType::User,
        json!([{"op": "Replace", "path": format!("{ENTERPRISE}:manager"), "value": null}]),
    )
    .unwrap();
    assert!(user[ENTERPRISE].get("manager").is_none());
}

#[test]
fn entra_manager_value_sub_path_sets_and_clears_it() {
    let mut user =
        patched_user(json!([{"op": "Replace", "path": format!("{ENTERPRISE}:manager.value"), "value": "m1"}]));
    assert_eq!(user[ENTERPRISE]["manager"], json!({"value": "m1"}));
    patch(
        &mut user,
        ResourceType::User,
        json!([{"op": "Replace", "path": format!("{ENTERPRISE}:manager.value"), "value": ""}]),
    )
    .unwrap();
    assert!(user[ENTERPRISE].get("manager").is_none());
}

#[test]
fn entra_remove_manager_removes_it() {
    let mut user = patched_user(json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": "26118915"}]));
    patch(&mut user, ResourceType::User, json!([{"op": "Remove", "path": format!("{ENTERPRISE}:manager")}])).unwrap();
    assert!(user[ENTERPRISE].get("manager").is_none());
}

#[test]
fn entra_path_less_urn_manager_string_is_stored_as_object() {
    let user = patched_user(json!([{"op": "Replace", "value": {format!("{ENTERPRISE}:manager"): "m2"}}]));
    assert_eq!(user[ENTERPRISE]["manager"], json!({"value": "m2"}));
}

#[test]
fn entra_add_members_appends_new_members() {
    let group = patched_group(
        json!([{"op": "Add", "path": "members", "value": [{"value": "6c5bb468-14b2-4183-baf2-06d523e03bd3"}]}]),
    );
    assert_eq!(
        member_ids(&group),
        [
            "2819c223-7f76-453a-919d-413861904646",
            "902c246b-6245-4190-8e05-00816be7344a",
            "6c5bb468-14b2-4183-baf2-06d523e03bd3"
        ]
    );
}

#[test]
fn entra_adding_an_existing_member_does_not_duplicate_it() {
    let group = patched_group(
        json!([{"op": "Add", "path": "members", "value": [{"value": "2819c223-7f76-453a-919d-413861904646"}]}]),
    );
    assert_eq!(member_ids(&group).len(), 2);
    assert_eq!(group["members"][0]["display"], "Babs Jensen");
}

#[test]
fn entra_remove_members_with_value_array_removes_just_those() {
    let group = patched_group(
        json!([{"op": "Remove", "path": "members", "value": [{"value": "2819c223-7f76-453a-919d-413861904646"}]}]),
    );
    assert_eq!(member_ids(&group), ["902c246b-6245-4190-8e05-00816be7344a"]);
}

#[test]
fn entra_remove_members_with_unknown_id_changes_nothing() {
    let group = patched_group(json!([{"op": "Remove", "path": "members", "value": [{"value": "not-a-member"}]}]));
    assert_eq!(group, stored_group());
}

#[test]
fn remove_members_without_value_removes_all_members() {
    let group = patched_group(json!([{"op": "Remove", "path": "members"}]));
    assert!(group.get("members").is_none());
    assert_eq!(group["displayName"], "Tour Guides");
}

/// A remove whose value lists nothing removes nothing: an empty batch must
/// not empty the group.
#[test]
fn remove_members_with_an_empty_value_list_removes_none() {
    for value in [json!([]), json!([{}]), json!([{"value": null}])] {
        let group = patched_group(json!([{"op": "Remove", "path": "members", "value": value.clone()}]));
        assert_eq!(group, stored_group(), "{value}");
    }
    // Nor does it empty another multi-valued attribute.
    assert_eq!(patched_user(json!([{"op": "remove", "path": "emails", "value": []}])), stored_user());
}

#[test]
fn remove_member_by_value_filter_removes_that_member() {
    let group =
        patched_group(json!([{"op": "Remove", "path": "members[value eq \"2819c223-7f76-453a-919d-413861904646\"]"}]));
    assert_eq!(member_ids(&group), ["902c246b-6245-4190-8e05-00816be7344a"]);
}

#[test]
fn entra_group_rename_replaces_display_name() {
    let group = patched_group(json!([{"op": "Replace", "path": "displayName", "value": "Senior Guides"}]));
    assert_eq!(group["displayName"], "Senior Guides");
    assert_eq!(member_ids(&group).len(), 2);
}

#[test]
fn entra_roles_with_string_primary_are_coerced() {
    let user = patched_user(json!([{
        "op": "Add",
        "path": "roles",
        "value": [{"primary": "True", "type": "WindowsAzureActiveDirectoryRole", "display": "Admin", "value": "Admin"}]
    }]));
    assert_eq!(
        user["roles"],
        json!([{"primary": true, "type": "WindowsAzureActiveDirectoryRole", "display": "Admin", "value": "Admin"}])
    );
}

#[test]
fn entra_bare_value_filters_find_users() {
    let user = stored_user();
    assert!(matches(&parse_filter("externalId eq bjensen").unwrap(), &user, ResourceType::User));
    assert!(matches(&parse_filter("userName eq bjensen@example.com").unwrap(), &user, ResourceType::User));
}
