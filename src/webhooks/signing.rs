//! Standard Webhooks signing (<https://www.standardwebhooks.com/>): a secret is
//! `whsec_` + base64 of its key bytes; each attempt carries `webhook-id`,
//! `webhook-timestamp` (unix seconds) and `webhook-signature:
//! v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

pub const SECRET_PREFIX: &str = "whsec_";
/// Key sizes a caller-supplied secret may have.
pub const MIN_KEY_BYTES: usize = 24;
pub const MAX_KEY_BYTES: usize = 64;

/// A signing key, decoded from its `whsec_` form.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl SigningKey {
    /// Reads a secret in its `whsec_<base64>` form; the message says what is wrong.
    pub fn parse(secret: &str) -> Result<SigningKey, String> {
        let Some(encoded) = secret.strip_prefix(SECRET_PREFIX) else {
            return Err(format!("secret must start with {SECRET_PREFIX}"));
        };
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| format!("secret must be {SECRET_PREFIX} followed by standard base64"))?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&bytes.len()) {
            return Err(format!(
                "secret must encode {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes, not {}",
                bytes.len()
            ));
        }
        Ok(SigningKey(bytes))
    }

    /// The `webhook-signature` header value for one attempt.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes keys of any length.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// A fresh secret of 32 random bytes, in its `whsec_` form.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// A secret as lists show it: the prefix and its last four characters.
pub fn mask(hint: &str) -> String {
    format!("{SECRET_PREFIX}****{hint}")
}

/// The last four characters of a secret, kept in clear for `mask`.
pub fn hint_of(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signs_like_the_reference_implementation() {
        let key = SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = key.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn caller_secrets_must_be_whsec_base64_of_24_to_64_bytes() {
        assert!(SigningKey::parse(&generate_secret()).is_ok());
        let of = |n: usize| format!("whsec_{}", STANDARD.encode(vec![7u8; n]));
        assert!(SigningKey::parse(&of(24)).is_ok());
        assert!(SigningKey::parse(&of(64)).is_ok());
        assert!(SigningKey::parse(&of(23)).unwrap_err().contains("24 to 64"));
        assert!(SigningKey::parse(&of(65)).unwrap_err().contains("24 to 64"));
        assert!(SigningKey::parse("whsec_not base64!").unwrap_err().contains("base64"));
        assert!(SigningKey::parse(&STANDARD.encode([1u8; 32])).unwrap_err().contains("whsec_"));
        assert_eq!(mask(&hint_of("whsec_abcdefgh")), "whsec_****efgh");
    }
}
