//! Who is calling: the identity a request carries once it has been
//! authenticated, and the permission codes it holds.
//!
//! It sits in the top layer so every layer can name it: the HTTP layer puts
//! an `Arc<Caller>` into a request's extensions after checking the session
//! or service token, the permission check reads it before a plugin is
//! called, and the runtime hands the user (never the cookie or token) to
//! the plugin. An anonymous request has no `Caller` at all.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use plinth_package::{Access, RouteTable};

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerKind {
    /// A person signed in through `/api/auth/login`.
    User,
    /// An automation token from the admin API (`plinth plugin …`, scripts).
    ServiceToken,
    /// The bootstrap `admin.token` from config.json.
    Bootstrap,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub kind: CallerKind,
    /// The user's or service token's row id.
    pub id: i64,
    /// The login (or the token's name).
    pub login: String,
    pub display_name: String,
    /// Role names, for the plugin to show; decisions use `permissions`.
    pub roles: Vec<String>,
    /// The widest data scope among the caller's roles (`all`, `department`,
    /// `self`, `custom`); enforcing it is the plugin's job.
    pub data_scope: String,
    pub permissions: Arc<PermissionSet>,
}

impl Caller {
    /// Whether the caller holds `code` (always, for a super-admin).
    pub fn has(&self, code: &str) -> bool {
        self.permissions.has(code)
    }
}

/// The effective permission codes of a caller, computed once per change of
/// their grants and shared by every request they make.
#[derive(Debug, Clone, Default)]
pub struct PermissionSet {
    super_admin: bool,
    codes: HashSet<String>,
}

impl PermissionSet {
    /// Every check passes: the built-in super-admin role.
    pub fn super_admin() -> Self {
        Self {
            super_admin: true,
            codes: HashSet::new(),
        }
    }

    pub fn from_codes(codes: impl IntoIterator<Item = String>) -> Self {
        Self {
            super_admin: false,
            codes: codes.into_iter().collect(),
        }
    }

    pub fn is_super_admin(&self) -> bool {
        self.super_admin
    }

    pub fn has(&self, code: &str) -> bool {
        self.super_admin || self.codes.contains(code)
    }

    /// The granted codes, sorted (a super-admin's set lists none: it needs
    /// none).
    pub fn codes(&self) -> Vec<&str> {
        let mut codes: Vec<&str> = self.codes.iter().map(String::as_str).collect();
        codes.sort_unstable();
        codes
    }
}

/// Whether a caller may reach a plugin route: the one decision behind the
/// check of an HTTP request and of a call from another plugin.
#[derive(Debug, PartialEq, Eq)]
pub enum RouteVerdict<'a> {
    Allowed,
    /// The route needs someone signed in, and there is no caller.
    NoCaller,
    /// The caller lacks this code.
    Lacks(&'a str),
    /// No declared route covers it, and the caller is not a super-admin.
    Undeclared,
}

/// Judges `method path` (below the plugin's mount point) against the
/// plugin's compiled routes for `caller`. A super-admin passes routes the
/// plugin does not declare; everyone else is refused them.
pub fn judge_route<'a>(
    routes: &'a RouteTable,
    method: &str,
    path: &str,
    caller: Option<&Caller>,
) -> RouteVerdict<'a> {
    match (routes.access(method, path), caller) {
        (Access::Public, _) => RouteVerdict::Allowed,
        (Access::Requires(code), Some(caller)) if caller.has(code) => RouteVerdict::Allowed,
        (Access::Undeclared, Some(caller)) if caller.permissions.is_super_admin() => {
            RouteVerdict::Allowed
        }
        (_, None) => RouteVerdict::NoCaller,
        (Access::Requires(code), Some(_)) => RouteVerdict::Lacks(code),
        (Access::Undeclared, Some(_)) => RouteVerdict::Undeclared,
    }
}

/// A counter bumped whenever any grant, role membership or declared
/// permission changes, so caches of [`PermissionSet`]s know to recompute.
#[derive(Debug, Clone, Default)]
pub struct GrantsGeneration(Arc<AtomicU64>);

impl GrantsGeneration {
    /// Call after committing a change to who may do what.
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn super_admin_holds_every_code_and_others_only_their_grants() {
        let admin = PermissionSet::super_admin();
        assert!(admin.has("goods.items.write"));
        let clerk = PermissionSet::from_codes(["goods.items.read".to_string()]);
        assert!(clerk.has("goods.items.read"));
        assert!(!clerk.has("goods.items.write"));
        assert_eq!(clerk.codes(), vec!["goods.items.read"]);
    }
}
