//! Plugins' outbound HTTP: one [`OutboundClient`] per loaded plugin version,
//! used by the WIT `outbound-http` import and by `wasi:http`
//! `outgoing-handler` alike, so both meet the same rules.
//!
//! A call goes through, in order: the allow-list ([`policy`], before any
//! DNS lookup); the address check on every address the name resolves to,
//! inside reqwest's resolver, so the connection goes to exactly the address
//! that was checked and nothing resolves twice; redirects followed here,
//! one hop at a time, each hop checked again from the start; a slot of the
//! plugin's in-flight limit, the time-out over the whole call, and the
//! response-size cap applied while the body streams in. System proxies are
//! ignored: a proxy would resolve the name itself, out of the guard's sight.
//!
//! Every call is logged with plugin, method, scheme, host, path, status,
//! bytes and milliseconds. Query strings are never logged: they often carry
//! keys.

pub mod policy;
mod wit;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use plinth_package::outbound::Scheme;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::Semaphore;

use crate::config::OutboundConfig;
pub use policy::{AddressClass, OutboundPolicy};

/// What the host-wide settings of outbound HTTP are, handed to every load.
#[derive(Debug, Clone, Default)]
pub struct OutboundSettings {
    pub config: OutboundConfig,
    /// The host's own listen address.
    pub own: Vec<IpAddr>,
}

/// One outbound request, as a plugin makes it.
#[derive(Debug, Clone, Default)]
pub struct OutboundRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Shorter than the host's `outbound.timeout_ms`; a longer one is cut.
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct OutboundResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why an outbound call failed. Each message names the cause and what to
/// change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("{host} is not an allowed outbound host; allow it in {setting}")]
    Denied { host: String, setting: String },
    #[error("{host} resolves to {address}, {class}; {hint}")]
    BlockedAddress {
        host: String,
        address: IpAddr,
        class: &'static str,
        hint: String,
    },
    #[error("the call to {host} did not finish within {after_ms} ms")]
    Timeout { host: String, after_ms: u64 },
    #[error(
        "the response from {host} is larger than the {limit} bytes allowed (outbound.max_response_bytes)"
    )]
    TooLarge { host: String, limit: u64 },
    #[error("{0}")]
    Failed(String),
}

/// The address check failing inside reqwest's resolver, carried out
/// through reqwest's error chain.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {address}, {}", class.describe())]
struct Blocked {
    host: String,
    address: IpAddr,
    class: AddressClass,
}

/// Resolves with the system resolver and refuses the whole name when any
/// of its addresses is not allowed: a name that mixes public and private
/// answers is a rebinding attempt or a misconfiguration, either way not
/// something to connect to.
struct CheckedResolver {
    policy: Arc<OutboundPolicy>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for addr in &found {
                if let Err(class) = policy.check_address(&host, addr.ip()) {
                    return Err(Box::new(Blocked {
                        host: host.clone(),
                        address: addr.ip(),
                        class,
                    })
                        as Box<dyn std::error::Error + Send + Sync>);
                }
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// Headers the host sets itself or that would change how the connection
/// is used; a plugin's value for them is dropped.
const HOST_OWNED: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// One plugin version's outbound client.
pub struct OutboundClient {
    policy: Arc<OutboundPolicy>,
    config: OutboundConfig,
    permits: Arc<Semaphore>,
    /// Built on first use: most plugins never call out.
    http: OnceLock<Result<reqwest::Client, String>>,
}

impl std::fmt::Debug for OutboundClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundClient")
            .field("plugin", &self.policy.plugin())
            .finish()
    }
}

impl OutboundClient {
    pub fn new(plugin: &str, manifest_hosts: &[String], settings: &OutboundSettings) -> Self {
        let policy = OutboundPolicy::new(
            plugin,
            manifest_hosts,
            &settings.config,
            settings.own.clone(),
        );
        Self {
            policy: Arc::new(policy),
            config: settings.config.clone(),
            permits: Arc::new(Semaphore::new(settings.config.max_in_flight.max(1) as usize)),
            http: OnceLock::new(),
        }
    }

    /// The response-size cap, also applied to request bodies held in memory.
    pub fn max_body_bytes(&self) -> u64 {
        self.config.max_response_bytes
    }

    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    fn http(&self) -> Result<&reqwest::Client, OutboundError> {
        self.http
            .get_or_init(|| {
                reqwest::Client::builder()
                    .no_proxy()
                    .redirect(reqwest::redirect::Policy::none())
                    .dns_resolver(Arc::new(CheckedResolver {
                        policy: self.policy.clone(),
                    }))
                    .connect_timeout(Duration::from_millis(self.config.timeout_ms))
                    .user_agent(concat!("plinth/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| format!("cannot set up the HTTP client: {e}"))
            })
            .as_ref()
            .map_err(|e| OutboundError::Failed(e.clone()))
    }

    /// Makes one call, following redirects, within the limits.
    pub async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        let started = Instant::now();
        let timeout_ms = request
            .timeout_ms
            .unwrap_or(self.config.timeout_ms)
            .clamp(1, self.config.timeout_ms);
        let method = request.method.to_ascii_uppercase();
        let first = reqwest::Url::parse(&request.url).map_err(|e| {
            OutboundError::Failed(format!("{:?} is not a valid URL: {e}", request.url))
        })?;
        let label = host_label(&first);
        let result = match tokio::time::timeout(
            Duration::from_millis(timeout_ms),
            self.follow(&method, first.clone(), request),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(OutboundError::Timeout {
                host: label.clone(),
                after_ms: timeout_ms,
            }),
        };
        let ms = started.elapsed().as_millis() as u64;
        let plugin = self.policy.plugin();
        let path = first.path();
        match &result {
            Ok((url, response)) => tracing::info!(
                plugin,
                method,
                host = %host_label(url),
                path = url.path(),
                status = response.status,
                bytes = response.body.len(),
                ms,
                "outbound call"
            ),
            Err(error) => tracing::warn!(
                plugin,
                method,
                host = %label,
                path,
                ms,
                %error,
                "outbound call failed"
            ),
        }
        result.map(|(_, response)| response)
    }

    /// The hops of one call: `Ok` holds the final URL and its response.
    async fn follow(
        &self,
        method: &str,
        mut url: reqwest::Url,
        request: OutboundRequest,
    ) -> Result<(reqwest::Url, OutboundResponse), OutboundError> {
        let http = self.http()?;
        let mut method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| OutboundError::Failed(format!("{method:?} is not a valid HTTP method")))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            if HOST_OWNED.iter().any(|h| h.eq_ignore_ascii_case(name)) {
                continue;
            }
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                OutboundError::Failed(format!("{name:?} is not a valid header name"))
            })?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                OutboundError::Failed(format!("the value of header {name} is not valid"))
            })?;
            headers.append(name, value);
        }
        let mut body = Some(request.body);
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| OutboundError::Failed("the host is shutting down".into()))?;
        for hop in 0..=self.config.max_redirects {
            self.check(&url)?;
            let mut builder = http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(bytes) = &body
                && !bytes.is_empty()
            {
                builder = builder.body(bytes.clone());
            }
            let response = builder.send().await.map_err(|e| self.send_error(&url, e))?;
            let status = response.status();
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(str::to_owned);
            let Some(location) = location.filter(|_| status.is_redirection()) else {
                let response = self.read(&url, response).await?;
                return Ok((url, response));
            };
            let next = url.join(&location).map_err(|_| {
                OutboundError::Failed(format!(
                    "{} redirected to {location:?}, which is not a valid URL",
                    host_label(&url)
                ))
            })?;
            tracing::debug!(plugin = self.policy.plugin(), hop, from = %host_label(&url), to = %host_label(&next), "outbound redirect");
            // As browsers do: 303, and 301/302 after a POST, become a GET
            // without a body; 307 and 308 repeat the request as it was.
            if status == reqwest::StatusCode::SEE_OTHER
                || (method == reqwest::Method::POST && matches!(status.as_u16(), 301 | 302))
            {
                method = reqwest::Method::GET;
                body = None;
                headers.remove(reqwest::header::CONTENT_TYPE);
            }
            // Credentials meant for one host are not handed to the next.
            if next.host_str() != url.host_str()
                || next.port_or_known_default() != url.port_or_known_default()
            {
                headers.remove(reqwest::header::AUTHORIZATION);
                headers.remove(reqwest::header::COOKIE);
            }
            url = next;
        }
        Err(OutboundError::Failed(format!(
            "{} redirected more than {} times (outbound.max_redirects); the call was stopped",
            host_label(&url),
            self.config.max_redirects
        )))
    }

    /// The allow-list check of one hop, and the address check when the
    /// host is an IP literal (reqwest does not resolve those).
    fn check(&self, url: &reqwest::Url) -> Result<(), OutboundError> {
        let scheme = Scheme::parse(url.scheme()).ok_or_else(|| {
            OutboundError::Failed(format!(
                "{}:// is not supported; use http:// or https://",
                url.scheme()
            ))
        })?;
        let host = match url.host() {
            Some(url::Host::Domain(name)) => name.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(OutboundError::Failed(format!("{url} has no host"))),
        };
        let port = url.port_or_known_default().unwrap_or(scheme.default_port());
        self.policy
            .check_destination(scheme, &host, port)
            .map_err(|denied| OutboundError::Denied {
                host: denied.host,
                setting: denied.setting,
            })?;
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal
            && let Err(class) = self.policy.check_address(&host, ip)
        {
            return Err(self.blocked(host, ip, class));
        }
        Ok(())
    }

    fn blocked(&self, host: String, address: IpAddr, class: AddressClass) -> OutboundError {
        OutboundError::BlockedAddress {
            hint: self.policy.private_setting(&host),
            host,
            address,
            class: class.describe(),
        }
    }

    /// A reqwest failure: the resolver's refusal is found in its source
    /// chain; the URL (and its query) is kept out of the message.
    fn send_error(&self, url: &reqwest::Url, error: reqwest::Error) -> OutboundError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(e) = source {
            if let Some(blocked) = e.downcast_ref::<Blocked>() {
                return self.blocked(blocked.host.clone(), blocked.address, blocked.class);
            }
            source = e.source();
        }
        let label = host_label(url);
        if error.is_timeout() {
            return OutboundError::Timeout {
                host: label,
                after_ms: self.config.timeout_ms,
            };
        }
        let error = error.without_url();
        let mut message = format!("the call to {label} failed: {error}");
        let mut source = std::error::Error::source(&error);
        while let Some(e) = source {
            message.push_str(&format!(": {e}"));
            source = e.source();
        }
        OutboundError::Failed(message)
    }

    /// Reads the body up to the cap, stopping as soon as it is passed.
    async fn read(
        &self,
        url: &reqwest::Url,
        mut response: reqwest::Response,
    ) -> Result<OutboundResponse, OutboundError> {
        let limit = self.config.max_response_bytes;
        let too_large = || OutboundError::TooLarge {
            host: host_label(url),
            limit,
        };
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.send_error(url, e))?
        {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(OutboundResponse {
            status,
            headers,
            body,
        })
    }
}

/// `scheme://host:port`, what messages and logs name.
fn host_label(url: &reqwest::Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or_default()
    )
}
