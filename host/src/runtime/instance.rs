//! Calls into a plinth-world plugin through a small pool of warm instances.
//!
//! Instantiating a component per request costs tens of microseconds; reusing
//! a warm one costs a function call. So each plugin version keeps up to
//! `max_warm_instances` idle instances and the same number of permits for
//! concurrent calls. An instance is dropped instead of returned when its
//! call trapped, ran out of budget, was cancelled, or it has served
//! [`MAX_CALLS_PER_INSTANCE`] calls (which bounds what a slow leak in guest
//! memory can grow to).

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use sqlx::Any;
use tokio::sync::Semaphore;
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};

use super::bindings::{Plugin, PluginPre, PluginState, WitRequest, WitResponse};
use super::legacy_v0_1::{self, PluginPreV0_1, PluginV0_1};
use super::outbound::OutboundClient;
use super::{CallError, HostServices, PluginIdentity, RuntimeSettings, ticks_for};

/// A component linked against one version of the host API: the current one
/// or an earlier one the host still links (`legacy_v0_1`).
pub enum PlinthPre {
    Current(PluginPre<PluginState>),
    V0_1(PluginPreV0_1<PluginState>),
}

impl PlinthPre {
    /// The `plinth:plugin` version the component was built against.
    pub fn api_version(&self) -> &'static str {
        match self {
            Self::Current(_) => crate::HOST_API_VERSION,
            Self::V0_1(_) => "0.1.0",
        }
    }

    fn engine(&self) -> &wasmtime::Engine {
        match self {
            Self::Current(pre) => pre.engine(),
            Self::V0_1(pre) => pre.engine(),
        }
    }

    async fn instantiate(&self, store: &mut Store<PluginState>) -> wasmtime::Result<PlinthExports> {
        Ok(match self {
            Self::Current(pre) => PlinthExports::Current(pre.instantiate_async(store).await?),
            Self::V0_1(pre) => PlinthExports::V0_1(pre.instantiate_async(store).await?),
        })
    }
}

/// An instance's exports, in the version it was built against.
enum PlinthExports {
    Current(Plugin),
    V0_1(PluginV0_1),
}

/// Calls one instance serves before it is replaced by a fresh one.
pub const MAX_CALLS_PER_INSTANCE: u32 = 10_000;

/// The error an instance's epoch callback raises when the CPU budget is
/// spent; recognised again in [`classify`].
#[derive(Debug)]
struct CpuBudgetExceeded;

impl std::fmt::Display for CpuBudgetExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CPU budget exceeded")
    }
}

impl std::error::Error for CpuBudgetExceeded {}

struct WarmInstance {
    store: Store<PluginState>,
    plugin: PlinthExports,
    calls: u32,
    /// The request passed to `handle`, refilled per call so its strings,
    /// header list and body keep their allocations.
    request: WitRequest,
}

/// A request body buffer larger than this is not kept for the next call.
const KEEP_BODY_BYTES: usize = 64 * 1024;

/// A kept request with more headers than this is not kept either.
const KEEP_HEADERS: usize = 64;

fn empty_request() -> WitRequest {
    WitRequest {
        method: String::new(),
        path: String::new(),
        query: String::new(),
        headers: Vec::new(),
        body: Vec::new(),
        request_id: String::new(),
    }
}

/// What an install, task or event hook returned.
pub type HookOutcome = Result<(), String>;

/// The host's transaction an install hook or an event delivery runs in.
pub type InstallTx = sqlx::Transaction<'static, Any>;

/// The transactions a call runs in, handed back whatever happened (either
/// may be lost when the call had to be cut off).
#[derive(Default)]
pub struct CallTxs {
    /// The call's SQL runs here: an install hook's, an event delivery's.
    pub sql: Option<InstallTx>,
    /// The call's events go here instead, when set: the host's transaction
    /// during an install hook whose SQL runs in the plugin's own login.
    pub events: Option<InstallTx>,
}

impl CallTxs {
    fn sql(tx: InstallTx) -> Self {
        Self {
            sql: Some(tx),
            events: None,
        }
    }
}

/// Who a request is handled for: the user, and the plugins whose
/// `plugins.call` led here.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    pub caller: Option<Arc<crate::caller::Caller>>,
    pub chain: Vec<String>,
}

enum Call<'a> {
    /// Fills the instance's request buffer, which is then handled.
    Handle(
        &'a mut (dyn FnMut(&mut WitRequest) + Send + Sync),
        CallContext,
    ),
    Install {
        from: Option<&'a str>,
        to: &'a str,
    },
    RunTask(&'a str),
    OnEvent {
        topic: &'a str,
        payload: &'a str,
    },
}

enum CallOutput {
    Response(WitResponse),
    Hook(HookOutcome),
}

/// A plinth-world plugin version, loaded and ready to call.
pub struct PlinthComponent {
    identity: Arc<PluginIdentity>,
    pre: PlinthPre,
    services: HostServices,
    /// Shared by the warm instances, so the in-flight limit is per plugin.
    outbound: Arc<OutboundClient>,
    memory_limit_bytes: usize,
    call_timeout: Duration,
    task_timeout: Duration,
    /// Boxed so checkout and checkin move a pointer, not the instance
    /// (a `Store` and its kept request buffer) in and out of the lock.
    #[allow(clippy::vec_box)]
    idle: Mutex<Vec<Box<WarmInstance>>>,
    permits: Semaphore,
    max_idle: usize,
}

impl PlinthComponent {
    pub(super) fn new(
        identity: Arc<PluginIdentity>,
        pre: PlinthPre,
        services: HostServices,
        settings: &RuntimeSettings,
    ) -> Self {
        let max = settings.max_warm_instances.max(1);
        let outbound = Arc::new(OutboundClient::new(
            &identity.name,
            &identity.outbound_hosts,
            &services.outbound,
        ));
        Self {
            identity,
            pre,
            services,
            outbound,
            memory_limit_bytes: settings.memory_limit_bytes,
            call_timeout: settings.call_timeout,
            task_timeout: settings.task_timeout,
            idle: Mutex::new(Vec::with_capacity(max)),
            permits: Semaphore::new(max),
            max_idle: max,
        }
    }

    pub fn identity(&self) -> &PluginIdentity {
        &self.identity
    }

    /// The host API version the component was built against.
    pub fn api_version(&self) -> &'static str {
        self.pre.api_version()
    }

    /// Idle warm instances, for diagnostics and tests.
    pub fn idle_instances(&self) -> usize {
        self.idle.lock().map(|v| v.len()).unwrap_or(0)
    }

    /// Handles one HTTP request. `fill` writes the request into a buffer
    /// the instance keeps (every field is to be overwritten), so building it
    /// reuses the previous request's allocations.
    pub async fn handle(
        &self,
        fill: impl FnMut(&mut WitRequest) + Send + Sync,
    ) -> Result<WitResponse, CallError> {
        self.handle_in(CallContext::default(), fill).await
    }

    /// [`Self::handle`] on behalf of `context`'s user and call chain.
    pub async fn handle_in(
        &self,
        context: CallContext,
        mut fill: impl FnMut(&mut WitRequest) + Send + Sync,
    ) -> Result<WitResponse, CallError> {
        let (result, _) = self
            .call(
                Call::Handle(&mut fill, context),
                self.call_timeout,
                CallTxs::default(),
            )
            .await;
        match result? {
            CallOutput::Response(response) => Ok(response),
            CallOutput::Hook(_) => Err(self.bad_response("handler returned no response")),
        }
    }

    /// Runs the install hook with its SQL inside `tx`, where DDL is
    /// allowed, and its events in `events_tx` when given (else in `tx`).
    /// The transactions are handed back whatever happened so the caller
    /// decides to commit or roll back.
    pub async fn install(
        &self,
        tx: InstallTx,
        events_tx: Option<InstallTx>,
        from: Option<&str>,
        to: &str,
    ) -> (Result<HookOutcome, CallError>, CallTxs) {
        let txs = CallTxs {
            sql: Some(tx),
            events: events_tx,
        };
        let (result, txs) = self
            .call(Call::Install { from, to }, self.task_timeout, txs)
            .await;
        (result.and_then(|o| self.hook(o)), txs)
    }

    /// Runs a task declared in the manifest.
    pub async fn run_task(&self, name: &str, budget: Duration) -> Result<HookOutcome, CallError> {
        let (result, _) = self
            .call(Call::RunTask(name), budget, CallTxs::default())
            .await;
        result.and_then(|o| self.hook(o))
    }

    /// Delivers an event the manifest subscribes to.
    pub async fn on_event(&self, topic: &str, payload: &str) -> Result<HookOutcome, CallError> {
        let (result, _) = self
            .call(
                Call::OnEvent { topic, payload },
                self.call_timeout,
                CallTxs::default(),
            )
            .await;
        result.and_then(|o| self.hook(o))
    }

    /// Delivers an event with the hook's SQL (DML only) inside `tx`, the
    /// relay's transaction that also marks the delivery done, so what the
    /// subscriber wrote and the delivery commit or roll back together. The
    /// transaction is handed back whatever happened.
    pub async fn on_event_in(
        &self,
        tx: InstallTx,
        topic: &str,
        payload: &str,
    ) -> (Result<HookOutcome, CallError>, Option<InstallTx>) {
        let (result, txs) = self
            .call(
                Call::OnEvent { topic, payload },
                self.call_timeout,
                CallTxs::sql(tx),
            )
            .await;
        (result.and_then(|o| self.hook(o)), txs.sql)
    }

    fn hook(&self, output: CallOutput) -> Result<HookOutcome, CallError> {
        match output {
            CallOutput::Hook(outcome) => Ok(outcome),
            CallOutput::Response(_) => Err(self.bad_response("hook returned a response")),
        }
    }

    fn bad_response(&self, message: &str) -> CallError {
        CallError::BadResponse {
            plugin: self.identity.name.clone(),
            message: message.to_owned(),
        }
    }

    async fn call(
        &self,
        mut call: Call<'_>,
        budget: Duration,
        txs: CallTxs,
    ) -> (Result<CallOutput, CallError>, CallTxs) {
        // The semaphore is never closed, so acquire only fails if it were.
        let Ok(_permit) = self.permits.acquire().await else {
            return (Err(self.bad_response("plugin is shutting down")), txs);
        };
        // Install hooks always get a fresh instance, and theirs is not kept:
        // an upgrade's hook must not see state from requests, nor requests
        // state from the hook. (A transaction never stays in a kept store:
        // it is taken back below.)
        let fresh = matches!(call, Call::Install { .. });
        let warm = if !fresh { self.checkout() } else { None };
        let mut warm = match warm {
            Some(w) => w,
            None => match self.instantiate(budget).await {
                Ok(w) => w,
                Err(e) => return (Err(e), txs),
            },
        };

        let state = warm.store.data_mut();
        state.call.request_id.clear();
        state.call.caller = None;
        state.call.chain.clear();
        if let Call::Handle(fill, context) = &mut call {
            fill(&mut warm.request);
            state.call.request_id.push_str(&warm.request.request_id);
            state.call.caller = context.caller.take();
            state.call.chain = std::mem::take(&mut context.chain);
        }
        state.call.ticks = 0;
        state.call.max_ticks = ticks_for(budget);
        state.call.host_tx_ddl = fresh;
        state.call.install_tx = txs.sql;
        state.call.events_tx = txs.events;
        state.call.install_scope = None;
        // The epoch callback bounds CPU; the wall limit bounds time spent
        // waiting on the database or the executor as well, and plugin SQL
        // is stopped in the database by then.
        let wall = budget * 3 + Duration::from_secs(1);
        state.call.sql_deadline = Some(std::time::Instant::now() + wall);
        state.call.budget = budget;
        warm.store.set_epoch_deadline(1);

        let result = with_wall_limit(
            wall,
            Self::invoke(&mut warm.plugin, &mut warm.store, &call, &warm.request),
        )
        .await;
        super::sql_transaction::end_of_call(warm.store.data_mut()).await;
        let mut tx = warm.store.data_mut().call.install_tx.take();
        let events_tx = warm.store.data_mut().call.events_tx.take();
        if let (Some(tx), Some(entered)) =
            (tx.as_mut(), warm.store.data_mut().call.install_scope.take())
        {
            // Given up on mid-statement: back to the host's own scope before
            // the installer rolls the transaction back.
            let _ = crate::db::plugin_sql::leave(tx, &self.services.db, entered).await;
        }
        warm.store.data_mut().call.request_id.clear();
        // A pooled instance must not keep one request's caller for the next.
        warm.store.data_mut().call.caller = None;
        if warm.request.body.capacity() > KEEP_BODY_BYTES
            || warm.request.headers.len() > KEEP_HEADERS
        {
            warm.request = empty_request();
        }

        let txs = CallTxs {
            sql: tx,
            events: events_tx,
        };
        match result {
            Some(Ok(output)) => {
                warm.calls += 1;
                if !fresh {
                    self.checkin(warm);
                }
                (Ok(output), txs)
            }
            Some(Err(error)) => {
                let error = self.classify(error, budget);
                tracing::error!(plugin = %self.identity.name, version = %self.identity.version, error = %error, "plugin call failed; instance discarded");
                (Err(error), txs)
            }
            None => (
                Err(CallError::Timeout {
                    plugin: self.identity.name.clone(),
                    after_ms: wall.as_millis() as u64,
                }),
                txs,
            ),
        }
    }

    async fn invoke(
        plugin: &mut PlinthExports,
        store: &mut Store<PluginState>,
        call: &Call<'_>,
        request: &WitRequest,
    ) -> wasmtime::Result<CallOutput> {
        match plugin {
            PlinthExports::Current(plugin) => {
                Self::invoke_current(plugin, store, call, request).await
            }
            PlinthExports::V0_1(plugin) => Self::invoke_v0_1(plugin, store, call, request).await,
        }
    }

    async fn invoke_current(
        plugin: &Plugin,
        store: &mut Store<PluginState>,
        call: &Call<'_>,
        request: &WitRequest,
    ) -> wasmtime::Result<CallOutput> {
        Ok(match call {
            Call::Handle(..) => CallOutput::Response(
                plugin
                    .plinth_plugin_handler()
                    .call_handle(&mut *store, request)
                    .await?,
            ),
            Call::Install { from, to } => CallOutput::Hook(
                plugin
                    .plinth_plugin_lifecycle()
                    .call_install(&mut *store, *from, to)
                    .await?,
            ),
            Call::RunTask(name) => CallOutput::Hook(
                plugin
                    .plinth_plugin_lifecycle()
                    .call_run_task(&mut *store, name)
                    .await?,
            ),
            Call::OnEvent { topic, payload } => CallOutput::Hook(
                plugin
                    .plinth_plugin_lifecycle()
                    .call_on_event(&mut *store, topic, payload)
                    .await?,
            ),
        })
    }

    /// The same calls into a plugin built for host API 0.1.0.
    async fn invoke_v0_1(
        plugin: &PluginV0_1,
        store: &mut Store<PluginState>,
        call: &Call<'_>,
        request: &WitRequest,
    ) -> wasmtime::Result<CallOutput> {
        Ok(match call {
            Call::Handle(..) => CallOutput::Response(legacy_v0_1::response(
                plugin
                    .plinth_plugin_handler()
                    .call_handle(&mut *store, &legacy_v0_1::request(request))
                    .await?,
            )),
            Call::Install { from, to } => CallOutput::Hook(
                plugin
                    .plinth_plugin_lifecycle()
                    .call_install(&mut *store, *from, to)
                    .await?,
            ),
            Call::RunTask(name) => CallOutput::Hook(
                plugin
                    .plinth_plugin_lifecycle()
                    .call_run_task(&mut *store, name)
                    .await?,
            ),
            Call::OnEvent { topic, payload } => CallOutput::Hook(
                plugin
                    .plinth_plugin_lifecycle()
                    .call_on_event(&mut *store, topic, payload)
                    .await?,
            ),
        })
    }

    fn checkout(&self) -> Option<Box<WarmInstance>> {
        self.idle.lock().ok()?.pop()
    }

    fn checkin(&self, warm: Box<WarmInstance>) {
        if warm.calls >= MAX_CALLS_PER_INSTANCE {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.max_idle
        {
            idle.push(warm);
        }
    }

    async fn instantiate(&self, budget: Duration) -> Result<Box<WarmInstance>, CallError> {
        let limits: StoreLimits = StoreLimitsBuilder::new()
            .memory_size(self.memory_limit_bytes)
            .trap_on_grow_failure(true)
            .build();
        let state = PluginState::new(
            self.identity.clone(),
            self.services.clone(),
            self.outbound.clone(),
            limits,
        );
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_callback(|mut ctx| {
            let call = &mut ctx.data_mut().call;
            call.ticks += 1;
            if call.ticks >= call.max_ticks {
                return Err(CpuBudgetExceeded.into());
            }
            // Yield so a busy guest cannot starve other requests of a core.
            Ok(UpdateDeadline::Yield(1))
        });
        store.data_mut().call.max_ticks = ticks_for(budget);
        store.set_epoch_deadline(1);
        let plugin =
            self.pre
                .instantiate(&mut store)
                .await
                .map_err(|e| match self.classify(e, budget) {
                    CallError::Trap { plugin, message } => {
                        CallError::Instantiate { plugin, message }
                    }
                    other => other,
                })?;
        Ok(Box::new(WarmInstance {
            store,
            plugin,
            calls: 0,
            request: empty_request(),
        }))
    }

    fn classify(&self, error: wasmtime::Error, budget: Duration) -> CallError {
        classify(&self.identity.name, self.memory_limit_bytes, error, budget)
    }
}

/// Runs `call` for at most `limit` of wall time; `None` when it ran out.
///
/// Like `tokio::time::timeout`, but the clock is read and the timer armed
/// only once the call first returns `Pending` (it waits on a host future or
/// yields at an epoch tick). A call that completes in its first poll, as
/// most requests do, costs neither; the first poll itself runs guest code
/// for at most one epoch tick before yielding, so the limit is late by at
/// most that.
async fn with_wall_limit<F: Future>(limit: Duration, call: F) -> Option<F::Output> {
    let mut call = pin!(call);
    let mut deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = call.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        let deadline = deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Turns a wasmtime error into the reason a user can act on.
pub(super) fn classify(
    plugin: &str,
    memory_limit_bytes: usize,
    error: wasmtime::Error,
    budget: Duration,
) -> CallError {
    let plugin = plugin.to_owned();
    if error.downcast_ref::<CpuBudgetExceeded>().is_some() {
        return CallError::CpuBudget {
            plugin,
            budget_ms: budget.as_millis() as u64,
        };
    }
    let message = format!("{error:#}");
    if message.contains("growing memory")
        || message.contains("memory growth failure")
        || message.contains("memory minimum size")
    {
        return CallError::Memory {
            plugin,
            limit_mib: memory_limit_bytes / (1024 * 1024),
        };
    }
    let message = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => format!("{trap}"),
        None => message,
    };
    CallError::Trap { plugin, message }
}
