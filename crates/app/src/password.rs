//! Member passwords: argon2id, the one place a slow hash is right (people choose passwords).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use scopegate_core::Entropy;

/// Why a password could not be hashed (argon2 refused the salt or its parameters).
#[derive(Debug, thiserror::Error)]
#[error("the password could not be hashed: {0}")]
pub struct PasswordError(argon2::password_hash::Error);

/// Hashes a password as an argon2id PHC string.
pub fn hash(entropy: &dyn Entropy, password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    entropy.fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(PasswordError)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(PasswordError)
}

/// Checks a password against a stored PHC string.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// An argon2id hash (default parameters) of an unguessable value, made once. It is the answer
/// when hashing at start fails: an empty string would make `verify` refuse at once and so tell
/// a timing observer that the member does not exist.
const FALLBACK_DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2NvcGVnYXRlLWR1bW15$G88D9asB+Rhb5UmSGtn07K0z6/XubSquGPIx2kqvswc";

/// A real argon2id hash of an unguessable value, verified against when a member does not exist
/// so that sign-in takes the same time either way. Fails closed: if hashing fails, a fixed real
/// hash with the same parameters is used, never an empty one (which `verify` would refuse
/// without doing the work).
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        hash(&crate::clock::OsEntropy, "scopegate: no such member")
            .unwrap_or_else(|_| FALLBACK_DUMMY.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_dummy_is_a_real_hash_with_the_default_parameters() {
        let fallback = PasswordHash::new(FALLBACK_DUMMY).expect("a PHC string");
        let made = hash(&crate::clock::OsEntropy, "x").expect("hashed");
        let made = PasswordHash::new(&made).expect("a PHC string");
        assert_eq!(fallback.algorithm, made.algorithm);
        assert_eq!(fallback.params, made.params);
        assert!(verify("scopegate: no such member", FALLBACK_DUMMY));
        assert!(!verify("", FALLBACK_DUMMY));
    }
}
