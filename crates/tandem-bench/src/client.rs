//! The calls the benchmark makes, as an app and as an IdP would make them:
//! setup through the management API, SCIM users and groups, and whole
//! logins through the stub IdP. Each call checks its answer.

use anyhow::{anyhow, bail, Context};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// The email domain of a run's users: unique per run, so several runs against one
/// server each find their own client by domain (home-realm discovery).
pub fn email_domain(run_id: &str) -> String {
    format!("{run_id}.acme.com")
}
const SCIM_JSON: &str = "application/scim+json";

/// How long an idle pooled connection is reused: under the servers' own
/// keep-alive (actix's default is 5 s), or a request sent as the server
/// closes an idle connection fails with "connection closed before message
/// completed" (seen after a sequential phase of ~5 s left the concurrent
/// phase's connections idle).
const POOL_IDLE: Duration = Duration::from_secs(2);

/// An HTTP client for loopback load: keep-alive, no redirects, bounded waits.
pub fn http_client(concurrency: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(concurrency.max(8) * 2)
        .pool_idle_timeout(POOL_IDLE)
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()?)
}

fn snippet(body: &str) -> String {
    body.chars().take(300).collect()
}

async fn send(req: reqwest::RequestBuilder, what: &str) -> anyhow::Result<(StatusCode, String)> {
    let resp = req.send().await.with_context(|| format!("{what}: request failed"))?;
    let status = resp.status();
    let text = resp.text().await.with_context(|| format!("{what}: reading the body"))?;
    Ok((status, text))
}

fn expect_json(status: StatusCode, body: &str, want: &[StatusCode], what: &str) -> anyhow::Result<Value> {
    if !want.contains(&status) {
        bail!("{what}: HTTP {status}: {}", snippet(body));
    }
    serde_json::from_str(body).with_context(|| format!("{what}: not JSON: {}", snippet(body)))
}

/// The management and login APIs, with the integration key.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
}

/// A SCIM connection's endpoint and key.
#[derive(Clone)]
pub struct Scim {
    pub http: reqwest::Client,
    pub base_url: String,
    /// `Bearer <key>`, built once (marked sensitive).
    auth: HeaderValue,
    /// `<base_url>/Users`, parsed once.
    users_url: reqwest::Url,
}

/// A `userName eq` lookup, its URL built before the phase starts (the
/// driver shares the machine's cores with the server: parsing and encoding
/// the URL per request cost it ~5 % of its CPU).
pub struct Lookup {
    url: reqwest::Url,
    user_name: String,
}

/// A lookup's answer must be 200 with exactly the user looked up.
fn check_lookup(status: StatusCode, body: &[u8], user_name: &str) -> anyhow::Result<()> {
    let what = "GET /Users?filter";
    let text = || snippet(&String::from_utf8_lossy(body));
    if status != StatusCode::OK {
        bail!("{what}: HTTP {status}: {}", text());
    }
    let list: Listed =
        serde_json::from_slice(body).with_context(|| format!("{what}: not a ListResponse: {}", text()))?;
    if list.total != 1 || list.resources.first().map(|r| r.user_name.as_str()) != Some(user_name) {
        bail!("{what} for {user_name}: expected exactly that user, got {}", text());
    }
    Ok(())
}

/// `/healthz` must answer 200 with `{"status":"ok"}`.
fn check_health(status: StatusCode, body: &[u8]) -> anyhow::Result<()> {
    #[derive(serde::Deserialize)]
    struct Health {
        status: String,
    }
    let health: Option<Health> = serde_json::from_slice(body).ok();
    if status != StatusCode::OK || health.is_none_or(|h| h.status != "ok") {
        bail!("GET /healthz: HTTP {status}: {}", snippet(&String::from_utf8_lossy(body)));
    }
    Ok(())
}

/// The part of a ListResponse a lookup checks; the rest is skipped unparsed.
#[derive(serde::Deserialize)]
struct Listed {
    #[serde(rename = "totalResults")]
    total: u64,
    #[serde(rename = "Resources", default)]
    resources: Vec<Named>,
}

#[derive(serde::Deserialize)]
struct Named {
    #[serde(rename = "userName")]
    user_name: String,
}

impl Api {
    /// `GET /healthz`: the cheapest answer the server gives, so its CPU per
    /// request is the HTTP and loopback floor under every other phase.
    pub async fn healthz(&self) -> anyhow::Result<()> {
        let what = "GET /healthz";
        let resp = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .with_context(|| format!("{what}: request failed"))?;
        let status = resp.status();
        let body = resp.bytes().await.with_context(|| format!("{what}: reading the body"))?;
        check_health(status, &body)
    }

    async fn post(&self, path: &str, body: &Value, want: StatusCode, what: &str) -> anyhow::Result<Value> {
        let req = self.http.request(Method::POST, format!("{}{path}", self.base)).bearer_auth(&self.key).json(body);
        let (status, text) = send(req, what).await?;
        expect_json(status, &text, &[want], what)
    }

    /// Registers the stub IdP for `customer` (Generic, PKCE, email → userName, the run's
    /// email domain allowed), with `client_secret` or, without one, as a
    /// `private_key_jwt` client; returns the created client.
    pub async fn create_oidc_client(
        &self,
        customer: &str,
        domain: &str,
        issuer: &str,
        client_id: &str,
        client_secret: Option<&str>,
    ) -> anyhow::Result<serde_json::Value> {
        let idp = match client_secret {
            Some(secret) => json!({"type": "Generic", "issuer": issuer, "client_id": client_id,
                                   "client_secret": secret, "uses_pkce": true}),
            None => json!({"type": "Generic", "issuer": issuer, "client_id": client_id,
                           "client_authentication": "private_key_jwt", "uses_pkce": true}),
        };
        let body = json!({
            "customer_id": customer,
            "idp": idp,
            // A path of its own: Tandem refuses a redirect path another client has.
            "redirect_url": format!("http://127.0.0.1:9/sso/callback/{customer}"),
            "scim_matching_definition": {"strategy": "OidcEmailToScimUsername"},
            "email_domain_allowlist": [domain],
        });
        let created =
            self.post("/api/v1/oidc-clients", &body, StatusCode::CREATED, "POST /api/v1/oidc-clients").await?;
        if !created["oidc_client_id"].is_string() {
            return Err(anyhow!("no oidc_client_id in {created}"));
        }
        Ok(created)
    }

    /// Creates the SCIM connection for `customer`.
    pub async fn create_scim_connection(&self, customer: &str) -> anyhow::Result<Scim> {
        let body = json!({"customer_id": customer, "api_key_ttl_days": null});
        let created =
            self.post("/api/v1/scim-connections", &body, StatusCode::CREATED, "POST /api/v1/scim-connections").await?;
        let field = |k: &str| created[k].as_str().map(str::to_string).ok_or_else(|| anyhow!("no {k} in {created}"));
        Scim::new(self.http.clone(), field("scim_base_url")?, field("scim_api_key")?)
    }

    /// One whole login of `email`: initiate → the IdP's authorize → complete.
    /// Succeeds when Tandem answers 200 with the joined SCIM user.
    pub async fn login(&self, email: &str) -> anyhow::Result<()> {
        let started =
            self.post("/api/v1/sso/login/initiate", &json!({"email": email}), StatusCode::OK, "initiate").await?;
        let (Some(idp_url), Some(cookie)) = (started["idp_url"].as_str(), started["state_for_cookie"].as_str()) else {
            bail!("initiate: no idp_url or state_for_cookie in {started}");
        };
        let resp = self.http.get(idp_url).send().await.context("IdP authorize: request failed")?;
        if resp.status() != StatusCode::FOUND {
            bail!("IdP authorize: HTTP {} (expected 302)", resp.status());
        }
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| anyhow!("IdP authorize: no Location"))?;
        let callback = url::Url::parse(location).context("IdP authorize: Location is not a URL")?;
        let path_and_query = format!("{}?{}", callback.path(), callback.query().unwrap_or(""));
        let done = self
            .post(
                "/api/v1/sso/login/complete",
                &json!({"state_from_cookie": cookie, "callback_path_and_query": path_and_query}),
                StatusCode::OK,
                "complete",
            )
            .await?;
        if !done["scim_user"]["id"].is_string() {
            bail!("complete: no scim_user.id in {}", snippet(&done.to_string()));
        }
        if !done["email"].as_str().is_some_and(|e| e.eq_ignore_ascii_case(email)) {
            bail!("complete: signed in as {} instead of {email}", done["email"]);
        }
        Ok(())
    }
}

/// The email of benchmark user `i` in run `run_id`.
pub fn user_email(run_id: &str, i: usize) -> String {
    format!("user{i}@{}", email_domain(run_id))
}

/// An Okta-style create body for user `i`: userName is the primary email.
pub fn user_body(run_id: &str, i: usize) -> Value {
    let email = user_email(run_id, i);
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": email,
        "externalId": format!("ext-{run_id}-{i}"),
        "name": {"givenName": format!("Given{i}"), "familyName": format!("Family{i}")},
        "displayName": format!("Given{i} Family{i}"),
        "emails": [{"primary": true, "value": email, "type": "work"}],
        "locale": "en-US",
        "active": true,
    })
}

/// An Entra-style membership PATCH: add or remove one member.
pub fn membership_patch(add: bool, user_id: &str) -> Value {
    let op = if add {
        json!({"op": "Add", "path": "members", "value": [{"value": user_id}]})
    } else {
        json!({"op": "Remove", "path": format!("members[value eq \"{user_id}\"]")})
    };
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [op]})
}

impl Scim {
    pub fn new(http: reqwest::Client, base_url: String, key: String) -> anyhow::Result<Scim> {
        let mut auth = HeaderValue::from_str(&format!("Bearer {key}")).context("the SCIM key is not a header value")?;
        auth.set_sensitive(true);
        let users_url = reqwest::Url::parse(&format!("{base_url}/Users")).context("the SCIM base URL is not a URL")?;
        Ok(Scim { http, base_url, auth, users_url })
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base_url))
            .header(AUTHORIZATION, self.auth.clone())
            .header(ACCEPT, SCIM_JSON)
    }

    fn with_body(&self, method: Method, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.request(method, path).header(reqwest::header::CONTENT_TYPE, SCIM_JSON).body(body.to_string())
    }

    /// `POST /Users`; returns the new user's id.
    pub async fn create_user(&self, body: &Value) -> anyhow::Result<String> {
        let (status, text) = send(self.with_body(Method::POST, "/Users", body), "POST /Users").await?;
        let created = expect_json(status, &text, &[StatusCode::CREATED], "POST /Users")?;
        created["id"].as_str().map(str::to_string).ok_or_else(|| anyhow!("POST /Users: no id"))
    }

    /// The lookup of `user_name`, ready to send.
    pub fn lookup(&self, user_name: &str) -> Lookup {
        let mut url = self.users_url.clone();
        url.query_pairs_mut().append_pair("filter", &format!("userName eq \"{user_name}\""));
        Lookup { url, user_name: user_name.to_string() }
    }

    /// `GET /Users?filter=userName eq "…"`; exactly that user expected.
    pub async fn find_user(&self, lookup: &Lookup) -> anyhow::Result<()> {
        let what = "GET /Users?filter";
        let req = self.http.get(lookup.url.clone()).header(AUTHORIZATION, self.auth.clone()).header(ACCEPT, SCIM_JSON);
        let resp = req.send().await.with_context(|| format!("{what}: request failed"))?;
        let status = resp.status();
        let body = resp.bytes().await.with_context(|| format!("{what}: reading the body"))?;
        check_lookup(status, &body, &lookup.user_name)
    }

    /// `POST /Groups`; returns the new group's id.
    pub async fn create_group(&self, name: &str) -> anyhow::Result<String> {
        let body =
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": []});
        let (status, text) = send(self.with_body(Method::POST, "/Groups", &body), "POST /Groups").await?;
        let created = expect_json(status, &text, &[StatusCode::CREATED], "POST /Groups")?;
        created["id"].as_str().map(str::to_string).ok_or_else(|| anyhow!("POST /Groups: no id"))
    }

    /// `PATCH /Groups/{id}` adding or removing one member.
    pub async fn patch_membership(&self, group_id: &str, user_id: &str, add: bool) -> anyhow::Result<()> {
        let body = membership_patch(add, user_id);
        let req = self.with_body(Method::PATCH, &format!("/Groups/{group_id}"), &body);
        let (status, text) = send(req, "PATCH /Groups").await?;
        if status != StatusCode::OK && status != StatusCode::NO_CONTENT {
            bail!(
                "PATCH /Groups/{group_id} ({}): HTTP {status}: {}",
                if add { "Add" } else { "Remove" },
                snippet(&text)
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_bodies_name_the_primary_email_as_user_name() {
        let b = user_body("r1", 7);
        assert_eq!(b["userName"], "user7@r1.acme.com");
        assert_eq!(b["emails"][0]["value"], b["userName"]);
        assert_eq!(b["active"], true);
    }

    #[test]
    fn a_lookup_passes_only_with_exactly_the_user_looked_up() {
        let ok = br#"{"schemas":["x"],"totalResults":1,"Resources":[{"id":"1","userName":"a@x.io","emails":[]}]}"#;
        assert!(check_lookup(StatusCode::OK, ok, "a@x.io").is_ok());
        assert!(check_lookup(StatusCode::OK, ok, "b@x.io").is_err());
        assert!(check_lookup(StatusCode::UNAUTHORIZED, ok, "a@x.io").is_err());
        assert!(check_lookup(StatusCode::OK, br#"{"totalResults":0,"Resources":[]}"#, "a@x.io").is_err());
        assert!(check_lookup(StatusCode::OK, br#"{"totalResults":1}"#, "a@x.io").is_err());
        assert!(check_lookup(StatusCode::OK, b"<html>", "a@x.io").is_err());
    }

    #[test]
    fn health_passes_only_on_200_ok() {
        assert!(check_health(StatusCode::OK, br#"{"status":"ok"}"#).is_ok());
        assert!(check_health(StatusCode::OK, br#"{"status":"starting"}"#).is_err());
        assert!(check_health(StatusCode::SERVICE_UNAVAILABLE, br#"{"status":"ok"}"#).is_err());
        assert!(check_health(StatusCode::OK, b"ok").is_err());
    }

    #[test]
    fn membership_patches_have_the_entra_shape() {
        let add = membership_patch(true, "u1");
        assert_eq!(add["Operations"][0], json!({"op": "Add", "path": "members", "value": [{"value": "u1"}]}));
        let remove = membership_patch(false, "u1");
        assert_eq!(remove["Operations"][0], json!({"op": "Remove", "path": "members[value eq \"u1\"]"}));
    }
}
