//! Plugins' outbound HTTP through the host's client, against a real local
//! server on 127.0.0.1: an allowed host answers; a host not in the list is
//! refused before any lookup, a private address behind an allowed name and
//! redirects out of the list or onto a private address are refused, each
//! with a message naming why; an oversized response and a call past its
//! time-out fail alone while other calls go on.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use plinth_host::config::{OutboundConfig, PluginOutbound};
use plinth_host::runtime::outbound::{
    OutboundClient, OutboundError, OutboundRequest, OutboundSettings,
};

/// The stand-in for the rates provider, with routes that misbehave.
async fn provider() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let port = addr.port();
    let app = Router::new()
        .route(
            "/rates.json",
            get(|| async { axum::Json(serde_json::json!({"EUR": 1.0, "USD": 1.08})) }),
        )
        .route(
            "/away",
            get(|| async { redirect("http://elsewhere.invalid/rates.json") }),
        )
        .route(
            "/to-localhost",
            get(move || async move { redirect(&format!("http://localhost:{port}/rates.json")) }),
        )
        .route("/hop", get(|| async { redirect("/rates.json") }))
        .route("/big", get(|| async { vec![b'x'; 300_000] }))
        .route(
            "/big-stream",
            get(|| async {
                let chunks = futures::stream::iter(
                    (0..100).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 10_000])),
                );
                Body::from_stream(chunks)
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

fn redirect(to: &str) -> Response {
    (
        axum::http::StatusCode::FOUND,
        [(LOCATION, to.to_owned())],
        "",
    )
        .into_response()
}

fn client(manifest_hosts: &[String], operator: PluginOutbound) -> OutboundClient {
    let mut config = OutboundConfig {
        max_response_bytes: 100_000,
        timeout_ms: 3_000,
        ..OutboundConfig::default()
    };
    config.plugins.insert("rates".into(), operator);
    OutboundClient::new(
        "rates",
        manifest_hosts,
        &OutboundSettings {
            config,
            own: vec![],
        },
    )
}

fn get_url(url: String) -> OutboundRequest {
    OutboundRequest {
        method: "GET".into(),
        url,
        ..Default::default()
    }
}

/// The provider is allowed as `127.0.0.1:<port>` and exempted for private
/// use by config.json; `localhost:<port>` is allowed by the manifest but
/// not exempted.
fn rates_client(port: u16) -> OutboundClient {
    client(
        &[format!("localhost:{port}"), "api.example.com".into()],
        PluginOutbound {
            add_hosts: vec![format!("http://127.0.0.1:{port}")],
            allow_private: vec!["127.0.0.1".into()],
            ..Default::default()
        },
    )
}

#[tokio::test]
async fn an_allowed_host_answers_and_others_are_refused_with_the_reason() {
    let addr = provider().await;
    let port = addr.port();
    let rates = rates_client(port);

    let answer = rates
        .send(get_url(format!(
            "http://127.0.0.1:{port}/rates.json?key=secret"
        )))
        .await
        .expect("allowed host answers");
    assert_eq!(answer.status, 200);
    let json: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
    assert_eq!(json["USD"], 1.08);

    // Not in the list: refused before any lookup (the name could not even
    // resolve), naming the host and the setting.
    let error = rates
        .send(get_url("https://not-listed.invalid/x".into()))
        .await
        .expect_err("not allowed");
    assert!(matches!(error, OutboundError::Denied { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("https://not-listed.invalid:443"),
        "{message}"
    );
    assert!(message.contains("capabilities.outbound_hosts"), "{message}");

    // The same host on another port is another destination.
    let error = rates
        .send(get_url(format!(
            "http://127.0.0.1:{}/rates.json",
            port.wrapping_add(1).max(1)
        )))
        .await
        .expect_err("other port");
    assert!(matches!(error, OutboundError::Denied { .. }), "{error}");

    // An allowed name that resolves to loopback, not exempted.
    let error = rates
        .send(get_url(format!("http://localhost:{port}/rates.json")))
        .await
        .expect_err("private address");
    let message = error.to_string();
    assert!(
        matches!(error, OutboundError::BlockedAddress { .. }),
        "{message}"
    );
    assert!(message.contains("loopback"), "{message}");
    assert!(message.contains("allow_private"), "{message}");

    // Without the operator's exemption even the literal is refused.
    let strict = client(&[format!("127.0.0.1:{port}")], PluginOutbound::default());
    let error = strict
        .send(get_url(format!("http://127.0.0.1:{port}/rates.json")))
        .await
        .expect_err("loopback literal");
    assert!(
        matches!(error, OutboundError::BlockedAddress { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn redirects_are_checked_at_every_hop() {
    let addr = provider().await;
    let port = addr.port();
    let rates = rates_client(port);

    let followed = rates
        .send(get_url(format!("http://127.0.0.1:{port}/hop")))
        .await
        .expect("a redirect within the allowed host is followed");
    assert_eq!(followed.status, 200);

    let error = rates
        .send(get_url(format!("http://127.0.0.1:{port}/away")))
        .await
        .expect_err("redirect out of the list");
    let message = error.to_string();
    assert!(matches!(error, OutboundError::Denied { .. }), "{message}");
    assert!(message.contains("elsewhere.invalid"), "{message}");

    let error = rates
        .send(get_url(format!("http://127.0.0.1:{port}/to-localhost")))
        .await
        .expect_err("redirect onto loopback");
    let message = error.to_string();
    assert!(
        matches!(error, OutboundError::BlockedAddress { .. }),
        "{message}"
    );
    assert!(message.contains("localhost"), "{message}");
}

#[tokio::test]
async fn oversized_and_slow_calls_fail_alone() {
    let addr = provider().await;
    let port = addr.port();
    let rates = std::sync::Arc::new(rates_client(port));
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");

    for path in ["/big", "/big-stream"] {
        let error = rates.send(get_url(url(path))).await.expect_err(path);
        let message = error.to_string();
        assert!(
            matches!(error, OutboundError::TooLarge { .. }),
            "{path}: {message}"
        );
        assert!(message.contains("100000 bytes"), "{message}");
    }

    // A slow call past its own time-out, while another call goes through.
    let slow = {
        let rates = rates.clone();
        let url = url("/slow");
        tokio::spawn(async move {
            let started = Instant::now();
            let result = rates
                .send(OutboundRequest {
                    timeout_ms: Some(300),
                    ..get_url(url)
                })
                .await;
            (result, started.elapsed())
        })
    };
    let fine = rates
        .send(get_url(url("/rates.json")))
        .await
        .expect("still served");
    assert_eq!(fine.status, 200);
    let (result, took) = slow.await.expect("task");
    let error = result.expect_err("timed out");
    assert!(
        matches!(error, OutboundError::Timeout { after_ms: 300, .. }),
        "{error}"
    );
    assert!(
        took < Duration::from_secs(2),
        "stopped at its time-out, took {took:?}"
    );

    // The host's own limit caps what a plugin asks for.
    let started = Instant::now();
    let error = rates
        .send(OutboundRequest {
            timeout_ms: Some(60_000),
            ..get_url(url("/slow"))
        })
        .await
        .expect_err("capped");
    assert!(
        matches!(
            error,
            OutboundError::Timeout {
                after_ms: 3_000,
                ..
            }
        ),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

/// The rates example plugin through the WIT `outbound-http` import: the
/// operator points it at the local provider; everything else it is asked
/// to fetch is refused, and the request that asked gets the reason.
#[tokio::test]
async fn the_rates_plugin_reaches_only_what_config_allows() {
    let Some(db) = crate::support::TestDb::create(crate::support::DbKind::Sqlite).await else {
        return;
    };
    let addr = provider().await;
    let port = addr.port();
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = crate::support::test_config(&db, data.path(), &[("rates", "0.1.0")]);
    config.plugins[0].settings.insert(
        "source_url".into(),
        plinth_host::config::SettingValue::Text(format!("http://127.0.0.1:{port}/rates.json")),
    );
    config.outbound.timeout_ms = 1_000;
    config.outbound.max_response_bytes = 100_000;
    config.outbound.plugins.insert(
        "rates".into(),
        PluginOutbound {
            hosts: Some(vec![
                format!("http://127.0.0.1:{port}"),
                format!("localhost:{port}"),
            ]),
            allow_private: vec!["127.0.0.1".into()],
            ..Default::default()
        },
    );
    let host = crate::support::TestHost::start(config)
        .await
        .expect("host starts");

    let answer = host.get("/p/rates/").await;
    assert_eq!(answer.status(), 200);
    let json: serde_json::Value = answer.json().await.expect("json");
    assert_eq!(json["rates"]["USD"], 1.08, "{json}");

    let fetch = |url: String| {
        let host = &host;
        async move {
            let response = host
                .client
                .get(host.url("/p/rates/fetch"))
                .query(&[("url", url)])
                .send()
                .await
                .expect("answered");
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
    };
    for (url, status, expected) in [
        (
            "https://api.frankfurter.app/latest".to_owned(),
            502,
            "outbound.plugins.rates.hosts",
        ),
        (
            format!("http://localhost:{port}/rates.json"),
            502,
            "loopback",
        ),
        (
            format!("http://127.0.0.1:{port}/away"),
            502,
            "elsewhere.invalid",
        ),
        (
            format!("http://127.0.0.1:{port}/big"),
            502,
            "larger than the 100000 bytes",
        ),
        (
            format!("http://127.0.0.1:{port}/slow"),
            504,
            "did not finish within 1000 ms",
        ),
    ] {
        let (got, body) = fetch(url.clone()).await;
        assert_eq!(got, status, "{url}: {body}");
        assert!(body.contains(expected), "{url}: {body}");
    }
    // The plugin keeps serving after its calls failed.
    assert_eq!(host.get("/p/rates/").await.status(), 200);
    host.stop().await;
}

/// With one call in flight allowed, a second call waits for the slot and
/// runs out of its own time while the first is still out.
#[tokio::test]
async fn calls_past_the_in_flight_limit_wait_for_a_slot() {
    let addr = provider().await;
    let port = addr.port();
    let mut config = OutboundConfig {
        max_in_flight: 1,
        ..OutboundConfig::default()
    };
    config.plugins.insert(
        "rates".into(),
        PluginOutbound {
            hosts: Some(vec![format!("http://127.0.0.1:{port}")]),
            allow_private: vec!["127.0.0.1".into()],
            ..Default::default()
        },
    );
    let rates = std::sync::Arc::new(OutboundClient::new(
        "rates",
        &[],
        &OutboundSettings {
            config,
            own: vec![],
        },
    ));
    let slow = {
        let rates = rates.clone();
        tokio::spawn(async move {
            rates
                .send(OutboundRequest {
                    timeout_ms: Some(1_500),
                    ..get_url(format!("http://127.0.0.1:{port}/slow"))
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = rates
        .send(OutboundRequest {
            timeout_ms: Some(400),
            ..get_url(format!("http://127.0.0.1:{port}/rates.json"))
        })
        .await;
    assert!(
        matches!(waiting, Err(OutboundError::Timeout { .. })),
        "a fast call behind the only slot waits: {waiting:?}"
    );
    assert!(matches!(
        slow.await.expect("task"),
        Err(OutboundError::Timeout { .. })
    ));
    let after = rates
        .send(get_url(format!("http://127.0.0.1:{port}/rates.json")))
        .await
        .expect("the slot is free again");
    assert_eq!(after.status, 200);
}
