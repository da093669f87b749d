//! The operator's quota for a plugin's files (`files.plugins.<name>.quota_mb`
//! in config.json) replaces the manifest's, up and down, and the refusal
//! names the key that set it.

use plinth_host::config::PluginFilesConfig;
use serde_json::Value;

use crate::plugin_files::{create_item, goods_with_small_quota, walk};
use crate::support::{Admin, DbKind, TestDb, TestHost, test_config};

const MIB: usize = 1024 * 1024;

/// A host whose config gives goods `quota_mb`, with `package` installed.
async fn host_with_quota(
    data: &std::path::Path,
    quota_mb: u32,
    package: Vec<u8>,
) -> (TestDb, TestHost) {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let mut config = test_config(&db, data, &[]);
    config
        .files
        .plugins
        .insert("goods".into(), PluginFilesConfig { quota_mb });
    let host = TestHost::start(config).await.expect("host starts");
    let (status, body) = host.admin().install(package, "install").await;
    assert_eq!(status, 201, "{body}");
    (db, host)
}

/// PUTs a 3 MiB image to a new item: the status and answer.
async fn upload_three_mib(host: &TestHost) -> (u16, Value) {
    let id = create_item(host, "QUOTA-1").await;
    let response = host
        .client
        .put(host.url(&format!("/p/goods/api/items/{id}/images/big.png")))
        .header("content-type", "image/png")
        .body(vec![3u8; 3 * MIB])
        .send()
        .await
        .expect("answered");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_operator_quota_replaces_the_manifests_both_ways() {
    // Raised: the manifest allows 1 MiB, the operator 8.
    let data = tempfile::tempdir().expect("temp dir");
    let (_db, host) = host_with_quota(data.path(), 8, goods_with_small_quota()).await;
    let (status, body) = upload_three_mib(&host).await;
    assert_eq!(status, 200, "the operator's 8 MiB applies: {body}");
    host.stop().await;

    // Lowered: the manifest allows 64 MiB, the operator 1.
    let data = tempfile::tempdir().expect("temp dir");
    let (_db, host) = host_with_quota(data.path(), 1, crate::support::package("goods-1.0.0")).await;
    let (status, body) = upload_three_mib(&host).await;
    assert_eq!(status, 413, "{body}");
    let message = Admin::message(&body);
    assert!(
        message.contains("files.plugins.goods.quota_mb in config.json"),
        "the refusal names the operator's key: {message}"
    );
    assert!(walk(&data.path().join("files/goods")).is_empty());
    host.stop().await;
}
