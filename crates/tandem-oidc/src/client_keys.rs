//! Client authentication with a signed JWT (`private_key_jwt`: OIDC Core
//! §9, RFC 7523 §2.2) instead of a client secret: Microsoft recommends it
//! for Entra applications (and tenants may forbid secrets), and Okta, Auth0,
//! Keycloak and Ping take it too.
//!
//! Tandem holds the private key. Each key is RSA-2048 with a self-signed
//! certificate (rcgen on aws-lc-rs): Entra takes a certificate upload, the
//! others a JWK or a JWKS URL, and both are shown. A client has a current
//! key and, after a rotation, its previous one for a grace period, so that
//! logins go on while the IdP is given the new one.
//!
//! The assertion itself is a compact JWS written here and signed with
//! aws-lc-rs: jsonwebtoken's encoder takes RSA keys only as PKCS#1, which
//! aws-lc-rs does not export, and the JWS is three base64url parts.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Datelike, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long a certificate made for a new key is valid: Entra refuses a
/// key whose certificate has expired (AADSTS700027), so it is warned of
/// as a client secret's expiry is.
pub const CERTIFICATE_YEARS: i32 = 2;

/// Private keys kept parsed (see [`ClientKey::signing_key`]).
const MAX_PARSED_KEYS: usize = 4096;

/// How long an assertion is valid (the IdP checks `exp`; `jti` makes it single use).
const ASSERTION_LIFETIME_SECONDS: i64 = 300;

/// One signing key of a client.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientKey {
    /// The key's id: the certificate's SHA-256 thumbprint (`x5t#S256`).
    pub kid: String,
    /// The private key, PKCS#8 DER in base64.
    pkcs8: String,
    /// The self-signed certificate, DER in base64.
    certificate: String,
    pub created_at: DateTime<Utc>,
    /// The certificate's end of validity.
    pub not_after: DateTime<Utc>,
    /// For a key rotated out: until when it is still used, if the IdP refuses the current one.
    #[serde(default)]
    pub valid_until: Option<DateTime<Utc>>,
}

/// Never the private key, should a key be logged.
impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("kid", &self.kid)
            .field("pkcs8", &"***")
            .field("not_after", &self.not_after)
            .field("valid_until", &self.valid_until)
            .finish()
    }
}

/// A client's keys: the current one first, then the previous one, if any.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClientKeys {
    keys: Vec<ClientKey>,
}

fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(alg: &'static aws_lc_rs::digest::Algorithm, bytes: &[u8]) -> String {
    b64url(aws_lc_rs::digest::digest(alg, bytes).as_ref())
}

impl ClientKeys {
    /// A new key set with one key, its certificate naming `subject`.
    pub fn generate(subject: &str, now: DateTime<Utc>) -> Result<ClientKeys, String> {
        Ok(ClientKeys { keys: vec![ClientKey::generate(subject, now)?] })
    }

    /// Reads the stored form.
    pub fn parse(stored: &str) -> Result<ClientKeys, String> {
        let keys: ClientKeys =
            serde_json::from_str(stored).map_err(|e| format!("the stored client keys cannot be read: {e}"))?;
        if keys.keys.is_empty() {
            return Err("the stored client keys are empty".into());
        }
        Ok(keys)
    }

    /// The stored form.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A new current key; the current one becomes the previous one, used
    /// until `now + grace` when the IdP refuses the new one (a grace of
    /// zero drops it). An older previous key goes.
    pub fn rotate(&mut self, subject: &str, now: DateTime<Utc>, grace: Duration) -> Result<(), String> {
        let mut rotated = ClientKeys { keys: vec![ClientKey::generate(subject, now)?] };
        rotated.keep_previous(self, now, grace);
        *self = rotated;
        Ok(())
    }

    /// Keeps this set's current key, with `stored`'s current one as the
    /// previous one until `now + grace` (none when the grace is zero): a
    /// rotation's second half, also when `stored` changed since the new key
    /// was made (a concurrent edit).
    pub fn keep_previous(&mut self, stored: &ClientKeys, now: DateTime<Utc>, grace: Duration) {
        self.keys.truncate(1);
        if grace > Duration::zero() {
            let mut old = stored.current().clone();
            old.valid_until = Some(now + grace);
            self.keys.push(old);
        }
    }

    /// Ends a rotation's grace now: the previous key goes.
    pub fn drop_previous(&mut self) {
        self.keys.truncate(1);
    }

    /// The key assertions are signed with.
    pub fn current(&self) -> &ClientKey {
        &self.keys[0]
    }

    /// The rotated-out key, while its grace lasts.
    pub fn previous(&self, now: DateTime<Utc>) -> Option<&ClientKey> {
        self.keys.get(1).filter(|k| k.valid_until.is_some_and(|until| until > now))
    }

    /// The keys to try, in order: the current one, then the previous one.
    pub fn usable(&self, now: DateTime<Utc>) -> impl Iterator<Item = &ClientKey> {
        std::iter::once(self.current()).chain(self.previous(now))
    }

    /// The public JWK Set of the usable keys (RFC 7517), for an IdP that
    /// fetches the client's keys by URL.
    pub fn jwks(&self, now: DateTime<Utc>) -> Result<Value, String> {
        Ok(json!({"keys": self.usable(now).map(ClientKey::jwk).collect::<Result<Vec<_>, _>>()?}))
    }
}

impl ClientKey {
    fn generate(subject: &str, now: DateTime<Utc>) -> Result<ClientKey, String> {
        let fail = |e: rcgen::Error| format!("a client key could not be made: {e}");
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).map_err(fail)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        let mut name = rcgen::DistinguishedName::new();
        name.push(rcgen::DnType::CommonName, subject);
        params.distinguished_name = name;
        // Whole days, as certificate tools show them: from the start of
        // today (UTC) to the same day CERTIFICATE_YEARS later.
        let day = |d: DateTime<Utc>| (d.year(), d.month() as u8, d.day().min(28) as u8);
        let (y, m, d) = day(now);
        params.not_before = rcgen::date_time_ymd(y, m, d);
        params.not_after = rcgen::date_time_ymd(y + CERTIFICATE_YEARS, m, d);
        let not_after = chrono::NaiveDate::from_ymd_opt(y + CERTIFICATE_YEARS, m.into(), d.into())
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc())
            .ok_or("a client key could not be made: no end date")?;
        let cert = params.self_signed(&pair).map_err(fail)?;
        let der = cert.der().to_vec();
        Ok(ClientKey {
            kid: digest(&aws_lc_rs::digest::SHA256, &der),
            pkcs8: STANDARD.encode(pair.serialize_der()),
            certificate: STANDARD.encode(&der),
            created_at: now,
            not_after,
            valid_until: None,
        })
    }

    fn certificate_der(&self) -> Result<Vec<u8>, String> {
        STANDARD.decode(&self.certificate).map_err(|e| format!("the stored certificate cannot be read: {e}"))
    }

    /// The private key, parsed once per process: reading a PKCS#8 RSA key
    /// checks it, which cost more than the signature itself (an assertion
    /// took 982 µs with the parse and 345 µs without, in a debug build).
    fn signing_key(&self) -> Result<Arc<aws_lc_rs::rsa::KeyPair>, String> {
        static PARSED: OnceLock<Mutex<HashMap<String, Arc<aws_lc_rs::rsa::KeyPair>>>> = OnceLock::new();
        let cache = PARSED.get_or_init(Default::default);
        // By the key itself, not its kid: a row is trusted for nothing it does not prove.
        let id = digest(&aws_lc_rs::digest::SHA256, self.pkcs8.as_bytes());
        if let Some(pair) = cache.lock().ok().and_then(|c| c.get(&id).cloned()) {
            return Ok(pair);
        }
        let der = STANDARD.decode(&self.pkcs8).map_err(|e| format!("the stored client key cannot be read: {e}"))?;
        let pair = Arc::new(
            aws_lc_rs::rsa::KeyPair::from_pkcs8(&der)
                .map_err(|e| format!("the stored client key cannot be read: {e}"))?,
        );
        if let Ok(mut c) = cache.lock() {
            // Bounded: a deployment's clients' keys, twice over for rotations.
            if c.len() >= MAX_PARSED_KEYS {
                c.clear();
            }
            c.insert(id, pair.clone());
        }
        Ok(pair)
    }

    /// The certificate in PEM, to upload to the IdP (Entra: Certificates & secrets).
    pub fn certificate_pem(&self) -> String {
        let lines: Vec<&str> =
            self.certificate.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
        format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
    }

    /// The certificate's SHA-1 thumbprint in hexadecimal, as Entra lists it.
    pub fn thumbprint_sha1_hex(&self) -> String {
        let der = self.certificate_der().unwrap_or_default();
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &der)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect()
    }

    /// The public key as a JWK, with its certificate (`x5c`).
    pub fn jwk(&self) -> Result<Value, String> {
        use aws_lc_rs::signature::KeyPair;
        let pair = self.signing_key()?;
        let public = pair.public_key();
        Ok(json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": b64url(public.modulus().big_endian_without_leading_zero()),
            "e": b64url(public.exponent().big_endian_without_leading_zero()),
            "x5c": [self.certificate],
            "x5t#S256": self.kid,
        }))
    }

    /// A client assertion for `client_id` at the token endpoint `audience`
    /// (Okta and Entra require the token endpoint's URL there).
    pub fn assertion(&self, client_id: &str, audience: &str, now: DateTime<Utc>) -> Result<String, String> {
        let der = self.certificate_der()?;
        let header = json!({
            "alg": "RS256",
            "typ": "JWT",
            "kid": self.kid,
            // Entra finds the certificate by its thumbprint.
            "x5t": digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &der),
            "x5t#S256": self.kid,
        });
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).map_err(|_| "no random bytes for the assertion's jti".to_string())?;
        let iat = now.timestamp();
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": b64url(&jti),
            "iat": iat,
            // A minute early, for an IdP whose clock is behind ours.
            "nbf": iat - 60,
            "exp": iat + ASSERTION_LIFETIME_SECONDS,
        });
        let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
        let pair = self.signing_key()?;
        let mut signature = vec![0u8; pair.public_modulus_len()];
        pair.sign(
            &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut signature,
        )
        .map_err(|_| "the client assertion could not be signed".to_string())?;
        Ok(format!("{input}.{}", b64url(&signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap_or_default().with_timezone(&Utc)
    }

    #[test]
    fn an_assertion_verifies_with_the_published_jwk() -> Result<(), String> {
        let now = tandem_core::clock::Clock::now(&tandem_core::clock::SystemClock);
        let keys = ClientKeys::generate("Tandem OIDC client c1", now)?;
        let key = keys.current();
        let jwt = key.assertion("app-1", "https://idp.example/oauth2/v1/token", now)?;
        let jwk = key.jwk()?;
        let decoding = DecodingKey::from_rsa_components(
            jwk["n"].as_str().unwrap_or_default(),
            jwk["e"].as_str().unwrap_or_default(),
        )
        .map_err(|e| e.to_string())?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&["https://idp.example/oauth2/v1/token"]);
        v.set_issuer(&["app-1"]);
        let data = decode::<Value>(&jwt, &decoding, &v).map_err(|e| e.to_string())?;
        assert_eq!(data.claims["sub"], "app-1");
        assert_eq!(data.claims["exp"].as_i64(), Some(now.timestamp() + 300));
        assert_eq!(data.claims["jti"].as_str().map(str::len), Some(22));
        let header = decode_header(&jwt).map_err(|e| e.to_string())?;
        assert_eq!(header.kid.as_deref(), Some(key.kid.as_str()));
        // x5t is the certificate's SHA-1, the thumbprint Entra lists in hex.
        let x5t = URL_SAFE_NO_PAD.decode(header.x5t.unwrap_or_default()).map_err(|e| e.to_string())?;
        let hex: String = x5t.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(hex, key.thumbprint_sha1_hex());
        assert_eq!(hex.len(), 40);
        // The kid is the certificate's SHA-256, and the JWK carries the certificate.
        let der = STANDARD.decode(jwk["x5c"][0].as_str().unwrap_or_default()).map_err(|e| e.to_string())?;
        assert_eq!(digest(&aws_lc_rs::digest::SHA256, &der), key.kid);
        assert!(key.certificate_pem().starts_with("-----BEGIN CERTIFICATE-----\nMII"));
        // Another key's JWK does not verify it: the signature is refused.
        let other = ClientKeys::generate("other", now)?;
        let other_jwk = other.current().jwk()?;
        let wrong = DecodingKey::from_rsa_components(
            other_jwk["n"].as_str().unwrap_or_default(),
            other_jwk["e"].as_str().unwrap_or_default(),
        )
        .map_err(|e| e.to_string())?;
        let refused = decode::<Value>(&jwt, &wrong, &v).err().ok_or("another key's JWK verified it")?;
        assert!(matches!(refused.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature), "{refused}");
        Ok(())
    }

    #[test]
    fn rotation_keeps_the_previous_key_for_its_grace() -> Result<(), String> {
        let t0 = at("2026-12-07T10:00:00Z");
        let mut keys = ClientKeys::generate("c", t0)?;
        let first = keys.current().kid.clone();
        assert_eq!(keys.current().not_after, at("2028-12-07T00:00:00Z"));
        keys.rotate("c", t0, Duration::hours(24))?;
        assert_ne!(keys.current().kid, first);
        assert_eq!(keys.previous(t0).map(|k| k.kid.clone()), Some(first.clone()));
        assert_eq!(keys.usable(t0).count(), 2);
        assert_eq!(keys.jwks(t0)?["keys"].as_array().map(Vec::len), Some(2));
        let later = t0 + Duration::hours(25);
        assert!(keys.previous(later).is_none());
        assert_eq!(keys.jwks(later)?["keys"].as_array().map(Vec::len), Some(1));
        assert!(!format!("{keys:?}").contains(&keys.current().pkcs8));
        // The stored form reads back the same.
        assert_eq!(ClientKeys::parse(&keys.to_stored())?, keys);
        // A rotation without grace drops the previous key at once, as does ending the grace.
        keys.rotate("c", t0, Duration::zero())?;
        assert_eq!(keys.usable(t0).count(), 1);
        keys.rotate("c", t0, Duration::hours(1))?;
        let current = keys.current().kid.clone();
        keys.drop_previous();
        assert_eq!(keys.usable(t0).map(|k| k.kid.clone()).collect::<Vec<_>>(), [current]);
        // A rotation made on keys another rotation changed meanwhile keeps
        // its own new key and the other's current one as previous.
        let mut mine = keys.clone();
        mine.rotate("c", t0, Duration::hours(1))?;
        let mut theirs = keys.clone();
        theirs.rotate("c", t0, Duration::hours(1))?;
        let my_kid = mine.current().kid.clone();
        mine.keep_previous(&theirs, t0, Duration::hours(2));
        assert_eq!(mine.current().kid, my_kid);
        assert_eq!(mine.previous(t0).map(|k| k.kid.clone()), Some(theirs.current().kid.clone()));
        assert_eq!(mine.previous(t0).and_then(|k| k.valid_until), Some(t0 + Duration::hours(2)));
        assert!(ClientKeys::parse("{\"keys\": []}").is_err());
        assert!(ClientKeys::parse("not json").is_err());
        Ok(())
    }
}
