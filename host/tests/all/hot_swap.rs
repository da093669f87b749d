//! Upgrades and rollbacks under a steady load of concurrent requests drop
//! no request: each is answered by either the old or the new version.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::support::{DbKind, TestDb, TestHost, package, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_upgrades_and_rollbacks_under_load_fail_no_request() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = TestHost::start(test_config(&db, data.path(), &[]))
        .await
        .expect("host starts");
    let admin = host.admin();
    assert_eq!(
        admin.install(package("goods-1.0.0"), "install").await.0,
        201
    );
    let created = host
        .client
        .post(host.url("/p/goods/api/items"))
        .json(&json!({"sku": "LOAD-1", "name": "under load", "stock": 9}))
        .send()
        .await
        .expect("answered");
    assert_eq!(created.status(), 201);

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let seen_old = Arc::new(AtomicU64::new(0));
    let seen_new = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (client, url) = (host.client.clone(), host.url("/p/goods/api/items"));
        let (stop, ok, seen_old, seen_new, failures) = (
            stop.clone(),
            ok.clone(),
            seen_old.clone(),
            seen_new.clone(),
            failures.clone(),
        );
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match client.get(&url).send().await {
                    Ok(response) => {
                        let status = response.status();
                        let version = response
                            .headers()
                            .get("x-plugin-version")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        let body = response.text().await.unwrap_or_default();
                        match (status.as_u16(), version.as_deref()) {
                            (200, Some("1.0.0")) => {
                                seen_old.fetch_add(1, Ordering::Relaxed);
                            }
                            (200, Some("1.1.0")) => {
                                seen_new.fetch_add(1, Ordering::Relaxed);
                            }
                            other => {
                                if let Ok(mut f) = failures.lock() {
                                    f.push(format!("{other:?}: {body}"));
                                }
                                continue;
                            }
                        }
                        if !body.contains("LOAD-1") {
                            if let Ok(mut f) = failures.lock() {
                                f.push(format!("row missing: {body}"));
                            }
                            continue;
                        }
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        if let Ok(mut f) = failures.lock() {
                            f.push(format!("transport: {e}"));
                        }
                    }
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(200)).await;
    for round in 0..10 {
        let (status, body) = admin.install(package("goods-1.1.0"), "upgrade").await;
        assert_eq!(status, 201, "upgrade {round}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (status, body) = admin.post("/plugins/goods/rollback").await;
        assert_eq!(status, 200, "rollback {round}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("client task");
    }

    let failures = failures.lock().map(|f| f.clone()).unwrap_or_default();
    assert!(
        failures.is_empty(),
        "{} failed requests, e.g. {:?}",
        failures.len(),
        failures.first()
    );
    let (ok, old, new) = (
        ok.load(Ordering::Relaxed),
        seen_old.load(Ordering::Relaxed),
        seen_new.load(Ordering::Relaxed),
    );
    assert!(ok >= 200, "the load was steady: {ok} requests");
    assert!(
        old > 0 && new > 0,
        "both versions answered: {old} old, {new} new"
    );
    host.stop().await;
}
