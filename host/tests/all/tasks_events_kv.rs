//! What a plugin gets besides requests: scheduled tasks with their outcome
//! recorded, events delivered to subscribers, its own settings and a
//! persistent key-value store.

use std::time::{Duration, Instant};

use plinth_host::db::{store, task_runs};
use serde_json::json;

use crate::support::{DbKind, TestDb, TestHost, test_config};

async fn runs_of(host: &TestHost, plugin: &str, want: usize) -> Vec<task_runs::TaskRun> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let runs = task_runs::runs(&host.host.db, plugin, None, 50, None)
            .await
            .expect("task runs");
        let finished = runs.iter().filter(|r| r.outcome != "running").count();
        if finished >= want || Instant::now() > deadline {
            return runs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs a task now, as `POST /api/admin/tasks/…/run` does; whether it started.
async fn run_task(host: &TestHost, plugin: &str, task: &str) -> bool {
    host.scheduler
        .run_now(&host.host, plugin, task)
        .await
        .is_ok()
}

#[tokio::test]
async fn task_outcomes_are_recorded_and_a_runaway_task_is_stopped() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = TestHost::start(test_config(&db, data.path(), &[("probe", "0.1.0")]))
        .await
        .expect("host starts");

    let started = Instant::now();
    assert!(run_task(&host, "probe", "ok").await);
    assert!(run_task(&host, "probe", "fail").await);
    assert!(run_task(&host, "probe", "spin").await);
    // The same task is not started twice while it runs.
    assert!(!run_task(&host, "probe", "spin").await);

    let runs = runs_of(&host, "probe", 3).await;
    assert_eq!(runs.len(), 3, "{runs:?}");
    let outcome = |task: &str| {
        runs.iter()
            .find(|r| r.task == task)
            .map(|r| (r.outcome.clone(), r.message.clone().unwrap_or_default()))
            .unwrap_or_default()
    };
    assert_eq!(outcome("ok").0, "ok");
    assert_eq!(outcome("fail").0, "failed");
    assert!(outcome("fail").1.contains("failed as asked"));
    assert_eq!(outcome("spin").0, "timed_out");
    // Cut off by its CPU budget or its wall-time timeout, whichever first.
    let spin = outcome("spin").1;
    assert!(
        spin.contains("CPU budget") || spin.contains("timeout"),
        "{spin}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the 2 s task budget held: {:?}",
        started.elapsed()
    );
    // Requests are still served after a task was stopped.
    assert_eq!(host.get("/p/probe/ok").await.status(), 200);
    host.stop().await;
}

#[tokio::test]
async fn a_published_event_reaches_its_subscriber() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(&db, data.path(), &[("goods", "1.0.0"), ("probe", "0.1.0")]);
    config.plugins[0]
        .settings
        .insert("low_stock_threshold".into(), "5".into());
    let host = TestHost::start(config).await.expect("host starts");

    let created = host
        .client
        .post(host.url("/p/goods/api/items"))
        .json(&json!({"sku": "LOW-1", "name": "Nearly gone", "stock": 1}))
        .send()
        .await
        .expect("answered");
    assert_eq!(created.status(), 201);

    assert!(run_task(&host, "goods", "low-stock-report").await);
    let deadline = Instant::now() + Duration::from_secs(15);
    let body = loop {
        let response = host.get("/p/probe/last-event?topic=goods.stock-low").await;
        if response.status() == 200 {
            break response.text().await.expect("body");
        }
        assert!(Instant::now() < deadline, "the event never arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(body.contains("LOW-1"), "the payload names the item: {body}");
    host.stop().await;
}

#[tokio::test]
async fn settings_and_kv_are_the_plugins_own() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(&db, data.path(), &[("probe", "0.1.0")]);
    config.plugins[0]
        .settings
        .insert("colour".into(), "teal".into());
    let host = TestHost::start(config.clone()).await.expect("host starts");

    let setting = host.get("/p/probe/setting?key=colour").await;
    assert_eq!(setting.status(), 200);
    assert_eq!(setting.text().await.expect("body"), "teal");
    assert_eq!(host.get("/p/probe/setting?key=missing").await.status(), 404);

    let kv = host.get("/p/probe/kv?value=kept").await;
    assert_eq!(kv.text().await.expect("body"), "kept");
    host.stop().await;

    // The value is in the host database, under the plugin's name only.
    let host = TestHost::start(config).await.expect("host restarts");
    let stored = store::kv_get(&host.host.db, "probe", "probe")
        .await
        .expect("kv");
    assert_eq!(stored.as_deref(), Some(&b"kept"[..]));
    assert_eq!(
        store::kv_get(&host.host.db, "goods", "probe")
            .await
            .expect("kv"),
        None
    );
    host.stop().await;
}

/// A failed run is announced on the bus as `plinth.task.failed`, so a
/// plugin (here `notify`) can react to it.
#[tokio::test]
async fn a_failed_task_is_announced_to_subscribers() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = TestHost::start(test_config(
        &db,
        data.path(),
        &[("probe", "0.1.0"), ("notify", "0.1.0")],
    ))
    .await
    .expect("host starts");

    assert!(run_task(&host, "probe", "fail").await);
    let announced = crate::support::eventually(
        "notify records plinth.task.failed",
        Duration::from_secs(15),
        || async {
            let response = host.get("/p/notify/api/notifications").await;
            let ok = response.status() == 200;
            let text = response.text().await.unwrap_or_default();
            (ok && text.contains("plinth.task.failed")).then_some(text)
        },
    )
    .await;
    assert!(
        announced.contains("probe") && announced.contains("failed as asked"),
        "the announcement names the plugin and the error: {announced}"
    );
    host.stop().await;
}
