//! Delegation: what a caller may hand out or act on. A delegated
//! administrator (one holding `users.manage`, `roles.manage` or
//! `tokens.manage` without being a super-admin) may give only codes they
//! hold themselves, and may change a user only if they hold everything
//! that user holds. Without this, `users.manage` alone would let them give
//! themselves the super-admin role, or set a super-admin's password and
//! sign in as them; `roles.manage` would let them grant their own role any
//! code, and `tokens.manage` mint a token holding any.

use crate::caller::PermissionSet;

/// What lies beyond the giver's reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Beyond {
    /// The built-in super-admin role, which only a super-admin gives.
    BuiltinRole,
    /// A code the giver does not hold.
    Code(String),
}

/// Whether a holder of `giver` may hand out (or act on) what holds the
/// built-in role (`builtin`) or `codes`.
pub fn within_reach(giver: &PermissionSet, builtin: bool, codes: &[String]) -> Result<(), Beyond> {
    if giver.is_super_admin() {
        return Ok(());
    }
    if builtin {
        return Err(Beyond::BuiltinRole);
    }
    match codes.iter().find(|code| !giver.has(code)) {
        Some(code) => Err(Beyond::Code(code.clone())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(list: &[&str]) -> Vec<String> {
        list.iter().map(|c| (*c).to_owned()).collect()
    }

    #[test]
    fn a_super_admin_reaches_everything() {
        let root = PermissionSet::super_admin();
        assert_eq!(within_reach(&root, true, &codes(&["x.y"])), Ok(()));
    }

    #[test]
    fn a_delegate_gives_only_what_they_hold_and_never_the_builtin_role() {
        let delegate = PermissionSet::from_codes(codes(&["users.manage", "goods.items.read"]));
        assert_eq!(
            within_reach(&delegate, false, &codes(&["goods.items.read"])),
            Ok(())
        );
        assert_eq!(within_reach(&delegate, false, &[]), Ok(()));
        assert_eq!(
            within_reach(
                &delegate,
                false,
                &codes(&["goods.items.read", "plugins.install"])
            ),
            Err(Beyond::Code("plugins.install".into()))
        );
        assert_eq!(within_reach(&delegate, true, &[]), Err(Beyond::BuiltinRole));
    }
}
