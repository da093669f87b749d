//! goods 1.1.0's nightly `stock-summary` task writes one summary row of the
//! stock to goods' own table per run, listed at
//! `/p/goods/api/stock-summaries`; a night missed while down is run once at
//! start-up (`missed = "run-once"`, shown in the task list).

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestHost, all_dbs, eventually, test_config};

#[tokio::test]
async fn the_nightly_task_writes_a_stock_summary_on_every_database() {
    for db in all_dbs().await {
        let kind = db.kind;
        let data = tempfile::tempdir().expect("temp dir");
        let host = TestHost::start(test_config(&db, data.path(), &[("goods", "1.1.0")]))
            .await
            .expect("host starts");
        for (sku, stock, price) in [("A-1", 2, 150), ("B-2", 40, 1000)] {
            let created = host
                .client
                .post(host.url("/p/goods/api/items"))
                .json(&json!({"sku": sku, "name": sku, "stock": stock, "price_cents": price}))
                .send()
                .await
                .expect("answered");
            assert_eq!(created.status(), 201, "on {kind}");
        }
        let (status, tasks) = host.admin().get("/tasks").await;
        assert_eq!(status, 200);
        let task = tasks
            .as_array()
            .expect("list")
            .iter()
            .find(|t| t["task"] == "stock-summary")
            .cloned()
            .unwrap_or_else(|| panic!("on {kind}: stock-summary listed in {tasks}"));
        assert_eq!(task["missed"], "run-once");
        assert_eq!(task["version"], "1.1.0");

        let (status, body) = host.admin().post("/tasks/goods/stock-summary/run").await;
        assert_eq!(status, 202, "on {kind}: {body}");
        let summaries: Value = eventually("a summary", Duration::from_secs(15), || async {
            let response = host.get("/p/goods/api/stock-summaries").await;
            let list: Value = response.json().await.ok()?;
            (list.as_array()?.len() == 1).then_some(list)
        })
        .await;
        let summary = &summaries[0];
        assert_eq!(summary["items"], 2, "on {kind}: {summary}");
        assert_eq!(summary["units"], 42, "on {kind}: {summary}");
        assert_eq!(
            summary["value_cents"],
            2 * 150 + 40 * 1000,
            "on {kind}: {summary}"
        );
        assert_eq!(
            summary["low_items"], 1,
            "on {kind}: below the default threshold 5"
        );
        host.stop().await;
    }
}

#[tokio::test]
async fn a_night_missed_while_down_is_summarised_once_at_start_up() {
    use plinth_host::db::task_runs::{self, Outcome, Tick};
    let db = crate::support::TestDb::create(crate::support::DbKind::Sqlite)
        .await
        .expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let config = test_config(&db, data.path(), &[("goods", "1.1.0")]);
    let host = TestHost::start(config.clone()).await.expect("host starts");
    // Stopped before the history is written: a scheduler pass of this first
    // host must not run the missed night itself.
    host.stop().await;
    let history = crate::support::test_pool(&db).await;
    // The last night it ran was three days ago; the host was down since.
    const DAY: i64 = 86_400_000;
    let night = |t: i64| t - t.rem_euclid(DAY) + (2 * 3600 + 30 * 60) * 1000;
    let long_ago = night(plinth_host::db::now_ms() - 3 * DAY);
    let tick = Tick {
        plugin: "goods".into(),
        task: "stock-summary".into(),
        scheduled_at: long_ago,
    };
    assert!(
        task_runs::claim(&history, &tick, "1.1.0", "old-host", 60_000)
            .await
            .expect("claim")
    );
    task_runs::finish(&history, &tick, Outcome::Ok, None)
        .await
        .expect("finish");
    history.close().await;

    let host = TestHost::start(config).await.expect("host restarts");
    let now = plinth_host::db::now_ms();
    let latest_missed = if night(now) < now {
        night(now)
    } else {
        night(now) - DAY
    };
    let runs = eventually("the missed night run", Duration::from_secs(15), || async {
        let runs = task_runs::runs(&host.host.db, "goods", Some("stock-summary"), 10, None)
            .await
            .ok()?;
        runs.iter()
            .any(|r| r.scheduled_at != Some(long_ago) && r.outcome == "ok")
            .then_some(runs)
    })
    .await;
    let ticks: Vec<i64> = runs.iter().filter_map(|r| r.scheduled_at).collect();
    assert_eq!(
        ticks,
        [latest_missed, long_ago],
        "once, for the latest missed night only"
    );
    let summaries: Value = host
        .get("/p/goods/api/stock-summaries")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(summaries.as_array().map(Vec::len), Some(1), "{summaries}");
    host.stop().await;
}
