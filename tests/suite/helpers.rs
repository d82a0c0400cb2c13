//! Starting a server for a test and talking to it.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tandem::settings::{Overrides, Settings};
use tandem_core::clock::ShiftedClock;

/// The database URL tests run on: the PostgreSQL one given in the
/// environment, or `None` for a fresh SQLite file per test.
pub fn postgres_url() -> Option<String> {
    std::env::var("SUITE_DATABASE_URL").ok().filter(|u| u.starts_with("postgres"))
}

/// A new, empty PostgreSQL database beside the suite's (named
/// `tandem_scratch_…`; `.ci/run` drops any a failed test left), as a URL.
pub fn scratch_postgres_database(base: &str) -> String {
    let name = format!("tandem_scratch_{}", uuid::Uuid::new_v4().simple());
    let admin = tandem_store::Store::open(base, &tandem_store::PoolOptions::default()).unwrap();
    let create = format!("CREATE DATABASE {name}");
    admin
        .read_blocking(move |c| {
            diesel::connection::SimpleConnection::batch_execute(c, &create).map_err(tandem_store::StoreError::from)
        })
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{name}")
}

/// A scratch directory unique to one test.
pub fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("tandem-suite").join(uuid::Uuid::new_v4().to_string());
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The secret key every test server uses (test data only).
pub const SUITE_SECRET_KEY: &str = "dGFuZGVtLXRlc3Qtc3VpdGUtc2VjcmV0LWtleS0zMmI=";

/// A unique customer id, so tests sharing a PostgreSQL database stay apart.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

// PostgreSQL tests share one database; migrate it once, not concurrently.
static MIGRATED: Mutex<bool> = Mutex::new(false);

/// A running server and a client with an integration key.
pub struct TestApp {
    pub base: String,
    /// The admin listener's base URL, when the settings set `server.admin_bind`.
    pub admin_base: Option<String>,
    pub key: String,
    pub http: reqwest::Client,
    pub clock: Arc<ShiftedClock>,
    pub state: tandem_web::AppState,
    pub dir: PathBuf,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop the server (its own thread carries the command out), wait for
        // it, and stop the log writer: no thread of this test still holds a
        // database connection when the next test, or the process's exit, runs.
        drop(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.state.log_sink.close();
    }
}

/// The settings a test server runs with.
pub fn test_settings(dir: &std::path::Path) -> Settings {
    let db = postgres_url().unwrap_or_else(|| format!("sqlite://{}", dir.join("tandem.db").display()));
    let overrides = Overrides { bind: Some("127.0.0.1:0".into()), database_url: Some(db) };
    let mut s = Settings::load_from(None, &overrides, "TANDEM_SUITE_UNUSED_").expect("test settings");
    s.secrets.key_file = dir.join("secret.key");
    // Tests sharing a PostgreSQL database must share its secret key too.
    s.secrets.key = SUITE_SECRET_KEY.into();
    s.server.workers = 2;
    s.database.pool_size = 4;
    // No webhook deliveries but in the tests of them: tests sharing a
    // PostgreSQL database, some on shifted clocks, would deliver (and
    // reschedule) each other's endpoints.
    s.webhooks.poll_interval_ms = 0;
    s
}

impl TestApp {
    /// Starts a server with default test settings.
    pub async fn spawn() -> TestApp {
        let dir = scratch_dir();
        Self::spawn_with(test_settings(&dir), dir).await
    }

    /// Starts a server with the default test settings changed by `adjust`.
    pub async fn spawn_adjusted(adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let dir = scratch_dir();
        let mut settings = test_settings(&dir);
        adjust(&mut settings);
        Self::spawn_with(settings, dir).await
    }

    /// Starts a server on a database of its own: a new PostgreSQL database
    /// when the suite runs on PostgreSQL (its tests otherwise share one);
    /// on SQLite every test has its own file anyway.
    pub async fn spawn_on_own_database() -> TestApp {
        Self::spawn_on_own_database_adjusted(|_| {}).await
    }

    /// [`TestApp::spawn_on_own_database`] with the settings changed by `adjust`.
    pub async fn spawn_on_own_database_adjusted(adjust: impl FnOnce(&mut Settings)) -> TestApp {
        Self::spawn_adjusted(|s| {
            if let Some(base) = postgres_url() {
                s.database.url = scratch_postgres_database(&base);
            }
            adjust(s);
        })
        .await
    }

    /// Starts a server with the given settings.
    pub async fn spawn_with(settings: Settings, dir: PathBuf) -> TestApp {
        {
            let mut migrated = MIGRATED.lock().unwrap_or_else(|p| p.into_inner());
            if postgres_url().is_some() && !*migrated {
                tandem::open_store(&settings).expect("migrate");
                *migrated = true;
            }
        }
        let clock = Arc::new(ShiftedClock::default());
        // The server runs on a thread and actix System of its own, so that
        // dropping the TestApp stops it (and frees its database connections)
        // even while this test's runtime shuts down.
        let (tx, rx) = std::sync::mpsc::channel();
        let server_clock: Arc<dyn tandem_core::clock::Clock> = clock.clone();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let running = tandem::start(&settings, server_clock).expect("server starts");
                let tandem::Running { addr, admin_addr, server, state, housekeeping, webhooks } = running;
                tx.send((addr, admin_addr, state, server.handle())).expect("test alive");
                let _ = server.await;
                drop(webhooks);
                drop(housekeeping);
            })
        });
        let (addr, admin_addr, state, handle) = rx.recv().expect("server started");
        let base = format!("http://{addr}");
        let admin_base = admin_addr.map(|a| format!("http://{a}"));
        let now = chrono::Utc::now();
        let (_, key) = state
            .store
            .write_blocking(|c| tandem_store::integration_keys::create(c, &unique("test-key"), now))
            .expect("integration key");
        let http = test_client();
        TestApp { base, admin_base, key: key.0, http, clock, state, dir, handle, thread: Some(thread) }
    }

    /// Sends a request with the integration key; returns status and JSON (Null if none).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_with(method, path, body, Some(&self.key)).await
    }

    /// Sends a request with the given bearer token (or none).
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Sends raw bytes with a content type.
    pub async fn send_raw(&self, method: Method, path: &str, body: Vec<u8>, content_type: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// Creates an Okta client for `customer` without discovery.
    pub async fn create_okta_client(&self, customer: &str) -> Value {
        let (status, body) = self.post("/api/v1/oidc-clients", okta_client(customer)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Creates a SCIM connection for `customer`; returns the response (with the key).
    pub async fn create_scim_connection(&self, customer: &str) -> Value {
        let (status, body) = self.post("/api/v1/scim-connections", json!({"customer_id": customer})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }
}

/// A valid Okta client body for `customer`.
pub fn okta_client(customer: &str) -> Value {
    json!({
        "customer_id": customer,
        "idp": {"type": "Okta", "client_id": "0oa1exampleClientId", "client_secret": "okta-client-secret-value-123",
                "sso_domain": "acme.okta.com"},
        "redirect_url": format!("https://app.example.com/sso/callback/{customer}"),
        "email_domain_allowlist": ["acme.com"],
        "verify": false
    })
}

/// The names of the fields an `InvalidFields` error lists.
pub fn invalid_fields(body: &Value) -> Vec<String> {
    assert_eq!(body["error"]["type"], "InvalidFields", "{body}");
    body["error"]["details"]["fields"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["field"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// A SCIM client for one connection, as an IdP would be.
#[derive(Clone)]
pub struct Scim {
    pub base: String,
    pub key: String,
    pub connection_id: String,
    pub http: reqwest::Client,
}

/// A SCIM response.
pub struct ScimResponse {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl TestApp {
    /// A new SCIM connection and a client for it.
    pub async fn scim(&self) -> Scim {
        let conn = self.create_scim_connection(&unique("scim")).await;
        self.scim_of(&conn)
    }

    /// A SCIM client for a connection as its create answered (with its key).
    pub fn scim_of(&self, conn: &Value) -> Scim {
        Scim {
            base: conn["scim_base_url"].as_str().unwrap().to_string(),
            key: conn["scim_api_key"].as_str().unwrap().to_string(),
            connection_id: conn["scim_connection_id"].as_str().unwrap().to_string(),
            http: self.http.clone(),
        }
    }
}

impl Scim {
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> ScimResponse {
        self.send_with_key(method, path, body, &self.key.clone()).await
    }

    pub async fn send_with_key(&self, method: Method, path: &str, body: Option<Value>, key: &str) -> ScimResponse {
        let req = self.http.request(method, format!("{}{}", self.base, path)).bearer_auth(key);
        Self::finish(req, body).await
    }

    /// A PATCH with an `If-Match` header.
    pub async fn patch_if_match(&self, path: &str, body: Value, etag: &str) -> ScimResponse {
        let req = self.http.patch(format!("{}{}", self.base, path)).bearer_auth(&self.key).header("if-match", etag);
        Self::finish(req, Some(body)).await
    }

    async fn finish(mut req: reqwest::RequestBuilder, body: Option<Value>) -> ScimResponse {
        if let Some(b) = body {
            req = req.header("content-type", "application/scim+json").body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        ScimResponse { status, body: serde_json::from_str(&text).unwrap_or(Value::Null), headers }
    }

    pub async fn get(&self, path: &str) -> ScimResponse {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> ScimResponse {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> ScimResponse {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> ScimResponse {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> ScimResponse {
        self.send(Method::DELETE, path, None).await
    }

    /// Creates a user and returns its id.
    pub async fn create_user(&self, body: Value) -> String {
        let r = self.post("/Users", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// Creates a group and returns its id.
    pub async fn create_group(&self, body: Value) -> String {
        let r = self.post("/Groups", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// The ids a filter finds.
    pub async fn filter_ids(&self, resource: &str, filter: &str) -> Vec<String> {
        let r = self
            .http
            .get(format!("{}/{resource}", self.base))
            .query(&[("filter", filter)])
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{filter}");
        let body: Value = r.json().await.unwrap();
        body["Resources"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()).collect()
    }
}

/// The event about the resource `id` (a user's or a group's id) in the
/// event feed of the SCIM connection `connection`, once it is there; waits
/// up to 30 s. On PostgreSQL an event joins the feed once every transaction
/// that began before it has ended, on any database of the server, and
/// another test's may hold it back for a while.
pub async fn wait_in_feed(app: &TestApp, connection: &str, id: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let query = format!("scim_connection_id={connection}&limit=100");
    loop {
        let (events, _) = read_all(app, &query, 100, 0).await;
        if let Some(found) = events.into_iter().find(|e| e["data"]["id"] == id) {
            return found;
        }
        assert!(std::time::Instant::now() < deadline, "{id} never reached the feed of {connection}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The events a query reads from the start, following `next_cursor` while
/// `has_more`; waits up to 20 s for at least `want`. Also the last cursor.
pub async fn read_all(app: &TestApp, query: &str, limit: usize, want: usize) -> (Vec<Value>, Option<String>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let mut events = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/events?{query}");
            if let Some(a) = &after {
                path.push_str(&format!("&after={a}"));
            }
            let (status, body) = app.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert!(std::time::Instant::now() < deadline, "still has_more after 20 s: {body}");
            let page = body["data"].as_array().unwrap();
            assert!(page.len() <= limit, "{body}");
            events.extend(page.iter().cloned());
            if body["has_more"] != json!(true) {
                after = body["next_cursor"].as_str().map(str::to_string);
                break;
            }
            after = Some(body["next_cursor"].as_str().expect("a cursor while more follow").to_string());
        }
        if events.len() >= want || std::time::Instant::now() > deadline {
            return (events, after);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A core User body.
pub fn user(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": {"givenName": "Given", "familyName": "Family"},
        "emails": [{"value": user_name, "type": "work", "primary": true}],
        "active": true
    })
}

/// A PatchOp body.
pub fn patch_op(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

/// A group write under way (PostgreSQL): creates a group named `name` with
/// `members` in a transaction held open until the returned sender is used
/// or dropped (or 120 s pass), as a group write of thousands of members
/// would hold its locks. Returns once the write holds them.
pub fn hold_group_write(
    app: &TestApp,
    connection: &str,
    name: &str,
    members: &[&str],
) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<Result<(), tandem_store::StoreError>>) {
    let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    let doc = json!({"displayName": name, "members": members});
    let (store, connection) = (app.state.store.clone(), connection.to_string());
    let (locked, wait_locked) = std::sync::mpsc::channel();
    let (release, wait_release) = std::sync::mpsc::channel::<()>();
    let write = std::thread::spawn(move || {
        store.write_blocking(move |c| {
            tandem_store::scim::groups::insert(c, &connection, doc, false, chrono::Utc::now())
                .map_err(|_| tandem_store::StoreError::Conflict("the group write failed".into()))?;
            locked.send(()).unwrap();
            // Long enough that only the test ends the hold, however slowly it
            // runs: a hold that ended on its own would let a write that waits
            // for it pass as one that does not.
            let _ = wait_release.recv_timeout(std::time::Duration::from_secs(120));
            Ok(())
        })
    });
    wait_locked.recv().expect("the group write failed");
    (release, write)
}

/// The backend pid of a PostgreSQL connection, to find who waits on it.
pub fn backend_pid(c: &mut tandem_store::AnyConnection) -> Result<i32, tandem_store::StoreError> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    Ok(diesel::sql_query("SELECT pg_backend_pid() AS pid").get_result::<Pid>(c)?.pid)
}

/// How many PostgreSQL sessions wait, directly or behind another waiter, on
/// a lock that the session `blocker` (a backend pid) holds: other tests'
/// waits on the shared database are not counted. (A second waiter for one
/// row waits on the first waiter's tuple lock, not on the holder.)
pub fn waiting_on(store: &tandem_store::Store, blocker: i32) -> i64 {
    store
        .read_blocking(move |c| {
            use diesel::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct N {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let rows: Vec<N> = diesel::sql_query(
                "WITH RECURSIVE w(pid) AS (\
                   SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)) \
                   UNION SELECT a.pid FROM pg_stat_activity a JOIN w ON w.pid = ANY(pg_blocking_pids(a.pid))\
                 ) SELECT count(*) AS n FROM w",
            )
            .bind::<diesel::sql_types::Integer, _>(blocker)
            .load(c)?;
            Ok(rows.first().map_or(0, |r| r.n))
        })
        .unwrap()
}

/// Damages the stored client secret of `customer`'s OIDC client (as a
/// corrupted row would be): it no longer decrypts.
pub fn damage_client_secret(app: &TestApp, customer: &str) {
    let key = customer.to_string();
    app.state
        .store
        .write_blocking(move |c| {
            use diesel::prelude::*;
            use tandem_store::schema::oidc_clients::dsl as oc;
            diesel::update(oc::oidc_clients.filter(oc::customer_id.eq(&key)))
                .set(oc::client_secret_enc.eq("not a ciphertext"))
                .execute(c)?;
            Ok(())
        })
        .unwrap();
}

/// An HTTP client for the server under test: no redirects followed, and
/// idle connections dropped after 2 s, before the server's keep-alive (5 s)
/// closes them. A request sent on a connection the server is closing at that
/// moment fails with `IncompleteMessage`, as one did after a test waited
/// several seconds for its IdP to start.
pub fn test_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build()
        .expect("client")
}

/// The ids of the members a SCIM group document lists, sorted (none when it
/// lists none).
pub fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|m| m.iter().map(|m| m["value"].as_str().expect("a member id").to_string()).collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

/// The display text a SCIM group document shows for its member `id`, when
/// it lists that member.
pub fn member_display(group: &Value, id: &str) -> Option<Value> {
    group["members"].as_array()?.iter().find(|m| m["value"] == id).map(|m| m["display"].clone())
}

/// Sends `head` (a request's head and the start of a body its headers say
/// is longer) to `addr`, and returns the answer, which must come, and the
/// connection close, within 10 s (`path` names the request in failures).
pub async fn answer_to_stalled_body(addr: &str, head: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), tcp.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "{path}: no answer within 20 s");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{path}: {:?}", started.elapsed());
    String::from_utf8_lossy(&answer).into_owned()
}

/// Records an SSO user of `client` last seen at `at`, as a login would.
pub fn record_seen(app: &TestApp, client: &str, oidc_user_id: &str, at: chrono::DateTime<chrono::Utc>) {
    let row = tandem_store::sso::SsoUser {
        id: tandem_core::new_id(),
        oidc_client_id: client.into(),
        oidc_user_id: oidc_user_id.into(),
        email: None,
        email_verified: None,
        preferred_username: None,
        given_name: None,
        family_name: None,
        claims: "{}".into(),
        first_login_at: at.timestamp_micros(),
        last_login_at: at.timestamp_micros(),
        login_count: 1,
    };
    app.state.store.write_blocking(move |c| tandem_store::sso::record_sso_user(c, &row)).unwrap();
}

/// The oidc_user_ids of the SSO users of `client`.
pub fn seen_of(app: &TestApp, client: &str) -> Vec<String> {
    let client = client.to_string();
    let rows = app.state.store.read_blocking(move |c| tandem_store::sso::sso_users_of(c, &client, None, 100)).unwrap();
    rows.into_iter().map(|u| u.oidc_user_id).collect()
}
