//! One-time sign-in codes: six digits mailed to the user, stored only as a
//! keyed hash, valid for `CODE_TTL` and `MAX_ATTEMPTS` tries.

use std::time::Duration;

use rand::rngs::OsRng;
use rand::RngCore;

use super::tokens::{ct_eq, derive_subkey, hmac_sha256};
use crate::settings::MasterKey;

pub const CODE_TTL: Duration = Duration::from_secs(10 * 60);
pub const MAX_ATTEMPTS: u32 = 5;

const CODE_SPACE: u32 = 1_000_000;
const SUBKEY_LABEL: &[u8] = b"switchboard/otp/v1";

/// Six decimal digits, leading zeros kept, every code equally likely.
pub fn generate_code() -> String {
    // The largest multiple of 10^6 that fits in a u32: values at or above it
    // are redrawn, so `v % 10^6` has no bias.
    const LIMIT: u32 = u32::MAX - (u32::MAX % CODE_SPACE);
    loop {
        let v = OsRng.next_u32();
        if v < LIMIT {
            return format!("{:06}", v % CODE_SPACE);
        }
    }
}

/// A code has only 10^6 values, so a plain hash in a database dump would be
/// reversed in a second; keyed with a secret that is not in the database, it is not.
/// The email is part of the input so that one hash cannot be replayed for another account.
pub fn hash_code(master: &MasterKey, email: &str, code: &str) -> String {
    let key = derive_subkey(master, SUBKEY_LABEL);
    let input = format!("{}:{code}", email.to_lowercase());
    hex::encode(hmac_sha256(&key, input.as_bytes()))
}

pub fn code_matches(master: &MasterKey, email: &str, code: &str, stored_hash: &str) -> bool {
    ct_eq(&hash_code(master, email, code), stored_hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..1000 {
            let code = generate_code();
            assert_eq!(code.len(), 6, "{code}");
            assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
        }
    }

    #[test]
    fn codes_spread_over_the_space_including_leading_zeros() {
        let codes: Vec<String> = (0..5000).map(|_| generate_code()).collect();
        let distinct: HashSet<&String> = codes.iter().collect();
        assert!(distinct.len() > 4900, "{} distinct of 5000", distinct.len());
        // P(no code below 100000 in 5000 draws) = 0.9^5000: never.
        assert!(codes.iter().any(|c| c.starts_with('0')));
    }

    #[test]
    fn a_code_matches_its_hash_for_the_same_email_in_any_case() {
        let master = MasterKey([1; 32]);
        let stored = hash_code(&master, "Ada@Example.com", "012345");
        assert!(code_matches(&master, "ada@example.com", "012345", &stored));
        assert!(!code_matches(&master, "ada@example.com", "012346", &stored));
        assert!(!code_matches(&master, "bob@example.com", "012345", &stored));
    }

    #[test]
    fn the_hash_depends_on_the_master_key() {
        let stored = hash_code(&MasterKey([1; 32]), "ada@example.com", "123456");
        assert!(!code_matches(&MasterKey([2; 32]), "ada@example.com", "123456", &stored));
        assert_eq!(stored.len(), 64);
        assert_ne!(stored, crate::identity::tokens::sha256_hex("ada@example.com:123456"));
    }
}
