//! `GET /api/v1/oidc-clients/{id}/scim-matching`: every strategy side by
//! side, the unmatched and ambiguous users with their candidates, and a
//! recommendation backed by the counts.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

struct Setup {
    app: TestApp,
    client_id: String,
    scim: Scim,
}

async fn setup(idp_type: &str, strategy: Option<&str>) -> Setup {
    setup_at(idp_type, strategy, "https://idp.example").await
}

async fn setup_at(idp_type: &str, strategy: Option<&str>, issuer: &str) -> Setup {
    let app = TestApp::spawn().await;
    let customer = unique("report");
    let mut body = json!({"customer_id": customer,
        "idp": {"type": idp_type, "client_id": "c", "client_secret": "s", "sso_domain": "acme.okta.com",
                "tenant_id": "3f2a6c1e-8b4d-4e2a-9c7f-1a2b3c4d5e6f", "issuer": issuer},
        "redirect_url": format!("https://app.example.com/cb/{customer}"), "verify": false});
    if let Some(s) = strategy {
        body["scim_matching_definition"] = json!({"strategy": s});
    }
    let (status, client) = app.post("/api/v1/oidc-clients", body).await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    let conn = app.create_scim_connection(&customer).await;
    let scim = app.scim_of(&conn);
    Setup { client_id: client["oidc_client_id"].as_str().unwrap().into(), app, scim }
}

impl Setup {
    /// Records an SSO user as a login would.
    fn seen(&self, oidc_user_id: &str, email: Option<&str>, preferred_username: Option<&str>) {
        self.seen_verified(oidc_user_id, email, preferred_username, Some(true));
    }

    fn seen_verified(&self, oidc_user_id: &str, email: Option<&str>, pu: Option<&str>, verified: Option<bool>) {
        self.seen_at(oidc_user_id, email, pu, verified, 0);
    }

    /// Records an SSO user last seen at `at` (µs).
    fn seen_at(&self, oidc_user_id: &str, email: Option<&str>, pu: Option<&str>, verified: Option<bool>, at: i64) {
        self.seen_with_claims(oidc_user_id, email, pu, verified, at, "{}");
    }

    /// [`Setup::seen_at`] with the login's claims as stored.
    fn seen_with_claims(
        &self,
        oidc_user_id: &str,
        email: Option<&str>,
        pu: Option<&str>,
        verified: Option<bool>,
        at: i64,
        claims: &str,
    ) {
        let preferred_username = pu;
        let row = tandem_store::sso::SsoUser {
            id: tandem_core::new_id(),
            oidc_client_id: self.client_id.clone(),
            oidc_user_id: oidc_user_id.into(),
            email: email.map(str::to_string),
            email_verified: verified,
            preferred_username: preferred_username.map(str::to_string),
            given_name: None,
            family_name: None,
            claims: claims.into(),
            first_login_at: at,
            last_login_at: at,
            login_count: 1,
        };
        self.app.state.store.write_blocking(move |c| tandem_store::sso::record_sso_user(c, &row)).unwrap();
    }

    async fn provision(&self, user_name: &str, external_id: Option<&str>) -> String {
        let mut u = user(user_name);
        if let Some(x) = external_id {
            u["externalId"] = json!(x);
        }
        self.scim.create_user(u).await
    }

    async fn report(&self, query: &str) -> Value {
        let (status, body) =
            self.app.get(&format!("/api/v1/oidc-clients/{}/scim-matching{query}", self.client_id)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

fn counts(report: &Value, strategy: &str) -> (u64, u64, u64) {
    let s = report["strategies"].as_array().unwrap().iter().find(|s| s["strategy"] == strategy).unwrap();
    (s["matched"].as_u64().unwrap(), s["unmatched"].as_u64().unwrap(), s["ambiguous"].as_u64().unwrap())
}

#[tokio::test]
async fn each_strategy_wins_on_data_made_for_it() {
    // (winner, SCIM userName, SCIM externalId, SSO sub, SSO email, SSO preferred_username)
    let cases = [
        ("OidcSubToScimUsername", "00u1abc", None, "00u1abc", "a@x.example", "a"),
        ("OidcSubToScimExternalId", "zz@q.example", Some("00u1abc"), "00u1abc", "a@x.example", "a"),
        ("OidcEmailToScimUsername", "a@x.example", None, "sub-1", "A@X.example", "b"),
        // A directory userName, and the email among the user's emails.
        ("OidcEmailUsernameToScimUsername", "a@corp.local", None, "sub-1", "a@x.example", "b"),
        ("OidcPreferredUsernameToScimUsername", "jdoe", None, "sub-1", "john@x.example", "JDoe"),
    ];
    for (winner, user_name, ext, sub, email, pu) in cases {
        let s = setup("Okta", None).await;
        let mut u = user(user_name);
        u["emails"] = json!([{"value": user_name}, {"value": email}]);
        if let Some(x) = ext {
            u["externalId"] = json!(x);
        }
        s.scim.create_user(u).await;
        s.seen(sub, Some(email), Some(pu));
        let r = s.report("").await;
        assert_eq!(r["recommended_strategy"], winner, "{winner}: {r}");
        assert_eq!(counts(&r, winner), (1, 0, 0), "{winner}");
    }
}

#[tokio::test]
async fn an_email_the_idp_marked_unverified_matches_as_it_would_at_login() {
    let s = setup("Okta", None).await;
    s.provision("alice@acme.com", Some("00u1")).await;
    s.provision("bob@acme.com", Some("00u2")).await;
    s.seen_verified("00u1", Some("alice@acme.com"), None, Some(false));
    s.seen_verified("00u2", Some("bob@acme.com"), None, None);
    let r = s.report("").await;
    // Only Bob's email (not said either way) identifies him; Alice's login would be refused.
    assert_eq!(counts(&r, "OidcEmailToScimUsername"), (1, 1, 0), "{r}");
    assert_eq!(counts(&r, "OidcEmailUsernameToScimUsername"), (1, 1, 0), "{r}");
    assert_eq!(counts(&r, "OidcSubToScimExternalId"), (2, 0, 0), "{r}");
    assert_eq!(r["recommended_strategy"], "OidcSubToScimExternalId", "{r}");
    // Listed with the email_verified the join goes by.
    let alice = &r["unmatched_sso_users"][0];
    assert_eq!((&alice["email"], &alice["email_verified"]), (&json!("alice@acme.com"), &json!(false)), "{r}");
    // A client that accepts unverified emails counts Alice's as her login would.
    let (status, body) =
        s.app.patch(&format!("/api/v1/oidc-clients/{}", s.client_id), json!({"accept_unverified_email": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = s.report("").await;
    assert_eq!(counts(&r, "OidcEmailToScimUsername"), (2, 0, 0), "{r}");
}

/// At Google a consumer account (no `hd` claim) is not joined by its email,
/// though Google marks it verified: the report counts it as its login would.
#[tokio::test]
async fn a_google_consumer_accounts_email_matches_no_one_as_at_login() {
    let s = setup_at("Generic", None, "https://accounts.google.com").await;
    s.provision("alice@acme.com", Some("g-1")).await;
    s.provision("bob@acme.com", Some("g-2")).await;
    s.seen_with_claims(
        "g-1",
        Some("alice@acme.com"),
        None,
        Some(true),
        0,
        r#"{"email":"alice@acme.com","hd":"acme.com"}"#,
    );
    s.seen_with_claims("g-2", Some("bob@acme.com"), None, Some(true), 0, r#"{"email":"bob@acme.com"}"#);
    let r = s.report("").await;
    assert_eq!(counts(&r, "OidcEmailToScimUsername"), (1, 1, 0), "{r}");
    assert_eq!(r["unmatched_sso_users"][0]["oidc_user_id"], "g-2", "{r}");
    assert_eq!(counts(&r, "OidcSubToScimExternalId"), (2, 0, 0), "{r}");
    assert_eq!(r["recommended_strategy"], "OidcSubToScimExternalId", "{r}");
    // Elsewhere the same claims are counted as they are.
    let other = setup_at("Generic", None, "https://idp.example").await;
    other.provision("bob@acme.com", None).await;
    other.seen_with_claims("g-2", Some("bob@acme.com"), None, Some(true), 0, r#"{"email":"bob@acme.com"}"#);
    assert_eq!(counts(&other.report("").await, "OidcEmailToScimUsername"), (1, 0, 0));
}

#[tokio::test]
async fn emails_that_differ_by_case_match_by_email_not_by_sub() {
    let s = setup("Okta", Some("OidcSubToScimUsername")).await;
    s.provision("Alice@Acme.com", Some("00u1")).await;
    s.provision("BOB@acme.com", Some("00u2")).await;
    s.seen("00u1", Some("alice@acme.COM"), None);
    s.seen("00u2", Some("bob@Acme.com"), None);
    let r = s.report("").await;
    assert_eq!(r["current_strategy"], "OidcSubToScimUsername");
    assert_eq!(counts(&r, "OidcEmailToScimUsername"), (2, 0, 0));
    assert_eq!(counts(&r, "OidcSubToScimUsername"), (0, 2, 0));
    // The current strategy's unmatched users are listed with the SCIM users other strategies would match.
    let unmatched = r["unmatched_sso_users"].as_array().unwrap();
    assert_eq!(unmatched.len(), 2);
    let alice = unmatched.iter().find(|u| u["oidc_user_id"] == "00u1").unwrap();
    assert_eq!(alice["email"], "alice@acme.COM");
    let cand = &alice["candidates"][0];
    assert_eq!(cand["user_name"], "Alice@Acme.com");
    assert_eq!(cand["external_id"], "00u1");
    assert_eq!(cand["emails"][0], "Alice@Acme.com");
    let under: Vec<&str> = cand["matches_under"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(under.contains(&"OidcEmailToScimUsername") && under.contains(&"OidcSubToScimExternalId"), "{under:?}");
    // Both SCIM users are matched by nobody under the current strategy.
    assert_eq!(r["unmatched_scim_users_total"], 2);
    // Both email and externalId match everyone; the Okta default breaks the tie.
    assert_eq!(r["recommended_strategy"], "OidcEmailToScimUsername");
}

#[tokio::test]
async fn local_parts_colliding_across_domains_are_ambiguous() {
    let s = setup("Generic", Some("OidcEmailUsernameToScimUsername")).await;
    s.provision("alice@acme.com", None).await;
    s.provision("alice@subsidiary.example", None).await;
    s.seen("sub-a", Some("alice@acme.com"), None);
    let r = s.report("").await;
    assert_eq!(counts(&r, "OidcEmailUsernameToScimUsername"), (0, 0, 1));
    assert_eq!(counts(&r, "OidcEmailToScimUsername"), (1, 0, 0));
    let amb = &r["ambiguous_sso_users"][0];
    assert_eq!(amb["candidates"].as_array().unwrap().len(), 2);
    assert_eq!(r["recommended_strategy"], "OidcEmailToScimUsername");
}

/// A user the IdP deleted matches no strategy, and is shown as the deleted
/// candidate of the SSO user it was (why that login is refused as deleted).
#[tokio::test]
async fn a_deleted_user_is_shown_as_the_deleted_candidate_of_its_sso_user() {
    let s = setup("Generic", Some("OidcEmailToScimUsername")).await;
    // Deleted and made again, three times: one candidate, the latest.
    let mut gone = String::new();
    for _ in 0..3 {
        gone = s.provision("gone@acme.com", None).await;
        assert_eq!(s.scim.delete(&format!("/Users/{gone}")).await.status, StatusCode::NO_CONTENT);
    }
    s.seen("sub-gone", Some("gone@acme.com"), None);
    let r = s.report("").await;
    assert_eq!(counts(&r, "OidcEmailToScimUsername"), (0, 1, 0), "{r}");
    let cands = r["unmatched_sso_users"][0]["candidates"].as_array().unwrap();
    assert_eq!(cands.len(), 1, "{r}");
    assert_eq!((cands[0]["id"].as_str(), &cands[0]["deleted"]), (Some(gone.as_str()), &json!(true)), "{r}");
    assert!(cands[0]["matches_under"].as_array().unwrap().contains(&json!("OidcEmailToScimUsername")), "{r}");
    assert_eq!(r["unmatched_scim_users_total"], 0, "tombstones are not SCIM users: {r}");
}

/// SSO users whose logins the email allowlist refuses never reach the
/// join: counted apart, not as matched under any strategy.
#[tokio::test]
async fn users_the_allowlist_refuses_are_counted_apart() {
    let s = setup("Generic", Some("OidcSubToScimExternalId")).await;
    let (status, body) = s
        .app
        .patch(&format!("/api/v1/oidc-clients/{}", s.client_id), json!({"email_domain_allowlist": ["acme.com"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (sub, email, verified) in [
        ("sub-1", Some("a@acme.com"), Some(true)),
        ("sub-2", Some("b@other.example"), Some(true)),
        ("sub-3", None, None),
        ("sub-4", Some("d@acme.com"), Some(false)),
    ] {
        s.provision(&format!("{sub}@acme.com"), Some(sub)).await;
        s.seen_verified(sub, email, None, verified);
    }
    let r = s.report("").await;
    assert_eq!((&r["sso_users_seen"], &r["blocked_by_allowlist"]), (&json!(4), &json!(3)), "{r}");
    assert_eq!(counts(&r, "OidcSubToScimExternalId"), (1, 0, 0), "{r}");
}

/// Capped lists show the most recently seen SSO users first.
#[tokio::test]
async fn unmatched_lists_show_the_most_recently_seen_first() {
    let s = setup("Generic", Some("OidcEmailToScimUsername")).await;
    for (i, at) in [(1, 1_000), (2, 3_000), (3, 2_000)] {
        s.seen_at(&format!("sub-{i}"), Some(&format!("u{i}@acme.com")), None, Some(true), at);
    }
    let r = s.report("?limit=2").await;
    let listed: Vec<&str> =
        r["unmatched_sso_users"].as_array().unwrap().iter().map(|u| u["oidc_user_id"].as_str().unwrap()).collect();
    assert_eq!(listed, ["sub-2", "sub-3"], "{r}");
    assert_eq!(counts(&r, "OidcEmailToScimUsername"), (0, 3, 0));
}

/// Two people joining one SCIM user (by local part) is counted as shared,
/// and the strategy that does it is not recommended.
#[tokio::test]
async fn two_sso_users_joining_one_scim_user_are_counted_as_shared() {
    let s = setup("Generic", Some("OidcEmailUsernameToScimUsername")).await;
    // No emails: nothing says the second address is not the user's.
    let mut john = user("john@contoso.com");
    john.as_object_mut().unwrap().remove("emails");
    s.scim.create_user(john).await;
    s.seen("sub-1", Some("john@contoso.com"), None);
    s.seen("sub-2", Some("john@fabrikam.com"), None);
    let r = s.report("").await;
    let local = r["strategies"].as_array().unwrap().iter().find(|c| c["strategy"] == "OidcEmailUsernameToScimUsername");
    assert_eq!((local.unwrap()["matched"].as_u64(), local.unwrap()["shared"].as_u64()), (Some(2), Some(2)), "{r}");
    assert_eq!(r["recommended_strategy"], "OidcEmailToScimUsername", "{r}");
}

#[tokio::test]
async fn entra_pairwise_sub_makes_sub_to_username_match_nothing() {
    let s = setup("MicrosoftEntra", Some("OidcSubToScimUsername")).await;
    // Entra provisions userName = UPN and externalId = objectId; the OIDC user id is oid.
    for (upn, oid) in [
        ("alice@contoso.com", "aaaaaaaa-0000-0000-0000-000000000001"),
        ("bob@contoso.com", "aaaaaaaa-0000-0000-0000-000000000002"),
    ] {
        s.provision(upn, Some(oid)).await;
        s.seen(oid, Some(upn), Some(upn));
    }
    let r = s.report("").await;
    assert_eq!(counts(&r, "OidcSubToScimUsername"), (0, 2, 0));
    assert_eq!(counts(&r, "OidcSubToScimExternalId"), (2, 0, 0));
    assert_eq!(r["recommended_strategy"], "OidcSubToScimExternalId");
    assert_eq!(r["idp_type"], "MicrosoftEntra");
}

#[tokio::test]
async fn another_strategy_can_be_previewed_and_deactivated_matches_are_counted() {
    let s = setup("Okta", None).await;
    let id = s.provision("carol@acme.com", Some("00u3")).await;
    s.scim.patch(&format!("/Users/{id}"), patch_op(json!([{"op": "replace", "path": "active", "value": false}]))).await;
    s.seen("00u3", Some("carol@acme.com"), None);
    let r = s.report("?strategy=OidcSubToScimUsername").await;
    assert_eq!(r["report_strategy"], "OidcSubToScimUsername");
    assert_eq!(r["current_strategy"], "OidcEmailToScimUsername");
    assert_eq!(r["unmatched_sso_users"].as_array().unwrap().len(), 1);
    let email = r["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["strategy"] == "OidcEmailToScimUsername")
        .unwrap()
        .clone();
    assert_eq!((email["matched"].as_u64(), email["matched_inactive"].as_u64()), (Some(1), Some(1)));
}

#[tokio::test]
async fn unpaired_clients_and_bad_parameters_are_refused() {
    let app = TestApp::spawn().await;
    let created = app.create_okta_client(&unique("solo")).await;
    let id = created["oidc_client_id"].as_str().unwrap();
    let (status, body) = app.get(&format!("/api/v1/oidc-clients/{id}/scim-matching")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["type"], "ClientNotPaired");
    let (status, body) =
        app.get(&format!("/api/v1/oidc-clients/{id}/scim-matching?strategy=Magic&limit=0&seen_since=yesterday")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid_fields(&body), ["strategy", "limit", "seen_since"]);
    let (status, body) = app.get("/api/v1/oidc-clients/nope/scim-matching").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["type"], "ClientNotFound");
}

#[tokio::test]
async fn seen_since_leaves_out_identities_not_seen_lately() {
    let s = setup("Okta", None).await;
    s.provision("alice@acme.com", None).await;
    s.provision("bob@acme.com", None).await;
    let at = |t: &str| tandem_store::micros(chrono::DateTime::parse_from_rfc3339(t).unwrap().to_utc());
    // Alice signed in last week; an old identity of a leaver matches nobody.
    s.seen_at("00u1", Some("alice@acme.com"), None, Some(true), at("2026-11-28T09:00:00Z"));
    s.seen_at("00u9", Some("leaver@acme.com"), None, Some(true), at("2025-03-01T09:00:00Z"));

    let all = s.report("").await;
    assert_eq!(all["sso_users_seen"], 2, "{all}");
    assert_eq!(counts(&all, "OidcEmailToScimUsername"), (1, 1, 0), "{all}");
    assert_eq!(all["seen_since"], Value::Null, "{all}");

    let recent = s.report("?seen_since=2026-11-01T00:00:00Z").await;
    assert_eq!(recent["sso_users_seen"], 1, "{recent}");
    assert_eq!(recent["seen_since"], "2026-11-01T00:00:00.000Z", "{recent}");
    assert_eq!(counts(&recent, "OidcEmailToScimUsername"), (1, 0, 0), "{recent}");
    assert_eq!(recent["unmatched_sso_users"], json!([]), "{recent}");
    // Bob has not signed in since then: he is the unmatched SCIM user.
    let names: Vec<_> =
        recent["unmatched_scim_users"].as_array().unwrap().iter().map(|u| u["user_name"].clone()).collect();
    assert_eq!(names, [json!("bob@acme.com")], "{recent}");

    // The bound is inclusive, and an offset other than Z is read as written.
    let edge = s.report("?seen_since=2026-11-28T10:00:00%2B01:00").await;
    assert_eq!(edge["sso_users_seen"], 1, "{edge}");
    let later = s.report("?seen_since=2026-11-28T09:00:00.000001Z").await;
    assert_eq!(later["sso_users_seen"], 0, "{later}");
}

#[tokio::test]
async fn candidates_many_users_share_are_listed_up_to_twenty_and_counted() {
    let s = setup("Okta", None).await;
    for i in 0..25 {
        s.provision(&format!("john@d{i}.example"), None).await;
    }
    s.seen("00u1", Some("john@x.example"), None);
    let r = s.report("").await;
    assert_eq!(counts(&r, "OidcEmailUsernameToScimUsername"), (0, 0, 1), "{r}");
    let listed = &r["unmatched_sso_users"][0];
    assert_eq!(listed["candidates"].as_array().unwrap().len(), 20, "{r}");
    assert_eq!(listed["candidates_total"], 25, "{r}");
    let r = s.report("?strategy=OidcEmailUsernameToScimUsername").await;
    let listed = &r["ambiguous_sso_users"][0];
    assert_eq!((listed["candidates"].as_array().unwrap().len(), &listed["candidates_total"]), (20, &json!(25)), "{r}");
}
