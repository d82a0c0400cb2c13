//! A login between initiate and complete, carried by the login itself
//! instead of a database row.
//!
//! The OAuth `state` parameter is the login sealed with a key derived from
//! the deployment's (`SecretKey::seal`, bound to its own context): its id, client, expiry, the
//! OIDC nonce, the PKCE verifier, a digest of the app's cookie, and the
//! step-up the app asked for (`max_age`, `acr_values`). Only
//! Tandem can read or forge it, any node sharing the key can complete the
//! login, and starting a login writes nothing the completion has to find.
//! The cookie value the app keeps is a random secret (plus the
//! post-login redirect, which it hands back at completion); the state
//! binds it, so a callback completes only with the cookie issued beside it.
//! Single use is the database's job: the first completion claims the login
//! id (see `tandem_store::sso::claim_login`).
//!
//! Written by hand: this is a fixed binary layout of a few fields, sealed
//! with aws-lc's AEAD; a JWT/JWE crate would add a JSON header and a second
//! encoding of the same bytes to every login URL.

use crate::secret::{Redacted, SecretKey};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use std::fmt;

/// The layout's version: the first byte of a state, in clear (so a later
/// layout or key can be told apart before opening), and part of what the
/// sealed bytes are bound to. A login that asks for a step-up (`max_age`,
/// `acr_values`) is sealed as version 2, which adds them; every other one
/// stays version 1, which releases before step-ups open too.
const VERSION: u8 = 1;
const VERSION_STEP_UP: u8 = 2;
/// What the sealed bytes are bound to, so a state cannot be taken for any other sealed value.
const CONTEXT: &[u8] = b"tandem:login-state:v1";
const FLAG_PKCE: u8 = 1;
const FLAG_MAX_AGE: u8 = 2;
const FLAG_ACR: u8 = 4;
/// The longest `acr_values` a login carries.
pub const MAX_ACR_VALUES_BYTES: usize = 256;
const _: () = assert!(MAX_ACR_VALUES_BYTES <= u16::MAX as usize);
const DIGEST_LEN: usize = 16;
const SECRET_LEN: usize = 32;
/// flags, id, expiry, cookie digest, nonce.
const FIXED_LEN: usize = 1 + 16 + 8 + DIGEST_LEN + SECRET_LEN;
/// The longest state opened: far more than a state with a client id of
/// Tandem's own (a UUID) takes, about 230 characters, or about 600 with
/// the longest step-up.
const MAX_STATE_CHARS: usize = 1024;

/// A login between initiate and complete.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginState {
    /// A UUIDv7 whose timestamp is when the login started (sealed with it:
    /// `max_age` counts from there).
    id: uuid::Uuid,
    /// The OIDC client the login is for.
    pub oidc_client_id: String,
    /// When the login expires, in microseconds since the Unix epoch.
    pub expires_at: i64,
    nonce: [u8; SECRET_LEN],
    pkce_verifier: Option<[u8; SECRET_LEN]>,
    /// OIDC `max_age`: the user must have authenticated at the IdP at most
    /// this many seconds before the login started (the ID token's
    /// `auth_time` says when).
    max_age: Option<u32>,
    /// OIDC `acr_values` (space-separated, at most [`MAX_ACR_VALUES_BYTES`]):
    /// the ID token's `acr` must be one of them.
    acr_values: Option<String>,
}

impl fmt::Debug for LoginState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginState")
            .field("id", &self.id)
            .field("oidc_client_id", &self.oidc_client_id)
            .field("expires_at", &self.expires_at)
            .field("pkce", &self.pkce_verifier.is_some())
            .finish_non_exhaustive()
    }
}

/// What initiate hands out for one login.
pub struct Issued {
    /// The OAuth `state` parameter (the sealed login), for the IdP URL.
    pub state: String,
    /// The value the app keeps in an HttpOnly cookie and hands back.
    pub cookie: Redacted<String>,
}

/// A state that opened: the login, and the digest of the cookie issued with it.
#[derive(Debug)]
pub struct OpenedState {
    pub login: LoginState,
    cookie_digest: [u8; DIGEST_LEN],
}

/// The cookie is not the one issued with the state (missing, another
/// login's, or altered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotBound;

impl LoginState {
    /// A new login for `oidc_client_id` started at `now`, with a new
    /// time-ordered id of that time, a random nonce and, when the client
    /// uses PKCE, a random verifier.
    pub fn new(oidc_client_id: &str, now: DateTime<Utc>, expires_at: i64, uses_pkce: bool) -> LoginState {
        let mut nonce = [0u8; SECRET_LEN];
        crate::keys::fill_random(&mut nonce);
        let pkce_verifier = uses_pkce.then(|| {
            let mut v = [0u8; SECRET_LEN];
            crate::keys::fill_random(&mut v);
            v
        });
        let (secs, nanos) = (u64::try_from(now.timestamp()).unwrap_or(0), now.timestamp_subsec_nanos());
        // RFC 9562 §6.2, method 3: the 12 bits after the millisecond hold
        // its fraction, so ids order by their start to about 0.25 µs (the
        // rest is random). Not `uuid::ContextV7`, which keeps ids monotonic
        // by moving a timestamp forward: the id must say when it started.
        let fraction = u128::from(nanos % 1_000_000) * 4096 / 1_000_000;
        let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix_time(secs, nanos, fraction, 12));
        LoginState {
            id,
            oidc_client_id: oidc_client_id.to_string(),
            expires_at,
            nonce,
            pkce_verifier,
            max_age: None,
            acr_values: None,
        }
    }

    /// The same login asking the IdP for a step-up: an authentication at
    /// most `max_age` seconds old, and one of `acr_values`. `acr_values`
    /// longer than [`MAX_ACR_VALUES_BYTES`] are refused, never dropped: a
    /// step-up asked for is never a plain login.
    pub fn with_step_up(mut self, max_age: Option<u32>, acr_values: Option<&str>) -> Result<LoginState, String> {
        if acr_values.is_some_and(|a| a.len() > MAX_ACR_VALUES_BYTES) {
            return Err(format!("acr_values must be at most {MAX_ACR_VALUES_BYTES} bytes"));
        }
        self.max_age = max_age;
        self.acr_values = acr_values.map(str::to_string);
        Ok(self)
    }

    /// The step-up's `max_age`, if one was asked for.
    pub fn max_age(&self) -> Option<u32> {
        self.max_age
    }

    /// The step-up's `acr_values`, if any were asked for.
    pub fn acr_values(&self) -> Option<&str> {
        self.acr_values.as_deref()
    }

    /// When the login started, in Unix seconds (its id's timestamp, to the
    /// millisecond, rounded down); `None` for an id that holds no time
    /// (not a UUIDv7: never one Tandem sealed).
    pub fn started_at(&self) -> Option<i64> {
        self.id.get_timestamp().and_then(|t| i64::try_from(t.to_unix().0).ok())
    }

    /// The login's id, which is also its login event's.
    pub fn id(&self) -> String {
        self.id.to_string()
    }

    /// The OIDC `nonce` (43 URL-safe characters).
    pub fn nonce(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.nonce)
    }

    /// The PKCE code verifier (43 URL-safe characters, RFC 7636 §4.1), when the client uses PKCE.
    pub fn pkce_verifier(&self) -> Option<Redacted<String>> {
        self.pkce_verifier.map(|v| Redacted(URL_SAFE_NO_PAD.encode(v)))
    }

    /// Seals the login into its `state` and makes the cookie bound to it,
    /// carrying `post_login_redirect_url` back to the completion.
    pub fn issue(&self, key: &SecretKey, post_login_redirect_url: Option<&str>) -> Issued {
        let cookie = crate::keys::random_token(SECRET_LEN);
        let cookie = match post_login_redirect_url {
            Some(url) => format!("{cookie}.{}", URL_SAFE_NO_PAD.encode(url)),
            None => cookie,
        };
        let mut plain = Vec::with_capacity(FIXED_LEN + SECRET_LEN + self.oidc_client_id.len());
        let mut flags = if self.pkce_verifier.is_some() { FLAG_PKCE } else { 0 };
        if self.max_age.is_some() {
            flags |= FLAG_MAX_AGE;
        }
        if self.acr_values.is_some() {
            flags |= FLAG_ACR;
        }
        plain.push(flags);
        plain.extend_from_slice(self.id.as_bytes());
        plain.extend_from_slice(&self.expires_at.to_be_bytes());
        plain.extend_from_slice(&cookie_digest(&cookie));
        plain.extend_from_slice(&self.nonce);
        if let Some(v) = &self.pkce_verifier {
            plain.extend_from_slice(v);
        }
        if let Some(m) = self.max_age {
            plain.extend_from_slice(&m.to_be_bytes());
        }
        if let Some(a) = &self.acr_values {
            // At most MAX_ACR_VALUES_BYTES (with_step_up refuses more): fits in a u16.
            let len = u16::try_from(a.len()).unwrap_or(u16::MAX);
            plain.extend_from_slice(&len.to_be_bytes());
            plain.extend_from_slice(&a.as_bytes()[..usize::from(len)]);
        }
        plain.extend_from_slice(self.oidc_client_id.as_bytes());
        let version = if flags & (FLAG_MAX_AGE | FLAG_ACR) != 0 { VERSION_STEP_UP } else { VERSION };
        let mut bytes = vec![version];
        bytes.extend_from_slice(&key.seal(&plain, &context(version)));
        Issued { state: URL_SAFE_NO_PAD.encode(bytes), cookie: Redacted(cookie) }
    }
}

/// Opens a callback's `state`; `None` when Tandem (with this key) did not
/// issue it: made up, altered, or from another deployment.
pub fn open(key: &SecretKey, state: &str) -> Option<OpenedState> {
    if state.len() > MAX_STATE_CHARS {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(state).ok()?;
    let (&version, sealed) = bytes.split_first()?;
    if version != VERSION && version != VERSION_STEP_UP {
        return None;
    }
    let plain = key.open(sealed, &context(version))?;
    // Sealed by Tandem, so well formed; checked anyway rather than trusted.
    let (head, rest) = plain.split_at_checked(FIXED_LEN)?;
    let flags = head[0];
    let known = if version == VERSION { FLAG_PKCE } else { FLAG_PKCE | FLAG_MAX_AGE | FLAG_ACR };
    if flags & !known != 0 {
        return None;
    }
    let pkce = flags & FLAG_PKCE != 0;
    let id = uuid::Uuid::from_slice(&head[1..17]).ok()?;
    let expires_at = i64::from_be_bytes(head[17..25].try_into().ok()?);
    let cookie_digest: [u8; DIGEST_LEN] = head[25..25 + DIGEST_LEN].try_into().ok()?;
    let nonce: [u8; SECRET_LEN] = head[25 + DIGEST_LEN..].try_into().ok()?;
    let (pkce_verifier, rest) = if pkce {
        let (v, rest) = rest.split_at_checked(SECRET_LEN)?;
        (Some(<[u8; SECRET_LEN]>::try_from(v).ok()?), rest)
    } else {
        (None, rest)
    };
    let (max_age, rest) = if flags & FLAG_MAX_AGE != 0 {
        let (m, rest) = rest.split_at_checked(4)?;
        (Some(u32::from_be_bytes(m.try_into().ok()?)), rest)
    } else {
        (None, rest)
    };
    let (acr_values, client) = if flags & FLAG_ACR != 0 {
        let (len, rest) = rest.split_at_checked(2)?;
        let (acr, rest) = rest.split_at_checked(u16::from_be_bytes(len.try_into().ok()?).into())?;
        (Some(String::from_utf8(acr.to_vec()).ok()?), rest)
    } else {
        (None, rest)
    };
    let oidc_client_id = String::from_utf8(client.to_vec()).ok()?;
    Some(OpenedState {
        login: LoginState { id, oidc_client_id, expires_at, nonce, pkce_verifier, max_age, acr_values },
        cookie_digest,
    })
}

impl OpenedState {
    /// Checks that `cookie` is the one issued with this state; the
    /// post-login redirect it carries.
    pub fn bind(&self, cookie: Option<&str>) -> Result<Option<String>, NotBound> {
        let cookie = cookie.filter(|c| !c.is_empty()).ok_or(NotBound)?;
        verify_slices_are_equal(&cookie_digest(cookie), &self.cookie_digest).map_err(|_| NotBound)?;
        match cookie.split_once('.') {
            None => Ok(None),
            Some((_, url)) => {
                let bytes = URL_SAFE_NO_PAD.decode(url).map_err(|_| NotBound)?;
                String::from_utf8(bytes).map(Some).map_err(|_| NotBound)
            }
        }
    }
}

/// What the sealed bytes are bound to: the context and the version byte.
fn context(version: u8) -> [u8; CONTEXT.len() + 1] {
    let mut c = [version; CONTEXT.len() + 1];
    c[..CONTEXT.len()].copy_from_slice(CONTEXT);
    c
}

fn cookie_digest(cookie: &str) -> [u8; DIGEST_LEN] {
    let d = digest::digest(&digest::SHA256, cookie.as_bytes());
    let mut out = [0u8; DIGEST_LEN];
    out.copy_from_slice(&d.as_ref()[..DIGEST_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::generate().unwrap().0
    }

    fn when() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 123_456_789).unwrap()
    }

    /// The login's start is its id's timestamp, sealed with it; ids of one
    /// millisecond order by their start, and one started earlier after a
    /// later one still says when it started.
    #[test]
    fn a_login_carries_its_start_in_its_id() {
        let k = key();
        let login = LoginState::new("c", when(), 5, false).with_step_up(Some(60), None).unwrap();
        assert_eq!(login.started_at(), Some(1_790_000_000));
        let opened = open(&k, &login.issue(&k, None).state).unwrap();
        assert_eq!(opened.login.started_at(), Some(1_790_000_000));
        let ids: Vec<uuid::Uuid> =
            (0..50).map(|n| LoginState::new("c", when() + chrono::Duration::microseconds(n), 5, false).id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(ids.iter().all(|id| id.get_version_num() == 7));
        let later = LoginState::new("c", when() + chrono::Duration::seconds(90), 5, false);
        assert_eq!(later.started_at(), Some(1_790_000_090));
        assert_eq!(LoginState::new("c", when(), 5, false).started_at(), Some(1_790_000_000));
        let mut v4 = LoginState::new("c", when(), 5, false);
        v4.id = uuid::Uuid::new_v4();
        assert_eq!(v4.started_at(), None);
    }

    #[test]
    fn a_state_opens_to_the_login_it_sealed() {
        let k = key();
        let login = LoginState::new("01a2-client", when(), 1_800_000_000_000_000, true);
        let issued = login.issue(&k, Some("/after?x=1"));
        let opened = open(&k, &issued.state).unwrap();
        assert_eq!(opened.login, login);
        assert_eq!(opened.login.id(), login.id());
        assert_eq!(opened.bind(Some(&issued.cookie.0)), Ok(Some("/after?x=1".to_string())));
        let nonce = login.nonce();
        let verifier = login.pkce_verifier().unwrap().0;
        for v in [&nonce, &verifier] {
            assert_eq!(v.len(), 43);
            assert!(v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{v}");
        }
        assert_ne!(nonce, verifier);
        for secret in [nonce.as_str(), verifier.as_str(), "01a2-client"] {
            assert!(!issued.state.contains(secret), "the state shows nothing in clear");
        }
    }

    #[test]
    fn a_step_up_is_sealed_as_version_2_and_a_plain_login_stays_version_1() {
        let k = key();
        let plain = LoginState::new("c", when(), 5, true).issue(&k, None);
        assert_eq!(URL_SAFE_NO_PAD.decode(&plain.state).unwrap()[0], VERSION);
        for (max_age, acr) in [(Some(300), None), (None, Some("phr")), (Some(0), Some("urn:okta:loa:2fa:any phr"))] {
            let login = LoginState::new("01a2-client", when(), 5, true).with_step_up(max_age, acr).unwrap();
            let issued = login.issue(&k, Some("/next"));
            assert_eq!(URL_SAFE_NO_PAD.decode(&issued.state).unwrap()[0], VERSION_STEP_UP);
            let opened = open(&k, &issued.state).unwrap();
            assert_eq!(opened.login, login);
            assert_eq!((opened.login.max_age(), opened.login.acr_values()), (max_age, acr));
            assert_eq!(opened.login.oidc_client_id, "01a2-client");
            assert_eq!(opened.bind(Some(&issued.cookie.0)), Ok(Some("/next".to_string())));
        }
        // The longest acr_values fit; a longer one is not carried.
        let long = "a".repeat(MAX_ACR_VALUES_BYTES);
        let client = "c".repeat(64);
        let login = LoginState::new(&client, when(), 5, true).with_step_up(Some(u32::MAX), Some(&long)).unwrap();
        let issued = login.issue(&k, Some("/a/long/redirect/path"));
        assert!(issued.state.len() < MAX_STATE_CHARS, "{}", issued.state.len());
        assert_eq!(open(&k, &issued.state).unwrap().login.acr_values(), Some(long.as_str()));
        let too_long = "a".repeat(MAX_ACR_VALUES_BYTES + 1);
        assert!(LoginState::new("c", when(), 5, false).with_step_up(None, Some(&too_long)).is_err());
        // Relabelled either way between the versions, a state does not open.
        let relabel = |state: &str, to: u8| {
            let mut bytes = URL_SAFE_NO_PAD.decode(state).unwrap();
            bytes[0] = to;
            URL_SAFE_NO_PAD.encode(bytes)
        };
        assert!(open(&k, &relabel(&issued.state, VERSION)).is_none(), "a step-up downgraded to a plain login");
        assert!(open(&k, &relabel(&issued.state, 3)).is_none());
        assert!(open(&k, &relabel(&plain.state, VERSION_STEP_UP)).is_none());
    }

    #[test]
    fn malformed_sealed_layouts_are_refused_without_panicking() {
        let k = key();
        let seal = |version: u8, plain: &[u8]| {
            let mut bytes = vec![version];
            bytes.extend(k.seal(plain, &context(version)));
            URL_SAFE_NO_PAD.encode(bytes)
        };
        let head = |flags: u8| {
            let mut p = vec![flags];
            p.extend_from_slice(&[7u8; FIXED_LEN - 1]);
            p
        };
        let with = |mut p: Vec<u8>, tail: &[u8]| {
            p.extend_from_slice(tail);
            p
        };
        // A version-1 state carrying a step-up flag, or an unknown flag.
        assert!(open(&k, &seal(VERSION, &with(head(FLAG_MAX_AGE), &[0, 0, 0, 5, b'c']))).is_none());
        assert!(open(&k, &seal(VERSION_STEP_UP, &with(head(8), b"c"))).is_none());
        // Cut short: a max_age of three bytes, an acr longer than what follows, or not UTF-8.
        assert!(open(&k, &seal(VERSION_STEP_UP, &with(head(FLAG_MAX_AGE), &[0, 0, 5]))).is_none());
        assert!(open(&k, &seal(VERSION_STEP_UP, &with(head(FLAG_ACR), &[0, 200, b'a']))).is_none());
        assert!(open(&k, &seal(VERSION_STEP_UP, &with(head(FLAG_ACR), &[0, 2, 0xff, 0xfe, b'c']))).is_none());
        assert!(open(&k, &seal(VERSION_STEP_UP, &head(FLAG_ACR)[..10])).is_none());
        // Well formed, it opens.
        let fine =
            open(&k, &seal(VERSION_STEP_UP, &with(head(FLAG_MAX_AGE | FLAG_ACR), &[0, 0, 0, 9, 0, 1, b'x', b'c'])));
        let fine = fine.unwrap().login;
        assert_eq!((fine.max_age(), fine.acr_values(), fine.oidc_client_id.as_str()), (Some(9), Some("x"), "c"));
    }

    #[test]
    fn a_login_without_pkce_has_no_verifier_and_no_redirect() {
        let k = key();
        let login = LoginState::new("c", when(), 5, false);
        let issued = login.issue(&k, None);
        let opened = open(&k, &issued.state).unwrap();
        assert_eq!(opened.login.pkce_verifier(), None);
        assert_eq!(opened.login.expires_at, 5);
        assert_eq!(opened.bind(Some(&issued.cookie.0)), Ok(None));
    }

    #[test]
    fn every_login_is_new() {
        let k = key();
        let (a, b) = (LoginState::new("c", when(), 5, true), LoginState::new("c", when(), 5, true));
        assert_ne!(a.id(), b.id());
        assert_ne!(a.nonce(), b.nonce());
        assert_ne!(a.pkce_verifier(), b.pkce_verifier());
        let (ia, ib) = (a.issue(&k, None), a.issue(&k, None));
        assert_ne!(ia.state, ib.state);
        assert_ne!(ia.cookie, ib.cookie);
    }

    #[test]
    fn a_state_made_up_altered_or_from_another_key_does_not_open() {
        let k = key();
        let issued = LoginState::new("c", when(), 5, true).issue(&k, None);
        assert!(open(&key(), &issued.state).is_none());
        assert!(open(&k, "never-issued").is_none());
        assert!(open(&k, "").is_none());
        assert!(open(&k, &"A".repeat(5000)).is_none());
        let mut bytes = URL_SAFE_NO_PAD.decode(&issued.state).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(open(&k, &URL_SAFE_NO_PAD.encode(&bytes)).is_none());
        bytes[last] ^= 1;
        bytes[0] = VERSION + 1;
        assert!(open(&k, &URL_SAFE_NO_PAD.encode(&bytes)).is_none(), "another layout version");
        // A value sealed for something else with the same key is not a state.
        let mut other = vec![VERSION];
        other.extend(k.seal(&[0u8; 120], b"tandem:something-else"));
        assert!(open(&k, &URL_SAFE_NO_PAD.encode(other)).is_none());
    }

    #[test]
    fn only_the_cookie_issued_with_the_state_binds() {
        let k = key();
        let login = LoginState::new("c", when(), 5, true);
        let mine = login.issue(&k, Some("/home"));
        let theirs = LoginState::new("c", when(), 5, true).issue(&k, Some("/home"));
        let opened = open(&k, &mine.state).unwrap();
        assert_eq!(opened.bind(Some(&theirs.cookie.0)), Err(NotBound));
        assert_eq!(opened.bind(None), Err(NotBound));
        assert_eq!(opened.bind(Some("")), Err(NotBound));
        // The redirect it carries cannot be changed.
        let (secret, _) = mine.cookie.0.split_once('.').unwrap();
        let altered = format!("{secret}.{}", URL_SAFE_NO_PAD.encode("https://evil.example"));
        assert_eq!(opened.bind(Some(&altered)), Err(NotBound));
        assert_eq!(opened.bind(Some(secret)), Err(NotBound));
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let login = LoginState::new("c", when(), 5, true);
        let shown = format!("{login:?}");
        assert!(!shown.contains(&login.nonce()) && !shown.contains(&login.pkce_verifier().unwrap().0), "{shown}");
    }
}
