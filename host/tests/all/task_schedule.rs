//! Manifest tasks run on their cron schedule on one host, each tick
//! recorded with its outcome: runs every second, a task past its timeout is
//! cut off while the host and the plugin's own routes keep serving, a long
//! task never overlaps itself, disabling the plugin stops its tasks until
//! it is enabled again,
//! pause survives a restart, run-now runs once (and 409s while running),
//! the history pages, a run in flight finishes on the version that started
//! it, removing the plugin stops (and cancels) its tasks, and
//! start-up marks runs a dead host left `running` as `interrupted`.
//!
//! The `ticker` plugin's tasks fire every second: `tick` (instant, and it
//! counts its own executions in `ticker_ticks`), `slow` (2.5 s), `hang`
//! (sleeps past its 1 s timeout, every 3 s).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use plinth_host::db::task_runs::{self, TaskRun, Tick};
use serde_json::Value;

use crate::support::{DbKind, TestDb, TestHost, eventually, test_config};

async fn ticker_host(db: &TestDb, data: &std::path::Path) -> TestHost {
    TestHost::start(test_config(db, data, &[("ticker", "0.1.0")]))
        .await
        .expect("host starts")
}

async fn runs(host: &TestHost, task: &str) -> Vec<TaskRun> {
    task_runs::runs(&host.host.db, "ticker", Some(task), 500, None)
        .await
        .expect("task runs")
}

fn with_outcome<'a>(runs: &'a [TaskRun], outcome: &str) -> Vec<&'a TaskRun> {
    runs.iter().filter(|r| r.outcome == outcome).collect()
}

#[tokio::test]
async fn a_task_every_second_runs_on_schedule_and_each_run_is_recorded() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = ticker_host(&db, data.path()).await;
    // Waited for, not slept: the scheduler's first pass only notes the next
    // tick, and on a loaded machine a run may finish just after a fixed
    // window closes.
    let all = eventually(
        "3 finished runs of the every-second task",
        Duration::from_secs(15),
        || async {
            let all = runs(&host, "tick").await;
            (with_outcome(&all, "ok").len() >= 3).then_some(all)
        },
    )
    .await;
    let ok = with_outcome(&all, "ok");
    let ticks: HashSet<i64> = ok.iter().filter_map(|r| r.scheduled_at).collect();
    assert_eq!(ticks.len(), ok.len(), "one run per tick");
    for run in &ok {
        let tick = run.scheduled_at.expect("tick recorded");
        assert_eq!(tick % 1000, 0, "ticks are whole seconds: {run:?}");
        assert_eq!(run.version, "0.1.0");
        assert_eq!(run.host_id.as_deref(), Some(host.scheduler.host_id()));
        let finished = run.finished_at.expect("finished");
        assert!(
            run.started_at >= tick - 50 && finished >= run.started_at,
            "{run:?}"
        );
    }
    // The task's own count of executions agrees with the history (a tick
    // recorded but not run, or run twice, would show here).
    let response = host.get("/p/ticker/ticks").await;
    let counted: Value = response.json().await.expect("json");
    let after = with_outcome(&runs(&host, "tick").await, "ok").len();
    let counted = counted["ticks"].as_u64().expect("count") as usize;
    assert!(
        counted >= ok.len() && counted <= after + 1,
        "executions {counted}, recorded {} then {after}",
        ok.len()
    );
    host.stop().await;
}

#[tokio::test]
async fn a_task_past_its_timeout_is_cut_off_while_the_host_keeps_serving() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = ticker_host(&db, data.path()).await;
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let timed_out = loop {
        let asked = Instant::now();
        assert_eq!(host.get("/healthz").await.status(), 200);
        // The plugin's own routes too: the hanging task holds one instance,
        // not the plugin.
        assert_eq!(host.get("/p/ticker/ticks").await.status(), 200);
        slowest = slowest.max(asked.elapsed());
        let all = runs(&host, "hang").await;
        if let Some(run) = with_outcome(&all, "timed_out").first() {
            break (*run).clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no hang run timed out: {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = timed_out.finished_at.expect("finished") - timed_out.started_at;
    assert!(
        (900..3000).contains(&took),
        "cut off at its 1 s timeout, not the 60 s it sleeps: {took} ms"
    );
    assert!(
        timed_out
            .message
            .as_deref()
            .unwrap_or("")
            .contains("timeout"),
        "{timed_out:?}"
    );
    // Blocked by the hanging task, either would take its whole 60 s.
    assert!(
        slowest < Duration::from_secs(3),
        "/healthz and a ticker route took {slowest:?}"
    );
    host.stop().await;
}

#[tokio::test]
async fn a_long_task_is_never_run_twice_at_once() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = ticker_host(&db, data.path()).await;
    let all = eventually(
        "two slow runs and a skipped tick",
        Duration::from_secs(20),
        || async {
            let all = runs(&host, "slow").await;
            (with_outcome(&all, "ok").len() >= 2
                && !with_outcome(&all, "skipped_overlap").is_empty())
            .then_some(all)
        },
    )
    .await;
    let mut ran: Vec<(i64, i64)> = with_outcome(&all, "ok")
        .iter()
        .map(|r| (r.started_at, r.finished_at.expect("finished")))
        .collect();
    ran.sort();
    for pair in ran.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "two runs overlapped: {pair:?} in {all:#?}"
        );
    }
    let skipped = with_outcome(&all, "skipped_overlap")[0];
    assert!(
        skipped
            .message
            .as_deref()
            .unwrap_or("")
            .contains("still running")
    );
    host.stop().await;
}

#[tokio::test]
async fn pause_survives_a_restart_and_run_now_runs_once() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let config = test_config(&db, data.path(), &[("ticker", "0.1.0")]);
    let host = TestHost::start(config.clone()).await.expect("host starts");
    eventually("a first tick", Duration::from_secs(10), || async {
        (!with_outcome(&runs(&host, "tick").await, "ok").is_empty()).then_some(())
    })
    .await;
    let (status, body) = host.admin().post("/tasks/ticker/tick/pause").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["paused"], true);
    // A tick claimed just before the pause may still finish.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = runs(&host, "tick").await.len();
    host.stop().await;

    let host = TestHost::start(config).await.expect("host restarts");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        runs(&host, "tick").await.len(),
        before,
        "a paused task stays paused after a restart"
    );
    let (status, list) = host.admin().get("/tasks").await;
    assert_eq!(status, 200, "{list}");
    let row = list
        .as_array()
        .expect("list")
        .iter()
        .find(|t| t["task"] == "tick")
        .expect("tick listed")
        .clone();
    assert_eq!(row["paused"], true, "{row}");
    assert_eq!(row["cron"], "* * * * * *");
    assert!(row["next_run_at"].as_i64().is_some(), "{row}");
    assert_eq!(row["last_run"]["outcome"], "ok", "{row}");

    // Run now: exactly one run, for the tick it answered with.
    let (status, body) = host.admin().post("/tasks/ticker/tick/run").await;
    assert_eq!(status, 202, "{body}");
    let at = body["scheduled_at"].as_i64().expect("scheduled_at");
    let run = eventually("the run-now run", Duration::from_secs(10), || async {
        runs(&host, "tick")
            .await
            .into_iter()
            .find(|r| r.scheduled_at == Some(at) && r.outcome == "ok")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        runs(&host, "tick").await.len(),
        before + 1,
        "run-now ran once: {run:?}"
    );

    // Run now while it runs: 409, and still no overlap.
    let (status, _) = host.admin().post("/tasks/ticker/slow/pause").await;
    assert_eq!(status, 200);
    eventually("slow to stop", Duration::from_secs(10), || async {
        (!host.scheduler.is_running_here("ticker", "slow")).then_some(())
    })
    .await;
    let (status, body) = host.admin().post("/tasks/ticker/slow/run").await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = host.admin().post("/tasks/ticker/slow/run").await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("is running"),
        "{body}"
    );

    let (status, body) = host.admin().post("/tasks/ticker/nope/run").await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = host.admin().post("/tasks/nobody/tick/pause").await;
    assert_eq!(status, 404);

    // Resume: the schedule picks up again.
    let (status, body) = host.admin().post("/tasks/ticker/tick/resume").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["paused"], false);
    eventually("ticks after resume", Duration::from_secs(10), || async {
        (runs(&host, "tick").await.len() >= before + 3).then_some(())
    })
    .await;
    host.stop().await;
}

#[tokio::test]
async fn run_history_pages_newest_first() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = ticker_host(&db, data.path()).await;
    eventually("5 ticks", Duration::from_secs(15), || async {
        (runs(&host, "tick").await.len() >= 5).then_some(())
    })
    .await;
    let (status, first) = host.admin().get("/tasks/ticker/tick/runs?limit=2").await;
    assert_eq!(status, 200, "{first}");
    let page: Vec<i64> = first["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(page.len(), 2);
    assert!(page[0] > page[1], "newest first: {page:?}");
    let before = first["next_before"].as_i64().expect("next page");
    assert_eq!(before, page[1]);
    let (_, second) = host
        .admin()
        .get(&format!("/tasks/ticker/tick/runs?limit=2&before={before}"))
        .await;
    let next: Vec<i64> = second["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(next.len(), 2);
    assert!(
        next[0] < page[1],
        "the next page is older: {page:?} then {next:?}"
    );
    assert!(second["runs"][0]["task"] == "tick" && second["runs"][0]["host_id"].is_string());
    let (status, body) = host.admin().get("/tasks/ticker/tick/runs?limit=0").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("limit")
    );
    host.stop().await;
}

#[tokio::test]
async fn removing_the_plugin_stops_its_tasks_and_cancels_a_run_in_flight() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = ticker_host(&db, data.path()).await;
    let (status, _) = host.admin().post("/tasks/ticker/slow/pause").await;
    assert_eq!(status, 200);
    eventually("slow to stop", Duration::from_secs(10), || async {
        (!host.scheduler.is_running_here("ticker", "slow")).then_some(())
    })
    .await;
    let (status, body) = host.admin().post("/tasks/ticker/slow/run").await;
    assert_eq!(status, 202, "{body}");
    let in_flight = body["scheduled_at"].as_i64().expect("scheduled_at");
    let (status, body) = host.admin().delete("/plugins/ticker").await;
    assert_eq!(status, 200, "{body}");
    let removed_at = plinth_host::db::now_ms();

    let cancelled = eventually(
        "the in-flight run cancelled",
        Duration::from_secs(10),
        || async {
            runs(&host, "slow")
                .await
                .into_iter()
                .find(|r| r.scheduled_at == Some(in_flight) && r.outcome != "running")
        },
    )
    .await;
    assert_eq!(cancelled.outcome, "cancelled", "{cancelled:?}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for task in ["tick", "slow", "hang"] {
        let late: Vec<TaskRun> = runs(&host, task)
            .await
            .into_iter()
            .filter(|r| r.scheduled_at.unwrap_or(0) > removed_at + 500)
            .collect();
        assert!(late.is_empty(), "{task} ran after removal: {late:#?}");
        assert!(
            with_outcome(&runs(&host, task).await, "running").is_empty(),
            "nothing of {task} is left running"
        );
    }
    host.stop().await;
}

#[tokio::test]
async fn a_disabled_plugins_tasks_stop_and_come_back_when_it_is_enabled() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = ticker_host(&db, data.path()).await;
    eventually("a first tick", Duration::from_secs(15), || async {
        (!with_outcome(&runs(&host, "tick").await, "ok").is_empty()).then_some(())
    })
    .await;
    let (status, body) = host.admin().post("/plugins/ticker/disable").await;
    assert_eq!(status, 200, "{body}");
    let disabled_at = plinth_host::db::now_ms();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let late: Vec<TaskRun> = runs(&host, "tick")
        .await
        .into_iter()
        .filter(|r| r.scheduled_at.unwrap_or(0) > disabled_at + 500)
        .collect();
    assert!(late.is_empty(), "tick ran while disabled: {late:#?}");

    let (status, body) = host.admin().post("/plugins/ticker/enable").await;
    assert_eq!(status, 200, "{body}");
    let enabled_at = plinth_host::db::now_ms();
    eventually(
        "a tick after the enable",
        Duration::from_secs(15),
        || async {
            runs(&host, "tick")
                .await
                .into_iter()
                .any(|r| r.scheduled_at.unwrap_or(0) > enabled_at && r.outcome == "ok")
                .then_some(())
        },
    )
    .await;
    host.stop().await;
}

#[tokio::test]
async fn start_up_marks_runs_left_running_as_interrupted() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let config = test_config(&db, data.path(), &[("ticker", "0.1.0")]);
    let host = TestHost::start(config.clone()).await.expect("host starts");
    let (status, _) = host.admin().post("/tasks/ticker/slow/pause").await;
    assert_eq!(status, 200);
    // What a host killed mid-run leaves: a claimed tick, never finished,
    // under a lease that has not run out.
    let tick = Tick {
        plugin: "ticker".into(),
        task: "slow".into(),
        scheduled_at: 1_000,
    };
    assert!(
        task_runs::claim(&host.host.db, &tick, "0.1.0", "a-host-that-died", 3_600_000)
            .await
            .expect("claim")
    );
    host.stop().await;

    let host = TestHost::start(config).await.expect("host restarts");
    let run = eventually("the orphan marked", Duration::from_secs(10), || async {
        runs(&host, "slow")
            .await
            .into_iter()
            .find(|r| r.scheduled_at == Some(1_000) && r.outcome != "running")
    })
    .await;
    assert_eq!(run.outcome, "interrupted", "{run:?}");
    assert!(run.finished_at.is_some());
    host.stop().await;
}

#[tokio::test]
async fn old_runs_are_pruned_by_count_and_age_on_every_database() {
    for db in crate::support::all_dbs().await {
        let data = tempfile::tempdir().expect("temp dir");
        let host = TestHost::start(test_config(&db, data.path(), &[]))
            .await
            .expect("host starts");
        let pool = &host.host.db;
        let tick = |at: i64| Tick {
            plugin: "gone".into(),
            task: "report".into(),
            scheduled_at: at,
        };
        for at in 1..=15 {
            assert!(
                task_runs::claim(pool, &tick(at), "1.0.0", "h", 60_000)
                    .await
                    .expect("claim")
            );
            task_runs::finish(pool, &tick(at), task_runs::Outcome::Ok, None)
                .await
                .expect("finish");
        }
        assert!(
            task_runs::claim(pool, &tick(16), "1.0.0", "h", 60_000)
                .await
                .expect("claim")
        );
        let kind = db.kind;
        let runs = || async {
            task_runs::runs(pool, "gone", Some("report"), 100, None)
                .await
                .expect("runs")
        };

        let deleted = task_runs::prune(pool, 86_400_000, 10).await.expect("prune");
        let kept: Vec<i64> = runs().await.iter().filter_map(|r| r.scheduled_at).collect();
        assert_eq!(deleted, 6, "on {kind}: {kept:?}");
        assert_eq!(
            kept,
            (7..=16).rev().collect::<Vec<_>>(),
            "on {kind}: the newest stay"
        );

        tokio::time::sleep(Duration::from_millis(20)).await;
        task_runs::prune(pool, 1, 10).await.expect("prune by age");
        let left = runs().await;
        assert_eq!(
            left.len(),
            1,
            "on {kind}: only the running run is left: {left:#?}"
        );
        assert_eq!(left[0].outcome, "running");
        host.stop().await;
    }
}

#[tokio::test]
async fn a_run_in_flight_finishes_on_the_version_that_started_it() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = ticker_host(&db, data.path()).await;
    let (status, _) = host.admin().post("/tasks/ticker/slow/pause").await;
    assert_eq!(status, 200);
    eventually("slow to stop", Duration::from_secs(10), || async {
        (!host.scheduler.is_running_here("ticker", "slow")).then_some(())
    })
    .await;
    let (status, body) = host.admin().post("/tasks/ticker/slow/run").await;
    assert_eq!(status, 202, "{body}");
    let in_flight = body["scheduled_at"].as_i64().expect("scheduled_at");
    let upgrade = crate::support::derived_package("ticker-0.1.0", "0.2.0", &[]);
    let (status, body) = host.admin().install(upgrade, "upgrade").await;
    assert_eq!(status, 201, "{body}");

    let run = eventually(
        "the in-flight run to finish",
        Duration::from_secs(10),
        || async {
            runs(&host, "slow")
                .await
                .into_iter()
                .find(|r| r.scheduled_at == Some(in_flight) && r.outcome != "running")
        },
    )
    .await;
    assert_eq!(
        (run.outcome.as_str(), run.version.as_str()),
        ("ok", "0.1.0"),
        "{run:?}"
    );
    let newer = eventually("a tick on 0.2.0", Duration::from_secs(10), || async {
        runs(&host, "tick")
            .await
            .into_iter()
            .find(|r| r.version == "0.2.0" && r.outcome == "ok")
    })
    .await;
    assert!(
        newer.scheduled_at.unwrap_or(0) > in_flight - 1000,
        "{newer:?}"
    );
    // The pause was kept across the upgrade.
    let (_, list) = host.admin().get("/tasks").await;
    let slow = list
        .as_array()
        .expect("list")
        .iter()
        .find(|t| t["task"] == "slow")
        .cloned()
        .expect("slow listed");
    assert_eq!(
        (slow["paused"].clone(), slow["version"].clone()),
        (Value::Bool(true), Value::from("0.2.0"))
    );
    host.stop().await;
}

/// ticker as 0.2.0 with `slow` queued instead of skipped and `tick` limited
/// to one run per 3 s.
fn ticker_with_policies() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    crate::support::copy_dir(
        &crate::support::built_plugins().join("ticker-0.1.0"),
        dir.path(),
    );
    let path = dir.path().join("plugin.toml");
    let manifest = std::fs::read_to_string(&path)
        .expect("manifest")
        .replace("version = \"0.1.0\"", "version = \"0.2.0\"")
        .replace(
            "timeout_secs = 10\n",
            "timeout_secs = 10\nconcurrency = \"queue\"\n",
        )
        .replace(
            "cron = \"* * * * * *\"\ntimeout_secs = 5\n",
            "cron = \"* * * * * *\"\ntimeout_secs = 5\nmin_interval_secs = 3\n",
        );
    assert!(manifest.contains("queue") && manifest.contains("min_interval_secs"));
    std::fs::write(&path, manifest).expect("write manifest");
    plinth_package::pack_dir(dir.path()).expect("pack")
}

#[tokio::test]
async fn a_queued_task_waits_its_turn_and_min_interval_spaces_runs() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = ticker_host(&db, data.path()).await;
    let (status, body) = host
        .admin()
        .install(ticker_with_policies(), "upgrade")
        .await;
    assert_eq!(status, 201, "{body}");
    let upgraded = plinth_host::db::now_ms();
    let fresh = |runs: Vec<TaskRun>| -> Vec<TaskRun> {
        let mut runs: Vec<TaskRun> = runs
            .into_iter()
            .filter(|r| r.version == "0.2.0" && r.outcome == "ok")
            .collect();
        runs.sort_by_key(|r| r.started_at);
        runs
    };
    let slow = eventually(
        "three queued slow runs",
        Duration::from_secs(20),
        || async {
            let runs = fresh(runs(&host, "slow").await);
            (runs.len() >= 3).then_some(runs)
        },
    )
    .await;
    for pair in slow.windows(2) {
        let (first, next) = (&pair[0], &pair[1]);
        let first_end = first.finished_at.expect("finished");
        assert!(first_end <= next.started_at, "no overlap: {pair:#?}");
        assert!(
            next.scheduled_at.expect("tick") < first_end && next.started_at - first_end < 1500,
            "the next tick waited and started right after: {pair:#?}"
        );
    }
    let ticks = fresh(runs(&host, "tick").await);
    assert!(!ticks.is_empty(), "tick still runs");
    for pair in ticks.windows(2) {
        assert!(
            pair[1].started_at - pair[0].started_at >= 2900,
            "min_interval_secs = 3 holds: {pair:#?}"
        );
    }
    let since = plinth_host::db::now_ms() - upgraded;
    assert!(
        ticks.len() as i64 <= since / 3000 + 1,
        "{} runs in {since} ms",
        ticks.len()
    );
    host.stop().await;
}
