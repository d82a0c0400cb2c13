//! The SCIM join at login: each matching strategy under each IdP type with
//! the claims those IdPs really send, and every refusal reason.

use crate::helpers::*;
use crate::login_support::*;
use crate::stub_idp::{Signer, StubOp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tandem_web::state::UserinfoWhen;

/// Okta: `sub` is the Okta user id, which Okta's SCIM client sends as `externalId`.
fn okta_claims() -> Value {
    json!({"sub": "00u1a2b3c4D5e6F7g8h9", "email": "alice@acme.com", "preferred_username": "alice@acme.com"})
}

fn okta_scim_user() -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "alice@acme.com",
           "externalId": "00u1a2b3c4D5e6F7g8h9", "emails": [{"value": "alice@acme.com", "primary": true}], "active": true})
}

/// Entra: `sub` is pairwise per application; `oid` is the tenant-wide object id,
/// which Entra's provisioning sends as `externalId`; `preferred_username` is the UPN,
/// provisioned as `userName`.
fn entra_claims() -> Value {
    json!({"sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "oid": "00000000-0000-0000-66f3-3332eca7ea81",
           "tid": "9188040d-6c67-4c5b-b112-36a304b66dad", "preferred_username": "Alice@Contoso.com", "email": "alice@contoso.com",
           "name": "Alice Example"})
}

fn entra_scim_user() -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "alice@contoso.com",
           "externalId": "00000000-0000-0000-66f3-3332eca7ea81", "active": true,
           "emails": [{"value": "alice@contoso.com", "type": "work", "primary": true}]})
}

/// One login of `claims` under `strategy` for an IdP of `idp_type` whose SCIM holds `scim_user`.
async fn try_strategy(idp_type: &str, strategy: &str, claims: Value, scim_user: Value) -> (StatusCode, Value) {
    let app = TestApp::spawn().await;
    let op = StubOp::start(false).await;
    let customer = unique("cust");
    stub_client(&app, &op, &customer, idp_type, Some(strategy)).await;
    let (status, conn) = app.post("/api/v1/scim-connections", json!({"customer_id": customer})).await;
    assert_eq!(status, StatusCode::CREATED);
    let scim = app.scim_of(&conn);
    scim.create_user(scim_user).await;
    login(&app, &op, &customer, claims).await
}

#[tokio::test]
async fn okta_each_strategy_with_real_claims() {
    let expected = [
        ("OidcSubToScimExternalId", true),
        ("OidcEmailToScimUsername", true),
        ("OidcEmailUsernameToScimUsername", true),
        ("OidcPreferredUsernameToScimUsername", true),
        ("OidcSubToScimUsername", false),
    ];
    for (strategy, matches) in expected {
        let (status, body) = try_strategy("Okta", strategy, okta_claims(), okta_scim_user()).await;
        if matches {
            assert_eq!(status, StatusCode::OK, "{strategy}: {body}");
            assert_eq!(body["scim_user"]["user_name"], "alice@acme.com", "{strategy}");
            assert_eq!(body["oidc_user_id"], "00u1a2b3c4D5e6F7g8h9");
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "{strategy}: {body}");
            assert_eq!(body["error"]["details"]["reason"], "not_provisioned", "{strategy}");
        }
    }
}

#[tokio::test]
async fn entra_each_strategy_with_real_claims() {
    let expected = [
        ("OidcSubToScimExternalId", true), // oid == externalId, not the pairwise sub
        ("OidcPreferredUsernameToScimUsername", true), // UPN == userName, case-insensitively
        ("OidcEmailToScimUsername", true),
        ("OidcEmailUsernameToScimUsername", true),
        ("OidcSubToScimUsername", false), // the object id is not the UPN
    ];
    for (strategy, matches) in expected {
        let (status, body) = try_strategy("MicrosoftEntra", strategy, entra_claims(), entra_scim_user()).await;
        if matches {
            assert_eq!(status, StatusCode::OK, "{strategy}: {body}");
            assert_eq!(body["oidc_user_id"], "00000000-0000-0000-66f3-3332eca7ea81", "Entra's user id is oid");
            assert_eq!(body["scim_user"]["external_id"], "00000000-0000-0000-66f3-3332eca7ea81");
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "{strategy}: {body}");
        }
    }
}

/// Each strategy joins on its own claim and attribute: among users that
/// each match exactly one strategy, every strategy finds its own, never one
/// another strategy would pick.
#[tokio::test]
async fn each_strategy_joins_on_its_own_claim_and_attribute_only() {
    let claims = json!({"sub": "00uSUB0000000000000x", "email": "alice@acme.com", "email_verified": true,
                        "preferred_username": "alice.pref@acme.com"});
    let user = |user_name: &str, external_id: &str| {
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name,
               "externalId": external_id, "active": true})
    };
    let users = [
        user("by-external-id@other.com", "00uSUB0000000000000x"),
        user("alice@acme.com", "ext-email"),
        user("alice", "ext-local-part"),
        user("alice.pref@acme.com", "ext-preferred"),
        user("00uSUB0000000000000x", "ext-sub-as-user-name"),
    ];
    let expected = [
        ("OidcSubToScimExternalId", "by-external-id@other.com"),
        ("OidcEmailToScimUsername", "alice@acme.com"),
        ("OidcEmailUsernameToScimUsername", "alice"),
        ("OidcPreferredUsernameToScimUsername", "alice.pref@acme.com"),
        ("OidcSubToScimUsername", "00uSUB0000000000000x"),
    ];
    for (strategy, user_name) in expected {
        let app = TestApp::spawn().await;
        let op = StubOp::start(false).await;
        let customer = unique("cust");
        stub_client(&app, &op, &customer, "Okta", Some(strategy)).await;
        let (status, conn) = app.post("/api/v1/scim-connections", json!({"customer_id": customer})).await;
        assert_eq!(status, StatusCode::CREATED);
        let scim = app.scim_of(&conn);
        let mut ids = std::collections::HashMap::new();
        // The email's own user shares its local part with "alice": under the
        // local-part strategy the two are one key (ambiguous by design).
        let own_local_part =
            |u: &&Value| strategy == "OidcEmailUsernameToScimUsername" && u["userName"] == "alice@acme.com";
        for u in users.iter().filter(|u| !own_local_part(u)) {
            ids.insert(u["userName"].as_str().unwrap().to_string(), scim.create_user(u.clone()).await);
        }
        let (status, body) = login(&app, &op, &customer, claims.clone()).await;
        assert_eq!(status, StatusCode::OK, "{strategy}: {body}");
        assert_eq!(body["scim_user"]["user_name"], user_name, "{strategy}: {body}");
        assert_eq!(body["scim_user"]["id"], ids[user_name].as_str(), "{strategy}: {body}");
    }
}

#[tokio::test]
async fn generic_idp_uses_sub_so_entra_like_claims_do_not_match_on_oid() {
    let (status, body) = try_strategy("Generic", "OidcSubToScimExternalId", entra_claims(), entra_scim_user()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["details"]["matched_on"], "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ");
    let (status, _) = try_strategy("Generic", "OidcEmailToScimUsername", okta_claims(), okta_scim_user()).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn defaults_per_idp_type_apply_when_the_client_has_no_strategy() {
    let app = TestApp::spawn().await;
    let op = StubOp::start(false).await;
    let customer = unique("entra-default");
    stub_client(&app, &op, &customer, "MicrosoftEntra", None).await;
    let scim = {
        let (_, conn) = app.post("/api/v1/scim-connections", json!({"customer_id": customer})).await;
        app.scim_of(&conn)
    };
    // Not provisioned yet: the refusal names Entra's usual cause (its
    // default mapping sends mailNickname, not the object id, as externalId).
    let (status, body) = login(&app, &op, &customer, entra_claims()).await;
    assert_eq!((status, &body["error"]["details"]["reason"]), (StatusCode::FORBIDDEN, &json!("not_provisioned")));
    assert!(body["error"]["message"].as_str().unwrap().contains("mailNickname"), "{body}");
    scim.create_user(entra_scim_user()).await;
    let (status, body) = login(&app, &op, &customer, entra_claims()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Entra signs the tokens of an application that customises its claims
/// with the application's own key, listed only under its `?appid=`
/// discovery document: an Entra client's discovery asks for it, and the
/// login verifies; a Generic client's does not.
#[tokio::test]
async fn an_entra_application_with_its_own_signing_key_signs_in() {
    let app = TestApp::spawn().await;
    let op = StubOp::start(false).await;
    op.sign_with_an_app_specific_key();
    let customer = unique("entra-appkey");
    let created = stub_client(&app, &op, &customer, "MicrosoftEntra", None).await;
    let started = start(&app, &customer).await;
    op.issue("app-key", op.sign(&claims(&op, &started, entra_claims()), Signer::Rotated, "test-key-b"));
    let (status, body) = complete(&app, &op, &started, "app-key").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(op.discovery_appids().iter().all(|id| id == "tandem-client"), "{:?}", op.discovery_appids());
    assert!(!op.discovery_appids().is_empty());
    let generic = unique("generic-appkey");
    stub_client(&app, &op, &generic, "Generic", None).await;
    let before = op.discovery_appids().len();
    assert_eq!(login(&app, &op, &generic, json!({})).await.0, StatusCode::OK);
    assert_eq!(op.discovery_appids().len(), before, "no appid for a Generic client");
    // Another application id is another document: a PATCH of it runs discovery again.
    let path = format!("/api/v1/oidc-clients/{}", created["oidc_client_id"].as_str().unwrap());
    let (status, body) = app.patch(&path, json!({"idp": {"client_id": "another-app"}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(op.discovery_appids().last().map(String::as_str), Some("another-app"));
    assert!(body["discovery"]["metadata"]["jwks_uri"].as_str().unwrap().ends_with("appid=another-app"), "{body}");
}

/// AD FS sends its user's UPN as `upn`, with no email or
/// preferred_username: the UPN stands in for preferred_username, so
/// `OidcPreferredUsernameToScimUsername` matches an AD FS user.
#[tokio::test]
async fn an_adfs_upn_stands_in_for_preferred_username() {
    let adfs = json!({"sub": "qP6P9bly/v3Ygd4K2tVa3Q==", "upn": "Alice@Acme.com", "unique_name": "ACME\\alice",
                      "email": null, "preferred_username": null});
    let (status, body) =
        try_strategy("Generic", "OidcPreferredUsernameToScimUsername", adfs.clone(), okta_scim_user()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["preferred_username"], "Alice@Acme.com", "{body}");
    let (status, body) = try_strategy("Generic", "OidcEmailToScimUsername", adfs, okta_scim_user()).await;
    assert_eq!((status, &body["error"]["details"]["missing_claim"]), (StatusCode::FORBIDDEN, &json!("email")));
}

struct Paired {
    app: TestApp,
    op: StubOp,
    customer: String,
    scim: Scim,
}

async fn paired(strategy: &str) -> Paired {
    paired_on(TestApp::spawn().await, strategy).await
}

/// [`paired`] on `app`.
async fn paired_on(app: TestApp, strategy: &str) -> Paired {
    let op = StubOp::start(false).await;
    let customer = unique("paired");
    stub_client(&app, &op, &customer, "Okta", Some(strategy)).await;
    let (_, conn) = app.post("/api/v1/scim-connections", json!({"customer_id": customer})).await;
    let scim = app.scim_of(&conn);
    Paired { app, op, customer, scim }
}

#[tokio::test]
async fn matched_user_comes_back_with_its_groups() {
    let p = paired("OidcEmailToScimUsername").await;
    // An Okta attribute in a namespace of the customer's own comes to the app too.
    let custom = "urn:okta:acme:1.0:profile:User";
    let mut scim_user = okta_scim_user();
    scim_user[custom] = json!({"appRole": "admin"});
    let id = p.scim.create_user(scim_user).await;
    p.scim.post("/Groups", json!({"displayName": "Engineering", "members": [{"value": id}]})).await;
    let (status, body) = login(&p.app, &p.op, &p.customer, okta_claims()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let u = &body["scim_user"];
    assert_eq!(u["id"], id);
    assert_eq!(u["scim_connection_id"], p.scim.connection_id);
    assert_eq!(u["active"], true);
    assert_eq!(u["groups"][0]["display"], "Engineering");
    assert_eq!(u["resource"]["userName"], "alice@acme.com");
    assert_eq!(u["resource"][custom], json!({"appRole": "admin"}), "{body}");
    assert_eq!(body["customer_id"], p.customer);
}

/// A login's SSO user is written behind its answer; the matching report
/// asked for right after it already counts the user (it writes what is
/// queued first), and a second login counts it again.
#[tokio::test]
async fn a_login_shows_in_the_matching_report_asked_for_right_after() {
    let p = paired("OidcEmailToScimUsername").await;
    p.scim.create_user(okta_scim_user()).await;
    let (_, client) = p.app.get(&format!("/api/v1/oidc-clients/by-customer-id/{}", p.customer)).await;
    let client_id = client["oidc_client_id"].as_str().unwrap().to_string();
    for round in 1..=2 {
        let (status, body) = login(&p.app, &p.op, &p.customer, okta_claims()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, report) = p.app.get(&format!("/api/v1/oidc-clients/{client_id}/scim-matching")).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        let mine = report["strategies"].as_array().unwrap().iter().find(|s| s["strategy"] == "OidcEmailToScimUsername");
        assert_eq!(mine.unwrap()["matched"], 1, "round {round}: {report}");
    }
    let seen =
        p.app.state.store.read_blocking(move |c| tandem_store::sso::sso_users_of(c, &client_id, None, 10)).unwrap();
    assert_eq!(seen.iter().map(|u| u.login_count).collect::<Vec<_>>(), [2]);
}

#[tokio::test]
async fn deactivated_deleted_and_never_provisioned_users_are_refused_with_their_reason() {
    let p = paired("OidcEmailToScimUsername").await;
    let id = p.scim.create_user(okta_scim_user()).await;
    p.scim.patch(&format!("/Users/{id}"), patch_op(json!([{"op": "replace", "path": "active", "value": false}]))).await;
    let (status, body) = login(&p.app, &p.op, &p.customer, okta_claims()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        (body["error"]["type"].as_str(), body["error"]["details"]["reason"].as_str()),
        (Some("ScimUserNotActive"), Some("deactivated"))
    );
    // A PATCH that then removes `active` leaves it unassigned, not the user let back in.
    let r = p.scim.patch(&format!("/Users/{id}"), patch_op(json!([{"op": "remove", "path": "active"}]))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (status, body) = login(&p.app, &p.op, &p.customer, okta_claims()).await;
    assert_eq!((status, &body["error"]["details"]["reason"]), (StatusCode::FORBIDDEN, &json!("deactivated")), "{body}");
    p.scim.delete(&format!("/Users/{id}")).await;
    let (_, body) = login(&p.app, &p.op, &p.customer, okta_claims()).await;
    assert_eq!(body["error"]["details"]["reason"], "deleted", "{body}");
    let (_, body) = login(&p.app, &p.op, &p.customer, json!({"sub": "00uBob", "email": "bob@acme.com"})).await;
    assert_eq!(body["error"]["details"]["reason"], "not_provisioned", "{body}");
    // Provisioned again after deletion: the live user wins over the tombstone.
    p.scim.create_user(okta_scim_user()).await;
    let (status, _) = login(&p.app, &p.op, &p.customer, okta_claims()).await;
    assert_eq!(status, StatusCode::OK);
}

/// Okta, after a user is unassigned (deactivated), renamed and assigned
/// again, provisions a new user with the same externalId (the Okta user
/// id) beside the deactivated one, and never deletes: under the strategy
/// on that id, the active one is the person, not an ambiguity that locks
/// them out; the matching report counts it so.
#[tokio::test]
async fn an_okta_user_provisioned_again_under_a_new_username_signs_in_as_the_active_copy() {
    let p = paired("OidcSubToScimExternalId").await;
    let old = p.scim.create_user(okta_scim_user()).await;
    p.scim
        .patch(&format!("/Users/{old}"), patch_op(json!([{"op": "replace", "path": "active", "value": false}])))
        .await;
    let mut renamed = okta_scim_user();
    renamed["userName"] = json!("alice.smith@acme.com");
    let new = p.scim.create_user(renamed).await;
    let (status, body) = login(&p.app, &p.op, &p.customer, okta_claims()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scim_user"]["id"], new.as_str(), "{body}");
    let (_, client) = p.app.get(&format!("/api/v1/oidc-clients/by-customer-id/{}", p.customer)).await;
    let (status, report) =
        p.app.get(&format!("/api/v1/oidc-clients/{}/scim-matching", client["oidc_client_id"].as_str().unwrap())).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let by_id = report["strategies"].as_array().unwrap().iter().find(|s| s["strategy"] == "OidcSubToScimExternalId");
    assert_eq!((&by_id.unwrap()["matched"], &by_id.unwrap()["ambiguous"]), (&json!(1), &json!(0)), "{report}");
    // Both deactivated: the person is deactivated, not ambiguous.
    p.scim
        .patch(&format!("/Users/{new}"), patch_op(json!([{"op": "replace", "path": "active", "value": false}])))
        .await;
    let (status, body) = login(&p.app, &p.op, &p.customer, okta_claims()).await;
    assert_eq!((status, refusal(&body)), (StatusCode::FORBIDDEN, (Some("ScimUserNotActive"), Some("deactivated"))));
    // Two active users carrying one id stay ambiguous.
    p.scim.patch(&format!("/Users/{new}"), patch_op(json!([{"op": "replace", "path": "active", "value": true}]))).await;
    p.scim.patch(&format!("/Users/{old}"), patch_op(json!([{"op": "replace", "path": "active", "value": true}]))).await;
    let (status, body) = login(&p.app, &p.op, &p.customer, okta_claims()).await;
    assert_eq!((status, &body["error"]["type"]), (StatusCode::CONFLICT, &json!("ScimUserAmbiguous")), "{body}");
}

/// The error type and reason of a refused login.
fn refusal(body: &Value) -> (Option<&str>, Option<&str>) {
    (body["error"]["type"].as_str(), body["error"]["details"]["reason"].as_str())
}

/// A customer whose client was paired with a SCIM connection stays fail
/// closed when the connection goes: deleted, or renamed to another
/// customer, every login is refused (nobody can be checked), until the
/// connection is back or the client is explicitly made SSO-only again.
#[tokio::test]
async fn a_paired_customer_whose_scim_connection_goes_is_refused_not_let_in_unchecked() {
    let app = TestApp::spawn().await;
    let op = StubOp::start(false).await;
    let customer = unique("paired");
    let client = stub_client(&app, &op, &customer, "Okta", Some("OidcEmailToScimUsername")).await;
    assert_eq!(client["scim_required"], false, "{client}");
    let client_id = client["oidc_client_id"].as_str().unwrap().to_string();
    let (_, conn) = app.post("/api/v1/scim-connections", json!({"customer_id": customer})).await;
    let scim = app.scim_of(&conn);
    let (_, client) = app.get(&format!("/api/v1/oidc-clients/{client_id}")).await;
    assert_eq!(client["scim_required"], true, "pairing sets it: {client}");
    let (_, log) = app.get(&format!("/api/v1/audit-events?target_id={client_id}&action=oidc_client.updated")).await;
    assert_eq!(log["data"][0]["details"]["paired_with"]["scim_connection_id"], scim.connection_id, "{log}");
    let id = scim.create_user(okta_scim_user()).await;
    p_deactivate(&scim, &id).await;
    let (status, body) = login(&app, &op, &customer, okta_claims()).await;
    assert_eq!((status, refusal(&body)), (StatusCode::FORBIDDEN, (Some("ScimUserNotActive"), Some("deactivated"))));

    // Renamed away: nobody is checked, so nobody signs in.
    let other = unique("renamed");
    let path = format!("/api/v1/scim-connections/{}", scim.connection_id);
    let (status, _) = app.patch(&path, json!({"customer_id": other})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = login(&app, &op, &customer, okta_claims()).await;
    assert_eq!((status, refusal(&body)), (StatusCode::FORBIDDEN, (Some("ScimUserNotActive"), Some("not_provisioned"))));
    assert_eq!(body["error"]["details"]["scim_connection"], Value::Null, "{body}");
    assert_eq!(body["error"]["details"]["scim_required"], true, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("scim_required"), "{body}");
    // Renamed back: the deactivated user is refused as such again.
    app.patch(&path, json!({"customer_id": customer})).await;
    let (_, body) = login(&app, &op, &customer, okta_claims()).await;
    assert_eq!(refusal(&body), (Some("ScimUserNotActive"), Some("deactivated")), "{body}");

    // Deleted: refused too, before and after the client's next edit.
    let (status, _) = app.delete(&path).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = login(&app, &op, &customer, okta_claims()).await;
    assert_eq!(refusal(&body), (Some("ScimUserNotActive"), Some("not_provisioned")), "{body}");
    let client_path = format!("/api/v1/oidc-clients/{client_id}");
    let (status, edited) = app.patch(&client_path, json!({"email_domain_allowlist": ["acme.com"]})).await;
    assert_eq!((status, &edited["scim_required"]), (StatusCode::OK, &json!(true)), "{edited}");
    let (_, body) = login(&app, &op, &customer, okta_claims()).await;
    assert_eq!(refusal(&body), (Some("ScimUserNotActive"), Some("not_provisioned")), "{body}");

    // Only an explicit change makes the customer SSO-only.
    let (status, edited) = app.patch(&client_path, json!({"scim_required": false})).await;
    assert_eq!((status, &edited["scim_required"]), (StatusCode::OK, &json!(false)), "{edited}");
    let (status, body) = login(&app, &op, &customer, okta_claims()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scim_user"], Value::Null);
    let (_, log) = app.get(&format!("/api/v1/audit-events?target_id={client_id}&action=oidc_client.updated")).await;
    assert_eq!(log["data"][0]["details"]["scim_required"], json!({"old": true, "new": false}), "{log}");
}

async fn p_deactivate(scim: &Scim, id: &str) {
    let r = scim
        .patch(&format!("/Users/{id}"), patch_op(json!([{"op": "replace", "path": "active", "value": false}])))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// `scim_required` on create: set by default when the customer already has
/// a SCIM connection, as given otherwise; a client renamed onto a customer
/// with a connection is paired by the rename.
#[tokio::test]
async fn scim_required_follows_pairing_on_create_and_rename_and_can_be_given() {
    let app = TestApp::spawn().await;
    let op = StubOp::start(false).await;
    let connected = unique("connected");
    app.post("/api/v1/scim-connections", json!({"customer_id": connected})).await;
    let created = stub_client(&app, &op, &connected, "Okta", None).await;
    assert_eq!(created["scim_required"], true, "{created}");
    // `null` says nothing: the stored value stays.
    let created_path = format!("/api/v1/oidc-clients/{}", created["oidc_client_id"].as_str().unwrap());
    let (status, same) = app.patch(&created_path, json!({"scim_required": null})).await;
    assert_eq!((status, &same["scim_required"]), (StatusCode::OK, &json!(true)), "{same}");

    // Given explicitly without a connection: refused until one exists.
    let strict = unique("strict");
    let mut body = json!({
        "customer_id": strict,
        "idp": {"type": "Generic", "client_id": "tandem-client", "client_secret": STUB_CLIENT_SECRET,
                "issuer": op.issuer},
        "redirect_url": redirect_url_of(&strict),
        "scim_required": true,
    });
    let (status, client) = app.post("/api/v1/oidc-clients", body.clone()).await;
    assert_eq!((status, &client["scim_required"]), (StatusCode::CREATED, &json!(true)), "{client}");
    let (status, refused) = login(&app, &op, &strict, okta_claims()).await;
    assert_eq!(
        (status, refusal(&refused)),
        (StatusCode::FORBIDDEN, (Some("ScimUserNotActive"), Some("not_provisioned")))
    );
    // Not a boolean: refused, naming the field.
    body["customer_id"] = json!(unique("typed"));
    body["scim_required"] = json!("yes");
    let (status, wrong) = app.post("/api/v1/oidc-clients", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{wrong}");
    assert_eq!(invalid_fields(&wrong), vec!["scim_required".to_string()], "{wrong}");

    // A client without a connection is SSO-only until a rename pairs it.
    let lone = unique("lone");
    let client = stub_client(&app, &op, &lone, "Okta", None).await;
    assert_eq!(client["scim_required"], false, "{client}");
    let target = unique("target");
    let (_, target_conn) = app.post("/api/v1/scim-connections", json!({"customer_id": target})).await;
    let path = format!("/api/v1/oidc-clients/{}", client["oidc_client_id"].as_str().unwrap());
    let (status, renamed) = app.patch(&path, json!({"customer_id": target})).await;
    assert_eq!((status, &renamed["scim_required"]), (StatusCode::OK, &json!(true)), "{renamed}");
    // Unless the rename itself says otherwise.
    let (status, back) = app.patch(&path, json!({"customer_id": lone, "scim_required": false})).await;
    assert_eq!((status, &back["scim_required"]), (StatusCode::OK, &json!(false)), "{back}");
    let (status, kept) = app.patch(&path, json!({"customer_id": target, "scim_required": false})).await;
    assert_eq!((status, &kept["scim_required"]), (StatusCode::OK, &json!(false)), "{kept}");
    // A connection PATCH that repeats its customer ID is no rename: the explicit false stays.
    let conn_path = format!("/api/v1/scim-connections/{}", target_conn["scim_connection_id"].as_str().unwrap());
    let (status, _) = app.patch(&conn_path, json!({"customer_id": target, "api_key_ttl_days": 30})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, after) = app.get(&path).await;
    assert_eq!(after["scim_required"], false, "{after}");
}

/// On PostgreSQL a connection created while a client of its customer is
/// being created (uncommitted) waits for it, and pairs it: each create
/// reads the other's table, and without a lock per customer both missed
/// the other's row and left the pair unmarked. The client's create is held
/// open here as the API runs it (lock, no connection seen, insert).
#[tokio::test]
async fn a_connection_created_during_its_clients_create_waits_and_pairs() {
    let app = TestApp::spawn().await;
    if app.state.store.backend() != "postgres" {
        return; // SQLite's writes are one at a time.
    }
    let customer = unique("racing");
    let spec = tandem_core::oidc_client::parse_create(
        &json!({"customer_id": customer, "redirect_url": redirect_url_of(&customer),
                "idp": {"type": "Generic", "client_id": "c", "client_secret": "s", "issuer": "https://idp.example"}}),
        tandem_core::oidc_client::UrlPolicy::default(),
    )
    .unwrap()
    .spec;
    let now = chrono::Utc::now();
    let row = tandem_store::oidc_clients::OidcClientRow::from_spec(
        &tandem_core::new_id(),
        &spec,
        &app.state.secret_key,
        None,
        tandem_store::micros(now),
        now,
    );
    let client_id = row.id.clone();
    let (store, who) = (app.state.store.clone(), customer.clone());
    let (pid_tx, pid_rx) = std::sync::mpsc::channel();
    let (release, wait_release) = std::sync::mpsc::channel::<()>();
    let held = std::thread::spawn(move || {
        store.write_blocking(move |c| {
            tandem_store::oidc_clients::lock_customer(c, &who)?;
            let mut row = row;
            row.scim_required = tandem_store::scim_connections::get_by_customer(c, &who)?.is_some();
            tandem_store::oidc_clients::insert(c, &row)?;
            pid_tx.send(backend_pid(c)?).unwrap();
            // Long enough that only the watcher below ends the hold, however slowly the test runs.
            let _ = wait_release.recv_timeout(std::time::Duration::from_secs(120));
            Ok(())
        })
    });
    let pid = pid_rx.recv().unwrap();
    let create = app.post("/api/v1/scim-connections", json!({"customer_id": customer}));
    let watch = async {
        let store = app.state.store.clone();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            let s = store.clone();
            if tokio::task::spawn_blocking(move || waiting_on(&s, pid)).await.unwrap() > 0 {
                release.send(()).unwrap();
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        release.send(()).unwrap();
        false
    };
    let ((status, _), waited) = tokio::join!(create, watch);
    held.join().unwrap().unwrap();
    assert_eq!(status, StatusCode::CREATED);
    assert!(waited, "the connection's create waited for the client's");
    let (_, client) = app.get(&format!("/api/v1/oidc-clients/{client_id}")).await;
    assert_eq!(client["scim_required"], true, "{client}");
}

/// A client and a connection of one customer created at the same time are
/// paired.
#[tokio::test]
async fn a_client_and_connection_created_at_once_are_paired() {
    let app = TestApp::spawn().await;
    let op = StubOp::start(false).await;
    for _ in 0..12 {
        let customer = unique("together");
        let client = async { stub_client(&app, &op, &customer, "Okta", None).await };
        let conn = async { app.post("/api/v1/scim-connections", json!({"customer_id": customer})).await };
        let (client, (status, _)) = tokio::join!(client, conn);
        assert_eq!(status, StatusCode::CREATED);
        let (_, now) = app.get(&format!("/api/v1/oidc-clients/{}", client["oidc_client_id"].as_str().unwrap())).await;
        assert_eq!(now["scim_required"], true, "{now}");
    }
}

#[tokio::test]
async fn a_live_user_is_found_behind_more_tombstones_than_a_lookup_reads() {
    // An IdP that deleted and re-created the same person many times: the
    // lookup reads at most 50 candidates, and the live one must be among them.
    for strategy in ["OidcSubToScimExternalId", "OidcEmailUsernameToScimUsername"] {
        let p = paired(strategy).await;
        for _ in 0..51 {
            let id = p.scim.create_user(okta_scim_user()).await;
            assert_eq!(p.scim.delete(&format!("/Users/{id}")).await.status, StatusCode::NO_CONTENT);
        }
        let (_, body) = login(&p.app, &p.op, &p.customer, okta_claims()).await;
        assert_eq!(body["error"]["details"]["reason"], "deleted", "{strategy}: {body}");
        let live = p.scim.create_user(okta_scim_user()).await;
        let (status, body) = login(&p.app, &p.op, &p.customer, okta_claims()).await;
        assert_eq!(status, StatusCode::OK, "{strategy}: {body}");
        assert_eq!(body["scim_user"]["id"], live.as_str(), "{strategy}");
    }
}

#[tokio::test]
async fn local_part_collision_across_domains_is_ambiguous_never_a_coin_toss() {
    let p = paired("OidcEmailUsernameToScimUsername").await;
    p.scim.create_user(user("alice@acme.com")).await;
    p.scim.create_user(user("alice@subsidiary.example")).await;
    let (status, body) = login(&p.app, &p.op, &p.customer, okta_claims()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["type"], "ScimUserAmbiguous");
    assert_eq!(body["error"]["details"]["candidates"].as_array().unwrap().len(), 2);
}

/// Deleting a user locks them out under the local-part strategy too: a
/// live user of another domain with the same local part is someone else.
#[tokio::test]
async fn a_deleted_user_never_signs_in_as_a_live_namesake_of_another_domain() {
    let p = paired("OidcEmailUsernameToScimUsername").await;
    let gone = p.scim.create_user(user("john@contoso.com")).await;
    assert_eq!(p.scim.delete(&format!("/Users/{gone}")).await.status, StatusCode::NO_CONTENT);
    let live = p.scim.create_user(user("john@fabrikam.com")).await;
    let as_email = |email: &str| json!({"sub": format!("00u-{email}"), "email": email});
    let (status, body) = login(&p.app, &p.op, &p.customer, as_email("john@contoso.com")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["details"]["reason"], "deleted", "{body}");
    assert_eq!(body["error"]["details"]["scim_user_id"], gone.as_str(), "{body}");
    // The live user signs in; a third address with that local part is
    // neither's (the live user's emails are its own).
    let (status, body) = login(&p.app, &p.op, &p.customer, as_email("John@Fabrikam.com")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scim_user"]["id"], live.as_str());
    let (status, body) = login(&p.app, &p.op, &p.customer, as_email("john@elsewhere.example")).await;
    assert_eq!((status, refusal(&body)), (StatusCode::FORBIDDEN, (Some("ScimUserNotActive"), Some("not_provisioned"))));
    assert_eq!(body["error"]["details"]["namesake"]["id"], live.as_str(), "{body}");
    // The matching report counts these three as their logins went.
    let report = p.local_part_report().await;
    assert_eq!(report.0, (1, 2, 0), "matched, unmatched, ambiguous: {}", report.1);
    let unmatched = report.1["unmatched_sso_users"].as_array().unwrap();
    assert_eq!(unmatched.len(), 2, "{}", report.1);
    let contoso = unmatched.iter().find(|u| u["email"] == "john@contoso.com").expect("john@contoso.com unmatched");
    assert!(contoso["candidates"].as_array().unwrap().iter().any(|c| c["id"] == gone.as_str()), "{}", report.1);
    // A live user whose userName is not their email (a UPN) is known by its emails.
    let p = paired("OidcEmailUsernameToScimUsername").await;
    let mut upn = user("mary@corp.onmicrosoft.com");
    upn["emails"] = json!([{"value": "Mary@Contoso.com", "primary": true}]);
    let gone = p.scim.create_user(user("mary@fabrikam.onmicrosoft.com")).await;
    assert_eq!(p.scim.delete(&format!("/Users/{gone}")).await.status, StatusCode::NO_CONTENT);
    let live = p.scim.create_user(upn).await;
    let (status, body) = login(&p.app, &p.op, &p.customer, as_email("mary@contoso.com")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scim_user"]["id"], live.as_str());
    let (status, body) = login(&p.app, &p.op, &p.customer, as_email("mary@fabrikam.onmicrosoft.com")).await;
    assert_eq!((status, &body["error"]["details"]["reason"]), (StatusCode::FORBIDDEN, &json!("deleted")), "{body}");
    let report = p.local_part_report().await;
    assert_eq!(report.0, (1, 1, 0), "matched, unmatched, ambiguous: {}", report.1);
    // An email with nothing before its `@` is said to be so, not missing.
    let (status, body) = login(&p.app, &p.op, &p.customer, as_email("@contoso.com")).await;
    assert_eq!((status, &body["error"]["details"]["reason"]), (StatusCode::FORBIDDEN, &json!("not_provisioned")));
    assert!(body["error"]["message"].as_str().unwrap().contains("empty local part"), "{body}");
}

/// By local part, an unprovisioned person of another domain (a B2B guest,
/// an unassigned user of a multi-domain tenant) is not signed in as the
/// namesake whose own emails are others; a directory userName known by its
/// emails, or one with no emails to go by, still signs in.
#[tokio::test]
async fn by_local_part_an_unprovisioned_namesake_of_another_domain_is_refused() {
    let p = paired("OidcEmailUsernameToScimUsername").await;
    let john = p.scim.create_user(user("john@contoso.com")).await;
    let as_email = |email: &str| json!({"sub": format!("00u-{email}"), "email": email});
    let (status, body) = login(&p.app, &p.op, &p.customer, as_email("john@fabrikam.com")).await;
    assert_eq!((status, refusal(&body)), (StatusCode::FORBIDDEN, (Some("ScimUserNotActive"), Some("not_provisioned"))));
    assert_eq!(body["error"]["details"]["namesake"]["id"], john.as_str(), "{body}");
    assert!(body["error"]["details"]["scim_user_id"].is_null(), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("someone else"), "{body}");
    let (status, body) = login(&p.app, &p.op, &p.customer, as_email("John@Contoso.com")).await;
    assert_eq!((status, &body["scim_user"]["id"]), (StatusCode::OK, &json!(john)), "{body}");
    // An Active Directory userName, known by its emails.
    let mut ad = user("jsmith@corp.local");
    ad["emails"] = json!([{"value": "JSmith@Acme.com", "type": "work", "primary": true}]);
    let jsmith = p.scim.create_user(ad).await;
    let (status, body) = login(&p.app, &p.op, &p.customer, as_email("jsmith@acme.com")).await;
    assert_eq!((status, &body["scim_user"]["id"]), (StatusCode::OK, &json!(jsmith)), "{body}");
    let (status, _) = login(&p.app, &p.op, &p.customer, as_email("jsmith@vendor.example")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A bare userName without emails: nothing says whose an email is.
    let mut bare = user("mjones");
    bare.as_object_mut().unwrap().remove("emails");
    let mjones = p.scim.create_user(bare).await;
    let (status, body) = login(&p.app, &p.op, &p.customer, as_email("mjones@acme.com")).await;
    assert_eq!((status, &body["scim_user"]["id"]), (StatusCode::OK, &json!(mjones)), "{body}");
    // The matching report counts them as their logins went.
    let report = p.local_part_report().await;
    assert_eq!(report.0, (3, 2, 0), "matched, unmatched, ambiguous: {}", report.1);
}

impl Paired {
    /// The matching report's counts for `OidcEmailUsernameToScimUsername` (matched,
    /// unmatched, ambiguous), with the report.
    async fn local_part_report(&self) -> ((u64, u64, u64), serde_json::Value) {
        let (_, client) = self.app.get(&format!("/api/v1/oidc-clients/by-customer-id/{}", self.customer)).await;
        let path = format!("/api/v1/oidc-clients/{}/scim-matching", client["oidc_client_id"].as_str().unwrap());
        let (status, report) = self.app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        let c = report["strategies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["strategy"] == "OidcEmailUsernameToScimUsername")
            .unwrap()
            .clone();
        let n = |k: &str| c[k].as_u64().unwrap();
        ((n("matched"), n("unmatched"), n("ambiguous")), report)
    }
}

/// A Google consumer account's email (no `hd`) joins no one under an
/// email strategy, though Google marks it verified; the decision that a
/// Google account is one is unit-tested beside the login, as no test IdP
/// can be `https://accounts.google.com`.
#[tokio::test]
async fn an_email_the_login_doubts_joins_no_one_under_an_email_strategy() {
    let p = paired("OidcEmailToScimUsername").await;
    p.scim.create_user(okta_scim_user()).await;
    let customer = p.customer.clone();
    let client = p
        .app
        .state
        .store
        .read(move |c| tandem_store::oidc_clients::get_by_customer(c, &customer))
        .await
        .unwrap()
        .unwrap();
    let state = p.app.state.clone();
    let run = move |doubt: Option<&'static str>, strategy: Option<&'static str>| {
        let (state, mut client) = (state.clone(), client.clone());
        client.matching_strategy = strategy.map(str::to_string);
        async move {
            let store = state.store.clone();
            store
                .read(move |c| {
                    let sso = tandem_core::matching::SsoAttributes {
                        oidc_user_id: Some("00u1a2b3c4D5e6F7g8h9"),
                        email: Some("alice@acme.com"),
                        preferred_username: Some("alice@acme.com"),
                        email_verified: Some(true),
                    };
                    Ok(tandem_web::scim_join(c, &state, &client, &sso, doubt)?
                        .map(|j| j.scim_user_id)
                        .map_err(|e| e.to_string()))
                })
                .await
                .unwrap()
        }
    };
    let doubt = "a consumer account";
    let refused = run(Some(doubt), None).await.unwrap_err();
    assert!(refused.contains(doubt), "{refused}");
    assert!(run(None, None).await.is_ok(), "the same login without the doubt joins");
    // Strategies that do not read the email are not affected.
    assert!(run(Some(doubt), Some("OidcSubToScimExternalId")).await.is_ok());
}

/// One person deleted and re-created more often than a join reads
/// candidates does not hide another person's tombstone: the deleted
/// John of Contoso stays refused, not let in as the live John of Fabrikam.
#[tokio::test]
async fn a_namesake_deleted_many_times_does_not_hide_another_persons_tombstone() {
    let p = paired("OidcEmailUsernameToScimUsername").await;
    for _ in 0..55 {
        let churn = p.scim.create_user(user("john@fabrikam.com")).await;
        assert_eq!(p.scim.delete(&format!("/Users/{churn}")).await.status, StatusCode::NO_CONTENT);
    }
    let gone = p.scim.create_user(user("john@contoso.com")).await;
    assert_eq!(p.scim.delete(&format!("/Users/{gone}")).await.status, StatusCode::NO_CONTENT);
    let live = p.scim.create_user(user("john@fabrikam.com")).await;
    let as_email = |email: &str| json!({"sub": format!("00u-{email}"), "email": email});
    let (status, body) = login(&p.app, &p.op, &p.customer, as_email("john@contoso.com")).await;
    assert_eq!(
        (status, refusal(&body)),
        (StatusCode::FORBIDDEN, (Some("ScimUserNotActive"), Some("deleted"))),
        "{body}"
    );
    assert_eq!(body["error"]["details"]["scim_user_id"], gone.as_str(), "{body}");
    let (status, body) = login(&p.app, &p.op, &p.customer, as_email("john@elsewhere.example")).await;
    assert_eq!((status, &body["error"]["details"]["reason"]), (StatusCode::FORBIDDEN, &json!("not_provisioned")));
    let (status, body) = login(&p.app, &p.op, &p.customer, as_email("john@fabrikam.com")).await;
    assert_eq!((status, &body["scim_user"]["id"]), (StatusCode::OK, &json!(live)), "{body}");
}

#[tokio::test]
async fn missing_claim_for_the_strategy_is_not_provisioned_naming_the_claim() {
    let p = paired("OidcPreferredUsernameToScimUsername").await;
    p.scim.create_user(okta_scim_user()).await;
    let (status, body) = login(&p.app, &p.op, &p.customer, json!({"preferred_username": null})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["details"]["missing_claim"], "preferred_username", "{body}");
}

/// A Generic client (no SCIM connection) whose allowlist holds acme.com.
async fn allowlisting_acme() -> (TestApp, StubOp, String) {
    let app = TestApp::spawn().await;
    let op = StubOp::start(false).await;
    let customer = unique("allow");
    let (status, _) = app
        .post(
            "/api/v1/oidc-clients",
            json!({"customer_id": customer,
        "idp": {"type": "Generic", "client_id": "tandem-client", "client_secret": "s", "issuer": op.issuer},
        "redirect_url": redirect_url_of(&customer), "email_domain_allowlist": ["acme.com"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    (app, op, customer)
}

#[tokio::test]
async fn email_domain_outside_the_allowlist_is_blocked() {
    let (app, op, customer) = allowlisting_acme().await;
    let (status, body) = login(&app, &op, &customer, json!({"email": "mallory@evil.example"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["type"], "LoginBlockedByEmailAllowlist", "{body}");
    let (status, _) = login(&app, &op, &customer, json!({"email": "Alice@ACME.com"})).await;
    assert_eq!(status, StatusCode::OK);
    // No email at all: said so, not as an empty domain.
    let (status, body) = login(&app, &op, &customer, json!({"email": null})).await;
    assert_eq!((status, &body["error"]["type"]), (StatusCode::FORBIDDEN, &json!("LoginBlockedByEmailAllowlist")));
    assert!(body["error"]["message"].as_str().unwrap().contains("sent no email"), "{body}");
}

/// Entra sends no `email_verified`. Its `xms_edov` says whether the tenant
/// verified the email's domain, and an email that only userinfo gives is
/// one Entra left out of the ID token (a domain the tenant has not
/// verified): neither identifies anyone under an email strategy.
#[tokio::test]
async fn an_entra_email_is_unverified_by_xms_edov_or_when_only_userinfo_gives_it() {
    let app = TestApp::spawn().await;
    let op = StubOp::start(false).await;
    let customer = unique("entra-edov");
    stub_client(&app, &op, &customer, "MicrosoftEntra", Some("OidcEmailToScimUsername")).await;
    let (_, conn) = app.post("/api/v1/scim-connections", json!({"customer_id": customer})).await;
    app.scim_of(&conn).create_user(entra_scim_user()).await;
    // As Entra: no email_verified (the stub's tokens carry one otherwise).
    let with = |extra: Value| {
        let mut c = entra_claims();
        c["email_verified"] = Value::Null;
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    // In the ID token and nothing said of it: joins, as before.
    let (status, body) = login(&app, &op, &customer, with(json!({}))).await;
    assert_eq!((status, &body["email_verified"]), (StatusCode::OK, &Value::Null), "{body}");
    for yes in [json!(true), json!("1"), json!("true"), json!(1)] {
        let (status, body) = login(&app, &op, &customer, with(json!({"xms_edov": yes}))).await;
        assert_eq!((status, &body["email_verified"]), (StatusCode::OK, &json!(true)), "{yes}: {body}");
    }
    for no in [json!(false), json!("0"), json!("false"), json!(0), json!("maybe")] {
        let (status, body) = login(&app, &op, &customer, with(json!({"xms_edov": no}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{no}: {body}");
        assert_eq!(body["error"]["details"]["reason"], "email_not_verified", "{body}");
        // Said in Entra's terms, with Entra's remedy.
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("Entra does not vouch") && message.contains("add the email and xms_edov"),
            "{message}"
        );
    }
    // The ID token holds no email; userinfo answers with one.
    let sub = entra_claims()["sub"].clone();
    op.set_userinfo(json!({"sub": sub, "email": "alice@contoso.com"}));
    let (status, body) = login(&app, &op, &customer, with(json!({"email": null}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["details"]["reason"], "email_not_verified", "{body}");
    assert_eq!(body["error"]["details"]["email"], "alice@contoso.com", "{body}");
    // The same login under the user-id strategy joins, and says the email is unverified.
    let id = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{customer}")).await.1["oidc_client_id"].clone();
    let (status, _) = app
        .patch(
            &format!("/api/v1/oidc-clients/{}", id.as_str().unwrap()),
            json!({"scim_matching_definition": {"strategy": "OidcSubToScimExternalId"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = login(&app, &op, &customer, with(json!({"email": null}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((&body["email"], &body["email_verified"]), (&json!("alice@contoso.com"), &json!(false)), "{body}");
    // An unverified email passes no allowlist, whatever the strategy; the
    // client's accept_unverified_email lets it through again.
    let client = format!("/api/v1/oidc-clients/{}", id.as_str().unwrap());
    assert_eq!(app.patch(&client, json!({"email_domain_allowlist": ["contoso.com"]})).await.0, StatusCode::OK);
    let (status, body) = login(&app, &op, &customer, with(json!({"email": null}))).await;
    assert_eq!(
        (status, &body["error"]["type"]),
        (StatusCode::FORBIDDEN, &json!("LoginBlockedByEmailAllowlist")),
        "{body}"
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("only userinfo gave the email"), "{body}");
    assert_eq!(app.patch(&client, json!({"accept_unverified_email": true})).await.0, StatusCode::OK);
    let (status, body) = login(&app, &op, &customer, with(json!({"email": null}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A Generic IdP's email from userinfo is taken as its IdP says.
    let generic = unique("generic-userinfo");
    stub_client(&app, &op, &generic, "Generic", Some("OidcEmailToScimUsername")).await;
    let (_, conn) = app.post("/api/v1/scim-connections", json!({"customer_id": generic})).await;
    app.scim_of(&conn).create_user(entra_scim_user()).await;
    let (status, body) = login(&app, &op, &generic, with(json!({"email": null}))).await;
    assert_eq!((status, &body["email_verified"]), (StatusCode::OK, &Value::Null), "{body}");
}

#[tokio::test]
async fn an_email_the_idp_marks_unverified_joins_no_one_and_passes_no_allowlist() {
    // Generic IdPs (Keycloak, Auth0) let users edit their email: `email_verified: false` then says
    // nothing of who they are. Okta's default strategy joins on the email.
    let p = paired("OidcEmailToScimUsername").await;
    p.scim.create_user(okta_scim_user()).await;
    // `false`, and any value that is not a clear yes.
    for unverified in [json!(false), json!("false"), json!(0), json!("no")] {
        let claims = json!({"sub": "00uMallory", "email": "alice@acme.com", "email_verified": unverified});
        let (status, body) = login(&p.app, &p.op, &p.customer, claims).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"]["type"], "ScimUserNotActive", "{body}");
        assert_eq!(body["error"]["details"]["reason"], "email_not_verified", "{body}");
        assert_eq!(body["error"]["details"]["email"], "alice@acme.com", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("not verified"), "{body}");
    }
    // Verified, or not said (Entra sends no email_verified): the email identifies the user.
    for verified in [json!(true), Value::Null] {
        let claims = json!({"sub": "00u1a2b3c4D5e6F7g8h9", "email": "alice@acme.com", "email_verified": verified});
        let (status, body) = login(&p.app, &p.op, &p.customer, claims).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["scim_user"]["user_name"], "alice@acme.com");
    }
    // A strategy on the user id does not read the email, verified or not.
    let (status, body) = try_strategy(
        "Okta",
        "OidcSubToScimExternalId",
        json!({"sub": "00u1a2b3c4D5e6F7g8h9", "email": "alice@acme.com", "email_verified": false}),
        okta_scim_user(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The allowlist: an unverified address proves nothing about its domain.
    let (app, op, customer) = allowlisting_acme().await;
    let (status, body) =
        login(&app, &op, &customer, json!({"email": "mallory@acme.com", "email_verified": false})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["type"], "LoginBlockedByEmailAllowlist", "{body}");
    assert_eq!(body["error"]["details"]["email_verified"], false, "{body}");
    let (status, body) = login(&app, &op, &customer, json!({"email": "alice@acme.com", "email_verified": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A deployment whose IdPs mark admin-set emails unverified (Keycloak's LDAP
/// users without "Trust email") can accept them; `email_verified` is still
/// passed on as the IdP said it.
#[tokio::test]
async fn a_deployment_can_accept_emails_marked_unverified() {
    let app = TestApp::spawn_adjusted(|s| s.oidc.accept_unverified_email = true).await;
    let op = StubOp::start(false).await;
    let customer = unique("trusting");
    stub_client(&app, &op, &customer, "Okta", Some("OidcEmailToScimUsername")).await;
    let conn = app.create_scim_connection(&customer).await;
    let scim = app.scim_of(&conn);
    scim.create_user(okta_scim_user()).await;
    let (status, body) =
        login(&app, &op, &customer, json!({"sub": "00uX", "email": "alice@acme.com", "email_verified": false})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email_verified"], false);
    assert_eq!(body["scim_user"]["user_name"], "alice@acme.com");
    // Not a clear yes ("1"): unverified, accepted here too.
    let (status, body) =
        login(&app, &op, &customer, json!({"sub": "00uX", "email": "alice@acme.com", "email_verified": "1"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email_verified"], false);
    // A client can refuse them for itself.
    let (_, client) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{customer}")).await;
    let path = format!("/api/v1/oidc-clients/{}", client["oidc_client_id"].as_str().unwrap());
    let (status, body) = app.patch(&path, json!({"accept_unverified_email": false})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) =
        login(&app, &op, &customer, json!({"sub": "00uX", "email": "alice@acme.com", "email_verified": false})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

/// One client can accept the emails its IdP marks unverified (an IdP whose
/// mapping always sends `false`) without the deployment accepting them for
/// every customer; `null` follows the deployment again, and a client can
/// refuse them where the deployment accepts them.
#[tokio::test]
async fn a_client_can_accept_emails_marked_unverified_for_itself() {
    let p = paired("OidcEmailToScimUsername").await;
    p.scim.create_user(okta_scim_user()).await;
    let unverified = json!({"sub": "00uX", "email": "alice@acme.com", "email_verified": false});
    let (status, body) = login(&p.app, &p.op, &p.customer, unverified.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("accept_unverified_email"), "{body}");
    let (_, client) = p.app.get(&format!("/api/v1/oidc-clients/by-customer-id/{}", p.customer)).await;
    assert_eq!(client["accept_unverified_email"], Value::Null, "{client}");
    let path = format!("/api/v1/oidc-clients/{}", client["oidc_client_id"].as_str().unwrap());
    let (status, body) = p.app.patch(&path, json!({"accept_unverified_email": "yes"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(invalid_fields(&body), ["accept_unverified_email"]);
    let (status, body) = p.app.patch(&path, json!({"accept_unverified_email": true})).await;
    assert_eq!((status, &body["accept_unverified_email"]), (StatusCode::OK, &json!(true)), "{body}");
    let (status, body) = login(&p.app, &p.op, &p.customer, unverified.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((&body["email_verified"], &body["scim_user"]["user_name"]), (&json!(false), &json!("alice@acme.com")));
    // Another customer's client on the same deployment is not affected.
    let other = unique("other");
    stub_client(&p.app, &p.op, &other, "Okta", Some("OidcEmailToScimUsername")).await;
    let conn = p.app.create_scim_connection(&other).await;
    p.app.scim_of(&conn).create_user(okta_scim_user()).await;
    let (status, body) = login(&p.app, &p.op, &other, unverified.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Other edits keep the setting; null returns the client to the deployment's.
    let (status, body) = p.app.patch(&path, json!({"email_domain_allowlist": ["acme.com"]})).await;
    assert_eq!((status, &body["accept_unverified_email"]), (StatusCode::OK, &json!(true)), "{body}");
    let (status, body) = p.app.patch(&path, json!({"accept_unverified_email": null})).await;
    assert_eq!((status, &body["accept_unverified_email"]), (StatusCode::OK, &Value::Null), "{body}");
    let (status, body) = login(&p.app, &p.op, &p.customer, unverified).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

/// A login the IdP starts (an Okta dashboard tile: OpenID Connect Core §4
/// sends the app its `iss`) finds its client by issuer, written with a
/// trailing `/` or an upper-case host or not; a shared issuer (Google) is
/// refused with what to do instead.
#[tokio::test]
async fn a_login_the_idp_starts_finds_its_client_by_issuer() {
    // A database of its own: a stub IdP of an earlier test on the same port
    // would be a second client with this issuer.
    let p = paired_on(TestApp::spawn_on_own_database().await, "OidcEmailToScimUsername").await;
    p.scim.create_user(okta_scim_user()).await;
    let loud = p.op.issuer.replace("http://127.0.0.1", "HTTP://127.0.0.1");
    for issuer in [p.op.issuer.clone(), format!("{}/", p.op.issuer), loud] {
        let (status, body) =
            p.app.post("/api/v1/sso/login/initiate", json!({"issuer": issuer, "login_hint": "alice@acme.com"})).await;
        assert_eq!(status, StatusCode::OK, "{issuer}: {body}");
        assert_eq!(body["customer_id"], p.customer.as_str(), "{body}");
        let started = started(&body);
        assert!(started.idp_url.query_pairs().any(|(k, v)| k == "login_hint" && v == "alice@acme.com"));
        let code = unique("code");
        p.op.issue(&code, p.op.sign(&claims(&p.op, &started, okta_claims()), Signer::Published, "test-key-a"));
        let (status, body) = complete(&p.app, &p.op, &started, &code).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["scim_user"]["user_name"], "alice@acme.com", "{body}");
    }
    let (status, body) = p.app.post("/api/v1/sso/login/initiate", json!({"issuer": "https://unknown.example"})).await;
    assert_eq!((status, &body["error"]["type"]), (StatusCode::NOT_FOUND, &json!("ClientNotFound")), "{body}");
    let (status, body) = p.app.post("/api/v1/sso/login/initiate", json!({"issuer": "not a url"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(invalid_fields(&body), ["issuer"]);
    let (_, body) =
        p.app.post("/api/v1/sso/login/initiate", json!({"issuer": p.op.issuer, "customer_id": p.customer})).await;
    assert_eq!(invalid_fields(&body), ["customer_id"]);
    // A second customer on the same IdP: the issuer names no one client.
    stub_client(&p.app, &p.op, &unique("second"), "Okta", None).await;
    let (status, body) = p.app.post("/api/v1/sso/login/initiate", json!({"issuer": p.op.issuer})).await;
    assert_eq!((status, &body["error"]["type"]), (StatusCode::CONFLICT, &json!("IssuerNotUnique")), "{body}");
}

#[tokio::test]
async fn userinfo_fills_in_a_missing_email() {
    let p = paired("OidcEmailToScimUsername").await;
    p.scim.create_user(okta_scim_user()).await;
    p.op.set_userinfo(json!({"sub": "00u1a2b3c4D5e6F7g8h9", "email": "alice@acme.com"}));
    let (status, body) = login(&p.app, &p.op, &p.customer, json!({"sub": "00u1a2b3c4D5e6F7g8h9", "email": null})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], "alice@acme.com");
}

/// A userinfo answer signed as a JWT is not read, and the login event says
/// why (the login goes on with the ID token's claims).
#[tokio::test]
async fn a_signed_userinfo_answer_is_named_in_the_login_event() {
    let p = paired("OidcSubToScimExternalId").await;
    p.scim.create_user(okta_scim_user()).await;
    p.op.answer_userinfo_signed();
    let (status, body) = login(&p.app, &p.op, &p.customer, json!({"sub": "00u1a2b3c4D5e6F7g8h9", "email": null})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, event) = p.app.get(&format!("/api/v1/login-events/{}", body["login_event_id"].as_str().unwrap())).await;
    let step = step_of(&event, "userinfo").unwrap();
    assert_eq!(step["detail"]["merged"], false, "{step}");
    assert!(step["detail"]["why"].as_str().unwrap().contains("application/jwt"), "{step}");
}

#[tokio::test]
async fn userinfo_fills_in_an_email_the_id_token_sends_as_null() {
    let p = paired("OidcEmailToScimUsername").await;
    p.scim.create_user(okta_scim_user()).await;
    p.op.set_userinfo(json!({"sub": "00u1a2b3c4D5e6F7g8h9", "email": "alice@acme.com", "given_name": "Not Alice"}));
    let started = start(&p.app, &p.customer).await;
    let mut c = claims(&p.op, &started, json!({"sub": "00u1a2b3c4D5e6F7g8h9"}));
    c["email"] = Value::Null;
    let code = unique("code");
    p.op.issue(&code, p.op.sign(&c, Signer::Published, "test-key-a"));
    let (status, body) = complete(&p.app, &p.op, &started, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], "alice@acme.com");
    assert_eq!(body["scim_user"]["user_name"], "alice@acme.com");
    // A claim the ID token does send is not replaced.
    assert_eq!(body["given_name"], "Alice");
}

/// By default userinfo is asked only when the ID token has no email; with
/// `oidc.userinfo = "profile_incomplete"` also when it lacks names or
/// email_verified (Okta's thin ID tokens), and the ID token's claims win.
/// Userinfo's email_verified vouches for userinfo's email only: not for
/// another address the ID token has.
#[tokio::test]
async fn userinfo_fills_in_names_when_the_deployment_asks_for_a_complete_profile() {
    let thin = json!({"sub": "00uThin", "email": "thin@acme.com", "given_name": null, "family_name": null, "email_verified": null});
    for info_email in ["Thin@acme.com", "other@acme.com"] {
        let info = json!({"sub": "00uThin", "email": info_email, "given_name": "Thin", "family_name": "Token",
                          "email_verified": true});
        let verified = if info_email == "other@acme.com" { Value::Null } else { json!(true) };
        for (when, names) in [(UserinfoWhen::EmailMissing, false), (UserinfoWhen::ProfileIncomplete, true)] {
            let app = TestApp::spawn_adjusted(|s| s.oidc.userinfo = when).await;
            let op = StubOp::start(false).await;
            let customer = unique("thin");
            stub_client(&app, &op, &customer, "Okta", None).await;
            op.set_userinfo(info.clone());
            let (status, body) = login(&app, &op, &customer, thin.clone()).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let got = (&body["given_name"], &body["family_name"], &body["email_verified"]);
            if names {
                assert_eq!(got, (&json!("Thin"), &json!("Token"), &verified), "{info_email}: {body}");
            } else {
                assert_eq!(got, (&Value::Null, &Value::Null, &Value::Null), "{body}");
            }
            assert_eq!(body["email"], "thin@acme.com", "the ID token's email wins");
        }
    }
}

/// A client that asks for `groups` gets them from userinfo when the ID
/// token has none (Okta's org authorization server sends a thin ID token);
/// one that does not ask never calls userinfo for them.
#[tokio::test]
async fn groups_asked_for_and_missing_from_the_id_token_come_from_userinfo() {
    let app = TestApp::spawn().await;
    let op = StubOp::start(false).await;
    let info = json!({"sub": "00uGroups", "email": "g@acme.com", "groups": ["Engineering", "Everyone"]});
    op.set_userinfo(info);
    let thin = json!({"sub": "00uGroups", "email": "g@acme.com"});
    for (asks, expected) in [(false, Value::Null), (true, json!(["Engineering", "Everyone"]))] {
        let customer = unique("groups");
        let created = stub_client(&app, &op, &customer, "Okta", None).await;
        if asks {
            let id = created["oidc_client_id"].as_str().unwrap();
            let (status, body) =
                app.patch(&format!("/api/v1/oidc-clients/{id}"), json!({"additional_scopes": ["groups"]})).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let (status, body) = login(&app, &op, &customer, thin.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["claims"]["groups"], expected, "asks for groups: {asks}: {body}");
    }
}

/// Entra sends `oid` (the user id the join goes by) only under `profile`:
/// a MicrosoftEntra client's own `scopes` must keep it.
#[tokio::test]
async fn an_entra_client_must_keep_the_profile_scope() {
    let app = TestApp::spawn().await;
    let op = StubOp::start(false).await;
    let customer = unique("entra-scopes");
    let created = stub_client(&app, &op, &customer, "MicrosoftEntra", None).await;
    let id = created["oidc_client_id"].as_str().unwrap();
    let (status, body) = app.patch(&format!("/api/v1/oidc-clients/{id}"), json!({"scopes": ["openid", "email"]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(invalid_fields(&body), ["scopes"], "{body}");
    assert!(body.to_string().contains("oid claim"), "{body}");
    let (status, body) =
        app.patch(&format!("/api/v1/oidc-clients/{id}"), json!({"scopes": ["openid", "profile"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A client saved before the rule is still patched (a new secret for an
    // expired one must go through); only a patch of its scopes is held to it.
    let stale = format!("UPDATE oidc_clients SET scopes = '[\"openid\",\"email\"]' WHERE id = '{id}'");
    app.state
        .store
        .write_blocking(move |c| diesel::connection::SimpleConnection::batch_execute(c, &stale).map_err(Into::into))
        .unwrap();
    let secret = json!({"idp": {"client_secret": "a-new-secret-for-an-expired-one"}});
    let (status, body) = app.patch(&format!("/api/v1/oidc-clients/{id}"), secret).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scopes"], json!(["openid", "email"]), "{body}");
    let (status, _) = app
        .patch(&format!("/api/v1/oidc-clients/{id}"), json!({"scopes": ["openid", "email", "offline_access"]}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Other IdP types may leave it out (Cognito app clients that do not allow it).
    let generic = unique("generic-scopes");
    let created = stub_client(&app, &op, &generic, "Generic", None).await;
    let id = created["oidc_client_id"].as_str().unwrap();
    let (status, body) = app.patch(&format!("/api/v1/oidc-clients/{id}"), json!({"scopes": ["openid", "email"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn home_realm_discovery_by_email_domain_starts_the_right_login() {
    let app = TestApp::spawn().await;
    let op = StubOp::start(false).await;
    let customer = unique("hrd");
    let domain = format!("{}.example", unique("d"));
    app.post(
        "/api/v1/oidc-clients",
        json!({"customer_id": customer,
        "idp": {"type": "Generic", "client_id": "tandem-client", "client_secret": "s", "issuer": op.issuer},
        "redirect_url": redirect_url_of(&customer), "email_domain_allowlist": [domain]}),
    )
    .await;
    let (status, body) =
        app.post("/api/v1/sso/login/initiate", json!({"email": format!("Someone@{}", domain.to_uppercase())})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["customer_id"], customer);
    assert!(body["idp_url"].as_str().unwrap().contains("login_hint="));
    let (status, body) = app.post("/api/v1/sso/login/initiate", json!({"email": "x@unknown-domain.example"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["type"], "ClientNotFound");
}

#[tokio::test]
async fn every_attempt_leaves_a_login_event_with_its_steps() {
    let p = paired("OidcEmailToScimUsername").await;
    p.scim.create_user(okta_scim_user()).await;
    let (_, ok) = login(&p.app, &p.op, &p.customer, okta_claims()).await;
    let (_, refused) = login(&p.app, &p.op, &p.customer, json!({"sub": "00uBob", "email": "bob@acme.com"})).await;
    let (status, events) = p.app.get(&format!("/api/v1/login-events?customer_id={}", p.customer)).await;
    assert_eq!(status, StatusCode::OK);
    let events = events["data"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    let success = events.iter().find(|e| e["id"] == ok["login_event_id"]).unwrap();
    assert_eq!(success["outcome"], "success");
    let steps: Vec<&str> = success["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    for step in [
        "initiate",
        "discovery",
        "authorization_url",
        "callback",
        "state",
        "idp_response",
        "token_exchange",
        "id_token",
        "scim_join",
    ] {
        assert!(steps.contains(&step), "{step} missing from {steps:?}");
    }
    let failure = events.iter().find(|e| e["id"] == refused["error"]["details"]["login_event_id"]).unwrap();
    assert_eq!(failure["outcome"], "failed");
    assert_eq!(failure["failed_step"], "scim_join");
    assert_eq!(failure["error_type"], "ScimUserNotActive");
    assert_eq!(failure["error_kind"], "not_provisioned", "the reason, to filter on: {failure}");
    assert!(failure["diagnosis"].as_str().unwrap().contains("not provisioned"));
    let (status, one) = p.app.get(&format!("/api/v1/login-events/{}", success["id"].as_str().unwrap())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["email"], "alice@acme.com");
    // Found by email whatever its case; paged newest first by `before` only.
    let (_, by_email) = p.app.get(&format!("/api/v1/login-events?customer_id={}&email=Bob@ACME.com", p.customer)).await;
    let ids: Vec<&Value> = by_email["data"].as_array().unwrap().iter().map(|e| &e["id"]).collect();
    assert_eq!(ids, [&refused["error"]["details"]["login_event_id"]], "{by_email}");
    let (status, body) = p.app.get(&format!("/api/v1/login-events?customer_id={}&after=x", p.customer)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "after", "{body}");
    // A login the app started for someone is findable by that email before
    // the IdP answers (here: never); once it answers, the IdP's email wins.
    let (status, started) = p
        .app
        .post("/api/v1/sso/login/initiate", json!({"customer_id": p.customer, "login_hint": "Carol@acme.com"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let (_, by_hint) =
        p.app.get(&format!("/api/v1/login-events?customer_id={}&email=carol@acme.com", p.customer)).await;
    let pending = &by_hint["data"][0];
    assert_eq!((pending["outcome"].as_str(), pending["email"].as_str()), (Some("pending"), Some("Carol@acme.com")));
    // Both SSO users were recorded for the matching report.
    let client = p
        .app
        .state
        .store
        .read_blocking({
            let c = p.customer.clone();
            move |conn| tandem_store::oidc_clients::get_by_customer(conn, &c)
        })
        .unwrap()
        .unwrap();
    let seen = p
        .app
        .state
        .store
        .read_blocking(move |conn| tandem_store::sso::sso_users_of(conn, &client.id, None, 10))
        .unwrap();
    assert_eq!(seen.len(), 2);
}

#[tokio::test]
async fn generic_each_strategy_with_real_claims() {
    // A generic OP (Keycloak, Auth0, oidc-provider): `sub` opaque, email and preferred_username set.
    let claims = json!({"sub": "f3b2c1d0-9a8b-4c7d-8e6f-5a4b3c2d1e0f", "email": "Alice@Acme.com", "preferred_username": "alice"});
    let scim_user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "alice@acme.com",
                           "externalId": "f3b2c1d0-9a8b-4c7d-8e6f-5a4b3c2d1e0f", "active": true});
    let expected = [
        ("OidcSubToScimExternalId", true),
        ("OidcEmailToScimUsername", true),              // case-insensitive
        ("OidcEmailUsernameToScimUsername", true),      // "alice" == local part of "alice@acme.com"
        ("OidcPreferredUsernameToScimUsername", false), // "alice" != "alice@acme.com"
        ("OidcSubToScimUsername", false),
    ];
    for (strategy, matches) in expected {
        let (status, body) = try_strategy("Generic", strategy, claims.clone(), scim_user.clone()).await;
        let want = if matches { StatusCode::OK } else { StatusCode::FORBIDDEN };
        assert_eq!(status, want, "{strategy}: {body}");
    }
}
