//! An issuer's signing keys (JWKS), fetched on first use, again once they
//! are an hour old (by one login, while the others use the keys held), and
//! again once when a token names an unknown `kid`, or names none and does
//! not verify with the key held — at most once a minute, so a stream of
//! forged tokens cannot make Tandem hammer the IdP. A set that lists no
//! usable key is a failed fetch: the keys held are kept.

use crate::cache::elapsed;
use crate::IdpHttp;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::DecodingKey;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use tandem_core::clock::Clock;
use tokio::sync::Mutex;

/// The least time between two fetches of one JWKS.
pub const REFETCH_INTERVAL: Duration = Duration::minutes(1);

/// While an issuer's keys were never fetched and the last try failed, how
/// long logins are refused with that failure before the IdP is asked again:
/// each try holds the set's lock up to the IdP's timeout, and logins queued
/// behind one would each wait for it in turn.
pub const FIRST_FETCH_RETRY: Duration = Duration::seconds(5);

/// How long keys are kept while their refresh fails (the IdP's JWKS
/// endpoint down): then they are dropped, as a withdrawn key must stop
/// verifying at some point whatever the endpoint does.
pub const KEYS_MAX_STALE: Duration = Duration::hours(24);

/// How long fetched keys are trusted: after that the set is fetched again
/// before use, so a key the IdP withdrew (rotated out, or leaked) stops
/// verifying tokens within this time even though its `kid` is known.
pub const KEYS_TTL: Duration = Duration::hours(1);

/// The unusable keys of a set named one by one (the rest are counted).
const MAX_SKIPPED_NAMED: usize = 5;

/// A usable key: its decoding key and the algorithm the JWK pins, if any.
#[derive(Clone)]
pub struct Key {
    pub decoding: Arc<DecodingKey>,
    pub alg: Option<String>,
}

#[derive(Default)]
struct State {
    /// Keys by `kid`; some IdPs list one key under a `kid` once per
    /// algorithm, so a `kid` may hold several.
    keys: HashMap<String, Vec<Key>>,
    /// Keys without a `kid`, in document order.
    anonymous: Vec<Key>,
    fetched: Option<DateTime<Utc>>,
    /// When the keys were fetched: `fetched` is moved on after a failed
    /// refresh (to try again a minute later), this is not.
    succeeded: Option<DateTime<Utc>>,
    /// Why the last fetch failed while no keys were held: answered again,
    /// without asking the IdP, until [`FIRST_FETCH_RETRY`] has passed.
    failed: Option<KeyError>,
    /// The keys of the last fetch that could not be used, and why: named
    /// when no key serves a token.
    skipped: Vec<String>,
    /// When a fetch was last tried, whether or not it succeeded: the refetch
    /// for an unknown `kid` waits [`REFETCH_INTERVAL`] after it, so an IdP
    /// whose JWKS fails is not asked again by every login (each of which
    /// would wait its timeout holding this set's lock).
    tried: Option<DateTime<Utc>>,
}

/// One JWKS URI's keys.
pub struct KeySet {
    uri: String,
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
}

/// Why no key could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The JWKS could not be fetched or read.
    Fetch(String),
    /// No key with that `kid`, even after a refetch; `skipped` names the
    /// keys the set lists that could not be used (it may be among them).
    UnknownKid { kid: String, skipped: Vec<String> },
    /// The token names no `kid` and the set has not exactly one key.
    NoKid,
}

impl KeySet {
    /// An empty set for `uri`; keys are fetched on first use.
    pub fn new(uri: String, clock: Arc<dyn Clock>) -> KeySet {
        KeySet { uri, state: Mutex::new(State::default()), clock }
    }

    /// The JWKS URI.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Fetches the set now.
    async fn fetch(&self, http: &IdpHttp) -> Result<State, KeyError> {
        let now = self.clock.now();
        fetch(http, &self.uri, now).await.map(|fresh| State { tried: Some(now), ..fresh })
    }

    /// The key for `kid` and `alg` (or the only key when the token names no
    /// `kid`, or the set's keys have none).
    pub async fn key(&self, http: &IdpHttp, kid: Option<&str>, alg: &str) -> Result<Key, KeyError> {
        let mut state = self.state.lock().await;
        match state.fetched {
            None => {
                if let (Some(e), Some(t)) = (&state.failed, state.tried) {
                    if !elapsed(&*self.clock, t, FIRST_FETCH_RETRY) {
                        return Err(e.clone());
                    }
                }
                match self.fetch(http).await {
                    Ok(fresh) => *state = fresh,
                    Err(e) => {
                        state.tried = Some(self.clock.now());
                        state.failed = Some(e.clone());
                        return Err(e);
                    }
                }
            }
            Some(t) if elapsed(&*self.clock, t, KEYS_TTL) => {
                // This login refreshes the keys, without holding the set:
                // the others meanwhile use the keys held (an IdP's slow key
                // endpoint would otherwise hold every login of its issuer),
                // unless those are past their day (then they wait, as none
                // may be served). The claim is the next try's time, should
                // this one be dropped midway. A token naming an unknown kid
                // meanwhile fetches the set itself (a key rotated in is not
                // kept waiting), and its set is kept over this one's.
                let stale = state.succeeded.is_none_or(|t| elapsed(&*self.clock, t, KEYS_MAX_STALE));
                let claim = Some(self.clock.now() - KEYS_TTL + REFETCH_INTERVAL);
                state.fetched = claim;
                let fetched = match stale {
                    true => self.fetch(http).await,
                    false => {
                        drop(state);
                        let fetched = self.fetch(http).await;
                        state = self.state.lock().await;
                        fetched
                    }
                };
                match fetched {
                    // Another login's fetch replaced the set meanwhile: its keys
                    // are as new as these, or newer (a kid rotated in).
                    _ if state.fetched != claim => {}
                    Ok(fresh) => *state = fresh,
                    // The IdP's JWKS is unreachable, or lists no usable key:
                    // its keys are kept rather than failing every login (for
                    // a day at most), and tried again a minute later.
                    Err(e) if state.succeeded.is_some_and(|t| !elapsed(&*self.clock, t, KEYS_MAX_STALE)) => {
                        tracing::warn!(jwks = %self.uri, error = ?e, "could not refresh an issuer's keys; keeping the ones fetched");
                        state.tried = Some(self.clock.now());
                    }
                    Err(e) => {
                        tracing::warn!(jwks = %self.uri, error = ?e, "could not refresh an issuer's keys, fetched over a day ago; dropping them");
                        *state = State { tried: Some(self.clock.now()), ..State::default() };
                        return Err(e);
                    }
                }
            }
            Some(_) => {}
        }
        if let Some(found) = lookup(&state, kid, alg) {
            return Ok(found);
        }
        // An unknown kid may be a key the IdP just rotated in.
        if kid.is_some() && self.refetch_due(&state) {
            state.tried = Some(self.clock.now());
            match self.fetch(http).await {
                Ok(fresh) => {
                    *state = fresh;
                    if let Some(found) = lookup(&state, kid, alg) {
                        return Ok(found);
                    }
                }
                Err(e) if only_kidless(&state).is_none() => return Err(e),
                Err(_) => {}
            }
        }
        match kid {
            // A set whose keys carry no kid at all (some home-grown IdPs)
            // serves its only key whatever kid the token names: the signature
            // still has to verify with it. Only after the refetch above, so
            // that a key the IdP rotated in is found within a minute.
            Some(k) => only_kidless(&state)
                .ok_or_else(|| KeyError::UnknownKid { kid: k.to_string(), skipped: state.skipped.clone() }),
            None => Err(KeyError::NoKid),
        }
    }

    /// Whether the set may be fetched again for a token's sake: at most
    /// once a [`REFETCH_INTERVAL`] after the last try, whatever its outcome.
    fn refetch_due(&self, state: &State) -> bool {
        state.tried.is_none_or(|t| elapsed(&*self.clock, t, REFETCH_INTERVAL))
    }

    /// After a token without a `kid` did not verify with the key
    /// [`KeySet::key`] gave it: the set fetched again, at most once a
    /// [`REFETCH_INTERVAL`] as for an unknown `kid`, and the key it now gives
    /// such a token. An IdP publishing one key without a kid that replaced
    /// it is followed within a minute, not after the hour the keys are
    /// trusted. When no fetch is due (another login may have just made it),
    /// the key held now; `None` when the fetch failed (the keys held are
    /// kept).
    pub async fn rotated_key(&self, http: &IdpHttp, alg: &str) -> Option<Key> {
        let mut state = self.state.lock().await;
        if self.refetch_due(&state) {
            state.tried = Some(self.clock.now());
            *state = self.fetch(http).await.ok()?;
        }
        lookup(&state, None, alg)
    }
}

/// The key a token with `kid` and `alg` names: among the entries listed
/// under that kid, or, for a token without a kid, among the set's when they
/// are all one kid's (a key listed once per algorithm) or the set is one
/// kid-less key.
fn lookup(state: &State, kid: Option<&str>, alg: &str) -> Option<Key> {
    match kid {
        Some(k) => state.keys.get(k).and_then(|listed| pick(listed, alg)),
        None if state.anonymous.is_empty() && state.keys.len() == 1 => {
            state.keys.values().next().and_then(|listed| pick(listed, alg))
        }
        None => only_kidless(state),
    }
}

/// The set's one key, when it is a single key without a kid.
fn only_kidless(state: &State) -> Option<Key> {
    match (state.keys.is_empty(), state.anonymous.as_slice()) {
        (true, [only]) => Some(only.clone()),
        _ => None,
    }
}

/// Among the entries of one kid: the one pinned to `alg`, else an unpinned
/// one of `alg`'s key type (RSA, EC, OKP), else the first (a key pinned to
/// another algorithm is returned for the caller to refuse by name).
fn pick(listed: &[Key], alg: &str) -> Option<Key> {
    let family = alg.parse::<jsonwebtoken::Algorithm>().ok().map(jsonwebtoken::Algorithm::family);
    listed
        .iter()
        .find(|k| k.alg.as_deref() == Some(alg))
        .or_else(|| listed.iter().find(|k| k.alg.is_none() && family.is_none_or(|f| k.decoding.family() == f)))
        .or_else(|| listed.first())
        .cloned()
}

/// A JWK as a decoding key. An RSA modulus or exponent with leading zero
/// bytes (Java IdPs serialise `BigInteger.toByteArray()`, which adds one to
/// about half of all moduli; RFC 7518 §6.3.1.1 notes such keys exist) is
/// read without them: aws-lc refuses zero-padded components, and would fail
/// every signature made with such a key.
fn decoding_key(jwk: &jsonwebtoken::jwk::Jwk) -> Option<DecodingKey> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    match &jwk.algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) => {
            let component = |b64: &str| -> Option<Vec<u8>> {
                let bytes = URL_SAFE_NO_PAD.decode(b64.trim_end_matches('=')).ok()?;
                let start = bytes.iter().position(|b| *b != 0)?;
                Some(bytes[start..].to_vec())
            };
            Some(DecodingKey::from_rsa_raw_components(&component(&rsa.n)?, &component(&rsa.e)?))
        }
        // EC coordinates shorter than the curve's size (Java IdPs drop
        // leading zero bytes, about one key in 128) are padded back to it:
        // as sent they make no point on the curve, and every signature fails.
        jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(ec) => {
            use jsonwebtoken::jwk::EllipticCurve;
            let size: usize = match ec.curve {
                EllipticCurve::P256 => 32,
                EllipticCurve::P384 => 48,
                EllipticCurve::P521 => 66,
                _ => return DecodingKey::from_jwk(jwk).ok(),
            };
            let padded = |b64: &str| -> Option<String> {
                let bytes = URL_SAFE_NO_PAD.decode(b64.trim_end_matches('=')).ok()?;
                // A sign byte in front (`BigInteger.toByteArray()`) is dropped too.
                let extra = bytes.len().saturating_sub(size);
                let bytes = match bytes.split_at_checked(extra) {
                    Some((front, rest)) if front.iter().all(|b| *b == 0) => rest.to_vec(),
                    _ => return None,
                };
                let short = size.checked_sub(bytes.len())?;
                let mut full = vec![0u8; short];
                full.extend_from_slice(&bytes);
                Some(URL_SAFE_NO_PAD.encode(full))
            };
            DecodingKey::from_ec_components(&padded(&ec.x)?, &padded(&ec.y)?).ok()
        }
        _ => DecodingKey::from_jwk(jwk).ok(),
    }
}

async fn fetch(http: &IdpHttp, uri: &str, now: DateTime<Utc>) -> Result<State, KeyError> {
    let resp = http.get_json(uri, None).await.map_err(|e| KeyError::Fetch(format!("{uri}: {e}")))?;
    if !resp.status().is_success() {
        return Err(KeyError::Fetch(format!("{uri} answered HTTP {}", resp.status())));
    }
    let body = crate::read_limited(resp, 512 * 1024, "the key set")
        .await
        .map_err(|e| KeyError::Fetch(format!("{uri}: {e}")))?;
    let set: Value =
        serde_json::from_slice(&body).map_err(|e| KeyError::Fetch(format!("{uri}: not a JWK set ({e})")))?;
    let Some(listed) = set.get("keys").and_then(Value::as_array) else {
        return Err(KeyError::Fetch(format!("{uri}: not a JWK set (no \"keys\" array)")));
    };
    let mut state = State { fetched: Some(now), succeeded: Some(now), ..Default::default() };
    let mut skipped_more = 0usize;
    // Each key on its own: one the set gets wrong (or of a type Tandem does
    // not know) is skipped and named, and the others still serve.
    for (i, raw) in listed.iter().enumerate() {
        let kid = raw.get("kid").and_then(Value::as_str);
        if raw.get("use").and_then(Value::as_str) == Some("enc") {
            continue;
        }
        match key_of(raw) {
            Ok(key) => match kid {
                Some(kid) => state.keys.entry(kid.to_string()).or_default().push(key),
                None => state.anonymous.push(key),
            },
            // The IdP's own words (a kid, a parse error), cut; a few keys named, the rest counted.
            Err(why) if state.skipped.len() < MAX_SKIPPED_NAMED => {
                let named = kid.map(|k| format!(" ({k:?})")).unwrap_or_default();
                state.skipped.push(crate::idp_words(&format!("key {i}{named}: {why}")));
            }
            Err(_) => skipped_more += 1,
        }
    }
    if skipped_more > 0 {
        state.skipped.push(format!("{skipped_more} more"));
    }
    if state.keys.is_empty() && state.anonymous.is_empty() {
        // An IdP's deploy or cache answering an empty set for a moment must
        // not replace the keys held: a failed fetch, which keeps them.
        let why = match state.skipped.is_empty() {
            true => String::new(),
            false => format!(" ({})", state.skipped.join("; ")),
        };
        return Err(KeyError::Fetch(format!("{uri}: the key set lists no usable signing key{why}")));
    }
    if !state.skipped.is_empty() {
        tracing::warn!(jwks = %uri, skipped = ?state.skipped, "keys of an IdP's key set cannot be used and were skipped");
    }
    Ok(state)
}

/// One JWK as a usable key: from its parameters (`n`/`e`, `x`/`y`), or,
/// when an RSA or EC key is published only as its certificate chain
/// (`x5c`, as some AD FS and PingFederate set-ups do), from the first
/// certificate's public key. The certificate is not checked as a chain or
/// for its dates: the key set itself, fetched from the IdP's `jwks_uri`, is
/// what vouches for the key, as it does for one given by its parameters.
fn key_of(raw: &Value) -> Result<Key, String> {
    let alg = raw.get("alg").and_then(Value::as_str).map(str::to_string);
    let kty = raw.get("kty").and_then(Value::as_str).unwrap_or_default();
    if !matches!(kty, "RSA" | "EC" | "OKP" | "oct") {
        return Err(format!("key type {kty:?} is not one Tandem verifies with"));
    }
    let typed = serde_json::from_value::<Jwk>(raw.clone());
    if let Some(decoding) = typed.as_ref().ok().and_then(decoding_key) {
        return Ok(Key { decoding: Arc::new(decoding), alg });
    }
    let first_cert = raw.get("x5c").and_then(Value::as_array).and_then(|c| c.first()).and_then(Value::as_str);
    match (kty, first_cert) {
        ("RSA" | "EC", Some(cert)) => {
            let lines: Vec<&str> = cert.as_bytes().chunks(64).filter_map(|c| std::str::from_utf8(c).ok()).collect();
            let pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"));
            let decoding = match kty {
                "RSA" => DecodingKey::from_rsa_pem(pem.as_bytes()),
                _ => DecodingKey::from_ec_pem(pem.as_bytes()),
            };
            decoding
                .map(|d| Key { decoding: Arc::new(d), alg })
                .map_err(|e| format!("its x5c certificate holds no {kty} public key ({e})"))
        }
        _ => Err(match typed {
            Err(e) => format!("malformed ({e})"),
            Ok(_) => "its parameters make no usable key".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::decoding_key;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use jsonwebtoken::{Algorithm, EncodingKey, Header, Validation};

    /// A P-256 key whose x coordinate starts with a zero byte, published as
    /// Java IdPs do, without it: tokens it signs verify.
    #[test]
    fn ec_coordinates_without_their_leading_zeros_are_read_at_full_size() {
        let rng = SystemRandom::new();
        let (pkcs8, point) = (0..100_000)
            .find_map(|_| {
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).ok()?;
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).ok()?;
                let point = pair.public_key().as_ref().to_vec();
                (point[1] == 0).then(|| (pkcs8.as_ref().to_vec(), point))
            })
            .unwrap();
        let (x, y) = (&point[1..33], &point[33..65]);
        let short_x = URL_SAFE_NO_PAD.encode(&x[1..]);
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(serde_json::json!(
            {"kty": "EC", "crv": "P-256", "x": short_x, "y": URL_SAFE_NO_PAD.encode(y), "kid": "k1"}
        ))
        .unwrap();
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::ES256),
            &serde_json::json!({"sub": "u1", "exp": 4_000_000_000u64}),
            &EncodingKey::from_ec_der(&pkcs8),
        )
        .unwrap();
        let key = decoding_key(&jwk).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_aud = false;
        let verified = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation);
        assert!(verified.is_ok(), "{verified:?}");
        // With a zero sign byte in front it is the same key; with any other, none.
        let signed = URL_SAFE_NO_PAD.encode([&[0u8][..], x].concat());
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(serde_json::json!(
            {"kty": "EC", "crv": "P-256", "x": signed, "y": URL_SAFE_NO_PAD.encode(y)}
        ))
        .unwrap();
        assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &decoding_key(&jwk).unwrap(), &validation).is_ok());
        let long = URL_SAFE_NO_PAD.encode([&[1u8][..], x].concat());
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(serde_json::json!(
            {"kty": "EC", "crv": "P-256", "x": long, "y": URL_SAFE_NO_PAD.encode(y)}
        ))
        .unwrap();
        assert!(decoding_key(&jwk).is_none());
    }

    /// A P-256 key pair (PKCS#8) and its JWK without a kid.
    fn kidless_es256() -> (Vec<u8>, serde_json::Value) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])});
        (pkcs8.as_ref().to_vec(), jwk)
    }

    /// A JWKS endpoint answering one key set, which the test changes, how
    /// many requests it had, and a key set of it on a frozen clock.
    struct Served {
        doc: std::sync::Arc<std::sync::Mutex<String>>,
        fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        /// How long the endpoint waits before it answers, in milliseconds.
        delay_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
        clock: std::sync::Arc<tandem_core::clock::ShiftedClock>,
        keys: super::KeySet,
        http: crate::IdpHttp,
    }

    impl Served {
        async fn start(jwk: serde_json::Value) -> Served {
            use std::sync::{atomic::AtomicUsize, Arc, Mutex};
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let doc = Arc::new(Mutex::new(String::new()));
            let fetches = Arc::new(AtomicUsize::new(0));
            let delay_ms = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let uri = format!("http://{}/jwks", listener.local_addr().unwrap());
            let (body, count, delay) = (doc.clone(), fetches.clone(), delay_ms.clone());
            tokio::spawn(async move {
                while let Ok((mut sock, _)) = listener.accept().await {
                    let (body, count, delay) = (body.clone(), count.clone(), delay.clone());
                    tokio::spawn(async move {
                        let mut buf = [0u8; 4096];
                        let _ = sock.read(&mut buf).await;
                        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        // The set as it is when asked, answered after the delay.
                        let doc = body.lock().unwrap().clone();
                        let wait = delay.load(std::sync::atomic::Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{doc}",
                            doc.len()
                        );
                        let _ = sock.write_all(answer.as_bytes()).await;
                    });
                }
            });
            let clock = Arc::new(tandem_core::clock::ShiftedClock::default());
            clock.freeze();
            let keys = super::KeySet::new(uri, clock.clone());
            let http = crate::IdpHttp::new(std::time::Duration::from_secs(60)).unwrap();
            let served = Served { doc, fetches, delay_ms, clock, keys, http };
            served.serve(jwk);
            served
        }

        /// From now on the set is this one key.
        fn serve(&self, jwk: serde_json::Value) {
            self.serve_set(serde_json::json!({"keys": [jwk]}));
        }

        /// From now on the endpoint answers `set`.
        fn serve_set(&self, set: serde_json::Value) {
            *self.doc.lock().unwrap() = set.to_string();
        }

        fn fetches(&self) -> usize {
            self.fetches.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    /// An IdP that moved its one kid-less key from P-256 (pinned to ES256)
    /// to P-384: a token signed with the new key is refused by the old key's
    /// algorithm, not its signature, and still refetches the set.
    #[tokio::test]
    async fn a_kidless_key_replaced_by_another_type_is_followed() {
        use aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED_SIGNING;
        let (_, mut old_jwk) = kidless_es256();
        old_jwk["alg"] = "ES256".into();
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
        let point = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref())
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec();
        let new_jwk = serde_json::json!({"kty": "EC", "crv": "P-384", "alg": "ES384",
            "x": URL_SAFE_NO_PAD.encode(&point[1..49]), "y": URL_SAFE_NO_PAD.encode(&point[49..97])});
        let set = Served::start(old_jwk).await;
        assert!(set.keys.key(&set.http, None, "ES256").await.is_ok());
        set.serve(new_jwk);
        set.clock.advance(chrono::Duration::seconds(61));
        let now = tandem_core::clock::Clock::now(&*set.clock);
        let claims = serde_json::json!({"iss": "https://idp.example", "aud": "client-1", "sub": "u1",
            "nonce": "n-1", "iat": now.timestamp(), "exp": now.timestamp() + 300});
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::ES384), &claims, &EncodingKey::from_ec_der(pkcs8.as_ref()))
                .unwrap();
        let algs = ["ES256".to_string(), "ES384".to_string()];
        let expect = crate::id_token::Expectations {
            issuer: "https://idp.example",
            client_id: "client-1",
            nonce: "n-1",
            advertised_algs: &algs,
            client_secret: None,
            now,
        };
        let verified = crate::id_token::validate(&set.http, &set.keys, &token, &expect).await;
        assert!(verified.is_ok(), "{verified:?}");
        assert_eq!(set.fetches(), 2);
    }

    /// A kid-less key the IdP rotated is found by a refetch, at most once a
    /// minute; a login that asks again within it (it held the old key while
    /// another login refetched) gets the key held now, without a fetch.
    #[tokio::test]
    async fn a_kidless_rotation_is_followed_once_a_minute_and_shared() {
        let (old_pkcs8, old_jwk) = kidless_es256();
        let (new_pkcs8, new_jwk) = kidless_es256();
        let set = Served::start(old_jwk).await;
        let (keys, http) = (&set.keys, &set.http);
        let signed = |pkcs8: &[u8]| {
            let claims = serde_json::json!({"sub": "u1", "exp": 4_000_000_000u64});
            jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &EncodingKey::from_ec_der(pkcs8)).unwrap()
        };
        let verifies = |key: &super::Key, token: &str| {
            let mut validation = Validation::new(Algorithm::ES256);
            validation.validate_aud = false;
            jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &validation).is_ok()
        };
        let held = keys.key(http, None, "ES256").await.unwrap_or_else(|e| panic!("{e:?}"));
        assert!(verifies(&held, &signed(&old_pkcs8)));
        set.serve(new_jwk);
        let token = signed(&new_pkcs8);
        assert!(!verifies(&held, &token));
        // Within the minute of the first fetch: no refetch; the key held is the old one.
        let within = keys.rotated_key(http, "ES256").await.unwrap_or_else(|| panic!("no key"));
        assert!(!verifies(&within, &token));
        assert_eq!(set.fetches(), 1);
        set.clock.advance(chrono::Duration::seconds(61));
        let rotated = keys.rotated_key(http, "ES256").await.unwrap_or_else(|| panic!("no key"));
        assert!(verifies(&rotated, &token));
        assert_eq!(set.fetches(), 2);
        // Another login that held the old key meanwhile: the new one, no fetch.
        let shared = keys.rotated_key(http, "ES256").await.unwrap_or_else(|| panic!("no key"));
        assert!(verifies(&shared, &token));
        assert_eq!(set.fetches(), 2);
    }

    /// The same with the old key not pinned to an algorithm (`alg` is
    /// optional in a JWK), replaced by a key of another family (here P-256
    /// by Ed25519; RSA by EC alike): the held key's type is an `alg`
    /// failure, not an unreadable token, and refetches the set once a
    /// minute as ever.
    #[tokio::test]
    async fn an_unpinned_kidless_key_replaced_by_another_family_is_followed() {
        use aws_lc_rs::signature::Ed25519KeyPair;
        let (_, old_jwk) = kidless_es256();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let new_jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519",
                                         "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())});
        let set = Served::start(old_jwk).await;
        let (keys, http) = (&set.keys, &set.http);
        assert!(keys.key(http, None, "ES256").await.is_ok());
        set.serve(new_jwk);
        let now = tandem_core::clock::Clock::now(&*set.clock);
        let claims = serde_json::json!({"iss": "https://idp.example", "aud": "client-1", "sub": "u1",
            "nonce": "n-1", "iat": now.timestamp(), "exp": now.timestamp() + 300});
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &EncodingKey::from_ed_der(pkcs8.as_ref()))
                .unwrap();
        let advertised = ["ES256".to_string(), "EdDSA".to_string()];
        let expect = |now| crate::id_token::Expectations {
            issuer: "https://idp.example",
            client_id: "client-1",
            nonce: "n-1",
            advertised_algs: &advertised,
            client_secret: None,
            now,
        };
        // Within the minute of the first fetch: the P-256 key held, refused by its type.
        let refused = crate::id_token::validate(http, keys, &token, &expect(now)).await.unwrap_err();
        assert_eq!(refused.check, "alg", "{refused}");
        assert!(refused.to_string().contains("Ec key"), "{refused}");
        assert_eq!(set.fetches(), 1);
        set.clock.advance(chrono::Duration::seconds(61));
        let verified =
            crate::id_token::validate(http, keys, &token, &expect(tandem_core::clock::Clock::now(&*set.clock))).await;
        assert_eq!(verified.map(|c| c["sub"].clone()).map_err(|e| e.to_string()), Ok(serde_json::json!("u1")));
        assert_eq!(set.fetches(), 2);
    }

    /// A refresh answered by a set with no usable key (an IdP's deploy or
    /// cache answering `{"keys": []}` for a moment) is a failed fetch: the
    /// keys held keep serving, and the set is asked again a minute later. A
    /// first fetch of such a set says why no key serves.
    #[tokio::test]
    async fn a_set_without_a_usable_key_does_not_replace_the_keys_held() {
        let (_, jwk) = kidless_es256();
        let set = Served::start(jwk).await;
        let (keys, http) = (&set.keys, &set.http);
        assert!(keys.key(http, None, "ES256").await.is_ok());
        for (empty, fetches) in [
            (serde_json::json!({"keys": []}), 2),
            (
                serde_json::json!({"keys": [{"kty": "XYZ", "kid": "odd"}, {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}]}),
                3,
            ),
        ] {
            set.serve_set(empty.clone());
            set.clock.advance(super::KEYS_TTL + chrono::Duration::seconds(1));
            assert!(keys.key(http, None, "ES256").await.is_ok(), "{empty}");
            assert_eq!(set.fetches(), fetches, "{empty}");
            // Within the minute after: the keys held, no fetch.
            assert!(keys.key(http, None, "ES256").await.is_ok(), "{empty}");
            assert_eq!(set.fetches(), fetches, "{empty}");
        }
        let fresh = super::KeySet::new(keys.uri().to_string(), set.clock.clone());
        match fresh.key(http, None, "ES256").await {
            Err(super::KeyError::Fetch(why)) => {
                assert!(why.contains("lists no usable signing key") && why.contains("\"odd\""), "{why}")
            }
            Err(e) => panic!("{e:?}"),
            Ok(_) => panic!("a key from an unusable set"),
        }
    }

    /// The hourly refresh is made by one login while the others go on with
    /// the keys held: an IdP's slow key endpoint holds that login only.
    #[tokio::test]
    async fn an_hourly_refresh_holds_no_other_login() {
        let (_, jwk) = kidless_es256();
        let set = Served::start(jwk).await;
        let (keys, http) = (&set.keys, &set.http);
        assert!(keys.key(http, None, "ES256").await.is_ok());
        set.delay_ms.store(2_000, std::sync::atomic::Ordering::SeqCst);
        set.clock.advance(super::KEYS_TTL + chrono::Duration::seconds(1));
        let refreshing = async {
            let got = keys.key(http, None, "ES256").await;
            (got.is_ok(), std::time::Instant::now())
        };
        let other = async {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let got = keys.key(http, None, "ES256").await;
            (got.is_ok(), std::time::Instant::now())
        };
        let ((refreshed, refresh_done), (served, other_done)) = tokio::join!(refreshing, other);
        assert!(refreshed && served);
        assert!(
            other_done + std::time::Duration::from_millis(1_000) < refresh_done,
            "the other login waited for the refresh"
        );
        assert_eq!(set.fetches(), 2, "one refresh");
    }

    /// A token naming a kid rotated in while the hourly refresh is under
    /// way fetches the set itself, and the newer set it got is kept over
    /// the refresh's older one.
    #[tokio::test]
    async fn a_set_fetched_for_a_new_kid_during_a_refresh_is_kept() {
        let ((_, mut old), (_, mut new)) = (kidless_es256(), kidless_es256());
        old["kid"] = "old".into();
        new["kid"] = "new".into();
        let set = Served::start(old.clone()).await;
        let (keys, http) = (&set.keys, &set.http);
        assert!(keys.key(http, Some("old"), "ES256").await.is_ok());
        set.delay_ms.store(1_500, std::sync::atomic::Ordering::SeqCst);
        set.clock.advance(super::KEYS_TTL + chrono::Duration::seconds(1));
        let refreshing = keys.key(http, Some("old"), "ES256");
        let rotated = async {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            set.delay_ms.store(0, std::sync::atomic::Ordering::SeqCst);
            set.serve_set(serde_json::json!({"keys": [old, new]}));
            keys.key(http, Some("new"), "ES256").await.is_ok()
        };
        let (refreshed, found) = tokio::join!(refreshing, rotated);
        assert!(refreshed.is_ok() && found);
        assert_eq!(set.fetches(), 3);
        assert!(keys.key(http, Some("new"), "ES256").await.is_ok(), "the new kid, after the refresh ended");
        assert_eq!(set.fetches(), 3);
    }
}
