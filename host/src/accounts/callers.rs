//! Turning a session cookie or a service token into an `Arc<Caller>`,
//! cached so a request that hits the cache costs one SHA-256 and one map
//! look-up.
//!
//! An entry is trusted while the grants generation it was built under is
//! still current, its session has not expired, and it was checked against
//! the database less than [`RECHECK`] ago. Every change to users, roles,
//! grants and tokens in this host bumps the generation, so revocation here
//! is immediate; [`RECHECK`] bounds how long another host sharing the
//! database may take to notice.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::caller::{Caller, CallerKind, GrantsGeneration, PermissionSet};
use crate::db::accounts;
use crate::db::{Db, DbError, now_ms};

/// How long a cached caller is trusted without asking the database.
pub const RECHECK: Duration = Duration::from_secs(5);

/// Entries kept at most; past that the cache starts afresh (a flood of
/// forged credentials must not grow memory).
const CAPACITY: usize = 10_000;

/// Which kind of credential a secret is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Credential {
    Session,
    ServiceToken,
}

#[derive(Debug, Clone)]
struct Entry {
    caller: Arc<Caller>,
    expires_at: i64,
    generation: u64,
    checked: Instant,
}

/// A credential's kind and the SHA-256 of its secret.
type Key = (Credential, [u8; 32]);

/// The cache of resolved callers. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct CallerCache {
    entries: Arc<RwLock<HashMap<Key, Entry>>>,
}

impl CallerCache {
    /// The caller `secret` stands for, or `None` when it stands for nobody
    /// (unknown, expired, revoked, disabled).
    pub async fn resolve(
        &self,
        db: &Db,
        grants: &GrantsGeneration,
        kind: Credential,
        secret: &str,
    ) -> Result<Option<Arc<Caller>>, DbError> {
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let generation = grants.current();
        if let Some(caller) = self.hit(kind, &digest, generation) {
            return Ok(Some(caller));
        }
        let hash = hex::encode(digest);
        let found = match kind {
            Credential::Session => load_session(db, &hash).await?,
            Credential::ServiceToken => load_service_token(db, &hash).await?,
        };
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        match found {
            None => {
                entries.remove(&(kind, digest));
                Ok(None)
            }
            Some((caller, expires_at)) => {
                if entries.len() >= CAPACITY {
                    entries.clear();
                }
                entries.insert(
                    (kind, digest),
                    Entry {
                        caller: caller.clone(),
                        expires_at,
                        generation,
                        checked: Instant::now(),
                    },
                );
                Ok(Some(caller))
            }
        }
    }

    fn hit(&self, kind: Credential, digest: &[u8; 32], generation: u64) -> Option<Arc<Caller>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(&(kind, *digest))?;
        (entry.generation == generation
            && entry.checked.elapsed() < RECHECK
            && now_ms() < entry.expires_at)
            .then(|| entry.caller.clone())
    }

    /// Forgets `secret` at once (sign-out).
    pub fn forget(&self, kind: Credential, secret: &str) {
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(kind, digest));
    }
}

/// A session's user, if the session still counts.
async fn load_session(db: &Db, hash: &str) -> Result<Option<(Arc<Caller>, i64)>, DbError> {
    let Some(session) = accounts::session(db, hash).await? else {
        return Ok(None);
    };
    if session.expires_at <= now_ms() {
        accounts::delete_session(db, hash).await?;
        return Ok(None);
    }
    let Some(user) = accounts::user_by_id(db, session.user_id).await? else {
        return Ok(None);
    };
    if user.disabled || user.token_version != session.token_version {
        return Ok(None);
    }
    accounts::touch_session(db, hash).await?;
    let caller = user_caller(db, &user).await?;
    Ok(Some((caller, session.expires_at)))
}

/// The caller a user is, with their roles' permissions.
pub async fn user_caller(db: &Db, user: &accounts::UserRow) -> Result<Arc<Caller>, DbError> {
    let roles = accounts::user_roles(db, user.id).await?;
    let effect = accounts::effect_of_user_roles(db, user.id).await?;
    let permissions = if effect.builtin {
        PermissionSet::super_admin()
    } else {
        PermissionSet::from_codes(effect.codes)
    };
    Ok(Arc::new(Caller {
        kind: CallerKind::User,
        id: user.id,
        login: user.login.clone(),
        display_name: user.display_name.clone(),
        roles,
        data_scope: effect.data_scope,
        permissions: Arc::new(permissions),
    }))
}

async fn load_service_token(db: &Db, hash: &str) -> Result<Option<(Arc<Caller>, i64)>, DbError> {
    let Some(token) = accounts::service_token_by_hash(db, hash).await? else {
        return Ok(None);
    };
    if token.revoked_at != 0 {
        return Ok(None);
    }
    accounts::touch_service_token(db, token.id).await?;
    let codes = accounts::service_token_grants(db, token.id).await?;
    let caller = Arc::new(Caller {
        kind: CallerKind::ServiceToken,
        id: token.id,
        login: token.name.clone(),
        display_name: token.name,
        roles: Vec::new(),
        data_scope: "all".to_owned(),
        permissions: Arc::new(PermissionSet::from_codes(codes)),
    });
    Ok(Some((caller, i64::MAX)))
}
