//! A fresh host whose config.json lists plugins that are neither installed
//! nor in `data/plugins/` starts anyway: one warning line names the missing
//! ones and says how to install them, and the plugins that are there serve.
//! Run as the real `plinth serve` binary, so the warning checked is the one
//! an operator reads.

use std::path::Path;

use crate::support::{ServeProcess, stage_plugin, write_process_config};

#[tokio::test]
async fn listed_plugins_not_present_are_named_once_and_the_rest_serve() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_process_config(
        dir.path(),
        serde_json::json!([
            { "name": "hello", "version": "0.1.0" },
            { "name": "goods", "version": "1.0.0" },
            { "name": "http-hello", "version": "0.1.0" },
        ]),
    );
    // Only hello is on disk, as a copied binary's data dir would have it.
    stage_plugin(&dir.path().join("data"), "hello", "0.1.0");

    let host = ServeProcess::start(
        Path::new(env!("CARGO_BIN_EXE_plinth")),
        &config,
        dir.path(),
        &dir.path().join("data"),
    )
    .await;

    let client = host.client();
    let health = client
        .get(host.url("/healthz"))
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(health.status(), 200);
    let hello = client
        .get(host.url("/p/hello/"))
        .send()
        .await
        .expect("hello answers");
    assert_eq!(hello.status(), 200, "the plugin that is there serves");
    let goods = client
        .get(host.url("/p/goods/api/items"))
        .send()
        .await
        .expect("answered");
    assert_eq!(goods.status(), 404, "a missing plugin serves nothing");

    let stderr = host.stop().await;
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("goods") && line.contains("WARN"))
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning names the missing plugins:\n{stderr}"
    );
    let warning = warnings[0];
    for part in ["goods 1.0.0", "http-hello 0.1.0", "plinth plugin install"] {
        assert!(warning.contains(part), "{part:?} missing from: {warning}");
    }
    assert!(
        !warning.contains("hello 0.1.0,"),
        "hello is not missing: {warning}"
    );
}
