//! End to end against a real OpenID Provider (npm `oidc-provider`, in
//! tests/idp, on loopback): Tandem's login with discovery, PKCE, RFC 9207
//! `iss`, the code exchange and RS256 validation, joined to users
//! provisioned through Tandem's own SCIM API. The IdP's redirects are
//! followed over plain HTTP with its cookies (the browser variant is
//! `.ci/browser-login`).

use crate::helpers::*;
use crate::login_support::redirect_url_of;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

static INSTALL: Mutex<bool> = Mutex::new(false);

fn idp_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/idp")
}

/// Installs the IdP's npm packages once (the registry is reachable wherever tests run).
fn ensure_installed() {
    let mut done = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    if *done || idp_dir().join("node_modules/oidc-provider").exists() {
        *done = true;
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-fund", "--no-audit"])
        .current_dir(idp_dir())
        .status()
        .expect("npm must be installed to run the real-IdP tests");
    assert!(status.success(), "npm ci in tests/idp failed");
    *done = true;
}

/// A running oidc-provider, stopped on drop.
struct RealIdp {
    child: Child,
    issuer: String,
}

impl Drop for RealIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_idp(redirect_uri: &str) -> RealIdp {
    start_idp_with(redirect_uri, 0, &[])
}

/// Starts the IdP on `port` (0: any) with these extra environment variables.
fn start_idp_with(redirect_uri: &str, port: u16, env: &[(&str, &str)]) -> RealIdp {
    ensure_installed();
    let mut child = Command::new("node")
        .arg("oidc-idp.mjs")
        .current_dir(idp_dir())
        .env("PORT", port.to_string())
        .envs(env.iter().copied())
        .env("CLIENT_ID", "tandem-e2e")
        .env("CLIENT_SECRET", "tandem-e2e-secret")
        .env("REDIRECT_URIS", redirect_uri)
        .env("AUTO_LOGIN", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node must be installed to run the real-IdP tests");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let issuer =
        line.trim().strip_prefix("READY ").unwrap_or_else(|| panic!("IdP did not start: {line:?}")).to_string();
    RealIdp { child, issuer }
}

/// Follows the IdP's redirects from `idp_url` until it sends the browser to
/// `redirect_uri`; returns that callback's path and query.
async fn browse_to_callback(idp_url: &str, redirect_uri: &str) -> String {
    let http = crate::helpers::test_client();
    let mut cookies: Vec<(String, String)> = Vec::new();
    let mut url = url::Url::parse(idp_url).unwrap();
    for _ in 0..10 {
        let jar = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let resp = http.get(url.clone()).header("cookie", jar).send().await.unwrap();
        for sc in resp.headers().get_all("set-cookie") {
            let pair = sc.to_str().unwrap().split(';').next().unwrap().to_string();
            if let Some((k, v)) = pair.split_once('=') {
                cookies.retain(|(n, _)| n != k);
                cookies.push((k.to_string(), v.to_string()));
            }
        }
        assert!(resp.status().is_redirection(), "the IdP answered {} at {url}", resp.status());
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        let next = url.join(&location).unwrap();
        if next.as_str().starts_with(redirect_uri) {
            return format!("{}?{}", next.path(), next.query().unwrap_or(""));
        }
        url = next;
    }
    panic!("the IdP never redirected back to {redirect_uri}");
}

async fn sign_in(app: &TestApp, email: &str, redirect_uri: &str) -> (StatusCode, Value) {
    sign_in_with(app, json!({"email": email, "post_login_redirect_url": "/home"}), redirect_uri).await
}

/// Signs in with this initiate body.
async fn sign_in_with(app: &TestApp, initiate: Value, redirect_uri: &str) -> (StatusCode, Value) {
    let (status, started) = app.post("/api/v1/sso/login/initiate", initiate).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let callback = browse_to_callback(started["idp_url"].as_str().unwrap(), redirect_uri).await;
    app.post(
        "/api/v1/sso/login/complete",
        json!({"state_from_cookie": started["state_for_cookie"], "callback_path_and_query": callback}),
    )
    .await
}

#[tokio::test]
async fn real_idp_provisioned_deactivated_unprovisioned_and_reactivated_users() {
    let app = TestApp::spawn().await;
    let customer = unique("real");
    let redirect_uri = &redirect_url_of(&customer);
    let idp = start_idp(redirect_uri);
    // A domain of this test's own: on a shared database other tests' clients exist too.
    let domain = format!("{}.example", unique("e2e"));
    let (status, client) = app
        .post("/api/v1/oidc-clients", json!({"customer_id": customer,
            "idp": {"type": "Generic", "client_id": "tandem-e2e", "client_secret": "tandem-e2e-secret", "issuer": idp.issuer, "uses_pkce": true},
            "redirect_url": redirect_uri, "email_domain_allowlist": [domain]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    assert_eq!(client["discovery"]["metadata"]["authorization_response_iss_parameter_supported"], true);
    let conn = app.create_scim_connection(&customer).await;
    let scim = app.scim_of(&conn);
    let alice = scim.create_user(user(&format!("alice@{domain}"))).await;
    scim.post("/Groups", json!({"displayName": "Engineering", "members": [{"value": alice}]})).await;

    // Alice, provisioned and active, signs in and gets her SCIM user and groups.
    let (status, body) = sign_in(&app, &format!("alice@{domain}"), redirect_uri).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], format!("alice@{domain}"));
    assert_eq!(body["email_verified"], true);
    assert_eq!(body["scim_user"]["id"], alice);
    assert_eq!(body["scim_user"]["groups"][0]["display"], "Engineering");
    assert_eq!(body["post_login_redirect_url"], "/home");

    // Deactivated over SCIM: refused.
    scim.patch(&format!("/Users/{alice}"), patch_op(json!([{"op": "replace", "path": "active", "value": false}])))
        .await;
    let (status, body) = sign_in(&app, &format!("alice@{domain}"), redirect_uri).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["type"], "ScimUserNotActive");
    assert_eq!(body["error"]["details"]["reason"], "deactivated");

    // Bob was never provisioned.
    let (status, body) = sign_in(&app, &format!("bob@{domain}"), redirect_uri).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["details"]["reason"], "not_provisioned");

    // Reactivated: Alice signs in again.
    scim.patch(&format!("/Users/{alice}"), patch_op(json!([{"op": "replace", "path": "active", "value": true}]))).await;
    let (status, body) = sign_in(&app, &format!("alice@{domain}"), redirect_uri).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scim_user"]["active"], true);

    // A step-up: max_age 0 makes the IdP sign the user in again (its
    // session from the sign-ins above notwithstanding), and it sends the
    // fresh auth_time, which Tandem checks and reports.
    let before = chrono::Utc::now().timestamp();
    let (status, body) =
        sign_in_with(&app, json!({"email": format!("alice@{domain}"), "max_age": 0}), redirect_uri).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["step_up"]["auth_time"].as_i64().is_some_and(|t| t >= before - 1), "{body}");
    assert_eq!(body["step_up"]["max_age"], 0, "{body}");
    drop(idp);
}

/// A private_key_jwt client at a real OpenID Provider, registered with the
/// URL of Tandem's JWK Set for it (as Okta's "Use a URL to fetch keys
/// dynamically"): the IdP verifies Tandem's assertion with the key it
/// fetched, and the login completes. After a rotation the IdP, keeping the
/// key set it fetched for as long as its Cache-Control says, refuses the
/// new key, and the previous one signs in within its grace.
#[tokio::test]
async fn real_idp_private_key_jwt_login_with_keys_fetched_from_tandem() {
    let app = TestApp::spawn().await;
    let customer = unique("real-pkjwt");
    let redirect_uri = &redirect_url_of(&customer);
    // The client is made first (its JWK Set URL names it), so the IdP's
    // port is chosen before the IdP starts.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let issuer = format!("http://127.0.0.1:{port}");
    let domain = format!("{}.example", unique("pkjwt"));
    let (status, client) = app
        .post(
            "/api/v1/oidc-clients",
            json!({"customer_id": customer,
            "idp": {"type": "Generic", "client_id": "tandem-e2e", "issuer": issuer, "uses_pkce": true,
                    "client_authentication": "private_key_jwt"},
            "redirect_url": redirect_uri, "email_domain_allowlist": [domain], "verify": false}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    let jwks_url = client["idp"]["jwks_url"].as_str().unwrap().to_string();
    let idp = start_idp_with(redirect_uri, port, &[("CLIENT_JWKS_URI", &jwks_url)]);
    assert_eq!(idp.issuer, issuer);
    let conn = app.create_scim_connection(&customer).await;
    let alice = app.scim_of(&conn).create_user(user(&format!("alice@{domain}"))).await;

    let (status, body) = sign_in(&app, &format!("alice@{domain}"), redirect_uri).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scim_user"]["id"], alice);
    let (_, event) = app.get(&format!("/api/v1/login-events/{}", body["login_event_id"].as_str().unwrap())).await;
    let step = crate::login_support::step_of(&event, "token_exchange").unwrap();
    assert_eq!(step["detail"]["client_auth"], "private_key_jwt", "{event}");

    // Rotated: the IdP keeps the JWK Set it fetched for as long as its
    // Cache-Control allows (five minutes), so it does not know the new key
    // yet; the previous one, kept for the grace period, signs in.
    let id = client["oidc_client_id"].as_str().unwrap();
    let (status, rotated) = app.post(&format!("/api/v1/oidc-clients/{id}/rotate-client-key"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let (status, body) = sign_in(&app, &format!("alice@{domain}"), redirect_uri).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, event) = app.get(&format!("/api/v1/login-events/{}", body["login_event_id"].as_str().unwrap())).await;
    let step = crate::login_support::step_of(&event, "token_exchange").unwrap();
    assert_eq!(step["detail"]["client_auth"], "private_key_jwt (previous key)", "{event}");
    // An assertion naming the issuer as its audience (RFC 7523's identity
    // of the authorization server) is taken too.
    let (status, patched) =
        app.patch(&format!("/api/v1/oidc-clients/{id}"), json!({"idp": {"client_assertion_audience": "issuer"}})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let (status, body) = sign_in(&app, &format!("alice@{domain}"), redirect_uri).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    drop(idp);
}
