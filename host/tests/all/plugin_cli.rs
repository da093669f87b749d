//! `plinth plugin …` as an operator uses it with no host running: pack,
//! install, list as a table and as JSON, and a refusal that exits non-zero
//! with one line on stderr naming the reason.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::support::{built_plugins, repo_root};

async fn plinth(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_plinth"))
            .args(args)
            .arg("--config")
            .arg(dir.join("config.json"))
            .env("PLINTH__DATA_DIR", dir.join("data"))
            .env(
                "PLINTH__DATABASE__URL",
                format!("sqlite://{}", dir.join("data").join("plinth.db").display()),
            )
            .env(
                "PLINTH__DATABASE__SCHEMA_DIR",
                repo_root().join("common-sql"),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("plinth finishes")
    .expect("plinth runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn pack_install_list_and_refuse_from_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("config.json"), "{}").expect("config");

    let out = dir.path().join("goods.zip");
    let source = built_plugins().join("goods-1.0.0");
    let (ok, stdout, stderr) = plinth(
        dir.path(),
        &[
            "plugin",
            "pack",
            source.to_str().expect("path"),
            "--out",
            out.to_str().expect("path"),
        ],
    )
    .await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("goods 1.0.0"), "{stdout}");

    let (ok, stdout, stderr) = plinth(
        dir.path(),
        &["plugin", "install", out.to_str().expect("path")],
    )
    .await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("install goods 1.0.0"), "{stdout}");

    let (ok, stdout, _) = plinth(dir.path(), &["plugin", "list"]).await;
    assert!(ok);
    let mut lines = stdout.lines();
    assert!(
        lines
            .next()
            .is_some_and(|h| h.starts_with("NAME") && h.contains("PREVIOUS"))
    );
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("goods") && l.contains("enabled"))
    );

    let (ok, stdout, _) = plinth(dir.path(), &["plugin", "list", "--json"]).await;
    assert!(ok);
    let list: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(list[0]["name"], "goods");
    assert_eq!(list[0]["version"], "1.0.0");
    assert_eq!(list[0]["state"], "enabled");
    assert!(list[0]["previous_version"].is_null());
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("config.json")).expect("config"),
    )
    .expect("json");
    assert_eq!(
        config["plugins"][0]["name"], "goods",
        "config.json follows the installed set"
    );

    // A refusal: non-zero exit, exactly one line on stderr, naming why.
    let (ok, _, stderr) = plinth(
        dir.path(),
        &["plugin", "install", out.to_str().expect("path")],
    )
    .await;
    assert!(!ok);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("already installed"), "{stderr}");

    let (ok, _, stderr) = plinth(dir.path(), &["plugin", "rollback", "goods"]).await;
    assert!(!ok);
    assert!(stderr.contains("no previous version"), "{stderr}");

    let (ok, _, stderr) = plinth(dir.path(), &["plugin", "remove", "nothing-here"]).await;
    assert!(!ok);
    assert!(stderr.contains("not installed"), "{stderr}");
}
