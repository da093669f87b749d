//! The vendor server: the router ([`app`]) and running it on a listener
//! together with the delivery poller ([`start`]).
//!
//! | route | what |
//! |---|---|
//! | `GET /api/agent` | the agents' websocket ([`agent_ws`]) |
//! | `GET /packages/{name}/{version}` | package downloads with `Range` ([`downloads`]) |
//! | `GET /`, `GET /api/status` | status page and the same as JSON ([`status_page`]) |
//! | `GET /healthz` | database round trip |
//! | `GET /api/openapi.json` | the OpenAPI document of all of these ([`openapi`]) |
//!
//! Agents and downloads authenticate with the customer's bearer token
//! ([`auth`]); errors are JSON `{code, message}` ([`error`]).

pub mod agent_ws;
pub mod auth;
pub mod deliver;
pub mod downloads;
pub mod error;
pub mod openapi;
pub mod status_page;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use plinth_package::VendorKey;
use plinth_package::protocol::{AGENT_PATH, PACKAGES_PATH};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::Vendor;
use crate::db::deployments;
use crate::deploy::DEFAULT_TTL_SECS;
use crate::error::VendorError;
use deliver::ConnectionRegistry;

/// Tunables of a running server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// How often the poller looks for new deployments and cancellations.
    pub poll_interval: Duration,
    /// A connection that sends nothing (not even a ping) this long is closed.
    pub idle_timeout: Duration,
    /// How long a new connection may take to send `hello`.
    pub hello_timeout: Duration,
    /// Validity of deployments the server reissues (unix seconds).
    pub deployment_ttl_secs: i64,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(200),
            idle_timeout: Duration::from_secs(90),
            hello_timeout: Duration::from_secs(30),
            deployment_ttl_secs: DEFAULT_TTL_SECS,
        }
    }
}

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    shared: Arc<Shared>,
}

struct Shared {
    vendor: Vendor,
    key: VendorKey,
    registry: Arc<ConnectionRegistry>,
    options: ServerOptions,
}

impl AppState {
    /// The server needs the signing key to reissue expired deployments.
    pub fn new(vendor: Vendor, key: VendorKey, options: ServerOptions) -> Self {
        Self {
            shared: Arc::new(Shared {
                vendor,
                key,
                registry: Arc::new(ConnectionRegistry::default()),
                options,
            }),
        }
    }

    pub fn vendor(&self) -> &Vendor {
        &self.shared.vendor
    }

    pub fn key(&self) -> &VendorKey {
        &self.shared.key
    }

    pub fn registry(&self) -> &Arc<ConnectionRegistry> {
        &self.shared.registry
    }

    pub fn options(&self) -> &ServerOptions {
        &self.shared.options
    }
}

/// The router with every route and layer.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route(AGENT_PATH, get(agent_ws::connect))
        .route(
            &format!("{PACKAGES_PATH}/{{name}}/{{version}}"),
            get(downloads::download),
        )
        .route("/", get(status_page::html))
        .route("/api/status", get(status_page::json))
        .route("/healthz", get(status_page::healthz))
        .route("/api/openapi.json", get(openapi::document))
        .fallback(error::not_found)
        .layer(RequestBodyLimitLayer::new(64 * 1024))
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// A server running in this process.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    poller: JoinHandle<()>,
    registry: Arc<ConnectionRegistry>,
}

impl RunningServer {
    /// The address it listens on (useful after binding port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes every agent connection and waits for the
    /// server to finish.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        self.registry.close_all();
        let _ = self.poller.await;
        self.server
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
    }
}

/// Marks every agent disconnected (whatever a previous run left), starts
/// the delivery poller and serves [`app`] on `listener`.
pub async fn start(state: AppState, listener: TcpListener) -> Result<RunningServer, VendorError> {
    let vendor = state.vendor();
    deployments::reset_connections(&vendor.db).await?;
    let addr = listener.local_addr().map_err(|source| VendorError::Serve {
        addr: "the listener".into(),
        source,
    })?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let poller = deliver::spawn_poller(state.clone(), shutdown_rx.clone()).await?;
    let registry = state.registry().clone();
    let router = app(state);
    let mut server_shutdown = shutdown_rx;
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = server_shutdown.wait_for(|stop| *stop).await;
            })
            .await
    });
    tracing::info!(%addr, "vendor server listening");
    Ok(RunningServer {
        addr,
        shutdown,
        server,
        poller,
        registry,
    })
}
