//! Webhook signing secrets and signatures as the Standard Webhooks
//! specification (standardwebhooks.com) has them, so receivers can check
//! them with its libraries: a secret is `whsec_` and 32 random bytes in
//! base64; a message's signature is `v1,` and the base64 HMAC-SHA256, keyed
//! with those bytes, of `{webhook-id}.{webhook-timestamp}.{body}`.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

const PREFIX: &str = "whsec_";

/// A new signing secret.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    crate::keys::fill_random(&mut bytes);
    format!("{PREFIX}{}", STANDARD.encode(bytes))
}

/// The `webhook-signature` header of a message; `None` when `secret` is not
/// one [`new_secret`] makes.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix(PREFIX)?).ok()?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    Some(format!("v1,{}", STANDARD.encode(ctx.sign().as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_the_hmac_of_id_time_and_body_under_the_secrets_bytes() {
        let secret = new_secret();
        assert!(secret.starts_with("whsec_") && STANDARD.decode(&secret[6..]).map(|b| b.len()) == Ok(32));
        let key = hmac::Key::new(hmac::HMAC_SHA256, &STANDARD.decode(&secret[6..]).unwrap_or_default());
        let expected = STANDARD.encode(hmac::sign(&key, b"msg_1.1614265330.{\"a\":1}").as_ref());
        assert_eq!(sign(&secret, "msg_1", 1_614_265_330, b"{\"a\":1}"), Some(format!("v1,{expected}")));
        assert_ne!(
            sign(&secret, "msg_2", 1_614_265_330, b"{\"a\":1}"),
            sign(&secret, "msg_1", 1_614_265_330, b"{\"a\":1}")
        );
        assert_eq!(sign("not-a-secret", "msg_1", 1, b""), None);
        assert_eq!(sign("whsec_%%%", "msg_1", 1, b""), None);
    }
}
