//! No route of the management API is reachable without a valid integration key.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/oidc-clients"),
    ("GET", "/api/v1/oidc-clients"),
    ("GET", "/api/v1/oidc-clients/x"),
    ("GET", "/api/v1/oidc-clients/by-customer-id/x"),
    ("PATCH", "/api/v1/oidc-clients/x"),
    ("DELETE", "/api/v1/oidc-clients/x"),
    ("POST", "/api/v1/scim-connections"),
    ("GET", "/api/v1/scim-connections"),
    ("GET", "/api/v1/scim-connections/x"),
    ("GET", "/api/v1/scim-connections/by-customer-id/x"),
    ("PATCH", "/api/v1/scim-connections/x"),
    ("DELETE", "/api/v1/scim-connections/x"),
    ("POST", "/api/v1/scim-connections/x/rotate-key"),
    ("POST", "/api/v1/oidc-clients/x/rotate-client-key"),
    ("DELETE", "/api/v1/oidc-clients/x/previous-client-key"),
    ("POST", "/api/v1/sso/login/initiate"),
    ("POST", "/api/v1/sso/login/complete"),
    ("GET", "/api/v1/scim-connections/x/users"),
    ("GET", "/api/v1/scim-connections/x/users/x"),
    ("GET", "/api/v1/scim-connections/x/groups"),
    ("GET", "/api/v1/scim-connections/x/groups/x"),
    ("GET", "/api/v1/provisioning-logs"),
    ("GET", "/api/v1/oidc-clients/x/scim-matching"),
    ("GET", "/api/v1/login-events"),
    ("GET", "/api/v1/login-events/x"),
    ("GET", "/api/v1/audit-events"),
    ("GET", "/api/v1/events"),
    ("GET", "/api/v1/events/cursor"),
    ("POST", "/api/v1/webhook-endpoints"),
    ("GET", "/api/v1/webhook-endpoints"),
    ("GET", "/api/v1/webhook-endpoints/x"),
    ("DELETE", "/api/v1/webhook-endpoints/x"),
    ("POST", "/api/v1/webhook-endpoints/x/rotate-secret"),
    ("POST", "/api/v1/setup-links"),
    ("GET", "/api/v1/setup-links"),
    ("GET", "/api/v1/setup-links/x"),
    ("DELETE", "/api/v1/setup-links/x"),
];

/// Every path the management API registers is in [`ROUTES`]: a route added
/// later is probed too, not left out of the list by oversight.
#[test]
fn the_probed_routes_are_every_route_the_api_registers() {
    let source = include_str!("../../crates/tandem-web/src/api/mod.rs");
    let routes_fn = &source[source.find("pub fn routes").unwrap()..source.find("fn only(").unwrap()];
    let registered: Vec<String> = routes_fn
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|lit| lit.starts_with('/'))
        .map(|path| {
            let segments: Vec<&str> = path.split('/').map(|seg| if seg.starts_with('{') { "x" } else { seg }).collect();
            format!("/api/v1{}", segments.join("/"))
        })
        .collect();
    assert_eq!(registered.len(), 27, "{registered:#?}");
    for path in &registered {
        assert!(ROUTES.iter().any(|(_, p)| p == path), "{path} is registered but not probed");
    }
    for (method, path) in ROUTES {
        assert!(registered.contains(&path.to_string()), "{method} {path} is probed but not registered");
    }
}

#[tokio::test]
async fn every_management_route_refuses_a_missing_key() {
    let app = TestApp::spawn().await;
    for (method, path) in ROUTES {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, body) = app.call_with(m, path, Some(json!({})), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        assert_eq!(body["error"]["type"], "MissingIntegrationKey", "{method} {path}");
    }
}

#[tokio::test]
async fn every_management_route_refuses_an_unknown_key() {
    let app = TestApp::spawn().await;
    for (method, path) in ROUTES {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, body) = app.call_with(m, path, Some(json!({})), Some("tandem_ik_not-a-real-key")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        assert_eq!(body["error"]["type"], "InvalidIntegrationKey");
    }
}

#[tokio::test]
async fn a_scim_key_is_not_an_integration_key() {
    let app = TestApp::spawn().await;
    let conn = app.create_scim_connection(&unique("acme")).await;
    let scim_key = conn["scim_api_key"].as_str().unwrap();
    let (status, _) = app.call_with(Method::GET, "/api/v1/oidc-clients", None, Some(scim_key)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_revoked_key_is_refused() {
    let app = TestApp::spawn().await;
    // The key cache's TTL is Tandem's clock's: stopped, it ends only when
    // advanced, however slowly the requests before run.
    app.clock.freeze();
    let (status, _) = app.get("/api/v1/oidc-clients").await;
    assert_eq!(status, StatusCode::OK);
    let key = app.key.clone();
    app.state
        .store
        .write_blocking(move |c| {
            let hash = tandem_core::keys::hash_key(&key);
            let all = tandem_store::integration_keys::list(c)?;
            let mine = all.into_iter().find(|k| k.key_hash == hash).unwrap();
            tandem_store::integration_keys::revoke(c, &mine.id, chrono::Utc::now())
        })
        .unwrap();
    // Revoked elsewhere (the CLI): a node that checked it moments ago still
    // trusts it until the key cache's TTL ends, then refuses it.
    let (status, _) = app.get("/api/v1/oidc-clients").await;
    assert_eq!(status, StatusCode::OK);
    app.clock.advance(chrono::Duration::seconds(tandem_web::keycache::TTL_SECS));
    let (status, body) = app.get("/api/v1/oidc-clients").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["type"], "InvalidIntegrationKey");
}

#[tokio::test]
async fn a_basic_authorization_header_is_refused_with_a_reason() {
    let app = TestApp::spawn().await;
    let resp = app
        .http
        .get(format!("{}/api/v1/oidc-clients", app.base))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("Bearer"));
}

#[tokio::test]
async fn a_keys_use_is_recorded_at_most_once_a_minute() {
    let app = TestApp::spawn().await;
    // The minute is Tandem's clock's: stopped, it passes only when advanced,
    // however slowly the requests run.
    app.clock.freeze();
    let hash = tandem_core::keys::hash_key(&app.key);
    let last_used = || {
        let hash = hash.clone();
        app.state
            .store
            .read_blocking(tandem_store::integration_keys::list)
            .unwrap()
            .into_iter()
            .find(|k| k.key_hash == hash)
            .unwrap()
            .last_used_at
    };
    let (status, _) = app.get("/api/v1/oidc-clients").await;
    assert_eq!(status, StatusCode::OK);
    let first = last_used().expect("the key's first use is recorded");
    // A minute's uses after it leave it as it is; the cache would hide them
    // anyway, so the key is checked against the database each time.
    for _ in 0..3 {
        app.clock.advance(chrono::Duration::seconds(tandem_web::keycache::TTL_SECS + 1));
        let (status, _) = app.get("/api/v1/oidc-clients").await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(last_used(), Some(first));
    app.clock.advance(chrono::Duration::seconds(tandem_web::keycache::TTL_SECS * 4));
    let (status, _) = app.get("/api/v1/oidc-clients").await;
    assert_eq!(status, StatusCode::OK);
    let later = last_used().unwrap();
    assert!(later > first + 60_000_000, "{later} {first}");
}
