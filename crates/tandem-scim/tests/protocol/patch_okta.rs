//! PATCH shapes Okta sends (see Okta's "SCIM 2.0 protocol reference").

use crate::common::*;
use serde_json::json;

#[test]
fn okta_deactivate_user_with_path_less_replace() {
    let user = patched_user(json!([{"op": "replace", "value": {"active": false}}]));
    assert_eq!(user["active"], false);
    let mut expected = stored_user();
    expected["active"] = json!(false);
    assert_eq!(user, expected);
}

#[test]
fn okta_reactivate_user_with_path_less_replace() {
    let user = patched_user(
        json!([{"op": "replace", "value": {"active": false}}, {"op": "replace", "value": {"active": true}}]),
    );
    assert_eq!(user["active"], true);
}

#[test]
fn okta_group_rename_repeating_id_is_accepted() {
    let group = patched_group(json!([{
        "op": "replace",
        "value": {"id": "e9e30dba-f08f-4109-8486-d5c6a331660a", "displayName": "Test SCIMv2"}
    }]));
    assert_eq!(group["displayName"], "Test SCIMv2");
    assert_eq!(group["id"], "e9e30dba-f08f-4109-8486-d5c6a331660a");
}

#[test]
fn okta_group_rename_with_a_different_id_keeps_the_stored_id() {
    let group = patched_group(json!([{"op": "replace", "value": {"id": "other", "displayName": "Renamed"}}]));
    assert_eq!(group["id"], "e9e30dba-f08f-4109-8486-d5c6a331660a");
}

#[test]
fn okta_add_members_with_display_appends_them() {
    let group = patched_group(json!([{
        "op": "add",
        "path": "members",
        "value": [{"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"}]
    }]));
    assert_eq!(
        group["members"][2],
        json!({"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"})
    );
}

#[test]
fn okta_remove_member_by_filter_path() {
    let group =
        patched_group(json!([{"op": "remove", "path": "members[value eq \"902c246b-6245-4190-8e05-00816be7344a\"]"}]));
    assert_eq!(member_ids(&group), ["2819c223-7f76-453a-919d-413861904646"]);
}

#[test]
fn okta_replace_members_replaces_the_whole_list() {
    let group = patched_group(json!([{
        "op": "replace",
        "path": "members",
        "value": [{"value": "a"}, {"value": "b", "display": "Bee"}]
    }]));
    assert_eq!(member_ids(&group), ["a", "b"]);
}

#[test]
fn okta_replace_members_with_empty_list_removes_all() {
    let group = patched_group(json!([{"op": "replace", "path": "members", "value": []}]));
    assert!(group.get("members").is_none());
}

#[test]
fn okta_full_profile_path_less_replace_updates_profile() {
    let user = patched_user(json!([{
        "op": "replace",
        "value": {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "userName": "barbara.jensen@example.com",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"primary": true, "value": "barbara.jensen@example.com", "type": "work"}],
            "displayName": "Barbara Jensen",
            "locale": "en-US",
            "groups": [],
            "active": true
        }
    }]));
    assert_eq!(user["userName"], "barbara.jensen@example.com");
    assert_eq!(user["emails"], json!([{"primary": true, "value": "barbara.jensen@example.com", "type": "work"}]));
    assert_eq!(user["locale"], "en-US");
    assert!(user.get("groups").is_none());
    assert_eq!(user[ENTERPRISE]["employeeNumber"], "701984");
}

#[test]
fn okta_password_in_patch_is_never_stored() {
    let user = patched_user(json!([{"op": "replace", "value": {"password": "t1meMa$heen"}}]));
    assert!(user.get("password").is_none());
    assert_eq!(user, stored_user());
}
