//! `private_key_jwt` clients: Tandem makes and holds the key, publishes
//! its JWK Set and certificate, signs each token request with it, and
//! rotates it with a grace for the previous key. The stub IdP checks every
//! assertion as an IdP does, against the keys it was given (by URL, or
//! pasted).

use crate::helpers::*;
use crate::login_support::*;
use crate::stub_idp::{ClientJwks, StubOp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn keyed_client(app: &TestApp, op: &StubOp, customer: &str) -> Value {
    let (status, created) = app
        .post(
            "/api/v1/oidc-clients",
            json!({"customer_id": customer,
                   "idp": {"type": "Generic", "client_id": "tandem-client", "issuer": op.issuer,
                           "client_authentication": "private_key_jwt"},
                   "redirect_url": redirect_url_of(customer)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

async fn fetch_jwks(url: &str) -> (StatusCode, Value, Option<String>) {
    let resp = reqwest::get(url).await.unwrap();
    let status = resp.status();
    let cache = resp.headers().get("cache-control").map(|v| v.to_str().unwrap().to_string());
    (status, resp.json().await.unwrap_or(Value::Null), cache)
}

async fn client_auth_of(app: &TestApp, body: &Value) -> Value {
    let (_, event) = app.get(&format!("/api/v1/login-events/{}", body["login_event_id"].as_str().unwrap())).await;
    step_of(&event, "token_exchange").map(|s| s["detail"]["client_auth"].clone()).unwrap_or(Value::Null)
}

/// Overwrites a client's stored keys with something no key opens.
fn damage_client_keys(app: &TestApp, customer: &str) {
    let key = customer.to_string();
    app.state
        .store
        .write_blocking(move |c| {
            use diesel::prelude::*;
            use tandem_store::schema::oidc_clients::dsl as oc;
            diesel::update(oc::oidc_clients.filter(oc::customer_id.eq(&key)))
                .set(oc::client_keys_enc.eq("not a ciphertext"))
                .execute(c)?;
            Ok(())
        })
        .unwrap();
}

/// A client as stored.
fn stored_client(app: &TestApp, id: &str) -> tandem_store::oidc_clients::OidcClientRow {
    let id = id.to_string();
    app.state.store.read_blocking(move |c| tandem_store::oidc_clients::get(c, &id)).unwrap().unwrap()
}

fn kids(client: &Value) -> Vec<(String, String)> {
    client["idp"]["client_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap().to_string(), k["status"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test]
async fn a_private_key_jwt_client_signs_in_with_its_key_and_rotates_it() {
    let app = TestApp::spawn().await;
    let op = StubOp::start(true).await;
    let customer = unique("pkjwt");
    let client = keyed_client(&app, &op, &customer).await;
    let id = client["oidc_client_id"].as_str().unwrap().to_string();
    let idp = &client["idp"];
    assert_eq!(idp["client_authentication"], "private_key_jwt");
    assert_eq!(idp["has_client_secret"], false);
    let key = &idp["client_keys"][0];
    assert_eq!(key["status"], "current");
    assert!(key["certificate_pem"].as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----\nMII"), "{key}");
    assert_eq!(key["certificate_thumbprint_sha1"].as_str().unwrap().len(), 40);
    assert_eq!(key["jwk"]["kid"], key["kid"]);
    assert_eq!(key["jwk"]["kty"], "RSA");
    assert_eq!(key["jwk"]["alg"], "RS256");
    assert!(key["jwk"].get("d").is_none(), "{key}");
    // The certificate's expiry is the credential's: warned of as a secret's.
    let expires = chrono::DateTime::parse_from_rfc3339(key["certificate_expires_at"].as_str().unwrap()).unwrap();
    let in_days = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!((700..=731).contains(&in_days), "{key}");
    assert_eq!(idp["client_secret_expires_at"], key["certificate_expires_at"]);
    assert_eq!(idp["client_secret_warning_level"], "ok");
    // Nothing private is shown: not the stored private key, nor its field.
    let stored = stored_client(&app, &id);
    let keys: Value = serde_json::from_str(&stored.client_keys(&app.state.secret_key).unwrap().unwrap().0).unwrap();
    let private = keys["keys"][0]["pkcs8"].as_str().unwrap();
    assert!(private.len() > 1000);
    let shown = client.to_string();
    assert!(!shown.contains(private) && !shown.contains(&private[..64]) && !shown.contains("pkcs8"), "{client}");
    assert!(stored.client_secret_enc.is_none());

    // The JWK Set is public, as IdPs fetch it.
    let jwks_url = idp["jwks_url"].as_str().unwrap().to_string();
    assert_eq!(jwks_url, format!("{}/oidc/{id}/jwks.json", app.base));
    let (status, jwks, cache) = fetch_jwks(&jwks_url).await;
    assert_eq!(status, StatusCode::OK, "{jwks}");
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks["keys"][0], key["jwk"]);
    assert_eq!(cache.as_deref(), Some("public, max-age=300"));

    // A login: the token request carries an assertion the IdP verifies with
    // the published key, and no secret.
    op.expect_client_assertions(ClientJwks::Url(jwks_url.clone()));
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(op.assertion_kids(), [key["kid"].as_str().unwrap()]);
    assert_eq!(client_auth_of(&app, &body).await, "private_key_jwt");
    let first_kid = key["kid"].as_str().unwrap().to_string();

    // A rotation: the new key signs first; the IdP, still holding only the
    // old one, refuses it, and the previous key signs in within its grace.
    let (status, rotated) = app.post(&format!("/api/v1/oidc-clients/{id}/rotate-client-key"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let listed = kids(&rotated);
    assert_eq!(listed.len(), 2, "{rotated}");
    assert_eq!(listed[1], (first_kid.clone(), "previous".to_string()));
    assert_ne!(listed[0].0, first_kid);
    let grace = chrono::DateTime::parse_from_rfc3339(rotated["idp"]["client_keys"][1]["valid_until"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert!(((grace - chrono::Utc::now()).num_hours() - 24 * 7).abs() <= 1, "{rotated}");
    op.expect_client_assertions(ClientJwks::Fixed(jwks.clone()));
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(client_auth_of(&app, &body).await, "private_key_jwt (previous key)");
    // Recorded on the client: its previous key says when the IdP last took it.
    let (_, now) = app.get(&format!("/api/v1/oidc-clients/{id}")).await;
    assert!(now["idp"]["client_keys"][1]["last_used_at"].is_string(), "{now}");
    assert!(now["idp"]["client_keys"][0].get("last_used_at").is_none(), "{now}");
    // An edit that keeps the keys keeps it.
    let (_, edited) = app.patch(&format!("/api/v1/oidc-clients/{id}"), json!({"additional_scopes": ["groups"]})).await;
    assert_eq!(edited["idp"]["client_keys"][1]["last_used_at"], now["idp"]["client_keys"][1]["last_used_at"]);
    // Counted for an alert: the IdP lacks the new key.
    let metrics = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tandem_oidc_logins_on_previous_client_key_total 1\n"), "{metrics}");
    // Given the new JWK Set (both keys while the grace lasts), the new key signs.
    let (_, both, _) = fetch_jwks(&jwks_url).await;
    assert_eq!(both["keys"].as_array().unwrap().len(), 2);
    op.expect_client_assertions(ClientJwks::Url(jwks_url.clone()));
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(client_auth_of(&app, &body).await, "private_key_jwt");
    assert_eq!(op.assertion_kids().last(), Some(&listed[0].0));

    // Another rotation while the previous key is in its grace (a retried
    // request, say) would drop the key the IdP may hold alone: refused
    // unless forced. Forced without grace, it drops the previous key: an
    // IdP that holds only that one now refuses every login, and Tandem
    // says what to do.
    let rotate = format!("/api/v1/oidc-clients/{id}/rotate-client-key");
    let (status, body) = app.post(&rotate, json!({"grace_period_hours": 0})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["type"], "ClientKeyRotationInProgress", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains(&first_kid), "{body}");
    let (status, rotated) = app.post(&rotate, json!({"grace_period_hours": 0, "force": true})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(kids(&rotated).len(), 1);
    let stored = stored_client(&app, &id);
    assert_eq!(stored.previous_client_key_used_at, None, "a rotation clears the previous key's use");
    op.expect_client_assertions(ClientJwks::Fixed(jwks));
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["details"]["kind"], "InvalidClientCredentials", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("certificate or JWK"), "{body}");
    // The audit trail names the rotations.
    let (_, audit) = app.get(&format!("/api/v1/audit-events?target_id={id}&action=oidc_client.key_rotated")).await;
    assert_eq!(audit["data"].as_array().map(Vec::len), Some(2), "{audit}");
    // A rotation with a grace, then the grace runs out: the previous key
    // leaves the key set and is no longer tried.
    let old_set = fetch_jwks(&jwks_url).await.1;
    let (status, rotated) = app.post(&rotate, json!({"grace_period_hours": 24})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(fetch_jwks(&jwks_url).await.1["keys"].as_array().map(Vec::len), Some(2));
    app.clock.advance(chrono::Duration::hours(25));
    assert_eq!(fetch_jwks(&jwks_url).await.1["keys"].as_array().map(Vec::len), Some(1));
    let (_, now) = app.get(&format!("/api/v1/oidc-clients/{id}")).await;
    assert_eq!(kids(&now).len(), 1, "{now}");
    op.expect_client_assertions(ClientJwks::Fixed(old_set));
    let refused_before = op.assertion_kids().len();
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["details"]["kind"], "InvalidClientCredentials", "{body}");
    assert_eq!(op.assertion_kids().len(), refused_before);
    // Rotating once the grace is over needs no force.
    let (status, _) = app.post(&rotate, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    // Ending the grace by hand (the IdP holds the new key, or the old one
    // leaked): the previous key goes, and a rotation needs no force again.
    let previous = format!("/api/v1/oidc-clients/{id}/previous-client-key");
    let (status, ended) = app.delete(&previous).await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    assert_eq!(kids(&ended).len(), 1, "{ended}");
    assert_eq!(fetch_jwks(&jwks_url).await.1["keys"].as_array().map(Vec::len), Some(1));
    let (status, body) = app.delete(&previous).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["type"], "ClientKeyNotFound", "{body}");
    let (_, audit) =
        app.get(&format!("/api/v1/audit-events?target_id={id}&action=oidc_client.previous_key_dropped")).await;
    assert_eq!(audit["data"].as_array().map(Vec::len), Some(1), "{audit}");

    // Two rotations at once (a request sent twice): one lands, the other is
    // refused rather than dropping the key the IdP may hold alone.
    let before = kids(&app.get(&format!("/api/v1/oidc-clients/{id}")).await.1)[0].0.clone();
    let (a, b) = tokio::join!(app.post(&rotate, json!({})), app.post(&rotate, json!({})));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT], "{} / {}", a.1, b.1);
    let (_, now) = app.get(&format!("/api/v1/oidc-clients/{id}")).await;
    assert_eq!(kids(&now)[1], (before, "previous".to_string()), "{now}");
}

#[tokio::test]
async fn private_key_jwt_settings_are_checked_and_switched() {
    let app = TestApp::spawn().await;
    let op = StubOp::start(true).await;
    let customer = unique("pkjwt-checks");
    let base = |idp: Value| json!({"customer_id": customer, "idp": idp, "redirect_url": redirect_url_of(&customer)});
    let generic = |extra: Value| {
        let mut idp = json!({"type": "Generic", "client_id": "tandem-client", "issuer": op.issuer});
        for (k, v) in extra.as_object().unwrap() {
            idp[k] = v.clone();
        }
        idp
    };
    for (extra, field) in [
        (json!({"client_authentication": "private_key_jwt", "client_secret": "s"}), "idp.client_secret"),
        (
            json!({"client_authentication": "private_key_jwt", "client_secret_expires_at": "2027-01-01T00:00:00Z"}),
            "idp.client_secret_expires_at",
        ),
        (json!({"client_authentication": "tls_client_auth"}), "idp.client_authentication"),
    ] {
        let (status, body) = app.post("/api/v1/oidc-clients", base(generic(extra))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(invalid_fields(&body), [field], "{body}");
    }
    // An IdP whose discovery does not list private_key_jwt.
    op.advertise_auth_methods(&["client_secret_basic"]);
    let (status, body) =
        app.post("/api/v1/oidc-clients", base(generic(json!({"client_authentication": "private_key_jwt"})))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(invalid_fields(&body), ["idp.client_authentication"], "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("without private_key_jwt"), "{body}");

    // A client secret client: no keys, no JWK Set, nothing to rotate.
    let created = stub_client(&app, &op, &customer, "Generic", None).await;
    // Nor can it switch while its IdP's discovery (as stored) lacks the method.
    let (status, body) = app
        .patch(
            &format!("/api/v1/oidc-clients/{}", created["oidc_client_id"].as_str().unwrap()),
            json!({"idp": {"client_authentication": "private_key_jwt"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(invalid_fields(&body), ["idp.client_authentication"], "{body}");
    op.advertise_auth_methods(&["client_secret_basic", "private_key_jwt"]);
    let (status, _) = app
        .patch(
            &format!("/api/v1/oidc-clients/{}", created["oidc_client_id"].as_str().unwrap()),
            json!({"verify": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let id = created["oidc_client_id"].as_str().unwrap().to_string();
    assert_eq!(created["idp"]["client_authentication"], "client_secret");
    assert!(created["idp"]["client_keys"].is_null(), "{created}");
    let (status, _, _) = fetch_jwks(&format!("{}/oidc/{id}/jwks.json", app.base)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = fetch_jwks(&format!("{}/oidc/no-such-client/jwks.json", app.base)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app.post(&format!("/api/v1/oidc-clients/{id}/rotate-client-key"), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(invalid_fields(&body), ["idp.client_authentication"], "{body}");

    // Switched to private_key_jwt: the secret goes and a key is made.
    let path = format!("/api/v1/oidc-clients/{id}");
    let (status, keyed) = app.patch(&path, json!({"idp": {"client_authentication": "private_key_jwt"}})).await;
    assert_eq!(status, StatusCode::OK, "{keyed}");
    assert_eq!(keyed["idp"]["has_client_secret"], false);
    let kid = keyed["idp"]["client_keys"][0]["kid"].clone();
    assert!(kid.is_string(), "{keyed}");
    // Other edits keep the key, a move to another issuer too (an assertion
    // names the token endpoint it is for), and a secret is refused.
    let (status, edited) = app.patch(&path, json!({"email_domain_allowlist": ["acme.com"], "verify": false})).await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["idp"]["client_keys"][0]["kid"], kid);
    let (status, moved) = app.patch(&path, json!({"idp": {"issuer": "https://idp2.example"}, "verify": false})).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["idp"]["client_keys"][0]["kid"], kid);
    let (status, body) = app.patch(&path, json!({"idp": {"client_secret": "s"}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(invalid_fields(&body), ["idp.client_secret"], "{body}");
    let (status, body) = app.patch(&path, json!({"idp": {"client_secret_expires_at": "2027-01-01T00:00:00Z"}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(invalid_fields(&body), ["idp.client_secret_expires_at"], "{body}");
    // `null` keeps the method (a typed client sending every field), and the keys.
    let (status, same) = app.patch(&path, json!({"idp": {"client_authentication": null}, "verify": false})).await;
    assert_eq!(status, StatusCode::OK, "{same}");
    assert_eq!(same["idp"]["client_authentication"], "private_key_jwt");
    assert_eq!(same["idp"]["client_keys"][0]["kid"], kid);
    let (status, body) =
        app.post(&format!("/api/v1/oidc-clients/{id}/rotate-client-key"), json!({"grace_period_hours": 721})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(invalid_fields(&body), ["grace_period_hours"], "{body}");
    // Malformed bodies are refused, each saying what is wrong.
    for (bad, field) in [
        (json!({"grace_period_hours": "24"}), "grace_period_hours"),
        (json!({"grace_period_hours": -1}), "grace_period_hours"),
        (json!({"force": "yes"}), "force"),
        (json!({"grace": 24}), "grace"),
    ] {
        let (status, body) = app.post(&format!("/api/v1/oidc-clients/{id}/rotate-client-key"), bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(invalid_fields(&body), [field], "{bad}: {body}");
    }
    let (status, body) = app
        .send_raw(
            reqwest::Method::POST,
            &format!("/api/v1/oidc-clients/{id}/rotate-client-key"),
            b"{not json".to_vec(),
            "application/json",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["type"], "InvalidJson", "{body}");

    // Keys that cannot be read: a login says so; a PATCH must name the
    // method to have new ones made.
    let (status, _) = app.patch(&path, json!({"idp": {"issuer": op.issuer}, "verify": false})).await;
    assert_eq!(status, StatusCode::OK);
    damage_client_keys(&app, &customer);
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["details"]["kind"], "InvalidClientCredentials", "{body}");
    let (status, body) = app.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["idp"]["client_keys"].is_null(), "{body}");
    // The key set is not served empty (an IdP would cache that), nor is why told in public.
    let resp = reqwest::get(format!("{}/oidc/{id}/jwks.json", app.base)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = resp.text().await.unwrap();
    assert!(text.contains("ClientKeysUnreadable") && !text.contains("decrypt"), "{text}");
    let (status, body) = app.patch(&path, json!({"email_domain_allowlist": []})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(invalid_fields(&body), ["idp.client_authentication"], "{body}");
    let (status, remade) = app.patch(&path, json!({"idp": {"client_authentication": "private_key_jwt"}})).await;
    assert_eq!(status, StatusCode::OK, "{remade}");
    assert_ne!(remade["idp"]["client_keys"][0]["kid"], kid);
    op.expect_client_assertions(ClientJwks::Url(remade["idp"]["jwks_url"].as_str().unwrap().to_string()));
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(remade["idp"]["client_assertion_audience"], "token_endpoint");
    // An IdP that wants its issuer as the audience (Auth0): refused until
    // the client says so, then taken.
    op.expect_assertion_audience(Some(&op.issuer));
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let (status, issuer_aud) = app.patch(&path, json!({"idp": {"client_assertion_audience": "issuer"}})).await;
    assert_eq!(status, StatusCode::OK, "{issuer_aud}");
    assert_eq!(issuer_aud["idp"]["client_assertion_audience"], "issuer");
    let (status, body) = login(&app, &op, &customer, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    op.expect_assertion_audience(None);
    let (status, body) = app.patch(&path, json!({"idp": {"client_assertion_audience": "tenant"}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(invalid_fields(&body), ["idp.client_assertion_audience"], "{body}");

    // Back to a client secret: the keys go, and the JWK Set with them.
    let (status, back) = app
        .patch(&path, json!({"idp": {"client_authentication": "client_secret", "client_secret": STUB_CLIENT_SECRET}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["idp"]["has_client_secret"], true);
    assert!(back["idp"]["client_keys"].is_null() && back["idp"]["jwks_url"].is_null(), "{back}");
    assert!(back["idp"]["client_secret_expires_at"].is_null(), "{back}");
    // The keys' audience went with them, and a secret client takes none.
    assert!(back["idp"]["client_assertion_audience"].is_null(), "{back}");
    let (status, body) = app.patch(&path, json!({"idp": {"client_assertion_audience": "issuer"}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(invalid_fields(&body), ["idp.client_assertion_audience"], "{body}");
    let (status, _, _) = fetch_jwks(&format!("{}/oidc/{id}/jwks.json", app.base)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // `null` keeps a client secret too.
    let (status, same) = app.patch(&path, json!({"idp": {"client_authentication": null}})).await;
    assert_eq!(status, StatusCode::OK, "{same}");
    assert_eq!(same["idp"]["has_client_secret"], true, "{same}");
    // A secret that cannot be decrypted is replaced by keys in one PATCH.
    damage_client_secret(&app, &customer);
    let (status, keyed) = app.patch(&path, json!({"idp": {"client_authentication": "private_key_jwt"}})).await;
    assert_eq!(status, StatusCode::OK, "{keyed}");
    assert_eq!(keyed["idp"]["has_client_secret"], false, "{keyed}");
    assert!(keyed["idp"]["client_keys"][0]["kid"].is_string(), "{keyed}");
}
