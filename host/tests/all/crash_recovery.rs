//! The host killed with SIGKILL after each journalled step of an upgrade
//! comes back serving exactly one consistent version: the old one if the
//! kill came before the commit point, the new one after it. The journal
//! says what happened, and config.json matches what serves.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{bootstrap_token, built_plugins, client_with_token, write_process_config};

const STEPS: &[&str] = &[
    "started",
    "unpacked",
    "compiled",
    "placed",
    "committed",
    "swapped",
    "done",
];

async fn plinth(config: &Path, args: &[&str], kill_after: Option<&str>) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_plinth"));
    command
        .args(args)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(step) = kill_after {
        command.env("PLINTH_FAULT_KILL_AFTER", step);
    }
    tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("plinth finishes")
        .expect("plinth runs")
}

/// Starts `plinth serve`, waits for it to be ready, and returns the child
/// and its address (read from the data dir's host.json).
async fn serve(dir: &Path, config: &Path) -> (tokio::process::Child, String) {
    let _ = std::fs::remove_file(dir.join("data").join("host.json"));
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("serve starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("data").join("host.json"))
            && let Ok(running) = serde_json::from_str::<Value>(&text)
            && let Some(bind) = running["bind"].as_str()
        {
            return (child, bind.to_owned());
        }
        assert!(
            Instant::now() < deadline,
            "plinth serve did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sigkill_after_every_install_step_restarts_into_one_consistent_version() {
    let plugins = built_plugins();
    for step in STEPS {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = write_process_config(dir.path(), serde_json::json!([]));
        let old = plugins.join("goods-1.0.0.zip");
        let new = plugins.join("goods-1.1.0.zip");

        let installed = plinth(
            &config,
            &["plugin", "install", old.to_str().expect("path")],
            None,
        )
        .await;
        assert!(
            installed.status.success(),
            "{step}: {}",
            String::from_utf8_lossy(&installed.stderr)
        );

        let killed = plinth(
            &config,
            &["plugin", "upgrade", new.to_str().expect("path")],
            Some(step),
        )
        .await;
        assert!(!killed.status.success(), "{step}: the upgrade was killed");

        let expected = if STEPS.iter().position(|s| s == step)
            >= STEPS.iter().position(|s| *s == "committed")
        {
            "1.1.0"
        } else {
            "1.0.0"
        };
        let (mut child, addr) = serve(dir.path(), &config).await;
        let response = client_with_token(Some(&bootstrap_token()))
            .get(format!("http://{addr}/p/goods/api/items"))
            .send()
            .await
            .expect("served");
        assert_eq!(response.status(), 200, "{step}");
        let served = response
            .headers()
            .get("x-plugin-version")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        assert_eq!(
            served.as_deref(),
            Some(expected),
            "after a kill at `{step}`"
        );

        // The CLI (through the running host) and config.json agree.
        let listed = plinth(&config, &["plugin", "list", "--json"], None).await;
        let listed: Value = serde_json::from_slice(&listed.stdout).expect("list --json");
        assert_eq!(listed[0]["version"], expected, "{step}: {listed}");
        let file: Value =
            serde_json::from_str(&std::fs::read_to_string(&config).expect("config")).expect("json");
        assert_eq!(
            file["plugins"][0]["version"], expected,
            "{step}: config.json"
        );
        // Exactly the serving version's folder is on disk besides the
        // previous one; no staging leftovers.
        let staging = dir.path().join("data").join("staging");
        let leftovers = std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0);
        assert_eq!(leftovers, 0, "{step}: staging cleaned");
        if expected == "1.0.0" {
            assert!(
                !dir.path().join("data/plugins/goods/1.1.0").exists(),
                "{step}: the unfinished version's files were removed"
            );
        }

        // The journal says the interrupted operation was settled.
        if *step != "done" {
            let client = reqwest::Client::new();
            let journal: Value = client
                .get(format!("http://{addr}/api/admin/journal?plugin=goods"))
                .bearer_auth(bootstrap_token())
                .send()
                .await
                .expect("journal")
                .json()
                .await
                .expect("json");
            let recovered = journal.as_array().is_some_and(|j| {
                j.iter()
                    .any(|e| e["step"] == "recovered" && e["to_version"] == "1.1.0")
            });
            assert!(recovered, "{step}: {journal}");
        }
        child.kill().await.expect("stop serve");
    }
}
