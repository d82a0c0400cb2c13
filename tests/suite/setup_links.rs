//! Self-serve setup links: the app makes a link for one customer
//! (`POST /api/v1/setup-links`), and the customer's admin sets up the
//! customer's IdP and SCIM endpoint at `/setup/{token}`.

use crate::helpers::*;
use crate::login_support::*;
use crate::stub_idp::StubOp;
use reqwest::header::{HeaderMap, LOCATION};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A server that takes setup links though its IdPs are on loopback (the stub OP).
async fn spawn() -> TestApp {
    TestApp::spawn_adjusted(|s| s.oidc.setup_links_allow_private_issuers = true).await
}

/// Makes a link for `customer`; `body` adds fields.
async fn make_link(app: &TestApp, customer: &str, body: Value) -> Value {
    let mut req = json!({"customer_id": customer});
    for (k, v) in body.as_object().unwrap() {
        req[k] = v.clone();
    }
    let (status, link) = app.post("/api/v1/setup-links", req).await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    link
}

/// The path of a link's page (its URL without the public base).
fn page_path(app: &TestApp, link: &Value) -> String {
    let url = link["url"].as_str().unwrap();
    let public = app.state.settings.public_url.clone();
    url.strip_prefix(&public).unwrap_or_else(|| panic!("{url} is not under {public}")).to_string()
}

async fn get_page(base: &str, app: &TestApp, path: &str) -> (StatusCode, String, HeaderMap) {
    let resp = app.http.get(format!("{base}{path}")).send().await.unwrap();
    let (s, h) = (resp.status(), resp.headers().clone());
    (s, resp.text().await.unwrap(), h)
}

async fn post_form(app: &TestApp, path: &str, form: &[(&str, &str)]) -> (StatusCode, String, HeaderMap) {
    let resp = app.http.post(format!("{}{path}", app.base)).form(form).send().await.unwrap();
    let (s, h) = (resp.status(), resp.headers().clone());
    (s, resp.text().await.unwrap(), h)
}

/// The value of the hidden field `name` on a page.
fn hidden(html: &str, name: &str) -> String {
    let at = html.find(&format!("name=\"{name}\" value=\"")).unwrap_or_else(|| panic!("no {name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// The SCIM token a page shows (`tandem_scim_…`).
fn shown_token(html: &str) -> String {
    let start = html.find("tandem_scim_").expect("a token on the page");
    html[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect()
}

fn generic_form<'a>(op: &'a StubOp, secret: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("idp_type", "Generic"),
        ("issuer", op.issuer.as_str()),
        ("client_id", "tandem-client"),
        ("client_secret", secret),
    ]
}

#[tokio::test]
async fn a_customers_admin_sets_up_sign_in_and_scim_through_a_link() {
    let app = spawn().await;
    let op = StubOp::start(false).await;
    let customer = unique("setup");
    let redirect = redirect_url_of(&customer);
    let link = make_link(&app, &customer, json!({"redirect_url": redirect})).await;
    let path = page_path(&app, &link);
    assert!(path.starts_with("/setup/tandem_setup_"), "{link}");
    assert_eq!((&link["state"], &link["customer_id"]), (&json!("active"), &json!(customer)));
    // Listed without its URL.
    let (_, listed) = app.get(&format!("/api/v1/setup-links?customer_id={customer}")).await;
    assert_eq!(listed["data"][0]["id"], link["id"], "{listed}");
    assert!(listed["data"][0].get("url").is_none(), "{listed}");

    let (status, html, headers) = get_page(&app.base, &app, &path).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(&customer) && html.contains(&redirect), "{html}");
    assert!(html.contains("Create the SCIM endpoint"), "{html}");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(headers["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));

    // A value with the NUL character is named on the page (PostgreSQL would refuse it).
    let mut nul = generic_form(&op, STUB_CLIENT_SECRET);
    nul[2] = ("client_id", "tandem\0client");
    let (status, html, _) = post_form(&app, &format!("{path}/oidc"), &nul).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("client_id") && html.contains("NUL character"), "{html}");

    // Sign-in: the client is made with discovery, by the link.
    let (status, _, headers) = post_form(&app, &format!("{path}/oidc"), &generic_form(&op, STUB_CLIENT_SECRET)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], format!("{path}?saved=oidc"));
    let (_, client) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{customer}")).await;
    assert_eq!(client["idp"]["type"], "Generic", "{client}");
    assert_eq!(client["idp"]["issuer"], json!(op.issuer));
    assert_eq!(client["idp"]["has_client_secret"], true);
    assert_eq!(client["redirect_url"], json!(redirect));
    assert_eq!(client["discovery"]["status"], "ok", "{client}");
    let id = client["oidc_client_id"].as_str().unwrap();
    let (_, audit) = app.get(&format!("/api/v1/audit-events?target_id={id}&action=oidc_client.created")).await;
    assert_eq!(audit["data"][0]["actor"], json!(format!("setup_link:{}", link["id"].as_str().unwrap())), "{audit}");
    // Where the link pointed the customer's sign-in, never the secret.
    let created = &audit["data"][0]["details"];
    assert_eq!(created["idp"]["issuer"], json!(op.issuer), "{audit}");
    assert_eq!(created["idp"]["client_id"], "tandem-client", "{audit}");
    assert_eq!(created["redirect_url"], json!(redirect), "{audit}");
    assert!(!audit.to_string().contains(STUB_CLIENT_SECRET), "{audit}");
    let (_, html, _) = get_page(&app.base, &app, &format!("{path}?saved=oidc")).await;
    assert!(html.contains("The sign-in settings are saved"), "{html}");

    // Changing the client ID with the secret left empty keeps the secret.
    let form =
        [("idp_type", "Generic"), ("issuer", op.issuer.as_str()), ("client_id", "other-client"), ("client_secret", "")];
    assert_eq!(post_form(&app, &format!("{path}/oidc"), &form).await.0, StatusCode::SEE_OTHER);
    let (_, client) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{customer}")).await;
    assert_eq!(
        (&client["idp"]["client_id"], &client["idp"]["has_client_secret"]),
        (&json!("other-client"), &json!(true))
    );
    let (_, audit) = app.get(&format!("/api/v1/audit-events?target_id={id}&action=oidc_client.updated")).await;
    let updated = &audit["data"][0]["details"];
    assert_eq!(updated["idp"]["old"]["client_id"], "tandem-client", "{audit}");
    assert_eq!(updated["idp"]["new"]["client_id"], "other-client", "{audit}");
    assert_eq!(updated["idp"]["new"]["issuer"], json!(op.issuer), "{audit}");
    assert_eq!(updated["client_secret_replaced"], false, "{audit}");
    assert!(updated.get("redirect_url").is_none(), "unchanged: {audit}");
    let form = [("idp_type", "Generic"), ("issuer", op.issuer.as_str()), ("client_id", "tandem-client")];
    assert_eq!(post_form(&app, &format!("{path}/oidc"), &form).await.0, StatusCode::SEE_OTHER);
    // A page opened before the settings changed (another admin, another tab) saves nothing over them.
    let version_of = |html: &str| {
        let needle = "name=\"version\" value=\"";
        let at = html.find(needle).map(|i| i + needle.len()).unwrap_or_else(|| panic!("{html}"));
        html[at..].chars().take_while(|c| *c != '"').collect::<String>()
    };
    let (_, html, _) = get_page(&app.base, &app, &path).await;
    let stale = version_of(&html);
    let form = [("idp_type", "Generic"), ("issuer", op.issuer.as_str()), ("client_id", "tandem-client")];
    let with_version = |v: &str| {
        let mut f: Vec<(&str, String)> = form.iter().map(|(k, v)| (*k, v.to_string())).collect();
        f.push(("version", v.to_string()));
        f
    };
    let stale_form = with_version(&stale);
    let stale_form: Vec<(&str, &str)> = stale_form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(post_form(&app, &format!("{path}/oidc"), &stale_form).await.0, StatusCode::SEE_OTHER, "current");
    let (status, html, _) = post_form(&app, &format!("{path}/oidc"), &stale_form).await;
    assert_eq!(status, StatusCode::CONFLICT, "the first save changed them: {html}");
    assert!(html.contains("changed after this page was opened"), "{html}");
    let fresh = with_version(&version_of(&html));
    let fresh: Vec<(&str, &str)> = fresh.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(post_form(&app, &format!("{path}/oidc"), &fresh).await.0, StatusCode::SEE_OTHER, "as shown now");

    // SCIM: the endpoint and its token, shown once; the token works.
    let (status, html, _) = post_form(&app, &format!("{path}/scim"), &[("action", "create")]).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let first = shown_token(&html);
    let (_, conn) = app.get(&format!("/api/v1/scim-connections/by-customer-id/{customer}")).await;
    let scim = app.scim_of(&json!({"scim_base_url": conn["scim_base_url"], "scim_api_key": first,
                                    "scim_connection_id": conn["scim_connection_id"]}));
    assert!(html.contains(conn["scim_base_url"].as_str().unwrap()), "{html}");
    assert_eq!(scim.get("/Users").await.status, StatusCode::OK);
    // Paired: a login now needs a provisioned user.
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(
        (status, &body["error"]["details"]["reason"]),
        (StatusCode::FORBIDDEN, &json!("not_provisioned")),
        "{body}"
    );
    let (_, html, _) = get_page(&app.base, &app, &path).await;
    assert!(html.contains("Make a new token") && !html.contains(&first), "{html}");

    // A new token; the first keeps working for its grace. The form names the token it replaces,
    // so a second click replaces nothing.
    let current_key = hidden(&html, "current_key");
    let rotate = [("action", "rotate"), ("current_key", current_key.as_str())];
    let (status, html, _) = post_form(&app, &format!("{path}/scim"), &rotate).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let second = shown_token(&html);
    let (status, html, _) = post_form(&app, &format!("{path}/scim"), &rotate).await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("was replaced already"), "{html}");
    assert_ne!(first, second);
    let rotated = app.scim_of(&json!({"scim_base_url": conn["scim_base_url"], "scim_api_key": second,
                                      "scim_connection_id": conn["scim_connection_id"]}));
    assert_eq!(rotated.get("/Users").await.status, StatusCode::OK);
    assert_eq!(scim.get("/Users").await.status, StatusCode::OK);
    // Creating it again is refused, with the reason.
    let (status, html, _) = post_form(&app, &format!("{path}/scim"), &[("action", "create")]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(html.contains("exists already"), "{html}");
    let (_, listed) = app.get(&format!("/api/v1/setup-links/{}", link["id"].as_str().unwrap())).await;
    assert!(listed["last_used_at"].is_string(), "{listed}");
}

#[tokio::test]
async fn a_refused_form_says_why_and_keeps_what_was_entered_but_the_secret() {
    let app = spawn().await;
    let customer = unique("setup-refused");
    let link = make_link(&app, &customer, json!({"redirect_url": redirect_url_of(&customer)})).await;
    let path = page_path(&app, &link);
    // Discovery fails: the reason, the issuer as entered, no secret echoed.
    let secret = "do-not-echo-this-secret-0123456789";
    let form = [
        ("idp_type", "Generic"),
        ("issuer", "http://127.0.0.1:9/nowhere"),
        ("client_id", "c1"),
        ("client_secret", secret),
    ];
    let (status, html, _) = post_form(&app, &format!("{path}/oidc"), &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("Not saved"), "{html}");
    assert!(html.contains("http://127.0.0.1:9/nowhere"), "{html}");
    assert!(!html.contains(secret), "{html}");
    // Fields missing: each named.
    let (status, html, _) = post_form(&app, &format!("{path}/oidc"), &[("idp_type", "Okta")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("idp.client_id") && html.contains("idp.sso_domain"), "{html}");
    let (status, _) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{customer}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A link made without the redirect URL cannot create the client, and says so.
    let other = unique("setup-no-redirect");
    let bare = make_link(&app, &other, json!({})).await;
    let bare_path = page_path(&app, &bare);
    let (_, html, _) = get_page(&app.base, &app, &bare_path).await;
    assert!(html.contains("without the application's redirect URL"), "{html}");
    let form = [("idp_type", "Generic"), ("issuer", "http://127.0.0.1:9"), ("client_id", "c1")];
    let (status, html, _) = post_form(&app, &format!("{bare_path}/oidc"), &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("cannot create the sign-in application"), "{html}");
    // An unknown action.
    let (status, html, _) = post_form(&app, &format!("{path}/scim"), &[("action", "explode")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("must be create or rotate"), "{html}");
}

#[tokio::test]
async fn revoked_expired_and_unknown_links_do_not_work() {
    let app = spawn().await;
    let customer = unique("setup-gone");
    let revoked = make_link(&app, &customer, json!({})).await;
    let short = make_link(&app, &customer, json!({"expires_in_hours": 1})).await;
    let id = revoked["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/api/v1/setup-links/{id}")).await.0, StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&format!("/api/v1/setup-links/{id}")).await.0, StatusCode::NO_CONTENT);
    let (status, body) = app.delete("/api/v1/setup-links/nope").await;
    assert_eq!((status, &body["error"]["type"]), (StatusCode::NOT_FOUND, &json!("SetupLinkNotFound")));
    let path = page_path(&app, &revoked);
    for (status, html) in [
        {
            let (s, h, _) = get_page(&app.base, &app, &path).await;
            (s, h)
        },
        {
            let (s, h, _) = post_form(&app, &format!("{path}/scim"), &[("action", "create")]).await;
            (s, h)
        },
        {
            let (s, h, _) = get_page(&app.base, &app, "/setup/tandem_setup_made-up").await;
            (s, h)
        },
    ] {
        assert_eq!(status, StatusCode::NOT_FOUND, "{html}");
        assert!(html.contains("This setup link does not work"), "{html}");
    }
    let (_, conn) = app.get(&format!("/api/v1/scim-connections/by-customer-id/{customer}")).await;
    assert_eq!(conn["error"]["type"], "ScimConnectionNotFound", "nothing made through a revoked link: {conn}");

    let short_path = page_path(&app, &short);
    assert_eq!(get_page(&app.base, &app, &short_path).await.0, StatusCode::OK);
    app.clock.advance(chrono::Duration::minutes(61));
    assert_eq!(get_page(&app.base, &app, &short_path).await.0, StatusCode::NOT_FOUND);
    let (_, listed) = app.get(&format!("/api/v1/setup-links?customer_id={customer}")).await;
    let states: Vec<&str> = listed["data"].as_array().unwrap().iter().map(|l| l["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["expired", "revoked"], "newest first: {listed}");
    let (_, audit) = app.get(&format!("/api/v1/audit-events?target_id={id}&action=setup_link.revoked")).await;
    assert_eq!(audit["data"].as_array().unwrap().len(), 1, "revoked once: {audit}");
}

/// Makes `customer`'s OIDC client (`kind` `oidc-clients`) or SCIM
/// connection (`scim-connections`); returns its id.
async fn make_client_or_connection(app: &TestApp, kind: &str, customer: &str) -> String {
    let (status, made) = if kind == "oidc-clients" {
        app.post("/api/v1/oidc-clients", okta_client(customer)).await
    } else {
        app.post("/api/v1/scim-connections", json!({"customer_id": customer})).await
    };
    assert_eq!(status, StatusCode::CREATED, "{made}");
    made["oidc_client_id"].as_str().or(made["scim_connection_id"].as_str()).unwrap().to_string()
}

/// Deleting a customer's OIDC client or SCIM connection revokes its links
/// still working (each recorded, with the deletion that revoked it): a link
/// would otherwise make them again, under whatever IdP its holder enters.
/// Other customers' links keep working.
#[tokio::test]
async fn deleting_a_customers_client_or_connection_revokes_its_links() {
    let app = spawn().await;
    let other = make_link(&app, &unique("setup-other"), json!({})).await;
    for kind in ["oidc-clients", "scim-connections"] {
        let customer = unique("setup-deleted");
        let id = make_client_or_connection(&app, kind, &customer).await;
        let links = [make_link(&app, &customer, json!({})).await, make_link(&app, &customer, json!({})).await];
        let revoked_before = &links[0]["id"];
        assert_eq!(
            app.delete(&format!("/api/v1/setup-links/{}", revoked_before.as_str().unwrap())).await.0,
            StatusCode::NO_CONTENT
        );
        assert_eq!(get_page(&app.base, &app, &page_path(&app, &links[1])).await.0, StatusCode::OK);
        assert_eq!(app.delete(&format!("/api/v1/{kind}/{id}")).await.0, StatusCode::NO_CONTENT, "{kind}");
        for link in &links {
            let (status, html, _) = get_page(&app.base, &app, &page_path(&app, link)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{kind}: {html}");
            let (_, shown) = app.get(&format!("/api/v1/setup-links/{}", link["id"].as_str().unwrap())).await;
            assert_eq!(shown["state"], "revoked", "{kind}: {shown}");
        }
        let (_, audit) = app.get("/api/v1/audit-events?action=setup_link.revoked&limit=100").await;
        let of_customer: Vec<&Value> =
            audit["data"].as_array().unwrap().iter().filter(|e| e["details"]["customer_id"] == customer).collect();
        assert_eq!(of_customer.len(), 2, "{kind}: once each: {audit}");
        let via = format!("{}.deleted", kind.trim_end_matches('s').replace('-', "_"));
        let by_delete: Vec<&&Value> = of_customer.iter().filter(|e| e["details"]["via"] == via.as_str()).collect();
        assert_eq!(by_delete.len(), 1, "{kind}: the one still working, revoked by the delete: {audit}");
        assert_eq!(by_delete[0]["target_id"], links[1]["id"], "{kind}: {audit}");
    }
    assert_eq!(get_page(&app.base, &app, &page_path(&app, &other)).await.0, StatusCode::OK);
    // A rename frees the customer ID it had as a deletion does: its links go too.
    for kind in ["oidc-clients", "scim-connections"] {
        let customer = unique("setup-renamed");
        let id = make_client_or_connection(&app, kind, &customer).await;
        let link = make_link(&app, &customer, json!({})).await;
        let renamed_to = unique("setup-renamed-to");
        let (status, body) = app.patch(&format!("/api/v1/{kind}/{id}"), json!({"customer_id": renamed_to})).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {body}");
        assert_eq!(get_page(&app.base, &app, &page_path(&app, &link)).await.0, StatusCode::NOT_FOUND, "{kind}");
        let link_id = link["id"].as_str().unwrap();
        let (_, audit) = app.get(&format!("/api/v1/audit-events?target_id={link_id}&action=setup_link.revoked")).await;
        let via = format!("{}.renamed", kind.trim_end_matches('s').replace('-', "_"));
        assert_eq!(audit["data"][0]["details"]["via"], via.as_str(), "{kind}: {audit}");
        assert_eq!(audit["data"].as_array().unwrap().len(), 1, "{kind}: {audit}");
    }
}

#[tokio::test]
async fn setup_link_fields_are_checked() {
    let app = spawn().await;
    let (status, body) = app
        .post(
            "/api/v1/setup-links",
            json!({"customer_id": "", "redirect_url": "/relative", "expires_in_hours": 721, "colour": "red"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let mut fields = invalid_fields(&body);
    fields.sort();
    assert_eq!(fields, ["colour", "customer_id", "expires_in_hours", "redirect_url"], "{body}");
    let (status, body) = app.post("/api/v1/setup-links", json!({"customer_id": "acme", "expires_in_hours": 0})).await;
    assert_eq!((status, invalid_fields(&body)), (StatusCode::BAD_REQUEST, vec!["expires_in_hours".to_string()]));
    let (status, body) = app.get("/api/v1/setup-links?after=x").await;
    assert_eq!((status, invalid_fields(&body)), (StatusCode::BAD_REQUEST, vec!["after".to_string()]));
    // The API needs an integration key; the pages need none but the link.
    let resp =
        app.http.post(format!("{}/api/v1/setup-links", app.base)).json(&json!({"customer_id": "acme"})).send().await;
    assert_eq!(resp.unwrap().status(), StatusCode::UNAUTHORIZED);
}

/// With an admin listener, the app makes links on it, and the customer's
/// admin opens them on the main (public) one.
#[tokio::test]
async fn setup_pages_are_served_on_the_public_listener() {
    let app = TestApp::spawn_adjusted(|s| {
        s.server.admin_bind = "127.0.0.1:0".into();
        s.oidc.setup_links_allow_private_issuers = true;
    })
    .await;
    let admin = app.admin_base.clone().unwrap();
    let customer = unique("setup-public");
    let resp = app
        .http
        .post(format!("{admin}/api/v1/setup-links"))
        .bearer_auth(&app.key)
        .json(&json!({"customer_id": customer}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let link: Value = resp.json().await.unwrap();
    let path = page_path(&app, &link);
    let (status, html, _) = get_page(&app.base, &app, &path).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(get_page(&app.base, &app, "/setup/assets/setup.css").await.0, StatusCode::OK);
    let resp = app.http.get(format!("{}/api/v1/setup-links", app.base)).bearer_auth(&app.key).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "the API stays on the admin listener");
    // The path as routed: `%73` is `s`, served the page on one listener as on two.
    let encoded = path.replacen("/setup/", "/%73etup/", 1);
    let (status, html, _) = get_page(&app.base, &app, &encoded).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    // Refusals that echo the path leave a token out of it.
    let token = path.trim_start_matches("/setup/");
    for (base, odd) in [
        (&app.base, format!("/Setup/{token}")),
        (&admin, format!("/Setup/{token}")),
        (&app.base, format!("/api/{token}")),
    ] {
        for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
            let resp = app.http.request(method.clone(), format!("{base}{odd}")).send().await.unwrap();
            let status = resp.status();
            let text = resp.text().await.unwrap();
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {odd}: {text}");
            assert!(!text.contains("tandem_setup_"), "{method} {odd}: {text}");
        }
    }
    // Keys in other places, however encoded: cut in every answer that echoes the path.
    let (ik, encoded_ik) = (&app.key, app.key.replacen("tandem_", "%74andem_", 1));
    for (method, url) in [
        (reqwest::Method::POST, format!("{admin}/api/v1/oidc-clients/{ik}")),
        (reqwest::Method::GET, format!("{admin}/api/v1/{encoded_ik}")),
        (reqwest::Method::GET, format!("{}/scim/v2/{ik}", app.base)),
        (reqwest::Method::DELETE, format!("{}/scim/v2/{ik}/Users", app.base)),
    ] {
        let resp = app.http.request(method.clone(), &url).bearer_auth(&app.key).send().await.unwrap();
        let text = resp.text().await.unwrap();
        let secret = ik.trim_start_matches("tandem_ik_");
        assert!(!text.contains(secret), "{method} {url}: {text}");
    }
    // A token given where a link's id goes.
    let resp = app.http.get(format!("{admin}/api/v1/setup-links/{token}")).bearer_auth(&app.key).send().await.unwrap();
    let (status, text) = (resp.status(), resp.text().await.unwrap());
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    assert!(!text.contains(token) && text.contains("tandem_setup_…"), "{text}");
    let resp = app.http.put(format!("{admin}/api/v1/setup-links/{token}")).bearer_auth(&app.key).send().await.unwrap();
    let (status, text) = (resp.status(), resp.text().await.unwrap());
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{text}");
    assert!(!text.contains(token), "{text}");
}

/// Behind a proxy that serves Tandem under a path (`server.public_url` with
/// one) and strips it, the pages' stylesheet, forms, redirects and links
/// stay under that path, as the link handed out does: a form never posts
/// the IdP's secret to whatever serves the origin's root.
#[tokio::test]
async fn setup_pages_stay_under_the_public_urls_path() {
    let app = TestApp::spawn_adjusted(|s| {
        s.server.public_url = "https://sso.example.com/tandem/".into();
        s.oidc.setup_links_allow_private_issuers = true;
    })
    .await;
    let op = StubOp::start(false).await;
    let customer = unique("setup-prefix");
    let link = make_link(&app, &customer, json!({"redirect_url": redirect_url_of(&customer)})).await;
    assert!(link["url"].as_str().unwrap().starts_with("https://sso.example.com/tandem/setup/tandem_setup_"), "{link}");
    // What the proxy forwards: the path without its prefix.
    let path = page_path(&app, &link);
    let under = format!("/tandem{path}");
    let stylesheet = "href=\"/tandem/setup/assets/setup.css\"";
    let (status, html, _) = get_page(&app.base, &app, &path).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(stylesheet), "{html}");
    assert!(html.contains(&format!("action=\"{under}/oidc\"")), "{html}");
    assert!(html.contains(&format!("action=\"{under}/scim\"")), "{html}");
    assert!(!html.contains("\"/setup/"), "an address off the prefix: {html}");
    let (status, _, headers) = post_form(&app, &format!("{path}/oidc"), &generic_form(&op, STUB_CLIENT_SECRET)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], format!("{under}?saved=oidc"));
    let (status, html, _) = post_form(&app, &format!("{path}/scim"), &[("action", "create")]).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(&format!("href=\"{under}\"")) && html.contains(stylesheet), "{html}");
    // Pages that answer a wrong address or method too.
    for (status, html) in [
        get_page(&app.base, &app, &format!("{path}/nowhere")).await,
        get_page(&app.base, &app, &format!("{path}/oidc")).await,
        get_page(&app.base, &app, "/setup/tandem_setup_unknown").await,
    ]
    .map(|(status, html, _)| (status, html))
    {
        assert!(status.is_client_error() && html.contains(stylesheet), "{status} {html}");
    }
}

/// Two customers' links saving one new issuer at the same time: one gets
/// it, the other is refused, however the two saves interleave (each checks
/// again in its write, under the issuer's lock).
#[tokio::test]
async fn two_links_saving_one_issuer_at_once_give_it_to_one_customer() {
    let app = spawn().await;
    for _ in 0..3 {
        let op = StubOp::start(false).await;
        let (mut paths, mut customers) = (Vec::new(), Vec::new());
        for who in ["setup-race-a", "setup-race-b"] {
            let customer = unique(who);
            let link = make_link(&app, &customer, json!({"redirect_url": redirect_url_of(&customer)})).await;
            paths.push(format!("{}/oidc", page_path(&app, &link)));
            customers.push(customer);
        }
        let form = generic_form(&op, STUB_CLIENT_SECRET);
        let (a, b) = tokio::join!(post_form(&app, &paths[0], &form), post_form(&app, &paths[1], &form));
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::SEE_OTHER, StatusCode::CONFLICT], "{}\n{}", a.1, b.1);
        let mut holders = 0;
        for customer in &customers {
            let (status, _) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{customer}")).await;
            holders += usize::from(status == StatusCode::OK);
        }
        assert_eq!(holders, 1, "one customer has a client on the issuer");
    }
}

/// A link changes only its customer's settings, and only the IdP's: the
/// form's other fields are not read, another customer's issuer is refused.
#[tokio::test]
async fn a_link_changes_only_its_customers_idp_settings() {
    let app = spawn().await;
    let op = StubOp::start(false).await;
    // Another customer's client on the stub's issuer.
    let other = unique("setup-other");
    let before = stub_client(&app, &op, &other, "Generic", None).await;
    let customer = unique("setup-mine");
    let link = make_link(&app, &customer, json!({"redirect_url": redirect_url_of(&customer)})).await;
    let path = page_path(&app, &link);
    let (status, html, _) = post_form(&app, &format!("{path}/oidc"), &generic_form(&op, STUB_CLIENT_SECRET)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(
        html.contains("another customer&#39;s sign-in already uses this issuer")
            || html.contains("another customer's sign-in already uses this issuer"),
        "{html}"
    );
    assert!(!html.contains(&other), "the other customer is not named: {html}");
    let (_, after) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{other}")).await;
    assert_eq!(after["idp"], before["idp"]);

    // Fields the app decides are not read from the form.
    let own = StubOp::start(false).await;
    let mut form = generic_form(&own, STUB_CLIENT_SECRET);
    form.extend([
        ("customer_id", other.as_str()),
        ("redirect_url", "https://evil.example.com/cb"),
        ("scim_required", "false"),
        ("scopes", "openid"),
        ("email_domain_allowlist", "evil.example.com"),
    ]);
    assert_eq!(post_form(&app, &format!("{path}/oidc"), &form).await.0, StatusCode::SEE_OTHER);
    let (_, mine) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{customer}")).await;
    assert_eq!(mine["customer_id"], json!(customer));
    assert_eq!(mine["redirect_url"], json!(redirect_url_of(&customer)));
    assert_eq!(mine["email_domain_allowlist"], json!([]), "{mine}");
    let (_, theirs) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{other}")).await;
    assert_eq!(theirs["oidc_client_id"], before["oidc_client_id"]);

    // Okta with an override (a custom authorization server): the type's field and the override.
    // (A domain of its own, which never resolves: other tests' clients on a shared database have acme.okta.com.)
    let domain = format!("{}.okta.invalid", unique("acme"));
    let form = [
        ("idp_type", "Okta"),
        ("sso_domain", domain.as_str()),
        ("issuer_override", own.issuer.as_str()),
        ("issuer", "https://left-over.example.com"),
        ("client_id", "tandem-client"),
        ("client_secret", STUB_CLIENT_SECRET),
    ];
    let (status, html, _) = post_form(&app, &format!("{path}/oidc"), &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    let (_, okta) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{customer}")).await;
    assert_eq!((&okta["idp"]["type"], &okta["idp"]["sso_domain"]), (&json!("Okta"), &json!(domain)), "{okta}");
    assert_eq!(okta["idp"]["issuer"], json!(own.issuer), "the override, not the other field: {okta}");
    // Emptying the override asks for the Okta domain's own issuer (unreachable here): refused,
    // and what the page shows names it.
    let form = [
        ("idp_type", "Okta"),
        ("sso_domain", domain.as_str()),
        ("issuer_override", ""),
        ("client_id", "tandem-client"),
        ("client_secret", STUB_CLIENT_SECRET),
    ];
    let (status, html, _) = post_form(&app, &format!("{path}/oidc"), &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains(&format!("https://{domain}")), "{html}");
    // A new IdP without its secret is refused (the saved one is never sent to another IdP).
    let form = [("idp_type", "Generic"), ("issuer", op.issuer.as_str()), ("client_id", "tandem-client")];
    let (status, html, _) = post_form(&app, &format!("{path}/oidc"), &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("client_secret"), "{html}");
}

#[tokio::test]
async fn a_client_needs_its_secret_and_a_link_its_server_setting() {
    let app = spawn().await;
    let op = StubOp::start(false).await;
    let customer = unique("setup-secret");
    let link = make_link(&app, &customer, json!({"redirect_url": redirect_url_of(&customer)})).await;
    let path = page_path(&app, &link);
    let (status, html, _) = post_form(&app, &format!("{path}/oidc"), &generic_form(&op, "")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("idp.client_secret: is required"), "{html}");
    let (status, html, _) = post_form(&app, &format!("{path}/oidc"), &[("idp_type", "Okta")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("idp.client_id") && html.contains("idp.client_secret"), "every field named: {html}");

    // Without oidc.block_private_addresses (nor the setting allowing it) no link is made.
    let plain = TestApp::spawn().await;
    let (status, body) = plain.post("/api/v1/setup-links", json!({"customer_id": "acme"})).await;
    assert_eq!((status, &body["error"]["type"]), (StatusCode::CONFLICT, &json!("SetupLinksTurnedOff")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("oidc.block_private_addresses"), "{body}");
    // With it, a link holder cannot make Tandem call a loopback issuer.
    let blocking = TestApp::spawn_adjusted(|s| s.oidc.block_private_addresses = true).await;
    let link = make_link(&blocking, &customer, json!({"redirect_url": redirect_url_of(&customer)})).await;
    let path = page_path(&blocking, &link);
    let (status, html, _) = post_form(&blocking, &format!("{path}/oidc"), &generic_form(&op, STUB_CLIENT_SECRET)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("block_private_addresses"), "{html}");
}

#[tokio::test]
async fn a_token_made_without_a_grace_needs_the_cut_off_ticked() {
    let app = TestApp::spawn_adjusted(|s| {
        s.oidc.setup_links_allow_private_issuers = true;
        s.scim.rotation_grace_hours = 0;
    })
    .await;
    let customer = unique("setup-grace");
    let link = make_link(&app, &customer, json!({})).await;
    let path = page_path(&app, &link);
    assert_eq!(post_form(&app, &format!("{path}/scim"), &[("action", "create")]).await.0, StatusCode::OK);
    let (_, page, _) = get_page(&app.base, &app, &path).await;
    assert!(page.contains("stops working at once"), "{page}");
    let key = hidden(&page, "current_key");
    let (status, html, _) =
        post_form(&app, &format!("{path}/scim"), &[("action", "rotate"), ("current_key", &key)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("tick the box"), "{html}");
    let form = [("action", "rotate"), ("current_key", key.as_str()), ("cut_off_now", "yes")];
    let (status, html, _) = post_form(&app, &format!("{path}/scim"), &form).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("tandem_scim_"), "{html}");
}

#[tokio::test]
async fn other_methods_bad_forms_and_too_many_changes_get_a_page() {
    let app = spawn().await;
    let customer = unique("setup-odd");
    let link = make_link(&app, &customer, json!({})).await;
    let path = page_path(&app, &link);
    let (status, html, headers) = get_page(&app.base, &app, &format!("{path}/oidc")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{html}");
    assert!(html.contains("open the link you were sent again") && !html.contains("tandem_setup_"), "{html}");
    assert_eq!(headers["cache-control"], "no-store");
    let resp =
        app.http.post(format!("{}{path}/scim", app.base)).json(&json!({"action": "create"})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let html = resp.text().await.unwrap();
    assert!(html.contains("The form could not be read: it is not sent as application/x-www-form-urlencoded"), "{html}");
    // A media type with a space before its parameters is a form still; a
    // name given twice, or a value that is not UTF-8, is refused.
    for (body, says) in [("action=create&action=rotate", "given more than once"), ("action=cr%FFeate", "is not UTF-8")]
    {
        let resp = app
            .http
            .post(format!("{}{path}/scim", app.base))
            .header("content-type", "application/x-www-form-urlencoded ; charset=UTF-8")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let html = resp.text().await.unwrap();
        assert!(html.contains(says), "{body}: {html}");
    }
    let big = "x".repeat(17 * 1024);
    let (status, html, _) = post_form(&app, &format!("{path}/scim"), &[("action", big.as_str())]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{html}");
    assert!(
        html.contains("The form could not be read: it is larger than 16384 bytes") && html.contains("<html"),
        "{html}"
    );
    // At most 20 changes per link in ten minutes.
    for _ in 0..20 {
        assert_eq!(post_form(&app, &format!("{path}/scim"), &[("action", "explode")]).await.0, StatusCode::BAD_REQUEST);
    }
    let (status, html, _) = post_form(&app, &format!("{path}/scim"), &[("action", "create")]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{html}");
    let (_, conn) = app.get(&format!("/api/v1/scim-connections/by-customer-id/{customer}")).await;
    assert_eq!(conn["error"]["type"], "ScimConnectionNotFound");
    // The link's page still opens.
    assert_eq!(get_page(&app.base, &app, &path).await.0, StatusCode::OK);
    // The API: one link by id, its audit, the longest lifetime.
    let id = link["id"].as_str().unwrap();
    let (status, one) = app.get(&format!("/api/v1/setup-links/{id}")).await;
    assert_eq!((status, &one["customer_id"]), (StatusCode::OK, &json!(customer)));
    let (status, _) = app.get("/api/v1/setup-links/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, audit) = app.get(&format!("/api/v1/audit-events?target_id={id}&action=setup_link.created")).await;
    assert_eq!(audit["data"].as_array().unwrap().len(), 1, "{audit}");
    make_link(&app, &customer, json!({"expires_in_hours": 720})).await;
}

/// A save that keeps a client's issuer is not held to the issuer rule (the
/// app may have given two customers one IdP); a shared path's warning does
/// not name the other customer; an Okta override left in the field is not
/// carried over to Entra ID.
#[tokio::test]
async fn saves_that_keep_the_issuer_and_shared_paths_and_type_switches() {
    let app = TestApp::spawn_adjusted(|s| {
        s.oidc.setup_links_allow_private_issuers = true;
        s.oidc.require_distinct_redirect_paths = false;
    })
    .await;
    let op = StubOp::start(false).await;
    let (first, second) = (unique("setup-shared-a"), unique("setup-shared-b"));
    stub_client(&app, &op, &first, "Generic", None).await;
    stub_client(&app, &op, &second, "Generic", None).await;
    let link = make_link(&app, &second, json!({})).await;
    let path = page_path(&app, &link);
    // A new secret on the issuer both have: saved.
    let (status, html, _) = post_form(&app, &format!("{path}/oidc"), &generic_form(&op, STUB_CLIENT_SECRET)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");

    // A new customer whose link's redirect path another client has: saved, with a warning that
    // does not name that customer.
    let shared = format!("http://127.0.0.1:9/sso/{}", unique("shared-path"));
    let body = json!({"customer_id": first.replace("-a-", "-d-"), "redirect_url": shared, "verify": false,
                      "idp": {"type": "Generic", "client_id": "c", "client_secret": STUB_CLIENT_SECRET,
                              "issuer": "https://shared.example.com"}});
    assert_eq!(app.post("/api/v1/oidc-clients", body).await.0, StatusCode::CREATED);
    let third = unique("setup-shared-c");
    let own = StubOp::start(false).await;
    let link = make_link(&app, &third, json!({"redirect_url": shared})).await;
    let path = page_path(&app, &link);
    let (status, html, _) = post_form(&app, &format!("{path}/oidc"), &generic_form(&own, STUB_CLIENT_SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Warning: ") && html.contains("another customer"), "{html}");
    assert!(!html.contains(&first.replace("-a-", "-d-")), "{html}");

    // Okta with an override, switched to Entra ID with the override left in its field: the
    // Entra tenant's own issuer is asked for (unreachable here, so refused, naming it).
    let form = [
        ("idp_type", "Okta"),
        ("sso_domain", "never.okta.invalid"),
        ("issuer_override", own.issuer.as_str()),
        ("client_id", "tandem-client"),
        ("client_secret", STUB_CLIENT_SECRET),
    ];
    assert_eq!(post_form(&app, &format!("{path}/oidc"), &form).await.0, StatusCode::SEE_OTHER);
    let form = [
        ("idp_type", "MicrosoftEntra"),
        ("tenant_id", "11111111-2222-3333-4444-555555555555"),
        ("issuer_override", own.issuer.as_str()),
        ("client_id", "tandem-client"),
        ("client_secret", STUB_CLIENT_SECRET),
    ];
    let (status, html, _) = post_form(&app, &format!("{path}/oidc"), &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("11111111-2222-3333-4444-555555555555/v2.0"), "{html}");
    let (_, client) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{third}")).await;
    assert_eq!(client["idp"]["type"], "Okta", "unchanged: {client}");

    // Other addresses under a link, and other methods, answer pages without the token.
    let (status, html, _) = get_page(&app.base, &app, &format!("{path}/elsewhere")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("No such page") && !html.contains("tandem_setup_"), "{html}");
    let resp = app.http.head(format!("{}{path}", app.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app.http.put(format!("{}{path}", app.base)).send().await.unwrap();
    assert_eq!(
        (resp.status(), &resp.headers()["allow"]),
        (StatusCode::METHOD_NOT_ALLOWED, &"GET, HEAD".parse().unwrap())
    );
    // The certificate's and the stylesheet's addresses too, and a path with %00: pages, never the API's JSON.
    for address in [format!("{path}/client-certificate.pem"), "/setup/assets/setup.css".to_string()] {
        let resp = app.http.post(format!("{}{address}", app.base)).send().await.unwrap();
        assert_eq!(
            (resp.status(), &resp.headers()["allow"]),
            (StatusCode::METHOD_NOT_ALLOWED, &"GET".parse().unwrap())
        );
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "{address}");
    }
    let resp = app.http.get(format!("{}{path}%00", app.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(!resp.text().await.unwrap().contains("tandem_setup_"));
}

/// A `private_key_jwt` client keeps its key through the page, which hands
/// out its certificate for the IdP.
#[tokio::test]
async fn a_keyed_clients_page_hands_out_its_certificate() {
    let app = spawn().await;
    let op = StubOp::start(false).await;
    let customer = unique("setup-keyed");
    let body = json!({"customer_id": customer, "redirect_url": redirect_url_of(&customer),
                      "idp": {"type": "Generic", "client_id": "tandem-client", "issuer": op.issuer,
                              "client_authentication": "private_key_jwt"}});
    let (status, created) = app.post("/api/v1/oidc-clients", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let link = make_link(&app, &customer, json!({})).await;
    let path = page_path(&app, &link);
    let (_, page, _) = get_page(&app.base, &app, &path).await;
    assert!(page.contains("client-certificate.pem") && !page.contains("name=\"client_secret\""), "{page}");
    let resp = app.http.get(format!("{}{path}/client-certificate.pem", app.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    // Saving the IdP settings keeps the key.
    let form = [("idp_type", "Generic"), ("issuer", op.issuer.as_str()), ("client_id", "tandem-client-2")];
    assert_eq!(post_form(&app, &format!("{path}/oidc"), &form).await.0, StatusCode::SEE_OTHER);
    let (_, client) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{customer}")).await;
    assert_eq!(client["idp"]["client_authentication"], "private_key_jwt", "{client}");
    // A link of a customer whose client has a secret has no certificate.
    let other = unique("setup-unkeyed");
    let link = make_link(&app, &other, json!({})).await;
    let (status, _, _) = get_page(&app.base, &app, &format!("{}/client-certificate.pem", page_path(&app, &link))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The app gives, with the link, the settings of a client the link
/// creates (its decisions, which the page does not show); they are
/// checked as a client's create checks them.
#[tokio::test]
async fn a_link_gives_the_client_it_creates_the_apps_settings() {
    let app = spawn().await;
    let op = StubOp::start(false).await;
    let customer = unique("setup-settings");
    let settings = json!({"email_domain_allowlist": ["Acme.com"], "scim_required": true,
                          "scim_matching_definition": {"strategy": "OidcSubToScimExternalId"}});
    let link =
        make_link(&app, &customer, json!({"redirect_url": redirect_url_of(&customer), "client": settings})).await;
    assert_eq!(link["client"], settings, "{link}");
    let path = page_path(&app, &link);
    assert_eq!(
        post_form(&app, &format!("{path}/oidc"), &generic_form(&op, STUB_CLIENT_SECRET)).await.0,
        StatusCode::SEE_OTHER
    );
    let (_, client) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{customer}")).await;
    assert_eq!(client["email_domain_allowlist"], json!(["acme.com"]), "{client}");
    assert_eq!(client["scim_required"], true, "{client}");
    assert_eq!(client["scim_matching_definition"]["strategy"], "OidcSubToScimExternalId", "{client}");
    // Checked when the link is made, each bad setting named.
    let bad = json!({"customer_id": customer, "client": {"email_domain_allowlist": ["@acme.com"], "colour": 1}});
    let (status, body) = app.post("/api/v1/setup-links", bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid_fields(&body), ["client.colour"], "unknown settings first: {body}");
    let bad = json!({"customer_id": customer, "client": {"email_domain_allowlist": ["@acme.com"]}});
    let (_, body) = app.post("/api/v1/setup-links", bad).await;
    assert_eq!(invalid_fields(&body), ["client.email_domain_allowlist[0]"], "{body}");
    let (_, body) = app.post("/api/v1/setup-links", json!({"customer_id": customer, "client": "x"})).await;
    assert_eq!(invalid_fields(&body), ["client"], "{body}");
    // Settings only some IdP types refuse: the page's admin may pick that
    // type, whose every save would then fail on a field the page lacks.
    let entra_cannot = json!({"customer_id": customer, "client": {"scopes": ["openid", "email"]}});
    let (status, body) = app.post("/api/v1/setup-links", entra_cannot).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid_fields(&body), ["client.scopes"], "{body}");
    let message = body["error"]["details"]["fields"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("profile") && message.contains("IdP type MicrosoftEntra"), "{body}");
    let every_type_can = json!({"customer_id": customer, "client": {"scopes": ["openid", "email", "profile"]}});
    assert_eq!(app.post("/api/v1/setup-links", every_type_can).await.0, StatusCode::CREATED);
    // `profile` among the additional scopes is asked for all the same.
    let added = json!({"customer_id": customer,
                       "client": {"scopes": ["openid", "email"], "additional_scopes": ["profile"]}});
    assert_eq!(app.post("/api/v1/setup-links", added).await.0, StatusCode::CREATED);
}

/// A form that stops arriving midway (a setup page's, the dashboard's
/// sign-in) is answered with a 408 page once `server.body_timeout_secs` has
/// passed, and its connection closed, instead of holding it for good.
#[tokio::test]
async fn a_form_that_stalls_is_answered_408() {
    let app = TestApp::spawn_adjusted(|s| {
        s.oidc.setup_links_allow_private_issuers = true;
        s.server.body_timeout_secs = 1;
    })
    .await;
    let link = make_link(&app, &unique("setup-stall"), json!({})).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    for path in [format!("{}/oidc", page_path(&app, &link)), "/dashboard/login".to_string()] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: 1000\r\n\r\nidp_type=Generic&issuer="
        );
        let answer = answer_to_stalled_body(&addr, &head, &path).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(answer.contains("The form could not be read: it did not arrive within 1 s"), "{path}: {answer}");
    }
}
