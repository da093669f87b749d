//! The WIT `plugins` interface: one plugin calling another's handler
//! in-process, the way an add-on or a fork reuses `goods` without copying
//! its code.
//!
//! A call is allowed only when the caller's manifest `depends` on the
//! callee (checked here, on every call, against the identity the caller was
//! loaded with), and only when the callee's own `[[routes]]` let the
//! original user through, the same judgement as over HTTP
//! ([`crate::caller::judge_route`]); a refusal comes back as the 401 or 403
//! answer the callee's route would have given. It carries the original user: the callee's [`CallState`]
//! gets the same `caller` as the request that started the chain, never a
//! wider one, and the host sets `x-plinth-calling-plugin` on the callee's
//! request so it knows which plugin asked. Chains are cut at
//! [`MAX_CALL_DEPTH`] plugins and whenever a plugin would appear in its own
//! chain (A → B → A), with an error naming the chain.
//!
//! The runtime knows nothing of the registry (it sits above it), so the
//! serving set is reached through [`PluginDirectory`], which the registry
//! implements and [`super::HostServices`] carries.
//!
//! [`CallState`]: super::bindings::CallState

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::bindings::PluginState;
use super::bindings::plinth::plugin::plugins::Host;
use super::bindings::plinth::plugin::types::{Header, Request, Response};
use super::{CallContext, PlinthComponent};
use crate::caller::Caller;

/// The longest chain of plugins one request may pass through.
pub const MAX_CALL_DEPTH: usize = 4;

/// Header the host sets on a called plugin's request: the caller's name.
pub const CALLING_PLUGIN_HEADER: &str = "x-plinth-calling-plugin";

/// The serving plugins, as far as calls between them need to know.
pub trait PluginDirectory: Send + Sync + std::fmt::Debug {
    /// Plugin `name`'s handler when it is serving and built for the plinth
    /// world.
    fn handler(&self, name: &str) -> Option<Arc<PlinthComponent>>;

    /// Why plugin `name` refuses `method path` (below its mount point) for
    /// `caller` before it runs, or `None` when it lets the call through.
    fn refuses(
        &self,
        name: &str,
        method: &str,
        path: &str,
        caller: Option<&Caller>,
    ) -> Option<CallRefused>;
}

/// A call the callee's route check refused: what it answers over HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRefused {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl CallRefused {
    /// The callee's answer, shaped like the host's JSON errors.
    fn into_response(self, request_id: &str) -> Response {
        let body = serde_json::json!({
            "error": { "code": self.code, "message": self.message, "request_id": request_id }
        });
        Response {
            status: self.status,
            headers: vec![Header {
                name: "content-type".into(),
                value: "application/json".into(),
            }],
            body: body.to_string().into_bytes(),
        }
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<Response, String>> + Send>>;

impl Host for PluginState {
    async fn call(&mut self, name: String, request: Request) -> Result<Response, String> {
        let me = self.identity.name.clone();
        if !self.identity.depends.contains(&name) {
            return Err(format!(
                "plugin {me} may not call plugin {name}: add {name} to [depends] in {me}'s plugin.toml"
            ));
        }
        let mut chain = self.call.chain.clone();
        chain.push(me.clone());
        if chain.contains(&name) || chain.len() >= MAX_CALL_DEPTH {
            return Err(format!(
                "call chain {} -> {name} cut: a plugin may not call back into its own chain, and chains are at most {MAX_CALL_DEPTH} plugins long",
                chain.join(" -> ")
            ));
        }
        let callee = self.services.plugins.handler(&name).ok_or_else(|| {
            format!("plugin {name} is not serving (disabled, removed or not a plinth-world plugin)")
        })?;
        if let Some(refused) = self.services.plugins.refuses(
            &name,
            &request.method,
            &request.path,
            self.call.caller.as_deref(),
        ) {
            return Ok(refused.into_response(&self.call.request_id));
        }
        let context = CallContext {
            caller: self.call.caller.clone(),
            chain,
        };
        let request_id = self.call.request_id.clone();
        let mut request = Some(request);
        // Boxed: the callee's handler may call further plugins, and the
        // future would otherwise contain itself.
        let answer: Answer = Box::pin(async move {
            callee
                .handle_in(context, |wit| {
                    if let Some(mut request) = request.take() {
                        request
                            .headers
                            .retain(|h| !h.name.eq_ignore_ascii_case(CALLING_PLUGIN_HEADER));
                        request.headers.push(Header {
                            name: CALLING_PLUGIN_HEADER.to_owned(),
                            value: me.clone(),
                        });
                        request.request_id = request_id.clone();
                        *wit = request;
                    }
                })
                .await
                .map_err(|e| e.to_string())
        });
        answer.await
    }
}
