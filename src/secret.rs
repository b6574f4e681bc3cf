//! Random secrets, their hashes and constant-time comparison.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A fresh random secret of 32 bytes, URL-safe base64 (43 characters).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a secret: what we store when only a comparison is needed.
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Compare two byte strings without leaking where they differ.
pub fn equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Check a presented secret against a stored hash, in constant time.
pub fn matches_hash(presented: &str, stored_hash: &[u8]) -> bool {
    equal(&hash(presented), stored_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_long_and_distinct() {
        let (a, b) = (generate(), generate());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn a_secret_matches_only_its_own_hash() {
        let s = generate();
        assert!(matches_hash(&s, &hash(&s)));
        assert!(!matches_hash("guess", &hash(&s)));
    }
}
