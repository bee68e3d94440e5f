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

/// A hash that verifies nothing, used to spend the same time when a member does not exist.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2NvcGVnYXRlZHVtbXk$6Zpk1Gq3qIqk2mV0b0rQ0e8m3QG8y0N8xGf0mJjQm1c";
