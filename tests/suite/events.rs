//! The directory event feed: `GET /api/v1/events` and `/events/cursor`.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Every event of `connection` the feed holds, read page by page (`limit`
/// per page) from the start; waits up to 20 s for at least `want` (on
/// PostgreSQL an event shows once every transaction that began before it
/// ended, and other tests hold transactions on the shared server).
async fn feed(app: &TestApp, connection: &str, limit: usize, want: usize) -> Vec<Value> {
    read_all(app, &format!("scim_connection_id={connection}&limit={limit}"), limit, want).await.0
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn replace(path: &str, value: Value) -> Value {
    patch_op(json!([{"op": "Replace", "path": path, "value": value}]))
}

/// Each change an IdP makes is an event, in order, with the resource as it
/// is after the change; reads, and writes that change nothing, are not.
#[tokio::test]
async fn every_directory_change_is_an_event_in_the_order_it_was_made() {
    let app = TestApp::spawn().await;
    let customer = unique("events");
    let conn = app.create_scim_connection(&customer).await;
    let scim = app.scim_of(&conn);
    let ada = scim.create_user(user("ada@acme.com")).await;
    for (active, status) in [("False", StatusCode::OK), ("False", StatusCode::OK), ("True", StatusCode::OK)] {
        // The second deactivation changes nothing: no event.
        assert_eq!(scim.patch(&format!("/Users/{ada}"), replace("active", json!(active))).await.status, status);
    }
    assert_eq!(
        scim.patch(&format!("/Users/{ada}"), replace("name.familyName", json!("Lovelace"))).await.status,
        StatusCode::OK
    );
    assert_eq!(scim.get(&format!("/Users/{ada}")).await.status, StatusCode::OK);
    let grace = scim.create_user(user("grace@acme.com")).await;
    let created = scim.post("/Groups", json!({"displayName": "Engineers", "members": [{"value": ada}]})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let group = created.body["id"].as_str().unwrap().to_string();
    let add = patch_op(json!([{"op": "Add", "path": "members", "value": [{"value": grace}]}]));
    assert_eq!(scim.patch(&format!("/Groups/{group}"), add).await.status, StatusCode::OK);
    assert_eq!(
        scim.patch(&format!("/Groups/{group}"), replace("displayName", json!("Eng"))).await.status,
        StatusCode::OK
    );
    let remove = patch_op(json!([{"op": "Remove", "path": format!("members[value eq \"{ada}\"]")}]));
    assert_eq!(scim.patch(&format!("/Groups/{group}"), remove).await.status, StatusCode::OK);
    assert_eq!(scim.delete(&format!("/Users/{grace}")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(scim.delete(&format!("/Groups/{group}")).await.status, StatusCode::NO_CONTENT);
    let (status, _) = app.delete(&format!("/api/v1/scim-connections/{}", scim.connection_id)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let expected = [
        "user.created",
        "user.deactivated",
        "user.reactivated",
        "user.updated",
        "user.created",
        "group.created",
        "group.member_added",
        "group.member_added",
        "group.updated",
        "group.member_removed",
        "user.deleted",
        "group.member_removed",
        "group.deleted",
        "scim_connection.deleted",
    ];
    let events = feed(&app, &scim.connection_id, 100, expected.len()).await;
    assert_eq!(types(&events), expected, "{events:#?}");
    for e in &events {
        assert_eq!(e["customer_id"], json!(customer), "{e}");
        assert_eq!(e["scim_connection_id"], json!(scim.connection_id), "{e}");
        assert!(chrono::DateTime::parse_from_rfc3339(e["occurred_at"].as_str().unwrap()).is_ok(), "{e}");
    }
    let data: Vec<&Value> = events.iter().map(|e| &e["data"]).collect();
    assert_eq!(
        *data[0],
        json!({"id": ada, "user_name": "ada@acme.com", "external_id": null, "active": true, "version": 1})
    );
    assert_eq!(
        (&data[1]["active"], &data[1]["changed"], &data[1]["version"]),
        (&json!(false), &json!(["active"]), &json!(2))
    );
    assert_eq!((&data[2]["active"], &data[2]["version"]), (&json!(true), &json!(3)));
    assert_eq!((&data[3]["changed"], &data[3]["version"]), (&json!(["name.familyName"]), &json!(4)));
    assert_eq!(*data[5], json!({"id": group, "display_name": "Engineers", "external_id": null, "version": 1}));
    assert_eq!(*data[6], json!({"group_id": group, "member_id": ada, "member_type": "User", "group_version": 1}));
    assert_eq!(*data[7], json!({"group_id": group, "member_id": grace, "member_type": "User", "group_version": 2}));
    assert_eq!((&data[8]["display_name"], &data[8]["changed"]), (&json!("Eng"), &json!(["displayName"])));
    assert_eq!(*data[9], json!({"group_id": group, "member_id": ada, "member_type": "User", "group_version": 4}));
    assert_eq!((&data[10]["id"], &data[10]["active"], &data[10]["version"]), (&json!(grace), &json!(false), &json!(2)));
    assert_eq!(*data[11], json!({"group_id": group, "member_id": grace, "member_type": "User", "group_version": null}));
    assert_eq!(data[12]["id"], json!(group));
    assert_eq!(*data[13], json!({"id": scim.connection_id}));
    assert_eq!(events.iter().filter(|e| e["id"].is_string()).count(), expected.len());

    // Pages of two give the same events, each page's next_cursor resuming after its last.
    let paged = feed(&app, &scim.connection_id, 2, expected.len()).await;
    assert_eq!(paged, events);

    // Narrowed to types, and to the customer.
    // (On PostgreSQL other tests' events come first: a narrowed read passes
    // over up to 1,000 of them and says has_more.)
    let query = format!("customer_id={customer}&type=user.deactivated,user.deleted");
    let (narrowed, cursor) = read_all(&app, &query, 50, 2).await;
    assert_eq!(types(&narrowed), ["user.deactivated", "user.deleted"], "{narrowed:?}");
    // At the end of the feed, a read from its cursor says nothing more is there.
    let (_, all_of_it) = read_all(&app, "limit=100", 100, 0).await;
    let end = all_of_it.unwrap();
    let (status, body) = app.get(&format!("/api/v1/events?limit=100&after={end}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    if postgres_url().is_none() || body["data"] == json!([]) {
        // (On PostgreSQL other tests may have added some meanwhile.)
        assert_eq!((&body["data"], &body["has_more"]), (&json!([]), &json!(false)), "{body}");
        assert_eq!(body["next_cursor"], json!(end), "{body}");
    }
    // Resuming after the last of them finds nothing new, and keeps the cursor.
    let cursor = cursor.unwrap();
    let (_, again) = app.get(&format!("/api/v1/events?{query}&after={cursor}")).await;
    assert_eq!(again["data"], json!([]), "{again}");
    if postgres_url().is_none() {
        // (On PostgreSQL other tests' events may move it on.)
        assert_eq!(again["next_cursor"], json!(cursor), "{again}");
    }
}

/// `/events/cursor` is where to follow the feed from: later changes only.
/// Malformed parameters are refused, naming what was wrong.
#[tokio::test]
async fn the_feed_is_followed_from_its_cursor_and_refuses_what_it_cannot_read() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let before = scim.create_user(user("before@acme.com")).await;
    feed(&app, &scim.connection_id, 100, 1).await;
    let (status, body) = app.get("/api/v1/events/cursor").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cursor = body["cursor"].as_str().expect("a cursor once there are events").to_string();
    let after = scim.create_user(user("after@acme.com")).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let seen = loop {
        let path = format!("/api/v1/events?after={cursor}&scim_connection_id={}", scim.connection_id);
        let (status, body) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let seen: Vec<Value> = body["data"].as_array().unwrap().clone();
        if !seen.is_empty() || std::time::Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let ids: Vec<&Value> = seen.iter().map(|e| &e["data"]["id"]).collect();
    assert_eq!(ids, [&json!(after)], "{seen:?}");
    assert_ne!(before, after);

    for (query, field) in [
        ("after=not-a-cursor", "after"),
        ("after=1", "after"),
        ("type=user.created,user.exploded", "type"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("since=2026-01-01T00:00:00Z", "since"),
        // Read as a map, a repeated parameter would keep its last value only.
        ("type=user.deactivated&type=user.deleted", "type"),
        ("limit=5&customer_id=a&limit=5", "limit"),
    ] {
        let (status, body) = app.get(&format!("/api/v1/events?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(invalid_fields(&body), [field], "{query}: {body}");
    }
    let (_, body) = app.get("/api/v1/audit-events?action=a&action=b").await;
    assert_eq!(invalid_fields(&body), ["action"], "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("more than once"), "{body}");
    // Checked after the key, and on the routes that read the query: no
    // answer to anyone else, no metrics series of its own for an unknown path.
    let anonymous = app.http.get(format!("{}/api/v1/events?type=a&type=b", app.base)).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = app.get("/api/v1/made-up-route?a=1&a=1").await;
    assert_eq!((status, &body["error"]["type"]), (StatusCode::NOT_FOUND, &json!("RouteNotFound")), "{body}");
    let metrics = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tandem_http_requests_total") && !metrics.contains("made-up-route"), "{metrics}");
    let (status, body) = app.get("/api/v1/events?type=user.exploded").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("user.deactivated"), "{status} {body}");
    let (status, body) = app.get("/api/v1/events/cursor?after=1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = app.post("/api/v1/events", json!({})).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    // The feed is the app's: SCIM keys do not read it.
    let resp = app.http.get(format!("{}/api/v1/events", app.base)).bearer_auth(&scim.key).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

/// A write changes its users and groups and records their events, or does
/// neither: a refused write leaves no event.
#[tokio::test]
async fn a_refused_write_leaves_no_event() {
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let ada = scim.create_user(user("ada@acme.com")).await;
    // A userName taken, a group naming an unknown member, a stale If-Match.
    assert_eq!(scim.post("/Users", user("ADA@acme.com")).await.status, StatusCode::CONFLICT);
    let unknown = json!({"displayName": "G", "members": [{"value": "no-such-user"}]});
    assert_eq!(scim.post("/Groups", unknown).await.status, StatusCode::BAD_REQUEST);
    let stale = scim.patch_if_match(&format!("/Users/{ada}"), replace("active", json!(false)), "W/\"9\"").await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED, "{}", stale.body);
    let grace = scim.create_user(user("grace@acme.com")).await;
    let events = feed(&app, &scim.connection_id, 100, 2).await;
    let ids: Vec<&Value> = events.iter().map(|e| &e["data"]["id"]).collect();
    assert_eq!(types(&events), ["user.created", "user.created"], "{events:?}");
    assert_eq!(ids, [&json!(ada), &json!(grace)]);
}

/// PostgreSQL: a transaction that began writing before another but commits
/// after it is not skipped. The later transaction's event waits until the
/// earlier one has ended; then both are read, the earlier one's first.
#[tokio::test]
async fn an_event_committed_late_is_read_in_its_place_not_skipped() {
    if postgres_url().is_none() {
        return; // SQLite has one writer at a time: commits cannot overlap.
    }
    let app = TestApp::spawn().await;
    let scim = app.scim().await;
    let first = scim.create_user(user("first@acme.com")).await;
    let seen = feed(&app, &scim.connection_id, 100, 1).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    let cursor = seen[0]["id"].as_str().unwrap().to_string();

    // A transaction takes its id, waits while the SCIM write below commits,
    // then records an event (a later sequence number) and commits.
    let (store, connection) = (app.state.store.clone(), scim.connection_id.clone());
    let (began, wait_began) = std::sync::mpsc::channel();
    let (go, wait_go) = std::sync::mpsc::channel::<()>();
    let held = std::thread::spawn(move || {
        store.write_blocking(move |c| {
            use diesel::RunQueryDsl;
            diesel::sql_query("SELECT pg_current_xact_id()").execute(c)?;
            began.send(()).unwrap();
            // Long enough that only the test ends the wait, however slowly it runs.
            let _ = wait_go.recv_timeout(std::time::Duration::from_secs(120));
            let event = tandem_store::events::NewEvent {
                event_type: "user.updated",
                resource_id: "held".into(),
                data: json!({"id": "held"}),
            };
            tandem_store::events::record(c, &connection, chrono::Utc::now(), &[event])
        })
    });
    wait_began.recv().unwrap();
    let second = scim.create_user(user("second@acme.com")).await;
    // Committed, but behind a transaction still running: not yet in the
    // feed. A reader follows the cursor meanwhile (other tests' events may
    // move it on).
    let mut cursor = cursor;
    let page = |cursor: &str| format!("/api/v1/events?after={cursor}&scim_connection_id={}", scim.connection_id);
    for _ in 0..3 {
        let (status, body) = app.get(&page(&cursor)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"], json!([]), "{body}");
        cursor = body["next_cursor"].as_str().unwrap().to_string();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    go.send(()).unwrap();
    held.join().unwrap().unwrap();
    // From where that reader got to: both, the earlier transaction's first.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen: Vec<Value> = Vec::new();
    while seen.len() < 2 && std::time::Instant::now() < deadline {
        let (status, body) = app.get(&page(&cursor)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        seen.extend(body["data"].as_array().unwrap().iter().cloned());
        cursor = body["next_cursor"].as_str().unwrap().to_string();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let ids: Vec<&Value> = seen.iter().map(|e| &e["data"]["id"]).collect();
    assert_eq!(ids, [&json!("held"), &json!(second)], "{seen:#?}");
    let events = feed(&app, &scim.connection_id, 100, 3).await;
    let ids: Vec<&Value> = events.iter().map(|e| &e["data"]["id"]).collect();
    assert_eq!(ids, [&json!(first), &json!("held"), &json!(second)], "{events:#?}");
}

/// PostgreSQL: events brought over from another server (a dump and
/// restore) carry transaction ids this server has not reached. At start
/// (here called as a start does) they are put before every new event; a
/// cursor of the old server is refused as expired rather than skipping the
/// new events.
#[tokio::test]
async fn events_brought_from_another_server_come_first_and_its_cursors_are_refused() {
    if postgres_url().is_none() {
        return; // SQLite has no transaction ids.
    }
    let app = TestApp::spawn_on_own_database().await;
    let scim = app.scim().await;
    let (store, connection) = (app.state.store.clone(), scim.connection_id.clone());
    store
        .write_blocking(move |c| {
            use diesel::RunQueryDsl;
            diesel::sql_query(
                "INSERT INTO directory_events (txid, created_at, scim_connection_id, customer_id, event_type, \
                 resource_id, data) VALUES (9000000000000, 0, $1, 'moved', 'user.created', 'moved', '{\"id\": \"moved\"}')",
            )
            .bind::<diesel::sql_types::Text, _>(connection)
            .execute(c)?;
            Ok(())
        })
        .unwrap();
    // The old server's cursor: this one has not reached it.
    let (status, body) = app.get("/api/v1/events?after=9000000000000-1").await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(body["error"]["type"], "EventCursorExpired", "{body}");
    let ids = |events: Vec<Value>| events.iter().map(|e| e["data"]["id"].clone()).collect::<Vec<_>>();
    let moved = app.state.store.write_blocking(tandem_store::events::renumber_moved).unwrap();
    assert_eq!(moved, 1);
    let ada = scim.create_user(user("ada@acme.com")).await;
    assert_eq!(ids(feed(&app, &scim.connection_id, 100, 2).await), [json!("moved"), json!(ada)]);
    let (status, body) = app.get("/api/v1/events?after=9000000000000-1").await;
    assert_eq!(status, StatusCode::GONE, "still refused: {body}");
    assert_eq!(app.state.store.write_blocking(tandem_store::events::renumber_moved).unwrap(), 0);
}

/// A nested group's membership events say it is a group: when it joins,
/// when it is removed, and when its own deletion takes it out.
#[tokio::test]
async fn member_events_say_whether_the_member_is_a_user_or_a_group() {
    let app = TestApp::spawn().await;
    let customer = unique("events-nested");
    let conn = app.create_scim_connection(&customer).await;
    let scim = app.scim_of(&conn);
    let ada = scim.create_user(user("ada@acme.com")).await;
    let inner = scim.post("/Groups", json!({"displayName": "Inner"})).await.body["id"].as_str().unwrap().to_string();
    let body = json!({"displayName": "Outer", "members": [{"value": ada}, {"value": inner}]});
    let outer = scim.post("/Groups", body).await.body["id"].as_str().unwrap().to_string();
    let remove = patch_op(json!([{"op": "Remove", "path": format!("members[value eq \"{inner}\"]")}]));
    assert_eq!(scim.patch(&format!("/Groups/{outer}"), remove).await.status, StatusCode::OK);
    let add = patch_op(json!([{"op": "Add", "path": "members", "value": [{"value": inner}]}]));
    assert_eq!(scim.patch(&format!("/Groups/{outer}"), add).await.status, StatusCode::OK);
    assert_eq!(scim.delete(&format!("/Groups/{inner}")).await.status, StatusCode::NO_CONTENT);
    // Nine events: the deletion of `inner` is two (removed from `outer`, deleted).
    let events = feed(&app, &scim.connection_id, 100, 9).await;
    let members: Vec<(String, String, String)> = events
        .iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("group.member_"))
        .map(|e| {
            let d = &e["data"];
            (
                e["type"].as_str().unwrap().to_string(),
                d["member_id"].as_str().unwrap().to_string(),
                d["member_type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        ("group.member_added", &ada, "User"),
        ("group.member_added", &inner, "Group"),
        ("group.member_removed", &inner, "Group"),
        ("group.member_added", &inner, "Group"),
        ("group.member_removed", &inner, "Group"),
    ]
    .iter()
    .map(|(t, m, k)| (t.to_string(), m.to_string(), k.to_string()))
    .collect();
    assert_eq!(members, expected, "{events:#?}");
}
