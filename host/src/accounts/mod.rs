//! Accounts: who may sign in and what they may do. Owns password hashing
//! (Argon2id, off the async runtime), seeding the built-in super-admin role
//! and the first administrator, signing in with lock-out, server-side
//! sessions and service tokens, resolving a credential into a
//! [`Caller`](crate::caller::Caller) through a cache, what a delegated
//! administrator may hand out ([`delegation`]), and the audit log.
//! SQL lives in [`crate::db::accounts`]; HTTP in `http/auth.rs` and
//! `http/accounts_admin.rs`.

pub mod audit;
pub mod callers;
pub mod delegation;
pub mod password;
pub mod seed;
pub mod sign_in;

use crate::db::DbError;

/// The name of the built-in role that bypasses every check.
pub const SUPER_ADMIN_ROLE: &str = "super-admin";

/// The host's own permission codes, each gating part of the admin API.
pub const HOST_PERMISSIONS: &[(&str, &str)] = &[
    ("plugins.view", "List plugins and the install journal"),
    ("plugins.install", "Install and upgrade plugins"),
    (
        "plugins.rollback",
        "Roll a plugin back to its previous version",
    ),
    ("plugins.remove", "Remove plugins"),
    ("plugins.enable", "Enable and disable plugins"),
    ("plugins.configure", "Change plugins' settings"),
    ("agent.view", "See the upgrade agent's state"),
    ("agent.manage", "Make the upgrade agent reconnect"),
    (
        "users.manage",
        "Create, change and delete users and their roles",
    ),
    (
        "roles.manage",
        "Create and delete roles and change their grants",
    ),
    ("tokens.manage", "Create and revoke service tokens"),
    ("audit.view", "Read the audit log"),
    ("tasks.view", "List plugin tasks and their runs"),
    ("tasks.manage", "Run, pause and resume plugin tasks"),
    ("events.view", "List undeliverable events (dead letters)"),
    ("events.manage", "Replay and discard dead letters"),
];

/// Whether `code` is one of the host's own permission codes.
pub fn is_host_permission(code: &str) -> bool {
    HOST_PERMISSIONS.iter().any(|(c, _)| *c == code)
}

/// Why an account operation failed inside the host.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// A new random secret (a session cookie or a service token), 256 bits as
/// hex. `rand`'s thread generator is a CSPRNG seeded from the OS.
pub fn new_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// The SHA-256 (hex) a secret is stored and looked up as.
pub fn secret_hash(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(secret.as_bytes()))
}
