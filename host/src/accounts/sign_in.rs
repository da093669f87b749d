//! Signing in: check a login and password, keep count of failures, lock an
//! account after too many, and open a server-side session. Every refusal
//! looks the same from outside, whether the login exists, the password was
//! wrong, or the account is locked or disabled, and takes about as long
//! (an unknown login still costs one Argon2 verification).

use std::sync::Arc;

use crate::caller::Caller;
use crate::config::SignInLimits;
use crate::db::accounts::{self, NewSession, UserRow};
use crate::db::{Db, now_ms};

use super::{AccountError, callers, new_secret, password, secret_hash};

/// A new session: the cookie value (shown to the browser once, stored only
/// hashed) and who it signs in.
#[derive(Debug)]
pub struct OpenedSession {
    pub secret: String,
    pub caller: Arc<Caller>,
    pub expires_at: i64,
}

/// Why a sign-in was refused; the HTTP answer is the same for all, the
/// audit log keeps the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownLogin,
    WrongPassword,
    Locked,
    Disabled,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownLogin => "unknown login",
            Self::WrongPassword => "wrong password",
            Self::Locked => "account locked",
            Self::Disabled => "account disabled",
        }
    }
}

/// Where the request came from, kept with the session.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: String,
    pub user_agent: String,
}

/// Checks `login` / `password` and opens a session.
pub async fn sign_in(
    db: &Db,
    limits: &SignInLimits,
    login: &str,
    password_given: &str,
    client: &Client,
) -> Result<Result<OpenedSession, Refusal>, AccountError> {
    let user = accounts::user_by_login(db, login).await?;
    let matches = password::verify(
        password_given,
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await;
    let Some(user) = user else {
        return Ok(Err(Refusal::UnknownLogin));
    };
    let now = now_ms();
    if user.locked_until > now {
        return Ok(Err(Refusal::Locked));
    }
    if !matches {
        let failures = accounts::count_failure(db, user.id).await?;
        if failures >= i64::from(limits.max_failures) {
            let until = now + (limits.lockout_secs as i64) * 1000;
            accounts::lock_until(db, user.id, until).await?;
        }
        return Ok(Err(Refusal::WrongPassword));
    }
    if user.disabled {
        return Ok(Err(Refusal::Disabled));
    }
    if user.failed_count != 0 || user.locked_until != 0 {
        accounts::reset_failures(db, user.id).await?;
    }
    open_session(db, limits, &user, client).await.map(Ok)
}

/// Opens a session for `user` at their current token version.
pub async fn open_session(
    db: &Db,
    limits: &SignInLimits,
    user: &UserRow,
    client: &Client,
) -> Result<OpenedSession, AccountError> {
    let secret = new_secret();
    let expires_at = now_ms() + (limits.session_hours as i64) * 3_600_000;
    let ip: String = client.ip.chars().take(64).collect();
    let user_agent: String = client.user_agent.chars().take(255).collect();
    accounts::insert_session(
        db,
        &NewSession {
            id_hash: &secret_hash(&secret),
            user_id: user.id,
            token_version: user.token_version,
            expires_at,
            ip: &ip,
            user_agent: &user_agent,
        },
    )
    .await?;
    let caller = callers::user_caller(db, user).await?;
    Ok(OpenedSession {
        secret,
        caller,
        expires_at,
    })
}
