//! Logins that must fail, each with its own error: forged and broken ID
//! tokens, replayed or misbound state, IdP errors. Against the stub IdP.

use crate::helpers::*;
use crate::login_support::*;
use crate::stub_idp::{JwksShape, Signer, StubOp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn setup() -> (TestApp, StubOp, String) {
    setup_advertising_iss(true).await
}

/// A server and a Generic client at a stub IdP that advertises RFC 9207 `iss` or not.
async fn setup_advertising_iss(iss_param: bool) -> (TestApp, StubOp, String) {
    let app = TestApp::spawn().await;
    let op = StubOp::start(iss_param).await;
    let customer = unique("acme");
    stub_client(&app, &op, &customer, "Generic", None).await;
    (app, op, customer)
}

async fn assert_token_check(extra: serde_json::Value, check: &str) {
    let (app, op, customer) = setup().await;
    let (status, body) = login(&app, &op, &customer, extra).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let (kind, details) = error_of(&body);
    assert_eq!(kind, "IdentityProviderError", "{body}");
    assert_eq!(details["kind"], "InvalidIdToken", "{body}");
    assert_eq!(details["check"], check, "{body}");
}

#[tokio::test]
async fn a_valid_login_succeeds_sso_only_without_a_scim_connection() {
    let (app, op, customer) = setup().await;
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["oidc_user_id"], "00u1abcdEFGH");
    assert_eq!(body["email"], "alice@acme.com");
    assert_eq!(body["scim_user"], serde_json::Value::Null);
    assert_eq!(body["claims"]["given_name"], "Alice");
    // PKCE verifier and the client's credentials went to the token endpoint.
    let sent = op.token_requests().join("\n");
    assert!(sent.contains("code_verifier="), "{sent}");
    assert!(sent.starts_with("Basic "), "{sent}");
}

/// Key sets as real IdPs publish them: a modulus with a leading zero byte
/// (Java IdPs), keys without a kid, a kid listed once per algorithm, a key
/// given only by its certificate (`x5c`), a malformed key among good ones. Each
/// verifies the published key's tokens, and still refuses another key's.
#[tokio::test]
async fn key_sets_in_the_shapes_real_idps_publish_verify_their_tokens() {
    let shapes = [
        JwksShape::PaddedModulus,
        JwksShape::NoKids,
        JwksShape::DuplicateKid,
        JwksShape::X5cOnly,
        JwksShape::AfterABrokenKey,
    ];
    for shape in shapes {
        let (app, op, customer) = setup().await;
        op.set_jwks_shape(shape);
        let (status, body) = login(&app, &op, &customer, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let started = start(&app, &customer).await;
        op.issue("forged", op.sign(&claims(&op, &started, json!({})), Signer::Unpublished, "test-key-a"));
        let (status, body) = complete(&app, &op, &started, "forged").await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        assert_eq!(body["error"]["details"]["check"], "signature", "{body}");
        // A token without a kid: served by a set of one key, however listed.
        let started = start(&app, &customer).await;
        op.issue("no-kid", op.sign_without_kid(&claims(&op, &started, json!({})), Signer::Published));
        let (status, body) = complete(&app, &op, &started, "no-kid").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// A key the set lists but that cannot be used is named when a token asks
/// for it, and does not take the set's other keys with it.
#[tokio::test]
async fn an_unusable_key_is_named_when_a_token_names_it() {
    let (app, op, customer) = setup().await;
    op.set_jwks_shape(JwksShape::AfterABrokenKey);
    let started = start(&app, &customer).await;
    op.issue("broken", op.sign(&claims(&op, &started, json!({})), Signer::Published, "broken"));
    let (status, body) = complete(&app, &op, &started, "broken").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["details"]["check"], "kid", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("key 0 (\"broken\"): ") && message.contains("key 1: key type \"XYZ\""), "{message}");
    assert_eq!(login(&app, &op, &customer, json!({})).await.0, StatusCode::OK);
}

/// A kid-less key set still picks up a rotated key, once a minute at most:
/// a token naming a kid the set does not list refetches it before the set's
/// one key is used for it, and a token naming no kid that does not verify
/// with the key held refetches it and is tried with the key found.
#[tokio::test]
async fn a_kid_less_key_set_picks_up_a_rotated_key() {
    for with_kid in [true, false] {
        let (app, op, customer) = setup().await;
        op.set_jwks_shape(JwksShape::NoKids);
        assert_eq!(login(&app, &op, &customer, json!({})).await.0, StatusCode::OK);
        let fetched = op.jwks_fetches();
        op.rotate_keys();
        app.clock.advance(chrono::Duration::seconds(61));
        let sign = |claims: &Value, signer: Signer| match with_kid {
            true => op.sign(claims, signer, "test-key-b"),
            false => op.sign_without_kid(claims, signer),
        };
        let started = start(&app, &customer).await;
        op.issue("rotated", sign(&claims(&op, &started, json!({})), Signer::Rotated));
        let (status, body) = complete(&app, &op, &started, "rotated").await;
        assert_eq!(status, StatusCode::OK, "with kid {with_kid}: {body}");
        assert_eq!(op.jwks_fetches(), fetched + 1);
        // A token signed with the key no longer published (a forgery now)
        // refetches nothing within the minute.
        let started = start(&app, &customer).await;
        op.issue("forged", sign(&claims(&op, &started, json!({})), Signer::Published));
        let (status, body) = complete(&app, &op, &started, "forged").await;
        let check = &body["error"]["details"]["check"];
        assert_eq!((status, check), (StatusCode::BAD_GATEWAY, &json!("signature")), "with kid {with_kid}: {body}");
        assert_eq!(op.jwks_fetches(), fetched + 1);
    }
}

#[tokio::test]
async fn wrong_signature_is_refused() {
    let (app, op, customer) = setup().await;
    let started = start(&app, &customer).await;
    op.issue("c1", op.sign(&claims(&op, &started, json!({})), Signer::Unpublished, "test-key-a"));
    let (status, body) = complete(&app, &op, &started, "c1").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["error"]["details"]["check"], "signature", "{body}");
}

#[tokio::test]
async fn alg_none_is_refused() {
    let (app, op, customer) = setup().await;
    let (_, body) = login_signed(&app, &op, &customer, json!({}), |c| op.unsigned(c)).await;
    assert_eq!(body["error"]["details"]["check"], "alg", "{body}");
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let (app, op, customer) = setup().await;
    let (_, body) = login_signed(&app, &op, &customer, json!({}), |c| op.sign_hs256_with_public_key(c)).await;
    assert_eq!(body["error"]["details"]["check"], "alg", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("HMAC"));
    // Nor when the IdP advertises HMAC: its key is the client secret, never a published key.
    let (app, op, customer) = setup().await;
    op.advertise_algs(&["RS256", "HS256"]);
    let (_, body) = login_signed(&app, &op, &customer, json!({}), |c| op.sign_hs256_with_public_key(c)).await;
    assert_eq!(body["error"]["details"]["check"], "signature", "{body}");
}

/// An IdP without a key pair signs with the client secret (HS256: an
/// Authentik provider without a signing key, an Auth0 application set so),
/// advertising it: such tokens verify with the client's secret. A client
/// without a secret cannot verify them, and says so.
#[tokio::test]
async fn hs256_signed_with_the_client_secret_is_accepted_when_the_idp_advertises_it() {
    let (app, op, customer) = setup().await;
    op.advertise_algs(&["HS256"]);
    let signer = &op;
    let hs256 = |secret: &'static str| move |c: &Value| signer.sign_hs256(c, secret);
    let (status, body) = login_signed(&app, &op, &customer, json!({}), hs256(STUB_CLIENT_SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = login_signed(&app, &op, &customer, json!({}), hs256("another-secret")).await;
    assert_eq!(body["error"]["details"]["check"], "signature", "{body}");
    // The claims are checked as for any token.
    let (_, body) = login_signed(&app, &op, &customer, json!({"aud": "someone-else"}), hs256(STUB_CLIENT_SECRET)).await;
    assert_eq!(body["error"]["details"]["check"], "aud", "{body}");
    // A secret shorter than the hash (RFC 7518 §3.2) is no key for them, and
    // a public client (PKCE, no secret) has none: saved, with a warning that
    // its logins cannot succeed, which then say why.
    for (secret, warned, refused) in
        [(Some("short-secret"), "32 are needed", "at least 32"), (None, "has none", "client secret")]
    {
        let customer = unique("hmac");
        let mut idp = json!({"type": "Generic", "client_id": "tandem-client", "issuer": op.issuer});
        if let Some(s) = secret {
            idp["client_secret"] = json!(s);
        }
        let (status, created) = app
            .post(
                "/api/v1/oidc-clients",
                json!({"customer_id": customer, "idp": idp, "redirect_url": redirect_url_of(&customer)}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["warnings"][0]["field"], "idp.client_secret", "{created}");
        assert!(created["warnings"][0]["message"].as_str().unwrap().contains(warned), "{created}");
        let (_, body) = login_signed(&app, &op, &customer, json!({}), hs256(secret.unwrap_or(""))).await;
        assert_eq!(body["error"]["details"]["check"], "alg", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(refused), "{body}");
    }
}

/// A key the IdP rotated in is fetched when the cached set is a minute old;
/// within the minute an unknown kid is refused without asking the IdP again,
/// so a stream of forged kids cannot make Tandem hammer it.
#[tokio::test]
async fn a_rotated_key_is_fetched_at_most_once_a_minute() {
    let (app, op, customer) = setup().await;
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(op.jwks_fetches(), 1);
    op.rotate_keys();
    let rotated_login = |code: &'static str| {
        let (app, op, customer) = (&app, &op, &customer);
        async move {
            let started = start(app, customer).await;
            op.issue(code, op.sign(&claims(op, &started, json!({})), Signer::Rotated, "test-key-b"));
            complete(app, op, &started, code).await
        }
    };

    // Within the minute: refused as an unknown kid; the IdP is not asked.
    let (status, body) = rotated_login("r1").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["details"]["check"], "kid", "{body}");
    assert_eq!(op.jwks_fetches(), 1);

    // A minute on: fetched once more, and the new key signs a login.
    app.clock.advance(chrono::Duration::seconds(61));
    let (status, body) = rotated_login("r2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(op.jwks_fetches(), 2);
    let (status, _) = rotated_login("r3").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(op.jwks_fetches(), 2, "a known kid needs no fetch");

    // Forged kids: one refetch a minute at most.
    app.clock.advance(chrono::Duration::seconds(61));
    for (i, code) in ["f1", "f2", "f3"].into_iter().enumerate() {
        let started = start(&app, &customer).await;
        op.issue(code, op.sign(&claims(&op, &started, json!({})), Signer::Rotated, &format!("forged-{i}")));
        let (_, body) = complete(&app, &op, &started, code).await;
        assert_eq!(body["error"]["details"]["check"], "kid", "{body}");
    }
    assert_eq!(op.jwks_fetches(), 3);
}

/// A login whose token is issued at the app's (moved) clock, signed by `signer` under `kid`.
async fn signed_at_app_time(
    app: &TestApp,
    op: &StubOp,
    customer: &str,
    code: &str,
    signer: Signer,
    kid: &str,
) -> (StatusCode, Value) {
    use tandem_core::clock::Clock;
    let started = start(app, customer).await;
    let now = app.clock.now().timestamp();
    let c = claims(op, &started, json!({"iat": now, "exp": now + 300}));
    op.issue(code, op.sign(&c, signer, kid));
    complete(app, op, &started, code).await
}

/// An unknown kid while the IdP's JWKS fails: one try a minute, not one per
/// login (each would wait out the IdP under the key set's lock).
#[tokio::test]
async fn a_failing_jwks_is_tried_once_a_minute_for_unknown_kids() {
    let (app, op, customer) = setup().await;
    let (status, _) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(op.jwks_fetches(), 1);
    op.set_down(true);
    app.clock.advance(chrono::Duration::seconds(61));
    let forged = |code: &'static str| {
        let (app, op, customer) = (&app, &op, &customer);
        async move {
            let started = start(app, customer).await;
            op.issue(code, op.sign(&claims(op, &started, json!({})), Signer::Rotated, "unknown-kid"));
            complete(app, op, &started, code).await
        }
    };
    for code in ["k1", "k2", "k3"] {
        let (status, body) = forged(code).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    }
    assert_eq!(op.jwks_fetches(), 2, "one failed try for three unknown kids");
    // The keys fetched before still verify logins meanwhile.
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(op.jwks_fetches(), 2);
}

/// An issuer whose JWKS was never fetched and fails: the failure is answered
/// for 5 s without asking the IdP again (each try holds the key set's lock
/// up to the IdP's timeout, and queued logins would wait for each in turn).
#[tokio::test]
async fn a_first_jwks_fetch_that_fails_is_not_retried_by_every_login() {
    let (app, op, customer) = setup().await;
    // The 5 s are Tandem's clock's: stopped, it keeps the three logins
    // within them however slowly they run (it moves only when advanced).
    app.clock.freeze();
    op.set_jwks_down(true);
    let timed = |code: &'static str| signed_at_app_time(&app, &op, &customer, code, Signer::Published, "test-key-a");
    for code in ["f1", "f2", "f3"] {
        let (status, body) = timed(code).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        assert_eq!(body["error"]["details"]["check"], "jwks", "{body}");
    }
    assert_eq!(op.jwks_fetches(), 1, "one try for three logins within 5 s");
    op.set_jwks_down(false);
    app.clock.advance(chrono::Duration::seconds(6));
    assert_eq!(timed("f4").await.0, StatusCode::OK);
    assert_eq!(op.jwks_fetches(), 2);
}

/// Keys whose refresh keeps failing serve logins for a day, then are dropped:
/// a key the IdP withdrew must stop verifying whatever its endpoint does.
#[tokio::test]
async fn keys_whose_refresh_fails_are_kept_for_a_day_at_most() {
    let (app, op, customer) = setup().await;
    let timed = |code: &'static str| signed_at_app_time(&app, &op, &customer, code, Signer::Published, "test-key-a");
    assert_eq!(timed("j1").await.0, StatusCode::OK);
    op.set_jwks_down(true);
    app.clock.advance(chrono::Duration::minutes(61));
    let (status, body) = timed("j2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.clock.advance(chrono::Duration::hours(24));
    let (status, body) = timed("j3").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["details"]["check"], "jwks", "{body}");
    op.set_jwks_down(false);
    app.clock.advance(chrono::Duration::minutes(2));
    let (status, body) = timed("j4").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// An IdP whose discovery endpoint fails when its document is an hour old:
/// the document fetched before serves its logins for up to a day, tried
/// again once a minute; after that the logins fail with `DiscoveryFailed`.
#[tokio::test]
async fn a_failing_discovery_refresh_uses_the_document_fetched_before_for_a_day() {
    let (app, op, customer) = setup().await;
    let timed_login =
        |code: &'static str| signed_at_app_time(&app, &op, &customer, code, Signer::Published, "test-key-a");
    assert_eq!(timed_login("d1").await.0, StatusCode::OK);
    let fetched = op.discovery_fetches();
    op.set_down(true);
    app.clock.advance(chrono::Duration::minutes(61));
    // The JWKS is down too: its keys are kept as well.
    let (status, body) = timed_login("d2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(op.discovery_fetches(), fetched + 1, "tried once, by the initiate");
    let (status, body) = timed_login("d3").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(op.discovery_fetches(), fetched + 1, "not again within the minute");
    app.clock.advance(chrono::Duration::minutes(2));
    assert_eq!(timed_login("d4").await.0, StatusCode::OK);
    assert_eq!(op.discovery_fetches(), fetched + 2);

    app.clock.advance(chrono::Duration::hours(24));
    // Stands still but for the advance below: the two initiates fall in
    // the 5 s however slowly the test runs.
    app.clock.freeze();
    let asked = op.discovery_fetches();
    for _ in 0..2 {
        let (status, body) = app.post("/api/v1/sso/login/initiate", json!({"customer_id": customer})).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        assert_eq!(body["error"]["details"]["kind"], "DiscoveryFailed", "{body}");
    }
    // Too old to use, the document is fetched as a first one: its failure
    // is answered for 5 s without asking the IdP again.
    assert_eq!(op.discovery_fetches(), asked + 1);

    // Back up: logins work again once those seconds are past.
    op.set_down(false);
    app.clock.advance(chrono::Duration::seconds(6));
    assert_eq!(timed_login("d5").await.0, StatusCode::OK);
}

/// A key the IdP withdrew stops verifying tokens once the fetched keys are
/// an hour old, although its kid is known (a leaked, rotated-out key).
#[tokio::test]
async fn a_withdrawn_key_stops_verifying_within_the_hour() {
    let (app, op, customer) = setup().await;
    let signed_login = |code: &'static str, signer: Signer, kid: &'static str| {
        signed_at_app_time(&app, &op, &customer, code, signer, kid)
    };
    assert_eq!(signed_login("a1", Signer::Published, "test-key-a").await.0, StatusCode::OK);
    op.rotate_keys();
    // Within the hour the fetched keys are used as they are.
    assert_eq!(signed_login("a2", Signer::Published, "test-key-a").await.0, StatusCode::OK);
    assert_eq!(op.jwks_fetches(), 1);
    app.clock.advance(chrono::Duration::minutes(61));
    let (status, body) = signed_login("a3", Signer::Published, "test-key-a").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["details"]["check"], "kid", "{body}");
    assert_eq!(op.jwks_fetches(), 2);
    let (status, body) = signed_login("b1", Signer::Rotated, "test-key-b").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(op.jwks_fetches(), 2);
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    assert_token_check(json!({"iss": "https://evil.example"}), "iss").await;
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    assert_token_check(json!({"aud": "another-client"}), "aud").await;
}

#[tokio::test]
async fn several_audiences_without_this_client_as_azp_are_refused() {
    assert_token_check(json!({"aud": ["tandem-client", "other"], "azp": "other"}), "azp").await;
}

#[tokio::test]
async fn expired_token_is_refused() {
    let now = chrono::Utc::now().timestamp();
    assert_token_check(json!({"exp": now - 3600, "iat": now - 7200}), "exp").await;
}

#[tokio::test]
async fn token_issued_in_the_future_is_refused() {
    let now = chrono::Utc::now().timestamp();
    assert_token_check(json!({"iat": now + 3600, "exp": now + 7200}), "iat").await;
}

#[tokio::test]
async fn nonce_mismatch_is_refused() {
    assert_token_check(json!({"nonce": "a-nonce-from-another-login"}), "nonce").await;
}

#[tokio::test]
async fn reused_state_is_refused() {
    let (app, op, customer) = setup().await;
    let started = start(&app, &customer).await;
    op.issue("c1", op.sign(&claims(&op, &started, json!({})), Signer::Published, "test-key-a"));
    let (status, first) = complete(&app, &op, &started, "c1").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, body) = complete(&app, &op, &started, "c1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error_of(&body),
        (
            "InvalidCsrfState",
            &json!({"reason": "reused", "login_event_id": body["error"]["details"]["login_event_id"]})
        )
    );
    // The replay is an attempt of its own: the completed login's event still says success.
    let replay_id = body["error"]["details"]["login_event_id"].as_str().unwrap();
    assert_ne!(replay_id, first["login_event_id"].as_str().unwrap());
    let (_, login) = app.get(&format!("/api/v1/login-events/{}", first["login_event_id"].as_str().unwrap())).await;
    assert_eq!(login["outcome"], "success", "{login}");
    assert_eq!(login["oidc_user_id"], "00u1abcdEFGH");
    let (status, replay) = app.get(&format!("/api/v1/login-events/{replay_id}")).await;
    assert_eq!(status, StatusCode::OK, "{replay}");
    assert_eq!(replay["outcome"], "failed");
    assert_eq!(replay["failed_step"], "state");
    assert_eq!(replay["error_type"], "InvalidCsrfState");
    assert_eq!(replay["customer_id"], login["customer_id"]);
    assert_eq!(replay["oidc_user_id"], serde_json::Value::Null, "the replay signed nobody in: {replay}");
    let steps: Vec<&str> = replay["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["callback", "state"]);
}

#[tokio::test]
async fn state_with_another_logins_cookie_is_refused() {
    let (app, op, customer) = setup().await;
    let mine = start(&app, &customer).await;
    let theirs = start(&app, &customer).await;
    op.issue("c1", op.sign(&claims(&op, &mine, json!({})), Signer::Published, "test-key-a"));
    let callback = mine.callback(&format!("code=c1&state={}&iss={}", mine.state, op.issuer));
    let (status, body) = complete_raw(&app, &theirs.cookie, &callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["type"], "InvalidCsrfState");
    assert_eq!(body["error"]["details"]["reason"], "not_bound");
    let (status, body) = complete_raw(&app, "", &callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"]["reason"], "not_bound", "a missing cookie binds nothing");
    // The refused attempts used nothing up: the browser that started the login still completes it.
    let (status, done) = complete_raw(&app, &mine.cookie, &callback).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    // Each refused attempt is an event of its own that names the login; the login's event has only its own steps.
    let refused_id = body["error"]["details"]["login_event_id"].as_str().unwrap();
    assert_ne!(refused_id, done["login_event_id"].as_str().unwrap());
    let (_, refused) = app.get(&format!("/api/v1/login-events/{refused_id}")).await;
    assert_eq!((&refused["outcome"], &refused["failed_step"]), (&json!("failed"), &json!("state")), "{refused}");
    assert_eq!(refused["steps"][0]["detail"]["login_id"], done["login_event_id"], "{refused}");
    assert_eq!(refused["customer_id"], done["customer_id"]);
    let (_, login) = app.get(&format!("/api/v1/login-events/{}", done["login_event_id"].as_str().unwrap())).await;
    assert_eq!(login["outcome"], "success", "{login}");
    let steps: Vec<&str> = login["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(steps.iter().filter(|s| **s == "callback").count(), 1, "{steps:?}");
    assert_eq!(steps.first(), Some(&"initiate"), "{steps:?}");
}

/// The post-login redirect comes back from the cookie issued beside the
/// state, which cannot be altered to send the user elsewhere.
#[tokio::test]
async fn the_post_login_redirect_comes_back_unaltered_or_not_at_all() {
    use base64::Engine;
    let (app, op, customer) = setup().await;
    let (status, body) = initiate_to(&app, &customer, "/reports?q=1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let started = started(&body);
    let issued = started.cookie.clone();
    op.issue("c1", op.sign(&claims(&op, &started, json!({})), Signer::Published, "test-key-a"));
    let (secret, _) = issued.split_once('.').expect("the cookie carries the redirect");
    let evil = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("https://evil.example/");
    let altered = Started { cookie: format!("{secret}.{evil}"), ..started };
    let (status, body) = complete(&app, &op, &altered, "c1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["details"]["reason"], "not_bound");
    let as_issued = Started { cookie: issued, ..altered };
    let (status, done) = complete(&app, &op, &as_issued, "c1").await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["post_login_redirect_url"], "/reports?q=1");
}

/// An absolute post-login URL must be on the app's own origin (that of the
/// client's redirect_url): an app passing on a `?next=` from the browser is
/// not made an open redirector.
#[tokio::test]
async fn an_absolute_post_login_redirect_must_be_on_the_apps_origin() {
    let (app, op, customer) = setup().await;
    let initiate = |next: &'static str| initiate_to(&app, &customer, next);
    for evil in ["https://evil.example/", "http://127.0.0.1:10/x", "http://127.0.0.1.evil.example:9/"] {
        let (status, body) = initiate(evil).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{evil}: {body}");
        assert_eq!(invalid_fields(&body), ["post_login_redirect_url"], "{evil}");
        assert!(body["error"]["message"].as_str().unwrap().contains("http://127.0.0.1:9"), "{body}");
    }
    let (status, body) = initiate("http://127.0.0.1:9/reports?q=1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let started = started(&body);
    op.issue("c1", op.sign(&claims(&op, &started, json!({})), Signer::Published, "test-key-a"));
    let (status, done) = complete(&app, &op, &started, "c1").await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["post_login_redirect_url"], "http://127.0.0.1:9/reports?q=1");
}

/// A deployment whose front end is on another origin than its callback
/// names that origin.
#[tokio::test]
async fn a_deployment_can_name_other_post_login_origins() {
    let app =
        TestApp::spawn_adjusted(|s| s.oidc.post_login_redirect_origins = vec!["https://www.example.com".into()]).await;
    let op = StubOp::start(true).await;
    let customer = unique("front");
    stub_client(&app, &op, &customer, "Generic", None).await;
    let initiate = |next: &'static str| initiate_to(&app, &customer, next);
    assert_eq!(initiate("https://www.example.com/welcome").await.0, StatusCode::OK);
    assert_eq!(initiate("http://127.0.0.1:9/home").await.0, StatusCode::OK);
    let (status, body) = initiate("https://evil.example/").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("https://www.example.com"), "{body}");
}

/// The state is the login sealed by this deployment: a state altered in
/// transit, or made up in its shape, belongs to no login.
#[tokio::test]
async fn a_state_altered_in_transit_or_made_up_is_no_login() {
    let (app, op, customer) = setup().await;
    let started = start(&app, &customer).await;
    op.issue("c1", op.sign(&claims(&op, &started, json!({})), Signer::Published, "test-key-a"));
    let mut altered = started.state.clone().into_bytes();
    let i = altered.len() / 2;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    let made_up = "A".repeat(started.state.len());
    for state in [String::from_utf8(altered).unwrap(), made_up] {
        let callback = format!("/sso/callback?code=c1&state={state}&iss={}", op.issuer);
        let (status, body) = complete_raw(&app, &started.cookie, &callback).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["details"]["reason"], "unknown", "{body}");
    }
    let (status, done) = complete(&app, &op, &started, "c1").await;
    assert_eq!(status, StatusCode::OK, "the state as issued still completes: {done}");
}

#[tokio::test]
async fn unknown_or_missing_state_is_refused() {
    let (app, _op, _customer) = setup().await;
    for (callback, reason) in
        [("/sso/callback?code=c1&state=never-issued", "unknown"), ("/sso/callback?code=c1", "missing")]
    {
        let (status, body) = complete_raw(&app, "cookie", callback).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["details"]["reason"], reason, "{body}");
        // Leading to no login, the attempt still has an event of its own.
        let id = body["error"]["details"]["login_event_id"].as_str().expect("login_event_id");
        let (status, event) = app.get(&format!("/api/v1/login-events/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{event}");
        assert_eq!(event["outcome"], "failed");
        assert_eq!(event["failed_step"], "state");
        assert_eq!(event["error_type"], "InvalidCsrfState");
        assert_eq!(event["oidc_client_id"], serde_json::Value::Null);
        let steps: Vec<&str> = event["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
        assert_eq!(steps, ["callback", "state"]);
        assert!(!event.to_string().contains("never-issued"), "the state is not recorded: {event}");
    }
    // An IdP error arriving without a login's state is named, and recorded.
    let callback =
        "/sso/callback?error=access_denied&error_description=AADSTS50105%3A+The+signed+in+user+is+not+assigned";
    let (status, body) = complete_raw(&app, "cookie", callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let details = &body["error"]["details"];
    assert_eq!((&details["reason"], &details["idp_error"]), (&json!("missing"), &json!("access_denied")), "{body}");
    assert!(details["explanation"].as_str().unwrap().contains("not assigned"), "{body}");
    let (_, event) = app.get(&format!("/api/v1/login-events/{}", details["login_event_id"].as_str().unwrap())).await;
    assert!(event["steps"].to_string().contains("AADSTS50105"), "{event}");
    // The message an app may show carries no text of such a callback's
    // (anyone can send one, with any words): the error code when it is one.
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("\"access_denied\"") && !message.contains("AADSTS50105"), "{body}");
    for phishing in [
        "/sso/callback?error=Your+account+is+locked%2C+call+555-0100&error_description=call+us",
        // Code-like, and no code OAuth defines.
        "/sso/callback?error=account-locked-call-support-at-evil.example&error_description=call+us",
    ] {
        let (status, body) = complete_raw(&app, "cookie", phishing).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(!message.contains("locked") && !message.contains("call us"), "{body}");
        assert!(message.contains("an IdP error"), "{body}");
        assert_eq!(body["error"]["details"]["idp_error_description"], "call us", "{body}");
    }
    // The free text picks no words of Tandem's for the message either.
    let (_, body) =
        complete_raw(&app, "cookie", "/sso/callback?error=access_denied&error_description=AADSTS65001").await;
    assert!(!body["error"]["message"].as_str().unwrap().contains("consent"), "{body}");
    assert!(body["error"]["details"]["explanation"].as_str().is_some_and(|e| e.contains("consent")), "{body}");
}

#[tokio::test]
async fn an_initiate_that_finds_no_client_is_recorded_under_the_customer_asked_for() {
    let app = TestApp::spawn().await;
    let customer = unique("nobody");
    let (status, body) = app.post("/api/v1/sso/login/initiate", json!({"customer_id": customer})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["type"], "ClientNotFound");
    let id = body["error"]["details"]["login_event_id"].as_str().expect("login_event_id");
    let (_, events) = app.get(&format!("/api/v1/login-events?customer_id={customer}")).await;
    let events = events["data"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["id"], id);
    assert_eq!(events[0]["failed_step"], "initiate");
    assert_eq!(events[0]["error_type"], "ClientNotFound");
    assert!(events[0]["diagnosis"].as_str().unwrap().contains(&customer));
    // By client id: under the client id asked for.
    let missing = unique("no-such-client");
    let (status, _) = app.post("/api/v1/sso/login/initiate", json!({"oidc_client_id": missing})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, events) = app.get(&format!("/api/v1/login-events?oidc_client_id={missing}")).await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1, "{events}");
    // By email: under the email asked for.
    let email = format!("{}@unknown-domain.example", unique("bob"));
    let (status, _) = app.post("/api/v1/sso/login/initiate", json!({"email": email})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, events) = app.get(&format!("/api/v1/login-events?email={email}")).await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1, "{events}");
    assert_eq!(events["data"][0]["error_type"], "ClientNotFound");
    // A malformed request is not an attempt: no event.
    let (status, body) = app.post("/api/v1/sso/login/initiate", json!({"customer_id": 5})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"].get("login_event_id"), None, "{body}");
}

#[tokio::test]
async fn reused_code_is_refused_by_the_idp_and_reported() {
    let (app, op, customer) = setup().await;
    let first = start(&app, &customer).await;
    op.issue("c1", op.sign(&claims(&op, &first, json!({})), Signer::Published, "test-key-a"));
    assert_eq!(complete(&app, &op, &first, "c1").await.0, StatusCode::OK);
    let second = start(&app, &customer).await;
    let (status, body) = complete(&app, &op, &second, "c1").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["error"]["details"]["kind"], "UnableToExchangeCodeForToken", "{body}");
    assert_eq!(body["error"]["details"]["error"], "invalid_grant");
}

#[tokio::test]
async fn expired_login_is_refused() {
    let (app, op, customer) = setup().await;
    let started = start(&app, &customer).await;
    op.issue("c1", op.sign(&claims(&op, &started, json!({})), Signer::Published, "test-key-a"));
    app.clock.advance(chrono::Duration::minutes(11));
    let (status, body) = complete(&app, &op, &started, "c1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"]["reason"], "expired", "{body}");
    // Refused before the database is asked, so it claimed nothing: without its cookie,
    // it is not_bound, however old (a state never stops opening).
    let callback = started.callback(&format!("code=c1&state={}&iss={}", started.state, op.issuer));
    let (_, body) = complete_raw(&app, "", &callback).await;
    assert_eq!(body["error"]["details"]["reason"], "not_bound", "{body}");
    app.clock.advance(chrono::Duration::days(30));
    let (_, body) = complete(&app, &op, &started, "c1").await;
    assert_eq!(body["error"]["details"]["reason"], "expired", "{body}");
}

#[tokio::test]
async fn callback_for_another_customer_is_refused() {
    let app = TestApp::spawn().await;
    let op = StubOp::start(true).await;
    let (a, b) = (unique("a"), unique("b"));
    stub_client(&app, &op, &a, "Generic", None).await;
    stub_client(&app, &op, &b, "Generic", None).await;
    let login_a = start(&app, &a).await;
    let login_b = start(&app, &b).await;
    op.issue("cb", op.sign(&claims(&op, &login_b, json!({})), Signer::Published, "test-key-a"));
    // Customer B's callback completed with the cookie of customer A's login.
    let callback = login_b.callback(&format!("code=cb&state={}&iss={}", login_b.state, op.issuer));
    let (status, body) = complete_raw(&app, &login_a.cookie, &callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["type"], "InvalidCsrfState");
    // And a callback on another path than the client's redirect_url is refused.
    let login = start(&app, &a).await;
    let (status, body) =
        complete_raw(&app, &login.cookie, &format!("/other/callback?code=x&state={}", login.state)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["type"], "RedirectUrlInvalid", "{body}");
    // Without using the login up: the callback on the right path completes it, once.
    op.issue("right", op.sign(&claims(&op, &login, json!({})), Signer::Published, "test-key-a"));
    let (status, body) = complete(&app, &op, &login, "right").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = complete(&app, &op, &login, "right").await;
    assert_eq!((status, &body["error"]["details"]["reason"]), (StatusCode::BAD_REQUEST, &json!("reused")), "{body}");
}

/// A callback carrying another issuer's `iss` is refused before the code is
/// sent anywhere; with the IdP's own `iss`, the login goes through.
async fn assert_foreign_iss_refused(iss_param: bool, foreign: &str) {
    let (app, op, customer) = setup_advertising_iss(iss_param).await;
    let started = start(&app, &customer).await;
    op.issue("c1", op.sign(&claims(&op, &started, json!({})), Signer::Published, "test-key-a"));
    let foreign = url::form_urlencoded::byte_serialize(foreign.as_bytes()).collect::<String>();
    let callback = started.callback(&format!("code=c1&state={}&iss={foreign}", started.state));
    let (status, body) = complete_raw(&app, &started.cookie, &callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"]["kind"], "IssuerMismatch", "{body}");
    assert!(op.token_requests().is_empty(), "the code went nowhere");
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn mixed_up_issuer_parameter_is_refused() {
    assert_foreign_iss_refused(true, "https://other-idp.example").await;
}

/// The mix-up attack with an IdP that does not advertise RFC 9207: a
/// malicious customer's IdP (this login's) relays the browser to another
/// customer's IdP, which answers on the shared callback with its own `iss`.
/// Present, it is checked, so the other IdP's code is not sent to this one.
#[tokio::test]
async fn an_iss_in_the_callback_is_checked_even_when_not_advertised() {
    assert_foreign_iss_refused(false, "https://victim-idp.example").await;
}

// Entra and Okta do not advertise RFC 9207, and send no `iss` with an error.
#[tokio::test]
async fn entra_user_not_assigned_error_is_explained() {
    let (app, _op, customer) = setup_advertising_iss(false).await;
    let started = start(&app, &customer).await;
    let callback = started.callback(&format!(
        "error=access_denied&error_description=AADSTS50105%3A+The+signed+in+user+is+not+assigned+to+a+role&state={}",
        started.state
    ));
    let (status, body) = complete_raw(&app, &started.cookie, &callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let d = &body["error"]["details"];
    assert_eq!(d["kind"], "IdpReturnedError");
    assert_eq!(d["error"], "access_denied");
    assert!(d["explanation"].as_str().unwrap().contains("not assigned"), "{body}");
}

#[tokio::test]
async fn okta_not_assigned_error_is_explained() {
    let (app, _op, customer) = setup_advertising_iss(false).await;
    let started = start(&app, &customer).await;
    let callback = started.callback(&format!(
        "error=access_denied&error_description=User+is+not+assigned+to+the+client+application.&state={}",
        started.state
    ));
    let (_, body) = complete_raw(&app, &started.cookie, &callback).await;
    assert!(body["error"]["details"]["explanation"].as_str().unwrap().contains("Okta"), "{body}");
}

/// RFC 9207 §2.4 covers error responses too: one carrying another issuer's
/// `iss` is a mix-up, not this IdP's error; with the IdP's own `iss`, it is
/// reported as the IdP's error.
#[tokio::test]
async fn an_error_callback_with_another_issuers_iss_is_a_mix_up() {
    let (app, op, customer) = setup().await;
    let started = start(&app, &customer).await;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let error = "error=access_denied&error_description=Injected";
    let foreign = started.callback(&format!("{error}&state={}&iss={}", started.state, enc("https://evil.example")));
    let (status, body) = complete_raw(&app, &started.cookie, &foreign).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["details"]["kind"], "IssuerMismatch", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("the callback's iss parameter \"https://evil.example\" is not the issuer"),
        "{message}"
    );
    let started = start(&app, &customer).await;
    let own = started.callback(&format!("{error}&state={}&iss={}", started.state, enc(&op.issuer)));
    let (_, body) = complete_raw(&app, &started.cookie, &own).await;
    assert_eq!(body["error"]["details"]["kind"], "IdpReturnedError", "{body}");
    // This IdP advertises sending `iss`: an error without one is not its own.
    let started = start(&app, &customer).await;
    let bare = started.callback(&format!("{error}&state={}", started.state));
    let (status, body) = complete_raw(&app, &started.cookie, &bare).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["details"]["kind"], "IssuerMismatch", "{body}");
    assert!(!body.to_string().contains("Injected"), "the unvouched error is not passed on: {body}");
}

/// The IdP's error text in a callback is cut to 500 characters.
#[tokio::test]
async fn an_idp_error_description_is_cut() {
    let (app, _op, customer) = setup_advertising_iss(false).await;
    let started = start(&app, &customer).await;
    let long = "x".repeat(5_000);
    let callback = started.callback(&format!("error=server_error&error_description={long}&state={}", started.state));
    let (status, body) = complete_raw(&app, &started.cookie, &callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let kept = body["error"]["details"]["error_description"].as_str().map(|d| d.chars().count());
    assert_eq!(kept, Some(501), "500 characters and an ellipsis: {body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.len() < 700), "{body}");
    // An `error_uri` is passed on when it is an https address, and only then.
    for (uri, kept) in [
        ("https%3A%2F%2Fidp.example%2Ferrors%2F42", json!("https://idp.example/errors/42")),
        ("javascript%3Aalert(1)", Value::Null),
        ("https%3A%2F%2F%0D%0ASet-Cookie%3A%20a%3Db", Value::Null),
        ("https%3A%2F%2F", Value::Null),
    ] {
        let started = start(&app, &customer).await;
        let query = format!("error=server_error&error_uri={uri}&state={}", started.state);
        let (_, body) = complete_raw(&app, &started.cookie, &started.callback(&query)).await;
        assert_eq!(body["error"]["details"]["error_uri"], kept, "{body}");
    }
    // An `error` with no value is still said to be one.
    let started = start(&app, &customer).await;
    let query = format!("error=&state={}", started.state);
    let (_, body) = complete_raw(&app, &started.cookie, &started.callback(&query)).await;
    assert!(body["error"]["message"].as_str().unwrap().contains("without naming it"), "{body}");
}

#[tokio::test]
async fn callback_without_a_code_is_no_code_provided() {
    let (app, _op, customer) = setup().await;
    let started = start(&app, &customer).await;
    let (_, body) = complete_raw(&app, &started.cookie, &started.callback(&format!("state={}", started.state))).await;
    assert_eq!(body["error"]["details"]["kind"], "NoCodeProvidedByIdp", "{body}");
}

#[tokio::test]
async fn rejected_client_secret_is_invalid_client_credentials_with_advice() {
    let (app, op, customer) = setup().await;
    op.reject_client();
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["error"]["details"]["kind"], "InvalidClientCredentials", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Rotate the client secret"));
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_an_error_communicating_with_the_idp() {
    let app = TestApp::spawn().await;
    let op = StubOp::start(true).await;
    // Nothing listens on the discard port of the loopback.
    op.advertise_token_endpoint("http://127.0.0.1:9/token");
    let customer = unique("acme");
    stub_client(&app, &op, &customer, "Generic", None).await;
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let (kind, details) = error_of(&body);
    assert_eq!(kind, "IdentityProviderError");
    assert_eq!(details["kind"], "ErrorCommunicatingWithIdp", "{body}");
    assert_eq!(details["url"], "http://127.0.0.1:9/token");
    let (_, event) = app.get(&format!("/api/v1/login-events/{}", details["login_event_id"].as_str().unwrap())).await;
    assert_eq!(event["failed_step"], "token_exchange", "{event}");
}

#[tokio::test]
async fn a_token_response_that_cannot_be_read_is_not_echoed() {
    let (app, op, customer) = setup().await;
    op.answer_token_requests_with(
        json!({"access_token": ["at-SECRET-4711"], "token_type": "Bearer", "refresh_token": "rt-SECRET"}),
    );
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["details"]["kind"], "UnableToExchangeCodeForToken", "{body}");
    assert!(!body.to_string().contains("SECRET"), "{body}");
    let (_, event) = app
        .get(&format!("/api/v1/login-events/{}", body["error"]["details"]["login_event_id"].as_str().unwrap()))
        .await;
    assert_eq!(event["failed_step"], "token_exchange", "{event}");
    assert!(!event.to_string().contains("SECRET"), "{event}");
    // A 200 that holds an OAuth error answer is that error, as with a 400.
    op.answer_token_requests_with(json!({"error": "invalid_grant", "error_description": "The code has expired"}));
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["details"]["kind"], "UnableToExchangeCodeForToken", "{body}");
    assert_eq!(body["error"]["details"]["error"], "invalid_grant", "{body}");
    assert_eq!(body["error"]["details"]["error_description"], "The code has expired", "{body}");
}

#[tokio::test]
async fn a_redirecting_token_endpoint_is_named_with_its_target() {
    let (app, op, customer) = setup().await;
    op.redirect_token_requests_to("https://login.elsewhere.example/token");
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("302") && message.contains("https://login.elsewhere.example/token"), "{body}");
}

/// Fields Tandem does not use are read as far as they can be: an
/// `expires_in` sent as a string, no `token_type`, a JSON answer labelled
/// `text/plain` still complete the login.
#[tokio::test]
async fn a_token_response_with_quirks_in_fields_tandem_does_not_use_completes_the_login() {
    let (app, op, customer) = setup().await;
    op.send_quirky_token_responses();
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// An IdP that lists both client authentication methods, or none (Basic
/// by default), but holds this client to client_secret_post: refused in
/// Basic, the exchange is tried once in the body and the login completes.
/// A wrong secret is still refused as InvalidClientCredentials, after one
/// try of each.
#[tokio::test]
async fn a_client_registered_for_client_secret_post_completes_its_login() {
    for lists_methods in [true, false] {
        client_secret_post_completes(lists_methods).await;
    }
}

async fn client_secret_post_completes(lists_methods: bool) {
    let app = TestApp::spawn().await;
    let op = StubOp::start(true).await;
    if !lists_methods {
        op.advertise_auth_methods(&[]);
    }
    let customer = unique("acme");
    stub_client(&app, &op, &customer, "Generic", None).await;
    op.accept_client_secret_post_only();
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sent = op.token_requests();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].starts_with("Basic "), "{sent:?}");
    assert!(sent[1].starts_with(" | ") && sent[1].contains("client_secret="), "{sent:?}");
    let (_, event) = app.get(&format!("/api/v1/login-events/{}", body["login_event_id"].as_str().unwrap())).await;
    let step = step_of(&event, "token_exchange");
    assert_eq!(step.map(|s| s["detail"]["client_auth"].clone()), Some(json!("client_secret_post")), "{event}");
    // Past the client authentication, the second try's own error is the answer:
    // a code the IdP does not know is no reason to rotate the secret.
    let started = start(&app, &customer).await;
    let (status, body) = complete(&app, &op, &started, "never-issued").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["details"]["kind"], "UnableToExchangeCodeForToken", "{body}");
    assert_eq!(body["error"]["details"]["error"], "invalid_grant", "{body}");
    let sent_before_reject = op.token_requests().len();
    op.reject_client();
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["details"]["kind"], "InvalidClientCredentials", "{body}");
    assert_eq!(op.token_requests().len(), sent_before_reject + 2);
}

/// Auth0 refuses a client authentication it was not registered for with
/// 401 `access_denied`, some IdPs with a 401 and no body: both are refused
/// client authentications, tried once with the other listed method. A
/// wrong secret at Keycloak (401 `unauthorized_client`) is a credentials
/// problem, named as such with the IdP's error.
#[tokio::test]
async fn a_401_from_the_token_endpoint_is_a_refused_client_authentication() {
    for refusal in [Some(json!({"error": "access_denied", "error_description": "Unauthorized"})), None] {
        let (app, op, customer) = setup().await;
        op.refuse_client_with(401, refusal.clone(), true);
        let (status, body) = login(&app, &op, &customer, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{refusal:?}: {body}");
        let sent = op.token_requests();
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(sent[0].starts_with("Basic ") && sent[1].contains("client_secret="), "{sent:?}");
    }
    let (app, op, customer) = setup().await;
    let keycloak =
        json!({"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials"});
    op.refuse_client_with(401, Some(keycloak), false);
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["details"]["kind"], "InvalidClientCredentials", "{body}");
    assert_eq!(body["error"]["details"]["error"], "unauthorized_client", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Invalid client credentials"), "{body}");
    // An expired code is the code's problem, whatever the status: no retry, no "rotate the secret".
    let (app, op, customer) = setup().await;
    op.refuse_client_with(401, Some(json!({"error": "invalid_grant", "error_description": "expired"})), false);
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["details"]["kind"], "UnableToExchangeCodeForToken", "{body}");
    assert_eq!(op.token_requests().len(), 1);
    // A 400 that is not about the client is the exchange's own failure.
    let (app, op, customer) = setup().await;
    op.refuse_client_with(400, Some(json!({"error": "access_denied"})), false);
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["details"]["kind"], "UnableToExchangeCodeForToken", "{body}");
    assert_eq!(op.token_requests().len(), 1);
}

/// A completion whose calls to the IdP each answer within the timeout, but
/// together take longer than three timeouts, is refused at that deadline.
#[tokio::test]
async fn a_completion_has_a_deadline_for_all_its_idp_calls() {
    let app = TestApp::spawn_adjusted(|s| s.oidc.http_timeout_secs = 5).await;
    let op = StubOp::start(true).await;
    let customer = unique("slow");
    stub_client(&app, &op, &customer, "Generic", None).await;
    // Four calls of 4 s, none past its 5 s timeout: the exchange in Basic
    // (refused), again in the body, the first fetch of the keys, userinfo
    // (the ID token has no email). A call is 1 s inside its timeout, and the
    // first three end 3 s before the 15 s deadline, on a machine that
    // stalls the stub or the server for a while.
    op.refuse_client_with(401, Some(json!({"error": "invalid_client"})), true);
    op.set_userinfo(json!({"sub": "00u1abcdEFGH", "email": "alice@acme.com"}));
    op.set_slow(std::time::Duration::from_millis(4_000));
    let started = std::time::Instant::now();
    let (status, body) = login(&app, &op, &customer, json!({"email": null})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["details"]["kind"], "ErrorCommunicatingWithIdp", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("more than 15 s in all"), "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    let id = body["error"]["details"]["login_event_id"].as_str().unwrap();
    let (_, event) = app.get(&format!("/api/v1/login-events/{id}")).await;
    assert_eq!(event["failed_step"], "complete", "{event}");
}

/// An error page in place of an OAuth answer (a proxy's 503, an HTML
/// page) is named by its status and media type.
#[tokio::test]
async fn a_token_endpoint_error_page_is_named_by_its_status_and_media_type() {
    let (app, op, customer) = setup().await;
    op.answer_token_requests_raw(503, "text/html", "<html><body>Service Unavailable</body></html>");
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("503") && message.contains("text/html"), "{body}");
}

/// The IdP's error text is kept in the login event, even with a NUL in it
/// (which PostgreSQL refuses in text: the event was lost).
#[tokio::test]
async fn an_idp_error_with_a_nul_in_it_is_recorded() {
    let (app, op, customer) = setup().await;
    op.answer_token_requests_raw(
        400,
        "application/json",
        r#"{"error":"invalid_grant","error_description":"bad\u0000code"}"#,
    );
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let id = body["error"]["details"]["login_event_id"].as_str().unwrap_or_else(|| panic!("no event: {body}"));
    let (status, event) = app.get(&format!("/api/v1/login-events/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{event}");
    assert_eq!(event["failed_step"], "token_exchange", "{event}");
    assert!(event["diagnosis"].as_str().unwrap().contains("bad\u{FFFD}code"), "{event}");
}

/// A PATCH with `"verify": false` skips discovery: the client keeps the
/// document on record (it was wiped, and showed as skipped); `true` runs it again.
#[tokio::test]
async fn a_patch_that_skips_verification_keeps_the_discovery_on_record() {
    let (app, op, customer) = setup().await;
    let (_, client) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{customer}")).await;
    assert_eq!(client["discovery"]["status"], "ok", "{client}");
    let path = format!("/api/v1/oidc-clients/{}", client["oidc_client_id"].as_str().unwrap());
    let fetched = op.discovery_fetches();
    let (status, body) = app.patch(&path, json!({"verify": false, "email_domain_allowlist": ["acme.com"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["discovery"]["status"], "ok", "{body}");
    assert_eq!(body["discovery"]["metadata"], client["discovery"]["metadata"], "{body}");
    assert_eq!(op.discovery_fetches(), fetched);
    let (status, body) = app.patch(&path, json!({"verify": true})).await;
    assert_eq!((status, &body["discovery"]["status"]), (StatusCode::OK, &json!("ok")), "{body}");
    assert_eq!(op.discovery_fetches(), fetched + 1);
}

/// A client can ask for other scopes than `openid email profile` (an AWS
/// Cognito app client that does not allow `profile` refuses the login with
/// `invalid_scope`); `openid` stays, and null asks for the three again.
#[tokio::test]
async fn a_client_can_ask_for_other_scopes_than_openid_email_profile() {
    let (app, op, customer) = setup().await;
    let scope_of = |started: &Started| {
        started.idp_url.query_pairs().find(|(k, _)| k == "scope").map(|(_, v)| v.to_string()).unwrap_or_default()
    };
    assert_eq!(scope_of(&start(&app, &customer).await), "openid email profile");
    let (_, client) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{customer}")).await;
    assert_eq!(client["scopes"], Value::Null, "{client}");
    let path = format!("/api/v1/oidc-clients/{}", client["oidc_client_id"].as_str().unwrap());
    let (status, body) =
        app.patch(&path, json!({"scopes": ["openid", "email"], "additional_scopes": ["groups"]})).await;
    assert_eq!((status, &body["scopes"]), (StatusCode::OK, &json!(["openid", "email"])), "{body}");
    assert_eq!(scope_of(&start(&app, &customer).await), "openid email groups");
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.patch(&path, json!({"scopes": ["email", "a b"]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(invalid_fields(&body), ["scopes[1]", "scopes"]);
    let (status, body) = app.patch(&path, json!({"scopes": null})).await;
    assert_eq!((status, &body["scopes"]), (StatusCode::OK, &Value::Null), "{body}");
    assert_eq!(scope_of(&start(&app, &customer).await), "openid email profile groups");
    // A scope named twice (among the additional ones, or also a base one) is asked for once.
    let (status, body) = app.patch(&path, json!({"additional_scopes": ["groups", "openid", "groups"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(scope_of(&start(&app, &customer).await), "openid email profile groups");
}

#[tokio::test]
async fn a_token_response_past_its_limit_is_cut_off() {
    let (app, op, customer) = setup().await;
    op.answer_token_requests_with(json!({"access_token": "a".repeat(300 * 1024), "token_type": "Bearer"}));
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["details"]["kind"], "ErrorCommunicatingWithIdp", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("larger than 256 KiB"), "{body}");
}

#[tokio::test]
async fn discovery_failure_at_initiate_names_the_url() {
    let app = TestApp::spawn().await;
    let customer = unique("down");
    let (status, _) = app
        .post(
            "/api/v1/oidc-clients",
            json!({"customer_id": customer,
        "idp": {"type": "Generic", "client_id": "c", "client_secret": "s", "issuer": "http://127.0.0.1:9"},
        "redirect_url": redirect_url_of(&customer), "verify": false}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app.post("/api/v1/sso/login/initiate", json!({"customer_id": customer})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["error"]["details"]["kind"], "DiscoveryFailed");
    assert_eq!(body["error"]["details"]["url"], "http://127.0.0.1:9/.well-known/openid-configuration");
    let id = body["error"]["details"]["login_event_id"].as_str().expect("login_event_id");
    let (_, event) = app.get(&format!("/api/v1/login-events/{id}")).await;
    assert_eq!(event["failed_step"], "discovery", "{event}");
    assert_eq!(event["customer_id"], customer.as_str());
}

#[tokio::test]
async fn malformed_login_requests_name_their_fields() {
    let app = TestApp::spawn().await;
    let (status, body) = app.post("/api/v1/sso/login/initiate", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(invalid_fields(&body).contains(&"customer_id".to_string()));
    let (_, body) = app.post("/api/v1/sso/login/initiate", json!({"customer_id": "a", "email": "b@c.d"})).await;
    assert_eq!(body["error"]["type"], "InvalidFields");
    let (_, body) = app
        .post(
            "/api/v1/sso/login/initiate",
            json!({"email": "not-an-email", "post_login_redirect_url": "//evil.example"}),
        )
        .await;
    assert_eq!(invalid_fields(&body), ["post_login_redirect_url", "email"]);
    let (status, body) = app.post("/api/v1/sso/login/initiate", json!({"customer_id": "nobody"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["type"], "ClientNotFound");
    let (_, body) = app.post("/api/v1/sso/login/complete", json!({"state_from_cookie": 5})).await;
    assert_eq!(invalid_fields(&body), ["state_from_cookie", "callback_path_and_query"]);
    let (_, body) = app
        .post(
            "/api/v1/sso/login/complete",
            json!({"state_from_cookie": "x", "callback_path_and_query": "/cb?state=a&state=b"}),
        )
        .await;
    assert_eq!(invalid_fields(&body), ["callback_path_and_query"]);
}

#[tokio::test]
async fn authorization_url_carries_state_nonce_pkce_s256_and_scopes() {
    let (app, op, customer) = setup().await;
    let started = start(&app, &customer).await;
    let q: std::collections::HashMap<String, String> =
        started.idp_url.query_pairs().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert!(started.idp_url.as_str().starts_with(&format!("{}/authorize?", op.issuer)), "{}", started.idp_url);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "tandem-client");
    assert_eq!(q["redirect_uri"], redirect_url_of(&customer));
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(q["state"].len() >= 43 && q["nonce"].len() >= 43);
    let scopes: Vec<&str> = q["scope"].split(' ').collect();
    for s in ["openid", "email", "profile"] {
        assert!(scopes.contains(&s), "{scopes:?}");
    }
    assert_ne!(started.cookie, started.state, "the cookie secret is not the state the IdP sees");
}

/// Two nodes on one database: a login started on one completes on the
/// other, and is then spent on both.
#[tokio::test]
async fn a_login_started_on_one_node_completes_on_another_once() {
    let (a, op, customer) = setup().await;
    let b = TestApp::spawn_with(test_settings(&a.dir), a.dir.clone()).await;
    let started = start(&a, &customer).await;
    op.issue("c1", op.sign(&claims(&op, &started, json!({})), Signer::Published, "test-key-a"));
    let (status, done) = complete(&b, &op, &started, "c1").await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["customer_id"], customer.as_str());
    for node in [&a, &b] {
        let (status, body) = complete(node, &op, &started, "c1").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["details"]["reason"], "reused", "{body}");
    }
    // The event the first node opened tells the whole login. Each node
    // writes what it has queued before it reads: the completing node's
    // part (read there first), then the initiating node's.
    let path = format!("/api/v1/login-events/{}", done["login_event_id"].as_str().unwrap());
    let (_, event) = b.get(&path).await;
    assert_eq!(event["outcome"], "success", "{event}");
    let (_, event) = a.get(&path).await;
    assert_eq!(event["outcome"], "success", "{event}");
    let steps: Vec<&str> = event["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(steps.first(), Some(&"initiate"), "{steps:?}");
    assert!(steps.contains(&"id_token"), "{steps:?}");
    // Read only on the other node: the completing node's writer commits it unasked.
    let again = start(&a, &customer).await;
    op.issue("c2", op.sign(&claims(&op, &again, json!({})), Signer::Published, "test-key-a"));
    let (status, done) = complete(&b, &op, &again, "c2").await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let path = format!("/api/v1/login-events/{}", done["login_event_id"].as_str().unwrap());
    // That write is in the background: on SQLite it can wait behind the
    // other node's writes for the busy timeout (5 s), on a busy machine
    // longer. The loop ends as soon as it lands.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, event) = a.get(&path).await;
        if event["outcome"] == "success" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the completion's part never landed: {event}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `max_age` counts from when the login started, which its state carries:
/// a node completing it under a longer `oidc.login_ttl_secs` (raised
/// meanwhile) reads the same start.
#[tokio::test]
async fn max_age_counts_from_the_start_sealed_in_the_login() {
    let (a, op, customer) = setup().await;
    let mut longer = test_settings(&a.dir);
    longer.oidc.login_ttl_secs = 86_400;
    let b = TestApp::spawn_with(longer, a.dir.clone()).await;
    for (ago, refused) in [(3_000, true), (30, false)] {
        let auth_time = chrono::Utc::now().timestamp() - ago;
        let (status, body) =
            a.post("/api/v1/sso/login/initiate", json!({"customer_id": customer, "max_age": 60})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let started = crate::login_support::started(&body);
        let code = unique("code");
        op.issue(
            &code,
            op.sign(&claims(&op, &started, json!({"auth_time": auth_time})), Signer::Published, "test-key-a"),
        );
        let (status, body) = complete(&b, &op, &started, &code).await;
        if refused {
            assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
            assert_eq!(body["error"]["details"]["check"], "auth_time", "{body}");
        } else {
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
}

/// A refusal whose event the database could not store is still the
/// refusal (never a 500), and names no event that does not exist.
#[tokio::test]
async fn a_refusal_whose_event_cannot_be_stored_names_no_event() {
    // It breaks the database on purpose: one of its own, on either backend.
    let app = TestApp::spawn_on_own_database().await;
    let op = StubOp::start(true).await;
    let customer = unique("acme");
    stub_client(&app, &op, &customer, "Generic", None).await;
    let mine = start(&app, &customer).await;
    let theirs = start(&app, &customer).await;
    let drop = if app.state.store.backend() == "sqlite" {
        "DROP TABLE login_events"
    } else {
        "DROP TABLE login_events CASCADE"
    };
    app.state
        .store
        .write_blocking(|c| {
            diesel::connection::SimpleConnection::batch_execute(c, drop).map_err(tandem_store::StoreError::from)
        })
        .unwrap();
    let callback = mine.callback(&format!("code=c1&state={}&iss={}", mine.state, op.issuer));
    let (status, body) = complete_raw(&app, &theirs.cookie, &callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["details"]["reason"], "not_bound", "{body}");
    assert!(body["error"]["details"].get("login_event_id").is_none(), "{body}");
}

/// A claim holding the NUL character (which PostgreSQL cannot store) is
/// refused as an ID-token check, never a 500.
#[tokio::test]
async fn a_claim_holding_the_nul_character_is_refused() {
    assert_token_check(json!({"email": "a\u{0}@acme.com"}), "claims").await;
}

/// OpenID Connect caps `sub` at 255 characters; a longer one (which
/// PostgreSQL could not index) is refused as a token check and recorded.
#[tokio::test]
async fn a_user_id_over_255_bytes_is_refused_as_a_token_check() {
    let (app, op, customer) = setup().await;
    let (status, body) = login(&app, &op, &customer, json!({"sub": "s".repeat(256)})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["details"]["check"], "sub", "{body}");
    let event = body["error"]["details"]["login_event_id"].as_str().unwrap();
    let (_, event) = app.get(&format!("/api/v1/login-events/{event}")).await;
    assert_eq!(event["outcome"], "failed", "{event}");
    assert_eq!(event["failed_step"], "id_token", "{event}");
    let (status, body) = login(&app, &op, &customer, json!({"sub": "s".repeat(255)})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The selectors of an initiate are what an app's visitors type: oversized
/// ones are refused as fields before anything is looked up or recorded.
#[tokio::test]
async fn oversized_initiate_selectors_are_refused_as_fields() {
    let (app, _op, _customer) = setup().await;
    let cases = [
        ("customer_id", json!("c".repeat(4000))),
        ("customer_id", json!("a\u{7}b")),
        ("oidc_client_id", json!("i".repeat(65))),
        ("email", json!(format!("{}@acme.com", "e".repeat(320)))),
    ];
    for (field, value) in cases {
        let (status, body) = app.post("/api/v1/sso/login/initiate", json!({ field: value })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {body}");
        assert_eq!(body["error"]["type"], "InvalidFields", "{body}");
        assert_eq!(body["error"]["details"]["fields"][0]["field"], field, "{body}");
        assert!(body.to_string().len() < 1000, "the value is not echoed: {body}");
    }
}

/// An app may pass the IdP a `login_hint` (over the email the client was
/// found by), a `prompt` and Entra's `domain_hint`; a prompt OpenID Connect
/// does not define, or `none` with others, is refused as a field.
#[tokio::test]
async fn initiate_passes_login_hint_and_prompt_to_the_idp() {
    let (app, op, customer) = setup().await;
    let query = |body: &Value| -> Vec<(String, String)> {
        let url = url::Url::parse(body["idp_url"].as_str().unwrap()).unwrap();
        url.query_pairs()
            .filter(|(k, _)| ["login_hint", "prompt", "domain_hint"].contains(&k.as_ref()))
            .map(|(k, v)| (k.into(), v.into()))
            .collect()
    };
    let (status, body) = app
        .post(
            "/api/v1/sso/login/initiate",
            json!({"customer_id": customer, "login_hint": "bob@acme.com", "prompt": "login select_account",
                   "domain_hint": "acme.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let want = [("login_hint", "bob@acme.com"), ("prompt", "login select_account"), ("domain_hint", "acme.com")];
    assert_eq!(query(&body), want.map(|(k, v)| (k.to_string(), v.to_string())));
    // The login still completes.
    let started = started(&body);
    op.issue("hinted", op.sign(&claims(&op, &started, json!({})), Signer::Published, "test-key-a"));
    assert_eq!(complete(&app, &op, &started, "hinted").await.0, StatusCode::OK);
    let (_, plain) = app.post("/api/v1/sso/login/initiate", json!({"customer_id": customer})).await;
    assert_eq!(query(&plain), vec![]);
    for (field, value) in [
        ("prompt", "none login"),
        ("prompt", "login login"),
        ("prompt", "reauthenticate"),
        ("prompt", ""),
        ("login_hint", ""),
        ("domain_hint", ""),
        ("domain_hint", "acme.com\n"),
    ] {
        let (status, body) =
            app.post("/api/v1/sso/login/initiate", json!({"customer_id": customer, field: value})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field} {value:?}: {body}");
        assert_eq!(body["error"]["details"]["fields"][0]["field"], field, "{body}");
    }
}

/// A login through a client whose stored secret cannot be decrypted (a
/// damaged row) is refused saying so, with its remedy, and recorded;
/// setting the secret again lets logins through.
#[tokio::test]
async fn a_login_through_a_client_whose_secret_cannot_be_read_says_so() {
    let (app, op, customer) = setup().await;
    damage_client_secret(&app, &customer);
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["details"]["kind"], "InvalidClientCredentials", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("cannot be decrypted"), "{body}");
    assert!(body["error"]["details"]["login_event_id"].is_string(), "recorded: {body}");
    let (_, client) = app.get(&format!("/api/v1/oidc-clients/by-customer-id/{customer}")).await;
    let path = format!("/api/v1/oidc-clients/{}", client["oidc_client_id"].as_str().unwrap());
    let (status, body) = app.patch(&path, json!({"idp": {"client_secret": STUB_CLIENT_SECRET}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(login(&app, &op, &customer, json!({})).await.0, StatusCode::OK);
}

/// A step-up: initiate's `max_age` and `acr_values` go to the IdP, and the
/// ID token must honour them (an `auth_time` at most `max_age` old, an
/// `acr` among those asked for). An IdP that ignored them is refused as
/// InvalidIdToken naming the check; without a step-up an old sign-in passes.
#[tokio::test]
async fn a_step_up_login_needs_a_fresh_sign_in_of_the_class_asked_for() {
    let (app, op, customer) = setup().await;
    let now = chrono::Utc::now().timestamp();
    let begin = || async {
        let (status, body) = app
            .post(
                "/api/v1/sso/login/initiate",
                json!({"customer_id": customer, "max_age": 300, "acr_values": "urn:okta:loa:2fa:any phr"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        started(&body)
    };
    let first = begin().await;
    let param = |k: &str| first.idp_url.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.to_string());
    assert_eq!(param("max_age").as_deref(), Some("300"));
    assert_eq!(param("acr_values").as_deref(), Some("urn:okta:loa:2fa:any phr"));
    for (extra, refused) in [
        (json!({"auth_time": now - 10, "acr": "phr"}), None),
        (json!({"auth_time": now - 1000, "acr": "phr"}), Some("auth_time")),
        (json!({"acr": "phr"}), Some("auth_time")),
        (json!({"auth_time": now - 10}), Some("acr")),
        (json!({"auth_time": now - 10, "acr": "pwd"}), Some("acr")),
    ] {
        let started = begin().await;
        let code = unique("code");
        op.issue(&code, op.sign(&claims(&op, &started, extra.clone()), Signer::Published, "test-key-a"));
        let (status, body) = complete(&app, &op, &started, &code).await;
        match refused {
            None => {
                assert_eq!(status, StatusCode::OK, "{extra}: {body}");
                // The app sees what was asked for and what the IdP answered.
                assert_eq!(
                    body["step_up"],
                    json!({"max_age": 300, "acr_values": "urn:okta:loa:2fa:any phr", "auth_time": now - 10, "acr": "phr"})
                );
            }
            Some(check) => {
                assert_eq!(status, StatusCode::BAD_GATEWAY, "{extra}: {body}");
                let (kind, details) = error_of(&body);
                assert_eq!(
                    (kind, &details["kind"], &details["check"]),
                    ("IdentityProviderError", &json!("InvalidIdToken"), &json!(check)),
                    "{body}"
                );
            }
        }
    }
    // A plain login says it was none, so an app that asked for a step-up
    // cannot be handed a plain login's callback in its place.
    let (status, body) = login(&app, &op, &customer, json!({"auth_time": now - 86_400})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["step_up"], Value::Null, "{body}");
    // Userinfo, which the IdP does not sign for this login, cannot make up
    // for an ID token without them.
    op.set_userinfo(json!({"sub": "00u1abcdEFGH", "acr": "phr", "auth_time": now, "email": "alice@acme.com"}));
    let started = begin().await;
    let code = unique("code");
    op.issue(&code, op.sign(&claims(&op, &started, json!({"email": null})), Signer::Published, "test-key-a"));
    let (status, body) = complete(&app, &op, &started, &code).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["details"]["check"], "auth_time", "{body}");
    // max_age counts from the login's start: time spent at the IdP does not.
    let (status, body) = app
        .post("/api/v1/sso/login/initiate", json!({"customer_id": customer, "max_age": 60, "acr_values": "phr"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let started = crate::login_support::started(&body);
    app.clock.advance(chrono::Duration::minutes(4));
    let code = unique("code");
    let fresh = json!({"auth_time": now - 10, "acr": "phr"});
    op.issue(&code, op.sign(&claims(&op, &started, fresh), Signer::Published, "test-key-a"));
    let (status, body) = complete(&app, &op, &started, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The limits, in bytes for acr_values (é is two).
    let (status, body) =
        app.post("/api/v1/sso/login/initiate", json!({"customer_id": customer, "max_age": 31_622_400})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) =
        app.post("/api/v1/sso/login/initiate", json!({"customer_id": customer, "acr_values": "é".repeat(128)})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (extra, field) in [
        (json!({"max_age": 31_622_401}), "max_age"),
        (json!({"acr_values": format!("{}a", "é".repeat(128))}), "acr_values"),
        (json!({"max_age": -1}), "max_age"),
        (json!({"max_age": "300"}), "max_age"),
        (json!({"max_age": 40_000_000}), "max_age"),
        (json!({"acr_values": "a  b"}), "acr_values"),
        (json!({"acr_values": "a a"}), "acr_values"),
        (json!({"acr_values": "x".repeat(257)}), "acr_values"),
    ] {
        let mut body = json!({"customer_id": customer});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (status, answer) = app.post("/api/v1/sso/login/initiate", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra}: {answer}");
        assert_eq!(invalid_fields(&answer), [field], "{answer}");
    }
}
