//! What an installed host needs is in the binary or in its data dir: the
//! `plinth` binary, copied into a folder holding only a copy of the repo's
//! config.json, starts and serves (the host schema is built in). And a
//! start-up error names its cause once.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::support::{ServeProcess, repo_root};

/// Runs `plinth serve --config <path>` until it exits by itself; returns
/// whether it succeeded and its stderr.
async fn serve_until_exit(path: &Path) -> (bool, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_plinth"))
        .arg("serve")
        .arg("--config")
        .arg(path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .expect("plinth exits by itself")
        .expect("plinth runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn an_unreadable_schema_dir_is_named_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.json");
    let config = serde_json::json!({
        "data_dir": dir.path().join("data"),
        "server": { "bind": "127.0.0.1:0" },
        "database": { "schema_dir": "no-such-sql" },
    });
    std::fs::write(&path, config.to_string()).expect("write config");
    let (ok, stderr) = serve_until_exit(&path).await;
    assert!(!ok, "start-up must fail: {stderr}");
    let missing = dir.path().join("no-such-sql").join("table");
    let missing = missing.display().to_string();
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("plinth: "), "{stderr}");
    assert_eq!(last.matches(&missing).count(), 1, "{last}");
    assert_eq!(
        last.matches("No such file or directory").count(),
        1,
        "{last}"
    );
    assert!(last.contains("migrating the host schema"), "{last}");
}

#[tokio::test]
async fn a_missing_config_file_is_named_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.json");
    let (ok, stderr) = serve_until_exit(&path).await;
    assert!(!ok, "start-up must fail: {stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last.matches(&path.display().to_string()).count(),
        1,
        "{last}"
    );
    assert!(last.contains("copy config.json"), "{last}");
}

#[tokio::test]
async fn a_copied_binary_starts_beside_only_a_config_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let binary = dir.path().join("plinth");
    std::fs::copy(env!("CARGO_BIN_EXE_plinth"), &binary).expect("copy the binary");
    let mut config: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("config.json")).expect("repo config.json"),
    )
    .expect("JSON");
    config["server"]["bind"] = Value::from("127.0.0.1:0");
    std::fs::write(dir.path().join("config.json"), config.to_string()).expect("write config");

    // The repo's config.json lists the example plugins, which a fresh data
    // dir does not have: the host starts anyway and names them.
    let host = ServeProcess::start(
        &binary,
        Path::new("config.json"),
        dir.path(),
        &dir.path().join("data"),
    )
    .await;
    let health = reqwest::get(host.url("/healthz"))
        .await
        .expect("healthz answers");
    assert_eq!(health.status(), 200);
    assert!(
        !dir.path().join("common-sql").exists(),
        "the schema came from the binary"
    );
    let stderr = host.stop().await;
    assert!(
        stderr.contains("plinth plugin install"),
        "the missing plugins are named with how to install them: {stderr}"
    );
}
