//! ID-token validation: signature against the issuer's keys, an algorithm
//! allow-list, and every claim check of OIDC Core §3.1.3.7, each failure
//! named so an admin sees *which* check failed.
//!
//! The signature is checked by jsonwebtoken on the aws-lc-rs backend; the
//! time and claim checks are done here with Tandem's clock, so expiry is
//! testable and each check has its own name.

use crate::jwks::{KeyError, KeySet};
use crate::IdpHttp;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::str::FromStr;

/// Asymmetric algorithms Tandem accepts, with the IdP's published keys.
/// Never `none`; HMAC only as [`hmac_key_bytes`] says.
pub const ACCEPTED: [&str; 9] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

/// Allowed clock skew for `exp`, `iat` and `nbf`.
pub const LEEWAY_SECS: i64 = 60;

/// A failed check: its name (`signature`, `alg`, `kid`, `iss`, `aud`,
/// `azp`, `exp`, `iat`, `nbf`, `nonce`, `sub`, `claims`, `malformed`, `jwks`,
/// and for a step-up `auth_time` and `acr`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ID token failed the {check} check: {message}")]
pub struct IdTokenError {
    pub check: &'static str,
    pub message: String,
}

fn fail(check: &'static str, message: impl Into<String>) -> IdTokenError {
    IdTokenError { check, message: message.into() }
}

/// Checks a validated token's claims against the step-up a login asked
/// for (OpenID Connect Core §3.1.2.1, §3.1.3.7 items 11 and 13): with
/// `max_age`, an `auth_time` at most that many seconds before the login
/// started (`started`, Unix seconds; with [`LEEWAY_SECS`]), so that the
/// time the user spends at the IdP does not count; with `acr_values`, an
/// `acr` among them, exactly. An IdP that ignored the request is refused,
/// not taken at its word.
pub fn check_step_up(
    claims: &serde_json::Map<String, Value>,
    max_age: Option<u32>,
    acr_values: Option<&str>,
    started: i64,
    now: DateTime<Utc>,
) -> Result<(), IdTokenError> {
    if let Some(max_age) = max_age {
        // A number, as every time claim; some IdPs send a fraction.
        let auth_time = match claims.get("auth_time") {
            None | Some(Value::Null) => {
                return Err(fail(
                    "auth_time",
                    format!(
                        "max_age {max_age} was asked for and the ID token has no auth_time (when the user signed in; \
                         Entra ID sends it only as an optional claim of the app registration)"
                    ),
                ))
            }
            Some(t) => t
                .as_i64()
                .or_else(|| t.as_f64().map(|f| f as i64))
                .ok_or_else(|| fail("auth_time", format!("auth_time {t} is not a number of seconds")))?,
        };
        let now = now.timestamp();
        if auth_time > now.saturating_add(LEEWAY_SECS) {
            return Err(fail("auth_time", format!("auth_time {auth_time} is in the future (now {now})")));
        }
        let before_start = started.saturating_sub(auth_time);
        if before_start > i64::from(max_age).saturating_add(LEEWAY_SECS) {
            return Err(fail(
                "auth_time",
                format!(
                    "the user signed in {before_start} s before the login started (auth_time {auth_time}), longer \
                     than the max_age {max_age} asked for: the IdP did not make them sign in again"
                ),
            ));
        }
    }
    if let Some(asked) = acr_values {
        let acr = claims.get("acr").and_then(Value::as_str);
        if !acr.is_some_and(|a| asked.split(' ').any(|v| v == a)) {
            return Err(fail(
                "acr",
                match acr {
                    Some(a) => format!("acr {a:?} is not among the acr_values asked for ({asked})"),
                    None => format!("acr_values {asked:?} were asked for and the ID token has no acr"),
                },
            ));
        }
    }
    Ok(())
}

/// What the token must match.
pub struct Expectations<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// The nonce sent in the authorization request.
    pub nonce: &'a str,
    /// Algorithms the IdP advertises (`id_token_signing_alg_values_supported`).
    pub advertised_algs: &'a [String],
    /// The client's secret: the key of an HMAC-signed token.
    pub client_secret: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// The algorithms accepted for an issuer: what it advertises among
/// [`ACCEPTED`], or RS256 when it advertises nothing (OIDC's default).
pub fn allowed_algorithms(advertised: &[String]) -> Vec<String> {
    if advertised.is_empty() {
        return vec!["RS256".into()];
    }
    advertised.iter().filter(|a| ACCEPTED.contains(&a.as_str())).cloned().collect()
}

/// Validates `raw` and returns its claims.
pub async fn validate(
    http: &IdpHttp,
    keys: &KeySet,
    raw: &str,
    expect: &Expectations<'_>,
) -> Result<Map<String, Value>, IdTokenError> {
    let header = read_header(raw)?;
    // RFC 7515 §4.1.11: extensions listed in `crit` must be understood; Tandem
    // understands none, so a token that names any is refused.
    if let Some(crit) = header.get("crit") {
        return Err(fail("malformed", format!("the header lists critical extensions Tandem does not support: {crit}")));
    }
    let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let allowed = allowed_algorithms(expect.advertised_algs);
    if alg_name.eq_ignore_ascii_case("none") {
        return Err(fail("alg", "unsigned tokens (alg \"none\") are never accepted"));
    }
    if alg_name.starts_with("HS") {
        let claims = verify_hmac(raw, alg_name, expect)?;
        check_claims(&claims, expect)?;
        return Ok(claims);
    }
    if !allowed.iter().any(|a| a == alg_name) {
        return Err(fail(
            "alg",
            format!(
                "alg {:?} is not among the algorithms the IdP advertises ({})",
                crate::idp_words(alg_name),
                allowed.join(", ")
            ),
        ));
    }
    let alg = Algorithm::from_str(alg_name)
        .map_err(|_| fail("alg", format!("unsupported alg {:?}", crate::idp_words(alg_name))))?;
    let kid = header.get("kid").and_then(Value::as_str);
    let key = keys.key(http, kid, alg_name).await.map_err(|e| match e {
        KeyError::Fetch(m) => fail("jwks", format!("the IdP's signing keys could not be fetched: {m}")),
        KeyError::UnknownKid { kid, skipped } if skipped.is_empty() => {
            fail("kid", format!("no signing key with kid {:?} in the IdP's key set", crate::idp_words(&kid)))
        }
        KeyError::UnknownKid { kid, skipped } => fail(
            "kid",
            format!(
                "no usable signing key with kid {:?} in the IdP's key set; keys it lists that cannot be used: {}",
                crate::idp_words(&kid),
                crate::idp_words(&skipped.join("; "))
            ),
        ),
        KeyError::NoKid => fail("kid", "the token names no kid and the IdP's key set has several keys"),
    })?;
    // The token's own words, cut as the IdP's are wherever they are shown.
    let kid_shown = || kid.map(crate::idp_words);
    let verify = |key: &crate::jwks::Key| {
        if let Some(pinned) = key.alg.as_deref().filter(|pinned| *pinned != alg_name) {
            let pinned = crate::idp_words(pinned);
            return Err(fail("alg", format!("the key {:?} is for {pinned}, the token says {alg_name}", kid_shown())));
        }
        // A key of another type (an RSA key for an ES256 token) is the
        // wrong key, not an unreadable token: jsonwebtoken would call it a
        // bad key format. As `alg`, a kid-less set is fetched again for it
        // (an IdP that replaced its one RSA key with an EC key).
        if key.decoding.family() != alg.family() {
            return Err(fail(
                "alg",
                format!("the key {:?} is a {:?} key, the token says {alg_name}", kid_shown(), key.decoding.family()),
            ));
        }
        verify_signature(raw, &key.decoding, alg, "the signature does not verify with the IdP's key")
    };
    let claims = match verify(&key) {
        // Without a kid, a key the IdP rotated in (of the same type or
        // another) is not noticed by name: the set is fetched again (at most
        // once a minute) and the key it gives is tried.
        Err(e) if kid.is_none() && matches!(e.check, "signature" | "alg") => {
            match keys.rotated_key(http, alg_name).await {
                Some(rotated) => verify(&rotated)?,
                None => return Err(e),
            }
        }
        verified => verified?,
    };
    check_claims(&claims, expect)?;
    Ok(claims)
}

/// Checks `raw`'s signature with `key` under `alg` and reads its claims;
/// the time and claim checks are [`check_claims`]'s.
fn verify_signature(
    raw: &str,
    key: &jsonwebtoken::DecodingKey,
    alg: Algorithm,
    bad_signature: &'static str,
) -> Result<Map<String, Value>, IdTokenError> {
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::new();
    let data = jsonwebtoken::decode::<Map<String, Value>>(raw, key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => fail("signature", bad_signature),
            ErrorKind::InvalidAlgorithm => fail("alg", "the algorithm does not match the key"),
            other => fail("malformed", format!("the token could not be read: {other:?}")),
        }
    })?;
    Ok(data.claims)
}

/// The shortest key an HMAC algorithm takes: its hash's output (RFC 7518
/// §3.2); `None` for any other algorithm. HMAC is accepted only with the
/// client's own secret as the key (OpenID Connect Core §10.1), only when
/// the IdP advertises it (an Authentik provider without a signing key, an
/// Auth0 application set to HS256), and never with a published key: an
/// HMAC "signed" with the IdP's public key is a classic forgery.
pub fn hmac_key_bytes(alg: &str) -> Option<usize> {
    match alg {
        "HS256" => Some(32),
        "HS384" => Some(48),
        "HS512" => Some(64),
        _ => None,
    }
}

/// A warning for a client of an IdP that signs ID tokens only with HMAC
/// (`advertised`), whose key is the client secret (`secret_bytes`, if
/// any), when no advertised algorithm can be verified with it: every login
/// would fail.
pub fn hmac_only_warning(advertised: &[String], secret_bytes: Option<usize>) -> Option<String> {
    if advertised.is_empty() || advertised.iter().any(|a| ACCEPTED.contains(&a.as_str())) {
        return None;
    }
    let hmac: Vec<(&str, usize)> =
        advertised.iter().filter_map(|a| hmac_key_bytes(a).map(|n| (a.as_str(), n))).collect();
    let shortest = hmac.iter().map(|(_, n)| *n).min()?;
    let algs = hmac.iter().map(|(a, _)| *a).collect::<Vec<_>>().join(", ");
    match secret_bytes {
        Some(n) if n >= shortest => None,
        Some(n) => Some(format!(
            "the IdP signs ID tokens only with HMAC ({algs}), keyed with the client secret, which is {n} bytes; \
             at least {shortest} are needed (RFC 7518 §3.2): logins will fail until the client has a longer secret \
             or the IdP signs with a key pair"
        )),
        None => Some(format!(
            "the IdP signs ID tokens only with HMAC ({algs}), keyed with the client secret, and this client has \
             none: logins will fail until it has one or the IdP signs with a key pair"
        )),
    }
}

/// Verifies an HMAC-signed token with the client's secret, never with a
/// key the IdP publishes.
fn verify_hmac(raw: &str, alg_name: &str, expect: &Expectations<'_>) -> Result<Map<String, Value>, IdTokenError> {
    let (Some(needed), true) = (hmac_key_bytes(alg_name), expect.advertised_algs.iter().any(|a| a == alg_name)) else {
        return Err(fail(
            "alg",
            format!(
                "HMAC-signed tokens (alg {:?}) are accepted only when the IdP advertises that algorithm in \
                 id_token_signing_alg_values_supported",
                crate::idp_words(alg_name)
            ),
        ));
    };
    let Some(secret) = expect.client_secret else {
        return Err(fail(
            "alg",
            format!(
                "the IdP signs with HMAC (alg {alg_name:?}), whose key is the client secret, and this client has \
                 none: give it the secret, or have the IdP sign with a key pair (RS256)"
            ),
        ));
    };
    if secret.len() < needed {
        return Err(fail(
            "alg",
            format!(
                "the IdP signs with {alg_name}, keyed with the client secret, which is {} bytes; {alg_name} needs at \
                 least {needed} (RFC 7518 §3.2): give the client a longer secret, or have the IdP sign with a key pair",
                secret.len()
            ),
        ));
    }
    let alg = Algorithm::from_str(alg_name).map_err(|_| fail("alg", format!("unsupported alg {alg_name:?}")))?;
    let key = jsonwebtoken::DecodingKey::from_secret(secret.as_bytes());
    verify_signature(raw, &key, alg, "the HMAC does not verify with the client secret")
}

fn read_header(raw: &str) -> Result<Map<String, Value>, IdTokenError> {
    let mut parts = raw.split('.');
    let (Some(h), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(fail("malformed", "an ID token has three dot-separated parts"));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(h.trim_end_matches('='))
        .map_err(|_| fail("malformed", "the header is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| fail("malformed", "the header is not a JSON object"))
}

fn num(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, IdTokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).map(Some).ok_or_else(|| fail_time(name))
        }
        Some(_) => Err(fail_time(name)),
    }
}

fn fail_time(name: &str) -> IdTokenError {
    let check = match name {
        "exp" => "exp",
        "iat" => "iat",
        _ => "nbf",
    };
    fail(check, format!("{name} must be a number of seconds since the epoch"))
}

/// The claim checks, in the order OIDC Core lists them.
pub fn check_claims(claims: &Map<String, Value>, expect: &Expectations<'_>) -> Result<(), IdTokenError> {
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    // Google documents `accounts.google.com` without a scheme as a form of its issuer.
    let google_bare = iss == "accounts.google.com" && tandem_core::idp::is_google_issuer(expect.issuer);
    if !tandem_core::oidc_client::same_issuer(iss, expect.issuer) && !google_bare {
        return Err(fail("iss", format!("issued by {:?}, expected {:?}", crate::idp_words(iss), expect.issuer)));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        // RFC 7519 §4.1.3: an array of strings; anything else in it is no audience to skip.
        Some(Value::Array(items)) => items.iter().map(Value::as_str).collect::<Option<Vec<_>>>().ok_or_else(|| {
            fail("aud", format!("the audience {} holds a value that is not a string", Value::Array(items.clone())))
        })?,
        _ => vec![],
    };
    if !audiences.contains(&expect.client_id) {
        return Err(fail(
            "aud",
            format!(
                "the audience {} does not include this client ({:?})",
                crate::idp_words(&format!("{audiences:?}")),
                expect.client_id
            ),
        ));
    }
    let azp = claims.get("azp").and_then(Value::as_str);
    if (audiences.len() > 1 || azp.is_some()) && azp != Some(expect.client_id) {
        return Err(fail("azp", format!("the authorized party {azp:?} is not this client ({:?})", expect.client_id)));
    }
    if claims.get("sub").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(fail("sub", "the token has no subject"));
    }
    let now = expect.now.timestamp();
    let exp = num(claims, "exp")?.ok_or_else(|| fail("exp", "the token has no expiry"))?;
    // Saturating: the times are the IdP's numbers, and may be any i64.
    if now > exp.saturating_add(LEEWAY_SECS) {
        return Err(fail("exp", format!("the token expired {}s ago", now.saturating_sub(exp))));
    }
    let iat = num(claims, "iat")?.ok_or_else(|| fail("iat", "the token has no issue time"))?;
    if iat > now.saturating_add(LEEWAY_SECS) {
        let ahead = iat.saturating_sub(now);
        return Err(fail("iat", format!("the token claims to be issued {ahead}s in the future (clock skew?)")));
    }
    if let Some(nbf) = num(claims, "nbf")? {
        if nbf > now.saturating_add(LEEWAY_SECS) {
            return Err(fail("nbf", format!("the token is not valid for another {}s", nbf.saturating_sub(now))));
        }
    }
    match claims.get("nonce").and_then(Value::as_str) {
        Some(n) if n == expect.nonce => {}
        Some(_) => return Err(fail("nonce", "the nonce does not match the one this login sent (replayed token?)")),
        None => return Err(fail("nonce", "the token carries no nonce")),
    }
    match claim_with_nul(claims) {
        Some(name) => Err(fail("claims", format!("the claim {name:?} holds the NUL character (U+0000)"))),
        None => Ok(()),
    }
}

/// The first claim holding the NUL character anywhere in its value (no
/// identity has one, and PostgreSQL cannot store it), if any.
pub fn claim_with_nul(claims: &Map<String, Value>) -> Option<&str> {
    claims
        .iter()
        .find(|(name, value)| name.contains('\0') || tandem_core::fields::nul_at(value).is_some())
        .map(|(name, _)| name.as_str())
}

#[cfg(test)]
mod step_up_tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_step_up_needs_a_recent_auth_time_and_an_acr_asked_for() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let t = now.timestamp();
        let ok =
            |c: Value, m: Option<u32>, a: Option<&str>| check_step_up(&claims(c), m, a, t, now).map_err(|e| e.check);
        assert_eq!(ok(json!({}), None, None), Ok(()));
        assert_eq!(ok(json!({"auth_time": t - 100}), Some(300), None), Ok(()));
        assert_eq!(ok(json!({"auth_time": (t - 100) as f64 + 0.5}), Some(300), None), Ok(()));
        assert_eq!(ok(json!({"auth_time": t - 300 - LEEWAY_SECS}), Some(300), None), Ok(()));
        assert_eq!(ok(json!({"auth_time": t - 301 - LEEWAY_SECS}), Some(300), None), Err("auth_time"));
        assert_eq!(ok(json!({"auth_time": t - 5}), Some(0), None), Ok(()));
        assert_eq!(ok(json!({}), Some(300), None), Err("auth_time"));
        assert_eq!(ok(json!({"auth_time": "recently"}), Some(300), None), Err("auth_time"));
        let why = check_step_up(&claims(json!({"auth_time": "recently"})), Some(1), None, t, now).unwrap_err();
        assert!(why.message.contains("not a number"), "{why}");
        // Measured from the login's start: minutes spent at the IdP do not count.
        let started = t - 240;
        let fresh = check_step_up(&claims(json!({"auth_time": started - 10})), Some(60), None, started, now);
        assert_eq!(fresh.map_err(|e| e.check), Ok(()));
        let stale = check_step_up(&claims(json!({"auth_time": started - 200})), Some(60), None, started, now);
        assert_eq!(stale.map_err(|e| e.check), Err("auth_time"));
        assert_eq!(ok(json!({"auth_time": t + 3600}), Some(300), None), Err("auth_time"));
        // Without max_age an old sign-in is no matter.
        assert_eq!(ok(json!({"auth_time": t - 86_400}), None, None), Ok(()));
        assert_eq!(ok(json!({"acr": "phr"}), None, Some("urn:okta:loa:2fa:any phr")), Ok(()));
        assert_eq!(ok(json!({"acr": "ph"}), None, Some("urn:okta:loa:2fa:any phr")), Err("acr"));
        assert_eq!(ok(json!({"acr": "1"}), None, Some("phr")), Err("acr"));
        assert_eq!(ok(json!({}), None, Some("phr")), Err("acr"));
        assert_eq!(ok(json!({"acr": 2}), None, Some("2")), Err("acr"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expect(now: i64) -> Expectations<'static> {
        Expectations {
            issuer: "https://idp.example",
            client_id: "client-1",
            nonce: "n-1",
            advertised_algs: &[],
            client_secret: None,
            now: DateTime::from_timestamp(now, 0).unwrap(),
        }
    }

    #[test]
    fn a_claim_holding_nul_is_refused_by_name() {
        let mut c = good();
        c["email"] = json!("a\u{0}@b.c");
        let err = check_claims(&claims(c), &expect(1500)).unwrap_err();
        assert_eq!(err.check, "claims");
        assert!(err.to_string().contains("\"email\""), "{err}");
        let mut c = good();
        c["groups"] = json!(["ok", {"x": "y\u{0}"}]);
        assert_eq!(check_claims(&claims(c), &expect(1500)).unwrap_err().check, "claims");
    }

    #[test]
    fn a_client_of_an_hmac_only_idp_is_warned_without_a_usable_secret() {
        let algs = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(hmac_only_warning(&algs(&["RS256", "HS256"]), None), None);
        assert_eq!(hmac_only_warning(&algs(&[]), None), None);
        assert_eq!(hmac_only_warning(&algs(&["HS256"]), Some(32)), None);
        assert!(hmac_only_warning(&algs(&["HS256"]), Some(31)).is_some_and(|w| w.contains("31 bytes")));
        assert!(hmac_only_warning(&algs(&["HS512", "none"]), None).is_some_and(|w| w.contains("has none")));
        assert_eq!(hmac_only_warning(&algs(&["HS256", "HS512"]), Some(40)), None);
    }

    #[test]
    fn google_s_issuer_without_a_scheme_is_google_s_issuer_only() {
        let mut c = good();
        c["iss"] = json!("accounts.google.com");
        let google = Expectations { issuer: "https://accounts.google.com", ..expect(1500) };
        assert!(check_claims(&claims(c.clone()), &google).is_ok());
        assert_eq!(check_claims(&claims(c), &expect(1500)).unwrap_err().check, "iss");
        let mut c = good();
        c["iss"] = json!("idp.example");
        assert_eq!(check_claims(&claims(c), &expect(1500)).unwrap_err().check, "iss");
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn good() -> Value {
        json!({"iss": "https://idp.example", "aud": "client-1", "sub": "u1", "exp": 2000, "iat": 1000, "nonce": "n-1"})
    }

    #[test]
    fn a_good_token_passes() {
        assert_eq!(check_claims(&claims(good()), &expect(1500)), Ok(()));
    }

    #[test]
    fn each_claim_failure_is_named() {
        let cases = [
            ("iss", json!({"iss": "https://evil.example"})),
            ("aud", json!({"aud": "other"})),
            ("azp", json!({"aud": ["client-1", "other"]})),
            ("azp", json!({"azp": "other"})),
            ("sub", json!({"sub": ""})),
            ("exp", json!({"exp": 1000})),
            ("iat", json!({"iat": 5000})),
            ("nbf", json!({"nbf": 5000})),
            ("nonce", json!({"nonce": "replayed"})),
        ];
        for (check, patch) in cases {
            let mut c = good();
            for (k, v) in patch.as_object().unwrap() {
                c[k] = v.clone();
            }
            let err = check_claims(&claims(c), &expect(1500)).unwrap_err();
            assert_eq!(err.check, check, "{err}");
        }
    }

    #[test]
    fn small_clock_skew_is_tolerated() {
        assert!(check_claims(&claims(good()), &expect(2000 + LEEWAY_SECS)).is_ok());
        let mut c = good();
        c["iat"] = json!(1500 + LEEWAY_SECS);
        assert!(check_claims(&claims(c), &expect(1500)).is_ok());
    }

    #[tokio::test]
    async fn critical_header_extensions_are_refused() {
        use base64::Engine;
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let raw = format!(
            "{}.{}.c2ln",
            b64(json!({"alg": "RS256", "kid": "k1", "crit": ["b64"], "b64": false})),
            b64(good())
        );
        let http = IdpHttp::new(std::time::Duration::from_secs(1)).unwrap();
        let keys = KeySet::new("http://127.0.0.1:9/jwks".into(), std::sync::Arc::new(tandem_core::clock::SystemClock));
        let err = validate(&http, &keys, &raw, &expect(1500)).await.unwrap_err();
        assert_eq!(err.check, "malformed", "{err}");
        assert!(err.to_string().contains("critical"), "{err}");
    }

    #[test]
    fn extreme_times_are_judged_without_overflow() {
        let with = |k: &str, v: Value| {
            let mut c = good();
            c[k] = v;
            check_claims(&claims(c), &expect(1500))
        };
        for far in [json!(i64::MAX), json!(i64::MAX - 30), json!(1e308), json!(u64::MAX)] {
            assert_eq!(with("exp", far.clone()), Ok(()), "exp {far}");
            assert_eq!(with("iat", far.clone()).unwrap_err().check, "iat", "iat {far}");
            assert_eq!(with("nbf", far.clone()).unwrap_err().check, "nbf", "nbf {far}");
        }
        for past in [json!(i64::MIN), json!(-1e308)] {
            let err = with("exp", past.clone()).unwrap_err();
            assert_eq!(err.check, "exp", "exp {past}");
            assert!(err.to_string().contains(&format!("{}s ago", i64::MAX)), "{err}");
        }
    }

    #[test]
    fn several_audiences_need_azp_naming_this_client() {
        let mut c = good();
        c["aud"] = json!(["client-1", "other"]);
        c["azp"] = json!("client-1");
        assert!(check_claims(&claims(c), &expect(1500)).is_ok());
    }

    #[test]
    fn an_audience_array_holding_anything_but_strings_is_refused() {
        let mut c = good();
        c["aud"] = json!(["client-1", 5]);
        let e = check_claims(&claims(c), &expect(1500)).err().unwrap_or_else(|| panic!("accepted"));
        assert_eq!(e.check, "aud");
        assert!(e.message.contains("not a string"), "{}", e.message);
    }

    #[test]
    fn allowed_algorithms_drop_none_and_hmac() {
        let adv = vec!["none".to_string(), "HS256".into(), "RS256".into(), "ES256".into()];
        assert_eq!(allowed_algorithms(&adv), ["RS256", "ES256"]);
        assert_eq!(allowed_algorithms(&[]), ["RS256"]);
    }
}
