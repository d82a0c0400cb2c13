//! Driving logins from tests: start one, sign its ID token at the stub IdP,
//! complete it as the app would.

use crate::helpers::*;
use crate::stub_idp::{Signer, StubOp};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A started login as the app sees it.
pub struct Started {
    pub state: String,
    pub nonce: String,
    pub cookie: String,
    pub idp_url: url::Url,
}

impl Started {
    /// The callback the IdP would send the browser to: the client's redirect path with `query`.
    pub fn callback(&self, query: &str) -> String {
        let redirect = self.idp_url.query_pairs().find(|(k, _)| k == "redirect_uri").map(|(_, v)| v.to_string());
        let path = url::Url::parse(&redirect.expect("redirect_uri")).expect("redirect_uri").path().to_string();
        format!("{path}?{query}")
    }
}

/// The redirect URL of `customer`'s client: a path of its own, as Tandem requires.
pub fn redirect_url_of(customer: &str) -> String {
    format!("http://127.0.0.1:9/sso/callback/{customer}")
}

/// Creates a client at the stub OP for `customer` (`idp.type` given, issuer overridden to the stub).
pub async fn stub_client(app: &TestApp, op: &StubOp, customer: &str, idp_type: &str, strategy: Option<&str>) -> Value {
    let mut body = json!({
        "customer_id": customer,
        "idp": {"type": idp_type, "client_id": "tandem-client", "client_secret": STUB_CLIENT_SECRET, "issuer": op.issuer,
                "tenant_id": "11111111-2222-3333-4444-555555555555", "sso_domain": "acme.okta.com"},
        "redirect_url": redirect_url_of(customer),
    });
    if let Some(s) = strategy {
        body["scim_matching_definition"] = json!({"strategy": s});
    }
    let (status, created) = app.post("/api/v1/oidc-clients", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

/// Starts a login for `customer`.
pub async fn start(app: &TestApp, customer: &str) -> Started {
    let (status, body) = app.post("/api/v1/sso/login/initiate", json!({"customer_id": customer})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    started(&body)
}

/// Asks to start a login for `customer` that comes back to `next`.
pub async fn initiate_to(app: &TestApp, customer: &str, next: &str) -> (StatusCode, Value) {
    app.post("/api/v1/sso/login/initiate", json!({"customer_id": customer, "post_login_redirect_url": next})).await
}

/// The login an initiate's answer started, as the app sees it.
pub fn started(body: &Value) -> Started {
    let idp_url = url::Url::parse(body["idp_url"].as_str().unwrap()).unwrap();
    let param = |k: &str| idp_url.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.to_string()).unwrap();
    Started {
        state: param("state"),
        nonce: param("nonce"),
        cookie: body["state_for_cookie"].as_str().unwrap().to_string(),
        idp_url: idp_url.clone(),
    }
}

/// Valid ID-token claims for a login at `op`.
pub fn claims(op: &StubOp, started: &Started, extra: Value) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut c = json!({
        "iss": op.issuer, "aud": "tandem-client", "sub": "00u1abcdEFGH", "exp": now + 300, "iat": now,
        "nonce": started.nonce, "email": "alice@acme.com", "email_verified": true, "preferred_username": "alice@acme.com",
        "given_name": "Alice", "family_name": "Example",
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// Completes a login with `code` as the app would: the IdP's callback and the app's cookie.
pub async fn complete(app: &TestApp, op: &StubOp, started: &Started, code: &str) -> (StatusCode, Value) {
    let callback = started.callback(&format!(
        "code={code}&state={}&iss={}",
        started.state,
        url::form_urlencoded::byte_serialize(op.issuer.as_bytes()).collect::<String>()
    ));
    complete_raw(app, &started.cookie, &callback).await
}

/// Completes with an explicit cookie and callback.
pub async fn complete_raw(app: &TestApp, cookie: &str, callback: &str) -> (StatusCode, Value) {
    app.post("/api/v1/sso/login/complete", json!({"state_from_cookie": cookie, "callback_path_and_query": callback}))
        .await
}

/// A whole login with a token signed over `claims(extra)`.
pub async fn login(app: &TestApp, op: &StubOp, customer: &str, extra: Value) -> (StatusCode, Value) {
    login_signed(app, op, customer, extra, |c| op.sign(c, Signer::Published, "test-key-a")).await
}

/// A whole login whose token `sign` makes of `claims(extra)`.
pub async fn login_signed(
    app: &TestApp,
    op: &StubOp,
    customer: &str,
    extra: Value,
    sign: impl FnOnce(&Value) -> String,
) -> (StatusCode, Value) {
    let started = start(app, customer).await;
    let code = unique("code");
    op.issue(&code, sign(&claims(op, &started, extra)));
    complete(app, op, &started, &code).await
}

/// The client secret [`stub_client`] gives its clients.
pub const STUB_CLIENT_SECRET: &str = "s3cret-at-the-idp-0123456789abcdef";

/// A login event's step named `name`, if it reached it.
pub fn step_of(event: &Value, name: &str) -> Option<Value> {
    event["steps"].as_array()?.iter().find(|s| s["step"] == name).cloned()
}

/// The error type and details of a failed login.
pub fn error_of(body: &Value) -> (&str, &Value) {
    (body["error"]["type"].as_str().unwrap_or("<none>"), &body["error"]["details"])
}
