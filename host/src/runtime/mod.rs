//! The plugin runtime: one wasmtime [`Engine`], compiled components cached on
//! disk, and per-plugin instances with memory and CPU limits.
//!
//! The runtime knows nothing of axum or of the installer. It compiles a
//! component ([`Runtime::compile`]), pre-links it against the host's imports
//! ([`Runtime::load`]) and hands back a [`LoadedComponent`] that the HTTP
//! layer, the installer and the scheduler call into.
//!
//! Isolation, in short (the long form is in `docs/ARCHITECTURE.md`):
//! - every plugin version has its own stores, so no memory is shared between
//!   plugins;
//! - a plinth-world plugin keeps a small pool of warm instances and reuses
//!   one per call; state left in guest globals can therefore be seen by a
//!   later request of the same plugin, never by another plugin. An instance
//!   that traps, runs out of budget or is cancelled is thrown away;
//! - a standard `wasi:http` component gets a fresh instance per request, as
//!   its world expects;
//! - linear memory is capped per store (`StoreLimits`) and CPU per call by
//!   epoch interruption: the guest yields to the host every tick and traps
//!   when its budget is spent.

mod auth;
mod bindings;
mod cache;
mod files;
mod instance;
mod legacy_v0_1;
pub mod outbound;
pub mod plugin_calls;
mod sql_transaction;
mod stdio;
mod wasi_http;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use self::bindings::{WitHeader, WitRequest, WitResponse};
pub use self::cache::ComponentCache;
pub use self::instance::{CallContext, HookOutcome, PlinthComponent, PlinthPre};
pub use self::wasi_http::HttpComponent;
use crate::config::plugin_settings::ResolvedSettings;
use crate::db::Db;
use crate::events::EventBus;
use crate::plugin_files::PluginFiles;

/// How often the engine's epoch advances. A guest is interrupted at most
/// this late, and its CPU budget is counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Which world a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// `plinth:plugin/plugin`, written with plinth-sdk.
    Plinth,
    /// Standard `wasi:http/proxy` (exports `wasi:http/incoming-handler`).
    WasiHttp,
}

/// Limits applied to every plugin call.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// Linear memory cap per instance.
    pub memory_limit_bytes: usize,
    /// CPU budget of a request or event call.
    pub call_timeout: Duration,
    /// CPU budget of a scheduled task or install hook.
    pub task_timeout: Duration,
    /// Concurrent calls (and warm instances) per plugin version.
    pub max_warm_instances: usize,
    /// Use wasmtime's pooling allocator.
    pub pooling: bool,
    /// Where compiled components are cached.
    pub cache_dir: PathBuf,
}

/// Who a loaded plugin is, as the guest sees it through `plugin-info` and
/// `settings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginIdentity {
    pub name: String,
    pub version: String,
    pub table_prefix: String,
    /// e.g. `/p/goods`
    pub mount_path: String,
    /// The manifest's `capabilities.outbound_hosts`.
    pub outbound_hosts: Vec<String>,
    /// Checked settings; their `Debug` hides secrets.
    pub settings: ResolvedSettings,
    /// Its files under `data/files/<name>/`, for the WIT `files` interface.
    pub files: PluginFiles,
    /// The plugins its manifest `depends` on: the ones it may call.
    pub depends: Vec<String>,
    /// The plugin a fork was made from: its codes are read as the fork's.
    pub forked_from: Option<String>,
}

/// What host imports need from the rest of the host.
#[derive(Clone, Debug)]
pub struct HostServices {
    pub db: Db,
    pub events: EventBus,
    /// The operator's outbound HTTP settings (`outbound` in config.json).
    pub outbound: Arc<outbound::OutboundSettings>,
    /// The serving set, for `plugins.call`.
    pub plugins: Arc<dyn plugin_calls::PluginDirectory>,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot set up the wasm engine: {0}")]
    Engine(String),
    #[error("{context}: {message}")]
    Compile { context: String, message: String },
    #[error("cannot link {plugin}: {message}")]
    Link { plugin: String, message: String },
    #[error("compile cache at {path}: {source}")]
    Cache {
        path: String,
        source: std::io::Error,
    },
}

/// Why a call into a plugin did not return normally.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CallError {
    #[error("plugin {plugin} trapped: {message}")]
    Trap { plugin: String, message: String },
    #[error("plugin {plugin} used up its CPU budget of {budget_ms} ms")]
    CpuBudget { plugin: String, budget_ms: u64 },
    #[error("plugin {plugin} ran past its memory limit of {limit_mib} MiB")]
    Memory { plugin: String, limit_mib: usize },
    #[error("plugin {plugin} did not answer within {after_ms} ms")]
    Timeout { plugin: String, after_ms: u64 },
    #[error("plugin {plugin} could not be instantiated: {message}")]
    Instantiate { plugin: String, message: String },
    #[error("plugin {plugin} gave an invalid answer: {message}")]
    BadResponse { plugin: String, message: String },
}

/// A compiled component linked for one plugin version, ready to call.
#[derive(Clone)]
pub enum LoadedComponent {
    Plinth(Arc<PlinthComponent>),
    WasiHttp(Arc<HttpComponent>),
}

impl LoadedComponent {
    pub fn identity(&self) -> &PluginIdentity {
        match self {
            Self::Plinth(c) => c.identity(),
            Self::WasiHttp(c) => c.identity(),
        }
    }
}

impl std::fmt::Debug for LoadedComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let identity = self.identity();
        f.debug_struct("LoadedComponent")
            .field("name", &identity.name)
            .field("version", &identity.version)
            .finish()
    }
}

/// The engine, the linkers and the compile cache. One per host process.
pub struct Runtime {
    engine: Engine,
    plinth_linker: Linker<bindings::PluginState>,
    http_linker: Linker<wasi_http::HttpState>,
    cache: ComponentCache,
    settings: RuntimeSettings,
    ticker_stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Runtime {
    /// Builds the engine and starts the epoch ticker.
    pub fn new(settings: RuntimeSettings) -> Result<Self, RuntimeError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        if settings.pooling {
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(
                &settings,
            )));
        }
        let engine = Engine::new(&config).map_err(|e| RuntimeError::Engine(e.to_string()))?;

        let mut plinth_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut plinth_linker)
            .map_err(|e| RuntimeError::Engine(e.to_string()))?;
        bindings::Plugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut plinth_linker,
            |state| state,
        )
        .map_err(|e| RuntimeError::Engine(e.to_string()))?;
        legacy_v0_1::PluginV0_1::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut plinth_linker,
            |state| state,
        )
        .map_err(|e| RuntimeError::Engine(e.to_string()))?;

        let http_linker = wasi_http::linker(&engine)?;
        let cache = ComponentCache::new(&engine, &settings.cache_dir)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.clone();
        let stop = ticker_stop.clone();
        std::thread::Builder::new()
            .name("plinth-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|e| RuntimeError::Engine(format!("cannot start the epoch ticker: {e}")))?;

        Ok(Self {
            engine,
            plinth_linker,
            http_linker,
            cache,
            settings,
            ticker_stop,
        })
    }

    pub fn settings(&self) -> &RuntimeSettings {
        &self.settings
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles `wasm` or loads it from the cache. `context` names the
    /// plugin in error messages.
    pub fn compile(&self, context: &str, wasm: &[u8]) -> Result<Component, RuntimeError> {
        self.cache.get_or_compile(&self.engine, context, wasm)
    }

    /// Links a compiled component for `identity`. Checks that it really
    /// implements `world`, so a wrong manifest is caught at install time
    /// rather than on the first request.
    pub fn load(
        &self,
        identity: PluginIdentity,
        world: World,
        component: &Component,
        services: HostServices,
    ) -> Result<LoadedComponent, RuntimeError> {
        let identity = Arc::new(identity);
        match world {
            World::Plinth => {
                let pre = self.link_plinth(&identity.name, component)?;
                Ok(LoadedComponent::Plinth(Arc::new(PlinthComponent::new(
                    identity,
                    pre,
                    services,
                    &self.settings,
                ))))
            }
            World::WasiHttp => {
                let pre = self
                    .http_linker
                    .instantiate_pre(component)
                    .and_then(wasmtime_wasi_http::p2::bindings::ProxyPre::new)
                    .map_err(|e| RuntimeError::Link {
                        plugin: identity.name.clone(),
                        message: format!("{e:#}. Does it export wasi:http/incoming-handler@0.2?"),
                    })?;
                let outbound = Arc::new(outbound::OutboundClient::new(
                    &identity.name,
                    &identity.outbound_hosts,
                    &services.outbound,
                ));
                Ok(LoadedComponent::WasiHttp(Arc::new(HttpComponent::new(
                    identity,
                    pre,
                    &self.settings,
                    outbound,
                ))))
            }
        }
    }
}

impl Runtime {
    /// Links a plinth-world component against the host API version it was
    /// built for, read from the version of the handler it exports.
    fn link_plinth(&self, plugin: &str, component: &Component) -> Result<PlinthPre, RuntimeError> {
        let link_error = |message: String| RuntimeError::Link {
            plugin: plugin.to_owned(),
            message,
        };
        let built_for = component
            .component_type()
            .exports(&self.engine)
            .find_map(|(name, _)| {
                name.strip_prefix("plinth:plugin/handler@")
                    .map(str::to_owned)
            });
        let Some(built_for) = built_for else {
            return Err(link_error(format!(
                "it exports no plinth:plugin/handler. Is it built with plinth-sdk for host API {}?",
                crate::HOST_API_VERSION
            )));
        };
        let linked = |e: wasmtime::Error| {
            link_error(format!(
                "{e:#}. It was built for host API {built_for}; rebuild it with a plinth-sdk for that version"
            ))
        };
        let pre = self
            .plinth_linker
            .instantiate_pre(component)
            .map_err(linked)?;
        match built_for.as_str() {
            v if v == crate::HOST_API_VERSION => bindings::PluginPre::new(pre)
                .map(PlinthPre::Current)
                .map_err(linked),
            "0.1.0" => legacy_v0_1::PluginPreV0_1::new(pre)
                .map(PlinthPre::V0_1)
                .map_err(linked),
            other => Err(link_error(format!(
                "it was built for host API {other}, but this host links {}",
                crate::HOST_API_VERSIONS.join(" and ")
            ))),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// Pool sizing: enough slots for every plugin's warm instances plus
/// per-request `wasi:http` instances. Slots are virtual memory reservations;
/// only touched pages cost RAM.
fn pooling_config(settings: &RuntimeSettings) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(1000);
    pool.total_core_instances(4000);
    pool.total_memories(2000);
    pool.total_tables(2000);
    pool.total_stacks(1000);
    pool.max_memories_per_component(4);
    pool.max_tables_per_component(4);
    pool.max_memory_size(settings.memory_limit_bytes);
    pool
}

/// Ticks of [`EPOCH_TICK`] in `budget`, at least one.
fn ticks_for(budget: Duration) -> u64 {
    (budget.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}
