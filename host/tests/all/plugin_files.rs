//! Plugin files: an image uploaded to goods is streamed by the host into
//! `data/files/goods/` (never through the guest), kept across an upgrade
//! and a rollback, served publicly with ranges, ETag and caching headers;
//! names leaving the folder and uploads over the quota are refused; an
//! uninstall keeps the files unless `--drop-data`.

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{
    Admin, DbKind, TestDb, TestHost, all_dbs, built_plugins, derived_package, package, test_config,
};

/// A fake PNG, long enough for a range in its middle.
fn image() -> Vec<u8> {
    (0..5000u32).map(|i| (i % 251) as u8).collect()
}

/// A goods item to hang pictures on; its id.
pub(crate) async fn create_item(host: &TestHost, sku: &str) -> i64 {
    let created: Value = host
        .client
        .post(host.url("/p/goods/api/items"))
        .json(&json!({"sku": sku, "name": "with a picture", "stock": 1}))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    created["id"].as_i64().expect("item id")
}

async fn upload(host: &TestHost, path: &str, body: Vec<u8>) -> (u16, Value) {
    let response = host
        .client
        .put(host.url(path))
        .header("content-type", "image/png")
        .body(body)
        .send()
        .await
        .expect("answered");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The public file's bytes, or the status when it is not served.
async fn served(host: &TestHost, url: &str) -> Result<Vec<u8>, u16> {
    let response = host.get(url).await;
    if response.status() != 200 {
        return Err(response.status().as_u16());
    }
    Ok(response.bytes().await.expect("body").to_vec())
}

#[tokio::test]
async fn an_uploaded_image_survives_upgrade_and_rollback_and_is_served_with_ranges() {
    for db in all_dbs().await {
        let kind = db.kind;
        let data = tempfile::tempdir().expect("temp dir");
        let host = TestHost::start(test_config(&db, data.path(), &[]))
            .await
            .expect("host starts");
        let admin = host.admin();
        assert_eq!(
            admin.install(package("goods-1.0.0"), "install").await.0,
            201
        );
        let id = create_item(&host, "PIC-1").await;

        let (status, body) = upload(
            &host,
            &format!("/p/goods/api/items/{id}/images/front.png"),
            image(),
        )
        .await;
        assert_eq!(status, 200, "{kind}: {body}");
        let url = body["image"].as_str().expect("image url").to_owned();
        assert_eq!(url, format!("/files/goods/items/{id}/front.png"));
        assert_eq!(body["size"], 5000);
        assert!(
            data.path()
                .join(format!("files/goods/public/items/{id}/front.png"))
                .is_file(),
            "{kind}: the image is kept outside the versioned plugin folder"
        );

        // Served whole, typed by its extension, with validators.
        let response = host.get(&url).await;
        assert_eq!(response.status(), 200, "{kind}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "image/png");
        assert!(headers.contains_key("last-modified"), "{kind}: {headers:?}");
        assert_eq!(headers["cache-control"], "public, max-age=60");
        assert_eq!(headers["content-security-policy"], "sandbox");
        let etag = headers["etag"].to_str().expect("etag").to_owned();
        assert_eq!(response.bytes().await.expect("body").to_vec(), image());

        // A range in the middle is answered 206 with just those bytes.
        let response = host
            .client
            .get(host.url(&url))
            .header("range", "bytes=1000-1099")
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), 206, "{kind}");
        assert_eq!(response.headers()["content-range"], "bytes 1000-1099/5000");
        assert_eq!(
            response.bytes().await.expect("body").to_vec(),
            image()[1000..1100].to_vec()
        );
        let response = host
            .client
            .get(host.url(&url))
            .header("if-none-match", &etag)
            .send()
            .await
            .expect("answered");
        assert_eq!(
            response.status(),
            304,
            "{kind}: a cached copy is still good"
        );

        // goods 1.0.0 wrote a private record of the image through the WIT
        // `files` interface; it reads it back through the same interface.
        let record_path = format!("/p/goods/api/items/{id}/image");
        let record: Value = host.get(&record_path).await.json().await.expect("json");
        assert_eq!(record["image"], url.as_str(), "{kind}: {record}");
        assert_eq!(record["content_type"], "image/png");

        // Upgrade, then roll back: the files are the plugin's data, not its code.
        let (status, body) = admin.install(package("goods-1.1.0"), "upgrade").await;
        assert_eq!(status, 201, "{kind}: {body}");
        assert_eq!(
            served(&host, &url).await,
            Ok(image()),
            "{kind}: after upgrade"
        );
        let response = host.get(&record_path).await;
        assert_eq!(response.headers()["x-plugin-version"], "1.1.0");
        assert_eq!(
            response.json::<Value>().await.expect("json"),
            record,
            "{kind}"
        );
        let (status, body) = admin.post("/plugins/goods/rollback").await;
        assert_eq!(status, 200, "{kind}: {body}");
        assert_eq!(
            served(&host, &url).await,
            Ok(image()),
            "{kind}: after rollback"
        );
        let response = host.get(&record_path).await;
        assert_eq!(response.headers()["x-plugin-version"], "1.0.0");
        assert_eq!(
            response.json::<Value>().await.expect("json"),
            record,
            "{kind}"
        );

        // An upload the plugin refuses (no such item) leaves no file.
        let (status, body) = upload(&host, "/p/goods/api/items/999999/images/x.png", image()).await;
        assert_eq!(status, 404, "{kind}: {body}");
        assert_eq!(
            served(&host, "/files/goods/items/999999/x.png").await,
            Err(404)
        );
        assert!(
            !data
                .path()
                .join("files/goods/public/items/999999")
                .join("x.png")
                .exists(),
            "{kind}"
        );
        host.stop().await;
    }
}

/// Sends `GET <target>` as written, bypassing URL normalisation, and
/// returns the status and body.
async fn raw_get(host: &TestHost, target: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(host.addr)
        .await
        .expect("connect");
    let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_string(&mut answer),
    )
    .await
    .expect("answered in time")
    .expect("read");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// goods 1.0.0 with a 1 MiB files quota.
pub(crate) fn goods_with_small_quota() -> Vec<u8> {
    let manifest = std::fs::read_to_string(built_plugins().join("goods-1.0.0/plugin.toml"))
        .expect("goods manifest");
    let manifest = manifest.replace("files_quota_mb = 64", "files_quota_mb = 1");
    assert!(manifest.contains("files_quota_mb = 1\n"), "{manifest}");
    derived_package("goods-1.0.0", "1.0.0", &[("plugin.toml", &manifest)])
}

#[tokio::test]
async fn names_leaving_the_folder_and_uploads_over_the_quota_are_refused() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = TestHost::start(test_config(&db, data.path(), &[]))
        .await
        .expect("host starts");
    let admin = host.admin();
    assert_eq!(
        admin.install(goods_with_small_quota(), "install").await.0,
        201
    );
    let id = create_item(&host, "PIC-2").await;
    std::fs::write(data.path().join("files-secret.txt"), "outside").expect("write");

    // `..` (encoded so no client tidies it away) and absolute names.
    for target in [
        "/files/goods/..%2f..%2f..%2ffiles-secret.txt",
        "/files/goods/%2e%2e/%2e%2e/%2e%2e/files-secret.txt",
        "/files/goods/%2fetc%2fpasswd",
    ] {
        let (status, answer) = raw_get(&host, target).await;
        assert!(
            status == 400 || status == 404,
            "{target}: {status} {answer}"
        );
        assert!(
            !answer.contains("outside"),
            "{target} leaked a file: {answer}"
        );
    }
    let (status, answer) = raw_get(&host, "/files/goods/..%2f..%2f..%2ffiles-secret.txt").await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.contains("\\\"..\\\""),
        "the refusal names `..`: {answer}"
    );
    let (status, body) = upload(
        &host,
        &format!("/p/goods/api/items/{id}/images/..%2f..%2fescape"),
        image(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(Admin::message(&body).contains("refused"), "{body}");

    // 1.5 MiB against a 1 MiB quota: refused, naming the setting, nothing kept.
    let big = vec![7u8; 1536 * 1024];
    let (status, body) = upload(
        &host,
        &format!("/p/goods/api/items/{id}/images/big.png"),
        big,
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(
        Admin::message(&body).contains("capabilities.files_quota_mb"),
        "{body}"
    );
    let leftovers: Vec<_> = walk(&data.path().join("files/goods"));
    assert!(
        leftovers.is_empty(),
        "an over-quota upload left {leftovers:?}"
    );

    // Under the quota it works; uninstalling keeps it for a reinstall...
    let url = format!("/files/goods/items/{id}/small.png");
    let (status, body) = upload(
        &host,
        &format!("/p/goods/api/items/{id}/images/small.png"),
        image(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(admin.delete("/plugins/goods").await.0, 200);
    assert_eq!(
        served(&host, &url).await,
        Err(404),
        "no plugin, nothing served"
    );
    assert_eq!(
        admin.install(goods_with_small_quota(), "install").await.0,
        201
    );
    assert_eq!(
        served(&host, &url).await,
        Ok(image()),
        "kept across uninstall"
    );
    // ...and --drop-data removes it.
    let (status, body) = admin.delete("/plugins/goods?drop_data=true").await;
    assert_eq!(status, 200, "{body}");
    assert!(!data.path().join("files/goods").exists());
    host.stop().await;
}

pub(crate) fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.path().is_dir() {
                found.extend(walk(&entry.path()));
            } else {
                found.push(entry.path());
            }
        }
    }
    found
}

#[tokio::test]
async fn the_wit_files_interface_refuses_names_leaving_the_folder() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = TestHost::start(test_config(&db, data.path(), &[("probe", "0.1.0")]))
        .await
        .expect("host starts");
    let put = |name: &str, body: &'static str| {
        host.client
            .put(host.url("/p/probe/file"))
            .query(&[("name", name)])
            .body(body)
            .send()
    };
    let written = put("notes/a.txt", "kept").await.expect("answered");
    assert_eq!(written.status(), 200);
    assert!(data.path().join("files/probe/notes/a.txt").is_file());
    let read = host
        .client
        .get(host.url("/p/probe/file"))
        .query(&[("name", "notes/a.txt")])
        .send()
        .await
        .expect("answered");
    assert_eq!(read.text().await.expect("body"), "kept");

    for (name, says) in [
        ("../../escape.txt", "contains \\\"..\\\""),
        ("/tmp/escape.txt", "absolute"),
        ("notes\\x", "backslash"),
        (".hidden", "starting with '.'"),
    ] {
        let refused = put(name, "x").await.expect("answered");
        assert_eq!(refused.status(), 500, "{name}");
        let text = refused.text().await.expect("body");
        assert!(text.contains(says), "{name}: {text}");
    }
    assert!(!data.path().join("escape.txt").exists());
    assert!(!std::path::Path::new("/tmp/escape.txt").exists());
    host.stop().await;
}
