//! The admin dashboard: no page or form accepts a request without a valid
//! session, and no form without the session's CSRF token.

use crate::helpers::*;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::json;

/// A browser-like session: the cookies it holds.
struct Browser<'a> {
    app: &'a TestApp,
    cookies: Vec<(String, String)>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Browser { app, cookies: Vec::new() }
    }

    fn jar(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep(&mut self, resp: &reqwest::Response) {
        for sc in resp.headers().get_all(SET_COOKIE) {
            let pair = sc.to_str().unwrap().split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !v.is_empty() {
                self.cookies.push((k.into(), v.into()));
            }
        }
    }

    async fn get(&mut self, path: &str) -> (StatusCode, String, reqwest::header::HeaderMap) {
        let resp =
            self.app.http.get(format!("{}{path}", self.app.base)).header(COOKIE, self.jar()).send().await.unwrap();
        self.keep(&resp);
        let (s, h) = (resp.status(), resp.headers().clone());
        (s, resp.text().await.unwrap(), h)
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String, reqwest::header::HeaderMap) {
        let resp = self
            .app
            .http
            .post(format!("{}{path}", self.app.base))
            .header(COOKIE, self.jar())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(&resp);
        let (s, h) = (resp.status(), resp.headers().clone());
        (s, resp.text().await.unwrap(), h)
    }

    async fn sign_in(&mut self, key: &str) -> StatusCode {
        self.sign_in_cookies(key).await.0
    }

    /// Signs in: the answer's status and the cookies it sets, as sent.
    async fn sign_in_cookies(&mut self, key: &str) -> (StatusCode, Vec<String>) {
        let (_, page, _) = self.get("/dashboard/login").await;
        let csrf = field(&page, "csrf");
        let (status, _, headers) = self.post("/dashboard/login", &[("key", key), ("csrf", &csrf)]).await;
        (status, headers.get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_string()).collect())
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The value of a hidden input in a page.
fn field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no {name} field")) + marker.len();
    page[start..].split('"').next().unwrap().to_string()
}

async fn customer(app: &TestApp) -> String {
    let c = unique("dash");
    let mut body = okta_client(&c);
    body["scim_matching_definition"] = json!({"strategy": "OidcSubToScimUsername"});
    let (status, _) = app.post("/api/v1/oidc-clients", body).await;
    assert_eq!(status, StatusCode::CREATED);
    app.create_scim_connection(&c).await;
    c
}

#[tokio::test]
async fn pages_without_a_session_redirect_to_sign_in_and_forms_are_refused() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let mut b = Browser::new(&app);
    let (status, _, headers) = b.get("/dashboard").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/dashboard/login");
    // A link to a page leads to sign-in, which leads back to it.
    let (status, _, headers) = b.get(&format!("/dashboard/customers/{c}?preview=OidcSubToScimUsername")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let expected = format!("/dashboard/login?next=%2Fdashboard%2Fcustomers%2F{c}%3Fpreview%3DOidcSubToScimUsername");
    assert_eq!(headers[LOCATION], expected.as_str());
    for path in [
        format!("/dashboard/customers/{c}/strategy"),
        format!("/dashboard/customers/{c}/rotate-key"),
        format!("/dashboard/customers/{c}/scim-required"),
        "/dashboard/logout".into(),
    ] {
        let (status, _, _) = b.post(&path, &[("strategy", "OidcEmailToScimUsername"), ("csrf", "guess")]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    // A made-up session cookie is no session.
    b.cookies.push(("tandem_dashboard".into(), "forged".into()));
    assert_eq!(b.get("/dashboard").await.0, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn sign_in_needs_a_valid_key_and_the_forms_csrf_token() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in("tandem_ik_wrong").await, StatusCode::UNAUTHORIZED);
    // Without the sign-in form's token (a cross-site post) the key is not even checked.
    let mut other = Browser::new(&app);
    let (status, _, _) = other.post("/dashboard/login", &[("key", &app.key), ("csrf", "x")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, cookies) = b.sign_in_cookies(&app.key).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = cookies.iter().find(|c| c.starts_with("tandem_dashboard=")).unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/dashboard"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "the test server's public URL is http: {cookie}");
}

/// Sign-in forms shown in several tabs of one browser (each sent to
/// sign-in when the session ended) all sign in, not only the last one
/// shown; another browser's token does not.
#[tokio::test]
async fn a_sign_in_form_in_each_of_several_tabs_signs_in() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    let mut tabs = Vec::new();
    for _ in 0..3 {
        let (_, page, _) = b.get("/dashboard/login").await;
        tabs.push(field(&page, "csrf"));
    }
    let mut other = Browser::new(&app);
    let (_, page, _) = other.get("/dashboard/login").await;
    let (status, _, _) = b.post("/dashboard/login", &[("key", &app.key), ("csrf", &field(&page, "csrf"))]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another browser's form");
    let (status, _, _) = b.post("/dashboard/login", &[("key", &app.key), ("csrf", &tabs[0])]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the first tab's form");
    let (status, _, _) = b.post("/dashboard/login", &[("key", &app.key), ("csrf", &tabs[2])]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "another tab's, after the first signed in");
}

/// A sign-in started from a link to a page leads back to that page, and
/// only ever to a dashboard page.
#[tokio::test]
async fn a_sign_in_leads_back_to_the_page_asked_for_and_nowhere_else() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let page = format!("/dashboard/customers/{c}");
    for (next, lands) in [
        (page.as_str(), page.as_str()),
        ("https://evil.example/dashboard", "/dashboard"),
        ("//evil.example/dashboard", "/dashboard"),
        ("/dashboardx", "/dashboard"),
        ("/api/v1/oidc-clients", "/dashboard"),
    ] {
        let mut b = Browser::new(&app);
        let (_, form, _) = b.get(&format!("/dashboard/login?next={}", urlencode(next))).await;
        let csrf = field(&form, "csrf");
        let (status, _, headers) =
            b.post("/dashboard/login", &[("key", &app.key), ("csrf", &csrf), ("next", next)]).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{next}");
        assert_eq!(headers[LOCATION], lands, "{next}");
        assert_eq!(form.contains("name=\"next\""), next == page, "{next}: only a dashboard page is carried");
    }
}

/// An https public URL, however its scheme is written, makes every
/// dashboard cookie `Secure`.
#[tokio::test]
async fn an_https_public_url_makes_the_cookies_secure() {
    let dir = scratch_dir();
    let mut settings = test_settings(&dir);
    settings.server.public_url = "HTTPS://SSO.Example.com/".into();
    let app = TestApp::spawn_with(settings, dir).await;
    let mut b = Browser::new(&app);
    let resp = app.http.get(format!("{}/dashboard/login", app.base)).send().await.unwrap();
    let login_cookie = resp.headers()[SET_COOKIE].to_str().unwrap().to_string();
    let login = resp.text().await.unwrap();
    assert!(login_cookie.contains("; Secure"), "{login_cookie}");
    // Over plain http the browser keeps the Secure cookie to itself: the refusal says why.
    let (status, refused, _) =
        Browser::new(&app).post("/dashboard/login", &[("key", &app.key), ("csrf", &field(&login, "csrf"))]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(refused.contains("open the dashboard over https"), "{refused}");
    let (status, session) = b.sign_in_cookies(&app.key).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // `__Host-` cookies: Secure, on the path `/`, without a Domain, so a
    // sibling subdomain cannot plant one.
    assert!(login_cookie.starts_with("__Host-tandem_dashboard_login="), "{login_cookie}");
    assert!(session.iter().any(|c| c.starts_with("__Host-tandem_dashboard=")), "{session:?}");
    for c in session.iter().chain([&login_cookie]) {
        let parts: Vec<&str> = c.split("; ").collect();
        assert!(parts.contains(&"Secure") && parts.contains(&"Path=/") && !c.contains("Domain"), "{c}");
    }
    assert_eq!(b.get("/dashboard").await.0, StatusCode::OK);
    // A cookie without the prefix (as a subdomain could set) is no session.
    let mut planted = Browser::new(&app);
    planted.cookies.push(("tandem_dashboard".into(), session_token(&session)));
    assert_eq!(planted.get("/dashboard").await.0, StatusCode::SEE_OTHER);
}

/// The value of the session cookie among the `Set-Cookie` headers of a sign-in.
fn session_token(cookies: &[String]) -> String {
    let cookie = cookies.iter().find(|c| c.starts_with("__Host-tandem_dashboard=")).expect("a session cookie");
    cookie["__Host-tandem_dashboard=".len()..].split(';').next().unwrap_or_default().to_string()
}

/// The matching section says how many SSO users the allowlist refuses
/// (counted under no strategy), and nothing when there are none.
#[tokio::test]
async fn the_matching_section_counts_users_the_allowlist_refuses() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in(&app.key).await, StatusCode::SEE_OTHER);
    let (_, page, _) = b.get(&format!("/dashboard/customers/{c}")).await;
    assert!(!page.contains("blocked-by-allowlist"), "{page}");
    let (_, client) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{c}")).await;
    // No email: the allowlist (acme.com) refuses the login before the join.
    record_seen(&app, client["oidc_client_id"].as_str().unwrap(), "00u-no-email", chrono::Utc::now());
    let (_, page, _) = b.get(&format!("/dashboard/customers/{c}")).await;
    assert!(page.contains("id=\"blocked-by-allowlist\">1 of the SSO users seen"), "{page}");
    // A key pasted where the customer ID goes is cut in the page that says nobody is there.
    let (status, page, _) = b.get(&format!("/dashboard/customers/{}", app.key)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{page}");
    assert!(!page.contains(app.key.trim_start_matches("tandem_ik_")) && page.contains("tandem_ik_…"), "{page}");
}

#[tokio::test]
async fn saving_a_strategy_needs_the_sessions_csrf_token_and_is_audited() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in(&app.key).await, StatusCode::SEE_OTHER);
    let (status, page, headers) = b.get(&format!("/dashboard/customers/{c}?preview=OidcEmailToScimUsername")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    assert!(page.contains("Previewing"));
    let csrf = field(&page, "csrf");
    let path = format!("/dashboard/customers/{c}/strategy");
    for bad in ["", "wrong-token"] {
        let (status, _, _) = b.post(&path, &[("strategy", "OidcEmailToScimUsername"), ("csrf", bad)]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    // A value with the NUL character is named, not a failure of the database's.
    let (status, page, _) = b.post(&path, &[("strategy", "OidcEmail\0"), ("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("strategy") && page.contains("NUL character"), "{page}");
    let (_, client) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{c}")).await;
    assert_eq!(client["scim_matching_definition"]["strategy"], "OidcSubToScimUsername", "unchanged by refused forms");
    let (status, _, headers) = b.post(&path, &[("strategy", "OidcEmailToScimUsername"), ("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let saved = headers[LOCATION].to_str().unwrap().to_string();
    assert!(saved.contains("saved=OidcEmailToScimUsername"));
    let (_, page, _) = b.get(&saved).await;
    assert!(page.contains("the matching strategy is now"), "{page}");
    // The notice names a strategy or nothing: a link's own text is not shown as a notice.
    let (_, page, _) =
        b.get(&format!("/dashboard/customers/{c}?saved=X.%20Paste%20your%20key%20at%20evil.example")).await;
    assert!(!page.contains("evil.example") && !page.contains("the matching strategy is now"), "{page}");
    // Nor does a link claim a save of a strategy that is not in force.
    let (_, page, _) = b.get(&format!("/dashboard/customers/{c}?saved=OidcSubToScimExternalId")).await;
    assert!(!page.contains("the matching strategy is now"), "{page}");
    let (_, client) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{c}")).await;
    assert_eq!(client["scim_matching_definition"]["strategy"], "OidcEmailToScimUsername");
    let id = client["oidc_client_id"].as_str().unwrap().to_string();
    let (_, log) = app.get(&format!("/api/v1/audit-events?target_id={id}&action=oidc_client.strategy_changed")).await;
    let change = &log["data"][0];
    assert_eq!(change["details"]["via"], "dashboard", "{log}");
    assert_eq!(change["details"]["strategy"]["old"], "OidcSubToScimUsername", "{log}");
    assert_eq!(change["details"]["strategy"]["new"], "OidcEmailToScimUsername", "{log}");
    // Saving the strategy already chosen changes nothing, and records nothing.
    let (status, _, _) = b.post(&path, &[("strategy", "OidcEmailToScimUsername"), ("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, again) = app.get(&format!("/api/v1/audit-events?target_id={id}&action=oidc_client.strategy_changed")).await;
    assert_eq!(again["data"].as_array().unwrap().len(), 1, "{again}");
}

/// The key a rotation shows.
fn shown_key(page: &str) -> String {
    let start = page.find("id=\"new-scim-key\">").unwrap_or_else(|| panic!("no new key: {page}"))
        + "id=\"new-scim-key\">".len();
    page[start..start + page[start..].find('<').unwrap()].to_string()
}

#[tokio::test]
async fn rotating_the_scim_key_shows_the_new_key_once() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in(&app.key).await, StatusCode::SEE_OTHER);
    let (_, page, _) = b.get(&format!("/dashboard/customers/{c}")).await;
    let (csrf, current) = (field(&page, "csrf"), field(&page, "current_key"));
    assert!(!current.is_empty(), "the form names the key it replaces");
    assert!(page.contains("keeps working for 24 hours"), "the grace period is told: {page}");
    let rotate = format!("/dashboard/customers/{c}/rotate-key");
    let (status, _, _) = b.post(&rotate, &[("csrf", "nope"), ("current_key", &current)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, old_form, _) = b.post(&rotate, &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a form that names no key rotates nothing");
    assert!(old_form.contains("reload the customer page"), "{old_form}");
    let (status, page, _) = b.post(&rotate, &[("csrf", &csrf), ("current_key", &current)]).await;
    assert_eq!(status, StatusCode::OK);
    let key = shown_key(&page);
    assert!(key.starts_with("tandem_scim_"), "{key}");
    assert!(page.contains("the previous key keeps working until"), "{page}");
    let (_, again, _) = b.get(&format!("/dashboard/customers/{c}")).await;
    assert!(!again.contains(&key), "the key is shown only once");
    assert!(again.contains("never used"), "{again}");
    let (_, conn) = app.get(&format!("/api/v1/scim-connections/by-customer-id/{c}")).await;
    let scim = Scim {
        base: conn["scim_base_url"].as_str().unwrap().to_string(),
        key: key.clone(),
        connection_id: conn["scim_connection_id"].as_str().unwrap().to_string(),
        http: app.http.clone(),
    };
    assert_eq!(scim.get("/Users").await.status, StatusCode::OK);
    let (_, used, _) = b.get(&format!("/dashboard/customers/{c}")).await;
    assert!(used.contains("last used ") && !used.contains("never used"), "{used}");
    assert_ne!(field(&again, "current_key"), current, "the new key is the current one");

    // The same form sent again (a reload) rotates nothing: the key just shown stays the one.
    let (status, resent, _) = b.post(&rotate, &[("csrf", &csrf), ("current_key", &current)]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(resent.contains("Not rotated") && !resent.contains("new-scim-key"), "{resent}");
    assert_eq!(field(&resent, "current_key"), field(&again, "current_key"), "no second rotation");
    let (_, mut conn) = app.get(&format!("/api/v1/scim-connections/by-customer-id/{c}")).await;
    let id = conn["scim_connection_id"].clone();
    conn["scim_api_key"] = json!(key);
    assert_eq!(app.scim_of(&conn).get("/Users").await.status, StatusCode::OK, "the key shown works");
    let (_, rotations) = app
        .get(&format!("/api/v1/audit-events?target_id={}&action=scim_connection.key_rotated", id.as_str().unwrap()))
        .await;
    assert_eq!(rotations["data"].as_array().unwrap().len(), 1, "{rotations}");
}

/// Two rotations sent from one form at once (a double click, two admins):
/// one rotates, the other finds the key replaced. On PostgreSQL both are
/// held at the connection's row until both wait there; SQLite runs writes
/// one at a time.
#[tokio::test]
async fn two_rotations_from_one_form_at_once_rotate_once() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in(&app.key).await, StatusCode::SEE_OTHER);
    let (_, page, _) = b.get(&format!("/dashboard/customers/{c}")).await;
    let form = [("csrf", field(&page, "csrf")), ("current_key", field(&page, "current_key"))];
    let (_, conn) = app.get(&format!("/api/v1/scim-connections/by-customer-id/{c}")).await;
    let id = conn["scim_connection_id"].as_str().unwrap().to_string();
    let holding = postgres_url().map(|_| {
        let (store, id) = (app.state.store.clone(), id.clone());
        let (held, wait_held) = std::sync::mpsc::channel();
        let (release, wait_release) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            store.write_blocking(move |c| {
                let lock = format!("SELECT id FROM scim_connections WHERE id = '{id}' FOR UPDATE");
                diesel::connection::SimpleConnection::batch_execute(c, &lock)?;
                held.send(backend_pid(c)?).unwrap();
                let _ = wait_release.recv_timeout(std::time::Duration::from_secs(30));
                Ok(())
            })
        });
        (wait_held.recv().expect("the row is held"), release, holder)
    });
    let mut sent = Vec::new();
    for _ in 0..2 {
        let (http, url, jar, form) =
            (app.http.clone(), format!("{}/dashboard/customers/{c}/rotate-key", app.base), b.jar(), form.clone());
        sent.push(tokio::spawn(async move {
            http.post(url).header(COOKIE, jar).form(&form).send().await.unwrap().status()
        }));
    }
    if let Some((pid, release, holder)) = holding {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while waiting_on(&app.state.store, pid) < 2 {
            assert!(std::time::Instant::now() < deadline, "the rotations never both waited on the row");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        release.send(()).unwrap();
        holder.join().unwrap().unwrap();
    }
    let mut statuses = Vec::new();
    for s in sent {
        statuses.push(s.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);
    let (_, rotations) =
        app.get(&format!("/api/v1/audit-events?target_id={id}&action=scim_connection.key_rotated")).await;
    assert_eq!(rotations["data"].as_array().unwrap().len(), 1, "{rotations}");
}

/// Without a grace period a rotation cuts the current key off at once: the
/// form says so and must be confirmed.
#[tokio::test]
async fn a_rotation_without_grace_must_be_confirmed() {
    let app = TestApp::spawn_adjusted(|s| s.scim.rotation_grace_hours = 0).await;
    let c = customer(&app).await;
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in(&app.key).await, StatusCode::SEE_OTHER);
    let (_, page, _) = b.get(&format!("/dashboard/customers/{c}")).await;
    let (csrf, current) = (field(&page, "csrf"), field(&page, "current_key"));
    assert!(page.contains("name=\"cut_off_now\"") && page.contains("stops working at once"), "{page}");
    let rotate = format!("/dashboard/customers/{c}/rotate-key");
    let (status, refused, _) = b.post(&rotate, &[("csrf", &csrf), ("current_key", &current)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(refused.contains("tick the box"), "{refused}");
    let form = [("csrf", csrf.as_str()), ("current_key", current.as_str()), ("cut_off_now", "yes")];
    let (status, page, _) = b.post(&rotate, &form).await;
    assert_eq!(status, StatusCode::OK);
    shown_key(&page);
    assert!(page.contains("the previous key stopped working now"), "{page}");
}

/// A sign-out that cannot close the session says so (503), instead of
/// answering as signed out while a copy of the cookie keeps working.
#[tokio::test]
async fn a_sign_out_the_database_refuses_is_not_reported_as_done() {
    let app = TestApp::spawn_on_own_database().await;
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in(&app.key).await, StatusCode::SEE_OTHER);
    let (_, page, _) = b.get("/dashboard").await;
    let csrf = field(&page, "csrf");
    let sql = |create: bool| -> &'static str {
        match (app.state.store.backend(), create) {
            ("sqlite", true) => {
                "CREATE TRIGGER keep_sessions BEFORE DELETE ON dashboard_sessions BEGIN SELECT RAISE(ABORT, 'kept'); END;"
            }
            ("sqlite", false) => "DROP TRIGGER keep_sessions;",
            (_, true) => {
                "CREATE FUNCTION keep_sessions() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'kept'; END $$ LANGUAGE plpgsql; \
                 CREATE TRIGGER keep_sessions BEFORE DELETE ON dashboard_sessions FOR EACH ROW EXECUTE FUNCTION keep_sessions();"
            }
            (_, false) => "DROP TRIGGER keep_sessions ON dashboard_sessions; DROP FUNCTION keep_sessions();",
        }
    };
    let run = |statement: &'static str| {
        use diesel::connection::SimpleConnection;
        app.state.store.write_blocking(move |c| c.batch_execute(statement).map_err(Into::into)).unwrap()
    };
    run(sql(true));
    let (status, page, _) = b.post("/dashboard/logout", &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{page}");
    assert!(page.contains("could not be closed"), "{page}");
    assert_eq!(b.get("/dashboard").await.0, StatusCode::OK, "still signed in, and told so");
    run(sql(false));
    assert_eq!(b.post("/dashboard/logout", &[("csrf", &csrf)]).await.0, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn signing_out_or_revoking_the_key_ends_the_session() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in(&app.key).await, StatusCode::SEE_OTHER);
    let (status, page, _) = b.get("/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    let stolen = b.cookies.clone();
    let csrf = field(&page, "csrf");
    let (status, _, _) = b.post("/dashboard/logout", &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let mut replay = Browser { app: &app, cookies: stolen };
    assert_eq!(replay.get("/dashboard").await.0, StatusCode::SEE_OTHER, "the old cookie no longer works");
    // A revoked key ends its sessions.
    let mut c = Browser::new(&app);
    assert_eq!(c.sign_in(&app.key).await, StatusCode::SEE_OTHER);
    assert_eq!(c.get("/dashboard").await.0, StatusCode::OK, "signed in before the revocation");
    let key = app.key.clone();
    app.state
        .store
        .write_blocking(move |conn| {
            let hash = tandem_core::keys::hash_key(&key);
            let id = tandem_store::integration_keys::list(conn)?.into_iter().find(|k| k.key_hash == hash).unwrap().id;
            tandem_store::integration_keys::revoke(conn, &id, chrono::Utc::now())
        })
        .unwrap();
    assert_eq!(c.get("/dashboard").await.0, StatusCode::SEE_OTHER);
}

/// A customer whose SCIM connection went after pairing: the pages say that
/// every login is refused, where an unpaired customer is SSO-only.
#[tokio::test]
async fn a_paired_customer_without_its_connection_is_shown_as_refusing_logins() {
    // A database of its own: the overview counts every customer's badge.
    let app = TestApp::spawn_on_own_database().await;
    let c = customer(&app).await;
    let sso_only = unique("sso-only");
    app.post("/api/v1/oidc-clients", okta_client(&sso_only)).await;
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in(&app.key).await, StatusCode::SEE_OTHER);
    let (_, page, _) = b.get(&format!("/dashboard/customers/{c}")).await;
    assert!(page.contains("yes: without a SCIM connection every login is refused"), "{page}");
    let (_, conn) = app.get(&format!("/api/v1/scim-connections/by-customer-id/{c}")).await;
    app.delete(&format!("/api/v1/scim-connections/{}", conn["scim_connection_id"].as_str().unwrap())).await;
    let (_, page, _) = b.get(&format!("/dashboard/customers/{c}")).await;
    assert!(page.contains("the OIDC client requires a SCIM user: every login is refused"), "{page}");
    let (_, page, _) = b.get(&format!("/dashboard/customers/{sso_only}")).await;
    assert!(page.contains("logins are SSO-only (no deprovisioning check)"), "{page}");
    let (_, page, _) = b.get("/dashboard").await;
    assert_eq!(page.matches("no SCIM connection: logins refused").count(), 1, "only {c}: {page}");
    // The admin may let the customer's logins through without SCIM (audited), and require it again.
    let path = format!("/dashboard/customers/{c}/scim-required");
    let (_, page, _) = b.get(&format!("/dashboard/customers/{c}")).await;
    assert!(page.contains("Let logins through without a SCIM connection"), "{page}");
    let csrf = field(&page, "csrf");
    let (status, _, _) = b.post(&path, &[("required", "false"), ("csrf", "guess")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the form needs the session's token");
    let (status, _, headers) = b.post(&path, &[("required", "false"), ("csrf", &csrf)]).await;
    assert_eq!(
        (status, &headers[LOCATION]),
        (StatusCode::SEE_OTHER, &format!("/dashboard/customers/{c}").parse().unwrap())
    );
    let (_, client) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{c}")).await;
    assert_eq!(client["scim_required"], false, "{client}");
    let id = client["oidc_client_id"].as_str().unwrap().to_string();
    let (_, log) = app.get(&format!("/api/v1/audit-events?target_id={id}&action=oidc_client.updated")).await;
    assert_eq!(log["data"][0]["details"]["via"], "dashboard", "{log}");
    assert_eq!(log["data"][0]["details"]["scim_required"], json!({"old": true, "new": false}), "{log}");
    let (_, page, _) = b.get(&format!("/dashboard/customers/{c}")).await;
    assert!(page.contains("logins are SSO-only (no deprovisioning check)"), "{page}");
    let (status, _, _) = b.post(&path, &[("required", "true"), ("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, client) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{c}")).await;
    assert_eq!(client["scim_required"], true, "{client}");
    let (status, page, _) = b.post(&path, &[("required", "maybe"), ("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
}

#[tokio::test]
async fn customer_ids_are_escaped_in_pages() {
    // A database of its own: the overview lists the oldest thousand
    // customers, and the shared one may hold more.
    let app = TestApp::spawn_on_own_database().await;
    let c = format!("<script>alert(1)</script>{}", unique("x"));
    app.create_scim_connection(&c).await;
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in(&app.key).await, StatusCode::SEE_OTHER);
    let (_, page, _) = b.get("/dashboard").await;
    assert!(!page.contains("<script>alert(1)"));
    assert!(page.contains("&lt;script&gt;alert(1)"));
}

#[tokio::test]
async fn the_overview_says_when_it_shows_only_the_first_thousand() {
    // A database of its own: a thousand connections would crowd the shared one.
    let app = TestApp::spawn_on_own_database().await;
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in(&app.key).await, StatusCode::SEE_OTHER);
    let (_, page, _) = b.get("/dashboard").await;
    assert!(!page.contains("Showing the customers of the first"), "{page}");
    app.state
        .store
        .write_blocking(|c| {
            for i in 0..1000 {
                tandem_store::scim_connections::create(c, &format!("bulk-{i:04}"), None, "reject", chrono::Utc::now())?;
            }
            Ok(())
        })
        .unwrap();
    let (_, page, _) = b.get("/dashboard").await;
    assert!(page.contains("bulk-0999") && !page.contains("Showing the customers of the first"), "exactly 1,000");
    app.state
        .store
        .write_blocking(|c| {
            tandem_store::scim_connections::create(c, "bulk-1000", None, "reject", chrono::Utc::now()).map(|_| ())
        })
        .unwrap();
    let (status, page, _) = b.get("/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Showing the customers of the first 1000"), "{page}");
    assert!(page.contains("bulk-0999") && !page.contains("bulk-1000"), "the oldest thousand are listed");
}

/// A private_key_jwt client's page shows its keys by the thumbprint Entra
/// lists, and hands out the current certificate to give the customer; only
/// in a session, and only for a client with keys.
#[tokio::test]
async fn a_keyed_clients_certificate_is_shown_and_downloaded_in_a_session() {
    let app = TestApp::spawn().await;
    let c = unique("dash-keys");
    let (status, created) = app
        .post(
            "/api/v1/oidc-clients",
            json!({"customer_id": c, "verify": false, "redirect_url": format!("http://127.0.0.1:9/cb/{c}"),
                   "idp": {"type": "Generic", "client_id": "app", "issuer": "http://127.0.0.1:9",
                           "client_authentication": "private_key_jwt"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = &created["idp"]["client_keys"][0];
    let download = format!("/dashboard/customers/{}/client-certificate.pem", urlencode(&c));
    let mut b = Browser::new(&app);
    let (status, _, headers) = b.get(&download).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "no session, no certificate");
    assert!(headers[LOCATION].to_str().unwrap().starts_with("/dashboard/login"));
    assert_eq!(b.sign_in(&app.key).await, StatusCode::SEE_OTHER);
    let (status, page, _) = b.get(&format!("/dashboard/customers/{}", urlencode(&c))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(key["certificate_thumbprint_sha1"].as_str().unwrap()), "{page}");
    assert!(page.contains("client-certificate.pem"), "{page}");
    let (status, pem, headers) = b.get(&download).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pem, key["certificate_pem"].as_str().unwrap());
    assert_eq!(headers["content-type"], "application/x-pem-file");
    assert!(headers["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\"tandem-client-"));
    // A customer whose client signs with a secret has none.
    let other = customer(&app).await;
    let (status, _, _) = b.get(&format!("/dashboard/customers/{}/client-certificate.pem", urlencode(&other))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The overview's form makes a setup link, as the API does, by the
/// session's key, its URL shown once; it needs the session's CSRF token.
#[tokio::test]
async fn the_overview_makes_a_setup_link() {
    let app = TestApp::spawn_adjusted(|s| s.oidc.setup_links_allow_private_issuers = true).await;
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in(&app.key).await, StatusCode::SEE_OTHER);
    let (_, overview, _) = b.get("/dashboard").await;
    assert!(overview.contains("Make a setup link"), "{overview}");
    let csrf = field(&overview, "csrf");
    let customer = unique("dash-setup");
    let redirect = format!("https://app.example.com/sso/callback/{customer}");
    let form = [
        ("csrf", csrf.as_str()),
        ("customer_id", customer.as_str()),
        ("redirect_url", redirect.as_str()),
        ("expires_in_hours", "24"),
    ];
    let (status, page, _) = b.post("/dashboard/setup-links", &form).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let start = page.find("/setup/tandem_setup_").expect("the link on the page");
    let path: String = page[start..].chars().take_while(|c| *c != '<' && *c != '"').collect();
    let resp = app.http.get(format!("{}{path}", app.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, listed) = app.get(&format!("/api/v1/setup-links?customer_id={customer}")).await;
    assert_eq!(listed["data"][0]["redirect_url"], json!(redirect), "{listed}");
    let id = listed["data"][0]["id"].as_str().unwrap();
    let (_, log) = app.get(&format!("/api/v1/audit-events?target_id={id}&action=setup_link.created")).await;
    assert_eq!(log["data"][0]["details"]["via"], "dashboard", "{log}");
    // Bad fields are named; a form without the CSRF token is refused.
    let form = [("csrf", csrf.as_str()), ("customer_id", ""), ("expires_in_hours", "never")];
    let (status, page, _) = b.post("/dashboard/setup-links", &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("customer_id") && page.contains("expires_in_hours"), "{page}");
    let (status, _, _) = b.post("/dashboard/setup-links", &[("customer_id", "x")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The overview lists the links that work, each with a button that revokes it.
    let (_, overview, _) = b.get("/dashboard").await;
    let prefix = listed["data"][0]["token_prefix"].as_str().unwrap();
    let revoke = format!("/dashboard/setup-links/{id}/revoke");
    assert!(overview.contains(prefix) && overview.contains(&revoke), "{overview}");
    let (status, _, _) = b.post(&revoke, &[("csrf", "forged")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no revoke without the session's CSRF token");
    let (status, page, _) = b.post(&revoke, &[("csrf", csrf.as_str())]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("no longer works"), "{page}");
    let (_, shown) = app.get(&format!("/api/v1/setup-links/{id}")).await;
    assert_eq!(shown["state"], "revoked", "{shown}");
    let resp = app.http.get(format!("{}{path}", app.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "the link no longer works");
    let (_, log) = app.get(&format!("/api/v1/audit-events?target_id={id}&action=setup_link.revoked")).await;
    assert_eq!(log["data"][0]["details"]["via"], "dashboard", "{log}");
    let (_, overview, _) = b.get("/dashboard").await;
    assert!(!overview.contains(&revoke), "no longer listed: {overview}");
    let (_, page, _) = b.post(&revoke, &[("csrf", csrf.as_str())]).await;
    assert!(page.contains("revoked already"), "{page}");
    let (status, _, _) = b.post("/dashboard/setup-links/nope/revoke", &[("csrf", csrf.as_str())]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
