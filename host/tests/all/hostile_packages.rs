//! Bad and hostile packages are refused by a running host with a message
//! naming the problem, and nothing is left behind: no files outside
//! staging, no half-installed plugin.

use std::io::Write;

use zip::write::SimpleFileOptions;

use crate::support::{Admin, DbKind, TestDb, TestHost, derived_package, package, test_config};

const MANIFEST: &str = "name = \"evil\"\nversion = \"1.0.0\"\nhost_api = \"^0.1\"\n";
const COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        for (name, data) in entries {
            zip.start_file(*name, SimpleFileOptions::default())
                .expect("entry");
            zip.write_all(data).expect("write");
        }
        zip.finish().expect("finish");
    }
    out.into_inner()
}

fn with_symlink() -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        zip.start_file("plugin.toml", SimpleFileOptions::default())
            .expect("entry");
        zip.write_all(MANIFEST.as_bytes()).expect("write");
        zip.start_file("plugin.wasm", SimpleFileOptions::default())
            .expect("entry");
        zip.write_all(COMPONENT).expect("write");
        zip.add_symlink("public/passwd", "/etc/passwd", SimpleFileOptions::default())
            .expect("symlink");
        zip.finish().expect("finish");
    }
    out.into_inner()
}

fn zip_bomb() -> Vec<u8> {
    // 300 MiB of zeros compresses to well under a megabyte.
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        zip.start_file("plugin.toml", SimpleFileOptions::default())
            .expect("entry");
        zip.write_all(MANIFEST.as_bytes()).expect("write");
        zip.start_file("plugin.wasm", SimpleFileOptions::default())
            .expect("entry");
        zip.write_all(COMPONENT).expect("write");
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        zip.start_file("public/zeros.bin", options).expect("entry");
        let chunk = vec![0u8; 1024 * 1024];
        for _ in 0..300 {
            zip.write_all(&chunk).expect("write");
        }
        zip.finish().expect("finish");
    }
    out.into_inner()
}

#[tokio::test]
async fn hostile_packages_are_refused_and_leave_nothing_behind() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = TestHost::start(test_config(&db, data.path(), &[]))
        .await
        .expect("host starts");
    let admin = host.admin();
    assert_eq!(
        admin.install(package("hello-0.1.0"), "install").await.0,
        201
    );

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "zip-slip",
            zip_of(&[("plugin.toml", MANIFEST.as_bytes()), ("plugin.wasm", COMPONENT), ("../../escaped.txt", b"x")]),
            "..",
        ),
        (
            "absolute path",
            zip_of(&[("plugin.toml", MANIFEST.as_bytes()), ("plugin.wasm", COMPONENT), ("/tmp/plinth-absolute.txt", b"x")]),
            "absolute",
        ),
        ("symlink", with_symlink(), "symbolic link"),
        (
            "duplicate name",
            zip_of(&[("plugin.toml", MANIFEST.as_bytes()), ("plugin.wasm", COMPONENT), ("PLUGIN.WASM", COMPONENT)]),
            "plugin.wasm",
        ),
        ("zip bomb", zip_bomb(), "zeros.bin"),
        (
            "bad semver",
            zip_of(&[("plugin.toml", b"name = \"evil\"\nversion = \"1.0\"\nhost_api = \"^0.1\"\n"), ("plugin.wasm", COMPONENT)]),
            "version",
        ),
        (
            "unknown manifest field",
            zip_of(&[("plugin.toml", b"name = \"evil\"\nversion = \"1.0.0\"\nhost_api = \"^0.1\"\ncolour = \"red\"\n"), ("plugin.wasm", COMPONENT)]),
            "colour",
        ),
        (
            "host_api not met",
            zip_of(&[("plugin.toml", b"name = \"evil\"\nversion = \"1.0.0\"\nhost_api = \"^9\"\n"), ("plugin.wasm", COMPONENT)]),
            "host API",
        ),
        (
            "missing dependency",
            zip_of(&[("plugin.toml", b"name = \"evil\"\nversion = \"1.0.0\"\nhost_api = \"^0.1\"\n[depends]\nledger = \"^2\"\n"), ("plugin.wasm", COMPONENT)]),
            "ledger",
        ),
        (
            "not a zip",
            b"this is not a package".to_vec(),
            "zip",
        ),
        (
            "downgrade without rollback",
            derived_package("hello-0.1.0", "0.0.9", &[]),
            "rollback",
        ),
    ];
    for (case, bytes, needle) in cases {
        let (status, body) = admin.install(bytes, "auto").await;
        assert!(
            (400..500).contains(&status),
            "{case}: refused with a client error, got {status}: {body}"
        );
        let message = Admin::message(&body);
        assert!(
            message.to_lowercase().contains(&needle.to_lowercase()),
            "{case}: the message names the problem ({needle}): {message}"
        );
    }

    // Nothing escaped, nothing half-installed, staging is clean.
    assert!(
        !data
            .path()
            .parent()
            .expect("parent")
            .join("escaped.txt")
            .exists()
    );
    assert!(!std::path::Path::new("/tmp/plinth-absolute.txt").exists());
    let staging = data.path().join("staging");
    let leftovers: Vec<_> = std::fs::read_dir(&staging)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "staging is empty: {leftovers:?}");
    assert!(!data.path().join("plugins").join("evil").exists());
    let (_, plugins) = admin.get("/plugins").await;
    assert_eq!(plugins.as_array().map(Vec::len), Some(1), "{plugins}");
    assert_eq!(plugins[0]["version"], "0.1.0");

    // And without the token nothing happens at all.
    let anonymous = host
        .anonymous
        .post(host.url("/api/admin/plugins"))
        .body(package("goods-1.0.0"))
        .send()
        .await
        .expect("answered");
    assert_eq!(anonymous.status(), 401);
    host.stop().await;
}
