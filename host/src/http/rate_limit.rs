//! The per-route rate limits plugin manifests declare (`[[limits]]`,
//! `plinth_package::limits`), checked before the plugin is called: a
//! request over its limit gets 429 with `Retry-After` and the plugin never
//! sees it.
//!
//! Each limit is a keyed GCRA limiter from `governor`, keyed by the
//! caller's id (`per = "user"`; anonymous callers count per address), the
//! client address (`per = "ip"`) or nothing (`per = "plugin"`). Limiters
//! are found by plugin name and the limit as declared, so an upgrade that
//! keeps a limit keeps its counts and one that changes it starts afresh.
//! The address is the TCP peer: behind a reverse proxy every client shares
//! the proxy's address, so use `per = "user"` there.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use plinth_package::limits::{LimitPer, RouteLimit};

use super::ApiError;
use crate::caller::Caller;

/// Past this many remembered keys, a limiter forgets the keys whose
/// bucket is full again, so a scan from many addresses cannot grow it
/// without bound.
const RETAIN_ABOVE: usize = 10_000;

/// Every route limiter of the running host.
#[derive(Debug, Default)]
pub struct RouteLimiters {
    limiters: Mutex<HashMap<String, Arc<DefaultKeyedRateLimiter<String>>>>,
}

impl RouteLimiters {
    /// `Some(429 response)` when the request in `parts`, for `path` below
    /// plugin `plugin`'s mount point, is over one of `limits`.
    pub fn check(
        &self,
        plugin: &str,
        limits: &[RouteLimit],
        parts: &Parts,
        path: &str,
    ) -> Option<Response> {
        let method = parts.method.as_str();
        for limit in limits.iter().filter(|l| l.applies_to(method, path)) {
            let key = match limit.per {
                LimitPer::Plugin => String::new(),
                LimitPer::Ip => format!("ip:{}", peer(parts)),
                LimitPer::User => match parts.extensions.get::<Arc<Caller>>() {
                    Some(caller) => format!("user:{:?}:{}", caller.kind, caller.id),
                    None => format!("ip:{}", peer(parts)),
                },
            };
            let limiter = self.limiter(plugin, limit);
            if let Err(not_until) = limiter.check_key(&key) {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                // Whole seconds, rounded up: `Retry-After: 0` would invite
                // an immediate retry that fails again.
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                return Some(too_many(plugin, limit, secs.max(1)));
            }
            if limiter.len() > RETAIN_ABOVE {
                limiter.retain_recent();
            }
        }
        None
    }

    fn limiter(&self, plugin: &str, limit: &RouteLimit) -> Arc<DefaultKeyedRateLimiter<String>> {
        let id = format!(
            "{plugin} {} {:?} {:?} {}",
            limit.path, limit.methods, limit.per, limit.rate
        );
        let mut limiters = self
            .limiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        limiters
            .entry(id)
            .or_insert_with(|| {
                let rate = limit.rate();
                // One call back every period/count, with bursts of count.
                let every = rate.period / rate.count.get();
                let quota = Quota::with_period(every)
                    .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
                    .allow_burst(rate.count);
                Arc::new(RateLimiter::keyed(quota))
            })
            .clone()
    }
}

/// The TCP peer's address, when the server recorded it.
fn peer(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .map_or_else(|| "unknown".to_owned(), |ip: IpAddr| ip.to_string())
}

fn too_many(plugin: &str, limit: &RouteLimit, retry_after: u64) -> Response {
    let whom = match limit.per {
        LimitPer::Ip => "from one address",
        LimitPer::User => "from one user",
        LimitPer::Plugin => "in all",
    };
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "plugin {plugin} allows {} requests to {} {whom}; retry after {retry_after} s",
            limit.rate, limit.path
        ),
    )
    .into_response();
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from(retry_after),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per: LimitPer) -> RouteLimit {
        RouteLimit {
            path: "/api/items".into(),
            methods: vec!["POST".into()],
            per,
            rate: "2/min".into(),
        }
    }

    /// A POST to the limited path from `ip`, signed in as user `user`.
    fn request(ip: [u8; 4], user: Option<i64>) -> Parts {
        let mut request = axum::http::Request::post("/p/goods/api/items")
            .body(())
            .expect("request");
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((ip, 40000))));
        if let Some(id) = user {
            request.extensions_mut().insert(Arc::new(Caller {
                kind: crate::caller::CallerKind::User,
                id,
                login: format!("u{id}"),
                display_name: format!("U{id}"),
                roles: Vec::new(),
                data_scope: "self".into(),
                permissions: Arc::new(crate::caller::PermissionSet::default()),
            }));
        }
        request.into_parts().0
    }

    /// How many of `n` requests built by `make` pass `limits`.
    fn passed(
        limiters: &RouteLimiters,
        limits: &[RouteLimit],
        n: usize,
        make: impl Fn(usize) -> Parts,
    ) -> usize {
        (0..n)
            .filter(|i| {
                limiters
                    .check("goods", limits, &make(*i), "/api/items")
                    .is_none()
            })
            .count()
    }

    #[test]
    fn per_ip_counts_each_address_apart() {
        let (limiters, limits) = (RouteLimiters::default(), [limit(LimitPer::Ip)]);
        assert_eq!(
            passed(&limiters, &limits, 3, |_| request([10, 0, 0, 1], Some(1))),
            2
        );
        assert_eq!(
            passed(&limiters, &limits, 3, |_| request([10, 0, 0, 2], Some(1))),
            2,
            "another address has its own two, whoever is signed in"
        );
    }

    #[test]
    fn per_plugin_counts_everyone_together() {
        let (limiters, limits) = (RouteLimiters::default(), [limit(LimitPer::Plugin)]);
        let octet = |i: usize| u8::try_from(i + 1).unwrap_or(u8::MAX);
        assert_eq!(
            passed(&limiters, &limits, 4, |i| request(
                [10, 0, 0, octet(i)],
                Some(i as i64)
            )),
            2
        );
    }

    #[test]
    fn per_user_counts_anonymous_callers_by_address() {
        let (limiters, limits) = (RouteLimiters::default(), [limit(LimitPer::User)]);
        assert_eq!(
            passed(&limiters, &limits, 3, |_| request([10, 0, 0, 1], None)),
            2
        );
        assert_eq!(
            passed(&limiters, &limits, 3, |_| request([10, 0, 0, 2], None)),
            2
        );
        assert_eq!(
            passed(&limiters, &limits, 3, |_| request([10, 0, 0, 1], Some(9))),
            2,
            "a signed-in user from the same address counts on their own"
        );
        let refused = limiters
            .check(
                "goods",
                &limits,
                &request([10, 0, 0, 1], None),
                "/api/items",
            )
            .expect("over the limit");
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(
            refused
                .headers()
                .contains_key(axum::http::header::RETRY_AFTER)
        );
    }
}
