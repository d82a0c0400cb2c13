//! Health, readiness, metrics and unknown routes.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn healthz_and_readyz_answer() {
    let app = TestApp::spawn().await;
    let (status, body) = app.call_with(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    let (status, body) = app.call_with(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let backend = if postgres_url().is_some() { "postgres" } else { "sqlite" };
    assert_eq!(body["database"], backend);
    // HEAD answers as GET does (a load balancer's check may send either);
    // another method is 405 naming what is served.
    for path in ["/healthz", "/readyz"] {
        let r = app.http.head(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let r = app.http.post(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(r.headers()["allow"], "GET, HEAD");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["type"], "MethodNotAllowed", "{body}");
    }
    let r = app.http.delete(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!((r.status(), &r.headers()["allow"]), (StatusCode::METHOD_NOT_ALLOWED, &"GET".parse().unwrap()));
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern() {
    let app = TestApp::spawn().await;
    app.get("/api/v1/oidc-clients/some-id").await;
    app.get("/api/v1/oidc-clients/some%20other%2Fid").await;
    app.get("/api/v2/nothing").await;
    app.get("/api/v2/nothing/else").await;
    // Unknown dashboard pages too, signed in or not.
    app.http.get(format!("{}/dashboard/nothing/{}", app.base, unique("page"))).send().await.unwrap();
    app.http.get(format!("{}/dashboard/customers/acme/nothing", app.base)).send().await.unwrap();
    // SCIM paths are routed by their own dispatcher and labelled the same way.
    app.get("/scim/v2/c1/Users/u1").await;
    app.get("/scim/v2/c2/Users/u2").await;
    app.call_with(reqwest::Method::DELETE, "/scim/v2/c1/nothing", None, None).await;
    // Any token is a method: made-up ones share one label.
    for made_up in ["FROBNICATE", "XYZZYPLUGH"] {
        let m = reqwest::Method::from_bytes(made_up.as_bytes()).unwrap();
        app.http.request(m, format!("{}/healthz", app.base)).send().await.unwrap();
    }
    // Escaped letters in a literal segment are the route's own.
    for escaped in ["/health%7A", "/%68ealthz"] {
        let r = app.http.get(format!("{}{escaped}", app.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{escaped}");
    }
    // Segments that do not decode to text, or decode twice, are still captured segments.
    let odd = unique("odd");
    // A captured value equal to a literal of the route is still the capture.
    let (status, _) = app.get("/api/v1/oidc-clients/v1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for path in [format!("/api/v1/oidc-clients/%FF{odd}"), format!("/api/v1/oidc-clients/%%41{odd}")] {
        let (status, _) = app.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let r = app.http.get(format!("{}/dashboard/customers/%FF{odd}", app.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // A capture of the rest of the path is one label, however many segments it spans.
    for n in 0..3 {
        let slash = if n == 2 { "/" } else { "" };
        let r = app.http.get(format!("{}/setup/token-{odd}/{odd}{n}/b/c{slash}", app.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    let text = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(!text.contains(&odd), "{text}");
    assert!(
        text.contains("tandem_http_requests_total{method=\"other\",route=\"/healthz\",status=\"405\"} 2"),
        "{text}"
    );
    assert!(!text.contains("FROBNICATE") && !text.contains("XYZZYPLUGH"), "{text}");
    assert!(text.contains("tandem_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"), "{text}");
    assert!(!text.contains("%7A") && !text.contains("%68"), "{text}");
    // Captured segments become their names, encoded or not; paths no route matched share one label.
    assert!(
        text.contains(
            "tandem_http_requests_total{method=\"GET\",route=\"/api/v1/oidc-clients/{id}\",status=\"404\"} 5"
        ),
        "{text}"
    );
    assert!(text.contains("tandem_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 4"), "{text}");
    assert!(
        text.contains(
            "tandem_http_requests_total{method=\"GET\",route=\"/scim/v2/{connection_id}/Users/{id}\",status=\"401\"} 2"
        ),
        "{text}"
    );
    assert!(
        text.contains("tandem_http_requests_total{method=\"DELETE\",route=\"unmatched\",status=\"404\"} 1"),
        "{text}"
    );
    assert!(!text.contains("nothing"), "{text}");
    assert!(
        text.contains("tandem_http_requests_total{method=\"GET\",route=\"/setup/{token}/{rest}\",status=\"404\"} 3"),
        "{text}"
    );
    assert!(text.contains("tandem_http_request_duration_seconds_bucket"));
}

/// A body that stops arriving midway is answered 408 once
/// `server.body_timeout_secs` has passed, on the API and on SCIM, instead
/// of holding the connection open for good.
#[tokio::test]
async fn a_request_body_that_stalls_is_answered_408() {
    let app = TestApp::spawn_adjusted(|s| s.server.body_timeout_secs = 1).await;
    let scim = app.scim().await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let scim_path = scim.base.split_once(&addr).unwrap().1.to_string();
    let paths = [("/api/v1/oidc-clients".to_string(), &app.key), (format!("{scim_path}/Users"), &scim.key)];
    // (A chunked body's 408 is sent too, but actix then drains the rest of
    // the body before closing: the connection stays until the client goes.)
    let framing = "Content-Length: 1000\r\n\r\n{\"userName\": ";
    for (path, key) in paths {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n\
             {framing}"
        );
        let answer = answer_to_stalled_body(&addr, &head, &path).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(answer.contains("did not arrive within 1 s"), "{path}: {answer}");
    }
}

#[tokio::test]
async fn unknown_route_is_a_json_404() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/api/v2/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["type"], "RouteNotFound");
}

#[tokio::test]
async fn a_method_a_route_does_not_serve_is_a_json_405_naming_the_allowed_ones() {
    let app = TestApp::spawn().await;
    for (method, path, allow) in [
        (reqwest::Method::PUT, "/api/v1/oidc-clients/some-id", "GET, PATCH, DELETE"),
        (reqwest::Method::POST, "/api/v1/scim-connections/some-id", "GET, PATCH, DELETE"),
        (reqwest::Method::DELETE, "/api/v1/oidc-clients", "GET, POST"),
        (reqwest::Method::PATCH, "/api/v1/scim-connections", "GET, POST"),
        (reqwest::Method::GET, "/api/v1/sso/login/initiate", "POST"),
        (reqwest::Method::GET, "/api/v1/sso/login/complete", "POST"),
        (reqwest::Method::DELETE, "/api/v1/login-events/some-id", "GET"),
        (reqwest::Method::POST, "/api/v1/login-events", "GET"),
        (reqwest::Method::GET, "/api/v1/scim-connections/some-id/rotate-key", "POST"),
        (reqwest::Method::DELETE, "/api/v1/scim-connections/some-id/users/u1", "GET"),
        (reqwest::Method::PUT, "/api/v1/oidc-clients/some-id/scim-matching", "GET"),
        (reqwest::Method::POST, "/api/v1/provisioning-logs", "GET"),
        (reqwest::Method::PATCH, "/api/v1/oidc-clients/by-customer-id/acme", "GET"),
    ] {
        let resp = app.http.request(method.clone(), format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(resp.headers()["allow"], allow);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["type"], "MethodNotAllowed", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(allow), "{body}");
    }
}

#[derive(diesel::QueryableByName)]
struct Terminated {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// PostgreSQL only: pooled connections the server closes (a restart, a
/// failover) cost at most one 503 each, then leave the pool.
#[tokio::test]
async fn connections_the_database_closed_leave_the_pool() {
    let Some(pg) = postgres_url() else { return };
    let name = unique("pool");
    let dir = scratch_dir();
    let mut settings = test_settings(&dir);
    let sep = if pg.contains('?') { '&' } else { '?' };
    settings.database.url = format!("{pg}{sep}application_name={name}");
    let pool_size = settings.database.pool_size as usize;
    let app = TestApp::spawn_with(settings, dir).await;
    for _ in 0..3 {
        assert_eq!(app.get("/api/v1/oidc-clients").await.0, StatusCode::OK);
    }
    let killer = tandem_store::Store::open(&pg, &tandem_store::PoolOptions::default()).unwrap();
    let terminated: Vec<Terminated> = killer
        .read_blocking(move |c| {
            use diesel::RunQueryDsl;
            Ok(diesel::sql_query(
                "SELECT COUNT(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE application_name = $1",
            )
            .bind::<diesel::sql_types::Text, _>(name)
            .load(c)?)
        })
        .unwrap();
    assert!(terminated[0].n >= 1, "no connection of the test server was found");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut failures = 0;
    for _ in 0..pool_size + 1 {
        let (status, body) = app.get("/api/v1/oidc-clients").await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["error"]["type"], "DatabaseUnavailable");
        failures += 1;
    }
    assert!(failures <= pool_size, "{failures} failed requests");
    for _ in 0..2 * pool_size {
        assert_eq!(app.get("/api/v1/oidc-clients").await.0, StatusCode::OK);
    }
}

#[tokio::test]
async fn trailing_and_repeated_slashes_reach_the_route() {
    let app = TestApp::spawn().await;
    for path in ["/api/v1/oidc-clients/", "/api//v1/oidc-clients", "/api/v1/oidc-clients?limit=5"] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
}

/// PostgreSQL refuses the NUL character in text: a path, query or JSON
/// body holding one is refused with what is wrong, never a 500.
#[tokio::test]
async fn the_nul_character_is_refused_wherever_it_is_sent() {
    let app = TestApp::spawn().await;
    for path in [
        "/api/v1/oidc-clients/a%00b",
        "/api/v1/scim-connections/by-customer-id/a%00b",
        "/api/v1/login-events?email=a%00b",
        "/api/v1/provisioning-logs?user_name=a%00b",
        "/dashboard/customers/a%00b",
        // `%00` once decoded: the router decodes `%30`, the extractor `%00`.
        "/api/v1/oidc-clients/%%30%30",
        "/api/v1/scim-connections/a%0%30b",
        "/api/v1/login-events/%%300",
        "/dashboard/customers/%%30%30",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"]["type"], "InvalidRequest", "{path}: {body}");
    }
    let (status, body) = app.post("/api/v1/sso/login/initiate", json!({"customer_id": "a\u{0}b"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(invalid_fields(&body), ["customer_id"], "{body}");
    let (status, body) = app.post("/api/v1/sso/login/initiate", json!({"email": "a@b\u{0}c.com"})).await;
    assert_eq!((status, invalid_fields(&body)), (StatusCode::BAD_REQUEST, vec!["email".to_string()]), "{body}");
}

/// Nodes starting together on an empty PostgreSQL database (replicas, a
/// rollout with a new migration) migrate one after the other: each finds
/// what the one before applied, and none fails on a table it just made.
#[test]
fn nodes_migrating_one_database_at_once_all_start() {
    let Some(base) = postgres_url() else { return };
    let url = scratch_postgres_database(&base);
    let applied: Vec<usize> = migrate_at_once(&url).into_iter().map(|n| n.expect("every node migrates")).collect();
    // One node applied them all; the others found nothing pending.
    assert_eq!(applied.iter().filter(|n| **n > 0).count(), 1, "{applied:?}");
    let store = tandem_store::Store::open(&url, &tandem_store::PoolOptions::default()).unwrap();
    assert_eq!(store.migrate().unwrap(), 0);
}

/// Processes starting together on a new SQLite file (the server and a CLI
/// command, run at once on a fresh checkout) all migrate it: one applies
/// the migrations, the others find them applied. (Before migrations took
/// the write lock first, a loaded suite run saw one of them fail on a
/// table another had just made; eight rounds here.)
#[test]
fn processes_migrating_one_sqlite_file_at_once_all_start() {
    let dir = scratch_dir();
    for round in 0..8 {
        let url = format!("sqlite://{}", dir.join(format!("together-{round}.db")).display());
        let applied = migrate_at_once(&url);
        let applied: Vec<usize> = applied.into_iter().map(|n| n.expect("every process migrates")).collect();
        assert_eq!(applied.iter().filter(|n| **n > 0).count(), 1, "round {round}: {applied:?}");
        let store = tandem_store::Store::open(&url, &tandem_store::PoolOptions::default()).unwrap();
        assert_eq!(store.migrate().unwrap(), 0);
    }
}

/// Four stores opened on `url`, then migrating it at once (they start
/// together at a barrier): how many migrations each applied.
fn migrate_at_once(url: &str) -> Vec<Result<usize, tandem_store::StoreError>> {
    let together = std::sync::Arc::new(std::sync::Barrier::new(4));
    let nodes: Vec<_> = (0..4)
        .map(|_| {
            let (url, together) = (url.to_string(), together.clone());
            std::thread::spawn(move || {
                let options = tandem_store::PoolOptions { min_idle: 0, ..Default::default() };
                let store = tandem_store::Store::open(&url, &options);
                together.wait();
                store.and_then(|s| s.migrate())
            })
        })
        .collect();
    nodes.into_iter().map(|n| n.join().unwrap()).collect()
}

/// Housekeeping trims login events and provisioning-log entries older than
/// its cutoff, a batch at a time, and keeps the newer ones.
#[tokio::test]
async fn old_log_entries_are_trimmed_and_newer_ones_kept() {
    // A database of its own: it deletes every old entry it finds.
    let app = TestApp::spawn_on_own_database().await;
    let scim = app.scim().await;
    let logs = format!("/api/v1/provisioning-logs?scim_connection_id={}&limit=100", scim.connection_id);
    let count = |body: &serde_json::Value| body["data"].as_array().map(Vec::len).unwrap_or(0);
    // Entries and events in two periods, a cutoff between them. Rows are
    // trimmed by their ids, UUIDv7s of the system clock's millisecond: the
    // cutoff is a millisecond of its own.
    let (mut made, mut cutoff) = (Vec::new(), chrono::Utc::now());
    let feed = format!("/api/v1/events?scim_connection_id={}", scim.connection_id);
    let mut cursors = Vec::new();
    for period in ["old", "new"] {
        let id = scim.create_user(user(&format!("trim-{period}@acme.com"))).await;
        // On PostgreSQL other tests' transactions (on any database of the
        // server) may hold the feed back for a while.
        let last = wait_in_feed(&app, &scim.connection_id, &id).await;
        cursors.push(last["id"].as_str().unwrap().to_string());
        for _ in 0..3 {
            scim.get(&format!("/Users/{id}")).await;
        }
        let (status, _) = app.post("/api/v1/sso/login/initiate", json!({"customer_id": unique(period)})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "a refused initiate is an event too");
        app.state.log_sink.flush();
        let (_, entries) = app.get(&logs).await;
        let (_, events) = app.get("/api/v1/login-events?limit=100").await;
        made.push((count(&entries), count(&events), id));
        if period == "old" {
            std::thread::sleep(std::time::Duration::from_millis(3));
            cutoff = chrono::Utc::now();
            std::thread::sleep(std::time::Duration::from_millis(3));
        }
    }
    let (old_entries, old_events) = (made[0].0, made[0].1);
    let (new_entries, new_events) = (made[1].0 - old_entries, made[1].1 - old_events);
    assert!(old_entries >= 4 && new_entries >= 4 && old_events >= 1 && new_events >= 1, "{made:?}");

    // SSO users last seen in either period (with their claims), and one of a deleted client.
    let client = app.create_okta_client(&unique("trim")).await["oidc_client_id"].as_str().unwrap().to_string();
    record_seen(&app, &client, "seen-old", cutoff - chrono::Duration::hours(1));
    record_seen(&app, &client, "seen-new", chrono::Utc::now());
    record_seen(&app, &unique("deleted-client"), "seen-orphan", chrono::Utc::now());
    // A cutoff between the periods, two rows per transaction: every old row goes, in several batches.
    let (_keep, stopped) = std::sync::mpsc::channel::<()>();
    let store = app.state.store.clone();
    let trimmed =
        tokio::task::spawn_blocking(move || tandem::housekeeping::trim_logs_in_batches(&store, cutoff, &stopped, 2))
            .await
            .unwrap();
    // The old period's user.created goes too; the new one's stays.
    assert_eq!(trimmed, old_entries + old_events + 1);
    // SSO users by their own retention: the one not seen since, and the deleted client's.
    let (store, stop) = (app.state.store.clone(), std::sync::mpsc::channel::<()>());
    let gone = tokio::task::spawn_blocking(move || {
        let _keep = stop.0;
        tandem::housekeeping::trim_sso_users_in_batches(&store, Some(cutoff), &stop.1, 1)
    })
    .await
    .unwrap();
    assert_eq!(gone, 2);
    assert_eq!(seen_of(&app, &client), ["seen-new"]);
    let (_, entries) = app.get(&logs).await;
    assert_eq!(count(&entries), new_entries, "{entries}");
    assert!(entries["data"].as_array().unwrap().iter().all(|e| e["user_name"] != "trim-old@acme.com"), "{entries}");
    let (_, events) = app.get("/api/v1/login-events?limit=100").await;
    assert_eq!(count(&events), new_events, "{events}");
    // The feed now starts at the new period's event; a cursor before the
    // purged ones is refused (events after it are gone), one after them is not.
    let (_, page) = app.get(&feed).await;
    let ids: Vec<&Value> = page["data"].as_array().unwrap().iter().map(|e| &e["data"]["id"]).collect();
    assert_eq!(ids, [&json!(made[1].2)], "{page}");
    let (status, body) = app.get("/api/v1/events?after=0-0").await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(body["error"]["type"], "EventCursorExpired", "{body}");
    // The purge's mark is a position; the event's id is that and its stamp.
    let mark = cursors[0].split('-').take(2).collect::<Vec<_>>().join("-");
    assert_eq!(body["error"]["details"]["purged_through"], json!(mark), "{body}");
    let (status, body) = app.get(&format!("{feed}&after={}", cursors[0])).await;
    assert_eq!((status, &body["data"]), (StatusCode::OK, &json!([page["data"][0]])), "{body}");
    // The SCIM users themselves are not log entries.
    for (_, _, id) in &made {
        assert_eq!(scim.get(&format!("/Users/{id}")).await.status, StatusCode::OK);
    }
}

/// With an admin listener, the main one serves SCIM, client key sets and
/// the health checks only (what IdPs reach from outside), and the admin one
/// serves everything.
#[tokio::test]
async fn an_admin_listener_takes_the_api_the_dashboard_and_the_metrics_off_the_main_one() {
    let app = TestApp::spawn_adjusted(|s| s.server.admin_bind = "127.0.0.1:0".into()).await;
    let admin = app.admin_base.clone().expect("an admin listener");
    assert_ne!(admin, app.base);
    let get = |url: String, key: Option<String>| {
        let http = app.http.clone();
        async move {
            let mut req = http.get(url);
            if let Some(k) = key {
                req = req.bearer_auth(k);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status();
            (status, resp.text().await.unwrap())
        }
    };
    // Created through the admin listener: the management API is there.
    let resp = app
        .http
        .post(format!("{admin}/api/v1/scim-connections"))
        .bearer_auth(&app.key)
        .json(&json!({"customer_id": unique("split")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let conn: serde_json::Value = resp.json().await.unwrap();
    let users = format!("{}/Users", conn["scim_base_url"].as_str().unwrap());
    let scim_key = conn["scim_api_key"].as_str().map(String::from);
    assert!(users.starts_with(&app.base), "SCIM URLs name the main listener: {users}");
    for base in [&app.base, &admin] {
        let on_base = users.replacen(&app.base, base, 1);
        assert_eq!(get(on_base, scim_key.clone()).await.0, StatusCode::OK, "SCIM on {base}");
        for health in ["/healthz", "/readyz"] {
            assert_eq!(get(format!("{base}{health}"), None).await.0, StatusCode::OK, "{health} on {base}");
        }
    }
    // The public keys of a private_key_jwt client are on the main listener too (IdPs fetch them).
    let customer = unique("split-keys");
    let resp = app
        .http
        .post(format!("{admin}/api/v1/oidc-clients"))
        .bearer_auth(&app.key)
        .json(&json!({"customer_id": customer, "verify": false, "redirect_url": format!("http://127.0.0.1:9/cb/{customer}"),
                      "idp": {"type": "Generic", "client_id": "c", "issuer": "http://127.0.0.1:9",
                              "client_authentication": "private_key_jwt"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let client: serde_json::Value = resp.json().await.unwrap();
    let jwks_url = client["idp"]["jwks_url"].as_str().unwrap().to_string();
    assert!(jwks_url.starts_with(&app.base), "{jwks_url}");
    let (status, body) = get(jwks_url, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for path in ["/api/v1/oidc-clients", "/api/v1/sso/login/initiate", "/dashboard/login", "/metrics", "/dashboard"] {
        let (status, body) = get(format!("{}{path}", app.base), Some(app.key.clone())).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path} on the main listener: {body}");
        assert!(body.contains("server.admin_bind"), "{body}");
    }
    assert_eq!(get(format!("{admin}/api/v1/oidc-clients"), Some(app.key.clone())).await.0, StatusCode::OK);
    assert_eq!(get(format!("{admin}/dashboard/login"), None).await.0, StatusCode::OK);
    assert_eq!(get(format!("{admin}/metrics"), None).await.0, StatusCode::OK);
}

/// A key sent where a SCIM user's or group's id goes, however encoded, is
/// cut to its prefix in the answer and in the provisioning log that keeps
/// the request; a webhook secret percent-encoded in a path is cut whole.
#[tokio::test]
async fn a_key_sent_as_a_scim_id_is_cut_in_the_answer_and_the_provisioning_log() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let secret = app.key.trim_start_matches("tandem_ik_").to_string();
    let encoded = app.key.replace('_', "%5F");
    for path in [
        format!("/Users/{}", app.key),
        format!("/Groups/{encoded}"),
        format!("/Users?filter=userName%20eq%20%22{}%22", app.key),
    ] {
        let r = scim.get(&path).await;
        assert!(!r.body.to_string().contains(&secret), "{path}: {}", r.body);
    }
    let logs = format!("/api/v1/provisioning-logs?scim_connection_id={}&limit=10", scim.connection_id);
    let (status, entries) = app.get(&logs).await;
    assert_eq!(status, StatusCode::OK, "{entries}");
    assert_eq!(entries["data"].as_array().map(Vec::len), Some(3), "{entries}");
    assert!(!entries.to_string().contains(&secret), "{entries}");
    assert!(entries.to_string().contains("tandem_ik_…"), "{entries}");
    // A webhook secret's `/`, `+` and `=` percent-encoded: cut whole, not at the first escape.
    let whsec = "whsec_1RZljZs%2FdXYuvb%2FYQBHRsmbOnWE0md4kLSGkoXTd6Is%3D";
    let (status, body) = app.get(&format!("/api/v1/{whsec}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(!body.to_string().contains("YQBHRsmb"), "{body}");
}

/// The provisioning log's `user_name` filter ignores case, as SCIM's
/// userName does: an entry is found however the IdP wrote the name.
#[tokio::test]
async fn the_provisioning_logs_user_name_filter_ignores_case() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    scim.create_user(user("Émile.Case@Acme.com")).await;
    app.state.log_sink.flush();
    for asked in ["Émile.Case@Acme.com", "émile.case@acme.com", "ÉMILE.CASE@ACME.COM"] {
        let query = url::form_urlencoded::byte_serialize(asked.as_bytes()).collect::<String>();
        let (status, page) = app
            .get(&format!("/api/v1/provisioning-logs?scim_connection_id={}&user_name={query}", scim.connection_id))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let ops: Vec<&str> =
            page["data"].as_array().unwrap().iter().map(|e| e["operation"].as_str().unwrap()).collect();
        assert_eq!(ops, ["create"], "{asked}: {page}");
    }
}
