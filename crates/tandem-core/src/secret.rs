//! Secrets at rest: AES-256-GCM encryption of client secrets with the
//! deployment's key; sealing of values that travel (a login's state) under
//! a key derived from it; and a wrapper that keeps secrets out of `Debug`
//! output. While the key is rotated, a previous key still opens what it
//! encrypted or sealed; everything new is under the current one.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, AES_256_GCM_SIV, NONCE_LEN};
use aws_lc_rs::hkdf;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::fmt;

/// A value that must never be printed; `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted<T>(pub T);

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<T> fmt::Display for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why a key or a ciphertext was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    /// The configured key is not 32 bytes of base64.
    #[error("the secret key must be 32 bytes encoded as base64 (44 characters); {0}")]
    BadKey(String),
    /// The ciphertext is not in Tandem's format.
    #[error("stored secret is not in the expected format")]
    Malformed,
    /// The ciphertext does not open with this key.
    #[error("stored secret could not be decrypted with the configured key")]
    WrongKey,
}

const VERSION: &str = "v1:";

/// The deployment's encryption key for secrets at rest, and the key derived
/// from it for values that travel.
pub struct SecretKey {
    key: LessSafeKey,
    /// For [`SecretKey::seal`]: AES-256-GCM-SIV under a key of its own.
    travelling: LessSafeKey,
    /// The key being rotated away from: it still opens, never encrypts.
    previous: Option<Box<SecretKey>>,
    /// A short public name of the key (see [`SecretKey::fingerprint`]).
    fingerprint: String,
}

/// What the key for travelling values is derived for (HKDF-SHA256 `info`).
const TRAVELLING_KEY_INFO: &[u8] = b"tandem:travelling-values:v1";

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

impl SecretKey {
    /// Reads a key from its base64 form (standard alphabet, padding optional).
    pub fn from_base64(encoded: &str) -> Result<SecretKey, SecretError> {
        let trimmed = encoded.trim();
        let bytes = STANDARD
            .decode(trimmed)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
            .map_err(|e| SecretError::BadKey(format!("it is not base64 ({e})")))?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey(format!("it decodes to {} bytes", bytes.len())));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SecretError::BadKey("rejected".into()))?;
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"tandem").extract(&bytes);
        let info = [TRAVELLING_KEY_INFO];
        let derived = prk.expand(&info, &AES_256_GCM_SIV).map_err(|_| SecretError::BadKey("rejected".into()))?;
        let travelling = LessSafeKey::new(UnboundKey::from(derived));
        let digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &[b"tandem:key-fingerprint:v1".as_slice(), &bytes].concat(),
        );
        let fingerprint = digest.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect();
        Ok(SecretKey { key: LessSafeKey::new(unbound), travelling, previous: None, fingerprint })
    }

    /// A new random key and its base64 form (to write to the key file).
    pub fn generate() -> Result<(SecretKey, String), SecretError> {
        let mut bytes = [0u8; 32];
        crate::keys::fill_random(&mut bytes);
        let encoded = STANDARD.encode(bytes);
        Ok((SecretKey::from_base64(&encoded)?, encoded))
    }

    /// This key, with `previous` still opening what it encrypted or sealed
    /// (a key rotation in progress).
    pub fn with_previous(mut self, previous: SecretKey) -> SecretKey {
        self.previous = Some(Box::new(SecretKey { previous: None, ..previous }));
        self
    }

    /// Whether a previous key is set.
    pub fn has_previous(&self) -> bool {
        self.previous.is_some()
    }

    /// Twelve hex digits that name the key without giving it away (a hash
    /// of it under a label of its own), so an operator can tell keys apart
    /// in output and the audit log.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The previous key's fingerprint, when one is set.
    pub fn previous_fingerprint(&self) -> Option<&str> {
        self.previous.as_deref().map(SecretKey::fingerprint)
    }

    /// Decrypts with this key only, never the previous one (what a key
    /// check must know: which key the data is under).
    pub fn decrypt_with_current(&self, ciphertext: &str, context: &str) -> Result<Redacted<String>, SecretError> {
        let body = ciphertext.strip_prefix(VERSION).ok_or(SecretError::Malformed)?;
        let mut bytes = STANDARD.decode(body).map_err(|_| SecretError::Malformed)?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(SecretError::Malformed);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[..NONCE_LEN]);
        let sealed = &mut bytes[NONCE_LEN..];
        let opened = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), sealed)
            .map_err(|_| SecretError::WrongKey)?;
        String::from_utf8(opened.to_vec()).map(Redacted).map_err(|_| SecretError::Malformed)
    }

    /// Encrypts `plaintext`, bound to `context` (e.g. the owning row's id) so
    /// a ciphertext copied to another row does not open.
    pub fn encrypt(&self, plaintext: &str, context: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        crate::keys::fill_random(&mut nonce);
        let mut buf = plaintext.as_bytes().to_vec();
        // Sealing only fails for inputs over ~64 GiB.
        #[allow(clippy::expect_used)]
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut buf)
            .expect("AES-GCM seal of a small buffer");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        format!("{VERSION}{}", STANDARD.encode(out))
    }

    /// Seals `plaintext` as bytes (nonce, ciphertext, tag), bound to
    /// `context`: the form for values that travel, such as a login's state.
    ///
    /// They are sealed under their own key (derived with HKDF-SHA256, so
    /// nothing sealed here opens as a secret at rest or the other way round)
    /// with AES-256-GCM-SIV: anyone can make Tandem seal values (every login
    /// started seals one), and with random nonces under one key for years,
    /// a repeated nonce must not be able to give the key away, as it would
    /// with GCM; with GCM-SIV it shows at most that two values were equal.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::keys::fill_random(&mut nonce);
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + AES_256_GCM_SIV.tag_len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let (_, body) = out.split_at_mut(NONCE_LEN);
        // Sealing only fails for inputs over ~64 GiB.
        #[allow(clippy::expect_used)]
        let tag = self
            .travelling
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context), body)
            .expect("AES-GCM-SIV seal of a small buffer");
        out.extend_from_slice(tag.as_ref());
        out
    }

    /// Opens what [`SecretKey::seal`] produced with the same context; `None`
    /// when it was not sealed with this key (or the previous one) and
    /// context, or was altered.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Option<Vec<u8>> {
        self.open_with_current(sealed, context).or_else(|| self.previous.as_ref()?.open_with_current(sealed, context))
    }

    fn open_with_current(&self, sealed: &[u8], context: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN + AES_256_GCM_SIV.tag_len() {
            return None;
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[..NONCE_LEN]);
        let mut body = sealed[NONCE_LEN..].to_vec();
        let opened =
            self.travelling.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(context), &mut body).ok()?;
        let len = opened.len();
        body.truncate(len);
        Some(body)
    }

    /// Decrypts what [`SecretKey::encrypt`] produced with the same context,
    /// under this key or the previous one.
    pub fn decrypt(&self, ciphertext: &str, context: &str) -> Result<Redacted<String>, SecretError> {
        match (self.decrypt_with_current(ciphertext, context), &self.previous) {
            (Err(SecretError::WrongKey), Some(previous)) => previous.decrypt_with_current(ciphertext, context),
            (result, _) => result,
        }
    }
}

/// The context of the check value stored once per database, which proves at
/// start-up that the configured key is the one the data was written with.
pub const KEY_CHECK_CONTEXT: &str = "tandem:key-check";
/// The plaintext of that check value.
pub const KEY_CHECK_PLAINTEXT: &str = "tandem secret key check v1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_hides_the_plaintext() {
        let (key, _) = SecretKey::generate().unwrap();
        let ct = key.encrypt("s3cret-value", "oidc_client:1");
        assert!(!ct.contains("s3cret"));
        assert_eq!(key.decrypt(&ct, "oidc_client:1").unwrap().0, "s3cret-value");
    }

    #[test]
    fn a_wrong_key_is_an_error_never_garbage() {
        let (a, _) = SecretKey::generate().unwrap();
        let (b, _) = SecretKey::generate().unwrap();
        let ct = a.encrypt("x", "c");
        assert_eq!(b.decrypt(&ct, "c").unwrap_err(), SecretError::WrongKey);
    }

    #[test]
    fn during_a_rotation_the_previous_key_opens_and_only_the_new_one_encrypts() {
        let (old, old_text) = SecretKey::generate().unwrap();
        let (new, _) = SecretKey::generate().unwrap();
        let (stored, sealed) = (old.encrypt("x", "c"), old.seal(b"login", b"ctx"));
        let rotating = new.with_previous(SecretKey::from_base64(&old_text).unwrap());
        assert!(rotating.has_previous());
        assert_eq!(rotating.previous_fingerprint(), Some(old.fingerprint()));
        assert_ne!(rotating.fingerprint(), old.fingerprint());
        assert_eq!(
            old.fingerprint(),
            SecretKey::from_base64(&old_text).unwrap().fingerprint(),
            "the same key, the same name"
        );
        assert!(old.fingerprint().len() == 12 && !old_text.contains(old.fingerprint()));
        assert_eq!(rotating.decrypt(&stored, "c").unwrap().0, "x");
        assert_eq!(rotating.decrypt_with_current(&stored, "c").unwrap_err(), SecretError::WrongKey);
        assert_eq!(rotating.open(&sealed, b"ctx").as_deref(), Some(&b"login"[..]));
        assert_eq!(
            rotating.decrypt(&stored, "other").unwrap_err(),
            SecretError::WrongKey,
            "still bound to its context"
        );
        // What it writes opens with the new key alone, not with the old one.
        let written = rotating.encrypt("y", "c");
        assert_eq!(rotating.decrypt_with_current(&written, "c").unwrap().0, "y");
        assert_eq!(old.decrypt(&written, "c").unwrap_err(), SecretError::WrongKey);
        assert_eq!(old.open(&rotating.seal(b"z", b"ctx"), b"ctx"), None);
    }

    #[test]
    fn ciphertext_moved_to_another_row_does_not_open() {
        let (k, _) = SecretKey::generate().unwrap();
        let ct = k.encrypt("x", "oidc_client:1");
        assert_eq!(k.decrypt(&ct, "oidc_client:2").unwrap_err(), SecretError::WrongKey);
    }

    #[test]
    fn sealed_bytes_open_only_with_their_key_and_context_and_unaltered() {
        let (k, _) = SecretKey::generate().unwrap();
        let (other, _) = SecretKey::generate().unwrap();
        let sealed = k.seal(b"payload", b"ctx");
        assert_eq!(k.open(&sealed, b"ctx").as_deref(), Some(&b"payload"[..]));
        assert_eq!(k.open(&sealed, b"other ctx"), None);
        assert_eq!(other.open(&sealed, b"ctx"), None);
        let mut flipped = sealed.clone();
        flipped[NONCE_LEN] ^= 1;
        assert_eq!(k.open(&flipped, b"ctx"), None);
        assert_eq!(k.open(&sealed[..NONCE_LEN + 3], b"ctx"), None);
        assert_eq!(k.open(&k.seal(b"", b"ctx"), b"ctx").as_deref(), Some(&b""[..]));
    }

    #[test]
    fn sealed_values_and_secrets_at_rest_are_under_different_keys() {
        let (k, _) = SecretKey::generate().unwrap();
        let at_rest = k.encrypt("value", "c");
        let bytes = STANDARD.decode(at_rest.strip_prefix(VERSION).unwrap()).unwrap();
        assert_eq!(k.open(&bytes, b"c"), None);
        let sealed = k.seal(b"value", b"c");
        let as_stored = format!("{VERSION}{}", STANDARD.encode(&sealed));
        assert_eq!(k.decrypt(&as_stored, "c").unwrap_err(), SecretError::WrongKey);
    }

    #[test]
    fn key_of_the_wrong_length_is_refused_with_the_reason() {
        let err = SecretKey::from_base64("c2hvcnQ=").unwrap_err();
        assert!(err.to_string().contains("decodes to 5 bytes"));
        assert!(SecretKey::from_base64("not base64 !!").is_err());
    }

    #[test]
    fn encoded_key_round_trips() {
        let (k, encoded) = SecretKey::generate().unwrap();
        let again = SecretKey::from_base64(&encoded).unwrap();
        assert_eq!(again.decrypt(&k.encrypt("v", "c"), "c").unwrap().0, "v");
    }

    #[test]
    fn redacted_never_prints() {
        assert_eq!(format!("{:?} {}", Redacted("pw"), Redacted("pw")), "*** ***");
    }
}
