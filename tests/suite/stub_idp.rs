//! An in-process OpenID Provider for the cases a real one cannot produce:
//! it serves discovery, a JWKS and a token endpoint, and hands out whatever
//! ID token a test signs (well-formed or forged).

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

const KEY_A: &[u8] = include_bytes!("fixtures/rsa-a.der");
const KEY_B: &[u8] = include_bytes!("fixtures/rsa-b.der");
const PUB_A: &[u8] = include_bytes!("fixtures/rsa-a.pub.der");
const JWK_A: &str = include_str!("fixtures/rsa-a.jwk.json");
/// A self-signed certificate of `rsa-a`'s key (an x5c-only key set).
const CERT_A: &[u8] = include_bytes!("fixtures/rsa-a.crt.der");
const JWK_B: &str = include_str!("fixtures/rsa-b.jwk.json");

/// How the JWKS lists the published key, for the shapes real IdPs serve.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub enum JwksShape {
    /// As generated: one key with a kid, pinned to RS256.
    #[default]
    Plain,
    /// The modulus with a leading zero byte (Java's `BigInteger.toByteArray()`).
    PaddedModulus,
    /// The key without a kid (some home-grown IdPs), whatever kid tokens name.
    NoKids,
    /// The key listed under its kid twice: pinned to RS256, then to RS512.
    DuplicateKid,
    /// The key published only as its certificate (`x5c`, no `n`/`e`).
    X5cOnly,
    /// A malformed key listed before the key.
    AfterABrokenKey,
}

/// Which key signs a token.
#[derive(Clone, Copy)]
pub enum Signer {
    /// The key the IdP publishes.
    Published,
    /// Another key, presented under the published key's kid (a forgery).
    Unpublished,
    /// The key the IdP publishes after [`StubOp::rotate_keys`] (`test-key-b`).
    Rotated,
}

#[derive(Default)]
struct OpState {
    tokens: HashMap<String, String>,
    used: HashSet<String>,
    invalid_client: bool,
    iss_param: bool,
    userinfo: Map<String, Value>,
    token_requests: Vec<String>,
    rotated: bool,
    jwks_fetches: usize,
    discovery_fetches: usize,
    /// Discovery and the JWKS answer 503 (an IdP having an outage).
    down: bool,
    /// The JWKS alone answers 503.
    jwks_down: bool,
    jwks_shape: JwksShape,
    /// How long the token endpoint, the JWKS and userinfo wait before answering.
    slow: Option<std::time::Duration>,
    /// Token responses as some IdPs send them: `expires_in` a string, no
    /// `token_type`, labelled `text/plain`.
    quirky_token_responses: bool,
    /// How the client's authentication is refused (status, JSON body or
    /// none), and whether only in HTTP Basic (a client registered for
    /// client_secret_post).
    client_refusal: Option<(u16, Option<Value>)>,
    refuse_basic_only: bool,
    /// Every token request answered so: status, media type, body.
    token_raw: Option<(u16, String, String)>,
    /// `id_token_signing_alg_values_supported`, when not `["RS256"]`.
    algs: Option<Vec<String>>,
    /// As Entra for an application that customises its claims: tokens are
    /// signed with the application's own key (`test-key-b`), listed only by
    /// the JWKS its `?appid=` discovery document names.
    app_specific_key: bool,
    /// Userinfo answers signed (`application/jwt`), as Keycloak can be set to.
    signed_userinfo: bool,
    /// The `appid` of each discovery request that had one.
    discovery_appids: Vec<String>,
    token_endpoint: Option<String>,
    token_response: Option<Value>,
    token_redirect: Option<String>,
    /// `token_endpoint_auth_methods_supported`, when not the default.
    auth_methods: Option<Vec<String>>,
    /// Where the client's public keys are: its token requests must then
    /// carry a `private_key_jwt` assertion one of them verifies.
    client_jwks: Option<ClientJwks>,
    /// The `kid` of each client assertion accepted.
    assertion_kids: Vec<String>,
    /// The `jti` of each client assertion seen (a replay is refused).
    assertion_jtis: HashSet<String>,
    /// The audience assertions must name, when not the token endpoint.
    assertion_audience: Option<String>,
}

/// The public keys a `private_key_jwt` client is registered with.
#[derive(Clone)]
pub enum ClientJwks {
    /// Fetched from this URL at each token request (Okta's "Use a URL").
    Url(String),
    /// As pasted by an admin.
    Fixed(Value),
}

/// A running stub OP.
#[derive(Clone)]
pub struct StubOp {
    pub issuer: String,
    state: Arc<Mutex<OpState>>,
}

impl StubOp {
    /// Starts an OP; `iss_param` says whether it advertises RFC 9207.
    pub async fn start(iss_param: bool) -> StubOp {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        // A path of its own: on a database the tests share (PostgreSQL), a
        // port an earlier test's IdP had would make this issuer one another
        // customer's client already uses.
        let path = format!("/op-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let issuer = format!("http://{}{path}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(OpState { iss_param, ..Default::default() }));
        let op = StubOp { issuer: issuer.clone(), state: state.clone() };
        let data = web::Data::new(op.clone());
        let server = HttpServer::new(move || {
            App::new().app_data(data.clone()).service(
                web::scope(&path)
                    .route("/.well-known/openid-configuration", web::get().to(discovery))
                    .route("/jwks", web::get().to(jwks))
                    .route("/token", web::post().to(token))
                    .route("/userinfo", web::get().to(userinfo)),
            )
        })
        .workers(1)
        // Longer than Tandem keeps an idle connection to an IdP (30 s): a
        // request never crosses the stub closing the connection under it.
        .keep_alive(std::time::Duration::from_secs(75))
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        op
    }

    /// Makes `code` redeemable for `id_token`.
    pub fn issue(&self, code: &str, id_token: String) {
        self.state.lock().unwrap().tokens.insert(code.to_string(), id_token);
    }

    /// Has the token endpoint require `private_key_jwt` assertions that
    /// verify against `jwks`, and refuse any other client authentication.
    pub fn expect_client_assertions(&self, jwks: ClientJwks) {
        self.state.lock().unwrap().client_jwks = Some(jwks);
    }

    /// Has client assertions name `aud` instead of the token endpoint (as Auth0 wants its issuer).
    pub fn expect_assertion_audience(&self, aud: Option<&str>) {
        self.state.lock().unwrap().assertion_audience = aud.map(str::to_string);
    }

    /// The `kid` of every client assertion the token endpoint accepted.
    pub fn assertion_kids(&self) -> Vec<String> {
        self.state.lock().unwrap().assertion_kids.clone()
    }

    /// Advertises these client authentication methods in discovery.
    pub fn advertise_auth_methods(&self, methods: &[&str]) {
        self.state.lock().unwrap().auth_methods = Some(methods.iter().map(|m| m.to_string()).collect());
    }

    /// Makes the token endpoint refuse the client's credentials.
    pub fn reject_client(&self) {
        self.state.lock().unwrap().invalid_client = true;
    }

    /// Sets what userinfo returns.
    pub fn set_userinfo(&self, claims: Value) {
        self.state.lock().unwrap().userinfo = claims.as_object().cloned().unwrap_or_default();
    }

    /// Replaces the published key `test-key-a` by `test-key-b`.
    pub fn rotate_keys(&self) {
        self.state.lock().unwrap().rotated = true;
    }

    /// Makes discovery advertise `url` as the token endpoint.
    pub fn advertise_token_endpoint(&self, url: &str) {
        self.state.lock().unwrap().token_endpoint = Some(url.to_string());
    }

    /// Makes the token endpoint answer 200 with `body` for every code.
    pub fn answer_token_requests_with(&self, body: Value) {
        self.state.lock().unwrap().token_response = Some(body);
    }

    /// Makes the token endpoint answer every request with a 302 to `url`.
    pub fn redirect_token_requests_to(&self, url: &str) {
        self.state.lock().unwrap().token_redirect = Some(url.to_string());
    }

    /// How many times the JWKS was fetched.
    pub fn discovery_fetches(&self) -> usize {
        self.state.lock().unwrap().discovery_fetches
    }

    /// Makes discovery and the JWKS answer 503 (`true`) or work again.
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// Makes the JWKS alone answer 503 (`true`) or work again.
    pub fn set_jwks_down(&self, down: bool) {
        self.state.lock().unwrap().jwks_down = down;
    }

    /// Makes the token endpoint, the JWKS and userinfo each wait `by` before answering.
    pub fn set_slow(&self, by: std::time::Duration) {
        self.state.lock().unwrap().slow = Some(by);
    }

    /// Waits as long as [`StubOp::set_slow`] asked.
    async fn wait_if_slow(&self) {
        let slow = self.state.lock().unwrap().slow;
        if let Some(by) = slow {
            tokio::time::sleep(by).await;
        }
    }

    pub fn set_jwks_shape(&self, shape: JwksShape) {
        self.state.lock().unwrap().jwks_shape = shape;
    }

    pub fn answer_userinfo_signed(&self) {
        self.state.lock().unwrap().signed_userinfo = true;
    }

    pub fn sign_with_an_app_specific_key(&self) {
        self.state.lock().unwrap().app_specific_key = true;
    }

    pub fn discovery_appids(&self) -> Vec<String> {
        self.state.lock().unwrap().discovery_appids.clone()
    }

    pub fn accept_client_secret_post_only(&self) {
        self.refuse_client_with(401, Some(invalid_client()), true);
    }

    /// Refuses the client's authentication with this status and JSON body
    /// (or none); only in HTTP Basic when `basic_only`.
    pub fn refuse_client_with(&self, status: u16, body: Option<Value>, basic_only: bool) {
        let mut st = self.state.lock().unwrap();
        st.client_refusal = Some((status, body));
        st.refuse_basic_only = basic_only;
    }

    /// Answers every token request with this status, media type and body.
    pub fn answer_token_requests_raw(&self, status: u16, media_type: &str, body: &str) {
        self.state.lock().unwrap().token_raw = Some((status, media_type.into(), body.into()));
    }

    pub fn send_quirky_token_responses(&self) {
        self.state.lock().unwrap().quirky_token_responses = true;
    }

    pub fn jwks_fetches(&self) -> usize {
        self.state.lock().unwrap().jwks_fetches
    }

    /// The form bodies the token endpoint received.
    pub fn token_requests(&self) -> Vec<String> {
        self.state.lock().unwrap().token_requests.clone()
    }

    /// Signs `claims` with RS256.
    pub fn sign(&self, claims: &Value, signer: Signer, kid: &str) -> String {
        rs256(claims, signer, Some(kid))
    }

    /// Signs `claims` with RS256 under no kid.
    pub fn sign_without_kid(&self, claims: &Value, signer: Signer) -> String {
        rs256(claims, signer, None)
    }

    /// Advertises these ID-token signing algorithms.
    pub fn advertise_algs(&self, algs: &[&str]) {
        self.state.lock().unwrap().algs = Some(algs.iter().map(|a| a.to_string()).collect());
    }

    /// A token signed with HMAC (HS256) keyed with `secret`, as an IdP
    /// without a key pair signs with the client secret.
    pub fn sign_hs256(&self, claims: &Value, secret: &str) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes()))
            .unwrap()
    }

    /// A token signed with HMAC using the IdP's *public* key as the secret.
    pub fn sign_hs256_with_public_key(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("test-key-a".into());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(PUB_A)).unwrap()
    }

    /// An unsigned token (`alg: none`).
    pub fn unsigned(&self, claims: &Value) -> String {
        let h = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string());
        let c = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{h}.{c}.")
    }
}

/// `claims` signed with RS256 by `signer`'s key, under `kid` if any.
fn rs256(claims: &Value, signer: Signer, kid: Option<&str>) -> String {
    let der = match signer {
        Signer::Published => KEY_A,
        Signer::Unpublished | Signer::Rotated => KEY_B,
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(der)).unwrap()
}

fn appid(req: &HttpRequest) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes()).find(|(k, _)| k == "appid").map(|(_, v)| v.into_owned())
}

async fn discovery(op: web::Data<StubOp>, req: HttpRequest) -> HttpResponse {
    let iss = &op.issuer;
    let appid = appid(&req);
    let (iss_param, token_endpoint, algs, methods) = {
        let mut st = op.state.lock().unwrap();
        st.discovery_fetches += 1;
        st.discovery_appids.extend(appid.clone());
        if st.down {
            return HttpResponse::ServiceUnavailable().finish();
        }
        let algs = st.algs.clone().unwrap_or_else(|| vec!["RS256".into()]);
        let methods = st.auth_methods.clone().unwrap_or_else(|| {
            ["client_secret_basic", "client_secret_post", "private_key_jwt"].map(String::from).to_vec()
        });
        (st.iss_param, st.token_endpoint.clone().unwrap_or_else(|| format!("{iss}/token")), algs, methods)
    };
    HttpResponse::Ok().json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": token_endpoint,
        "jwks_uri": match &appid {
            Some(id) => format!("{iss}/jwks?appid={id}"),
            None => format!("{iss}/jwks"),
        },
        "userinfo_endpoint": format!("{iss}/userinfo"),
        "id_token_signing_alg_values_supported": algs,
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": methods,
        "authorization_response_iss_parameter_supported": iss_param,
    }))
}

async fn jwks(op: web::Data<StubOp>, req: HttpRequest) -> HttpResponse {
    op.wait_if_slow().await;
    let mut st = op.state.lock().unwrap();
    if st.app_specific_key && appid(&req).is_some() {
        let jwk: Value = serde_json::from_str(JWK_B).unwrap();
        return HttpResponse::Ok().json(json!({"keys": [jwk]}));
    }
    st.jwks_fetches += 1;
    if st.down || st.jwks_down {
        return HttpResponse::ServiceUnavailable().finish();
    }
    let mut jwk: Value = serde_json::from_str(if st.rotated { JWK_B } else { JWK_A }).unwrap();
    let keys = match st.jwks_shape {
        JwksShape::Plain => vec![jwk],
        JwksShape::PaddedModulus => {
            let mut n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
            n.insert(0, 0);
            jwk["n"] = json!(URL_SAFE_NO_PAD.encode(n));
            vec![jwk]
        }
        JwksShape::NoKids => {
            jwk.as_object_mut().unwrap().remove("kid");
            vec![jwk]
        }
        JwksShape::DuplicateKid => {
            let mut other = jwk.clone();
            other["alg"] = json!("RS512");
            vec![jwk, other]
        }
        JwksShape::X5cOnly => {
            let o = jwk.as_object_mut().unwrap();
            o.remove("n");
            o.remove("e");
            jwk["x5c"] = json!([base64::engine::general_purpose::STANDARD.encode(CERT_A)]);
            vec![jwk]
        }
        JwksShape::AfterABrokenKey => {
            vec![json!({"kty": "RSA", "kid": "broken", "n": 12345, "e": "AQAB"}), json!({"kty": "XYZ"}), jwk]
        }
    };
    HttpResponse::Ok().json(json!({"keys": keys}))
}

fn invalid_client() -> Value {
    json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})
}

/// Checks a `private_key_jwt` token request as an IdP does (RFC 7523 §3):
/// no secret, an RS256 assertion by a registered key, issued by and about
/// the client, for this token endpoint, unexpired and not seen before.
/// Returns the key's kid.
async fn check_client_assertion(
    op: &StubOp,
    req: &HttpRequest,
    body: &str,
    jwks: ClientJwks,
) -> Result<String, String> {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    if req.headers().contains_key("authorization") || form.contains_key("client_secret") {
        return Err("a client secret was sent".into());
    }
    if form.get("client_assertion_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return Err(format!("client_assertion_type is {:?}", form.get("client_assertion_type")));
    }
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let assertion = form.get("client_assertion").ok_or("no client_assertion")?;
    let keys = match jwks {
        ClientJwks::Fixed(v) => v,
        ClientJwks::Url(url) => {
            reqwest::get(&url).await.map_err(|e| e.to_string())?.json::<Value>().await.map_err(|e| e.to_string())?
        }
    };
    let header = jsonwebtoken::decode_header(assertion).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = keys["keys"].as_array().into_iter().flatten().find(|k| k["kid"] == kid.as_str()).ok_or("unknown kid")?;
    // Entra finds the certificate by x5t, its SHA-1 thumbprint.
    let cert = base64::engine::general_purpose::STANDARD
        .decode(jwk["x5c"][0].as_str().unwrap_or_default())
        .map_err(|e| e.to_string())?;
    let thumbprint = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert);
    if header.x5t.as_deref() != Some(URL_SAFE_NO_PAD.encode(thumbprint.as_ref()).as_str()) {
        return Err("x5t is not the certificate's thumbprint".into());
    }
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        jwk["n"].as_str().unwrap_or_default(),
        jwk["e"].as_str().unwrap_or_default(),
    )
    .map_err(|e| e.to_string())?;
    let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
    let aud = op.state.lock().unwrap().assertion_audience.clone();
    v.set_audience(&[aud.unwrap_or_else(|| format!("{}/token", op.issuer))]);
    v.set_issuer(&[client_id.as_str()]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(assertion, &key, &v).map_err(|e| e.to_string())?.claims;
    if claims["sub"] != client_id.as_str() {
        return Err("sub is not the client".into());
    }
    let jti = claims["jti"].as_str().ok_or("no jti")?.to_string();
    if !op.state.lock().unwrap().assertion_jtis.insert(jti) {
        return Err("the assertion was replayed".into());
    }
    Ok(kid)
}

async fn token(op: web::Data<StubOp>, req: HttpRequest, body: String) -> HttpResponse {
    op.wait_if_slow().await;
    let jwks = op.state.lock().unwrap().client_jwks.clone();
    let assertion = match jwks {
        Some(jwks) => Some(check_client_assertion(&op, &req, &body, jwks).await),
        None => None,
    };
    let mut st = op.state.lock().unwrap();
    match assertion {
        Some(Ok(kid)) => st.assertion_kids.push(kid),
        Some(Err(why)) => {
            st.token_requests.push(format!("refused: {why}"));
            return HttpResponse::Unauthorized().json(json!({"error": "invalid_client",
                "error_description": format!("AADSTS700027: Client assertion failed signature validation ({why})")}));
        }
        None => {}
    }
    st.token_requests.push(format!(
        "{} | {}",
        req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or(""),
        body
    ));
    if st.invalid_client {
        return HttpResponse::Unauthorized().json(invalid_client());
    }
    if let Some((status, body)) = &st.client_refusal {
        if !st.refuse_basic_only || req.headers().contains_key("authorization") {
            let mut answer = HttpResponse::build(actix_web::http::StatusCode::from_u16(*status).unwrap());
            return match body {
                Some(b) => answer.json(b),
                None => answer.finish(),
            };
        }
    }
    if let Some((status, media_type, body)) = &st.token_raw {
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(*status).unwrap())
            .content_type(media_type.as_str())
            .body(body.clone());
    }
    if let Some(to) = &st.token_redirect {
        return HttpResponse::Found().insert_header(("location", to.as_str())).finish();
    }
    if let Some(fixed) = &st.token_response {
        return HttpResponse::Ok().json(fixed);
    }
    let code = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    if !st.used.insert(code.clone()) {
        return HttpResponse::BadRequest()
            .json(json!({"error": "invalid_grant", "error_description": "the code was already used"}));
    }
    match st.tokens.get(&code) {
        Some(t) if st.quirky_token_responses => HttpResponse::Ok()
            .content_type("text/plain")
            .body(json!({"access_token": format!("at-{code}"), "expires_in": "3599", "id_token": t}).to_string()),
        Some(t) => HttpResponse::Ok().json(
            json!({"access_token": format!("at-{code}"), "token_type": "Bearer", "expires_in": 300, "id_token": t}),
        ),
        None => HttpResponse::BadRequest().json(json!({"error": "invalid_grant", "error_description": "unknown code"})),
    }
}

async fn userinfo(op: web::Data<StubOp>) -> HttpResponse {
    op.wait_if_slow().await;
    let st = op.state.lock().unwrap();
    if st.signed_userinfo {
        return HttpResponse::Ok().content_type("application/jwt").body("eyJhbGciOiJSUzI1NiJ9.e30.c2ln");
    }
    HttpResponse::Ok().json(Value::Object(st.userinfo.clone()))
}
