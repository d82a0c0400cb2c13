//! What Okta's SCIM 2.0 client sends, and a whole Okta provisioning cycle
//! with the stored state checked after each step.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn okta_user(login: &str, okta_id: &str, active: bool) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": login,
        "externalId": okta_id,
        "name": {"givenName": "Otto", "familyName": "Kta"},
        "emails": [{"primary": true, "value": login, "type": "work"}],
        "displayName": "Otto Kta",
        "locale": "en-US",
        "groups": [],
        "password": "ignored-by-tandem-1A!",
        "active": active
    })
}

#[tokio::test]
async fn okta_full_put_deactivates_and_reactivates() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(okta_user("otto@acme.com", "00u1abcd", true)).await;
    let mut body = okta_user("otto@acme.com", "00u1abcd", false);
    body["id"] = json!(id);
    let r = scim.put(&format!("/Users/{id}"), body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["active"], false);
    body["active"] = json!(true);
    assert_eq!(scim.put(&format!("/Users/{id}"), body).await.body["active"], true);
}

/// A PUT that leaves `active` out does not let a deactivated user back in
/// (a missing `active` would read as true).
#[tokio::test]
async fn a_put_without_active_keeps_a_deactivated_user_deactivated() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(okta_user("omit@acme.com", "00uOmit", false)).await;
    let mut body = okta_user("omit@acme.com", "00uOmit", false);
    body.as_object_mut().unwrap().remove("active");
    body["displayName"] = json!("Renamed");
    let r = scim.put(&format!("/Users/{id}"), body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["active"], false, "{}", r.body);
    assert_eq!(r.body["displayName"], "Renamed");
    // Sent, it is applied.
    body["active"] = json!(true);
    assert_eq!(scim.put(&format!("/Users/{id}"), body).await.body["active"], true);
}

/// Nor does a PATCH that removes `active` or sets it to null (IdPs send a
/// remove for an attribute their mapping leaves empty): the attribute is
/// unassigned (RFC 7644 §3.5.2.2), the user's standing is kept. The login
/// side of this is in login_join.rs.
#[tokio::test]
async fn a_patch_removing_active_keeps_a_deactivated_user_deactivated() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(okta_user("rm@acme.com", "00uRm", false)).await;
    let path = format!("/Users/{id}");
    for ops in [
        json!([{"op": "remove", "path": "active"}]),
        json!([{"op": "replace", "value": {"active": false}}]),
        json!([{"op": "replace", "path": "active", "value": null}]),
        json!([{"op": "replace", "value": {"active": null, "displayName": "Still out"}}]),
    ] {
        let r = scim.patch(&path, patch_op(ops.clone())).await;
        assert_eq!(r.status, StatusCode::OK, "{ops}: {}", r.body);
        assert_ne!(r.body["active"], true, "{ops}: {}", r.body);
        assert_eq!(scim.filter_ids("Users", "active eq false").await, std::slice::from_ref(&id), "{ops}");
    }
    let r = scim.get(&path).await;
    assert_eq!(r.body["displayName"], "Still out");
    assert!(r.body.get("active").is_none(), "unassigned: {}", r.body);
    // An active user stays active through the same removal; a new user without `active` is active.
    let on = scim.create_user(okta_user("on@acme.com", "00uOn", true)).await;
    let r = scim.patch(&format!("/Users/{on}"), patch_op(json!([{"op": "remove", "path": "active"}]))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(scim.filter_ids("Users", "active eq true").await, [on]);
}

#[tokio::test]
async fn okta_path_less_active_false_deactivates() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(okta_user("pat@acme.com", "00u2", true)).await;
    let r = scim.patch(&format!("/Users/{id}"), patch_op(json!([{"op": "replace", "value": {"active": false}}]))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["active"], false);
}

#[tokio::test]
async fn okta_user_lookup_by_user_name_is_case_insensitive() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let id = scim.create_user(okta_user("Quinn@Acme.com", "00u3", true)).await;
    assert_eq!(scim.filter_ids("Users", "userName eq \"quinn@acme.com\"").await, std::slice::from_ref(&id));
    let r = scim.get("/Users?filter=userName%20eq%20%22quinn%40acme.com%22&startIndex=1&count=100").await;
    assert_eq!(r.body["totalResults"], 1);
}

#[tokio::test]
async fn okta_group_rename_rides_along_with_a_membership_patch() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let u1 = scim.create_user(okta_user("r1@acme.com", "00ur1", true)).await;
    let u2 = scim.create_user(okta_user("r2@acme.com", "00ur2", true)).await;
    let g = scim
        .post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Old Name",
        "members": [{"value": u1, "display": "r1@acme.com"}]}),
        )
        .await;
    let gid = g.body["id"].as_str().unwrap().to_string();
    let r = scim
        .patch(
            &format!("/Groups/{gid}"),
            patch_op(json!([
                {"op": "replace", "value": {"id": gid, "displayName": "New Name"}},
                {"op": "add", "path": "members", "value": [{"value": u2, "display": "r2@acme.com"}]}
            ])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["displayName"], "New Name");
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn okta_memberships_inside_post_and_put_bodies_are_stored() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let u1 = scim.create_user(okta_user("s1@acme.com", "00us1", true)).await;
    let u2 = scim.create_user(okta_user("s2@acme.com", "00us2", true)).await;
    let g = scim
        .post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Push",
        "members": [{"value": u1, "display": "s1@acme.com"}]}),
        )
        .await;
    assert_eq!(g.status, StatusCode::CREATED);
    let gid = g.body["id"].as_str().unwrap().to_string();
    let r = scim
        .put(
            &format!("/Groups/{gid}"),
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": gid,
        "displayName": "Push", "members": [{"value": u2, "display": "s2@acme.com"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(member_ids(&r.body), std::slice::from_ref(&u2));
    let u = scim.get(&format!("/Users/{u1}")).await;
    assert_eq!(u.status, StatusCode::OK, "{}", u.body);
    assert!(u.body.get("groups").is_none(), "{}", u.body);
}

#[tokio::test]
async fn a_put_rewrites_a_kept_members_display_text_only_when_it_changes() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let u1 = scim.create_user(okta_user("d1@acme.com", "00ud1", true)).await;
    let u2 = scim.create_user(okta_user("d2@acme.com", "00ud2", true)).await;
    let body = |d1: &str| {
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Display",
            "members": [{"value": u1, "display": d1}, {"value": u2, "display": "Two"}, {"value": u1, "display": "dup"}]})
    };
    let g = scim.post("/Groups", body("Old")).await;
    assert_eq!(g.status, StatusCode::CREATED, "{}", g.body);
    let gid = g.body["id"].as_str().unwrap().to_string();
    // The first occurrence of a repeated member wins.
    assert_eq!(member_display(&g.body, &u1), Some(json!("Old")));
    for (sent, want) in [("New", "New"), ("New", "New"), ("Old", "Old")] {
        let r = scim.put(&format!("/Groups/{gid}"), body(sent)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let stored = scim.get(&format!("/Groups/{gid}")).await.body;
        assert_eq!(member_display(&stored, &u1), Some(json!(want)));
        assert_eq!(member_display(&stored, &u2), Some(json!("Two")));
        assert_eq!(stored["members"].as_array().unwrap().len(), 2);
    }
}

#[tokio::test]
async fn okta_whole_provisioning_cycle() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let login = "tess@acme.com";
    let (conn, key) = (scim.connection_id.clone(), login.to_string());
    let stored = || {
        let (conn, key) = (conn.clone(), key.clone());
        app.state.store.read_blocking(move |c| {
            tandem_store::scim::users::find_by_key(c, &conn, tandem_core::matching::ScimKey::UserNameLower, &key)
        })
    };
    // 1. Okta looks the user up, then creates it.
    assert!(scim.filter_ids("Users", &format!("userName eq \"{login}\"")).await.is_empty());
    let id = scim.create_user(okta_user(login, "00u1tess", true)).await;
    assert_eq!(stored().unwrap()[0].external_id.as_deref(), Some("00u1tess"));
    // 2. Profile update by full PUT.
    let mut body = okta_user(login, "00u1tess", true);
    body["id"] = json!(id);
    body["name"]["familyName"] = json!("Tester");
    assert_eq!(scim.put(&format!("/Users/{id}"), body.clone()).await.status, StatusCode::OK);
    assert!(stored().unwrap()[0].resource.contains("Tester"));
    // 3. Group push with the member in the body.
    let g =
        scim.post("/Groups", json!({"displayName": "Okta Push", "members": [{"value": id, "display": login}]})).await;
    assert_eq!(g.status, StatusCode::CREATED);
    assert_eq!(scim.get(&format!("/Users/{id}")).await.body["groups"][0]["display"], "Okta Push");
    // 4. Deactivate by PUT with active=false.
    body["active"] = json!(false);
    scim.put(&format!("/Users/{id}"), body.clone()).await;
    assert!(!stored().unwrap()[0].active);
    // 5. Reactivate by PATCH.
    scim.patch(&format!("/Users/{id}"), patch_op(json!([{"op": "replace", "value": {"active": true}}]))).await;
    assert!(stored().unwrap()[0].active);
    // 6. Delete.
    assert_eq!(scim.delete(&format!("/Users/{id}")).await.status, StatusCode::NO_CONTENT);
    let rows = stored().unwrap();
    assert!(rows[0].deleted_at.is_some());
    assert_eq!(scim.get(&format!("/Users/{id}")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_group_patch_that_changes_nothing_keeps_the_version_and_is_logged_as_a_skip() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let u1 = scim.create_user(okta_user("same1@acme.com", "00us1", true)).await;
    let g = scim
        .post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Same",
                   "members": [{"value": u1, "display": "One"}]}),
        )
        .await;
    let gid = g.body["id"].as_str().unwrap().to_string();
    // Okta's shape: the name again and a member the group already has.
    let same = patch_op(json!([
        {"op": "replace", "value": {"id": gid, "displayName": "Same"}},
        {"op": "add", "path": "members", "value": [{"value": u1}]}
    ]));
    let r = scim.patch(&format!("/Groups/{gid}"), same).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["meta"]["version"], g.body["meta"]["version"]);
    assert_eq!(r.body["members"][0]["display"], "One");
    // A real change still writes.
    let renamed = patch_op(json!([{"op": "replace", "value": {"id": gid, "displayName": "Renamed"}}]));
    let r = scim.patch(&format!("/Groups/{gid}"), renamed).await;
    assert_ne!(r.body["meta"]["version"], g.body["meta"]["version"]);
    let (_, logs) = app.get(&format!("/api/v1/provisioning-logs?scim_connection_id={}", scim.connection_id)).await;
    let ops: Vec<&str> = logs["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource_type"] == "Group")
        .rev()
        .map(|e| e["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["create", "skip", "update"]);
}
