//! Start-up seeding, idempotent across restarts: the built-in
//! `super-admin` role and the first administrator from `admin.login` /
//! `admin.password`. An existing administrator keeps the password they
//! chose; the config's password only ever creates the account.

use crate::config::Config;
use crate::db::Db;
use crate::db::accounts;

use super::{AccountError, SUPER_ADMIN_ROLE, password};

/// What seeding did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seeded {
    pub role_created: bool,
    pub admin_created: bool,
}

pub async fn seed(db: &Db, config: &Config) -> Result<Seeded, AccountError> {
    let role_created =
        accounts::insert_role(db, SUPER_ADMIN_ROLE, "Super administrator", "all", true).await?;
    let login = config.admin.login.trim();
    let mut admin_created = false;
    if accounts::user_by_login(db, login).await?.is_none() {
        let hash = password::hash(&config.admin.password).await?;
        if let Some(user) = accounts::insert_user(db, login, "Administrator", &hash).await? {
            accounts::add_user_role(db, user.id, SUPER_ADMIN_ROLE).await?;
            admin_created = true;
        }
    }
    Ok(Seeded {
        role_created,
        admin_created,
    })
}
