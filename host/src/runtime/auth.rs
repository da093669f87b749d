//! The `auth` interface (host API 0.2.0): who the request being handled is
//! from, read from the caller the HTTP layer checked and put into the call
//! state. The plugin learns who is calling, never how: it gets the user,
//! never a cookie or token.

use super::bindings::PluginState;
use super::bindings::plinth::plugin::auth::{Host, User};

impl Host for PluginState {
    async fn current_user(&mut self) -> Option<User> {
        let caller = self.call.caller.as_ref()?;
        Some(User {
            id: caller.id,
            login: caller.login.clone(),
            display_name: caller.display_name.clone(),
            roles: caller.roles.clone(),
            data_scope: caller.data_scope.clone(),
        })
    }

    async fn has_permission(&mut self, code: String) -> bool {
        let Some(caller) = self.call.caller.as_ref() else {
            return false;
        };
        let code = plinth_package::access::own_code(
            &self.identity.name,
            self.identity.forked_from.as_deref(),
            &code,
        );
        caller.has(&code)
    }
}
