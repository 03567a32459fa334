//! Identity: keys, JWTs, one-time codes, passwords, and the master key that
//! signs tokens and encrypts secrets at rest.

pub mod master_key;
