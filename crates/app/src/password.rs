//! Member passwords: argon2id, the one place a slow hash is right (people choose passwords).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use scopegate_core::Entropy;

/// Hashes a password as an argon2id PHC string.
pub fn hash(entropy: &dyn Entropy, password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    entropy.fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
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

/// A real argon2id hash of an unguessable value, verified against when a member does not exist
/// so that sign-in takes the same time either way.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        hash(&crate::clock::OsEntropy, "scopegate: no such member").unwrap_or_default()
    })
}
