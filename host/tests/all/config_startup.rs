//! Start-up is strict: a bad config.json stops the `plinth` binary with a
//! message naming the key, and `/healthz` says 200 only when the host is up
//! and its database answers.

use std::process::Stdio;
use std::time::Duration;

use crate::support::{DbKind, TestDb, TestHost, repo_root, test_config};

/// Runs `plinth serve` on `config_json` and returns its exit status and
/// stderr; it must exit by itself within the time limit.
async fn serve_must_fail(config_json: &str, env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.json");
    std::fs::write(&path, config_json).expect("write config");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_plinth"));
    command
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .env("PLINTH__SERVER__BIND", "127.0.0.1:0")
        .env("PLINTH__DATA_DIR", dir.path().join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = tokio::time::timeout(Duration::from_secs(20), command.output())
        .await
        .expect("plinth exits by itself on a bad config")
        .expect("plinth runs");
    assert!(!output.status.success(), "plinth must refuse to start");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn an_unknown_key_stops_start_up_and_is_named() {
    let stderr = serve_must_fail(r#"{"server": {"bindd": "127.0.0.1:1"}}"#, &[]).await;
    assert!(stderr.contains("server.bindd"), "{stderr}");
}

#[tokio::test]
async fn a_wrong_type_stops_start_up_and_is_named() {
    let stderr = serve_must_fail(r#"{"server": {"body_limit_bytes": "lots"}}"#, &[]).await;
    assert!(stderr.contains("server.body_limit_bytes"), "{stderr}");
}

#[tokio::test]
async fn a_placeholder_secret_in_production_stops_start_up() {
    let stderr = serve_must_fail(
        r#"{"mode": "production", "admin": {"token": "change-me-admin-token"}}"#,
        &[],
    )
    .await;
    assert!(stderr.contains("admin.token"), "{stderr}");
}

#[tokio::test]
async fn a_files_quota_out_of_range_stops_start_up_and_is_named() {
    let stderr =
        serve_must_fail(r#"{"files": {"plugins": {"goods": {"quota_mb": 0}}}}"#, &[]).await;
    assert!(stderr.contains("files.plugins.goods.quota_mb"), "{stderr}");
    let stderr = serve_must_fail(r#"{"files": {"plugins": {"goods": {"quota": 5}}}}"#, &[]).await;
    assert!(stderr.contains("files.plugins.goods.quota"), "{stderr}");
}

#[tokio::test]
async fn an_unknown_environment_override_is_named() {
    let stderr = serve_must_fail("{}", &[("PLINTH__SERVER__PORTT", "1")]).await;
    assert!(stderr.contains("PLINTH__SERVER__PORTT"), "{stderr}");
}

#[tokio::test]
async fn the_repo_config_json_is_valid() {
    let config = plinth_host::config::Config::load_with_env(
        &repo_root().join("config.json"),
        Vec::<(String, String)>::new(),
    );
    assert!(config.is_ok(), "{:?}", config.err());
}

#[tokio::test]
async fn healthz_is_ok_when_up_and_503_when_the_database_is_gone() {
    let Some(db) = TestDb::create(DbKind::Postgres).await else {
        // Without a PostgreSQL server, check the healthy half on SQLite.
        let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
        let data = tempfile::tempdir().expect("temp dir");
        let host = TestHost::start(test_config(&db, data.path(), &[]))
            .await
            .expect("starts");
        assert_eq!(host.get("/healthz").await.status(), 200);
        return;
    };
    let data = tempfile::tempdir().expect("temp dir");
    let host = TestHost::start(test_config(&db, data.path(), &[]))
        .await
        .expect("starts");
    assert_eq!(host.get("/healthz").await.status(), 200);
    // Take the database away under the running host.
    drop(db);
    let mut status = 200;
    for _ in 0..20 {
        status = host.get("/healthz").await.status().as_u16();
        if status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 503);
    host.stop().await;
}

#[tokio::test]
async fn healthz_is_503_while_starting() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let config = test_config(&db, data.path(), &[]);
    let state = plinth_host::http::AppState::starting(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(axum::serve(listener, plinth_host::http::app(state)).into_future());
    let response = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .expect("answered");
    assert_eq!(response.status(), 503);
    let plugin = reqwest::get(format!("http://{addr}/p/hello/"))
        .await
        .expect("answered");
    assert_eq!(plugin.status(), 503);
    server.abort();
}
