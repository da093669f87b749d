//! A misbehaving plugin fails alone: an infinite loop is stopped by its CPU
//! budget, memory growth stops at the limit, a panic becomes a 500 with a
//! request id, and the host keeps serving every other request meanwhile.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{DbKind, TestDb, TestHost, test_config};

async fn probe_host(
    tweak: impl FnOnce(&mut plinth_host::config::Config),
) -> (TestHost, TestDb, tempfile::TempDir) {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(&db, data.path(), &[("hello", "0.1.0"), ("probe", "0.1.0")]);
    tweak(&mut config);
    let host = TestHost::start(config).await.expect("host starts");
    (host, db, data)
}

async fn error_of(response: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = response.status().as_u16();
    let header = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = response.json().await.expect("JSON error body");
    (status, header, body)
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_by_its_cpu_budget_and_the_host_keeps_serving() {
    let (host, _db, _data) = probe_host(|c| c.runtime.call_timeout_ms = 300).await;

    let spin = {
        let client = host.client.clone();
        let url = host.url("/p/probe/spin");
        tokio::spawn(async move {
            let started = Instant::now();
            let response = client.get(url).send().await.expect("spin answered");
            (started.elapsed(), response)
        })
    };
    // While the loop burns its budget, other requests are answered.
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..20 {
        let response = host.get("/p/hello/").await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.expect("body"), "Hello from plinth");
    }

    let (elapsed, response) = spin.await.expect("spin task");
    assert!(
        elapsed < Duration::from_secs(3),
        "the loop ran {elapsed:?}, far past its 300 ms budget"
    );
    let (status, header, body) = error_of(response).await;
    assert_eq!(status, 504);
    assert_eq!(body["error"]["code"], "plugin_timeout");
    assert_eq!(body["error"]["request_id"].as_str(), header.as_deref());

    // The plugin itself recovers: the next call gets a fresh instance.
    let ok = host.get("/p/probe/ok").await;
    assert_eq!(ok.status(), 200);
    host.stop().await;
}

#[tokio::test]
async fn memory_growth_past_the_limit_fails_that_call_alone() {
    let (host, _db, _data) = probe_host(|c| c.runtime.memory_limit_mib = 16).await;

    let (status, header, body) = error_of(host.get("/p/probe/grow?mb=64").await).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["code"], "plugin_memory_limit");
    assert_eq!(body["error"]["request_id"].as_str(), header.as_deref());

    // Within the limit the same plugin still works, and so do the others.
    let small = host.get("/p/probe/grow?mb=2").await;
    assert_eq!(small.status(), 200);
    assert_eq!(host.get("/p/hello/").await.status(), 200);
    host.stop().await;
}

#[tokio::test]
async fn a_plugin_panic_becomes_a_500_with_the_request_id() {
    let (host, _db, _data) = probe_host(|_| {}).await;

    let response = host
        .client
        .get(host.url("/p/probe/panic"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .expect("answered");
    let (status, header, body) = error_of(response).await;
    assert_eq!(status, 500);
    assert_eq!(header.as_deref(), Some("trace-me-42"));
    assert_eq!(body["error"]["code"], "plugin_failed");
    assert_eq!(body["error"]["request_id"], "trace-me-42");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("probe"),
        "message names the plugin: {message}"
    );
    assert!(!message.contains("wasm"), "no internals leak: {message}");

    assert_eq!(host.get("/p/probe/ok").await.status(), 200);
    host.stop().await;
}

#[tokio::test]
async fn unknown_plugin_routes_get_a_json_404() {
    let (host, _db, _data) = probe_host(|_| {}).await;
    let (status, header, body) = error_of(host.get("/p/nope/x").await).await;
    assert_eq!(status, 404);
    assert!(header.is_some());
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("/p/nope/")
    );
    host.stop().await;
}
