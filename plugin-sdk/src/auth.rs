//! Who is calling (host API 0.2): the user the host signed in for the
//! request being handled, and whether they hold a permission or button
//! code. The host checks a route's declared permission before the plugin
//! runs; a handler checks finer codes (a button's) with [`require`].
//! The plugin never sees the caller's cookie or token.
//!
//! ```no_run
//! use plinth_sdk::{Error, Request, Response, auth};
//!
//! fn remove(req: &Request) -> Result<Response, Error> {
//!     auth::require("B_GOODS_ITEM_DELETE")?; // 403 without it
//!     Ok(Response::empty(204))
//! }
//! ```

use crate::__bindings::plinth::plugin::auth as wit;
use crate::Error;

/// A signed-in user or a service token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub login: String,
    pub display_name: String,
    /// Role names, for display; decide with [`has_permission`].
    pub roles: Vec<String>,
    /// `all`, `department`, `self` or `custom`; enforcing it is the
    /// plugin's job.
    pub data_scope: String,
}

/// The caller of the request being handled; `None` on a public route
/// called anonymously, and in tasks, events and hooks.
pub fn current_user() -> Option<User> {
    crate::guest_only("auth::current_user");
    wit::current_user().map(|u| User {
        id: u.id,
        login: u.login,
        display_name: u.display_name,
        roles: u.roles,
        data_scope: u.data_scope,
    })
}

/// Whether the current caller holds `code` (false without a caller).
pub fn has_permission(code: &str) -> bool {
    crate::guest_only("auth::has_permission");
    wit::has_permission(code)
}

/// `Ok` when the current caller holds `code`, else a 403 naming it.
pub fn require(code: &str) -> Result<(), Error> {
    if has_permission(code) {
        Ok(())
    } else {
        Err(Error::forbidden(format!(
            "this needs the permission {code:?}, which you do not hold"
        )))
    }
}
