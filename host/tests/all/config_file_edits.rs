//! config.json is the operator's file: while a host runs, the operator's
//! edits to it (a plugin's `settings`, any other key) survive every plugin
//! operation, values given through `PLINTH__…` never land in it, plugins
//! listed but not installed stay listed, and a file that no longer parses is
//! left alone while operations go on.

use std::path::Path;

use plinth_host::config::Config;
use serde_json::Value;

use crate::support::{DbKind, TestDb, TestHost, package, repo_root};

/// Overrides as `Config::load` would take them from the process
/// environment; passed explicitly, since setting process variables in a
/// parallel test binary races with the other tests.
fn overrides() -> Vec<(String, String)> {
    [
        ("PLINTH__ADMIN__TOKEN", "token-from-the-environment"),
        ("PLINTH__RUNTIME__CALL_TIMEOUT_MS", "2345"),
        (
            "PLINTH__PLUGINS",
            r#"[{ "name": "hello", "version": "0.1.0", "settings": { "greeting": "from the environment" } },
                { "name": "goods", "version": "1.0.0", "enabled": false, "settings": { "low_stock_threshold": "987654321" } }]"#,
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn json_string(path: &Path) -> String {
    Value::String(path.display().to_string()).to_string()
}

/// An operator's config.json: own key order and layout, a plugin with
/// settings, and one listed but not installed.
fn operator_file(dir: &Path, db: &TestDb) -> String {
    format!(
        r#"{{
  "server": {{ "bind": "127.0.0.1:1",  "shutdown_grace_secs": 1 }},
  "mode": "dev",
  "database": {{ "url": {url} }},
  "data_dir": {data},
  "public_dir": {public},
  "plugins": [
    {{ "name": "hello", "version": "0.1.0", "settings": {{ "greeting": "from the file" }} }},
    {{ "name": "later", "version": "2.0.0", "enabled": false, "settings": {{ "kept": "yes" }} }}
  ]
}}
"#,
        url = Value::String(db.url.clone()),
        data = json_string(&dir.join("data")),
        public = json_string(&repo_root().join("public")),
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read config.json")
}

fn entry<'a>(file: &'a Value, name: &str) -> Option<&'a Value> {
    file["plugins"]
        .as_array()
        .and_then(|list| list.iter().find(|e| e["name"] == name))
}

#[tokio::test]
async fn operator_edits_survive_plugin_operations_and_overrides_stay_out() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.json");
    let written = operator_file(dir.path(), &db);
    std::fs::write(&path, &written).expect("write config.json");

    let config = Config::load_with_env(&path, overrides()).expect("config loads");
    assert_eq!(config.admin.token, "token-from-the-environment");
    let host = TestHost::start_at(config, Some(path.clone()))
        .await
        .expect("host starts");
    // Start-up found the file already in line (hello installed at 0.1.0):
    // it is not rewritten at all.
    assert_eq!(
        read(&path),
        written,
        "start-up leaves an agreeing file alone"
    );

    // The operator edits the file while the host runs.
    let edited = written
        .replace("from the file", "edited while running")
        .replace("127.0.0.1:1", "127.0.0.1:2");
    std::fs::write(&path, &edited).expect("edit config.json");

    // Another plugin is installed through the admin API.
    let admin = host.admin();
    let (status, body) = admin.install(package("goods-1.0.0"), "install").await;
    assert_eq!(status, 201, "{body}");

    let text = read(&path);
    let file: Value = serde_json::from_str(&text).expect("config.json is JSON");
    assert_eq!(
        entry(&file, "hello").map(|e| &e["settings"]["greeting"]),
        Some(&Value::from("edited while running")),
        "the settings edit survived the install: {text}"
    );
    assert_eq!(file["server"]["bind"], "127.0.0.1:2", "{text}");
    let goods = entry(&file, "goods").expect("goods listed after its install");
    assert_eq!(goods["version"], "1.0.0", "{text}");
    assert_eq!(goods["enabled"], true, "{text}");
    assert_eq!(
        goods["settings"],
        serde_json::json!({}),
        "settings from PLINTH__PLUGINS are not written: {text}"
    );
    assert_eq!(
        entry(&file, "later").map(|e| &e["settings"]["kept"]),
        Some(&Value::from("yes")),
        "a listed plugin that is not installed stays listed: {text}"
    );
    for from_env in [
        "from the environment",
        "987654321",
        "token-from-the-environment",
        "call_timeout_ms",
    ] {
        assert!(
            !text.contains(from_env),
            "{from_env:?} came from the environment and must not be written: {text}"
        );
    }
    // Only the plugins list changed, and the operator's key order stays.
    let head = edited.split("\"plugins\"").next().expect("head");
    assert!(text.starts_with(head), "{text}");
    let reloaded =
        Config::load_with_env(&path, Vec::<(String, String)>::new()).expect("the file loads");
    let names: Vec<&str> = reloaded.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["hello", "later", "goods"]);

    // Disable writes `enabled` and nothing else of the entry.
    let (status, body) = admin.post("/plugins/hello/disable").await;
    assert_eq!(status, 200, "{body}");
    let file: Value = serde_json::from_str(&read(&path)).expect("JSON");
    let hello = entry(&file, "hello").expect("hello listed");
    assert_eq!(hello["enabled"], false);
    assert_eq!(hello["settings"]["greeting"], "edited while running");

    // Remove drops exactly the removed plugin's entry.
    let (status, body) = admin.delete("/plugins/goods").await;
    assert_eq!(status, 200, "{body}");
    let file: Value = serde_json::from_str(&read(&path)).expect("JSON");
    assert!(entry(&file, "goods").is_none(), "{file}");
    assert!(entry(&file, "later").is_some(), "{file}");

    // A file the operator left broken is not overwritten, and operations
    // go on: the database holds the installed set.
    let broken = format!("{}\n  \"oops\": ,\n", read(&path));
    std::fs::write(&path, &broken).expect("break config.json");
    let (status, body) = admin.post("/plugins/hello/enable").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(read(&path), broken, "a broken file is left as it is");
    assert_eq!(host.get("/p/hello/").await.status(), 200);

    // No temporary files are left beside it.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.contains(".tmp-")),
        "temporary files left: {names:?}"
    );
    host.stop().await;
}

/// Two operations back to back, each on a file the operator touched just
/// before: both plugins are listed, both edits are kept.
#[tokio::test]
async fn back_to_back_operations_keep_each_others_entries() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.json");
    let text = operator_file(dir.path(), &db);
    std::fs::write(&path, &text).expect("write config.json");
    let config = Config::load_with_env(&path, overrides()).expect("config loads");
    let host = TestHost::start_at(config, Some(path.clone()))
        .await
        .expect("host starts");
    let admin = host.admin();

    let (install, disable) = tokio::join!(
        admin.install(package("goods-1.0.0"), "install"),
        admin.post("/plugins/hello/disable"),
    );
    assert_eq!(install.0, 201, "{}", install.1);
    assert_eq!(disable.0, 200, "{}", disable.1);
    let file: Value = serde_json::from_str(&read(&path)).expect("JSON");
    assert_eq!(
        entry(&file, "goods").map(|e| &e["version"]),
        Some(&Value::from("1.0.0"))
    );
    let hello = entry(&file, "hello").expect("hello listed");
    assert_eq!(hello["enabled"], false, "{file}");
    assert_eq!(hello["settings"]["greeting"], "from the file", "{file}");
    host.stop().await;
}
