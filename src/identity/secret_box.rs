//! Encryption of secrets at rest (provider API keys, channel tokens, webhook
//! secrets): AES-256-GCM under a key derived from the master key.
//! Sealed form: `v1:` + base64(12-byte random nonce || ciphertext || 16-byte tag).

use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::tokens::derive_subkey;
use crate::settings::MasterKey;

const VERSION_PREFIX: &str = "v1:";
const SUBKEY_LABEL: &[u8] = b"switchboard/secret-box/v1";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum SecretBoxError {
    #[error("sealed secret is malformed: {0}")]
    Malformed(&'static str),
    /// Wrong master key or tampered ciphertext: GCM cannot tell them apart.
    #[error("sealed secret cannot be opened: wrong master key or tampered data")]
    Undecryptable,
}

#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

impl SecretBox {
    pub fn new(master: &MasterKey) -> Self {
        let key = derive_subkey(master, SUBKEY_LABEL);
        SecretBox { cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key)) }
    }

    pub fn seal(&self, plaintext: &str) -> String {
        // A random 96-bit nonce per message: collisions become likely only after
        // about 2^32 seals under one key, far beyond the secrets a server stores.
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        // AES-GCM only refuses plaintexts over 64 GiB, which a `&str` secret is not.
        let ciphertext =
            self.cipher.encrypt(&nonce, plaintext.as_bytes()).expect("AES-GCM encrypts inputs under 64 GiB");
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        format!("{VERSION_PREFIX}{}", STANDARD.encode(blob))
    }

    pub fn open(&self, sealed: &str) -> Result<String, SecretBoxError> {
        let body = sealed.strip_prefix(VERSION_PREFIX).ok_or(SecretBoxError::Malformed("unknown version"))?;
        let blob = STANDARD.decode(body).map_err(|_| SecretBoxError::Malformed("not base64"))?;
        if blob.len() < NONCE_LEN + TAG_LEN {
            return Err(SecretBoxError::Malformed("too short"));
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let plaintext = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| SecretBoxError::Undecryptable)?;
        // Authenticated, so this is what `seal` received: a `&str`.
        String::from_utf8(plaintext).map_err(|_| SecretBoxError::Malformed("not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_box(byte: u8) -> SecretBox {
        SecretBox::new(&MasterKey([byte; 32]))
    }

    #[test]
    fn round_trip() {
        let b = secret_box(1);
        for text in ["", "sk-provider-key", "ünïcødé 🔑", &"x".repeat(10_000)] {
            let sealed = b.seal(text);
            assert!(sealed.starts_with("v1:"));
            assert!(!sealed.contains(text) || text.is_empty());
            assert_eq!(b.open(&sealed).unwrap(), text);
        }
    }

    #[test]
    fn two_seals_of_the_same_text_differ() {
        let b = secret_box(1);
        let (x, y) = (b.seal("same"), b.seal("same"));
        assert_ne!(x, y);
        assert_eq!(b.open(&x).unwrap(), b.open(&y).unwrap());
    }

    #[test]
    fn tampering_is_detected() {
        let b = secret_box(1);
        let sealed = b.seal("webhook-secret");
        let mut blob = STANDARD.decode(&sealed[3..]).unwrap();
        for i in [0, NONCE_LEN, blob.len() - 1] {
            blob[i] ^= 0x01;
            let tampered = format!("v1:{}", STANDARD.encode(&blob));
            assert!(matches!(b.open(&tampered), Err(SecretBoxError::Undecryptable)), "byte {i}");
            blob[i] ^= 0x01;
        }
        let truncated = format!("v1:{}", STANDARD.encode(&blob[..blob.len() - 1]));
        assert!(b.open(&truncated).is_err());
    }

    #[test]
    fn another_master_key_cannot_open() {
        let sealed = secret_box(1).seal("channel-token");
        assert!(matches!(secret_box(2).open(&sealed), Err(SecretBoxError::Undecryptable)));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let b = secret_box(1);
        for bad in ["", "v1:", "v2:AAAA", "v1:!!!", "v1:AAAA", "plain text"] {
            assert!(matches!(b.open(bad), Err(SecretBoxError::Malformed(_))), "{bad:?}");
        }
    }
}
