//! Webhook endpoints: the directory event feed pushed to a receiver,
//! signed, in order, at least once.

use crate::helpers::*;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    /// What the receiver answered.
    status: u16,
}

/// A receiver on loopback that records what it is sent and answers the
/// statuses it is told to (then 200; a "status" 0 is never answered); a
/// request whose body holds the text it is told to refuse (a resource's
/// id) is answered 503 whenever it comes.
#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<Vec<u16>>>,
    refuse: Arc<Mutex<Option<String>>>,
}

async fn receive(req: HttpRequest, body: web::Bytes, r: web::Data<Receiver>) -> HttpResponse {
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let body = String::from_utf8_lossy(&body).into_owned();
    let refused = r.refuse.lock().unwrap().as_ref().is_some_and(|text| body.contains(text.as_str()));
    let status = if refused {
        503
    } else {
        let mut answers = r.answers.lock().unwrap();
        if answers.is_empty() {
            200
        } else {
            answers.remove(0)
        }
    };
    r.got.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
        status,
    });
    if status == 0 {
        // Longer than the sender waits for an answer.
        tokio::time::sleep(std::time::Duration::from_secs(300)).await;
        return HttpResponse::ServiceUnavailable().finish();
    }
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
}

impl Receiver {
    async fn start(answers: Vec<u16>) -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/tandem", listener.local_addr().unwrap());
        let r = Receiver { url, got: Arc::default(), answers: Arc::new(Mutex::new(answers)), refuse: Arc::default() };
        let data = web::Data::new(r.clone());
        let server =
            HttpServer::new(move || App::new().app_data(data.clone()).route("/hooks/tandem", web::post().to(receive)))
                .workers(1)
                .listen(listener)
                .unwrap()
                .run();
        tokio::spawn(server);
        r
    }

    /// What it got once at least `want` events came (or 20 s passed).
    async fn events(&self, want: usize) -> (Vec<Received>, Vec<Value>) {
        self.events_in(want, |_| true).await
    }

    /// What it got once at least `want` events came in requests it
    /// answered 200 (or 20 s passed).
    async fn accepted(&self, want: usize) -> (Vec<Received>, Vec<Value>) {
        self.events_in(want, |r| r.status == 200).await
    }

    /// The ids of the resources of the events in the requests it answered 200, in order.
    fn accepted_ids(&self) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.status == 200)
            .flat_map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["data"].as_array().unwrap().clone())
            .map(|e| e["data"]["id"].clone())
            .collect()
    }

    /// What it got once at least `want` events came in the requests `counted` picks (or 20 s passed).
    async fn events_in(&self, want: usize, counted: impl Fn(&Received) -> bool) -> (Vec<Received>, Vec<Value>) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let got = self.got.lock().unwrap().clone();
            let events: Vec<Value> = got
                .iter()
                .filter(|r| r.body.starts_with('{') && counted(r))
                .flat_map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["data"].as_array().unwrap().clone())
                .collect();
            if events.len() >= want || std::time::Instant::now() > deadline {
                return (got, events);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// Checks a Standard Webhooks signature with Python's own HMAC (not ours).
fn signature_checks(secret: &str, r: &Received) -> bool {
    let script = "import base64,hashlib,hmac,sys\n\
                  secret,msg,ts,sig=sys.argv[1:5]\n\
                  body=sys.stdin.buffer.read()\n\
                  key=base64.b64decode(secret[len('whsec_'):])\n\
                  mac=hmac.new(key,msg.encode()+b'.'+ts.encode()+b'.'+body,hashlib.sha256).digest()\n\
                  sys.exit(0 if sig=='v1,'+base64.b64encode(mac).decode() else 1)\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, secret, &r.id, &r.timestamp, &r.signature])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(r.body.as_bytes()).unwrap();
    child.wait().unwrap().success()
}

/// The endpoint `id` as shown once `done` holds of it, or as last shown
/// when `secs` have passed.
async fn endpoint_once(app: &TestApp, id: &str, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let (_, shown) = app.get(&format!("/api/v1/webhook-endpoints/{id}")).await;
        if done(&shown) || std::time::Instant::now() > deadline {
            return shown;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn fast(s: &mut tandem::settings::Settings) {
    s.webhooks.poll_interval_ms = 50;
}

/// Changes made after an endpoint is created reach it signed, in order,
/// narrowed to its customer and types; the secret is shown only once.
#[tokio::test]
async fn an_endpoint_gets_the_events_made_after_it_signed_and_in_order() {
    // A database of its own: a node delivers every endpoint of its database,
    // and another test's node, stopped while it sends to this receiver,
    // leaves the request answered but not recorded (its events come again).
    let app = TestApp::spawn_on_own_database_adjusted(fast).await;
    let customer = unique("hooked");
    let conn = app.create_scim_connection(&customer).await;
    let scim = app.scim_of(&conn);
    let other = app.scim().await;
    let before = scim.create_user(user("before@acme.com")).await;
    // The endpoint starts after the newest event in the feed; on PostgreSQL
    // another transaction on the server can hold `before` back from it for a
    // while, and the endpoint would then start before it.
    wait_in_feed(&app, &scim.connection_id, &before).await;
    let receiver = Receiver::start(vec![]).await;
    let hooked = |url: &str| json!({"url": url, "customer_id": customer, "types": ["user.created", "user.deactivated", "user.deleted"]});
    let (status, endpoint) = app.post("/api/v1/webhook-endpoints", hooked(&receiver.url)).await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    let secret = endpoint["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{endpoint}");
    let id = endpoint["id"].as_str().unwrap().to_string();

    let ada = scim.create_user(user("ada@acme.com")).await;
    other.create_user(user("someone@else.com")).await;
    let off = patch_op(json!([{"op": "Replace", "path": "active", "value": false}]));
    assert_eq!(scim.patch(&format!("/Users/{ada}"), off).await.status, StatusCode::OK);
    let rename = patch_op(json!([{"op": "Replace", "path": "name.familyName", "value": "Lovelace"}]));
    assert_eq!(scim.patch(&format!("/Users/{ada}"), rename).await.status, StatusCode::OK);
    assert_eq!(scim.delete(&format!("/Users/{ada}")).await.status, StatusCode::NO_CONTENT);

    let (got, events) = receiver.events(3).await;
    let seen: Vec<(&str, &Value)> = events.iter().map(|e| (e["type"].as_str().unwrap(), &e["data"]["id"])).collect();
    assert_eq!(seen, [("user.created", &json!(ada)), ("user.deactivated", &json!(ada)), ("user.deleted", &json!(ada))]);
    assert!(events.iter().all(|e| e["customer_id"] == json!(customer)), "{events:?}");
    assert!(!seen.iter().any(|(_, id)| **id == json!(before)), "made before the endpoint");
    for r in &got {
        assert!(signature_checks(&secret, r), "{r:?}");
        assert!(r.id.starts_with("msg_"), "{r:?}");
        assert!(!signature_checks("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", r), "{r:?}");
    }

    // Its state, without the secret. The success is recorded once the
    // delivery has the receiver's answer, a moment after the receiver saw it.
    let shown = endpoint_once(&app, &id, 20, |shown| shown["last_success_at"].is_string()).await;
    assert_eq!(shown["id"], json!(id), "{shown}");
    assert!(shown.get("secret").is_none() && !shown.to_string().contains(&secret), "{shown}");
    assert_eq!(shown["types"], json!(["user.created", "user.deactivated", "user.deleted"]));
    assert!(shown["last_success_at"].is_string() && shown["last_error"].is_null(), "{shown}");
    let (_, listed) = app.get("/api/v1/webhook-endpoints").await;
    assert!(listed["data"].as_array().unwrap().iter().any(|e| e["id"] == json!(id)), "{listed}");
    assert!(!listed.to_string().contains(&secret));
    let (_, audit) = app.get(&format!("/api/v1/audit-events?target_id={id}")).await;
    assert_eq!(audit["data"][0]["action"], "webhook_endpoint.created", "{audit}");

    // Deleted: nothing more is sent. Another endpoint taking the same events
    // shows when the deleted one would have had the next.
    let witness = Receiver::start(vec![]).await;
    let (status, second) = app.post("/api/v1/webhook-endpoints", hooked(&witness.url)).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let (status, _) = app.delete(&format!("/api/v1/webhook-endpoints/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let sent = receiver.got.lock().unwrap().len();
    let after = scim.create_user(user("after@acme.com")).await;
    let (_, next) = witness.accepted(1).await;
    let next: Vec<&Value> = next.iter().map(|e| &e["data"]["id"]).collect();
    assert_eq!(next, [&json!(after)], "the other endpoint gets the user made after the delete");
    // A moment more: had it not been deleted, the two would go side by side.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(receiver.got.lock().unwrap().len(), sent);
    let (status, body) = app.get(&format!("/api/v1/webhook-endpoints/{id}")).await;
    assert_eq!((status, &body["error"]["type"]), (StatusCode::NOT_FOUND, &json!("WebhookEndpointNotFound")));
}

/// A receiver that fails gets the same events again, and nothing is
/// skipped; the endpoint shows the failure meanwhile.
#[tokio::test]
async fn a_failed_delivery_is_sent_again_with_the_same_events_first() {
    // A database of its own: see an_endpoint_gets_the_events_made_after_it_signed_and_in_order.
    let app = TestApp::spawn_on_own_database_adjusted(fast).await;
    let customer = unique("flaky");
    let scim = app.scim_of(&app.create_scim_connection(&customer).await);
    // The receiver is down until the test has seen the endpoint fail, however slow the machine.
    let receiver = Receiver::start(vec![503; 1_000]).await;
    let (status, endpoint) =
        app.post("/api/v1/webhook-endpoints", json!({"url": receiver.url, "customer_id": customer})).await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    let id = endpoint["id"].as_str().unwrap().to_string();
    let ada = scim.create_user(user("ada@acme.com")).await;

    // The attempts fail: the endpoint says so until a retry goes through.
    let failed = endpoint_once(&app, &id, 30, |shown| shown["failures"].as_i64() >= Some(1)).await;
    assert!(failed["failures"].as_i64() >= Some(1), "{failed}");
    assert_eq!(failed["last_error"], json!("the endpoint answered 503 Service Unavailable"), "{failed}");
    assert!(failed["failing_since"].is_string(), "{failed}");
    receiver.answers.lock().unwrap().clear();
    let grace = scim.create_user(user("grace@acme.com")).await;

    // (Counted in the requests answered 200: the refused ones may be many.)
    let (got, events) = receiver.accepted(2).await;
    assert!(got.len() >= 2, "{got:?}");
    let first: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(first["data"][0]["data"]["id"], json!(ada), "the failed request carried ada");
    // ada's event again (once failed, once delivered), then grace's: none skipped.
    assert_eq!(receiver.accepted_ids(), [json!(ada), json!(grace)], "{events:?}");
    let recovered = |shown: &Value| {
        shown["failures"] == json!(0) && shown["last_error"].is_null() && shown["failing_since"].is_null()
    };
    let shown = endpoint_once(&app, &id, 20, recovered).await;
    assert!(recovered(&shown), "{shown}");
    app.delete(&format!("/api/v1/webhook-endpoints/{id}")).await;
}

/// An endpoint moved to another URL keeps its position: the events its
/// old receiver failed to take go to the new one, at once rather than when
/// the backoff ends, and nothing is skipped; its types and customer change
/// the same way, and each change is in the audit log.
#[tokio::test]
async fn an_endpoint_moved_to_another_url_keeps_its_position_and_is_tried_at_once() {
    let app = TestApp::spawn_on_own_database_adjusted(fast).await;
    let customer = unique("moved");
    let scim = app.scim_of(&app.create_scim_connection(&customer).await);
    let old = Receiver::start(vec![503; 1_000]).await;
    let (status, endpoint) =
        app.post("/api/v1/webhook-endpoints", json!({"url": old.url, "customer_id": customer})).await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    let id = endpoint["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/webhook-endpoints/{id}");
    let ada = scim.create_user(user("ada@acme.com")).await;
    let failed = endpoint_once(&app, &id, 30, |shown| shown["failures"].as_i64() >= Some(1)).await;
    assert!(failed["failures"].as_i64() >= Some(1), "{failed}");

    let new = Receiver::start(vec![]).await;
    let (status, moved) = app.patch(&path, json!({"url": new.url})).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!((&moved["url"], &moved["delivered_through"]), (&json!(new.url), &failed["delivered_through"]));
    let due = chrono::DateTime::parse_from_rfc3339(moved["next_attempt_at"].as_str().unwrap()).unwrap();
    assert!(due <= tandem_core::clock::Clock::now(&*app.clock), "due at once: {moved}");
    let (_, events) = new.accepted(1).await;
    assert_eq!(events.first().map(|e| &e["data"]["id"]), Some(&json!(ada)), "the failed event, to the new URL");
    // Narrowed to deletions: a user made now is passed over, its deletion is sent.
    let (status, narrowed) = app.patch(&path, json!({"types": ["user.deleted"]})).await;
    assert_eq!((status, &narrowed["types"]), (StatusCode::OK, &json!(["user.deleted"])), "{narrowed}");
    let bob = scim.create_user(user("bob@acme.com")).await;
    scim.delete(&format!("/Users/{bob}")).await;
    let (_, events) = new.accepted(2).await;
    let sent: Vec<(&Value, &Value)> = events.iter().map(|e| (&e["type"], &e["data"]["id"])).collect();
    assert_eq!(sent, [(&json!("user.created"), &json!(ada)), (&json!("user.deleted"), &json!(bob))], "{events:?}");
    let (status, all) = app.patch(&path, json!({"types": null, "customer_id": null, "retry": true})).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert!(all["types"].is_null() && all["customer_id"].is_null(), "{all}");
    let (_, audit) = app.get(&format!("/api/v1/audit-events?target_id={id}&action=webhook_endpoint.updated")).await;
    let details: Vec<&Value> = audit["data"].as_array().unwrap().iter().map(|e| &e["details"]).collect();
    assert_eq!(details.len(), 3, "{audit}");
    assert_eq!(details[2]["url"], json!({"old": old.url, "new": new.url}), "oldest last: {audit}");
    assert_eq!(details[0]["customer_id"], json!({"old": customer, "new": null}), "{audit}");
    assert_eq!(details[0]["retry"], json!(true), "{audit}");
    for (body, fields) in [
        (json!({"url": null}), vec!["url"]),
        (json!({"url": "http://hooks.example.com/x"}), vec!["url"]),
        (json!({"types": ["user.exploded"]}), vec!["types[0]"]),
        (json!({"retry": "yes"}), vec!["retry"]),
        (json!({"secret": "mine"}), vec!["secret"]),
    ] {
        let (status, answer) = app.patch(&path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(invalid_fields(&answer), fields, "{body}: {answer}");
    }
    let (status, _) = app.patch("/api/v1/webhook-endpoints/nope", json!({"retry": true})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.delete(&path).await;
}

/// A batch sent again with other events has another `webhook-id`: here
/// the endpoint's types were widened after a failure, so the retry starts
/// at the same position and ends at the same event with one more between.
/// A receiver that dedupes on `webhook-id` (as Standard Webhooks suggests)
/// would otherwise drop it. The same batch sent again keeps its id.
#[tokio::test]
async fn a_retry_carrying_other_events_has_another_webhook_id() {
    let app = TestApp::spawn_on_own_database_adjusted(fast).await;
    let customer = unique("widened");
    let scim = app.scim_of(&app.create_scim_connection(&customer).await);
    let old = Receiver::start(vec![503; 1_000]).await;
    let hooked = json!({"url": old.url, "customer_id": customer, "types": ["user.deleted"]});
    let (status, endpoint) = app.post("/api/v1/webhook-endpoints", hooked).await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    let id = endpoint["id"].as_str().unwrap().to_string();
    let ada = scim.create_user(user("ada@acme.com")).await;
    scim.delete(&format!("/Users/{ada}")).await;
    let failed = endpoint_once(&app, &id, 30, |shown| shown["failures"].as_i64() >= Some(2)).await;
    assert!(failed["failures"].as_i64() >= Some(2), "{failed}");
    let new = Receiver::start(vec![]).await;
    let (status, widened) =
        app.patch(&format!("/api/v1/webhook-endpoints/{id}"), json!({"url": new.url, "types": null})).await;
    assert_eq!(status, StatusCode::OK, "{widened}");
    let (got, events) = new.accepted(2).await;
    let types: Vec<&Value> = events.iter().map(|e| &e["type"]).collect();
    assert_eq!(types, [&json!("user.created"), &json!("user.deleted")], "{events:?}");
    let refused: Vec<String> = old.got.lock().unwrap().iter().map(|r| r.id.clone()).collect();
    assert!(refused.len() >= 2 && refused.iter().all(|r| *r == refused[0]), "the same batch, one id: {refused:?}");
    assert_ne!(got[0].id, refused[0], "other events, another id");
    app.delete(&format!("/api/v1/webhook-endpoints/{id}")).await;
}

/// Two changes of one endpoint at once, one of its URL and one of its
/// types, both hold: neither writes back what it read before the other
/// committed (on PostgreSQL the row is locked for the change).
#[tokio::test]
async fn two_changes_of_an_endpoint_at_once_both_hold() {
    let app = TestApp::spawn().await;
    let (status, endpoint) = app.post("/api/v1/webhook-endpoints", json!({"url": "https://hooks.example.com/0"})).await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    let path = format!("/api/v1/webhook-endpoints/{}", endpoint["id"].as_str().unwrap());
    for round in 1..=10 {
        let types = if round % 2 == 0 { json!(["user.created"]) } else { json!(["user.deleted"]) };
        let url = json!(format!("https://hooks.example.com/{round}"));
        let (a, b) = tokio::join!(app.patch(&path, json!({"url": url})), app.patch(&path, json!({"types": types})));
        assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK), "{a:?} {b:?}");
        let (_, shown) = app.get(&path).await;
        assert_eq!((&shown["url"], &shown["types"]), (&url, &types), "round {round}");
    }
    app.delete(&path).await;
}

/// A batch its receiver refuses for good (a poison event) is skipped by
/// moving the endpoint's position forward to that event: what follows is
/// delivered and nothing before it again, the failures are forgotten, the
/// move is audited; a move back, a position that is none, and one the
/// feed has not reached are refused.
#[tokio::test]
async fn an_endpoint_skips_a_batch_its_receiver_refuses_for_good() {
    let app = TestApp::spawn_on_own_database_adjusted(fast).await;
    let customer = unique("poison");
    let scim = app.scim_of(&app.create_scim_connection(&customer).await);
    let receiver = Receiver::start(vec![]).await;
    *receiver.refuse.lock().unwrap() = Some("poison@acme.com".into());
    let (_, endpoint) =
        app.post("/api/v1/webhook-endpoints", json!({"url": receiver.url, "customer_id": customer})).await;
    let id = endpoint["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/webhook-endpoints/{id}");
    let poison = scim.create_user(user("poison@acme.com")).await;
    let failed = endpoint_once(&app, &id, 30, |shown| shown["failures"].as_i64() >= Some(1)).await;
    assert!(failed["failures"].as_i64() >= Some(1), "{failed}");
    wait_in_feed(&app, &scim.connection_id, &poison).await;
    let (_, feed) = app.get(&format!("/api/v1/events?scim_connection_id={}", scim.connection_id)).await;
    let event = feed["data"].as_array().unwrap().iter().find(|e| e["data"]["id"] == json!(poison)).cloned();
    let event_id = event.unwrap_or_else(|| panic!("{feed}"))["id"].as_str().unwrap().to_string();
    for (refused, says) in
        [(json!("nope"), "feed position"), (json!("999999999999-1"), "still holds"), (Value::Null, "cannot be unset")]
    {
        let (status, body) = app.patch(&path, json!({"delivered_through": refused})).await;
        assert_eq!((status, invalid_fields(&body)), (StatusCode::BAD_REQUEST, vec!["delivered_through".to_string()]));
        assert!(body.to_string().contains(says), "{refused}: {body}");
    }
    let (status, skipped) = app.patch(&path, json!({"delivered_through": event_id})).await;
    assert_eq!(status, StatusCode::OK, "{skipped}");
    let at = skipped["delivered_through"].as_str().unwrap().to_string();
    assert!(event_id.starts_with(&format!("{at}-")), "at the poison event: {skipped}");
    assert_eq!(skipped["failures"], 0, "{skipped}");
    let after = scim.create_user(user("after@acme.com")).await;
    receiver.accepted(1).await;
    assert_eq!(receiver.accepted_ids(), [json!(after)], "only what follows");
    let (status, body) = app.patch(&path, json!({"delivered_through": failed["delivered_through"]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("moves only forward"), "{body}");
    let (_, audit) = app.get(&format!("/api/v1/audit-events?target_id={id}&action=webhook_endpoint.updated")).await;
    let moved = &audit["data"][0]["details"]["delivered_through"];
    assert_eq!(moved, &json!({"old": failed["delivered_through"], "new": at}), "{audit}");
    app.delete(&path).await;
}

/// What an endpoint is created with is checked, every field named.
#[tokio::test]
async fn an_endpoint_is_refused_with_every_bad_field_named() {
    let app = TestApp::spawn().await;
    for (body, fields) in [
        (json!({}), vec!["url"]),
        (json!({"url": "http://hooks.example.com/x"}), vec!["url"]),
        (
            json!({"url": "https://hooks.example.com/x", "types": ["user.created", "user.exploded", "user.created"]}),
            vec!["types[1]", "types[2]"],
        ),
        (json!({"url": "https://hooks.example.com/x", "types": []}), vec!["types"]),
        (json!({"url": "https://hooks.example.com/x", "customer_id": ""}), vec!["customer_id"]),
        (json!({"url": "https://hooks.example.com/x", "secret": "mine"}), vec!["secret"]),
        (json!({"url": 5}), vec!["url"]),
    ] {
        let (status, answer) = app.post("/api/v1/webhook-endpoints", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(invalid_fields(&answer), fields, "{body}: {answer}");
    }
    let (status, _) = app.delete("/api/v1/webhook-endpoints/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A rotated secret signs beside the new one for its grace: each request
/// carries a signature with each; with no grace, only the new one.
#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one_until_its_grace_ends() {
    // A database of its own: see an_endpoint_gets_the_events_made_after_it_signed_and_in_order.
    let app = TestApp::spawn_on_own_database_adjusted(fast).await;
    let customer = unique("rotating");
    let scim = app.scim_of(&app.create_scim_connection(&customer).await);
    let receiver = Receiver::start(vec![]).await;
    let (_, endpoint) =
        app.post("/api/v1/webhook-endpoints", json!({"url": receiver.url, "customer_id": customer})).await;
    let (id, old) = (endpoint["id"].as_str().unwrap().to_string(), endpoint["secret"].as_str().unwrap().to_string());
    let (status, rotated) =
        app.post(&format!("/api/v1/webhook-endpoints/{id}/rotate-secret"), json!({"grace_period_hours": 2})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert!(rotated["previous_secret_valid_until"].is_string(), "{rotated}");
    scim.create_user(user("ada@acme.com")).await;
    let (got, _) = receiver.events(1).await;
    let signed = got.last().unwrap();
    assert_eq!(signed.signature.split(' ').count(), 2, "{signed:?}");
    let with = |secret: &str| {
        signed
            .signature
            .split(' ')
            .any(|one| signature_checks(secret, &Received { signature: one.into(), ..signed.clone() }))
    };
    assert!(with(&new) && with(&old), "{signed:?}");

    // Another rotation in the grace would drop the secret a receiver may still hold alone: refused unless forced.
    let rotate = format!("/api/v1/webhook-endpoints/{id}/rotate-secret");
    let (status, refused) = app.post(&rotate, json!({"grace_period_hours": 0})).await;
    assert_eq!((status, &refused["error"]["type"]), (StatusCode::CONFLICT, &json!("WebhookSecretRotationInProgress")));
    // Forced, with no grace: the previous secret signs no more.
    let (status, again) = app.post(&rotate, json!({"grace_period_hours": 0, "force": true})).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert!(again["previous_secret_valid_until"].is_null(), "{again}");
    let newest = again["secret"].as_str().unwrap().to_string();
    scim.create_user(user("grace@acme.com")).await;
    let (got, _) = receiver.events(2).await;
    let signed = got.last().unwrap();
    assert!(!signed.signature.contains(' ') && signature_checks(&newest, signed), "{signed:?}");
    let (_, audit) =
        app.get(&format!("/api/v1/audit-events?target_id={id}&action=webhook_endpoint.secret_rotated")).await;
    assert_eq!(audit["data"].as_array().unwrap().len(), 2, "{audit}");
    let (status, _) = app.post("/api/v1/webhook-endpoints/nope/rotate-secret", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.delete(&format!("/api/v1/webhook-endpoints/{id}")).await;
}

/// More than a batch waiting goes out batch after batch, in order, none
/// larger than 100.
#[tokio::test]
async fn a_backlog_goes_out_in_batches_of_at_most_a_hundred_in_order() {
    // A database of its own: see an_endpoint_gets_the_events_made_after_it_signed_and_in_order.
    let app = TestApp::spawn_on_own_database_adjusted(fast).await;
    let customer = unique("backlog");
    let scim = app.scim_of(&app.create_scim_connection(&customer).await);
    // The receiver is down while the backlog builds.
    let receiver = Receiver::start(vec![503]).await;
    let (_, endpoint) =
        app.post("/api/v1/webhook-endpoints", json!({"url": receiver.url, "customer_id": customer})).await;
    assert!(endpoint["id"].is_string(), "{endpoint}");
    let mut made = Vec::new();
    for i in 0..230 {
        made.push(json!(scim.create_user(user(&format!("u{i}@acme.com"))).await));
    }
    // However many the refused first request carried, all of them are then delivered.
    let (got, _) = receiver.accepted(made.len()).await;
    app.delete(&format!("/api/v1/webhook-endpoints/{}", endpoint["id"].as_str().unwrap())).await;
    let delivered: Vec<Value> = got
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["data"].as_array().unwrap().clone())
        .inspect(|batch| assert!(batch.len() <= 100, "{}", batch.len()))
        .flatten()
        .map(|e| e["data"]["id"].clone())
        .collect();
    assert_eq!(delivered, made);
}

/// Events deleted by the retention purge before they were delivered are
/// skipped: delivery goes on after them, and the endpoint and the audit
/// log say what was skipped.
#[tokio::test]
async fn events_purged_before_delivery_are_skipped_and_recorded() {
    // A database of its own: the purge deletes every old event it finds.
    let app = TestApp::spawn_on_own_database_adjusted(fast).await;
    let customer = unique("purged");
    let scim = app.scim_of(&app.create_scim_connection(&customer).await);
    // The receiver refuses every request that carries the first user, which
    // the purge is to delete (and every request until its id is known): an
    // attempt that read it before the purge and sends it after is refused
    // too, however slow the machine. (Sent after the purge, it would hold
    // delivery up, and the user made after the purge would never arrive.)
    let receiver = Receiver::start(vec![503; 1_000]).await;
    let (_, endpoint) =
        app.post("/api/v1/webhook-endpoints", json!({"url": receiver.url, "customer_id": customer})).await;
    let id = endpoint["id"].as_str().unwrap().to_string();
    let gone = scim.create_user(user("gone@acme.com")).await;
    *receiver.refuse.lock().unwrap() = Some(gone.clone());
    receiver.answers.lock().unwrap().clear();
    let kept = scim.create_user(user("kept@acme.com")).await;
    // On PostgreSQL an event joins the feed (and only then can be purged)
    // once every older transaction has ended, on any database of the
    // server: other tests' may hold it back for a while.
    wait_in_feed(&app, &scim.connection_id, &kept).await;
    // Both made before the cutoff: the purge deletes all but the newest (on SQLite) or all.
    std::thread::sleep(std::time::Duration::from_millis(3));
    let cutoff = chrono::Utc::now();
    let (_keep, stopped) = std::sync::mpsc::channel::<()>();
    let store = app.state.store.clone();
    tokio::task::spawn_blocking(move || tandem::housekeeping::trim_logs_in_batches(&store, cutoff, &stopped, 100))
        .await
        .unwrap();
    let (status, _) = app.get("/api/v1/events?after=0-0").await;
    assert_eq!(status, StatusCode::GONE, "the purge deleted no event");
    let after = scim.create_user(user("after@acme.com")).await;
    // Retries back off (1 s, 2 s, 4 s …) while the receiver refuses the first user.
    let done = |shown: &Value| {
        shown["skipped"].is_object()
            && shown["last_success_at"].is_string()
            && receiver.accepted_ids().contains(&json!(after))
    };
    let shown = endpoint_once(&app, &id, 40, done).await;
    assert!(shown["skipped"]["what"].as_str().unwrap().contains("deleted by the retention purge"), "{shown}");
    let delivered = receiver.accepted_ids();
    assert!(!delivered.contains(&json!(gone)), "{delivered:?}");
    assert_eq!(delivered.last(), Some(&json!(after)), "{delivered:?}");
    assert!(delivered.iter().all(|d| *d == json!(kept) || *d == json!(after)), "{delivered:?}");
    let (_, audit) =
        app.get(&format!("/api/v1/audit-events?target_id={id}&action=webhook_endpoint.events_skipped")).await;
    assert_eq!(audit["data"][0]["actor"], "tandem", "{audit}");
    // A skip starts the endpoint afresh: what was failing is gone.
    assert_eq!((&shown["failures"], &shown["failing_since"]), (&json!(0), &Value::Null), "{shown}");
}

/// A node told to stop in the middle of a delivery frees its endpoint:
/// another node on the database sends the abandoned batch again at once,
/// not when the lease (the request timeout plus 30 s) runs out.
#[tokio::test]
async fn a_stopping_node_hands_its_endpoint_to_the_others_at_once() {
    let dir = scratch_dir();
    let mut settings = test_settings(&dir);
    if let Some(base) = postgres_url() {
        settings.database.url = scratch_postgres_database(&base);
    }
    fast(&mut settings);
    // The request waits far longer than the test: only the stop ends it.
    settings.webhooks.timeout_secs = 120;
    let database = settings.database.url.clone();
    let first = TestApp::spawn_with(settings, dir.clone()).await;
    let customer = unique("handed");
    let scim = first.scim_of(&first.create_scim_connection(&customer).await);
    // The first request is never answered: the node stops while it waits.
    let receiver = Receiver::start(vec![0]).await;
    let (status, endpoint) =
        first.post("/api/v1/webhook-endpoints", json!({"url": receiver.url, "customer_id": customer})).await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    let ada = scim.create_user(user("ada@acme.com")).await;
    let (_, sent) = receiver.events(1).await;
    assert!(!sent.is_empty(), "the first node never sent the event");
    drop(first);
    let mut settings = test_settings(&dir);
    settings.database.url = database;
    fast(&mut settings);
    let second = TestApp::spawn_with(settings, dir).await;
    // Well within the lease (the timeout plus 30 s) the stopped node would otherwise have left.
    let (_, events) = receiver.accepted(1).await;
    let ids: Vec<&Value> = events.iter().map(|e| &e["data"]["id"]).collect();
    assert_eq!(ids, [&json!(ada)], "{events:?}");
    let (_, shown) = second.get(&format!("/api/v1/webhook-endpoints/{}", endpoint["id"].as_str().unwrap())).await;
    assert_eq!(shown["failures"], 0, "{shown}");
}

/// A URL with credentials is refused; with `oidc.block_private_addresses`,
/// so is one naming a private address or using http.
#[tokio::test]
async fn private_receivers_are_refused_when_private_addresses_are_blocked() {
    let app = TestApp::spawn_adjusted(|s| s.oidc.block_private_addresses = true).await;
    for url in
        ["http://127.0.0.1:9/hooks", "https://10.0.0.5/hooks", "https://[::1]/hooks", "https://169.254.169.254/x"]
    {
        let (status, answer) = app.post("/api/v1/webhook-endpoints", json!({"url": url})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {answer}");
        assert_eq!(invalid_fields(&answer), ["url"], "{url}: {answer}");
    }
    let body = json!({"url": "https://hooks.example.com/x", "customer_id": unique("nobody")});
    let (status, answer) = app.post("/api/v1/webhook-endpoints", body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    app.delete(&format!("/api/v1/webhook-endpoints/{}", answer["id"].as_str().unwrap())).await;
    let open = TestApp::spawn().await;
    let (status, answer) =
        open.post("/api/v1/webhook-endpoints", json!({"url": "https://user:pw@hooks.example.com/x"})).await;
    assert_eq!((status, invalid_fields(&answer)), (StatusCode::BAD_REQUEST, vec!["url".to_string()]), "{answer}");
}

/// An endpoint none of whose events come costs no request; its position
/// moves past other customers' events once they are ten minutes old.
#[tokio::test]
async fn other_customers_events_are_passed_over_without_a_request() {
    let app = TestApp::spawn_on_own_database_adjusted(fast).await;
    let quiet = unique("quiet");
    app.create_scim_connection(&quiet).await;
    let busy = app.scim().await;
    let receiver = Receiver::start(vec![]).await;
    let (_, endpoint) = app.post("/api/v1/webhook-endpoints", json!({"url": receiver.url, "customer_id": quiet})).await;
    let id = endpoint["id"].as_str().unwrap().to_string();
    let start = endpoint["delivered_through"].clone();
    let mut made = Vec::new();
    for i in 0..3 {
        made.push(busy.create_user(user(&format!("busy{i}@acme.com"))).await);
    }
    // On PostgreSQL another transaction on the server can hold the events
    // back from the feed for a while: the checks below need them in it.
    wait_in_feed(&app, &busy.connection_id, made.last().unwrap()).await;
    // Then time for several looks at the endpoints (every 50 ms), which must
    // leave its position where it is while the events are young.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let (_, shown) = app.get(&format!("/api/v1/webhook-endpoints/{id}")).await;
    assert_eq!(shown["delivered_through"], start, "not moved while the events are young: {shown}");
    // Ten minutes on, the position moves past them, still without a request.
    app.clock.advance(chrono::Duration::minutes(11));
    let (_, head) = app.get("/api/v1/events/cursor").await;
    // The newest event's id is its position and its stamp; the endpoint's is the position.
    let cursor = head["cursor"].as_str().unwrap();
    let head = json!(cursor.split('-').take(2).collect::<Vec<_>>().join("-"));
    let shown = endpoint_once(&app, &id, 20, |shown| shown["delivered_through"] == head).await;
    assert_eq!(shown["delivered_through"], head, "{shown} {cursor}");
    assert!(receiver.got.lock().unwrap().is_empty());
    let (_, shown) = app.get(&format!("/api/v1/webhook-endpoints/{id}")).await;
    assert!(shown["last_attempt_at"].is_null(), "{shown}");
}
