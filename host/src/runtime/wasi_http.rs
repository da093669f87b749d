//! Standard `wasi:http/incoming-handler` components mounted as plugin
//! routes, whatever toolchain built them.
//!
//! Each request gets a fresh instance, as the `wasi:http/proxy` world
//! expects. The same memory and CPU limits apply as for plinth plugins, and
//! outbound HTTP (`wasi:http/outgoing-handler`) goes through the plugin's
//! [`OutboundClient`]: the same allow-list, address guard and limits as the
//! plinth world's outbound HTTP, so such a component gets no capability the
//! plinth world does not grant.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::sync::Semaphore;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::instance::classify;
use super::outbound::{OutboundClient, OutboundError, OutboundRequest};
use super::stdio::PluginLogStream;
use super::{CallError, PluginIdentity, RuntimeError, RuntimeSettings, ticks_for};

/// Sends a component's outgoing requests through its plugin's outbound
/// client; a refusal reaches the guest as the closest `wasi:http` error
/// code, and the host's log has the full reason.
struct PolicyOutbound {
    client: Arc<OutboundClient>,
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<wasmtime_wasi_http::WasiBody>,
    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
)>;

impl WasiHttpHooks for PolicyOutbound {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let client = self.client.clone();
        Box::new(async move {
            use wasmtime_wasi_http::Error as E;
            let (parts, body) = request.into_parts();
            // The request body is held in memory: cap it like a response.
            let cap = client.max_body_bytes();
            let body = http_body_util::Limited::new(body, cap as usize)
                .collect()
                .await
                .map_err(|_| E::HttpRequestBodySize(Some(cap)))?
                .to_bytes();
            let timeout_ms = options
                .and_then(|o| o.first_byte_timeout.or(o.connect_timeout))
                .map(|d| d.as_millis() as u64);
            let outbound = OutboundRequest {
                method: parts.method.to_string(),
                url: parts.uri.to_string(),
                headers: parts
                    .headers
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.as_str().to_owned(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body: body.to_vec(),
                timeout_ms,
            };
            let answer = client.send(outbound).await.map_err(|error| match error {
                OutboundError::Denied { .. } => E::HttpRequestDenied,
                OutboundError::BlockedAddress { .. } => E::DestinationIpProhibited,
                OutboundError::Timeout { .. } => E::ConnectionTimeout,
                OutboundError::TooLarge { limit, .. } => E::HttpResponseBodySize(Some(limit)),
                OutboundError::Failed(message) => E::InternalError(Some(message)),
            })?;
            let mut response = http::Response::builder().status(answer.status);
            for (name, value) in &answer.headers {
                response = response.header(name, value);
            }
            let body = Full::new(Bytes::from(answer.body))
                .map_err(|never: std::convert::Infallible| -> E { match never {} })
                .boxed_unsync();
            let response = response
                .body(body)
                .map_err(|e| E::InternalError(Some(e.to_string())))?;
            let done: Box<dyn Future<Output = Result<(), E>> + Send> = Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

pub struct HttpState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: PolicyOutbound,
    table: ResourceTable,
    limits: StoreLimits,
    ticks: u64,
    max_ticks: u64,
}

impl WasiView for HttpState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HttpState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

pub(super) fn linker(engine: &Engine) -> Result<Linker<HttpState>, RuntimeError> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
        .map_err(|e| RuntimeError::Engine(e.to_string()))?;
    Ok(linker)
}

/// A `wasi:http` component version, loaded and ready to serve.
pub struct HttpComponent {
    identity: Arc<PluginIdentity>,
    pre: ProxyPre<HttpState>,
    memory_limit_bytes: usize,
    call_timeout: Duration,
    permits: Arc<Semaphore>,
    outbound: Arc<OutboundClient>,
}

impl HttpComponent {
    pub(super) fn new(
        identity: Arc<PluginIdentity>,
        pre: ProxyPre<HttpState>,
        settings: &RuntimeSettings,
        outbound: Arc<OutboundClient>,
    ) -> Self {
        Self {
            identity,
            pre,
            memory_limit_bytes: settings.memory_limit_bytes,
            call_timeout: settings.call_timeout,
            permits: Arc::new(Semaphore::new(settings.max_warm_instances.max(1) * 4)),
            outbound,
        }
    }

    pub fn identity(&self) -> &PluginIdentity {
        &self.identity
    }

    /// Serves one request. The guest may go on streaming the body after
    /// the head is returned; it keeps its permit and its CPU budget until it
    /// finishes.
    pub async fn handle(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<HyperOutgoingBody>, CallError> {
        let plugin = self.identity.name.clone();
        let permit =
            self.permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| CallError::Instantiate {
                    plugin: plugin.clone(),
                    message: "shutting down".into(),
                })?;
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.memory_limit_bytes)
            .trap_on_grow_failure(true)
            .build();
        let budget = self.call_timeout;
        let state = HttpState {
            wasi: WasiCtx::builder()
                .stdout(PluginLogStream::new(plugin.clone(), "stdout"))
                .stderr(PluginLogStream::new(plugin.clone(), "stderr"))
                .build(),
            http: WasiHttpCtx::new(),
            hooks: PolicyOutbound {
                client: self.outbound.clone(),
            },
            table: ResourceTable::new(),
            limits,
            ticks: 0,
            max_ticks: ticks_for(budget),
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            state.ticks += 1;
            if state.ticks >= state.max_ticks {
                return Err(wasmtime::format_err!("CPU budget exceeded"));
            }
            Ok(UpdateDeadline::Yield(1))
        });
        store.set_epoch_deadline(1);

        let (parts, body) = request.into_parts();
        let body = Full::new(body).map_err(
            |never: std::convert::Infallible| -> wasmtime_wasi_http::Error { match never {} },
        );
        let request = http::Request::from_parts(parts, body);
        let internal = |e: wasmtime::Error| CallError::Instantiate {
            plugin: plugin.clone(),
            message: format!("{e:#}"),
        };
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)
            .map_err(internal)?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let outparam = store
            .data_mut()
            .http()
            .new_response_outparam(sender)
            .map_err(internal)?;

        let pre = self.pre.clone();
        let memory_limit = self.memory_limit_bytes;
        let task_plugin = plugin.clone();
        let task = tokio::spawn(async move {
            let _permit = permit;
            let run = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, incoming, outparam)
                    .await
            };
            match tokio::time::timeout(budget * 3 + Duration::from_secs(1), run).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    let cpu = store.data().ticks >= store.data().max_ticks;
                    let error = if cpu {
                        CallError::CpuBudget {
                            plugin: task_plugin.clone(),
                            budget_ms: budget.as_millis() as u64,
                        }
                    } else {
                        classify(&task_plugin, memory_limit, e, budget)
                    };
                    tracing::error!(plugin = %task_plugin, error = %error, "wasi:http component failed");
                    Err(error)
                }
                Err(_) => Err(CallError::Timeout {
                    plugin: task_plugin,
                    after_ms: (budget * 3).as_millis() as u64,
                }),
            }
        });

        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(CallError::BadResponse {
                plugin,
                message: format!("the component answered with error code {code:?}"),
            }),
            // The outparam was dropped unset: the task's result says why.
            Err(_) => match task.await {
                Ok(Err(error)) => Err(error),
                Ok(Ok(())) => Err(CallError::BadResponse {
                    plugin,
                    message: "the component returned without setting a response".into(),
                }),
                Err(join) => Err(CallError::Trap {
                    plugin,
                    message: format!("the serving task failed: {join}"),
                }),
            },
        }
    }
}
