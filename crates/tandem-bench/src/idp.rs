//! The stub OpenID Provider the benchmark logs in through: discovery, a
//! JWKS (RS256 by default, as Entra ID, Okta and the peer's IdP sign; ES256
//! on request), a non-interactive `/authorize` that signs in the
//! `login_hint` user at once, and `/token` with client authentication and
//! PKCE checks. It runs on its own threads inside this process so its CPU
//! can be told apart from the load driver's.

use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use anyhow::Context;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;

/// The client Tandem is registered as at the stub.
pub const CLIENT_ID: &str = "tandem-bench-client";
/// Lifetime of the ID tokens issued.
const TOKEN_TTL_SECS: i64 = 300;

/// Whether a thread of this process (by its name as `/proc` shows it,
/// truncated to 15 bytes) belongs to the stub IdP: its system thread, the
/// acceptor and the worker arbiters (`actix-rt|system:0|arbiter:N`). Only
/// the IdP uses actix in this process.
pub fn is_idp_thread(name: &str) -> bool {
    name == "stub-idp" || name.starts_with("actix-server") || name.starts_with("actix-rt")
}

/// The algorithm the stub signs ID tokens with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum IdTokenAlg {
    /// RSA 2048, PKCS#1 v1.5 with SHA-256: what Entra ID and Okta sign with by default.
    #[value(name = "RS256")]
    #[serde(rename = "RS256")]
    Rs256,
    /// ECDSA P-256 with SHA-256.
    #[value(name = "ES256")]
    #[serde(rename = "ES256")]
    Es256,
}

impl IdTokenAlg {
    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            IdTokenAlg::Rs256 => "RS256",
            IdTokenAlg::Es256 => "ES256",
        }
    }
}

enum Signer {
    /// jsonwebtoken signs RSA only from PKCS#1 DER, which aws-lc-rs does not
    /// export; the RS256 JWT is put together here instead.
    Rsa(RsaKeyPair),
    Ec(EncodingKey),
}

/// A signing key pair and its public JWK.
pub struct SigningKey {
    pub kid: String,
    signer: Signer,
    pub jwk: Value,
}

impl SigningKey {
    /// A fresh key for `alg`.
    pub fn generate(alg: IdTokenAlg) -> anyhow::Result<SigningKey> {
        let kid = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        match alg {
            IdTokenAlg::Rs256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048)
                    .map_err(|_| anyhow::anyhow!("RSA 2048 key generation failed"))?;
                let public = pair.public_key();
                let jwk = json!({
                    "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                    "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                    "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
                });
                Ok(SigningKey { kid, signer: Signer::Rsa(pair), jwk })
            }
            IdTokenAlg::Es256 => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| anyhow::anyhow!("P-256 key generation failed"))?;
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                    .map_err(|_| anyhow::anyhow!("the generated P-256 key does not load"))?;
                // The uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
                let point = pair.public_key().as_ref();
                anyhow::ensure!(point.len() == 65 && point[0] == 4, "unexpected P-256 public key encoding");
                let jwk = json!({
                    "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
                });
                Ok(SigningKey { kid, signer: Signer::Ec(EncodingKey::from_ec_der(pkcs8.as_ref())), jwk })
            }
        }
    }

    /// Signs `claims` as a JWT naming this key.
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        match &self.signer {
            Signer::Ec(key) => {
                let mut h = Header::new(Algorithm::ES256);
                h.kid = Some(self.kid.clone());
                jsonwebtoken::encode(&h, claims, key).context("signing the ID token")
            }
            Signer::Rsa(pair) => {
                let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.kid});
                let input = format!(
                    "{}.{}",
                    URL_SAFE_NO_PAD.encode(header.to_string()),
                    URL_SAFE_NO_PAD.encode(claims.to_string())
                );
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), input.as_bytes(), &mut signature)
                    .map_err(|_| anyhow::anyhow!("signing the ID token failed"))?;
                Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
            }
        }
    }
}

/// The ID-token claims for `user` signing in to `client_id` at `issuer`.
pub fn id_token_claims(issuer: &str, client_id: &str, user: &str, nonce: Option<&str>, now: i64) -> Value {
    let mut c = json!({
        "iss": issuer, "aud": client_id, "sub": format!("sub-{user}"),
        "email": user, "email_verified": true, "iat": now, "exp": now + TOKEN_TTL_SECS,
    });
    if let Some(n) = nonce {
        c["nonce"] = json!(n);
    }
    c
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    // Tokens are stamped with wall-clock time: Tandem checks exp/iat against its own clock.
    #[allow(clippy::disallowed_methods)]
    chrono::Utc::now().timestamp()
}

/// 244 random bits, hex.
fn random_token() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// An authorization code waiting to be redeemed.
struct Pending {
    user: String,
    nonce: Option<String>,
    redirect_uri: String,
    challenge: Option<String>,
}

struct Op {
    issuer: String,
    client_secret: String,
    /// With `--client-auth private-key-jwt`: the client's public key, which
    /// its assertions must verify with.
    client_key: Mutex<Option<jsonwebtoken::DecodingKey>>,
    key: SigningKey,
    discovery: Value,
    jwks: Value,
    pending: Mutex<HashMap<String, Pending>>,
}

/// A running stub IdP.
pub struct StubIdp {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    op: web::Data<Op>,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StubIdp {
    /// Starts the IdP on 127.0.0.1 (a free port) on its own thread.
    pub fn start(alg: IdTokenAlg) -> anyhow::Result<StubIdp> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding the stub IdP")?;
        let issuer = format!("http://{}", listener.local_addr()?);
        let key = SigningKey::generate(alg)?;
        let client_secret = random_token();
        let op = web::Data::new(Op {
            discovery: json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{issuer}/authorize"),
                "token_endpoint": format!("{issuer}/token"),
                "jwks_uri": format!("{issuer}/jwks"),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": [alg.name()],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
                "authorization_response_iss_parameter_supported": true,
                "scopes_supported": ["openid", "email", "profile"],
            }),
            jwks: json!({"keys": [key.jwk]}),
            issuer: issuer.clone(),
            client_secret: client_secret.clone(),
            client_key: Mutex::new(None),
            key,
            pending: Mutex::new(HashMap::new()),
        });
        let shared = op.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("stub-idp".into())
            .spawn(move || {
                let system = actix_web::rt::System::new();
                let result = system.block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(op.clone())
                            .route("/.well-known/openid-configuration", web::get().to(discovery))
                            .route("/jwks", web::get().to(jwks))
                            .route("/authorize", web::get().to(authorize))
                            .route("/token", web::post().to(token))
                    })
                    .workers(1)
                    .disable_signals()
                    .listen(listener)?
                    .run();
                    let _ = tx.send(server.handle());
                    server.await
                });
                if let Err(e) = result {
                    eprintln!("stub IdP stopped: {e}");
                }
            })
            .context("starting the stub IdP thread")?;
        let handle = rx.recv().context("the stub IdP did not start")?;
        Ok(StubIdp { issuer, client_id: CLIENT_ID.into(), client_secret, op: shared, handle, thread: Some(thread) })
    }

    /// Has the token endpoint take `private_key_jwt` assertions verified
    /// with this public JWK (RSA), as an IdP given the client's key does.
    pub fn accept_client_key(&self, jwk: &Value) -> anyhow::Result<()> {
        let part = |k: &str| jwk[k].as_str().ok_or_else(|| anyhow::anyhow!("the client's JWK has no {k}: {jwk}"));
        let key = jsonwebtoken::DecodingKey::from_rsa_components(part("n")?, part("e")?)
            .context("reading the client's JWK")?;
        *self.op.client_key.lock().unwrap_or_else(|p| p.into_inner()) = Some(key);
        Ok(())
    }

    /// Stops the server and waits for its thread.
    pub async fn stop(mut self) {
        self.handle.stop(false).await;
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

async fn discovery(op: web::Data<Op>) -> HttpResponse {
    HttpResponse::Ok().json(&op.discovery)
}

async fn jwks(op: web::Data<Op>) -> HttpResponse {
    HttpResponse::Ok().json(&op.jwks)
}

fn oauth_error(status: u16, error: &str, description: &str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    HttpResponse::build(status).json(json!({"error": error, "error_description": description}))
}

/// `GET /authorize`: signs in the `login_hint` user at once and redirects back with a code.
async fn authorize(op: web::Data<Op>, query: web::Query<HashMap<String, String>>) -> HttpResponse {
    let q = query.into_inner();
    let get = |k: &str| q.get(k).map(String::as_str);
    if get("response_type") != Some("code") || get("client_id") != Some(CLIENT_ID) {
        return oauth_error(400, "invalid_request", "response_type=code and the registered client_id are required");
    }
    let (Some(redirect_uri), Some(state), Some(user)) = (get("redirect_uri"), get("state"), get("login_hint")) else {
        return oauth_error(400, "invalid_request", "redirect_uri, state and login_hint are required");
    };
    let challenge = get("code_challenge").map(str::to_string);
    if challenge.is_some() && get("code_challenge_method") != Some("S256") {
        return oauth_error(400, "invalid_request", "only S256 PKCE challenges are supported");
    }
    let Ok(mut location) = url::Url::parse(redirect_uri) else {
        return oauth_error(400, "invalid_request", "redirect_uri is not an absolute URL");
    };
    let code = random_token();
    location.query_pairs_mut().append_pair("code", &code).append_pair("state", state).append_pair("iss", &op.issuer);
    let pending = Pending {
        user: user.to_string(),
        nonce: get("nonce").map(str::to_string),
        redirect_uri: redirect_uri.to_string(),
        challenge,
    };
    op.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(code, pending);
    HttpResponse::Found().insert_header((header::LOCATION, location.as_str())).finish()
}

/// The first value of a form-encoded component (used for Basic credentials, which are form-encoded).
fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(s.as_bytes()).next().map(|(k, _)| k.into_owned()).unwrap_or_default()
}

/// The client credentials of a token request: HTTP Basic, else the form body.
fn client_credentials(req: &HttpRequest, form: &HashMap<String, String>) -> Option<(String, String)> {
    if let Some(basic) =
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = String::from_utf8(STANDARD.decode(basic.trim()).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        return Some((form_decode(id), form_decode(secret)));
    }
    Some((form.get("client_id")?.clone(), form.get("client_secret")?.clone()))
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()))
}

/// Checks a `private_key_jwt` assertion (RFC 7523 §3): RS256 by the
/// client's key, issued by and about the client, for this token endpoint.
fn assertion_ok(op: &Op, form: &HashMap<String, String>) -> bool {
    // Taken out of the lock: verifying is not done under it.
    let key = op.client_key.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let (Some(key), Some(assertion)) = (key.as_ref(), form.get("client_assertion")) else { return false };
    if form.get("client_assertion_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return false;
    }
    let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
    v.set_audience(&[format!("{}/token", op.issuer)]);
    v.set_issuer(&[CLIENT_ID]);
    jsonwebtoken::decode::<Value>(assertion, key, &v).is_ok_and(|t| t.claims["sub"] == CLIENT_ID)
}

/// `POST /token`: redeems a code once for a signed ID token.
async fn token(op: web::Data<Op>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    if form.contains_key("client_assertion") {
        if !assertion_ok(&op, &form) {
            return oauth_error(401, "invalid_client", "the client assertion does not verify");
        }
    } else {
        match client_credentials(&req, &form) {
            Some((id, secret)) if id == CLIENT_ID && secret == op.client_secret => {}
            _ => return oauth_error(401, "invalid_client", "unknown client or wrong client secret"),
        }
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return oauth_error(400, "unsupported_grant_type", "only authorization_code is supported");
    }
    let code = form.get("code").map(String::as_str).unwrap_or("");
    let Some(p) = op.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(code) else {
        return oauth_error(400, "invalid_grant", "unknown or already used code");
    };
    if form.get("redirect_uri") != Some(&p.redirect_uri) {
        return oauth_error(400, "invalid_grant", "redirect_uri differs from the authorization request");
    }
    if let Some(challenge) = &p.challenge {
        if form.get("code_verifier").map(|v| s256(v)).as_ref() != Some(challenge) {
            return oauth_error(400, "invalid_grant", "PKCE verification failed");
        }
    }
    let claims = id_token_claims(&op.issuer, CLIENT_ID, &p.user, p.nonce.as_deref(), unix_now());
    let id_token = match op.key.sign(&claims) {
        Ok(t) => t,
        Err(e) => return oauth_error(500, "server_error", &e.to_string()),
    };
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(json!({
        "access_token": random_token(), "token_type": "Bearer", "expires_in": TOKEN_TTL_SECS, "id_token": id_token,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    fn validation(alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.set_audience(&[CLIENT_ID]);
        v.set_issuer(&["http://127.0.0.1:1"]);
        v
    }

    #[test]
    fn id_tokens_verify_with_the_published_jwk() {
        for (alg, jose) in [(IdTokenAlg::Rs256, Algorithm::RS256), (IdTokenAlg::Es256, Algorithm::ES256)] {
            let key = SigningKey::generate(alg).unwrap();
            let now = unix_now();
            let token =
                key.sign(&id_token_claims("http://127.0.0.1:1", CLIENT_ID, "a@acme.com", Some("n-1"), now)).unwrap();
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk.clone()).unwrap();
            let data = jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_jwk(&jwk).unwrap(), &validation(jose))
                .unwrap();
            assert_eq!((data.header.alg, data.header.kid.as_deref()), (jose, Some(key.kid.as_str())), "{alg:?}");
            let c = data.claims;
            assert_eq!((c["sub"].as_str(), c["email"].as_str()), (Some("sub-a@acme.com"), Some("a@acme.com")));
            assert_eq!((c["nonce"].as_str(), c["email_verified"].as_bool()), (Some("n-1"), Some(true)));
            assert_eq!(c["exp"].as_i64(), Some(now + TOKEN_TTL_SECS));
        }
    }

    #[test]
    fn id_tokens_do_not_verify_with_another_key() {
        for (alg, jose) in [(IdTokenAlg::Rs256, Algorithm::RS256), (IdTokenAlg::Es256, Algorithm::ES256)] {
            let key = SigningKey::generate(alg).unwrap();
            let other = SigningKey::generate(alg).unwrap();
            let token =
                key.sign(&id_token_claims("http://127.0.0.1:1", CLIENT_ID, "a@acme.com", None, unix_now())).unwrap();
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(other.jwk.clone()).unwrap();
            let decoded =
                jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_jwk(&jwk).unwrap(), &validation(jose));
            // Refused for its signature, not for a claim.
            let e = decoded.err().unwrap_or_else(|| panic!("{alg:?}: verified with another key"));
            assert!(matches!(e.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature), "{alg:?}: {e}");
        }
    }

    #[test]
    fn pkce_s256_is_unpadded_base64url_of_sha256() {
        // Expected value from `openssl dgst -sha256 -binary | base64`, made URL-safe and unpadded.
        assert_eq!(s256("dBjftJeZ4CVP-mB92K9uXk-ph7KiLhRZAVTe3Ma3YJU"), "mRwuDkY4qxdo1dAgN1wBjy5VbfGp8JoUPxgI1iHvAEQ");
    }

    #[test]
    fn idp_threads_are_told_apart_from_the_driver() {
        assert!(is_idp_thread("stub-idp"));
        assert!(is_idp_thread("actix-server wo"));
        assert!(is_idp_thread("actix-server ac"));
        assert!(is_idp_thread("actix-rt|system"));
        assert!(!is_idp_thread("bench-driver"));
        assert!(!is_idp_thread("tandem-bench"));
    }
}
