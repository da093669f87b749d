//! Two real `plinth serve` processes on one PostgreSQL (and on one MariaDB)
//! run each tick of a task exactly once between them: over at least 10
//! consecutive ticks each tick has one run, the task's own count of its
//! executions equals the number of runs (a tick run by both hosts would
//! show twice there), and both hosts ran some.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use plinth_host::db::task_runs;
use serde_json::{Value, json};

use crate::support::{DbKind, ServeProcess, TestDb, repo_root, stage_plugin};

const TOKEN: &str = "claims-test-admin-token";

fn host_config(dir: &Path, db: &TestDb) -> std::path::PathBuf {
    let data = dir.join("data");
    stage_plugin(&data, "ticker", "0.1.0");
    let config = json!({
        "data_dir": data,
        "public_dir": repo_root().join("public"),
        "server": { "bind": "127.0.0.1:0" },
        "admin": { "token": TOKEN },
        "database": { "url": db.url, "schema_dir": repo_root().join("common-sql") },
        "plugins": [{ "name": "ticker", "version": "0.1.0" }],
    });
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("json")).expect("config");
    path
}

async fn serve(dir: &Path, db: &TestDb) -> ServeProcess {
    let config = host_config(dir, db);
    ServeProcess::start(
        Path::new(env!("CARGO_BIN_EXE_plinth")),
        &config,
        dir,
        &dir.join("data"),
    )
    .await
}

async fn each_tick_runs_once(kind: DbKind) {
    let Some(db) = TestDb::create(kind).await else {
        return;
    };
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    // One after the other: the first applies the schema and installs.
    let a = serve(dir_a.path(), &db).await;
    let b = serve(dir_b.path(), &db).await;
    let both_up = plinth_host::db::now_ms();

    let pool = crate::support::test_pool(&db).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let runs = loop {
        let runs = task_runs::runs(&pool, "ticker", Some("tick"), 500, None)
            .await
            .expect("runs");
        let since: usize = runs
            .iter()
            .filter(|r| r.scheduled_at.unwrap_or(0) > both_up + 1000 && r.outcome == "ok")
            .count();
        if since >= 12 {
            break runs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "too few ticks: {runs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    // Stop the schedule, let the last claimed tick finish, then compare.
    let client = reqwest::Client::new();
    let paused = client
        .post(a.url("/api/admin/tasks/ticker/tick/pause"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("pause");
    assert_eq!(paused.status(), 200);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let runs_now = task_runs::runs(&pool, "ticker", Some("tick"), 500, None)
        .await
        .expect("runs");
    let executed: Value = client
        .get(b.url("/p/ticker/ticks"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("ticks")
        .json()
        .await
        .expect("json");
    let executed = executed["ticks"].as_u64().expect("count") as usize;
    let ok = runs_now.iter().filter(|r| r.outcome == "ok").count();
    assert_eq!(
        executed,
        ok,
        "on {kind}: the task ran {executed} times for {ok} recorded runs ({} rows)",
        runs_now.len()
    );

    // Ten consecutive ticks while both served: each once.
    let mut by_tick: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for run in runs
        .iter()
        .filter(|r| r.scheduled_at.unwrap_or(0) > both_up + 1000)
    {
        by_tick
            .entry(run.scheduled_at.expect("tick"))
            .or_default()
            .push(run.host_id.clone().unwrap_or_default());
    }
    let ticks: Vec<i64> = by_tick.keys().copied().take(10).collect();
    assert_eq!(ticks.len(), 10);
    for pair in ticks.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            1000,
            "on {kind}: a tick was missed: {by_tick:?}"
        );
    }
    let hosts: BTreeSet<&String> = by_tick.values().flatten().collect();
    for (tick, ran_on) in &by_tick {
        assert_eq!(ran_on.len(), 1, "on {kind}: tick {tick} ran on {ran_on:?}");
    }
    assert_eq!(
        hosts.len(),
        2,
        "on {kind}: both hosts ran some ticks: {by_tick:?}"
    );

    let _ = a.stop().await;
    let _ = b.stop().await;
    pool.close().await;
}

#[tokio::test]
async fn two_hosts_on_one_postgres_run_each_tick_once() {
    each_tick_runs_once(DbKind::Postgres).await;
}

#[tokio::test]
async fn two_hosts_on_one_mariadb_run_each_tick_once() {
    each_tick_runs_once(DbKind::Mysql).await;
}
