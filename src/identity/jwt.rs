//! Session JWTs for the Platform API: HS256 only, signed with a key derived
//! from the master key; `jti` lets a token be revoked before it expires.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::tokens::{derive_subkey, random_hex};
use crate::settings::MasterKey;

const SUBKEY_LABEL: &[u8] = b"switchboard/jwt/v1";

/// Times are in seconds since the epoch, as RFC 7519 has them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

pub struct IssuedToken {
    pub token: String,
    pub jti: String,
    /// The token's `exp` in milliseconds (so a whole second).
    pub expires_at_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("invalid token signature")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token algorithm is not HS256")]
    WrongAlgorithm,
    #[error("token error: {0}")]
    Internal(String),
}

#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtKeys(***)")
    }
}

impl JwtKeys {
    pub fn from_master(master: &MasterKey) -> Self {
        let key = derive_subkey(master, SUBKEY_LABEL);
        let mut validation = Validation::new(Algorithm::HS256);
        // An expired token is refused at once: the clock that issued it is this server's.
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        JwtKeys {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
        }
    }

    pub fn issue(&self, user_id: &str, ttl: Duration) -> Result<IssuedToken, JwtError> {
        let iat = chrono::Utc::now().timestamp();
        let exp = i64::try_from(ttl.as_secs())
            .ok()
            .and_then(|ttl| iat.checked_add(ttl))
            .ok_or_else(|| JwtError::Internal(format!("token lifetime {ttl:?} is out of range")))?;
        let claims = Claims { sub: user_id.to_string(), jti: random_hex(16), iat, exp };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| JwtError::Internal(e.to_string()))?;
        Ok(IssuedToken { token, jti: claims.jti, expires_at_ms: exp.saturating_mul(1000) })
    }

    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        check_header(token)?;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| map_error(e.into_kind()))?;
        // The library accepts `exp == now`; RFC 7519 requires now to be before `exp`.
        if data.claims.exp <= chrono::Utc::now().timestamp() {
            return Err(JwtError::Expired);
        }
        Ok(data.claims)
    }
}

/// Reads `alg` from the header ourselves: the library fails to parse
/// `"alg":"none"` as a generic JSON error, which would hide that the token
/// was an algorithm-confusion attempt rather than garbage.
fn check_header(token: &str) -> Result<(), JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD.decode(header).map_err(|_| JwtError::Malformed)?;
    let header: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)?;
    match header.get("alg").and_then(|a| a.as_str()) {
        Some("HS256") => Ok(()),
        Some(_) => Err(JwtError::WrongAlgorithm),
        None => Err(JwtError::Malformed),
    }
}

fn map_error(kind: ErrorKind) -> JwtError {
    match kind {
        ErrorKind::InvalidSignature => JwtError::BadSignature,
        ErrorKind::ExpiredSignature => JwtError::Expired,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName | ErrorKind::MissingAlgorithm => {
            JwtError::WrongAlgorithm
        }
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_)
        | ErrorKind::MissingRequiredClaim(_)
        | ErrorKind::InvalidClaimFormat(_)
        | ErrorKind::ImmatureSignature => JwtError::Malformed,
        other => JwtError::Internal(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::tokens::hmac_sha256;
    use serde_json::json;

    fn master() -> MasterKey {
        MasterKey([9; 32])
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn b64(value: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
    }

    /// A token built by hand: `header.payload.HMAC-SHA256(key, header.payload)`.
    fn craft(header: serde_json::Value, payload: serde_json::Value, key: &[u8]) -> String {
        let message = format!("{}.{}", b64(&header), b64(&payload));
        let signature = URL_SAFE_NO_PAD.encode(hmac_sha256(key, message.as_bytes()));
        format!("{message}.{signature}")
    }

    fn our_key() -> [u8; 32] {
        derive_subkey(&master(), SUBKEY_LABEL)
    }

    fn valid_payload() -> serde_json::Value {
        json!({ "sub": "usr_1", "jti": "0123456789abcdef0123456789abcdef", "iat": now(), "exp": now() + 600 })
    }

    #[test]
    fn an_issued_token_verifies_to_its_claims() {
        let keys = JwtKeys::from_master(&master());
        let issued = keys.issue("usr_42", Duration::from_secs(3600)).unwrap();
        let claims = keys.verify(&issued.token).unwrap();
        assert_eq!(claims.sub, "usr_42");
        assert_eq!(claims.jti, issued.jti);
        assert_eq!(issued.jti.len(), 32);
        assert_eq!(claims.exp - claims.iat, 3600);
        assert_eq!(issued.expires_at_ms, claims.exp * 1000);
        assert_ne!(keys.issue("usr_42", Duration::from_secs(60)).unwrap().jti, issued.jti);
    }

    #[test]
    fn a_hand_crafted_hs256_token_with_our_key_verifies() {
        let token = craft(json!({ "alg": "HS256", "typ": "JWT" }), valid_payload(), &our_key());
        assert_eq!(JwtKeys::from_master(&master()).verify(&token).unwrap().sub, "usr_1");
    }

    #[test]
    fn the_signing_key_is_not_the_master_key() {
        let token = craft(json!({ "alg": "HS256" }), valid_payload(), &master().0);
        assert!(matches!(JwtKeys::from_master(&master()).verify(&token), Err(JwtError::BadSignature)));
    }

    #[test]
    fn alg_none_is_rejected() {
        let keys = JwtKeys::from_master(&master());
        for alg in ["none", "None", "NONE"] {
            let token = format!("{}.{}.", b64(&json!({ "alg": alg, "typ": "JWT" })), b64(&valid_payload()));
            assert!(matches!(keys.verify(&token), Err(JwtError::WrongAlgorithm)), "{alg}");
        }
    }

    #[test]
    fn other_algorithms_are_rejected_even_when_signed_with_our_key() {
        let keys = JwtKeys::from_master(&master());
        for alg in ["HS384", "HS512", "RS256", "ES256", "EdDSA", "hs256"] {
            let token = craft(json!({ "alg": alg }), valid_payload(), &our_key());
            assert!(matches!(keys.verify(&token), Err(JwtError::WrongAlgorithm)), "{alg}");
        }
    }

    #[test]
    fn a_bad_signature_is_rejected() {
        let keys = JwtKeys::from_master(&master());
        let token = keys.issue("usr_1", Duration::from_secs(60)).unwrap().token;
        let (message, _) = token.rsplit_once('.').unwrap();
        let forged = format!("{message}.{}", URL_SAFE_NO_PAD.encode([0u8; 32]));
        assert!(matches!(keys.verify(&forged), Err(JwtError::BadSignature)));

        // A changed payload under the original signature.
        let (_, signature) = token.rsplit_once('.').unwrap();
        let mut payload = valid_payload();
        payload["sub"] = json!("usr_admin");
        let swapped =
            format!("{}.{}.{signature}", b64(&json!({ "alg": "HS256", "typ": "JWT" })), b64(&payload));
        assert!(matches!(keys.verify(&swapped), Err(JwtError::BadSignature)));
    }

    #[test]
    fn a_token_from_another_master_key_is_rejected() {
        let other = JwtKeys::from_master(&MasterKey([10; 32]));
        let token = other.issue("usr_1", Duration::from_secs(60)).unwrap().token;
        assert!(matches!(JwtKeys::from_master(&master()).verify(&token), Err(JwtError::BadSignature)));
    }

    #[test]
    fn expired_tokens_are_rejected_without_leeway() {
        let keys = JwtKeys::from_master(&master());
        for exp in [now() - 1, now() - 30, now()] {
            let mut payload = valid_payload();
            payload["exp"] = json!(exp);
            payload["iat"] = json!(exp - 60);
            let token = craft(json!({ "alg": "HS256" }), payload, &our_key());
            assert!(matches!(keys.verify(&token), Err(JwtError::Expired)), "exp {exp}");
        }
    }

    #[test]
    fn tokens_missing_jti_or_exp_are_rejected() {
        let keys = JwtKeys::from_master(&master());
        for claim in ["jti", "exp", "sub", "iat"] {
            let mut payload = valid_payload();
            payload.as_object_mut().unwrap().remove(claim);
            let token = craft(json!({ "alg": "HS256" }), payload, &our_key());
            assert!(matches!(keys.verify(&token), Err(JwtError::Malformed)), "without {claim}");
        }
    }

    #[test]
    fn garbage_is_malformed() {
        let keys = JwtKeys::from_master(&master());
        for bad in ["", "abc", "a.b", "a.b.c", "a.b.c.d", "!!!.e30.", &format!("{}.e30.x", b64(&json!({})))] {
            assert!(matches!(keys.verify(bad), Err(JwtError::Malformed)), "{bad:?}");
        }
    }
}
