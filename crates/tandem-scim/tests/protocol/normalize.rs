//! Canonicalising client-supplied resources for storage.

use crate::common::*;
use serde_json::{json, Value};
use tandem_scim::resource::normalize;
use tandem_scim::schema::ResourceType;

fn user(input: Value) -> Value {
    normalize(ResourceType::User, input).unwrap()
}

fn user_err(input: Value) -> tandem_scim::ScimError {
    normalize(ResourceType::User, input).unwrap_err()
}

#[test]
fn minimal_user_gets_core_schema_only() {
    assert_eq!(user(json!({"userName": "bjensen"})), json!({"schemas": [USER_URN], "userName": "bjensen"}));
}

#[test]
fn attribute_names_are_respelled_at_every_level() {
    let got = user(json!({
        "USERNAME": "bjensen",
        "Name": {"GivenName": "Barbara", "familyname": "Jensen"},
        "EMAILS": [{"VALUE": "b@example.com", "Type": "work", "PRIMARY": true}]
    }));
    assert_eq!(
        got,
        json!({
            "schemas": [USER_URN],
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "b@example.com", "type": "work", "primary": true}]
        })
    );
}

#[test]
fn enterprise_urn_key_is_respelled_and_listed_in_schemas() {
    let got = user(json!({
        "userName": "bjensen",
        ENTERPRISE.to_lowercase(): {"EmployeeNumber": "701984", "manager": {"value": "m1", "displayName": "Boss"}}
    }));
    assert_eq!(got["schemas"], json!([USER_URN, ENTERPRISE]));
    assert_eq!(got[ENTERPRISE], json!({"employeeNumber": "701984", "manager": {"value": "m1"}}));
}

#[test]
fn urn_qualified_top_level_keys_move_under_their_schema() {
    let got = user(json!({
        "userName": "bjensen",
        format!("{ENTERPRISE}:department"): "Tour Operations",
        format!("{USER_URN}:displayName"): "Babs"
    }));
    assert_eq!(got[ENTERPRISE], json!({"department": "Tour Operations"}));
    assert_eq!(got["displayName"], "Babs");
}

#[test]
fn core_urn_key_holding_core_attributes_is_flattened() {
    let got = user(json!({USER_URN: {"userName": "bjensen", "title": "Guide"}}));
    assert_eq!(got, json!({"schemas": [USER_URN], "userName": "bjensen", "title": "Guide"}));
}

#[test]
fn empty_extension_is_not_listed_in_schemas() {
    let got = user(json!({"userName": "bjensen", "schemas": [USER_URN, ENTERPRISE], ENTERPRISE: {}}));
    assert_eq!(got, json!({"schemas": [USER_URN], "userName": "bjensen"}));
}

#[test]
fn read_only_and_password_attributes_are_dropped() {
    let got = user(json!({
        "id": "client-chosen",
        "meta": {"resourceType": "User"},
        "userName": "bjensen",
        "groups": [{"value": "g1"}],
        "password": "t1meMa$heen"
    }));
    assert_eq!(got, json!({"schemas": [USER_URN], "userName": "bjensen"}));
}

#[test]
fn unknown_plain_attributes_are_dropped_and_custom_extensions_kept_as_sent() {
    let custom = "urn:ietf:params:scim:schemas:extension:Custom:2.0:User";
    let got = user(json!({
        "userName": "bjensen",
        "shoeSize": 42,
        custom: {"costCode": "x", "roles": ["a", "b"], "tier": 2, "empty": "", "none": null, "1bad": "y",
                 "site": {"code": "OSL", "floor": 3}},
        "urn:example:custom:badge": "7"
    }));
    assert_eq!(
        got,
        json!({
            "schemas": [USER_URN, "urn:example:custom", custom],
            "userName": "bjensen",
            custom: {"costCode": "x", "roles": ["a", "b"], "tier": 2, "site": {"code": "OSL", "floor": 3}},
            "urn:example:custom": {"badge": "7"}
        })
    );
}

#[test]
fn a_urn_key_is_a_whole_extension_or_one_of_its_attributes() {
    // Listed in `schemas`: its object holds its attributes, whatever its name.
    let got = user(json!({"schemas": [USER_URN, "urn:example:acme"], "userName": "b", "urn:example:acme": {"x": 1}}));
    assert_eq!(got, json!({"schemas": [USER_URN, "urn:example:acme"], "userName": "b", "urn:example:acme": {"x": 1}}));
    // Neither: an object is the extension's attributes, another value one attribute of
    // what precedes the last colon (RFC 7644 §3.10).
    let got = user(json!({"userName": "b", "urn:example:acme": {"x": 1}}));
    assert_eq!(got, json!({"schemas": [USER_URN, "urn:example:acme"], "userName": "b", "urn:example:acme": {"x": 1}}));
    let got = user(json!({"userName": "b", "urn:example:acme": 7}));
    assert_eq!(got, json!({"schemas": [USER_URN, "urn:example"], "userName": "b", "urn:example": {"acme": 7}}));
    // Both forms of one extension in one body land in one object.
    let got = user(json!({"userName": "b", "urn:acme:ext": {"tier": 1}, "urn:acme:ext:role": "a"}));
    assert_eq!(got["urn:acme:ext"], json!({"role": "a", "tier": 1}), "{got}");
    assert!(got.get("urn:acme").is_none(), "{got}");
    // URN-qualified keys join the extension's object, names matched ignoring case.
    let custom = "urn:ietf:params:scim:schemas:extension:Custom:2.0:User";
    let got = user(json!({"userName": "b", custom: {"costCode": "x"}, format!("{custom}:COSTCODE"): "y",
                          format!("{custom}:site.code"): "OSL"}));
    assert_eq!(got[custom], json!({"costCode": "y", "site": {"code": "OSL"}}), "{got}");
}

#[test]
fn normalising_a_stored_document_again_changes_nothing() {
    // Each stored form reads back as itself: a PUT or PATCH of an unchanged resource is a skip.
    let inputs = [
        json!({"userName": "b", "urn:example:acme": 7, "urn:x:2.0:User": {"a": [1, {"b": null}], "c": {"d": ""}}}),
        json!({"userName": "b", "urn:acme:ext": {"tier": 1}, "urn:acme:ext:role": "a", "urn:q:2.0:User:User": 1}),
    ];
    for input in inputs {
        let once = user(input.clone());
        assert_eq!(user(once.clone()), once, "{input}");
    }
}

#[test]
fn a_resource_keeps_at_most_64_kib_of_custom_extension_data() {
    let custom = "urn:ietf:params:scim:schemas:extension:Custom:2.0:User";
    let err = user_err(json!({"userName": "b", custom: {"blob": "x".repeat(70_000)}}));
    assert_eq!(err.scim_type, Some("invalidValue"));
    assert!(err.detail.starts_with("custom extension attributes take 70"), "{}", err.detail);
    assert!(err.detail.ends_with("at most 65536 are kept per resource"), "{}", err.detail);
    // A custom extension needs an object, like the enterprise one.
    let err = user_err(json!({"schemas": [USER_URN, custom], "userName": "b", custom: [1]}));
    assert_eq!(err.detail, format!("{custom} must be an object"));
}

#[test]
fn a_group_keeps_custom_extensions_but_not_the_users_enterprise_one() {
    let custom = "urn:example:schemas:Group";
    let got = tandem_scim::resource::normalize(
        ResourceType::Group,
        json!({"displayName": "Ops", custom: {"costCode": "7"}, ENTERPRISE: {"department": "R&D"}}),
    )
    .unwrap();
    assert_eq!(got, json!({"schemas": [GROUP_URN, custom], "displayName": "Ops", custom: {"costCode": "7"}}));
}

#[test]
fn unknown_attribute_under_a_known_schema_is_dropped() {
    // An admin's custom attribute under the enterprise URN (or the core one) does not refuse the user.
    let got = user(json!({"userName": "bjensen", ENTERPRISE: {"shoeSize": 42, "department": "R&D"},
                          format!("{ENTERPRISE}:badgeId"): "7", format!("{USER_URN}:shoeSize"): 42}));
    assert_eq!(
        got,
        json!({"schemas": [USER_URN, ENTERPRISE], "userName": "bjensen", ENTERPRISE: {"department": "R&D"}})
    );
    let got = user(json!({"userName": "bjensen", ENTERPRISE: {"shoeSize": 42}}));
    assert_eq!(got, json!({"schemas": [USER_URN], "userName": "bjensen"}));
}

#[test]
fn user_name_is_required() {
    let err = user_err(json!({"displayName": "x"}));
    assert_eq!(err.status, 400);
    assert_eq!(err.scim_type, Some("invalidValue"));
    assert_eq!(err.detail, "userName is required");
    assert_eq!(user_err(json!({"userName": ""})).detail, "userName is required");
    assert_eq!(user_err(json!({"userName": null})).detail, "userName is required");
    assert_eq!(user_err(json!({"userName": "   "})).detail, "userName must not be blank");
}

#[test]
fn user_name_must_be_a_string() {
    assert_eq!(user_err(json!({"userName": {"a": 1}})).detail, "userName must be a string, got an object");
}

#[test]
fn group_display_name_is_required() {
    let err = normalize(ResourceType::Group, json!({"members": []})).unwrap_err();
    assert_eq!(err.detail, "displayName is required");
}

#[test]
fn group_members_are_canonicalised() {
    let got = normalize(
        ResourceType::Group,
        json!({"DisplayName": "Guides", "Members": [{"VALUE": "u1", "Display": "Babs", "TYPE": "User", "$REF": "https://x/Users/u1"}]}),
    )
    .unwrap();
    assert_eq!(
        got,
        json!({
            "schemas": [GROUP_URN],
            "displayName": "Guides",
            "members": [{"value": "u1", "display": "Babs", "type": "User", "$ref": "https://x/Users/u1"}]
        })
    );
}

#[test]
fn group_member_without_value_is_rejected() {
    let err =
        normalize(ResourceType::Group, json!({"displayName": "G", "members": [{"value": "u1"}, {"display": "x"}]}))
            .unwrap_err();
    assert_eq!(err.detail, "members[1].value is required");
}

#[test]
fn group_ignores_user_extension() {
    let got = normalize(ResourceType::Group, json!({"displayName": "G", ENTERPRISE: {"department": "x"}})).unwrap();
    assert_eq!(got, json!({"schemas": [GROUP_URN], "displayName": "G"}));
}

#[test]
fn active_string_is_coerced_and_nonsense_rejected() {
    assert_eq!(user(json!({"userName": "b", "active": "TRUE"}))["active"], true);
    let err = user_err(json!({"userName": "b", "active": "maybe"}));
    assert_eq!(err.detail, r#"active must be a boolean, got "maybe""#);
}

#[test]
fn emails_must_be_objects() {
    assert_eq!(
        user_err(json!({"userName": "b", "emails": "b@example.com"})).detail,
        "emails must be an array of objects"
    );
    assert_eq!(
        user_err(json!({"userName": "b", "emails": ["b@example.com"]})).detail,
        "emails must be an array of objects"
    );
}

#[test]
fn name_must_be_an_object() {
    assert_eq!(user_err(json!({"userName": "b", "name": "Barbara Jensen"})).detail, "name must be an object");
}

#[test]
fn extension_value_must_be_an_object() {
    let err = user_err(json!({"userName": "b", ENTERPRISE: "x"}));
    assert_eq!(err.detail, format!("{ENTERPRISE} must be an object"));
}

#[test]
fn non_object_resource_is_invalid_syntax() {
    let err = user_err(json!(["userName"]));
    assert_eq!(err.scim_type, Some("invalidSyntax"));
    assert_eq!(err.detail, "resource must be a JSON object");
}

#[test]
fn nulls_and_empty_collections_are_dropped() {
    let got = user(json!({"userName": "b", "title": null, "emails": [], "name": {}, "phoneNumbers": [null]}));
    assert_eq!(got, json!({"schemas": [USER_URN], "userName": "b"}));
}

#[test]
fn dotted_key_merges_into_complex_attribute() {
    let got = user(json!({"userName": "b", "name": {"familyName": "Jensen"}, "name.givenName": "Barbara"}));
    assert_eq!(got["name"], json!({"familyName": "Jensen", "givenName": "Barbara"}));
}

#[test]
fn manager_string_becomes_object_on_create() {
    let got = user(json!({"userName": "b", ENTERPRISE: {"manager": "m1"}}));
    assert_eq!(got[ENTERPRISE]["manager"], json!({"value": "m1"}));
}

#[test]
fn normalize_is_idempotent() {
    let once = user(json!({
        "UserName": "bjensen",
        "emails": {"value": "b@example.com", "primary": "true"},
        format!("{ENTERPRISE}:manager"): "m1",
        "active": "false"
    }));
    assert_eq!(normalize(ResourceType::User, once.clone()).unwrap(), once);
}

#[test]
fn okta_create_body_is_normalised() {
    let got = user(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": true
    }));
    assert_eq!(
        got,
        json!({
            "schemas": [USER_URN],
            "userName": "test.user@okta.local",
            "name": {"givenName": "Test", "familyName": "User"},
            "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
            "displayName": "Test User",
            "locale": "en-US",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "active": true
        })
    );
}

#[test]
fn entra_create_body_is_normalised() {
    let got = user(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
        ENTERPRISE: {"department": "Engineering", "manager": {"value": "m1"}}
    }));
    assert_eq!(got["schemas"], json!([USER_URN, ENTERPRISE]));
    assert!(got.get("meta").is_none());
    assert!(got.get("roles").is_none());
    assert_eq!(got[ENTERPRISE]["manager"], json!({"value": "m1"}));
}

#[test]
fn stored_fixtures_are_canonical_apart_from_server_attributes() {
    let mut expected = stored_user();
    let map = expected.as_object_mut().unwrap();
    map.remove("id");
    map.remove("meta");
    assert_eq!(user(stored_user()), expected);
}

#[test]
fn entra_member_display_name_is_read_as_display() {
    use serde_json::json;
    use tandem_scim::resource::normalize;
    use tandem_scim::schema::ResourceType;
    let g = normalize(
        ResourceType::Group,
        json!({"displayName": "G", "members": [{"value": "u1", "displayName": "new User"}]}),
    )
    .unwrap();
    assert_eq!(g["members"][0]["display"], "new User");
}

/// What a write names and does not keep is listed for the provisioning log:
/// an attribute the enterprise schema does not define, an unqualified
/// unknown name, a name in a custom extension no attribute can have; not
/// `schemas`, read-only attributes or `password`, which are dropped by
/// design, nor a custom extension's attributes, which are kept.
#[test]
fn the_attributes_a_write_does_not_keep_are_listed() {
    use tandem_scim::resource::ignored_attributes;
    let custom = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";
    let body = json!({
        "schemas": [USER_URN, ENTERPRISE, custom],
        "id": "x", "meta": {"version": "W/\"1\""}, "password": "p",
        "userName": "b", "favouriteColour": "teal",
        ENTERPRISE: {"department": "Ops", "badgeId": "7", "schemas": [ENTERPRISE]},
        custom: {"role": "admin", "tier": 2, "no good": 1},
        "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User:costCenter": "42",
        "urn:ietf:params:scim:api:messages:2.0:PatchOp:x": "1"
    });
    let mut got = ignored_attributes(ResourceType::User, &body);
    got.sort();
    assert_eq!(
        got,
        [
            "favouriteColour".to_string(),
            "urn:ietf:params:scim:api:messages:2.0:PatchOp:x".to_string(),
            format!("{custom}:no good"),
            format!("{ENTERPRISE}:badgeId"),
        ]
    );
    assert!(ignored_attributes(ResourceType::User, &json!({"userName": "b", "active": "False"})).is_empty());
    // A path as a key of a body is no attribute (only a path-less PATCH value resolves it).
    let key = "emails[type eq \"work\"].value";
    assert_eq!(ignored_attributes(ResourceType::User, &json!({"userName": "b", key: "b@example.com"})), [key]);
    assert!(ignored_attributes(ResourceType::User, &json!("not an object")).is_empty());

    // PATCH: a path to an attribute a known schema lacks, a value filter on a custom attribute (a
    // custom attribute itself is kept); keys of a path-less value.
    let ops = tandem_scim::patch::parse_patch(
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
            {"op": "Add", "path": format!("{custom}:role"), "value": "admin"},
            {"op": "Replace", "path": format!("{ENTERPRISE}:badgeId"), "value": "7"},
            {"op": "Replace", "path": "displayName", "value": "B"},
            {"op": "Replace", "value": {"nickName": "bj", "shoeSize": 44, "emails[type eq \"work\"].value": "b@x.com",
                                        "addresses[type eq \"work\"].shoeSize": 1,
                                        format!("{custom}:tier[type eq \"x\"].value"): 2}},
            {"op": "Replace", "path": ENTERPRISE, "value": {"department": "Ops", "floor": 3}},
        ]}),
        1000,
    )
    .unwrap();
    assert_eq!(
        tandem_scim::patch::ignored_in_patch(ResourceType::User, &ops),
        [
            format!("{ENTERPRISE}:badgeId"),
            "shoeSize".to_string(),
            format!("{custom}:tier[type eq \"x\"].value"),
            format!("{ENTERPRISE}:floor")
        ]
    );
}
