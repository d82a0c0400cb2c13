//! API keys: generation, the prefixes secret scanners recognise, and hashing
//! for storage.
//!
//! Keys carry 256 random bits, so a single SHA-256 is a sufficient hash at
//! rest (a slow password hash protects low-entropy secrets; these are not).

use crate::secret::Redacted;
use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// What a key is for; decides its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// The app's credential for the management and login APIs.
    Integration,
    /// A SCIM connection's bearer token.
    Scim,
    /// A setup link's token: one customer's IdP set up by its own admin.
    SetupLink,
}

impl KeyKind {
    /// The fixed prefix of every key of this kind.
    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::Integration => "tandem_ik_",
            KeyKind::Scim => "tandem_scim_",
            KeyKind::SetupLink => "tandem_setup_",
        }
    }
}

/// `text` with every key in it (an integration key, a SCIM token, a setup
/// link's token: its prefix and what follows) cut to its prefix and `…`:
/// for an answer or a log line that echoes what a caller sent, a key pasted
/// where an id goes among it.
pub fn redact_keys(text: &str) -> std::borrow::Cow<'_, str> {
    // A webhook endpoint's signing secret (`whsec_`) too.
    const PREFIXES: [&str; 4] = ["tandem_ik_", "tandem_scim_", "tandem_setup_", "whsec_"];
    if !PREFIXES.iter().any(|p| text.contains(p)) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((at, prefix)) =
        PREFIXES.iter().filter_map(|p| rest.find(p).map(|at| (at, *p))).min_by_key(|(at, _)| *at)
    {
        let after = at + prefix.len();
        out.push_str(&rest[..after]);
        out.push('…');
        // Keys are base64url; a webhook secret is base64. A percent escape
        // (`%2F`, or any other: more is cut, never less) is part of it.
        let base64 = prefix == "whsec_";
        let tail = &rest.as_bytes()[after..];
        let mut key_len = 0;
        while key_len < tail.len() {
            let b = tail[key_len];
            if b.is_ascii_alphanumeric() || b"-_".contains(&b) || (base64 && b"+/=".contains(&b)) {
                key_len += 1;
            } else if b == b'%'
                && tail.get(key_len + 1..key_len + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
            {
                key_len += 3;
            } else {
                break;
            }
        }
        rest = &rest[after + key_len..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// A freshly generated key: the plaintext is shown once, the hash stored.
#[derive(Debug)]
pub struct GeneratedKey {
    /// The whole key, to hand to its user once.
    pub plaintext: Redacted<String>,
    /// The first characters, safe to show later to recognise the key.
    pub display_prefix: String,
    /// Hex SHA-256 of the whole key, for lookup.
    pub hash: String,
}

/// Generates a key of the given kind.
pub fn generate(kind: KeyKind) -> GeneratedKey {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    let plaintext = format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes));
    let display_prefix = plaintext.chars().take(kind.prefix().len() + 6).collect();
    let hash = hash_key(&plaintext);
    GeneratedKey { plaintext: Redacted(plaintext), display_prefix, hash }
}

/// Hex SHA-256 of a presented key.
pub fn hash_key(plaintext: &str) -> String {
    let d = digest::digest(&digest::SHA256, plaintext.as_bytes());
    let mut out = String::with_capacity(64);
    for b in d.as_ref() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) {
    // SystemRandom only fails when the OS has no entropy source at all, in
    // which case nothing secure can continue.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(buf).expect("operating system random source unavailable");
}

/// A random URL-safe token with `bytes` bytes of entropy (state, nonce, …).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fill_random(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_a_text_are_cut_to_their_prefix() {
        assert_eq!(redact_keys("no setup link \"42\""), "no setup link \"42\"");
        assert_eq!(
            redact_keys("no setup link \"tandem_setup_Ab-c_9\" or tandem_ik_x.y tandem_scim_"),
            "no setup link \"tandem_setup_…\" or tandem_ik_….y tandem_scim_…"
        );
        assert_eq!(redact_keys("/w/whsec_ab+c/d==/x"), "/w/whsec_…");
        // Percent escapes inside a key are part of it.
        assert_eq!(redact_keys("/w/whsec_1RZl%2FdXYu%2Bvb%3D?x=1"), "/w/whsec_…?x=1");
        assert_eq!(redact_keys("\"tandem_ik_ab%2Dcd\" not found"), "\"tandem_ik_…\" not found");
    }

    #[test]
    fn keys_carry_their_prefix_and_hash_to_what_lookup_computes() {
        let k = generate(KeyKind::Scim);
        assert!(k.plaintext.0.starts_with("tandem_scim_"));
        assert_eq!(k.hash, hash_key(&k.plaintext.0));
        assert!(k.plaintext.0.starts_with(&k.display_prefix));
        assert_eq!(k.hash.len(), 64);
    }

    #[test]
    fn hash_is_lowercase_hex_sha256_as_stored() {
        // FIPS 180-2's "abc" vector: stored hashes keep this exact form.
        assert_eq!(hash_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn two_keys_differ() {
        assert_ne!(generate(KeyKind::Integration).hash, generate(KeyKind::Integration).hash);
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let k = generate(KeyKind::Integration);
        assert!(!format!("{k:?}").contains(&k.plaintext.0));
    }
}
