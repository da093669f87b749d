//! The audit log: who did what, when, from which address. Recording never
//! fails the operation it records (a full disk must not stop a sign-in
//! from being refused); a failed write is logged instead.

use crate::caller::{Caller, CallerKind};
use crate::db::accounts::{self, AuditEntry};
use crate::db::{Db, now_ms};

/// What happened, for one record.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub action: &'a str,
    pub target: &'a str,
    /// `ok`, `refused` or `failed`.
    pub outcome: &'a str,
    pub ip: &'a str,
    pub detail: &'a str,
}

/// The name an actor is recorded under.
pub fn actor_of(caller: Option<&Caller>) -> (String, &'static str) {
    match caller {
        None => (String::new(), "anonymous"),
        Some(c) => (
            c.login.clone(),
            match c.kind {
                CallerKind::User => "user",
                CallerKind::ServiceToken => "token",
                CallerKind::Bootstrap => "bootstrap",
            },
        ),
    }
}

/// Records `event` done by `caller` (or by `login` when given, for
/// sign-ins, which have no caller yet).
pub async fn record(db: &Db, caller: Option<&Caller>, login: Option<&str>, event: Event<'_>) {
    let (mut actor, kind) = actor_of(caller);
    if let Some(login) = login {
        actor = login.chars().take(200).collect();
    }
    let entry = AuditEntry {
        id: 0,
        at: now_ms(),
        actor,
        actor_kind: kind.to_owned(),
        action: event.action.to_owned(),
        target: event.target.chars().take(255).collect(),
        outcome: event.outcome.to_owned(),
        ip: event.ip.chars().take(64).collect(),
        detail: event.detail.chars().take(1000).collect(),
    };
    if let Err(e) = accounts::insert_audit(db, &entry).await {
        tracing::error!(error = %e, action = event.action, "could not write the audit log");
    }
}
