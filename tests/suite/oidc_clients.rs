//! `/api/v1/oidc-clients`: the happy paths and every kind of malformed request.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn okta_client_is_created_fetched_by_id_and_customer_and_deleted() {
    let app = TestApp::spawn().await;
    let customer = unique("acme");
    let created = app.create_okta_client(&customer).await;
    let id = created["oidc_client_id"].as_str().unwrap();
    assert_eq!(created["idp"]["issuer"], "https://acme.okta.com");
    assert_eq!(created["scim_matching_definition"]["strategy"], "OidcEmailToScimUsername");
    assert_eq!(created["scim_matching_definition"]["source"], "idp_type_default");
    assert_eq!(created["idp"]["has_client_secret"], true);

    let (status, by_id) = app.get(&format!("/api/v1/oidc-clients/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id, created);
    let (status, by_customer) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{customer}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_customer["oidc_client_id"], id);
    let (status, listed) = app.get(&format!("/api/v1/oidc-clients?customer_id={customer}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["data"][0]["oidc_client_id"], id);
    // Filtered by customer, the client and its connection are each a last page,
    // and a cursor at or past the row leaves it out.
    let conn = app.create_scim_connection(&customer).await;
    for (list, row_id) in [("oidc-clients", id), ("scim-connections", conn["scim_connection_id"].as_str().unwrap())] {
        let (status, page) = app.get(&format!("/api/v1/{list}?customer_id={customer}&limit=1")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!((page["data"].as_array().unwrap().len(), &page["next_cursor"]), (1, &Value::Null), "{list}: {page}");
        for after in [row_id, "ffffffff-ffff-ffff-ffff-ffffffffffff", "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"] {
            let (_, page) = app.get(&format!("/api/v1/{list}?customer_id={customer}&limit=1&after={after}")).await;
            assert_eq!(page, json!({"data": [], "next_cursor": null}), "{list} after {after}");
        }
        // Before every id, or empty (no cursor: the first page).
        for after in ["00000000-0000-0000-0000-000000000000", ""] {
            let (_, page) = app.get(&format!("/api/v1/{list}?customer_id={customer}&after={after}")).await;
            assert_eq!(page["data"].as_array().unwrap().len(), 1, "{list} after {after:?}: {page}");
        }
        // A cursor that is no id would answer an empty page, read as the end: refused.
        for after in ["0", "ffffffff", "ffffffff-ffff-ffff-ffff-ffffffffffff-x"] {
            for query in [format!("customer_id={customer}&after={after}"), format!("after={after}")] {
                let (status, body) = app.get(&format!("/api/v1/{list}?{query}")).await;
                assert_eq!(
                    (status, invalid_fields(&body)),
                    (StatusCode::BAD_REQUEST, vec!["after".to_string()]),
                    "{list}?{query}"
                );
            }
        }
        let (status, body) = app
            .get(&format!("/api/v1/scim-connections/{}/users?after=x", conn["scim_connection_id"].as_str().unwrap()))
            .await;
        assert_eq!((status, invalid_fields(&body)), (StatusCode::BAD_REQUEST, vec!["after".to_string()]), "{body}");
    }

    // The SSO users its logins saw (their claims) go with it; another client's stay.
    record_seen(&app, id, "00u-gone", chrono::Utc::now());
    let another = app.create_okta_client(&unique("another")).await["oidc_client_id"].as_str().unwrap().to_string();
    record_seen(&app, &another, "00u-kept", chrono::Utc::now());
    let (status, _) = app.delete(&format!("/api/v1/oidc-clients/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get(&format!("/api/v1/oidc-clients/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["type"], "ClientNotFound");
    // By the housekeeping, in batches (not in the delete's transaction).
    let (store, (keep, stopped)) = (app.state.store.clone(), std::sync::mpsc::channel::<()>());
    tokio::task::spawn_blocking(move || tandem::housekeeping::trim_sso_users_in_batches(&store, None, &stopped, 100))
        .await
        .unwrap();
    drop(keep);
    assert!(seen_of(&app, id).is_empty());
    assert_eq!(seen_of(&app, &another), ["00u-kept"]);
}

#[tokio::test]
async fn entra_client_derives_its_issuer_and_defaults_to_external_id_matching() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            "/api/v1/oidc-clients",
            json!({
            "customer_id": unique("contoso"),
            "idp": {"type": "MicrosoftEntra", "client_id": "11111111-2222-3333-4444-555555555555",
                    "client_secret": "entra~secret", "tenant_id": "3f2a6c1e-8b4d-4e2a-9c7f-1a2b3c4d5e6f"},
            "redirect_url": format!("https://app.example.com/sso/callback/{}", unique("contoso")),
            "verify": false}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["idp"]["issuer"], "https://login.microsoftonline.com/3f2a6c1e-8b4d-4e2a-9c7f-1a2b3c4d5e6f/v2.0");
    assert_eq!(body["scim_matching_definition"]["strategy"], "OidcSubToScimExternalId");
}

/// Microsoft's tenant of personal accounts and its shared endpoints
/// (`common`, `organizations`, `consumers`) are no customer's directory:
/// through them anyone with a Microsoft account could sign in as the
/// customer's users. Refused by tenant ID and as an issuer, of any type.
#[tokio::test]
async fn microsofts_shared_tenants_are_refused() {
    let app = TestApp::spawn().await;
    let consumers = "9188040d-6c67-4c5b-b112-36a304b66dad";
    for (idp, field, says) in [
        (
            json!({"type": "MicrosoftEntra", "tenant_id": consumers.to_uppercase()}),
            "idp.tenant_id",
            "personal accounts",
        ),
        (
            json!({"type": "MicrosoftEntra", "issuer": format!("https://login.microsoftonline.com/{consumers}/v2.0")}),
            "idp.issuer",
            "personal accounts",
        ),
        (json!({"type": "Generic", "issuer": "https://login.microsoftonline.com/common/v2.0"}), "idp.issuer", "anyone"),
        (
            json!({"type": "Generic", "issuer": "https://Login.MicrosoftOnline.us/organizations/v2.0/"}),
            "idp.issuer",
            "any Entra directory",
        ),
        (
            json!({"type": "Okta", "issuer": "https://login.microsoftonline.com/consumers/v2.0"}),
            "idp.issuer",
            "personal",
        ),
    ] {
        let mut idp = idp;
        idp["client_id"] = json!("11111111-2222-3333-4444-555555555555");
        idp["client_secret"] = json!("entra~secret");
        let (status, body) = app
            .post(
                "/api/v1/oidc-clients",
                json!({"customer_id": unique("msa"), "idp": idp, "redirect_url": "https://app.example.com/cb",
                       "verify": false}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{idp}: {body}");
        assert_eq!(invalid_fields(&body), [field], "{body}");
        let text = body.to_string();
        assert!(text.contains(says) && text.contains("own directory (tenant) ID"), "{body}");
    }
}

#[tokio::test]
async fn generic_client_requires_an_issuer() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            "/api/v1/oidc-clients",
            json!({
            "customer_id": unique("g"), "idp": {"type": "Generic", "client_id": "c", "client_secret": "s"},
            "redirect_url": "https://app.example.com/cb", "verify": false}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid_fields(&body), ["idp.issuer"]);
}

#[tokio::test]
async fn wrong_json_types_are_each_named() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            "/api/v1/oidc-clients",
            json!({
            "customer_id": 42, "idp": {"type": "Okta", "client_id": true, "uses_pkce": "yes", "sso_domain": ["a"]},
            "redirect_url": {"url": "x"}, "email_domain_allowlist": "acme.com", "verify": "no"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let fields = invalid_fields(&body);
    for f in [
        "customer_id",
        "idp.client_id",
        "idp.uses_pkce",
        "idp.sso_domain",
        "redirect_url",
        "email_domain_allowlist",
        "verify",
    ] {
        assert!(fields.contains(&f.to_string()), "{f} not in {fields:?}");
    }
}

#[tokio::test]
async fn unknown_idp_type_is_named() {
    let app = TestApp::spawn().await;
    let mut body = okta_client(&unique("a"));
    body["idp"]["type"] = json!("Auth0");
    let (status, resp) = app.post("/api/v1/oidc-clients", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid_fields(&resp), ["idp.type"]);
    assert!(resp["error"]["message"].as_str().unwrap().contains("MicrosoftEntra"));
}

#[tokio::test]
async fn missing_required_fields_are_all_named() {
    let app = TestApp::spawn().await;
    let (status, body) = app.post("/api/v1/oidc-clients", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let fields = invalid_fields(&body);
    for f in ["customer_id", "redirect_url", "idp"] {
        assert!(fields.contains(&f.to_string()), "{f} not in {fields:?}");
    }
    let (_, body) = app
        .post("/api/v1/oidc-clients", json!({"customer_id": "x", "redirect_url": "https://a.example/cb", "idp": {}}))
        .await;
    let fields = invalid_fields(&body);
    assert!(fields.contains(&"idp.type".to_string()) && fields.contains(&"idp.client_id".to_string()), "{fields:?}");
}

#[tokio::test]
async fn bad_redirect_url_is_named() {
    let app = TestApp::spawn().await;
    for bad in [
        "/relative/path",
        "not a url",
        "ftp://app.example.com/cb",
        "http://app.example.com/cb",
        "https://app.example.com/cb#frag",
    ] {
        let mut body = okta_client(&unique("a"));
        body["redirect_url"] = json!(bad);
        let (status, resp) = app.post("/api/v1/oidc-clients", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(invalid_fields(&resp), ["redirect_url"], "{bad}");
    }
}

#[tokio::test]
async fn at_sign_domain_in_allowlist_is_refused() {
    let app = TestApp::spawn().await;
    let mut body = okta_client(&unique("a"));
    body["email_domain_allowlist"] = json!(["acme.com", "@acme.com", "https://acme.com"]);
    let (status, resp) = app.post("/api/v1/oidc-clients", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid_fields(&resp), ["email_domain_allowlist[1]", "email_domain_allowlist[2]"]);
}

/// An allowlist holds up to 1,000 domains, repeated ones (in any case) kept once.
#[tokio::test]
async fn an_allowlist_is_bounded_and_kept_without_repeats() {
    let app = TestApp::spawn().await;
    let mut body = okta_client(&unique("a"));
    let many: Vec<String> = (0..1001).map(|i| format!("d{i}.example")).collect();
    body["email_domain_allowlist"] = json!(many);
    let (status, resp) = app.post("/api/v1/oidc-clients", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{resp}");
    assert_eq!(invalid_fields(&resp), ["email_domain_allowlist"]);
    let mut body = okta_client(&unique("a"));
    let mut most: Vec<String> = (0..999).map(|i| format!("d{i}.example")).collect();
    most.push("D7.Example".into());
    body["email_domain_allowlist"] = json!(most);
    let (status, resp) = app.post("/api/v1/oidc-clients", body).await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    assert_eq!(resp["email_domain_allowlist"].as_array().unwrap().len(), 999, "{resp}");
}

/// Scopes go into every login's URL: at most 50, each at most 256 bytes.
#[tokio::test]
async fn scopes_are_bounded() {
    let app = TestApp::spawn().await;
    let mut body = okta_client(&unique("a"));
    body["additional_scopes"] = json!((0..51).map(|i| format!("s{i}")).collect::<Vec<_>>());
    body["scopes"] = json!(["openid", "x".repeat(257)]);
    let (status, resp) = app.post("/api/v1/oidc-clients", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{resp}");
    assert_eq!(invalid_fields(&resp), ["additional_scopes", "scopes[1]"]);
}

/// Okta's domain and Entra's tenant are read in lower case, as the IdPs name them.
#[tokio::test]
async fn issuers_are_derived_in_lower_case() {
    let app = TestApp::spawn().await;
    let mut body = okta_client(&unique("a"));
    body["idp"]["sso_domain"] = json!("Acme.Okta.com");
    let (status, resp) = app.post("/api/v1/oidc-clients", body).await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    assert_eq!(resp["idp"]["issuer"], "https://acme.okta.com", "{resp}");
}

#[tokio::test]
async fn unknown_strategy_is_refused_and_known_ones_are_kept() {
    let app = TestApp::spawn().await;
    let mut body = okta_client(&unique("a"));
    body["scim_matching_definition"] = json!({"strategy": "OidcEmailToScimEmail"});
    let (status, resp) = app.post("/api/v1/oidc-clients", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid_fields(&resp), ["scim_matching_definition.strategy"]);

    let mut body = okta_client(&unique("a"));
    body["scim_matching_definition"] = json!({"strategy": "OidcPreferredUsernameToScimUsername"});
    let (status, resp) = app.post("/api/v1/oidc-clients", body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        resp["scim_matching_definition"],
        json!({"strategy": "OidcPreferredUsernameToScimUsername", "source": "client"})
    );
}

/// `.` and `..` are refused as customer IDs of what is made: in a URL path
/// they are dot segments, removed on the way, so no by-customer-id route or
/// dashboard page could reach such a customer.
#[tokio::test]
async fn dot_segments_are_no_customer_ids() {
    let app = TestApp::spawn_adjusted(|s| s.oidc.setup_links_allow_private_issuers = true).await;
    for customer in [".", ".."] {
        let connection = app.post("/api/v1/scim-connections", json!({"customer_id": customer})).await;
        let link = app.post("/api/v1/setup-links", json!({"customer_id": customer})).await;
        for (status, body) in [app.post("/api/v1/oidc-clients", okta_client(customer)).await, connection, link] {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{customer}: {body}");
            assert_eq!(invalid_fields(&body), ["customer_id"], "{body}");
            assert!(body.to_string().contains("dot segment"), "{body}");
        }
    }
    let conn = app.create_scim_connection(&unique("dots")).await;
    let path = format!("/api/v1/scim-connections/{}", conn["scim_connection_id"].as_str().unwrap());
    for renamed in [json!(".."), json!(null)] {
        let (status, body) = app.patch(&path, json!({"customer_id": renamed})).await;
        let fields = invalid_fields(&body);
        assert_eq!((status, fields), (StatusCode::BAD_REQUEST, vec!["customer_id".to_string()]), "{body}");
    }
    assert_eq!(app.post("/api/v1/oidc-clients", okta_client("..a")).await.0, StatusCode::CREATED);
}

/// A client saved before the customer-ID and shared-tenant rules is still
/// patched where the patch leaves what they are about alone (a secret for
/// an expired one must go through); its logins through Microsoft's shared
/// tenant are refused.
#[tokio::test]
async fn a_client_saved_before_the_later_rules_is_patched_and_its_shared_tenant_refused() {
    let app = TestApp::spawn().await;
    let (status, made) = app.post("/api/v1/oidc-clients", okta_client(&unique("older"))).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["oidc_client_id"].as_str().unwrap().to_string();
    let common = "https://login.microsoftonline.com/common/v2.0";
    // As an earlier release could save it.
    let key = id.clone();
    app.state
        .store
        .write_blocking(move |c| {
            use diesel::prelude::*;
            use tandem_store::schema::oidc_clients::dsl as oc;
            diesel::update(oc::oidc_clients.filter(oc::id.eq(&key)))
                .set((
                    oc::customer_id.eq(".."),
                    oc::idp_type.eq("Generic"),
                    oc::sso_domain.eq(None::<String>),
                    oc::issuer_override.eq(Some(common)),
                    oc::issuer.eq(common),
                ))
                .execute(c)?;
            Ok(())
        })
        .unwrap();
    let path = format!("/api/v1/oidc-clients/{id}");
    let (status, body) = app.patch(&path, json!({"email_domain_allowlist": ["acme.com", "acme.org"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.patch(&path, json!({"idp": {"client_secret": "a-new-secret-value-456"}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.patch(&path, json!({"customer_id": "."})).await;
    assert_eq!((status, invalid_fields(&body)), (StatusCode::BAD_REQUEST, vec!["customer_id".to_string()]), "{body}");
    let organizations = json!({"idp": {"issuer": "https://login.microsoftonline.com/organizations/v2.0",
                                       "client_secret": "a-new-secret-value-789"}});
    let (status, body) = app.patch(&path, organizations).await;
    assert_eq!((status, invalid_fields(&body)), (StatusCode::BAD_REQUEST, vec!["idp.issuer".to_string()]), "{body}");
    let (status, body) = app.post("/api/v1/sso/login/initiate", json!({"oidc_client_id": id})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["details"]["kind"], "DiscoveryFailed", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(common) && message.contains("own directory (tenant) ID"), "{body}");
}

#[tokio::test]
async fn duplicate_customer_id_is_a_conflict() {
    let app = TestApp::spawn().await;
    let customer = unique("dup");
    app.create_okta_client(&customer).await;
    let (status, body) = app.post("/api/v1/oidc-clients", okta_client(&customer)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["type"], "CustomerIdAlreadyTaken");
}

#[tokio::test]
async fn invalid_json_and_non_object_bodies_are_refused_with_a_reason() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .send_raw(reqwest::Method::POST, "/api/v1/oidc-clients", b"{\"customer_id\": ".to_vec(), "application/json")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["type"], "InvalidJson");
    assert!(body["error"]["message"].as_str().unwrap().contains("line 1"));
    let (status, body) =
        app.send_raw(reqwest::Method::POST, "/api/v1/oidc-clients", b"[1,2]".to_vec(), "application/json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid_fields(&body), ["body"]);
    let (status, body) = app.send_raw(reqwest::Method::POST, "/api/v1/oidc-clients", vec![], "application/json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["type"], "InvalidJson");
}

#[tokio::test]
async fn oversized_body_is_refused_with_413() {
    let app = TestApp::spawn().await;
    let big = format!("{{\"customer_id\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let (status, body) =
        app.send_raw(reqwest::Method::POST, "/api/v1/oidc-clients", big.into_bytes(), "application/json").await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["type"], "PayloadTooLarge");
}

/// A field of the wrong type is named once, for its type: not also as
/// missing to the checks that follow.
#[tokio::test]
async fn a_field_of_the_wrong_type_is_named_once() {
    let app = TestApp::spawn().await;
    let body = json!({"customer_id": unique("typed"),
        "idp": {"type": "Generic", "issuer": 0, "client_id": "c", "client_secret": "s"},
        "redirect_url": "https://app.example.com/cb", "verify": false});
    let (status, body) = app.post("/api/v1/oidc-clients", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let fields = body["error"]["details"]["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 1, "{body}");
    assert_eq!(fields[0]["field"], "idp.issuer", "{body}");
    assert!(fields[0]["message"].as_str().unwrap().contains("string"), "{body}");
    // Two problems with one field: named once, with both.
    let body = json!({"customer_id": unique("scoped"),
        "idp": {"type": "MicrosoftEntra", "tenant_id": "3f2a6c1e-8b4d-4e2a-9c7f-1a2b3c4d5e6f", "client_id": "c",
                "client_secret": "s"},
        "scopes": ["email"], "redirect_url": "https://app.example.com/cb", "verify": false});
    let (status, body) = app.post("/api/v1/oidc-clients", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let fields = body["error"]["details"]["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 1, "{body}");
    let message = fields[0]["message"].as_str().unwrap();
    assert!(message.contains("must include openid") && message.contains("must include profile"), "{body}");
    assert_eq!(body["error"]["message"].as_str().unwrap().matches("scopes").count(), 1, "{body}");
}

/// The stored secret is sent only to the IdP that issued it: a PATCH moving
/// the client to another issuer must carry the new IdP's secret.
#[tokio::test]
async fn patch_moving_the_issuer_needs_a_new_secret() {
    let app = TestApp::spawn().await;
    let created = app.create_okta_client(&unique("mv")).await;
    let path = format!("/api/v1/oidc-clients/{}", created["oidc_client_id"].as_str().unwrap());
    let moved = json!({"idp": {"sso_domain": "elsewhere.okta.com"}, "verify": false});
    let (status, body) = app.patch(&path, moved.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["type"], "InvalidFields", "{body}");
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "idp.client_secret", "{body}");
    let (_, stored) = app.get(&path).await;
    assert_eq!(stored["idp"]["issuer"], "https://acme.okta.com", "unchanged: {stored}");
    let mut with_secret = moved;
    with_secret["idp"]["client_secret"] = json!("elsewhere-secret");
    let (status, body) = app.patch(&path, with_secret).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["idp"]["issuer"], "https://elsewhere.okta.com", "{body}");
}

#[tokio::test]
async fn patch_changes_the_strategy_and_keeps_the_secret() {
    let app = TestApp::spawn().await;
    let created = app.create_okta_client(&unique("p")).await;
    let id = created["oidc_client_id"].as_str().unwrap();
    let (status, body) = app
        .patch(
            &format!("/api/v1/oidc-clients/{id}"),
            json!({"scim_matching_definition": {"strategy": "OidcSubToScimExternalId"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scim_matching_definition"]["strategy"], "OidcSubToScimExternalId");
    assert_eq!(body["idp"]["has_client_secret"], true);
    assert_eq!(body["redirect_url"], created["redirect_url"]);
    // The audit log has who changed it and the old and new strategy.
    let (status, log) = app.get(&format!("/api/v1/audit-events?target_type=oidc_client&target_id={id}")).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let events = log["data"].as_array().unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["oidc_client.strategy_changed", "oidc_client.updated", "oidc_client.created"],
        "newest first: {log}"
    );
    assert_eq!(events[0]["details"]["strategy"]["new"], "OidcSubToScimExternalId", "{log}");
    let update = &events[1];
    assert!(update["actor"].as_str().unwrap().starts_with("test-key"), "{update}");
    assert_eq!(update["details"]["strategy"]["new"], "OidcSubToScimExternalId", "{update}");
    assert!(update["details"]["strategy"]["old"].is_null(), "{update}");
    assert!(events.iter().all(|e| e["target_id"] == id), "{log}");
    // Paged by `before`, filtered by action; no secret in any detail.
    let (_, page) = app.get(&format!("/api/v1/audit-events?target_id={id}&limit=2")).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let next = page["next_cursor"].as_str().unwrap();
    let (_, rest) = app.get(&format!("/api/v1/audit-events?target_id={id}&before={next}")).await;
    assert_eq!(rest["data"][0]["action"], "oidc_client.created", "{rest}");
    let (_, created_only) = app.get(&format!("/api/v1/audit-events?target_id={id}&action=oidc_client.created")).await;
    assert_eq!(created_only["data"].as_array().unwrap().len(), 1, "{created_only}");
    assert!(!log.to_string().contains("client_secret\":\""), "{log}");
    let (status, body) = app.get("/api/v1/audit-events?limit=0").await;
    assert_eq!((status, invalid_fields(&body)), (StatusCode::BAD_REQUEST, vec!["limit".to_string()]));
    // Newest first: the oldest-first lists' `after` is refused, not ignored
    // (a client paging with it would get the first page for ever).
    for list in ["audit-events", "provisioning-logs"] {
        let (status, body) = app.get(&format!("/api/v1/{list}?after={next}")).await;
        assert_eq!((status, invalid_fields(&body)), (StatusCode::BAD_REQUEST, vec!["after".to_string()]), "{list}");
        assert!(body.to_string().contains("before=<next_cursor>"), "{body}");
    }
    // A `before` that is no id (an empty page, or the first again) is refused; an empty one is none.
    for list in ["audit-events", "provisioning-logs", "login-events", "setup-links"] {
        let (status, body) = app.get(&format!("/api/v1/{list}?before=zzz")).await;
        assert_eq!((status, invalid_fields(&body)), (StatusCode::BAD_REQUEST, vec!["before".to_string()]), "{list}");
        let (status, body) = app.get(&format!("/api/v1/{list}?before=&limit=1")).await;
        assert_eq!(status, StatusCode::OK, "{list}: {body}");
    }
    // A filter value nothing can hold is refused, not answered with an empty page.
    for (query, field) in
        [("audit-events?target_type=oidc_clients", "target_type"), ("provisioning-logs?status=99999", "status")]
    {
        let (status, body) = app.get(&format!("/api/v1/{query}")).await;
        assert_eq!(
            (status, invalid_fields(&body)),
            (StatusCode::BAD_REQUEST, vec![field.to_string()]),
            "{query}: {body}"
        );
    }
    let (_, upper) = app.get(&format!("/api/v1/audit-events?target_id={id}&before={}", next.to_uppercase())).await;
    assert_eq!(upper["data"][0]["action"], "oidc_client.created", "{upper}");
    // A new secret and a new IdP are said (the secret's value never is).
    let moved = json!({"idp": {"sso_domain": "elsewhere.okta.com", "client_secret": "a-moved-secret-0123456789"},
                       "verify": false});
    let (status, body) = app.patch(&format!("/api/v1/oidc-clients/{id}"), moved).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, log) = app.get(&format!("/api/v1/audit-events?target_id={id}&action=oidc_client.updated&limit=1")).await;
    let details = &log["data"][0]["details"];
    assert_eq!(details["client_secret_replaced"], true, "{log}");
    assert_eq!(details["idp"]["new"]["issuer"], "https://elsewhere.okta.com", "{log}");
    assert_eq!(details["idp"]["old"]["issuer"], created["idp"]["issuer"], "{log}");
    assert!(!log.to_string().contains("a-moved-secret"), "{log}");
}

#[tokio::test]
async fn patch_with_bad_fields_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let created = app.create_okta_client(&unique("p")).await;
    let id = created["oidc_client_id"].as_str().unwrap();
    let (status, body) = app
        .patch(
            &format!("/api/v1/oidc-clients/{id}"),
            json!({"redirect_url": "nope", "email_domain_allowlist": ["@x.com"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid_fields(&body), ["redirect_url", "email_domain_allowlist[0]"]);
    let (_, after) = app.get(&format!("/api/v1/oidc-clients/{id}")).await;
    assert_eq!(after, created);
}

#[tokio::test]
async fn patch_to_a_taken_customer_id_is_a_conflict() {
    let app = TestApp::spawn().await;
    let a = unique("a");
    app.create_okta_client(&a).await;
    let b = app.create_okta_client(&unique("b")).await;
    let (status, body) = app
        .patch(&format!("/api/v1/oidc-clients/{}", b["oidc_client_id"].as_str().unwrap()), json!({"customer_id": a}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["type"], "CustomerIdAlreadyTaken");
    // Taking A's path too: the taken customer ID is still the answer.
    let (_, a_client) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{a}")).await;
    let both = json!({"customer_id": a, "redirect_url": a_client["redirect_url"]});
    let (status, body) =
        app.patch(&format!("/api/v1/oidc-clients/{}", b["oidc_client_id"].as_str().unwrap()), both).await;
    assert_eq!((status, &body["error"]["type"]), (StatusCode::CONFLICT, &json!("CustomerIdAlreadyTaken")), "{body}");
}

/// A server that allows a redirect path another client has, with a warning.
async fn allowing_shared_paths() -> TestApp {
    TestApp::spawn_adjusted(|s| s.oidc.require_distinct_redirect_paths = false).await
}

/// With `oidc.require_distinct_redirect_paths = false`, a shared path is
/// saved with a warning naming the other customer; the response says how
/// the mix-up it allows is avoided.
#[tokio::test]
async fn a_shared_redirect_path_is_saved_with_a_warning_when_allowed() {
    let app = allowing_shared_paths().await;
    let (a, b) = (unique("a"), unique("b"));
    let created_a = app.create_okta_client(&a).await;
    assert!(created_a.get("warnings").is_none(), "{created_a}");
    let mut body = okta_client(&b);
    body["redirect_url"] = created_a["redirect_url"].clone();
    let (status, created_b) = app.post("/api/v1/oidc-clients", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created_b}");
    let warning = &created_b["warnings"][0];
    assert_eq!(warning["field"], "redirect_url", "{created_b}");
    let message = warning["message"].as_str().unwrap();
    assert!(message.contains(&a) && message.contains("mix-up"), "{message}");
    // A PATCH of something else says nothing; moving to a path of its own clears it.
    let b_path = format!("/api/v1/oidc-clients/{}", created_b["oidc_client_id"].as_str().unwrap());
    let (_, patched) = app.patch(&b_path, json!({"additional_scopes": ["groups"]})).await;
    assert!(patched.get("warnings").is_none(), "{patched}");
    let (_, patched) =
        app.patch(&b_path, json!({"redirect_url": format!("https://app.example.com/sso/callback/{b}")})).await;
    assert!(patched.get("warnings").is_none(), "{patched}");
}

/// Two clients on one callback path would let one customer's IdP obtain a
/// login at the other's (OAuth mix-up): by default each client needs a
/// path of its own.
#[tokio::test]
async fn a_redirect_path_another_client_has_is_a_conflict() {
    let app = TestApp::spawn().await;
    let (a, b) = (unique("a"), unique("b"));
    let created_a = app.create_okta_client(&a).await;
    let shared = created_a["redirect_url"].as_str().unwrap().to_string();
    let path = url::Url::parse(&shared).unwrap().path().to_string();
    // The path is what a callback is checked against: another host or query does not make it another path.
    for taken in [shared.clone(), format!("https://other.example{path}"), format!("{shared}?tenant=b")] {
        let mut body = okta_client(&b);
        body["redirect_url"] = json!(taken);
        let (status, refused) = app.post("/api/v1/oidc-clients", body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{taken}: {refused}");
        assert_eq!(refused["error"]["type"], "RedirectUrlInUse", "{refused}");
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(message.contains(&path) && message.contains(&a), "{message}");
    }
    let (status, _) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{b}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was stored");

    let created_b = app.create_okta_client(&b).await;
    let b_path = format!("/api/v1/oidc-clients/{}", created_b["oidc_client_id"].as_str().unwrap());
    let (status, refused) = app.patch(&b_path, json!({"redirect_url": shared})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["type"], "RedirectUrlInUse", "{refused}");
    // Its own path, sent again, is no conflict; once A moves, B may take A's old path.
    let (status, body) = app.patch(&b_path, json!({"redirect_url": created_b["redirect_url"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let a_path = format!("/api/v1/oidc-clients/{}", created_a["oidc_client_id"].as_str().unwrap());
    let (status, body) = app.patch(&a_path, json!({"redirect_url": format!("{shared}/moved")})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.patch(&b_path, json!({"redirect_url": shared})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Entra ID clients of one multi-tenant application (one client_id, whose
/// registration holds at most 256 redirect URIs) may share its redirect
/// path: every token endpoint among them is Microsoft's, so there is no
/// IdP to mix a code up with. Anything else on that path is refused, and an
/// edit that would make such a share unsafe too.
#[tokio::test]
async fn entra_clients_of_one_application_may_share_a_redirect_path() {
    let app = TestApp::spawn().await;
    let path = format!("/sso/callback/{}", unique("entra"));
    let url = format!("https://app.example.com{path}");
    let tenant = |n: u8| format!("00000000-0000-0000-0000-0000000000{n:02}");
    let (vendor_app, other_app) = ("11111111-2222-3333-4444-555555555555", "99999999-8888-7777-6666-555555555555");
    let entra = |customer: &str, tenant: String, client_id: &str| {
        json!({"customer_id": customer, "redirect_url": url,
               "idp": {"type": "MicrosoftEntra", "client_id": client_id, "client_secret": "entra-secret-0123456789",
                       "tenant_id": tenant},
               "verify": false})
    };
    let (status, first) = app.post("/api/v1/oidc-clients", entra(&unique("t1"), tenant(1), vendor_app)).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, second) = app.post("/api/v1/oidc-clients", entra(&unique("t2"), tenant(2), vendor_app)).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert!(second.get("warnings").is_none(), "{second}");

    let mut refused = vec![
        ("another application", entra(&unique("t3"), tenant(3), other_app)),
        ("an Okta client", {
            let mut okta = okta_client(&unique("okta"));
            okta["redirect_url"] = json!(url);
            okta
        }),
        ("an Entra client whose issuer is not Microsoft's", {
            let mut elsewhere = entra(&unique("t4"), tenant(4), vendor_app);
            elsewhere["idp"]["issuer"] = json!("https://idp.example.com/tenant");
            elsewhere
        }),
    ];
    for (what, body) in refused.drain(..) {
        let (status, body) = app.post("/api/v1/oidc-clients", body).await;
        assert_eq!(
            (status, &body["error"]["type"]),
            (StatusCode::CONFLICT, &json!("RedirectUrlInUse")),
            "{what}: {body}"
        );
    }
    // Moving one of the pair to another application on the shared path is refused; on a path of its own it is not.
    let second_path = format!("/api/v1/oidc-clients/{}", second["oidc_client_id"].as_str().unwrap());
    let (status, body) = app.patch(&second_path, json!({"idp": {"client_id": other_app}, "verify": false})).await;
    assert_eq!((status, &body["error"]["type"]), (StatusCode::CONFLICT, &json!("RedirectUrlInUse")), "{body}");
    let own = json!({"idp": {"client_id": other_app}, "redirect_url": format!("{url}/own"), "verify": false});
    let (status, body) = app.patch(&second_path, own).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["idp"]["client_id"], other_app);
}

/// Clients that shared a path before it was required keep working and can
/// still be edited; only a change of the path is checked.
#[tokio::test]
async fn clients_that_already_share_a_path_can_still_be_edited() {
    let app = TestApp::spawn().await;
    let (a, b) = (unique("a"), unique("b"));
    let created_a = app.create_okta_client(&a).await;
    let created_b = app.create_okta_client(&b).await;
    let (a_url, b_id) = (created_a["redirect_url"].as_str().unwrap().to_string(), created_b["oidc_client_id"].clone());
    // As an older version stored them.
    let id = b_id.as_str().unwrap().to_string();
    app.state
        .store
        .write_blocking(move |c| {
            use diesel::prelude::*;
            use tandem_store::schema::oidc_clients::dsl as oc;
            diesel::update(oc::oidc_clients.filter(oc::id.eq(&id))).set(oc::redirect_url.eq(&a_url)).execute(c)?;
            Ok(())
        })
        .unwrap();
    let b_path = format!("/api/v1/oidc-clients/{}", b_id.as_str().unwrap());
    let (status, body) =
        app.patch(&b_path, json!({"scim_matching_definition": {"strategy": "OidcSubToScimExternalId"}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["redirect_url"], created_a["redirect_url"], "{body}");
}

#[tokio::test]
async fn unknown_client_id_is_client_not_found_for_every_verb() {
    let app = TestApp::spawn().await;
    for (status, body) in [
        app.get("/api/v1/oidc-clients/00000000-0000-0000-0000-000000000000").await,
        app.patch("/api/v1/oidc-clients/nope", json!({})).await,
        app.delete("/api/v1/oidc-clients/nope").await,
        app.get("/api/v1/oidc-clients/by-customer-id/nobody").await,
    ] {
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["type"], "ClientNotFound");
    }
}

#[tokio::test]
async fn client_secret_is_never_returned_nor_stored_in_clear() {
    let app = TestApp::spawn().await;
    let customer = unique("secret");
    let created = app.create_okta_client(&customer).await;
    let secret = "okta-client-secret-value-123";
    assert!(!created.to_string().contains(secret));
    let (_, listed) = app.get("/api/v1/oidc-clients").await;
    assert!(!listed.to_string().contains(secret));
    // Whatever the backend holds, the stored column is ciphertext.
    let stored = app
        .state
        .store
        .read_blocking(move |c| tandem_store::oidc_clients::get_by_customer(c, &customer))
        .unwrap()
        .unwrap();
    let enc = stored.client_secret_enc.clone().unwrap();
    assert!(enc.starts_with("v1:") && !enc.contains(secret));
    assert_eq!(stored.client_secret(&app.state.secret_key).unwrap().unwrap().0, secret);
    // And on SQLite the database file itself does not contain it.
    if postgres_url().is_none() {
        // The WAL holds the latest writes (it may have been checkpointed into the file, or not).
        let db = std::fs::read(app.dir.join("tandem.db")).unwrap();
        let wal = std::fs::read(app.dir.join("tandem.db-wal")).unwrap_or_default();
        assert!(db.len() + wal.len() > 4096, "the files hold the database");
        for (f, bytes) in [("tandem.db", db), ("tandem.db-wal", wal)] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{f} holds the secret");
        }
    }
}

#[tokio::test]
async fn deployment_default_strategy_applies_to_clients_without_their_own() {
    let dir = scratch_dir();
    let mut settings = test_settings(&dir);
    settings.matching.defaults.insert("Okta".into(), "OidcSubToScimExternalId".into());
    let app = TestApp::spawn_with(settings, dir).await;
    let created = app.create_okta_client(&unique("d")).await;
    assert_eq!(
        created["scim_matching_definition"],
        json!({"strategy": "OidcSubToScimExternalId", "source": "deployment_default"})
    );
}

#[tokio::test]
async fn discovery_failure_names_the_url_and_reason() {
    let app = TestApp::spawn().await;
    let mut body = okta_client(&unique("disc"));
    body["idp"]["issuer"] = json!("http://127.0.0.1:9");
    body["verify"] = json!(true);
    let (status, resp) = app.post("/api/v1/oidc-clients", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{resp}");
    assert_eq!(resp["error"]["type"], "IdentityProviderError");
    assert_eq!(resp["error"]["details"]["kind"], "DiscoveryFailed");
    assert_eq!(resp["error"]["details"]["url"], "http://127.0.0.1:9/.well-known/openid-configuration");
    assert!(resp["error"]["details"]["reason"].as_str().unwrap().contains("connect"));
}

/// With `oidc.block_private_addresses`, no call to an IdP reaches a private
/// or loopback address, named by its address or by a host name that
/// resolves to one; without it the same IdP is reached.
#[tokio::test]
async fn blocked_private_addresses_keep_idp_calls_off_internal_hosts() {
    let op = crate::stub_idp::StubOp::start(false).await;
    let port = op.issuer.rsplit(':').next().unwrap().to_string();
    let client = |issuer: &str| {
        let mut body = okta_client(&unique("ssrf"));
        body["idp"]["issuer"] = json!(issuer);
        body["verify"] = json!(true);
        body
    };
    let blocked = TestApp::spawn_adjusted(|s| s.oidc.block_private_addresses = true).await;
    for issuer in [op.issuer.clone(), format!("http://localhost:{port}")] {
        let (status, resp) = blocked.post("/api/v1/oidc-clients", client(&issuer)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{issuer}: {resp}");
        assert_eq!(resp["error"]["details"]["kind"], "DiscoveryFailed", "{resp}");
        let reason = resp["error"]["details"]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("oidc.block_private_addresses"), "{issuer}: {reason}");
    }
    let open = TestApp::spawn().await;
    let (status, resp) = open.post("/api/v1/oidc-clients", client(&op.issuer)).await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
}

/// An IdP whose certificate comes from a private CA is refused with the
/// TLS reason, and reached once `oidc.ca_file` names that CA.
#[tokio::test]
async fn an_idp_under_a_private_ca_is_reached_with_oidc_ca_file() {
    let idp = crate::tls_idp::TlsIdp::start();
    let client = |customer: &str| {
        let mut body = okta_client(customer);
        body["idp"]["issuer"] = json!(idp.issuer);
        body["verify"] = json!(true);
        body
    };
    let app = TestApp::spawn().await;
    let (status, resp) = app.post("/api/v1/oidc-clients", client(&unique("ca"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{resp}");
    assert_eq!(resp["error"]["details"]["kind"], "DiscoveryFailed", "{resp}");
    assert!(resp["error"]["details"]["reason"].as_str().unwrap().contains("certificate"), "{resp}");
    let app = TestApp::spawn_adjusted(|s| s.oidc.ca_file = Some(crate::tls_idp::CA_FILE.into())).await;
    let (status, resp) = app.post("/api/v1/oidc-clients", client(&unique("ca"))).await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    assert_eq!(resp["discovery"]["metadata"]["issuer"], idp.issuer, "{resp}");
}

#[tokio::test]
async fn discovery_success_reports_the_discovered_endpoints() {
    let app = TestApp::spawn().await;
    let idp = crate::stub_idp::StubOp::start(false).await;
    let mut body = okta_client(&unique("disc-ok"));
    body["idp"] = json!({"type": "Generic", "client_id": "c", "client_secret": "s", "issuer": idp.issuer});
    body["verify"] = json!(true);
    let (status, resp) = app.post("/api/v1/oidc-clients", body).await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    assert_eq!(resp["discovery"]["status"], "ok");
    assert_eq!(resp["discovery"]["metadata"]["token_endpoint"], format!("{}/token", idp.issuer));
    assert_eq!(resp["discovery"]["metadata"]["jwks_uri"], format!("{}/jwks", idp.issuer));
}

#[tokio::test]
async fn concurrent_patches_of_one_client_each_keep_their_change() {
    let app = TestApp::spawn().await;
    // Each PATCH changes a field of its own, all at once: a PATCH applied to
    // a copy another one has since replaced would undo that one's change.
    for _round in 0..4 {
        let customer = unique("busy");
        let moved_to = format!("https://app.example.com/sso/callback2/{customer}");
        let changes = [
            json!({"redirect_url": moved_to}),
            json!({"email_domain_allowlist": ["acme.com", "acme.org"]}),
            json!({"scim_matching_definition": {"strategy": "OidcSubToScimExternalId"}}),
            json!({"idp": {"client_id": "0oaSecondClientId"}}),
            json!({"idp": {"uses_pkce": false}}),
            json!({"additional_scopes": ["groups"]}),
        ];
        let created = app.create_okta_client(&customer).await;
        let path = format!("/api/v1/oidc-clients/{}", created["oidc_client_id"].as_str().unwrap());
        let mut running = tokio::task::JoinSet::new();
        for change in &changes {
            let (http, base, key, path, change) =
                (app.http.clone(), app.base.clone(), app.key.clone(), path.clone(), change.clone());
            running.spawn(async move {
                let r = http.patch(format!("{base}{path}")).bearer_auth(key).json(&change).send().await.unwrap();
                (r.status(), r.text().await.unwrap())
            });
        }
        while let Some(done) = running.join_next().await {
            let (status, body) = done.unwrap();
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let (_, got) = app.get(&path).await;
        assert_eq!(got["redirect_url"], moved_to.as_str(), "{got}");
        assert_eq!(got["email_domain_allowlist"], json!(["acme.com", "acme.org"]), "{got}");
        assert_eq!(got["scim_matching_definition"]["strategy"], "OidcSubToScimExternalId", "{got}");
        assert_eq!(got["idp"]["client_id"], "0oaSecondClientId", "{got}");
        assert_eq!(got["idp"]["uses_pkce"], false, "{got}");
        assert_eq!(got["additional_scopes"], json!(["groups"]), "{got}");
        assert_eq!(got["idp"]["has_client_secret"], true, "{got}");
    }
}

#[tokio::test]
async fn a_patch_racing_a_delete_is_applied_before_it_or_not_found_and_leaves_nothing_behind() {
    let app = TestApp::spawn().await;
    for round in 0..12 {
        let domain = format!("race{round}-{}.example", uuid::Uuid::new_v4().simple());
        let created = app.create_okta_client(&unique("race")).await;
        let path = format!("/api/v1/oidc-clients/{}", created["oidc_client_id"].as_str().unwrap());
        let patch = app.patch(&path, json!({"email_domain_allowlist": [domain]}));
        let delete = app.delete(&path);
        let ((patched, body), (deleted, _)) = tokio::join!(patch, delete);
        assert!(patched == StatusCode::OK || patched == StatusCode::NOT_FOUND, "{patched}: {body}");
        if patched == StatusCode::NOT_FOUND {
            assert_eq!(body["error"]["type"], "ClientNotFound");
        }
        assert_eq!(deleted, StatusCode::NO_CONTENT);
        let (status, _) = app.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // No client is left listing the domain.
        let (status, body) =
            app.post("/api/v1/sso/login/initiate", json!({"email": format!("someone@{domain}")})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"]["type"], "ClientNotFound");
    }
}

/// A client secret's expiry, as the admin gives it (Entra's secrets last at
/// most two years, and an expired one refuses every login), is kept through
/// other edits, warned of as it nears, and goes with the secret it belongs
/// to.
#[tokio::test]
async fn a_client_secrets_expiry_is_kept_warned_of_and_goes_with_its_secret() {
    let app = TestApp::spawn().await;
    let time = |v: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let in_days =
        |d: i64| (chrono::Utc::now() + chrono::Duration::days(d)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut body = okta_client(&unique("expiry"));
    // Computed once: two readings of the clock may fall in different seconds.
    let due = in_days(20);
    body["idp"]["client_secret_expires_at"] = json!(due);
    let (status, created) = app.post("/api/v1/oidc-clients", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let expiry = time(&created["idp"]["client_secret_expires_at"]);
    assert_eq!(expiry, chrono::DateTime::parse_from_rfc3339(&due).unwrap(), "{created}");
    assert_eq!(created["idp"]["client_secret_warning_level"], "warning");
    let path = format!("/api/v1/oidc-clients/{}", created["oidc_client_id"].as_str().unwrap());
    // Another edit keeps it; the level follows the clock.
    let (_, patched) = app.patch(&path, json!({"additional_scopes": ["groups"]})).await;
    assert_eq!(time(&patched["idp"]["client_secret_expires_at"]), expiry);
    app.clock.advance(chrono::Duration::days(14));
    let (_, fetched) = app.get(&path).await;
    assert_eq!(fetched["idp"]["client_secret_warning_level"], "critical");
    // A new secret without an expiry: the old secret's expiry goes.
    let (_, patched) = app.patch(&path, json!({"idp": {"client_secret": "a-new-okta-secret-0123456789"}})).await;
    assert_eq!(patched["idp"]["client_secret_expires_at"], serde_json::Value::Null, "{patched}");
    assert_eq!(patched["idp"]["client_secret_warning_level"], serde_json::Value::Null);
    // With one, it is set; null clears it.
    let later = in_days(700);
    let (_, patched) = app
        .patch(
            &path,
            json!({"idp": {"client_secret": "another-okta-secret-0123456789", "client_secret_expires_at": later}}),
        )
        .await;
    assert_eq!(patched["idp"]["client_secret_warning_level"], "ok", "{patched}");
    // The same secret sent again (a caller that sends the whole idp on every save) keeps it.
    let (_, patched) = app.patch(&path, json!({"idp": {"client_secret": "another-okta-secret-0123456789"}})).await;
    assert_eq!(patched["idp"]["client_secret_warning_level"], "ok", "{patched}");
    let (_, patched) = app.patch(&path, json!({"idp": {"client_secret_expires_at": null}})).await;
    assert_eq!(patched["idp"]["client_secret_expires_at"], serde_json::Value::Null, "{patched}");
    // A value that is no time, or an expiry for a client without a secret, is refused.
    for far in ["9999-12-31T23:59:59-01:00", "1999-12-31T00:00:00Z"] {
        let (status, body) = app.patch(&path, json!({"idp": {"client_secret_expires_at": far}})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{far}: {body}");
    }
    let (status, body) = app.patch(&path, json!({"idp": {"client_secret_expires_at": "in two years"}})).await;
    assert_eq!(
        (status, invalid_fields(&body)),
        (StatusCode::BAD_REQUEST, vec!["idp.client_secret_expires_at".to_string()])
    );
    let mut public = okta_client(&unique("public"));
    public["idp"].as_object_mut().unwrap().remove("client_secret");
    public["idp"]["client_secret_expires_at"] = json!(later);
    let (status, body) = app.post("/api/v1/oidc-clients", public).await;
    assert_eq!(
        (status, invalid_fields(&body)),
        (StatusCode::BAD_REQUEST, vec!["idp.client_secret_expires_at".to_string()])
    );
}

/// A stored client secret that cannot be decrypted (a damaged row) does not
/// make the client uneditable: a PATCH that brings a new secret replaces
/// it, and one that does not is told to.
#[tokio::test]
async fn a_client_whose_stored_secret_cannot_be_read_takes_a_new_one() {
    let app = TestApp::spawn().await;
    let customer = unique("damaged");
    let created = app.create_okta_client(&customer).await;
    let id = created["oidc_client_id"].as_str().unwrap().to_string();
    damage_client_secret(&app, &customer);
    let path = format!("/api/v1/oidc-clients/{id}");
    let (status, body) = app.patch(&path, json!({"additional_scopes": ["groups"]})).await;
    assert_eq!((status, invalid_fields(&body)), (StatusCode::BAD_REQUEST, vec!["idp.client_secret".to_string()]));
    assert!(body["error"]["message"].as_str().unwrap().contains("cannot be decrypted"), "{body}");
    let (status, body) = app.patch(&path, json!({"idp": {"client_secret": "a-fresh-okta-secret-0123456789"}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.patch(&path, json!({"additional_scopes": ["groups"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
