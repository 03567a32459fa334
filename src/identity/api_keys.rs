//! API keys: generation, recognition by shape, and the hash and preview stored
//! in place of the plaintext, which is shown to its owner once and never kept.

use super::tokens::{random_alnum, random_hex, sha256_hex};

const ESCALATION_PREFIX: &str = "cero_";
/// 24 random bytes as lowercase hex.
const ESCALATION_SECRET_LEN: usize = 48;
const AGENT_PREFIX: &str = "sk_live_";
const AGENT_SECRET_LEN: usize = 40;
const PREVIEW_CHARS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `cero_` + 48 lowercase hex characters: the Escalation API.
    Escalation,
    /// `sk_live_` + 40 base62 characters: the Agent API.
    Agent,
}

pub struct NewApiKey {
    pub plaintext: String,
    pub hash: String,
    pub preview: String,
}

pub fn generate(kind: KeyKind) -> NewApiKey {
    let (plaintext, secret) = match kind {
        KeyKind::Escalation => {
            let secret = random_hex(ESCALATION_SECRET_LEN / 2);
            (format!("{ESCALATION_PREFIX}{secret}"), secret)
        }
        KeyKind::Agent => {
            let secret = random_alnum(AGENT_SECRET_LEN);
            (format!("{AGENT_PREFIX}{secret}"), secret)
        }
    };
    // The secret parts are ASCII, so slicing by bytes cuts on character boundaries.
    let head = &secret[..PREVIEW_CHARS];
    let preview = match kind {
        KeyKind::Escalation => format!("{ESCALATION_PREFIX}{head}…"),
        // The Agent API spec's masked listing: `sk_4qArx8L2••••••••••••`.
        KeyKind::Agent => format!("sk_{head}{}", "•".repeat(12)),
    };
    NewApiKey { hash: hash(&plaintext), plaintext, preview }
}

/// The kind of a well-formed key, or `None`: a lookup is only worth a database
/// query when the presented string could be a key at all.
pub fn kind_of(plaintext: &str) -> Option<KeyKind> {
    if let Some(secret) = plaintext.strip_prefix(ESCALATION_PREFIX) {
        let well_formed = secret.len() == ESCALATION_SECRET_LEN
            && secret.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        return well_formed.then_some(KeyKind::Escalation);
    }
    if let Some(secret) = plaintext.strip_prefix(AGENT_PREFIX) {
        let well_formed =
            secret.len() == AGENT_SECRET_LEN && secret.bytes().all(|b| b.is_ascii_alphanumeric());
        return well_formed.then_some(KeyKind::Agent);
    }
    None
}

/// Keys carry 192+ bits of entropy, so a fast unsalted hash is enough to make a
/// database dump useless, and it lets a key be found by its hash.
pub fn hash(plaintext: &str) -> String {
    sha256_hex(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escalation_keys_have_their_documented_shape() {
        let key = generate(KeyKind::Escalation);
        assert!(key.plaintext.starts_with("cero_"));
        assert_eq!(key.plaintext.len(), 5 + 48);
        assert_eq!(kind_of(&key.plaintext), Some(KeyKind::Escalation));
        assert_eq!(key.hash, sha256_hex(&key.plaintext));
        assert_eq!(key.preview, format!("{}…", &key.plaintext[..13]));
    }

    #[test]
    fn agent_keys_have_their_documented_shape() {
        let key = generate(KeyKind::Agent);
        assert!(key.plaintext.starts_with("sk_live_"));
        assert_eq!(key.plaintext.len(), 8 + 40);
        assert_eq!(kind_of(&key.plaintext), Some(KeyKind::Agent));
        assert_eq!(key.hash, hash(&key.plaintext));
        let head = &key.plaintext[8..16];
        assert_eq!(key.preview, format!("sk_{head}••••••••••••"));
        assert_eq!(key.preview.chars().count(), "sk_4qArx8L2••••••••••••".chars().count());
    }

    #[test]
    fn two_keys_differ() {
        assert_ne!(generate(KeyKind::Agent).plaintext, generate(KeyKind::Agent).plaintext);
        assert_ne!(generate(KeyKind::Escalation).plaintext, generate(KeyKind::Escalation).plaintext);
    }

    #[test]
    fn malformed_keys_have_no_kind() {
        let hex48 = "0123456789abcdef".repeat(3);
        let alnum40 = "aB3".repeat(13) + "z";
        assert_eq!(kind_of(&format!("cero_{hex48}")), Some(KeyKind::Escalation));
        assert_eq!(kind_of(&format!("sk_live_{alnum40}")), Some(KeyKind::Agent));

        assert_eq!(kind_of(&format!("cero_{}", &hex48[1..])), None, "too short");
        assert_eq!(kind_of(&format!("cero_{hex48}0")), None, "too long");
        assert_eq!(kind_of(&format!("cero_{}", hex48.to_uppercase())), None, "uppercase hex");
        assert_eq!(kind_of(&format!("cero_{}g", &hex48[1..])), None, "not hex");
        assert_eq!(kind_of(&format!("sk_live_{}", &alnum40[1..])), None, "too short");
        assert_eq!(kind_of(&format!("sk_live_{}-", &alnum40[1..])), None, "not base62");
        assert_eq!(kind_of(&format!("sk_test_{alnum40}")), None, "other prefix");
        assert_eq!(kind_of(""), None);
        assert_eq!(kind_of("Bearer x"), None);
    }
}
