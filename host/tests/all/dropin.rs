//! The drop-in folder: a package copied into `data/dropin/` is installed by
//! the running host through the same pipeline, and its outcome is logged
//! beside it.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{DbKind, TestDb, TestHost, package, test_config};

async fn wait_for_log(folder: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(entries) = std::fs::read_dir(folder) {
            for entry in entries.flatten() {
                if entry.path().to_string_lossy().ends_with(".zip.log") {
                    return std::fs::read_to_string(entry.path()).unwrap_or_default();
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "nothing appeared in {}",
            folder.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_package_dropped_in_the_folder_is_installed_live() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = TestHost::start(test_config(&db, data.path(), &[]))
        .await
        .expect("host starts");
    let dropin = data.path().join("dropin");
    std::fs::create_dir_all(&dropin).expect("dropin");

    std::fs::write(dropin.join("goods.zip"), package("goods-1.0.0")).expect("drop");
    let log = wait_for_log(&dropin.join("installed")).await;
    assert!(log.contains("goods"), "{log}");
    assert_eq!(host.get("/p/goods/api/items").await.status(), 200);
    assert!(
        !dropin.join("goods.zip").exists(),
        "the package was moved out of the way"
    );

    std::fs::write(dropin.join("junk.zip"), b"not a package").expect("drop");
    let log = wait_for_log(&dropin.join("failed")).await;
    assert!(log.starts_with("refused"), "{log}");
    host.stop().await;
}
