//! Calls to other plugins' routes, in-process, as the same user: how an
//! add-on reuses `goods` without copying its code. A plugin may call only
//! the plugins its manifest `depends` on; the callee's own permission checks
//! apply, and it sees the caller's name in the `x-plinth-calling-plugin`
//! header. Loops (A → B → A) and chains deeper than four plugins are cut by
//! the host with an error naming the chain.

use crate::__bindings::plinth::plugin::plugins as wit;
use crate::__bindings::plinth::plugin::types::{Header, Request as WitRequest};
use crate::Error;

/// What a called plugin answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::internal(format!(
                "the called plugin's answer is not the JSON expected: {e}"
            ))
        })
    }
}

/// Calls `method path` (below `plugin`'s mount point, with an optional
/// `?query`) on `plugin` with `body`. Refusals (no `depends`, a loop, the
/// plugin not serving) are 502 [`Error`]s carrying the host's message; the
/// callee's own error answers come back as a [`Reply`].
pub fn call(plugin: &str, method: &str, path: &str, body: &[u8]) -> Result<Reply, Error> {
    crate::guest_only("plugins::call");
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let request = WitRequest {
        method: method.to_ascii_uppercase(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers: vec![Header {
            name: "content-type".to_owned(),
            value: "application/json".to_owned(),
        }],
        body: body.to_vec(),
        request_id: String::new(),
    };
    let answer = wit::call(plugin, &request).map_err(|m| Error::new(502, m))?;
    Ok(Reply {
        status: answer.status,
        headers: answer
            .headers
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect(),
        body: answer.body,
    })
}

/// `GET path` on `plugin`.
pub fn get(plugin: &str, path: &str) -> Result<Reply, Error> {
    call(plugin, "GET", path, &[])
}
