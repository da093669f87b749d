//! A plugin whose stored manifest (the `plinth_plugins.manifest` column) no
//! longer reads back through `Manifest::parse` is never silently skipped:
//! the next operation that needs it stops with a message naming the plugin,
//! and the route and table-prefix collision checks still run against every
//! other installed plugin.

use crate::support::{Admin, TestHost, all_dbs, built_plugins, copy_dir, package, test_config};

/// `hello` under another name, mounted at hello's route.
fn hello_twin_on_hellos_route() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&built_plugins().join("hello-0.1.0"), dir.path());
    let path = dir.path().join("plugin.toml");
    let manifest = std::fs::read_to_string(&path).expect("manifest");
    let manifest = manifest
        .replacen(
            "name = \"hello\"",
            "name = \"hello-twin\"\nroute_prefix = \"hello\"",
            1,
        )
        // Its codes live under its own name.
        .replace("\"hello.", "\"hello-twin.");
    std::fs::write(&path, manifest).expect("write manifest");
    plinth_package::pack_dir(dir.path()).expect("pack")
}

#[tokio::test]
async fn an_unreadable_stored_manifest_stops_operations_that_need_it_and_names_the_plugin() {
    for db in all_dbs().await {
        let kind = db.kind;
        let data = tempfile::tempdir().expect("temp dir");
        let host = TestHost::start(test_config(&db, data.path(), &[]))
            .await
            .expect("host starts");
        let admin = host.admin();
        for name in ["goods-1.0.0", "hello-0.1.0"] {
            let (status, body) = admin.install(package(name), "install").await;
            assert_eq!(status, 201, "{kind}: {name}: {body}");
        }
        sqlx::query("UPDATE plinth_plugins SET manifest = 'not a manifest' WHERE name = 'goods'")
            .execute(host.host.db.pool())
            .await
            .expect("corrupt the stored manifest");

        // Dropping goods' data needs its table prefix, which only the
        // stored manifest knows: refused, naming goods, nothing changed.
        let (status, body) = admin.delete("/plugins/goods?drop_data=true").await;
        assert_eq!(status, 409, "{kind}: {body}");
        let message = Admin::message(&body);
        assert!(
            message.starts_with("goods's stored manifest") && message.contains("Nothing changed"),
            "{kind}: {message}"
        );
        let (_, listed) = admin.get("/plugins").await;
        assert!(
            listed
                .as_array()
                .is_some_and(|rows| rows.iter().any(|r| r["name"] == "goods")),
            "{kind}: goods is still installed: {listed}"
        );
        assert_eq!(host.get("/p/goods/api/items").await.status(), 200, "{kind}");

        // The collision checks still run against the readable plugins
        // (goods sorts first, and is not where they stop).
        let (status, body) = admin.install(hello_twin_on_hellos_route(), "install").await;
        assert_eq!(status, 409, "{kind}: {body}");
        let message = Admin::message(&body);
        assert!(
            message.contains("/p/hello/, which hello already serves"),
            "{kind}: {message}"
        );

        // A package that collides with no readable plugin is still refused:
        // nothing shows it does not collide with goods.
        let (status, body) = admin.install(package("http-hello-0.1.0"), "install").await;
        assert_eq!(status, 409, "{kind}: {body}");
        assert!(
            Admin::message(&body).starts_with("goods's stored manifest"),
            "{kind}: {body}"
        );

        // The way out the message gives: remove goods keeping its data,
        // after which installs go through again.
        let (status, body) = admin.delete("/plugins/goods").await;
        assert_eq!(status, 200, "{kind}: {body}");
        let (status, body) = admin.install(package("http-hello-0.1.0"), "install").await;
        assert_eq!(status, 201, "{kind}: {body}");
        host.stop().await;
    }
}
