//! Streamed uploads: a multi-megabyte product image sent to goods as a
//! browser form (`multipart/form-data`, one file part) is written into
//! goods' files as it arrives, and the guest is called with a small JSON
//! naming the stored file, never with the bytes; over the quota the upload
//! is refused with 413 and leaves no file, temporary or not; a file name
//! leaving the plugin's folder is refused.

use std::path::Path;

use plinth_host::config::Config;
use serde_json::Value;

use crate::plugin_files::{create_item, goods_with_small_quota, walk};
use crate::support::{Admin, DbKind, TestDb, TestHost, multipart_body, test_config};

const MIB: usize = 1024 * 1024;

/// Guest memory in the memory-cheap test: less than the upload, so a guest
/// handed the image could not hold it.
const GUEST_MIB: u32 = 4;

fn picture(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A host on SQLite serving goods 1.0.0, with `tune` applied to its config.
async fn goods_host(data: &Path, tune: impl FnOnce(&mut Config)) -> (TestDb, TestHost) {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let mut config = test_config(&db, data, &[("goods", "1.0.0")]);
    tune(&mut config);
    let host = TestHost::start(config).await.expect("host starts");
    (db, host)
}

/// Sends `body` with `content_type` by `method`: the status and JSON answer.
async fn send(
    host: &TestHost,
    method: reqwest::Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let response = host
        .client
        .request(method, host.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Uploads `bytes` as the form's file part named `filename`.
async fn post_form(host: &TestHost, id: i64, filename: &str, bytes: &[u8]) -> (u16, Value) {
    let (content_type, body) = multipart_body(
        &[("note", "front view")],
        "image",
        filename,
        "image/png",
        bytes,
    );
    send(
        host,
        reqwest::Method::POST,
        &format!("/p/goods/api/items/{id}/images"),
        &content_type,
        body,
    )
    .await
}

#[tokio::test]
async fn a_multi_megabyte_form_upload_is_stored_without_passing_through_the_guest() {
    let data = tempfile::tempdir().expect("temp dir");
    let (_db, host) = goods_host(data.path(), |config| {
        config.runtime.memory_limit_mib = GUEST_MIB;
        config.server.body_limit_bytes = 32 * MIB;
    })
    .await;
    let id = create_item(&host, "FORM-1").await;
    let image = picture(6 * MIB);

    // The control: the same bytes handed to the guest as an ordinary body
    // do not fit in its memory.
    let (status, body) = send(
        &host,
        reqwest::Method::POST,
        "/p/goods/api/items",
        "application/json",
        image.clone(),
    )
    .await;
    assert_eq!(
        status, 500,
        "a 6 MiB body must not fit a {GUEST_MIB} MiB guest: {body}"
    );

    let (status, body) = post_form(&host, id, "front.png", &image).await;
    assert_eq!(status, 200, "{body}");
    let url = format!("/files/goods/items/{id}/front.png");
    assert_eq!(body["image"], url.as_str(), "{body}");
    assert_eq!(body["size"], 6 * MIB, "{body}");
    assert_eq!(
        body["content_type"], "image/png",
        "the file part's own type: {body}"
    );
    let stored = data
        .path()
        .join(format!("files/goods/public/items/{id}/front.png"));
    assert_eq!(std::fs::read(&stored).expect("stored file"), image);
    let served = host.get(&url).await;
    assert_eq!(served.status(), 200);
    assert_eq!(served.bytes().await.expect("body").to_vec(), image);
    let hidden: Vec<_> = walk(&data.path().join("files/goods"))
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    assert!(hidden.is_empty(), "temporary files left: {hidden:?}");
    host.stop().await;
}

#[tokio::test]
async fn an_upload_over_the_quota_is_refused_with_413_and_leaves_nothing_behind() {
    let data = tempfile::tempdir().expect("temp dir");
    let (_db, host) = goods_host(data.path(), |config| config.plugins.clear()).await;
    let admin = host.admin();
    assert_eq!(
        admin.install(goods_with_small_quota(), "install").await.0,
        201
    );
    let id = create_item(&host, "FORM-2").await;
    let big = picture(3 * MIB);

    let (status, body) = post_form(&host, id, "big.png", &big).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "files_quota", "{body}");
    assert!(
        Admin::message(&body).contains("capabilities.files_quota_mb"),
        "{body}"
    );
    let (status, body) = send(
        &host,
        reqwest::Method::PUT,
        &format!("/p/goods/api/items/{id}/images/big.png"),
        "image/png",
        big,
    )
    .await;
    assert_eq!(status, 413, "the raw upload too: {body}");
    let left = walk(&data.path().join("files/goods"));
    assert!(left.is_empty(), "a refused upload left {left:?}");

    // Within the quota the same route stores it: the refusal was the quota.
    let (status, body) = post_form(&host, id, "small.png", &picture(100_000)).await;
    assert_eq!(status, 200, "{body}");
    host.stop().await;
}

#[tokio::test]
async fn a_form_file_name_leaving_the_folder_is_refused() {
    let data = tempfile::tempdir().expect("temp dir");
    let (_db, host) = goods_host(data.path(), |_| {}).await;
    let id = create_item(&host, "FORM-3").await;
    for (filename, says) in [
        ("../../../escape.png", "contains \"..\""),
        ("..", "contains \"..\""),
        ("nested/escape.png", "names a folder"),
        (".hidden.png", "starting with '.'"),
        ("a\\b.png", "backslash"),
    ] {
        let (status, body) = post_form(&host, id, filename, b"not stored").await;
        assert_eq!(status, 400, "{filename}: {body}");
        assert_eq!(body["error"]["code"], "bad_file_name", "{filename}: {body}");
        let message = Admin::message(&body);
        assert!(message.contains(says), "{filename}: {message}");
    }
    // The form route names the file after the part: a raw body cannot.
    let (status, body) = send(
        &host,
        reqwest::Method::POST,
        &format!("/p/goods/api/items/{id}/images"),
        "image/png",
        b"raw".to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        Admin::message(&body).contains("multipart/form-data"),
        "{body}"
    );
    let left = walk(&data.path().join("files/goods"));
    assert!(left.is_empty(), "refused uploads left {left:?}");
    assert!(!data.path().join("escape.png").exists());
    host.stop().await;
}
