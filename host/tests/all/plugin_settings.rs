//! Typed plugin settings: a value of the wrong type stops the install with
//! the plugin and key named, and a secret (from the environment or a file)
//! reaches the host but never `GET /api/admin/plugins` nor the log, which
//! is captured from the real `plinth serve` binary at debug level.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    Admin, DbKind, ServeProcess, TestDb, TestHost, built_plugins, derived_package, test_config,
    write_process_config,
};

const ENV_SECRET: &str = "env-secret-7f3a9c1e55d0";
const FILE_SECRET: &str = "file-secret-2b8e4d6a90c1";

/// goods 1.0.0 declaring an integer, an enum and two secrets.
fn goods_with_settings() -> Vec<u8> {
    let manifest = std::fs::read_to_string(built_plugins().join("goods-1.0.0/plugin.toml"))
        .expect("goods manifest");
    let manifest = format!(
        "{manifest}\n{}",
        r#"
[[settings]]
key = "page_size"
type = "int"
title = "Items per page"
default = "20"

[[settings]]
key = "sync"
type = "enum"
title = "Marketplace sync"
values = ["off", "hourly", "daily"]
default = "off"

[[settings]]
key = "api_key"
type = "secret"
title = "Marketplace API key"
required = true

[[settings]]
key = "webhook_secret"
type = "secret"
title = "Webhook signing secret"
"#
    );
    derived_package("goods-1.0.0", "1.0.0", &[("plugin.toml", &manifest)])
}

#[tokio::test]
async fn a_setting_of_the_wrong_type_stops_the_install_naming_the_key() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    for (settings, key, says) in [
        (
            json!({"page_size": "many", "api_key": "k"}),
            "page_size",
            "not an integer",
        ),
        (
            json!({"page_size": true, "api_key": "k"}),
            "page_size",
            "a boolean",
        ),
        (
            json!({"sync": "weekly", "api_key": "k"}),
            "sync",
            "allowed values",
        ),
        (json!({"page_size": 5}), "api_key", "is required"),
        (
            json!({"api_key": "k", "pagesize": 5}),
            "pagesize",
            "not declared",
        ),
    ] {
        let mut config = test_config(&db, data.path(), &[]);
        config.plugins = serde_json::from_value(json!([
            { "name": "goods", "version": "1.0.0", "settings": settings }
        ]))
        .expect("plugin entry");
        let host = TestHost::start_unstaged(config, None)
            .await
            .expect("host starts");
        let admin = host.admin();
        let (status, body) = admin.install(goods_with_settings(), "install").await;
        assert_eq!(status, 400, "{settings}: {body}");
        let message = Admin::message(&body);
        assert!(
            message.starts_with(&format!("plugin goods: setting \"{key}\"")),
            "{settings}: {message}"
        );
        assert!(message.contains(says), "{settings}: {message}");
        let (_, listed) = admin.get("/plugins").await;
        assert_eq!(listed, json!([]), "{settings}: nothing was installed");
        assert_eq!(host.get("/p/goods/api/items").await.status(), 404);
        host.stop().await;
    }
}

#[tokio::test]
async fn secrets_never_appear_in_the_admin_list_nor_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret_file = dir.path().join("webhook.secret");
    std::fs::write(&secret_file, format!("{FILE_SECRET}\n")).expect("secret file");
    let config = write_process_config(
        dir.path(),
        json!([{
            "name": "goods",
            "version": "1.0.0",
            "settings": { "page_size": 50, "webhook_secret": { "file": secret_file } }
        }]),
    );
    let host = ServeProcess::start_with_env(
        Path::new(env!("CARGO_BIN_EXE_plinth")),
        &config,
        dir.path(),
        &dir.path().join("data"),
        &[
            ("PLINTH__PLUGINS__GOODS__API_KEY", ENV_SECRET),
            ("RUST_LOG", "debug"),
        ],
    )
    .await;
    let token = crate::support::bootstrap_token();
    let client = crate::support::client_with_token(Some(&token));
    let installed = client
        .post(host.url("/api/admin/plugins"))
        .bearer_auth(&token)
        .header("content-type", "application/zip")
        .body(goods_with_settings())
        .send()
        .await
        .expect("answered");
    let status = installed.status();
    let report = installed.text().await.unwrap_or_default();
    assert_eq!(status, 201, "{report}");
    let served = client
        .get(host.url("/p/goods/api/items"))
        .send()
        .await
        .expect("answered");
    assert_eq!(served.status(), 200, "goods serves with its settings");

    let listed = client
        .get(host.url("/api/admin/plugins"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answered");
    let text = listed.text().await.expect("body");
    let rows: Value = serde_json::from_str(&text).expect("json");
    let settings = &rows[0]["settings"];
    let by_key = |key: &str| {
        settings
            .as_array()
            .and_then(|s| s.iter().find(|s| s["key"] == key))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(by_key("page_size")["value"], "50", "{text}");
    assert_eq!(by_key("sync")["value"], "off", "the default: {text}");
    assert_eq!(by_key("api_key")["type"], "secret");
    assert_eq!(by_key("api_key")["set"], true, "{text}");
    assert_eq!(by_key("webhook_secret")["set"], true, "{text}");
    assert!(by_key("api_key").get("value").is_none(), "{text}");
    for secret in [ENV_SECRET, FILE_SECRET] {
        assert!(
            !text.contains(secret),
            "the admin list shows a secret: {text}"
        );
        assert!(
            !report.contains(secret),
            "the install report shows a secret"
        );
    }

    let log = host.stop().await;
    assert!(log.contains("DEBUG"), "the log was captured at debug level");
    for secret in [ENV_SECRET, FILE_SECRET] {
        assert!(!log.contains(secret), "the log shows a secret");
    }
    let written = std::fs::read_to_string(&config).expect("config.json");
    assert!(
        !written.contains(ENV_SECRET) && !written.contains(FILE_SECRET),
        "the host wrote a secret into config.json: {written}"
    );
}

#[tokio::test]
async fn a_wrong_setting_of_an_installed_plugin_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    // goods with typed settings, in its folder as a copied data dir has it.
    let staged = data.join("plugins/goods/1.0.0");
    crate::support::copy_dir(&built_plugins().join("goods-1.0.0"), &staged);
    let zip = goods_with_settings();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("zip");
    let mut manifest = String::new();
    std::io::Read::read_to_string(
        &mut archive.by_name("plugin.toml").expect("plugin.toml"),
        &mut manifest,
    )
    .expect("read manifest");
    std::fs::write(staged.join("plugin.toml"), manifest).expect("write manifest");
    let config = write_process_config(
        dir.path(),
        json!([{
            "name": "goods",
            "version": "1.0.0",
            "settings": { "page_size": "lots", "api_key": ENV_SECRET }
        }]),
    );
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_plinth"))
            .args(["serve", "--config"])
            .arg(&config)
            .current_dir(dir.path())
            .env("RUST_LOG", "debug")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("start-up ends in time")
    .expect("ran");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "started with a wrong setting: {stderr}"
    );
    assert!(
        stderr.contains("plugin goods: setting \"page_size\"") && stderr.contains("\"lots\""),
        "{stderr}"
    );
    assert!(!stderr.contains(ENV_SECRET), "the log shows a secret");
}
