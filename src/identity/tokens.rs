//! Random tokens, ids and the hashing helpers the other identity modules share.
//! Every random value here comes from the operating system (`OsRng`).

use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::settings::MasterKey;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `len` characters from `[0-9A-Za-z]`, each uniformly distributed.
pub fn random_alnum(len: usize) -> String {
    // 248 = 4 * 62: bytes at or above it are rejected, so `b % 62` has no bias.
    const LIMIT: u8 = 248;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        OsRng.fill_bytes(&mut buf);
        for &b in buf.iter().filter(|&&b| b < LIMIT) {
            if out.len() == len {
                break;
            }
            out.push(BASE62[usize::from(b % 62)] as char);
        }
    }
    out
}

/// `bytes` random bytes as `2 * bytes` lowercase hex characters.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

pub fn sha256_hex(input: &str) -> String {
    hex::encode(Sha256::digest(input.as_bytes()))
}

/// Equality whose time depends only on the lengths, so comparing a presented
/// secret with a stored one does not leak how many leading bytes matched.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A time-ordered id with a type prefix (`usr_`, `key_`, ...): sorts by creation
/// time, which keeps B-tree inserts at the end of the index.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::now_v7().simple())
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length (long ones are hashed), so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// A key for one purpose, derived from the master key, so that no two uses
/// (JWT signing, code hashing, encryption) ever share key material.
pub fn derive_subkey(master: &MasterKey, label: &[u8]) -> [u8; 32] {
    hmac_sha256(&master.0, label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn random_alnum_has_the_length_and_alphabet_asked_for() {
        for len in [0, 1, 40, 200] {
            let s = random_alnum(len);
            assert_eq!(s.len(), len);
            assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()), "{s}");
        }
        assert_ne!(random_alnum(40), random_alnum(40));
    }

    #[test]
    fn random_alnum_uses_the_whole_alphabet() {
        let seen: HashSet<char> = random_alnum(20_000).chars().collect();
        assert_eq!(seen.len(), 62);
    }

    #[test]
    fn random_hex_is_lowercase_hex_of_twice_the_bytes() {
        let h = random_hex(24);
        assert_eq!(h.len(), 48);
        assert!(h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')), "{h}");
    }

    #[test]
    fn sha256_hex_matches_the_known_vector() {
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq("secret", "secret"));
        assert!(!ct_eq("secret", "secreT"));
        assert!(!ct_eq("secret", "secret2"));
        assert!(!ct_eq("", "a"));
        assert!(ct_eq("", ""));
    }

    #[test]
    fn ids_carry_the_prefix_and_sort_by_creation() {
        let a = new_id("usr_");
        let b = new_id("usr_");
        assert!(a.starts_with("usr_"));
        assert_eq!(a.len(), 4 + 32);
        assert!(a < b, "{a} !< {b}");
    }

    #[test]
    fn subkeys_differ_by_label() {
        let master = MasterKey([7; 32]);
        assert_ne!(derive_subkey(&master, b"a"), derive_subkey(&master, b"b"));
        assert_ne!(derive_subkey(&master, b"a"), master.0);
    }
}
