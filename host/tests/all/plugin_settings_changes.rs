//! Changing a plugin's settings through `PUT /api/admin/plugins/{name}/settings`
//! on a host started from a real config.json: the serving plugin reads the
//! new value on its next call, the value is in config.json and survives a
//! restart, a secret is never answered, and a wrong value (wrong type, an
//! enum value not listed, an undeclared key, a file reference, a key the
//! environment sets) is refused naming the key with nothing changed.
//! A secret saved this way goes into the host's own file under
//! `data/secrets/`, config.json naming it as `{"file": …}`, and is deleted
//! with the key; an operator's own secret file is never touched.
//! Reading needs `plugins.view`, changing `plugins.configure`.

use std::path::Path;

use plinth_host::config::Config;
use serde_json::{Value, json};

use crate::support::{Admin, TestHost, stage_plugin, write_process_config};

const SECRET: &str = "admin-typed-secret-5c81e0";

/// `probe` (whose `/setting?key=` answers a setting's value) declaring one
/// setting of each type.
const SETTINGS: &str = r#"
[[settings]]
key = "greeting"
type = "string"
title = "Greeting"
default = "hello"

[[settings]]
key = "page_size"
type = "int"
title = "Items per page"
default = "20"

[[settings]]
key = "verbose"
type = "bool"
title = "Verbose"
default = "false"

[[settings]]
key = "mode"
type = "enum"
title = "Mode"
values = ["fast", "careful"]
default = "fast"

[[settings]]
key = "api_key"
type = "secret"
title = "API key"
"#;

/// config.json in `dir` listing probe, with probe staged in its data dir.
fn probe_config(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("data");
    stage_plugin(&data, "probe", "0.1.0");
    let manifest = data.join("plugins/probe/0.1.0/plugin.toml");
    let text = std::fs::read_to_string(&manifest).expect("probe manifest");
    std::fs::write(&manifest, format!("{text}\n{SETTINGS}")).expect("write manifest");
    write_process_config(dir, json!([{ "name": "probe", "version": "0.1.0" }]))
}

async fn start(path: &Path, env: &[(&str, &str)]) -> TestHost {
    let mut config = Config::load(path).expect("config.json loads");
    config.runtime.pooling = false;
    for (var, value) in env {
        config
            .plugin_env
            .insert((*var).to_owned(), (*value).to_owned());
    }
    TestHost::start_at(config, Some(path.to_owned()))
        .await
        .expect("host starts")
}

/// config.json's text and its probe entry's `settings`.
fn written_settings(path: &Path) -> (String, Value) {
    let text = std::fs::read_to_string(path).expect("config.json");
    let written: Value = serde_json::from_str(&text).expect("json");
    (text, written["plugins"][0]["settings"].clone())
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// What the plugin itself reads for `key`.
async fn seen(host: &TestHost, key: &str) -> (u16, String) {
    let response = host.get(&format!("/p/probe/setting?key={key}")).await;
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

async fn put(host: &TestHost, body: Value) -> (u16, Value, String) {
    let response = host
        .client
        .put(host.url("/api/admin/plugins/probe/settings"))
        .json(&body)
        .send()
        .await
        .expect("answered");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

fn setting<'a>(body: &'a Value, key: &str) -> &'a Value {
    body["settings"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["key"] == key))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn a_saved_setting_reaches_the_plugin_at_once_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = probe_config(dir.path());
    let host = start(&path, &[]).await;
    assert_eq!(seen(&host, "page_size").await, (200, "20".to_owned()));

    let (status, body, text) = put(
        &host,
        json!({ "page_size": 50, "verbose": true, "mode": "careful", "api_key": SECRET }),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(setting(&body, "page_size")["value"], "50");
    assert_eq!(setting(&body, "api_key")["set"], true, "{text}");
    assert!(setting(&body, "api_key").get("value").is_none(), "{text}");
    assert!(
        !text.contains(SECRET),
        "the answer shows the secret: {text}"
    );

    // The serving plugin was loaded again: its next call reads the values.
    assert_eq!(seen(&host, "page_size").await, (200, "50".to_owned()));
    assert_eq!(seen(&host, "verbose").await, (200, "true".to_owned()));
    assert_eq!(seen(&host, "mode").await, (200, "careful".to_owned()));
    assert_eq!(seen(&host, "api_key").await, (200, SECRET.to_owned()));

    let (status, shown) = host.admin().get("/plugins/probe/settings").await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(setting(&shown, "api_key")["set"], true);
    assert!(
        !shown.to_string().contains(SECRET),
        "GET shows the secret: {shown}"
    );
    let (_, listed) = host.admin().get("/plugins").await;
    assert!(
        !listed.to_string().contains(SECRET),
        "the list shows the secret"
    );

    // config.json has the values in probe's entry, the rest as it was.
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("config.json")).expect("json");
    assert_eq!(written["plugins"][0]["settings"]["page_size"], 50);
    assert_eq!(written["plugins"][0]["settings"]["mode"], "careful");
    assert_eq!(written["plugins"][0]["name"], "probe");
    assert_eq!(written["server"]["bind"], "127.0.0.1:0");
    assert!(
        !written.to_string().contains(SECRET),
        "config.json holds the secret: {written}"
    );

    // Leaving a secret out keeps it; null goes back to the default.
    let (status, _, text) = put(&host, json!({ "page_size": null })).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(seen(&host, "page_size").await, (200, "20".to_owned()));
    assert_eq!(seen(&host, "api_key").await, (200, SECRET.to_owned()));
    let (status, _, text) = put(&host, json!({ "greeting": "good day" })).await;
    assert_eq!(status, 200, "{text}");
    host.stop().await;

    let host = start(&path, &[]).await;
    assert_eq!(seen(&host, "greeting").await, (200, "good day".to_owned()));
    assert_eq!(seen(&host, "mode").await, (200, "careful".to_owned()));
    assert_eq!(seen(&host, "page_size").await, (200, "20".to_owned()));
    assert_eq!(seen(&host, "api_key").await, (200, SECRET.to_owned()));
    host.stop().await;
}

#[tokio::test]
async fn a_wrong_setting_is_refused_naming_the_key_and_nothing_changes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = probe_config(dir.path());
    let env_var = "PLINTH__PLUGINS__PROBE__GREETING";
    let host = start(&path, &[(env_var, "from the environment")]).await;
    let before = std::fs::read_to_string(&path).expect("config.json");

    for (body, key, says, code) in [
        (json!({ "page_size": "many" }), "page_size", "integer", 400),
        (json!({ "page_size": true }), "page_size", "a boolean", 400),
        (json!({ "page_size": 1.5 }), "page_size", "integer", 400),
        (json!({ "mode": "reckless" }), "mode", "allowed values", 400),
        (json!({ "pagesize": 5 }), "pagesize", "not declared", 400),
        (
            json!({ "api_key": { "file": "/etc/passwd" } }),
            "api_key",
            "cannot name a file",
            400,
        ),
        (json!({ "greeting": "hi" }), "greeting", env_var, 409),
    ] {
        let (status, answer, text) = put(&host, body.clone()).await;
        assert_eq!(status, code, "{body}: {text}");
        let message = Admin::message(&answer);
        assert!(
            message.starts_with(&format!("plugin probe: setting \"{key}\"")),
            "{body}: {message}"
        );
        assert!(message.contains(says), "{body}: {message}");
        assert!(answer["error"]["request_id"].is_string(), "{text}");
    }
    assert_eq!(seen(&host, "page_size").await, (200, "20".to_owned()));
    assert_eq!(seen(&host, "mode").await, (200, "fast".to_owned()));
    assert_eq!(
        std::fs::read_to_string(&path).expect("config.json"),
        before,
        "a refused change writes nothing"
    );

    let response = host
        .client
        .put(host.url("/api/admin/plugins/nobody/settings"))
        .json(&json!({ "a": 1 }))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 404);
    let response = host
        .client
        .put(host.url("/api/admin/plugins/probe/settings"))
        .header("content-type", "application/json")
        .body("[1, 2]")
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 400, "a body that is not an object");
    host.stop().await;
}

#[tokio::test]
async fn reading_settings_needs_plugins_view_and_changing_them_plugins_configure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = probe_config(dir.path());
    let host = start(&path, &[]).await;
    let admin = host.admin();
    let (status, body) = admin
        .post_json(
            "/roles",
            json!({"name": "viewer", "title": "Viewer", "data_scope": "all"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = admin.put("/roles/viewer/grants/plugins.view").await;
    assert_eq!(status, 200, "{body}");
    let viewer = host
        .user_with_roles("vera", "vera-password-1", &["viewer"])
        .await;
    let settings = "/api/admin/plugins/probe/settings";
    let change = || {
        host.with_cookie(reqwest::Method::PUT, settings, &viewer)
            .header("sec-fetch-site", "same-origin")
            .json(&json!({ "page_size": 7 }))
            .send()
    };

    let shown = host
        .with_cookie(reqwest::Method::GET, settings, &viewer)
        .send()
        .await
        .expect("answered");
    assert_eq!(shown.status(), 200);
    let refused = change().await.expect("answered");
    assert_eq!(refused.status(), 403);
    let message = refused.text().await.unwrap_or_default();
    assert!(message.contains("plugins.configure"), "{message}");
    assert_eq!(seen(&host, "page_size").await, (200, "20".to_owned()));

    let (status, body) = admin.put("/roles/viewer/grants/plugins.configure").await;
    assert_eq!(status, 200, "{body}");
    let changed = change().await.expect("answered");
    assert_eq!(changed.status(), 200);
    assert_eq!(seen(&host, "page_size").await, (200, "7".to_owned()));
    let anonymous = host
        .anonymous
        .put(host.url(settings))
        .json(&json!({ "page_size": 8 }))
        .send()
        .await
        .expect("answered");
    assert_eq!(anonymous.status(), 401);
    host.stop().await;
}

#[tokio::test]
async fn a_saved_secret_goes_into_a_host_file_that_config_json_names_and_leaves_with_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = probe_config(dir.path());
    let secrets = dir.path().join("data").join("secrets");
    let host = start(&path, &[]).await;

    let (status, body, text) = put(&host, json!({ "api_key": SECRET, "page_size": 30 })).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(setting(&body, "api_key")["set"], true, "{text}");
    let (config_text, settings) = written_settings(&path);
    assert!(
        !config_text.contains(SECRET),
        "config.json holds the secret: {config_text}"
    );
    assert_eq!(settings["page_size"], 30, "{settings}");
    let file = std::path::PathBuf::from(
        settings["api_key"]["file"]
            .as_str()
            .unwrap_or_else(|| panic!("api_key is not {{\"file\": …}}: {settings}")),
    );
    assert!(file.is_absolute(), "{}", file.display());
    assert!(
        file.starts_with(&secrets),
        "{} is not under {}",
        file.display(),
        secrets.display()
    );
    assert_eq!(
        std::fs::read_to_string(&file).expect("the secret file"),
        format!("{SECRET}\n")
    );
    #[cfg(unix)]
    {
        assert_eq!(mode(&file), 0o600, "the secret file's mode");
        assert_eq!(mode(file.parent().expect("folder")), 0o700);
        assert_eq!(mode(&secrets), 0o700);
    }
    assert_eq!(seen(&host, "api_key").await, (200, SECRET.to_owned()));

    // Saving it again replaces the file's value; config.json stays.
    let newer = "admin-typed-secret-second-77ab";
    let (status, _, text) = put(&host, json!({ "api_key": newer })).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        std::fs::read_to_string(&file).expect("the secret file"),
        format!("{newer}\n")
    );
    let (config_text, settings) = written_settings(&path);
    assert!(!config_text.contains(newer), "{config_text}");
    assert_eq!(settings["api_key"]["file"], json!(file), "{settings}");
    assert_eq!(seen(&host, "api_key").await, (200, newer.to_owned()));
    host.stop().await;

    // A restart reads it back from the file config.json names.
    let host = start(&path, &[]).await;
    assert_eq!(seen(&host, "api_key").await, (200, newer.to_owned()));
    let (status, shown) = host.admin().get("/plugins/probe/settings").await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(setting(&shown, "api_key")["set"], true, "{shown}");

    // Back to the default: out of config.json, and the file is gone.
    let (status, body, text) = put(&host, json!({ "api_key": null })).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(setting(&body, "api_key")["set"], false, "{text}");
    let (_, settings) = written_settings(&path);
    assert!(settings.get("api_key").is_none(), "{settings}");
    assert!(
        !file.exists(),
        "the host's secret file stays after the key went"
    );
    assert_eq!(seen(&host, "api_key").await.0, 404);

    // Removed with its data, the plugin's saved secrets go too.
    let (status, _, text) = put(&host, json!({ "api_key": SECRET })).await;
    assert_eq!(status, 200, "{text}");
    assert!(secrets.join("probe").is_dir());
    let (status, body) = host.admin().delete("/plugins/probe?drop_data=true").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !secrets.join("probe").exists(),
        "a plugin removed with its data leaves no secret behind"
    );
    host.stop().await;
}

#[tokio::test]
async fn an_operators_own_secret_file_is_never_written_or_deleted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = probe_config(dir.path());
    let own = dir.path().join("operator-api-key");
    std::fs::write(&own, "operator-secret-value\n").expect("write the operator's file");
    let text = std::fs::read_to_string(&path).expect("config.json");
    let mut config: Value = serde_json::from_str(&text).expect("json");
    config["plugins"][0]["settings"] = json!({ "api_key": { "file": own } });
    std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("json")).expect("write");
    let host = start(&path, &[]).await;
    assert_eq!(
        seen(&host, "api_key").await,
        (200, "operator-secret-value".to_owned())
    );

    let (status, _, text) = put(&host, json!({ "api_key": SECRET })).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(seen(&host, "api_key").await, (200, SECRET.to_owned()));
    assert_eq!(
        std::fs::read_to_string(&own).expect("the operator's file"),
        "operator-secret-value\n"
    );
    let (config_text, settings) = written_settings(&path);
    assert!(!config_text.contains(SECRET), "{config_text}");
    let host_file = settings["api_key"]["file"].as_str().unwrap_or_default();
    assert!(
        Path::new(host_file).starts_with(dir.path().join("data/secrets")),
        "{settings}"
    );

    // The operator points config.json at their file again, restarts, and
    // then clears the key: their file stays.
    host.stop().await;
    let text = std::fs::read_to_string(&path).expect("config.json");
    let mut config: Value = serde_json::from_str(&text).expect("json");
    config["plugins"][0]["settings"] = json!({ "api_key": { "file": own } });
    std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("json")).expect("write");
    let host = start(&path, &[]).await;
    let (status, _, text) = put(&host, json!({ "api_key": null })).await;
    assert_eq!(status, 200, "{text}");
    assert!(own.exists(), "the operator's own secret file was deleted");
    assert!(written_settings(&path).1.get("api_key").is_none());
    host.stop().await;
}

#[tokio::test]
async fn a_secret_change_that_config_json_cannot_take_leaves_the_secret_file_as_it_was() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = probe_config(dir.path());
    let host = start(&path, &[]).await;
    let (status, _, text) = put(&host, json!({ "api_key": SECRET })).await;
    assert_eq!(status, 200, "{text}");
    let (_, settings) = written_settings(&path);
    let file = std::path::PathBuf::from(settings["api_key"]["file"].as_str().unwrap_or_default());

    // The operator took probe's entry out of config.json meanwhile: the
    // host cannot save there, so the secret file keeps its old value.
    let text = std::fs::read_to_string(&path).expect("config.json");
    let mut config: Value = serde_json::from_str(&text).expect("json");
    config["plugins"] = json!([]);
    std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("json")).expect("write");
    let (status, _, text) = put(&host, json!({ "api_key": "never-kept-secret-1f0c" })).await;
    assert_eq!(status, 409, "{text}");
    assert!(!text.contains("never-kept-secret-1f0c"), "{text}");
    assert_eq!(
        std::fs::read_to_string(&file).expect("the secret file"),
        format!("{SECRET}\n")
    );
    assert_eq!(seen(&host, "api_key").await, (200, SECRET.to_owned()));
    host.stop().await;
}
