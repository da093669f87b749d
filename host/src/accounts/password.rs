//! Password hashing: Argon2id with the crate's defaults (19 MiB, 2 passes),
//! stored as PHC strings. Hashing takes tens of milliseconds of CPU, so it
//! runs on tokio's blocking pool, never on the async workers.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use super::AccountError;

/// Shortest password accepted for a user.
pub const MIN_LENGTH: usize = 10;

/// The one password rule: long enough, not absurdly long (Argon2 hashes
/// whatever it is given, so a megabyte password would be a cheap way to
/// burn CPU).
pub fn check_policy(password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_LENGTH {
        return Err(format!(
            "the password is too short ({chars} characters): use at least {MIN_LENGTH}"
        ));
    }
    if password.len() > 1024 {
        return Err("the password is longer than 1024 bytes: use a shorter one".to_owned());
    }
    Ok(())
}

/// Hashes `password` into a PHC string.
pub async fn hash(password: &str) -> Result<String, AccountError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(|e| AccountError::Hash(e.to_string()))?
}

fn hash_now(password: &str) -> Result<String, AccountError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| AccountError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `stored`. With `stored` of
/// `None` (no such user) a dummy hash is checked instead, so an unknown
/// login takes as long as a wrong password.
pub async fn verify(password: &str, stored: Option<String>) -> bool {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| dummy_hash().to_owned());
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        known && matches
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_now(&super::new_secret()).unwrap_or_else(|_| {
            // Hashing a fresh random password cannot fail with the default
            // parameters; a fixed valid PHC string keeps the timing close.
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$yQvX3cKXCTqzj4MZVGsg2r5p2hP9mR6k9j8o0dDqB7s".to_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let stored = super::hash("correct horse").await.expect("hash");
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(super::verify("correct horse", Some(stored.clone())).await);
        assert!(!super::verify("wrong horse", Some(stored)).await);
        assert!(!super::verify("correct horse", None).await);
    }
}
