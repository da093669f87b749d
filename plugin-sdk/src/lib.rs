//! Write Plinth plugins in ordinary Rust.
//!
//! A Plinth plugin is a WebAssembly component built for `wasm32-wasip2` that
//! targets the `plinth:plugin/plugin` world (`wit/plugin.wit` in the Plinth
//! repository). This crate hides the generated bindings behind a small,
//! ordinary API: implement [`Plugin`], hand it to [`export!`], and use the
//! [`db`], [`log`], [`settings`], [`kv`], [`events`] and [`info`] modules to
//! talk to the host.
//!
//! # A complete minimal plugin
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "notes"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! plinth-sdk = { path = "../../plugin-sdk" }
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! `src/lib.rs`:
//!
//! ```no_run
//! use plinth_sdk::{Error, Plugin, Request, Response, Router, db};
//!
//! struct Notes;
//!
//! impl Plugin for Notes {
//!     fn router() -> Router {
//!         Router::new()
//!             .get("/", |_req: &Request| Response::text(200, "notes are up"))
//!             .get("/api/notes/:id", get_note)
//!             .post("/api/notes", add_note)
//!     }
//!
//!     fn install(from: Option<&str>, to: &str) -> Result<(), String> {
//!         plinth_sdk::log::info!("installing notes {to} over {from:?}");
//!         Ok(())
//!     }
//! }
//!
//! fn get_note(req: &Request) -> Result<Response, Error> {
//!     let id: i64 = req.param_parse("id")?;
//!     let sql = format!("SELECT id, body FROM {} WHERE id = ?", db::table("notes"));
//!     let rows = db::query(&sql, &[id.into()])?;
//!     let row = rows.first().ok_or_else(|| Error::not_found("no such note"))?;
//!     let body: String = row.get("body")?;
//!     Ok(Response::json(200, &serde_json::json!({ "id": id, "body": body })))
//! }
//!
//! #[derive(serde::Deserialize)]
//! struct NewNote {
//!     body: String,
//! }
//!
//! fn add_note(req: &Request) -> Result<Response, Error> {
//!     let note: NewNote = req.json()?;
//!     let sql = format!("INSERT INTO {} (body) VALUES (?)", db::table("notes"));
//!     db::execute(&sql, &[note.body.into()])?;
//!     Ok(Response::empty(201))
//! }
//!
//! plinth_sdk::export!(Notes);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2`; the
//! `.wasm` under `target/wasm32-wasip2/release/` is the component the host
//! loads, next to a `plugin.toml` manifest and the plugin's SQL migrations.
//!
//! # Layout
//!
//! | module | what it holds |
//! | --- | --- |
//! | (root) | [`Plugin`], [`export!`], [`Error`], re-exports of the HTTP types |
//! | [`router`] | [`Router`]: method + path pattern (`:param`, trailing `*rest`) dispatch |
//! | [`request`] | [`Request`]: method, path, query, headers, body, path params |
//! | [`response`] | [`Response`] builders and the [`IntoResponse`] conversion |
//! | [`auth`] | who is calling: [`auth::current_user`], [`auth::require`] (403 without the code) |
//! | [`db`] | SQL through the host: [`db::query`], [`db::execute`], typed [`db::Row`]s, [`db::table`] |
//! | [`log`] | log lines into the host's log ([`log::info()`] and the [`log::info!`] macro, …) |
//! | [`settings`] | the operator's settings for this plugin |
//! | [`kv`] | a small private key-value store |
//! | [`events`] | publishing events to other plugins |
//! | [`files`] | the plugin's files, kept across upgrades; `public/` served by the host |
//! | [`plugins`] | calling the routes of plugins this one `depends` on, as the same user |
//! | [`info`] | who this plugin is as installed: name, version, table prefix, mount path |
//! | [`html`] | escaping text for server-rendered HTML |
//!
//! The router, request, response and row-typing code is plain Rust with no
//! host calls, so it is unit-tested on the build machine. Functions that call
//! the host only work inside a plugin running under Plinth; called from a
//! native test they panic with a message saying so.
//!
//! # Instances are reused
//!
//! The host keeps warm instances and sends them many requests one after the
//! other. The [`Router`] is built once per instance, on the first request,
//! and kept; so is everything [`info`] returns. Statics in plugin code live
//! as long as the instance, so do not keep per-request state in them.

// `export!` expands in the plugin crate and names this crate by path; this
// lets the same paths work inside the SDK's own code and doc tests.
extern crate self as plinth_sdk;

pub mod auth;
pub mod db;
mod error;
pub mod events;
pub mod files;
pub mod html;
pub mod http;
pub mod info;
pub mod kv;
pub mod log;
#[cfg(any(
    test,
    all(
        feature = "fast-alloc",
        target_arch = "wasm32",
        not(target_feature = "atomics")
    )
))]
mod plugin_alloc;
pub mod plugins;
pub mod request;
pub mod response;
pub mod router;
pub mod settings;

pub use error::Error;
pub use request::Request;
pub use response::{IntoResponse, Response};
pub use router::Router;

/// Size-class free lists in front of dlmalloc: most of a small handler's
/// time went to malloc/free of the request's and response's strings.
#[cfg(all(
    feature = "fast-alloc",
    target_arch = "wasm32",
    not(target_feature = "atomics")
))]
#[global_allocator]
static GLOBAL: plugin_alloc::PluginAlloc = plugin_alloc::PluginAlloc::new();

/// Generated bindings for the `plinth:plugin/plugin` world.
///
/// Not part of the API: only [`export!`] and the SDK's own modules use it.
/// Its contents change whenever `wit-bindgen` or the WIT does.
#[doc(hidden)]
#[allow(unsafe_code, clippy::all, missing_docs)]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugin",
        // The export macro is invoked from plugin crates, which depend on
        // plinth-sdk only, so it and the runtime it expands to must be
        // reachable through this crate.
        pub_export_macro: true,
        default_bindings_module: "plinth_sdk::__bindings",
        runtime_path: "plinth_sdk::__bindings::wit_bindgen::rt",
    });

    pub use wit_bindgen;
}

/// What a plugin implements.
///
/// All hooks are associated functions: the host may reuse one instance for
/// many requests and calls, but a plugin has no `self` to carry between them.
/// Keep state in the database, [`kv`] or (per instance, as a cache only) in
/// statics.
pub trait Plugin {
    /// Builds the plugin's routes. Called once per instance, on its first
    /// request; the result is kept for the instance's lifetime.
    fn router() -> Router;

    /// Runs on install and on every upgrade, after the package's SQL
    /// migrations. `from` is `None` on a first install, else the version
    /// being replaced; `to` is the version being installed. An `Err` aborts
    /// the install and the previous version keeps serving. DDL is allowed
    /// here (and only here).
    fn install(from: Option<&str>, to: &str) -> Result<(), String> {
        let _ = (from, to);
        Ok(())
    }

    /// Runs the task `name` from the manifest's `[[tasks]]`. The error text
    /// is recorded in the task's run history. The default knows no task.
    fn run_task(name: &str) -> Result<(), String> {
        Err(format!("unknown task: {name}"))
    }

    /// Receives an event on a topic the manifest subscribes to. The default
    /// ignores it.
    fn on_event(topic: &str, payload: &str) -> Result<(), String> {
        let _ = (topic, payload);
        Ok(())
    }
}

/// Exports a [`Plugin`] implementation as the component's handler and
/// lifecycle hooks. Use it exactly once, at the root of the plugin crate:
///
/// ```no_run
/// struct Hello;
///
/// impl plinth_sdk::Plugin for Hello {
///     fn router() -> plinth_sdk::Router {
///         plinth_sdk::Router::new()
///             .get("/", |_req: &plinth_sdk::Request| plinth_sdk::Response::text(200, "hi"))
///     }
/// }
///
/// plinth_sdk::export!(Hello);
/// ```
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        // A named alias because the generated export macro takes an ident.
        #[doc(hidden)]
        type __PlinthSdkExport = $crate::__rt::Adapter<$plugin>;
        $crate::__bindings::export!(__PlinthSdkExport with_types_in $crate::__bindings);
    };
}

/// Glue between the generated traits and [`Plugin`]; used by [`export!`].
#[doc(hidden)]
pub mod __rt {
    use std::marker::PhantomData;
    use std::sync::OnceLock;

    use crate::__bindings::exports::plinth::plugin::{handler, lifecycle};
    use crate::__bindings::plinth::plugin::types;
    use crate::{Plugin, Request, Router};

    /// Implements the generated export traits for any [`Plugin`].
    pub struct Adapter<P>(PhantomData<P>);

    // One component exports exactly one plugin, so one router per instance.
    static ROUTER: OnceLock<Router> = OnceLock::new();

    impl<P: Plugin> handler::Guest for Adapter<P> {
        fn handle(req: types::Request) -> types::Response {
            let router = ROUTER.get_or_init(P::router);
            let headers = req.headers.into_iter().map(|h| (h.name, h.value)).collect();
            let mut request = Request::from_parts(
                req.method,
                req.path,
                req.query,
                headers,
                req.body,
                req.request_id,
            );
            let response = router.handle(&mut request);
            let (status, headers, body) = response.into_parts();
            types::Response {
                status,
                headers: headers
                    .into_iter()
                    .map(|(name, value)| types::Header { name, value })
                    .collect(),
                body,
            }
        }
    }

    impl<P: Plugin> lifecycle::Guest for Adapter<P> {
        fn install(from_version: Option<String>, to_version: String) -> Result<(), String> {
            P::install(from_version.as_deref(), &to_version)
        }

        fn run_task(name: String) -> Result<(), String> {
            P::run_task(&name)
        }

        fn on_event(topic: String, payload: String) -> Result<(), String> {
            P::on_event(&topic, &payload)
        }
    }
}

/// Panics when host functions are called outside a wasm32 plugin, e.g. from a
/// native unit test. The generated import stubs would otherwise hit a bare
/// `unreachable!()`.
#[inline(always)]
pub(crate) fn guest_only(what: &str) {
    #[cfg(not(target_arch = "wasm32"))]
    panic!(
        "plinth-sdk: `{what}` calls the Plinth host and only works inside a \
         wasm32 plugin; it was called in a native build (a unit test?)"
    );
    #[cfg(target_arch = "wasm32")]
    let _ = what;
}
