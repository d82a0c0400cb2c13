//! OpenID Connect Discovery 1.0: fetching and checking an issuer's metadata.

use crate::IdpHttp;
use serde::{Deserialize, Serialize};

/// The parts of an OpenID Provider's metadata Tandem uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub code_challenge_methods_supported: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub authorization_response_iss_parameter_supported: bool,
    /// The authorization and token endpoints as parsed when the metadata
    /// was checked, so a login does not parse them again (~9 k instructions
    /// each, four times per login). Set only by [`discover`], from the two
    /// fields above; see [`ProviderMetadata::endpoints`].
    #[serde(skip)]
    endpoints: Option<Endpoints>,
}

impl ProviderMetadata {
    /// The endpoints as parsed by [`discover`]; `None` for metadata built
    /// another way, whose endpoints are parsed where they are used.
    pub fn endpoints(&self) -> Option<&Endpoints> {
        self.endpoints.as_ref()
    }
}

/// An optional member sent as `null` (seen from Cognito) reads as absent,
/// where serde's `default` alone would fail the whole document.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An issuer's endpoints, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoints {
    pub authorization: url::Url,
    pub token: url::Url,
}

/// Discovery failed: the URL tried and why, in words an admin can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("OIDC discovery at {url} failed: {reason}")]
pub struct DiscoveryError {
    /// The metadata URL that was fetched.
    pub url: String,
    /// What went wrong.
    pub reason: String,
}

/// The metadata URL of an issuer; with `appid`, Microsoft Entra's form for
/// one application (`?appid=<client id>`), whose `jwks_uri` also lists the
/// application's own signing key: Entra signs with it the tokens of an
/// application that customises its claims (a claims-mapping policy, an
/// enterprise application's "Attributes & Claims"), and that key is in no
/// other key set. Without such a key the answer is the tenant's.
pub fn metadata_url(issuer: &str, appid: Option<&str>) -> String {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    match appid {
        Some(id) => format!("{url}?appid={}", url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()),
        None => url,
    }
}

/// Fetches and checks the metadata of `issuer` (for one Entra application:
/// see [`metadata_url`]).
pub async fn discover(http: &IdpHttp, issuer: &str, appid: Option<&str>) -> Result<ProviderMetadata, DiscoveryError> {
    let url = metadata_url(issuer, appid);
    let fail = |reason: String| DiscoveryError { url: url.clone(), reason };
    let response = http.get_json(&url, None).await.map_err(fail)?;
    let status = response.status();
    if status.is_redirection() {
        let location =
            response.headers().get("location").and_then(|v| v.to_str().ok()).map_or("?".into(), crate::idp_words);
        return Err(fail(format!(
            "the IdP answered with a redirect ({status}) to {location}; redirects are not followed — check the issuer"
        )));
    }
    if !status.is_success() {
        return Err(fail(format!("the IdP answered HTTP {status}; check the issuer (Okta domain, Entra tenant id)")));
    }
    let body = crate::read_limited(response, crate::DOCUMENT_LIMIT, "the metadata document").await.map_err(fail)?;
    let mut metadata: ProviderMetadata = serde_json::from_slice(&body).map_err(|e| {
        fail(format!("the metadata is not a valid OpenID Provider document: {}", crate::idp_words(&e.to_string())))
    })?;
    metadata.endpoints = Some(check(&metadata, issuer).map_err(fail)?);
    Ok(metadata)
}

fn check(m: &ProviderMetadata, issuer: &str) -> Result<Endpoints, String> {
    if !tandem_core::oidc_client::same_issuer(&m.issuer, issuer) {
        return Err(format!(
            "the metadata names issuer {:?}, not the configured {:?} (OpenID Connect Discovery §4.3)",
            crate::idp_words(&m.issuer),
            issuer
        ));
    }
    // An https issuer's endpoints are https too (OpenID Connect Discovery
    // §3): its metadata must not point Tandem at plain-HTTP hosts, such as a
    // cloud metadata service or another internal address.
    let tls = issuer.starts_with("https://");
    let http_url = |name: &str, value: &str| {
        let shown = crate::idp_words(value);
        let parsed = url::Url::parse(value).map_err(|e| format!("{name} {shown:?} is not an absolute URL ({e})"))?;
        match parsed.scheme() {
            "https" => Ok(parsed),
            "http" if !tls => Ok(parsed),
            "http" => Err(format!("{name} {shown:?} is plain http, but the issuer is https")),
            _ => Err(format!("{name} {shown:?} is not an http(s) URL")),
        }
    };
    let authorization = http_url("authorization_endpoint", &m.authorization_endpoint)?;
    let token = http_url("token_endpoint", &m.token_endpoint)?;
    http_url("jwks_uri", &m.jwks_uri)?;
    if let Some(userinfo) = &m.userinfo_endpoint {
        http_url("userinfo_endpoint", userinfo)?;
    }
    if !m.id_token_signing_alg_values_supported.is_empty()
        && m.id_token_signing_alg_values_supported.iter().all(|a| a == "none")
    {
        return Err("the IdP issues only unsigned ID tokens ('none'), which Tandem does not accept".into());
    }
    Ok(Endpoints { authorization, token })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(issuer: &str) -> ProviderMetadata {
        ProviderMetadata {
            issuer: issuer.into(),
            authorization_endpoint: format!("{issuer}/authorize"),
            token_endpoint: format!("{issuer}/token"),
            jwks_uri: format!("{issuer}/jwks"),
            userinfo_endpoint: None,
            end_session_endpoint: None,
            id_token_signing_alg_values_supported: vec!["RS256".into()],
            code_challenge_methods_supported: vec![],
            token_endpoint_auth_methods_supported: vec![],
            authorization_response_iss_parameter_supported: false,
            endpoints: None,
        }
    }

    #[test]
    fn issuer_mismatch_is_refused_with_both_values() {
        let err = check(&meta("https://evil.example"), "https://acme.okta.com").unwrap_err();
        assert!(err.contains("evil.example") && err.contains("acme.okta.com"));
    }

    #[test]
    fn trailing_slash_difference_is_tolerated() {
        assert!(check(&meta("https://acme.okta.com/"), "https://acme.okta.com").is_ok());
    }

    /// An IdP that publishes its host in capitals (an AD FS federation
    /// service identifier) is the client's lower-case issuer; its path is not.
    #[test]
    fn the_host_s_case_is_no_difference_and_the_path_s_is() {
        assert!(check(&meta("https://ADFS.Contoso.com/adfs"), "https://adfs.contoso.com/adfs").is_ok());
        assert!(check(&meta("https://adfs.contoso.com/ADFS"), "https://adfs.contoso.com/adfs").is_err());
    }

    #[test]
    fn the_checked_endpoints_are_kept_parsed() {
        let found = check(&meta("https://acme.okta.com"), "https://acme.okta.com").unwrap();
        assert_eq!(found.authorization.as_str(), "https://acme.okta.com/authorize");
        assert_eq!(found.token.as_str(), "https://acme.okta.com/token");
    }

    #[test]
    fn an_https_issuer_cannot_point_at_plain_http_endpoints() {
        for field in ["token_endpoint", "jwks_uri", "userinfo_endpoint", "authorization_endpoint"] {
            let mut m = meta("https://a.example");
            let bad = "http://169.254.169.254/latest/meta-data".to_string();
            match field {
                "token_endpoint" => m.token_endpoint = bad,
                "jwks_uri" => m.jwks_uri = bad,
                "userinfo_endpoint" => m.userinfo_endpoint = Some(bad),
                _ => m.authorization_endpoint = bad,
            }
            let err = check(&m, "https://a.example").unwrap_err();
            assert!(err.contains(field) && err.contains("plain http"), "{err}");
        }
        // A plain-http issuer (loopback in development) may use http endpoints.
        assert!(check(&meta("http://127.0.0.1:9000"), "http://127.0.0.1:9000").is_ok());
    }

    #[test]
    fn optional_members_sent_as_null_read_as_absent() {
        let doc = serde_json::json!({"issuer": "https://a.example", "authorization_endpoint": "https://a.example/authorize",
            "token_endpoint": "https://a.example/token", "jwks_uri": "https://a.example/jwks", "userinfo_endpoint": null,
            "id_token_signing_alg_values_supported": null, "code_challenge_methods_supported": null,
            "token_endpoint_auth_methods_supported": null, "authorization_response_iss_parameter_supported": null});
        let m: ProviderMetadata = serde_json::from_value(doc).unwrap();
        assert!(m.code_challenge_methods_supported.is_empty() && m.userinfo_endpoint.is_none());
        assert!(!m.authorization_response_iss_parameter_supported);
    }

    #[test]
    fn providers_of_unsigned_tokens_only_are_refused() {
        let mut m = meta("https://a.example");
        m.id_token_signing_alg_values_supported = vec!["none".into()];
        assert!(check(&m, "https://a.example").is_err());
        // HMAC with the client secret is a signature (OpenID Connect Core §10.1).
        m.id_token_signing_alg_values_supported = vec!["none".into(), "HS256".into()];
        assert!(check(&m, "https://a.example").is_ok());
    }
}
