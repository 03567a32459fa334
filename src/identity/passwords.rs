//! Password hashing: argon2id with a random salt, stored as a PHC string
//! (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`) that carries its own parameters.
//! Hashing and verifying take tens of milliseconds by design: callers on an
//! async thread should run them in `spawn_blocking`.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

pub const MIN_PASSWORD_LEN: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Argon2id, version 19, with the crate's default cost (19 MiB, 2 passes, 1 lane:
/// the OWASP recommendation). Verification reads the cost from the stored hash,
/// so raising it later does not invalidate existing hashes.
fn hasher() -> Argon2<'static> {
    Argon2::default()
}

pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// False for a wrong password and for a stored value that is not a valid hash.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Spends about as long as `verify_password` on a real hash, so that signing in
/// with an unknown email takes as long as with a known one and response times
/// do not reveal which emails have accounts.
pub fn dummy_verify(password: &str) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("switchboard dummy password").ok());
    match dummy {
        Some(phc) => {
            let _ = verify_password(password, phc);
        }
        // Hashing only fails on invalid parameters, which the defaults are not;
        // should it ever happen, hashing costs the same as verifying.
        None => {
            let _ = hash_password(password);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct horsE", &phc));
        assert!(!verify_password("", &phc));
    }

    #[test]
    fn the_same_password_hashes_differently_each_time() {
        assert_ne!(hash_password("same").unwrap(), hash_password("same").unwrap());
    }

    #[test]
    fn malformed_hashes_never_verify() {
        for bad in ["", "plaintext", "$argon2id$", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$"] {
            assert!(!verify_password("plaintext", bad), "{bad:?}");
        }
    }

    #[test]
    fn dummy_verify_costs_about_as_much_as_a_real_verify() {
        let phc = hash_password("real password").unwrap();
        dummy_verify("warm-up"); // The dummy hash is computed on first use.

        // The fastest of a few runs: other tests running in parallel only add time.
        let fastest = |f: &dyn Fn()| {
            (0..3)
                .map(|_| {
                    let start = Instant::now();
                    f();
                    start.elapsed()
                })
                .min()
                .unwrap()
        };
        let real = fastest(&|| assert!(!verify_password("guess", &phc)));
        let dummy = fastest(&|| dummy_verify("guess"));

        // Generous bounds: the point is "same work", not a benchmark.
        assert!(dummy * 4 > real && dummy < real * 4, "real {real:?}, dummy {dummy:?}");
    }
}
