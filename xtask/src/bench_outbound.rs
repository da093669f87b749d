//! The two servers of `cargo xtask bench`'s outbound row, run in the xtask
//! process: the upstream (a stand-in rates provider answering one JSON
//! document on `127.0.0.1:0`, which the host's config allows for the
//! `rates` plugin) and the native route it is compared with, an axum route
//! that makes the same call with one shared `reqwest` client and answers
//! what `rates` answers (`{"rates": <the document>}`).
//!
//! Each server has its own two-thread runtime, so the native route and the
//! upstream run side by side the way the host and the upstream do when the
//! plugin is measured.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

/// A provider's answer of the usual size (31 rates, about 600 bytes).
fn document() -> Value {
    let currencies = [
        "AUD", "BGN", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "GBP", "HKD", "HUF", "IDR", "ILS",
        "INR", "ISK", "JPY", "KRW", "MXN", "MYR", "NOK", "NZD", "PHP", "PLN", "RON", "SEK", "SGD",
        "THB", "TRY", "USD", "ZAR", "EUR",
    ];
    let rates: serde_json::Map<String, Value> = currencies
        .iter()
        .enumerate()
        .map(|(i, code)| ((*code).to_owned(), json!(1.0 + i as f64 * 0.137)))
        .collect();
    json!({ "amount": 1.0, "base": "EUR", "date": "2026-12-01", "rates": rates })
}

/// A server on its own runtime; dropping it stops the server.
pub struct Served {
    pub addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

fn serve(router: Router) -> Result<Served> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting a tokio runtime")?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    runtime.spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(Served {
        addr,
        _runtime: runtime,
    })
}

/// The upstream: `GET /latest` answers [`document`].
pub fn upstream() -> Result<Served> {
    let body = document().to_string();
    serve(Router::new().route(
        "/latest",
        get(move || {
            let body = body.clone();
            async move { ([("content-type", "application/json")], body) }
        }),
    ))
}

#[derive(Clone)]
struct Native {
    client: reqwest::Client,
    url: String,
}

/// The native route: `GET /rates` fetches `url` and answers
/// `{"rates": <its JSON>}`, as the `rates` plugin's `GET /` does.
pub fn native(url: String) -> Result<Served> {
    let state = Native {
        client: reqwest::Client::builder()
            .no_proxy()
            .build()
            .context("building the reqwest client")?,
        url,
    };
    serve(
        Router::new()
            .route("/rates", get(native_rates))
            .with_state(state),
    )
}

async fn native_rates(State(native): State<Native>) -> Result<Json<Value>, StatusCode> {
    let upstream = native
        .client
        .get(&native.url)
        .send()
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?;
    if upstream.status() != reqwest::StatusCode::OK {
        return Err(StatusCode::BAD_GATEWAY);
    }
    let rates: Value = upstream.json().await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    Ok(Json(json!({ "rates": rates })))
}
