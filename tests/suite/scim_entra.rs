//! What Microsoft Entra ID's provisioning service sends, shape by shape, and
//! a whole Entra provisioning cycle with the stored state checked after each step.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn entra_user(upn: &str, object_id: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": object_id,
        "userName": upn,
        "active": true,
        "displayName": "Alice Example",
        "emails": [{"primary": true, "type": "work", "value": upn}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Alice Example", "familyName": "Example", "givenName": "Alice"},
        "roles": [],
        ENTERPRISE: {"employeeNumber": "EMP1", "department": "Eng"}
    })
}

#[tokio::test]
async fn entra_test_connection_random_guid_filter_returns_an_empty_list_not_404() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let r = scim.get("/Users?filter=userName%20eq%20%22d7a8c9e4-0f3b-4a5e-9c1d-2b3f4a5e6d7c%22").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["totalResults"], 0);
    assert_eq!(r.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:ListResponse");
}

#[tokio::test]
async fn entra_capitalised_replace_with_string_false_deactivates_the_user() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(entra_user("alice@contoso.com", "oid-1")).await;
    let r = scim
        .patch(
            &format!("/Users/{id}"),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["active"], false);
}

/// An admin maps a custom attribute under the enterprise URN: the deactivation sent with it
/// still applies (refusing the request would leave the user able to sign in).
#[tokio::test]
async fn entra_custom_attribute_under_the_enterprise_urn_does_not_stop_a_deactivation() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let mut body = entra_user("badge@contoso.com", "oid-badge");
    body[ENTERPRISE]["badgeId"] = json!("B-7");
    let id = scim.create_user(body).await;
    let r = scim
        .patch(
            &format!("/Users/{id}"),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"},
                           {"op": "Add", "path": format!("{ENTERPRISE}:badgeId"), "value": "B-8"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["active"], false);
    assert!(r.body[ENTERPRISE].get("badgeId").is_none(), "{}", r.body);
    assert_eq!(r.body[ENTERPRISE]["department"], "Eng");
}

#[tokio::test]
async fn entra_path_less_replace_with_dotted_and_urn_keys_updates_each_attribute() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(entra_user("bob@contoso.com", "oid-2")).await;
    let r = scim
        .patch(
            &format!("/Users/{id}"),
            patch_op(json!([{"op": "Replace", "value": {
                "name.givenName": "Robert",
                "name.familyName": "Builder",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Sales",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "EMP2",
                "active": false
            }}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"]["givenName"], "Robert");
    assert_eq!(r.body["name"]["familyName"], "Builder");
    assert_eq!(r.body[ENTERPRISE]["department"], "Sales");
    assert_eq!(r.body[ENTERPRISE]["employeeNumber"], "EMP2");
    assert_eq!(r.body["active"], false);
}

#[tokio::test]
async fn entra_filtered_email_path_replaces_the_work_email() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(entra_user("carol@contoso.com", "oid-3")).await;
    let r = scim
        .patch(
            &format!("/Users/{id}"),
            patch_op(json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "carol.new@contoso.com"}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["emails"][0]["value"], "carol.new@contoso.com");
    assert_eq!(r.body["emails"].as_array().unwrap().len(), 1);
    // And a filtered path for a type the user does not have yet adds one.
    let r = scim
        .patch(
            &format!("/Users/{id}"),
            patch_op(json!([
            {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["phoneNumbers"][0], json!({"type": "mobile", "value": "+1 555 0100"}));
}

#[tokio::test]
async fn entra_manager_is_accepted_as_a_string_or_an_object() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let boss = scim.create_user(entra_user("boss@contoso.com", "oid-boss")).await;
    let id = scim.create_user(entra_user("dave@contoso.com", "oid-4")).await;
    let r = scim
        .patch(
            &format!("/Users/{id}"),
            patch_op(json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": boss}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body[ENTERPRISE]["manager"]["value"], boss);
    let r = scim
        .patch(&format!("/Users/{id}"), patch_op(json!([{"op": "Replace", "path": format!("{ENTERPRISE}:manager"), "value": {"value": "other-manager"}}])))
        .await;
    assert_eq!(r.body[ENTERPRISE]["manager"]["value"], "other-manager");
    let r = scim
        .patch(&format!("/Users/{id}"), patch_op(json!([{"op": "Remove", "path": format!("{ENTERPRISE}:manager")}])))
        .await;
    assert!(r.body[ENTERPRISE].get("manager").is_none(), "{}", r.body);
}

/// Microsoft's provisioning tutorial (Examples 4 and 5) checks a user's
/// manager with `manager eq "…"` and sets it with `"path": "manager"`,
/// unqualified; both reach the enterprise extension's manager, and a
/// filter on the manager as a whole compares its `value`.
#[tokio::test]
async fn entra_unqualified_manager_is_the_enterprise_manager_in_paths_and_filters() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let boss = scim.create_user(entra_user("boss2@contoso.com", "oid-boss2")).await;
    let id = scim.create_user(entra_user("erin@contoso.com", "oid-5")).await;
    let value = json!([{"$ref": format!("{}/Users/{boss}", scim.base), "value": boss}]);
    let r =
        scim.patch(&format!("/Users/{id}"), patch_op(json!([{"op": "Add", "path": "manager", "value": value}]))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body[ENTERPRISE]["manager"]["value"], boss, "{}", r.body);
    assert!(r.body.get("manager").is_none(), "not a core attribute: {}", r.body);
    for filter in [
        format!("id eq \"{id}\" and manager eq \"{boss}\""),
        format!("{ENTERPRISE}:manager eq \"{boss}\""),
        format!("manager.value eq \"{boss}\""),
        format!("department eq \"No such\" or manager eq \"{boss}\""),
    ] {
        assert_eq!(scim.filter_ids("Users", &filter).await, vec![id.clone()], "{filter}");
    }
    assert!(scim.filter_ids("Users", &format!("manager eq \"{id}\"")).await.is_empty());
    let r = scim
        .patch(&format!("/Users/{id}"), patch_op(json!([{"op": "Replace", "path": "department", "value": "Sales"}])))
        .await;
    assert_eq!(r.body[ENTERPRISE]["department"], "Sales", "{}", r.body);
    let r = scim.patch(&format!("/Users/{id}"), patch_op(json!([{"op": "Remove", "path": "manager"}]))).await;
    assert!(r.body[ENTERPRISE].get("manager").is_none(), "{}", r.body);
    // Still unknown everywhere: a name no schema of the resource has.
    let r = scim.patch(&format!("/Users/{id}"), patch_op(json!([{"op": "Add", "path": "nonsense", "value": 1}]))).await;
    assert_eq!((r.status, &r.body["scimType"]), (StatusCode::BAD_REQUEST, &json!("invalidPath")), "{}", r.body);
}

#[tokio::test]
async fn entra_unquoted_and_quoted_external_id_filters_both_work() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(entra_user("erin@contoso.com", "abc")).await;
    assert_eq!(scim.filter_ids("Users", "externalId eq abc").await, std::slice::from_ref(&id));
    assert_eq!(scim.filter_ids("Users", "externalId eq \"abc\"").await, std::slice::from_ref(&id));
    // Numeric ids (an HR number mapped to externalId) are compared as the text sent.
    for (n, ext) in ["100000000000000000001", "1.50", "1E3", "42"].into_iter().enumerate() {
        let id = scim.create_user(entra_user(&format!("num{n}@contoso.com"), ext)).await;
        assert_eq!(scim.filter_ids("Users", &format!("externalId eq {ext}")).await, [id], "{ext}");
    }
}

#[tokio::test]
async fn entra_removes_group_members_with_a_value_array_and_with_a_filter_path() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let a = scim.create_user(entra_user("a@contoso.com", "oid-a")).await;
    let b = scim.create_user(entra_user("b@contoso.com", "oid-b")).await;
    let c = scim.create_user(entra_user("c@contoso.com", "oid-c")).await;
    let g = scim
        .post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Sales",
        "externalId": "grp-oid", "members": []}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = scim
        .patch(
            &format!("/Groups/{g}"),
            patch_op(json!([{"op": "Add", "path": "members",
        "value": [{"value": a}, {"value": b}, {"value": c}]}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["members"].as_array().unwrap().len(), 3);
    let r = scim
        .patch(&format!("/Groups/{g}"), patch_op(json!([{"op": "Remove", "path": "members", "value": [{"value": a}]}])))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = scim
        .patch(
            &format!("/Groups/{g}"),
            patch_op(json!([{"op": "Remove", "path": format!("members[value eq \"{b}\"]")}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(member_ids(&r.body), std::slice::from_ref(&c));
    // A remove that lists no one removes no one.
    let r =
        scim.patch(&format!("/Groups/{g}"), patch_op(json!([{"op": "Remove", "path": "members", "value": []}]))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["members"].as_array().map(Vec::len), Some(1), "{}", r.body);
}

/// Entra's lookup when emails[type eq "work"].value is the matching attribute.
#[tokio::test]
async fn entra_looks_users_up_by_a_sub_attribute_after_a_value_path() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(entra_user("Work@Contoso.com", "oid-w")).await;
    scim.create_user(entra_user("other@contoso.com", "oid-o")).await;
    let found = scim.filter_ids("Users", r#"emails[type eq "work"].value eq "work@contoso.com""#).await;
    assert_eq!(found, [id]);
    assert!(scim.filter_ids("Users", r#"emails[type eq "home"].value eq "work@contoso.com""#).await.is_empty());
}

#[tokio::test]
async fn entra_group_lookup_by_display_name_excludes_members() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let u = scim.create_user(entra_user("f@contoso.com", "oid-f")).await;
    scim.post("/Groups", json!({"displayName": "Finance", "members": [{"value": u}]})).await;
    let r = scim.get("/Groups?excludedAttributes=members&filter=displayName%20eq%20%22Finance%22").await;
    assert_eq!(r.body["totalResults"], 1);
    assert!(r.body["Resources"][0].get("members").is_none());
}

#[tokio::test]
async fn entra_duplicate_create_is_409_so_entra_switches_to_matching() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    scim.create_user(entra_user("dup@contoso.com", "oid-d")).await;
    let r = scim.post("/Users", entra_user("DUP@contoso.com", "oid-d2")).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["scimType"], "uniqueness");
}

/// The stored row behind a SCIM user.
async fn stored(app: &TestApp, scim: &Scim, user_name: &str) -> Vec<tandem_store::scim::users::ScimUserRow> {
    let (conn, key) = (scim.connection_id.clone(), user_name.to_lowercase());
    app.state
        .store
        .read(move |c| {
            tandem_store::scim::users::find_by_key(c, &conn, tandem_core::matching::ScimKey::UserNameLower, &key)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn entra_whole_provisioning_cycle() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let upn = "grace@contoso.com";
    // 1. Entra matches first: a filter on the matching attribute finds nothing.
    assert!(scim.filter_ids("Users", &format!("userName eq \"{upn}\"")).await.is_empty());
    // 2. Create.
    let id = scim.create_user(entra_user(upn, "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef")).await;
    let rows = stored(&app, &scim, upn).await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].active && rows[0].deleted_at.is_none());
    assert_eq!(rows[0].external_id.as_deref(), Some("0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"));
    // 3. Update: an attribute change as Entra sends it.
    let r = scim
        .patch(
            &format!("/Users/{id}"),
            patch_op(json!([{"op": "Replace", "path": "displayName", "value": "Grace H."}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(stored(&app, &scim, upn).await[0].display_name.as_deref(), Some("Grace H."));
    // 4. Group push: create the group, then add the member.
    let g = scim
        .post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineers",
        "externalId": "6f0e", "members": []}),
        )
        .await;
    assert_eq!(g.status, StatusCode::CREATED);
    let gid = g.body["id"].as_str().unwrap().to_string();
    scim.patch(
        &format!("/Groups/{gid}"),
        patch_op(json!([{"op": "Add", "path": "members", "value": [{"value": id}]}])),
    )
    .await;
    let u = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(u.body["groups"][0]["value"], gid);
    // 5. Deactivate (unassigned from the app, or blocked sign-in).
    scim.patch(
        &format!("/Users/{id}"),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}),
    )
    .await;
    assert!(!stored(&app, &scim, upn).await[0].active);
    // 6. Reactivate.
    scim.patch(&format!("/Users/{id}"), patch_op(json!([{"op": "Replace", "path": "active", "value": "True"}]))).await;
    assert!(stored(&app, &scim, upn).await[0].active);
    // 7. Delete (after the soft-delete period Entra deletes).
    assert_eq!(scim.delete(&format!("/Users/{id}")).await.status, StatusCode::NO_CONTENT);
    let rows = stored(&app, &scim, upn).await;
    assert!(rows[0].deleted_at.is_some(), "tombstone");
    assert_eq!(scim.get(&format!("/Users/{id}")).await.status, StatusCode::NOT_FOUND);
    let g = scim.get(&format!("/Groups/{gid}")).await;
    assert_eq!(g.status, StatusCode::OK, "{}", g.body);
    assert_eq!(g.body["members"].as_array().map_or(0, Vec::len), 0, "membership gone with the user");
}
