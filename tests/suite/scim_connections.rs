//! `/api/v1/scim-connections`: keys shown once, expiry, rotation, validation.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn create_returns_the_key_once_with_its_expiry() {
    let app = TestApp::spawn().await;
    let customer = unique("acme");
    let created = app.create_scim_connection(&customer).await;
    let id = created["scim_connection_id"].as_str().unwrap();
    let key = created["scim_api_key"].as_str().unwrap();
    assert!(key.starts_with("tandem_scim_"));
    assert_eq!(created["scim_base_url"], format!("{}/scim/v2/{id}", app.base));
    assert_eq!(created["api_key_warning_level"], "ok");
    let expires = chrono::DateTime::parse_from_rfc3339(created["api_key_expires_at"].as_str().unwrap()).unwrap();
    let days = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!((179..=180).contains(&days), "{days}");
    // An answer holding a key shown once is never kept by a cache on the way.
    let resp = app
        .http
        .post(format!("{}/api/v1/scim-connections", app.base))
        .bearer_auth(&app.key)
        .json(&serde_json::json!({"customer_id": unique("nostore")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()["cache-control"], "no-store");

    let (status, fetched) = app.get(&format!("/api/v1/scim-connections/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(fetched.get("scim_api_key").is_none());
    assert!(!fetched.to_string().contains(key));
    let (_, by_customer) = app.get(&format!("/api/v1/scim-connections/by-customer-id/{customer}")).await;
    assert_eq!(by_customer["scim_connection_id"], id);
}

#[tokio::test]
async fn the_public_url_is_the_base_of_scim_base_url_behind_a_proxy() {
    let dir = scratch_dir();
    let mut settings = test_settings(&dir);
    // As written by hand: the scheme and host come out in lower case.
    settings.server.public_url = "HTTPS://SSO.Example.com/".into();
    let app = TestApp::spawn_with(settings, dir).await;
    let created = app.create_scim_connection(&unique("acme")).await;
    let id = created["scim_connection_id"].as_str().unwrap();
    assert_eq!(created["scim_base_url"], format!("https://sso.example.com/scim/v2/{id}"));
    let (_, fetched) = app.get(&format!("/api/v1/scim-connections/{id}")).await;
    assert_eq!(fetched["scim_base_url"], created["scim_base_url"]);
}

#[tokio::test]
async fn key_lifetime_can_be_none_or_custom() {
    let app = TestApp::spawn().await;
    let (status, never) =
        app.post("/api/v1/scim-connections", json!({"customer_id": unique("n"), "api_key_ttl_days": null})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(never["api_key_expires_at"], serde_json::Value::Null);
    assert_eq!(never["api_key_warning_level"], "ok");
    let (status, short) =
        app.post("/api/v1/scim-connections", json!({"customer_id": unique("s"), "api_key_ttl_days": 20})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(short["api_key_warning_level"], "warning");
    let (_, short) =
        app.post("/api/v1/scim-connections", json!({"customer_id": unique("s"), "api_key_ttl_days": 3})).await;
    assert_eq!(short["api_key_warning_level"], "critical");
}

#[tokio::test]
async fn warning_level_follows_the_clock() {
    let app = TestApp::spawn().await;
    let created = app.create_scim_connection(&unique("w")).await;
    let id = created["scim_connection_id"].as_str().unwrap();
    app.clock.advance(chrono::Duration::days(160));
    let (_, c) = app.get(&format!("/api/v1/scim-connections/{id}")).await;
    assert_eq!(c["api_key_warning_level"], "warning");
    app.clock.advance(chrono::Duration::days(15));
    let (_, c) = app.get(&format!("/api/v1/scim-connections/{id}")).await;
    assert_eq!(c["api_key_warning_level"], "critical");
    app.clock.advance(chrono::Duration::days(10));
    let (_, c) = app.get(&format!("/api/v1/scim-connections/{id}")).await;
    assert_eq!(c["api_key_warning_level"], "expired");
}

#[tokio::test]
async fn rotation_returns_a_new_key_and_keeps_the_old_one_for_the_grace_period() {
    let app = TestApp::spawn().await;
    let created = app.create_scim_connection(&unique("r")).await;
    let id = created["scim_connection_id"].as_str().unwrap().to_string();
    let old = created["scim_api_key"].as_str().unwrap().to_string();
    let (status, rotated) =
        app.post(&format!("/api/v1/scim-connections/{id}/rotate-key"), json!({"grace_period_hours": 2})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["scim_api_key"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(rotated["previous_keys_valid_until"].as_array().unwrap().len(), 1);

    let auth = |key: String, id: String, clock: chrono::DateTime<chrono::Utc>| {
        let store = app.state.store.clone();
        store.read_blocking(move |c| tandem_store::scim_connections::authenticate(c, &id, &key, clock)).unwrap()
    };
    let now = chrono::Utc::now();
    assert!(auth(old.clone(), id.clone(), now).is_ok());
    assert!(auth(new.clone(), id.clone(), now).is_ok());
    let later = now + chrono::Duration::hours(3);
    assert!(matches!(auth(old, id.clone(), later), Err(tandem_store::scim_connections::KeyRejection::Retired(_))));
    assert!(auth(new, id, later).is_ok());
}

/// A key that leaked while in a long grace is cut off by a rotation with a short one.
#[tokio::test]
async fn a_rotation_with_no_grace_cuts_off_keys_an_earlier_long_grace_left_working() {
    let app = TestApp::spawn().await;
    let created = app.create_scim_connection(&unique("leak")).await;
    let id = created["scim_connection_id"].as_str().unwrap().to_string();
    let first = created["scim_api_key"].as_str().unwrap().to_string();
    let rotate = |hours: u64| {
        let (app, id) = (&app, &id);
        async move {
            let (status, body) = app
                .post(&format!("/api/v1/scim-connections/{id}/rotate-key"), json!({"grace_period_hours": hours}))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["scim_api_key"].as_str().unwrap().to_string()
        }
    };
    let second = rotate(720).await;
    let users = |key: &str| {
        let (http, url, key) =
            (app.http.clone(), format!("{}/Users", created["scim_base_url"].as_str().unwrap()), key.to_string());
        async move { http.get(url).bearer_auth(key).send().await.unwrap().status() }
    };
    assert_eq!(users(&first).await, StatusCode::OK, "in its 30-day grace");
    let third = rotate(0).await;
    assert_eq!(users(&first).await, StatusCode::UNAUTHORIZED, "cut off with the second");
    assert_eq!(users(&second).await, StatusCode::UNAUTHORIZED);
    assert_eq!(users(&third).await, StatusCode::OK);
}

#[tokio::test]
async fn malformed_connection_requests_are_named() {
    let app = TestApp::spawn().await;
    let (status, body) =
        app.post("/api/v1/scim-connections", json!({"api_key_ttl_days": "forever", "colour": "red"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid_fields(&body), ["customer_id", "api_key_ttl_days", "colour"]);
    let (status, body) =
        app.post("/api/v1/scim-connections", json!({"customer_id": "x", "api_key_ttl_days": -5})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid_fields(&body), ["api_key_ttl_days"]);
    let (status, body) = app.post("/api/v1/scim-connections", json!({"customer_id": "x".repeat(256)})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid_fields(&body), ["customer_id"]);
}

#[tokio::test]
async fn one_connection_per_customer() {
    let app = TestApp::spawn().await;
    let customer = unique("one");
    app.create_scim_connection(&customer).await;
    let (status, body) = app.post("/api/v1/scim-connections", json!({"customer_id": customer})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["type"], "CustomerIdAlreadyTaken");
}

#[tokio::test]
async fn patch_ttl_re_dates_the_current_key_and_delete_removes_the_connection() {
    let app = TestApp::spawn().await;
    let created = app.create_scim_connection(&unique("p")).await;
    let id = created["scim_connection_id"].as_str().unwrap();
    let (status, patched) =
        app.patch(&format!("/api/v1/scim-connections/{id}"), json!({"api_key_ttl_days": null})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["api_key_expires_at"], serde_json::Value::Null);
    // Its key, used (and so cached) just before the delete, stops working with it.
    let users = format!("{}/Users", created["scim_base_url"].as_str().unwrap());
    let key = created["scim_api_key"].as_str().unwrap();
    assert_eq!(app.http.get(&users).bearer_auth(key).send().await.unwrap().status(), StatusCode::OK);
    let (status, _) = app.delete(&format!("/api/v1/scim-connections/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.http.get(&users).bearer_auth(key).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let (status, body) = app.get(&format!("/api/v1/scim-connections/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["type"], "ScimConnectionNotFound");
    let (status, _) = app.post(&format!("/api/v1/scim-connections/{id}/rotate-key"), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rotate_with_a_bad_grace_period_is_refused() {
    let app = TestApp::spawn().await;
    let created = app.create_scim_connection(&unique("g")).await;
    let id = created["scim_connection_id"].as_str().unwrap();
    let (status, body) =
        app.post(&format!("/api/v1/scim-connections/{id}/rotate-key"), json!({"grace_period_hours": 100000})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid_fields(&body), ["grace_period_hours"]);
}

#[tokio::test]
async fn a_write_under_a_connection_deleted_through_another_node_is_refused_as_unauthorized() {
    let app = TestApp::spawn().await;
    // The key cache's TTL is Tandem's clock's: stopped, the key stays cached
    // for the whole test, however slowly it runs.
    app.clock.freeze();
    let scim = app.scim().await;
    // The key is checked, and so cached on this node.
    scim.create_user(user("before@acme.com")).await;
    // Another node (or the CLI) deletes the connection: this node's cache
    // still trusts the key for a few seconds.
    let id = scim.connection_id.clone();
    assert!(app
        .state
        .store
        .write_blocking(move |c| tandem_store::scim_connections::delete(c, &id, chrono::Utc::now()))
        .unwrap());
    for path in ["/Users", "/Groups"] {
        let body = if path == "/Users" {
            user("after@acme.com")
        } else {
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "After"})
        };
        let r = scim.post(path, body).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        assert!(r.body["detail"].as_str().unwrap().contains("was deleted"), "{}", r.body);
    }
}

#[tokio::test]
async fn scim_writes_racing_the_connections_delete_land_before_it_or_are_refused() {
    let app = TestApp::spawn().await;
    for round in 0..6 {
        let scim = app.scim().await;
        let mut ids = Vec::new();
        for i in 0..4 {
            ids.push(scim.create_user(user(&format!("r{round}-{i}@acme.com"))).await);
        }
        let gid = scim.post("/Groups", json!({"displayName": "Racing"})).await.body["id"].as_str().unwrap().to_string();
        let mut running = tokio::task::JoinSet::new();
        for (i, uid) in ids.iter().enumerate() {
            let (s, path) = (scim.clone(), format!("/Groups/{gid}"));
            let ops = json!([{"op": "add", "path": "members", "value": [{"value": uid}]}]);
            running.spawn(async move { s.patch(&path, patch_op(ops)).await.status });
            let (s, path) = (scim.clone(), format!("/Users/{uid}"));
            let ops = json!([{"op": "replace", "path": "title", "value": format!("T{i}")}]);
            running.spawn(async move { s.patch(&path, patch_op(ops)).await.status });
            let s = scim.clone();
            let body = user(&format!("new{round}-{i}@acme.com"));
            running.spawn(async move { s.post("/Users", body).await.status });
        }
        let (status, body) = app.delete(&format!("/api/v1/scim-connections/{}", scim.connection_id)).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        while let Some(done) = running.join_next().await {
            let status = done.unwrap();
            // Before the delete: done; after it: the key is refused, or the
            // resource is gone with its connection. Never a server error.
            assert!(
                [StatusCode::OK, StatusCode::CREATED, StatusCode::UNAUTHORIZED, StatusCode::NOT_FOUND]
                    .contains(&status),
                "{status}"
            );
        }
        let r = scim.get("/Users").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn concurrent_rotations_leave_one_current_key_and_the_others_in_grace() {
    let app = TestApp::spawn().await;
    let created = app.create_scim_connection(&unique("rot")).await;
    let id = created["scim_connection_id"].as_str().unwrap();
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (http, url, key) =
            (app.http.clone(), format!("{}/api/v1/scim-connections/{id}/rotate-key", app.base), app.key.clone());
        running.spawn(async move {
            let r = http.post(url).bearer_auth(key).json(&json!({"grace_period_hours": 1})).send().await.unwrap();
            (r.status(), r.json::<serde_json::Value>().await.unwrap())
        });
    }
    let mut issued = Vec::new();
    while let Some(done) = running.join_next().await {
        let (status, body) = done.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        issued.push(body["scim_api_key"].as_str().unwrap().to_string());
    }
    let users = format!("{}/Users", created["scim_base_url"].as_str().unwrap());
    let all: Vec<String> =
        issued.iter().cloned().chain(std::iter::once(created["scim_api_key"].as_str().unwrap().to_string())).collect();
    // Within the grace period every key works: the first one and those the later rotations replaced…
    for key in &all {
        let status = app.http.get(&users).bearer_auth(key).send().await.unwrap().status();
        assert_eq!(status, StatusCode::OK, "a key in its grace period is refused");
    }
    // …and every key but the last issued is retired within it: once it has
    // passed, exactly one key works.
    app.clock.advance(chrono::Duration::hours(2));
    let mut working = 0;
    for key in &all {
        if app.http.get(&users).bearer_auth(key).send().await.unwrap().status() == StatusCode::OK {
            working += 1;
        }
    }
    assert_eq!(working, 1, "keys still working after every grace period ended");
}

#[tokio::test]
async fn concurrent_patches_of_one_connection_each_keep_their_change() {
    let app = TestApp::spawn().await;
    for _round in 0..4 {
        let created = app.create_scim_connection(&unique("busy")).await;
        let path = format!("/api/v1/scim-connections/{}", created["scim_connection_id"].as_str().unwrap());
        let a = app.patch(&path, json!({"api_key_ttl_days": 30}));
        let b = app.patch(&path, json!({"unknown_group_members": "ignore"}));
        let ((sa, ba), (sb, bb)) = tokio::join!(a, b);
        assert_eq!(sa, StatusCode::OK, "{ba}");
        assert_eq!(sb, StatusCode::OK, "{bb}");
        let (_, got) = app.get(&path).await;
        assert_eq!(got["api_key_ttl_days"], 30, "{got}");
        assert_eq!(got["unknown_group_members"], "ignore", "{got}");
    }
}

#[tokio::test]
async fn group_writes_nesting_groups_while_the_connection_is_deleted_never_fail_on_the_server() {
    let app = TestApp::spawn().await;
    for round in 0..6 {
        let scim = app.scim().await;
        let mut gids = Vec::new();
        for i in 0..6 {
            let r = scim.post("/Groups", json!({"displayName": format!("Nest{round}-{i}")})).await;
            gids.push(r.body["id"].as_str().unwrap().to_string());
        }
        let mut running = tokio::task::JoinSet::new();
        for (i, gid) in gids.iter().enumerate() {
            // Each group but the first gets the one made before it as a
            // member (no cycle); a new group nests two of them.
            if let Some(next) = i.checked_sub(1).map(|before| &gids[before]) {
                let (s, path) = (scim.clone(), format!("/Groups/{gid}"));
                let ops = json!([{"op": "add", "path": "members", "value": [{"value": next}]}]);
                running.spawn(async move { s.patch(&path, patch_op(ops)).await });
            }
            let s = scim.clone();
            let body = json!({"displayName": format!("Outer{round}-{i}"), "members": [{"value": gid}, {"value": gids[(i + 3) % gids.len()]}]});
            running.spawn(async move { s.post("/Groups", body).await });
        }
        // Before the delete: done. After it: the key or the connection is
        // gone, or so is a group named (400).
        let after = [StatusCode::UNAUTHORIZED, StatusCode::NOT_FOUND, StatusCode::BAD_REQUEST];
        delete_the_connection_during(&app, &scim, running, &after, round).await;
    }
}

#[tokio::test]
async fn a_user_renamed_to_a_name_being_created_while_the_connection_is_deleted_never_fails_on_the_server() {
    let app = TestApp::spawn().await;
    for round in 0..8 {
        let scim = app.scim().await;
        let mut ids = Vec::new();
        for i in 0..4 {
            ids.push(scim.create_user(user(&format!("old{round}-{i}@acme.com"))).await);
        }
        let mut running = tokio::task::JoinSet::new();
        for (i, uid) in ids.iter().enumerate() {
            // A rename and a create want the same userName.
            let taken = format!("taken{round}-{i}@acme.com");
            let (s, path) = (scim.clone(), format!("/Users/{uid}"));
            let ops = json!([{"op": "replace", "path": "userName", "value": taken}]);
            running.spawn(async move { s.patch(&path, patch_op(ops)).await });
            let (s, body) = (scim.clone(), user(&taken));
            running.spawn(async move { s.post("/Users", body).await });
        }
        // Before the delete: done, or the name was taken by the other (409).
        // After it: the key or the connection is gone, or the user.
        let after = [StatusCode::CONFLICT, StatusCode::UNAUTHORIZED, StatusCode::NOT_FOUND];
        delete_the_connection_during(&app, &scim, running, &after, round).await;
    }
}

/// Deletes `scim`'s connection while the `running` requests are under way;
/// each must have succeeded or answered one of `refusals`, never a server
/// error.
async fn delete_the_connection_during(
    app: &TestApp,
    scim: &Scim,
    mut running: tokio::task::JoinSet<ScimResponse>,
    refusals: &[StatusCode],
    round: usize,
) {
    let (status, body) = app.delete(&format!("/api/v1/scim-connections/{}", scim.connection_id)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    while let Some(done) = running.join_next().await {
        let r = done.unwrap();
        let done_before = [StatusCode::OK, StatusCode::CREATED].contains(&r.status);
        assert!(done_before || refusals.contains(&r.status), "round {round}: {} {}", r.status, r.body);
    }
}

#[tokio::test]
async fn scim_writes_that_wait_for_the_connections_delete_are_then_refused_as_unauthorized() {
    let app = TestApp::spawn().await;
    if app.state.store.backend() != "postgres" {
        return; // SQLite runs writes one at a time: none waits inside the delete.
    }
    let scim = app.scim().await;
    // Also puts the key in this node's cache, which trusts it for a while.
    let gid = scim.post("/Groups", json!({"displayName": "Waiting"})).await.body["id"].as_str().unwrap().to_string();
    // The delete through another node, held open once it has the connection.
    let (store, id) = (app.state.store.clone(), scim.connection_id.clone());
    let (locked, wait_locked) = std::sync::mpsc::channel();
    let (release, wait_release) = std::sync::mpsc::channel::<()>();
    let deleting = std::thread::spawn(move || {
        store.write_blocking(move |c| {
            let deleted = tandem_store::scim_connections::delete(c, &id, chrono::Utc::now())?;
            locked.send(backend_pid(c)?).unwrap();
            // Long enough that only the test ends the hold, however slowly it runs.
            let _ = wait_release.recv_timeout(std::time::Duration::from_secs(120));
            Ok(deleted)
        })
    });
    let deleting_pid = wait_locked.recv().expect("the delete failed");
    let uid_body = user("waiting@acme.com");
    let group_body = json!({"displayName": "Also waiting"});
    let ops = json!([{"op": "replace", "path": "displayName", "value": "Renamed"}]);
    let requests = [
        ("POST", "/Users".to_string(), uid_body),
        ("POST", "/Groups".into(), group_body),
        ("PATCH", format!("/Groups/{gid}"), patch_op(ops)),
    ];
    let mut waiting = Vec::new();
    for (method, path, body) in requests {
        let s = scim.clone();
        waiting.push(tokio::spawn(async move {
            if method == "POST" {
                s.post(&path, body).await
            } else {
                s.patch(&path, body).await
            }
        }));
    }
    // The three wait on the delete's locks (PostgreSQL says so, asked on a
    // connection of its own: the server's pool is taken), and none has finished.
    let options = tandem_store::PoolOptions { max_size: 1, min_idle: 0, ..Default::default() };
    let watcher = tandem_store::Store::open(&postgres_url().unwrap(), &options).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while waiting_on(&watcher, deleting_pid) < 3 {
        assert!(std::time::Instant::now() < deadline, "the writes never waited on the connection's delete");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(waiting.iter().all(|w| !w.is_finished()), "a write did not wait for the connection's delete");
    release.send(()).unwrap();
    assert!(deleting.join().unwrap().unwrap());
    for w in waiting {
        let r = w.await.unwrap();
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        assert!(r.body["detail"].as_str().unwrap().contains("was deleted while the request ran"), "{}", r.body);
    }
}

#[tokio::test]
async fn a_connections_patch_does_not_wait_for_group_writes_under_it() {
    let app = TestApp::spawn().await;
    if app.state.store.backend() != "postgres" {
        return; // SQLite runs writes one at a time: there is nothing to wait for.
    }
    let scim = app.scim().await;
    let uid = scim.create_user(user("member@acme.com")).await;
    let (release, group_write) = hold_group_write(&app, &scim.connection_id, "Held open", &[&uid]);
    let path = format!("/api/v1/scim-connections/{}", scim.connection_id);
    let patch = app.patch(&path, json!({"unknown_group_members": "ignore", "api_key_ttl_days": 30}));
    // Time enough for a request on a loaded machine; the group write holds on
    // until it is released below, so one that waited for it would not end.
    let patched = tokio::time::timeout(std::time::Duration::from_secs(30), patch).await;
    release.send(()).unwrap();
    group_write.join().unwrap().unwrap();
    let (status, body) = patched.expect("the connection's PATCH waited for the group write to end");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["unknown_group_members"], "ignore", "{body}");
}

/// `/metrics`, read every 15 s (advance the clock past it).
async fn metrics_text(app: &TestApp) -> String {
    app.clock.advance(chrono::Duration::seconds(16));
    app.http.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap()
}

/// Each key says when it last authenticated a request (to the minute), so
/// that after a rotation an admin sees whether the IdP moved to the new
/// key; with `server.metrics_per_connection`, `/metrics` has each
/// connection's key expiry and last use, to alert on before the IdP's
/// provisioning fails.
#[tokio::test]
async fn a_keys_last_use_is_recorded_to_the_minute_and_exported_with_its_expiry() {
    let app = TestApp::spawn_adjusted(|s| s.server.metrics_per_connection = true).await;
    // A quote and a backslash in a customer ID stay inside its label.
    let customer = format!("{}\"q\\b", unique("used"));
    let created = app.create_scim_connection(&customer).await;
    let id = created["scim_connection_id"].as_str().unwrap().to_string();
    assert_eq!(created["api_key_last_used_at"], serde_json::Value::Null);
    let labels = format!(
        "{{scim_connection_id=\"{id}\",customer_id=\"{}\"}}",
        customer.replace('\\', "\\\\").replace('"', "\\\"")
    );
    let expires = chrono::DateTime::parse_from_rfc3339(created["api_key_expires_at"].as_str().unwrap()).unwrap();
    let text = metrics_text(&app).await;
    assert!(
        text.contains(&format!("tandem_scim_api_key_expiry_timestamp_seconds{labels} {}", expires.timestamp())),
        "{labels}\n{text}"
    );
    assert!(!text.contains(&format!("tandem_scim_api_key_last_used_timestamp_seconds{labels}")), "never used yet");

    let scim = app.scim_of(&created);
    let last_used = || async {
        let (status, body) = app.get(&format!("/api/v1/scim-connections/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        body["api_key_last_used_at"].as_str().map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap())
    };
    assert_eq!(scim.get("/Users").await.status, StatusCode::OK);
    let first = last_used().await.expect("recorded at the first use");
    let text = metrics_text(&app).await;
    assert!(
        text.contains(&format!("tandem_scim_api_key_last_used_timestamp_seconds{labels} {}", first.timestamp())),
        "{text}"
    );
    // Within the minute, a use is not written again (authentication stays a read) ...
    app.clock.advance(chrono::Duration::seconds(14));
    assert_eq!(scim.get("/Users").await.status, StatusCode::OK);
    assert_eq!(last_used().await, Some(first));
    // ... after it, it is.
    app.clock.advance(chrono::Duration::seconds(60));
    assert_eq!(scim.get("/Users").await.status, StatusCode::OK);
    let second = last_used().await.unwrap();
    assert!(second - first >= chrono::Duration::seconds(90), "{first} {second}");

    // After a rotation: the old key's last use is listed with its grace, the
    // new key is not used yet, and the connection's last use is the old key's.
    let (status, rotated) =
        app.post(&format!("/api/v1/scim-connections/{id}/rotate-key"), json!({"grace_period_hours": 24})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["api_key_last_used_at"], serde_json::Value::Null);
    let previous = &rotated["previous_keys"][0];
    assert_eq!(previous["api_key_prefix"], created["api_key_prefix"]);
    assert_eq!(previous["valid_until"], rotated["previous_keys_valid_until"][0]);
    assert_eq!(chrono::DateTime::parse_from_rfc3339(previous["last_used_at"].as_str().unwrap()).unwrap(), second);
    let text = metrics_text(&app).await;
    assert!(
        text.contains(&format!("tandem_scim_api_key_last_used_timestamp_seconds{labels} {}", second.timestamp())),
        "the series stays through a rotation: {text}"
    );
    let new_key = Scim { key: rotated["scim_api_key"].as_str().unwrap().to_string(), ..scim.clone() };
    assert_eq!(new_key.get("/Users").await.status, StatusCode::OK);
    assert!(last_used().await.is_some(), "the IdP moved to the new key");
    // The connection's answer holds neither key nor any key's hash.
    let (_, fetched) = app.get(&format!("/api/v1/scim-connections/{id}")).await;
    for key in [&new_key.key, &scim.key] {
        assert!(!fetched.to_string().contains(key.as_str()));
        assert!(!fetched.to_string().contains(&tandem_core::keys::hash_key(key)), "{fetched}");
    }
}

/// By default `/metrics` names no connection or customer (it needs no key,
/// and the customer IDs are the app's customer list): SCIM keys are counted
/// by warning level, with the connections never used and those whose IdP
/// still sends a key a rotation left working.
#[tokio::test]
async fn metrics_count_scim_keys_without_naming_customers() {
    let app = TestApp::spawn_on_own_database().await;
    let count = |text: &str, series: &str| -> i64 {
        let line =
            text.lines().find(|l| l.starts_with(&format!("{series} "))).unwrap_or_else(|| panic!("{series}: {text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let customer = unique("secret-customer-name");
    let created = app.create_scim_connection(&customer).await;
    let (_, soon) =
        app.post("/api/v1/scim-connections", json!({"customer_id": unique("soon"), "api_key_ttl_days": 3})).await;
    // A client secret given an expiry three days off.
    let mut client = okta_client(&unique("secret-soon"));
    client["idp"]["client_secret_expires_at"] =
        json!((chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    assert_eq!(app.post("/api/v1/oidc-clients", client).await.0, StatusCode::CREATED);
    let text = metrics_text(&app).await;
    assert!(!text.contains(&customer) && !text.contains(created["scim_connection_id"].as_str().unwrap()), "{text}");
    assert!(!text.contains("tandem_scim_api_key_expiry_timestamp_seconds{"), "{text}");
    assert_eq!(count(&text, "tandem_scim_api_keys{warning_level=\"ok\"}"), 1, "{text}");
    assert_eq!(count(&text, "tandem_scim_api_keys{warning_level=\"critical\"}"), 1, "{text}");
    assert_eq!(count(&text, "tandem_scim_api_keys{warning_level=\"expired\"}"), 0, "{text}");
    assert_eq!(count(&text, "tandem_oidc_client_secrets{warning_level=\"critical\"}"), 1, "{text}");
    assert_eq!(count(&text, "tandem_oidc_client_secrets{warning_level=\"ok\"}"), 0, "{text}");
    assert_eq!(count(&text, "tandem_scim_connections_never_used"), 2);
    assert_eq!(count(&text, "tandem_scim_connections_on_previous_key"), 0);

    let scim = app.scim_of(&created);
    assert_eq!(scim.get("/Users").await.status, StatusCode::OK);
    let id = created["scim_connection_id"].as_str().unwrap();
    let (_, rotated) = app.post(&format!("/api/v1/scim-connections/{id}/rotate-key"), json!({})).await;
    // Uses from before the rotation do not count.
    let text = metrics_text(&app).await;
    assert_eq!(count(&text, "tandem_scim_connections_on_previous_key"), 0, "{text}");
    // The IdP still sends the old key (cached for a few seconds: the clock moves past that).
    app.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(scim.get("/Users").await.status, StatusCode::OK);
    let text = metrics_text(&app).await;
    assert_eq!(count(&text, "tandem_scim_connections_never_used"), 1, "{text}");
    assert_eq!(count(&text, "tandem_scim_connections_on_previous_key"), 1, "{text}");
    // Once it sends the new one, it is no longer on the old key.
    app.clock.advance(chrono::Duration::seconds(61));
    let new_key = Scim { key: rotated["scim_api_key"].as_str().unwrap().to_string(), ..scim.clone() };
    assert_eq!(new_key.get("/Users").await.status, StatusCode::OK);
    let text = metrics_text(&app).await;
    assert_eq!(count(&text, "tandem_scim_connections_on_previous_key"), 0, "{text}");
    // Three days on, the short-lived key has expired, and the rotated-out
    // key's grace has ended: the connection is not "never used" for that.
    app.clock.advance(chrono::Duration::days(3));
    let text = metrics_text(&app).await;
    assert_eq!(count(&text, "tandem_scim_api_keys{warning_level=\"expired\"}"), 1, "{text}");
    assert_eq!(count(&text, "tandem_scim_connections_never_used"), 1, "{text}");
    assert_eq!(count(&text, "tandem_oidc_client_secrets{warning_level=\"expired\"}"), 1, "{text}");
    assert!(soon["scim_connection_id"].is_string());
}

/// A rotated-out key works until its grace ends or it expires, whichever
/// comes first, and the connection says so.
#[tokio::test]
async fn a_previous_key_is_valid_until_its_grace_or_its_expiry_whichever_comes_first() {
    let app = TestApp::spawn().await;
    let (_, created) =
        app.post("/api/v1/scim-connections", json!({"customer_id": unique("short"), "api_key_ttl_days": 1})).await;
    let id = created["scim_connection_id"].as_str().unwrap();
    let (status, rotated) =
        app.post(&format!("/api/v1/scim-connections/{id}/rotate-key"), json!({"grace_period_hours": 48})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["previous_keys"][0]["valid_until"], created["api_key_expires_at"], "{rotated}");
    assert_eq!(rotated["previous_keys_valid_until"][0], created["api_key_expires_at"]);
    let old = app.scim_of(&created);
    app.clock.advance(chrono::Duration::hours(25));
    assert_eq!(old.get("/Users").await.status, StatusCode::UNAUTHORIZED, "expired in its grace");
    let (_, now) = app.get(&format!("/api/v1/scim-connections/{id}")).await;
    assert_eq!(now["previous_keys"], json!([]), "{now}");
    assert_eq!(now["previous_keys_valid_until"], json!([]));
}
