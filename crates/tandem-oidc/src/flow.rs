//! The authorization-code flow against one IdP: the authorization URL (with
//! state, nonce and PKCE S256), the code exchange, and userinfo.
//!
//! Built on the `oauth2` crate, the foundation of `openidconnect`: its
//! request building and token-endpoint handling are what is needed, while
//! openidconnect's typed ID-token parsing is bypassed — Tandem validates the
//! raw token itself (see `id_token`) so each failed check is reported by
//! name instead of as a parse error, at a tenth of the cost.

use crate::client_keys::{ClientKeys, ASSERTION_TYPE};
use crate::discovery::ProviderMetadata;
use crate::{idp_words, IdpHttp};
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AccessToken, AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, StandardRevocableToken, TokenResponse,
    TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tandem_core::oidc_client::AssertionAudience;

/// A token response as IdPs send it. oauth2's standard response refuses a
/// missing `token_type`, an `expires_in` sent as a string (`"3599"`: Entra's
/// v1 endpoint, Nextcloud and others) or a `scope` it cannot split, although
/// Tandem uses none of them: only the tokens are read strictly, the rest as
/// far as it can be.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Tokens {
    access_token: AccessToken,
    #[serde(default = "bearer", deserialize_with = "lenient_token_type")]
    token_type: BasicTokenType,
    #[serde(default, deserialize_with = "lenient_seconds")]
    expires_in: Option<u64>,
    /// Kept raw: validated by `id_token`.
    #[serde(default)]
    id_token: Option<String>,
}

fn bearer() -> BasicTokenType {
    BasicTokenType::Bearer
}

fn lenient_token_type<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BasicTokenType, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(t)) if t.eq_ignore_ascii_case("mac") => BasicTokenType::Mac,
        Some(Value::String(t)) if !t.eq_ignore_ascii_case("bearer") => BasicTokenType::Extension(t),
        _ => BasicTokenType::Bearer,
    })
}

fn lenient_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

impl TokenResponse for Tokens {
    type TokenType = BasicTokenType;
    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }
    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }
    fn expires_in(&self) -> Option<std::time::Duration> {
        self.expires_in.map(std::time::Duration::from_secs)
    }
    fn refresh_token(&self) -> Option<&oauth2::RefreshToken> {
        None
    }
    fn scopes(&self) -> Option<&Vec<Scope>> {
        None
    }
}
/// A client with only the endpoint one step uses: the authorization
/// endpoint (`A`) or the token endpoint (`T`).
type OAuthClient<A, T> = oauth2::Client<
    BasicErrorResponse,
    Tokens,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    A,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    T,
>;

/// The registration of Tandem at one IdP.
pub struct ClientConfig<'a> {
    pub client_id: &'a str,
    pub client_secret: Option<&'a str>,
    pub redirect_url: &'a str,
    /// Scopes beyond `openid email profile`.
    pub additional_scopes: &'a [String],
    /// Asked for in place of `openid email profile`, when the client sets them.
    pub base_scopes: Option<&'a [String]>,
    /// With `private_key_jwt`: the client's keys, the time its assertions
    /// are made at, and the audience they name.
    pub client_keys: Option<(&'a ClientKeys, chrono::DateTime<chrono::Utc>, AssertionAudience)>,
}

/// Why the flow could not proceed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// A URL from the configuration or the metadata is unusable.
    #[error("{0}")]
    BadUrl(String),
    /// The token endpoint refused the client's credentials: `invalid_client`,
    /// or any answer with HTTP 401 (Auth0 answers `access_denied`, Keycloak
    /// `unauthorized_client`, some an empty body).
    #[error("the IdP rejected the client credentials ({error}){}", desc(.description))]
    InvalidClient { error: String, description: Option<String> },
    /// The token endpoint refused the exchange for another reason.
    #[error("the IdP refused the code exchange: {error}{}", desc(.description))]
    Refused { error: String, description: Option<String> },
    /// The IdP could not be reached or answered garbage.
    #[error("{0}")]
    Transport(String),
    /// The token response could not be read.
    #[error("the token response could not be read: {0}")]
    Malformed(String),
    /// The token response has no `id_token` (the `openid` scope was ignored?).
    #[error("the token response has no id_token")]
    NoIdToken,
}

/// An error answer's `error_description`, cut ([`idp_words`]).
fn described(r: &oauth2::StandardErrorResponse<BasicErrorResponseType>) -> Option<String> {
    r.error_description().map(|d| idp_words(d))
}

fn desc(d: &Option<String>) -> String {
    d.as_ref().map(|d| format!(": {d}")).unwrap_or_default()
}

/// An endpoint as parsed at discovery, or parsed now (metadata not from discovery).
fn endpoint(parsed: Option<&url::Url>, raw: &str, name: &str) -> Result<url::Url, FlowError> {
    match parsed {
        Some(u) => Ok(u.clone()),
        None => url::Url::parse(raw).map_err(|e| FlowError::BadUrl(format!("{name}: {e}"))),
    }
}

fn redirect(cfg: &ClientConfig<'_>) -> Result<RedirectUrl, FlowError> {
    RedirectUrl::new(cfg.redirect_url.to_string()).map_err(|e| FlowError::BadUrl(format!("redirect_url: {e}")))
}

/// The client that builds the authorization URL.
fn auth_client(
    meta: &ProviderMetadata,
    cfg: &ClientConfig<'_>,
) -> Result<OAuthClient<EndpointSet, EndpointNotSet>, FlowError> {
    let parsed = meta.endpoints().map(|e| &e.authorization);
    let auth = AuthUrl::from_url(endpoint(parsed, &meta.authorization_endpoint, "authorization_endpoint")?);
    Ok(oauth2::Client::new(ClientId::new(cfg.client_id.to_string()))
        .set_auth_uri(auth)
        .set_redirect_uri(redirect(cfg)?))
}

/// The client that exchanges a code at the token endpoint.
fn token_client(
    meta: &ProviderMetadata,
    cfg: &ClientConfig<'_>,
    auth_type: AuthType,
    with_secret: bool,
) -> Result<OAuthClient<EndpointNotSet, EndpointSet>, FlowError> {
    let parsed = meta.endpoints().map(|e| &e.token);
    let token = TokenUrl::from_url(endpoint(parsed, &meta.token_endpoint, "token_endpoint")?);
    let mut c = oauth2::Client::new(ClientId::new(cfg.client_id.to_string()))
        .set_token_uri(token)
        .set_redirect_uri(redirect(cfg)?)
        .set_auth_type(auth_type);
    if let Some(secret) = cfg.client_secret.filter(|_| with_secret) {
        c = c.set_client_secret(ClientSecret::new(secret.to_string()));
    }
    Ok(c)
}

/// Builds the authorization URL carrying `state`, `nonce`, with a
/// `pkce_verifier` (RFC 7636: 43-128 unreserved characters) its S256
/// challenge, and `extra` parameters (`login_hint`, `prompt`: checked by
/// the caller).
pub fn authorization_url(
    meta: &ProviderMetadata,
    cfg: &ClientConfig<'_>,
    state: &str,
    nonce: &str,
    pkce_verifier: Option<&str>,
    extra: &[(&'static str, &str)],
) -> Result<String, FlowError> {
    let c = auth_client(meta, cfg)?;
    let state = state.to_string();
    let mut req = c.authorize_url(move || CsrfToken::new(state)).add_extra_param("nonce", nonce.to_string());
    const DEFAULT_SCOPES: [&str; 3] = ["openid", "email", "profile"];
    let base: Vec<&str> = match cfg.base_scopes {
        Some(base) => base.iter().map(String::as_str).collect(),
        None => DEFAULT_SCOPES.to_vec(),
    };
    // Each scope once, in the order first named (a client's additional
    // scopes may repeat the base ones, or themselves).
    let mut asked: Vec<&str> = Vec::new();
    for s in base.into_iter().chain(cfg.additional_scopes.iter().map(String::as_str)) {
        if !asked.contains(&s) {
            asked.push(s);
            req = req.add_scope(Scope::new(s.to_string()));
        }
    }
    for (name, value) in extra {
        req = req.add_extra_param(*name, value.to_string());
    }
    if let Some(v) = pkce_verifier {
        req =
            req.set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(v.to_string())));
    }
    let (url, _) = req.url();
    Ok(url.to_string())
}

/// Why the token request got no answer to read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TokenTransport(String);

/// What the token endpoint returned.
pub struct TokenSet {
    pub id_token: String,
    pub access_token: String,
    /// How the client authenticated (`client_secret_basic`, `client_secret_post`,
    /// `private_key_jwt`, or `private_key_jwt (previous key)`).
    pub client_auth: &'static str,
}

/// The client authentication of a login the IdP took only with a
/// `private_key_jwt` client's previous key.
pub const PREVIOUS_KEY_AUTH: &str = "private_key_jwt (previous key)";

/// The same, when the current key could not sign at all (damaged).
pub const PREVIOUS_KEY_AUTH_CURRENT_UNUSABLE: &str = "private_key_jwt (previous key; the current key cannot sign)";

/// How a client secret is sent to the token endpoint, by its discovery name.
fn auth_method(auth_type: &AuthType) -> &'static str {
    match auth_type {
        AuthType::RequestBody => "client_secret_post",
        _ => "client_secret_basic",
    }
}

/// Exchanges an authorization code for tokens.
///
/// The secret goes in HTTP Basic, OAuth's default, unless the IdP lists only
/// `client_secret_post`. An IdP that lists both may still hold a client to
/// the method it was registered with (Auth0, OneLogin, JumpCloud, Ory Hydra,
/// Authelia, PingFederate) and refuse the other (`invalid_client`, or any
/// error with HTTP 401: Auth0 answers `access_denied`): the exchange is
/// then tried once with the other listed method (a refused client
/// authentication leaves the code unspent). When that is refused as a
/// client authentication too, the first refusal is the answer; when it
/// failed past the client authentication (an expired code), its own error is.
///
/// A `private_key_jwt` client sends an assertion signed with its current
/// key, and when the IdP refuses it, once more with its previous key while
/// that key's grace lasts (the IdP has not been given the new one yet).
pub async fn exchange_code(
    http: &IdpHttp,
    meta: &ProviderMetadata,
    cfg: &ClientConfig<'_>,
    code: &str,
    pkce_verifier: Option<String>,
) -> Result<TokenSet, FlowError> {
    if let Some((keys, now, audience)) = cfg.client_keys {
        let audience = match audience {
            AssertionAudience::TokenEndpoint => meta.token_endpoint.as_str(),
            // As the discovery document publishes it (Auth0's ends in `/`).
            AssertionAudience::Issuer => meta.issuer.as_str(),
        };
        let mut refused = None;
        let mut current_unusable = false;
        for (i, key) in keys.usable(now).enumerate() {
            // A key that cannot sign (damaged) is refused as the IdP would refuse it.
            let assertion = match key.assertion(cfg.client_id, audience, now) {
                Ok(a) => a,
                Err(e) => {
                    current_unusable |= i == 0;
                    refused.get_or_insert(FlowError::InvalidClient {
                        error: "unusable_client_key".into(),
                        description: Some(e),
                    });
                    continue;
                }
            };
            let method = match (i, current_unusable) {
                (0, _) => "private_key_jwt",
                (_, false) => PREVIOUS_KEY_AUTH,
                (_, true) => PREVIOUS_KEY_AUTH_CURRENT_UNUSABLE,
            };
            let auth = ClientAuth { auth_type: AuthType::RequestBody, method, assertion: Some(assertion) };
            match exchange_once(http, meta, cfg, code, pkce_verifier.clone(), auth).await {
                Err(e @ FlowError::InvalidClient { .. }) => {
                    refused.get_or_insert(e);
                }
                done => return done,
            }
        }
        return Err(refused.unwrap_or_else(|| FlowError::InvalidClient {
            error: "unusable_client_key".into(),
            description: Some("the client has no key to sign with".into()),
        }));
    }
    let secret_auth = |auth_type: AuthType| ClientAuth { method: auth_method(&auth_type), auth_type, assertion: None };
    let listed = |m: &str| meta.token_endpoint_auth_methods_supported.iter().any(|l| l == m);
    // Discovery that lists no method (`client_secret_basic` by default,
    // OpenID Connect Discovery §3) says nothing of the other: it is tried.
    let unlisted = meta.token_endpoint_auth_methods_supported.is_empty();
    let (first, other) = if listed("client_secret_post") && !listed("client_secret_basic") {
        (AuthType::RequestBody, AuthType::BasicAuth)
    } else {
        (AuthType::BasicAuth, AuthType::RequestBody)
    };
    let refused = match exchange_once(http, meta, cfg, code, pkce_verifier.clone(), secret_auth(first)).await {
        Err(e @ FlowError::InvalidClient { .. })
            if cfg.client_secret.is_some() && (unlisted || listed(auth_method(&other))) =>
        {
            e
        }
        done => return done,
    };
    match exchange_once(http, meta, cfg, code, pkce_verifier, secret_auth(other)).await {
        Err(FlowError::InvalidClient { .. }) => Err(refused),
        done => done,
    }
}

/// How one token request authenticates the client.
struct ClientAuth {
    auth_type: AuthType,
    /// Its name in the login event.
    method: &'static str,
    /// A `private_key_jwt` assertion, sent in place of a secret.
    assertion: Option<String>,
}

async fn exchange_once(
    http: &IdpHttp,
    meta: &ProviderMetadata,
    cfg: &ClientConfig<'_>,
    code: &str,
    pkce_verifier: Option<String>,
    auth: ClientAuth,
) -> Result<TokenSet, FlowError> {
    let client_auth = auth.method;
    let c = token_client(meta, cfg, auth.auth_type, auth.assertion.is_none())?;
    let mut req = c.exchange_code(AuthorizationCode::new(code.to_string()));
    if let Some(assertion) = auth.assertion {
        req =
            req.add_extra_param("client_assertion_type", ASSERTION_TYPE).add_extra_param("client_assertion", assertion);
    }
    if let Some(v) = pkce_verifier {
        req = req.set_pkce_verifier(PkceCodeVerifier::new(v));
    }
    // The answer's status and media type, for what oauth2's errors leave out.
    let seen: std::sync::Mutex<Option<(reqwest::StatusCode, String)>> = std::sync::Mutex::new(None);
    let seen_ref = &seen;
    // oauth2's own reqwest client reads the answer whole; this one stops at
    // DOCUMENT_LIMIT, as every other IdP response is cut off at its limit.
    let limited = |request: oauth2::HttpRequest| async move {
        let unreachable = |why: String| TokenTransport(format!("the token endpoint could not be reached: {why}"));
        let transport = |e: reqwest::Error| unreachable(crate::describe_transport_error(&e));
        let request: reqwest::Request = request.try_into().map_err(transport)?;
        http.refuse_private(request.url().as_str()).map_err(unreachable)?;
        let response = http.client().execute(request).await.map_err(transport)?;
        let status = response.status();
        let media = response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if let Ok(mut slot) = seen_ref.lock() {
            *slot = Some((status, media.to_string()));
        }
        // A redirect or an error status with no body is no OAuth answer: say
        // what came (a 401 is a refused client authentication all the same).
        if status.is_redirection() || (!status.is_success() && response.content_length() == Some(0)) {
            let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(crate::idp_words);
            return Err(TokenTransport(match location {
                Some(to) => format!("the token endpoint answered HTTP {status} to {to}; redirects are not followed"),
                None => format!("the token endpoint answered HTTP {status} with no body"),
            }));
        }
        let mut answer = oauth2::http::Response::builder().status(status);
        for (name, value) in response.headers() {
            // A JSON answer labelled `text/plain` is read as JSON all the
            // same; any other label (an HTML page) is kept, for oauth2 to name.
            if name == reqwest::header::CONTENT_TYPE && media_type_is(value, "text/plain") {
                answer = answer.header(name, "application/json");
                continue;
            }
            answer = answer.header(name, value);
        }
        let body =
            crate::read_limited(response, crate::DOCUMENT_LIMIT, "the token response").await.map_err(TokenTransport)?;
        answer.body(body).map_err(|e| TokenTransport(e.to_string()))
    };
    let result = req.request_async(&limited).await;
    let (status, media) = seen.lock().ok().and_then(|s| s.clone()).unwrap_or_default();
    let unauthorized = status == reqwest::StatusCode::UNAUTHORIZED;
    // What came, for an answer that could not be read (an HTML error page).
    let answered = |m: String| match media.as_str() {
        "" if status.is_success() => m,
        "" => format!("{m} (HTTP {status})"),
        media => format!("{m} (HTTP {status}, {media})"),
    };
    // An answer that could not be read: with a 401, still a refused client authentication.
    let unreadable = |m: String| {
        if unauthorized {
            FlowError::InvalidClient { error: "HTTP 401".into(), description: Some(answered(m)) }
        } else {
            FlowError::Malformed(answered(m))
        }
    };
    let refused = |r: oauth2::basic::BasicErrorResponse| match r.error() {
        BasicErrorResponseType::InvalidClient => {
            FlowError::InvalidClient { error: "invalid_client".into(), description: described(&r) }
        }
        // A 401 refuses the client's authentication, whatever error code
        // an IdP puts on it; an `invalid_grant` (an expired code) is the code's.
        other if unauthorized && !matches!(other, BasicErrorResponseType::InvalidGrant) => {
            FlowError::InvalidClient { error: idp_words(other.as_ref()), description: described(&r) }
        }
        other => FlowError::Refused { error: idp_words(other.as_ref()), description: described(&r) },
    };
    let tokens = result.map_err(|e| match e {
        RequestTokenError::ServerResponse(r) => refused(r),
        RequestTokenError::Request(e) if unauthorized => {
            FlowError::InvalidClient { error: "HTTP 401".into(), description: Some(idp_words(&e.0)) }
        }
        RequestTokenError::Request(e) => FlowError::Transport(e.0),
        // A 200 holding an OAuth error (some IdPs answer `invalid_grant` so,
        // which oauth2 reads as tokens only) is that error; otherwise never
        // the body: a 200 that fails to parse still holds the tokens.
        RequestTokenError::Parse(e, body) => match serde_json::from_slice::<oauth2::basic::BasicErrorResponse>(&body) {
            Ok(r) => refused(r),
            Err(_) => unreadable(e.to_string()),
        },
        RequestTokenError::Other(m) => unreadable(m),
    })?;
    let id_token = tokens.id_token.ok_or(FlowError::NoIdToken)?;
    Ok(TokenSet { id_token, access_token: tokens.access_token.into_secret(), client_auth })
}

/// Whether a `Content-Type` value names `media_type` (parameters aside).
fn media_type_is(value: &reqwest::header::HeaderValue, media_type: &str) -> bool {
    value.to_str().is_ok_and(|v| v.trim_start().to_ascii_lowercase().starts_with(media_type))
}

/// Fetches the userinfo claims (plain JSON responses only).
pub async fn userinfo(
    http: &IdpHttp,
    meta: &ProviderMetadata,
    access_token: &str,
) -> Result<Map<String, Value>, String> {
    let Some(endpoint) = &meta.userinfo_endpoint else { return Err("the IdP has no userinfo endpoint".into()) };
    let resp = http.get_json(endpoint, Some(access_token)).await?;
    if !resp.status().is_success() {
        return Err(format!("userinfo answered HTTP {}", resp.status()));
    }
    if resp.headers().get(reqwest::header::CONTENT_TYPE).is_some_and(|v| media_type_is(v, "application/jwt")) {
        return Err("the IdP answers userinfo signed (application/jwt), which Tandem does not read: have it answer \
                    userinfo as JSON (Keycloak: the client's \"User info signed response algorithm\" unset)"
            .into());
    }
    let body = crate::read_limited(resp, crate::DOCUMENT_LIMIT, "the userinfo response").await?;
    serde_json::from_slice::<Map<String, Value>>(&body).map_err(|e| format!("userinfo is not a JSON object: {e}"))
}
