//! A plugin's life through packages on a running host: install, upgrade
//! with a migration and a back-filling install hook, a failed upgrade that
//! changes nothing, rollback, disable and enable, a per-customer fork beside
//! the original, and uninstall with and without its data.

use serde_json::{Value, json};

use crate::support::{
    Admin, TestHost, all_dbs, broken_goods_1_2, package, served_version, test_config,
};

#[tokio::test]
async fn install_upgrade_fail_and_rollback_keep_data_and_one_serving_version() {
    for db in all_dbs().await {
        let kind = db.kind;
        let data = tempfile::tempdir().expect("temp dir");
        let host = TestHost::start(test_config(&db, data.path(), &[]))
            .await
            .expect("host starts");
        let admin = host.admin();

        // 1.0.0, with two rows written by its code.
        let (status, body) = admin.install(package("goods-1.0.0"), "install").await;
        assert_eq!(status, 201, "{kind}: {body}");
        assert_eq!(body["to_version"], "1.0.0");
        for sku in ["OLD-1", "OLD-2"] {
            let created = host
                .client
                .post(host.url("/p/goods/api/items"))
                .json(&json!({"sku": sku, "name": "from 1.0.0", "stock": 3}))
                .send()
                .await
                .expect("answered");
            assert_eq!(created.status(), 201, "{kind}");
        }
        assert_eq!(
            served_version(&host, "/p/goods/api/items").await.as_deref(),
            Some("1.0.0")
        );

        // Installing it again is refused: that is what upgrade is for.
        let (status, body) = admin.install(package("goods-1.0.0"), "install").await;
        assert_eq!(status, 409, "{kind}: {body}");

        // 1.1.0 adds `category` and its hook back-fills the old rows.
        let (status, body) = admin.install(package("goods-1.1.0"), "upgrade").await;
        assert_eq!(status, 201, "{kind}: {body}");
        assert_eq!(body["from_version"], "1.0.0");
        assert_eq!(
            served_version(&host, "/p/goods/api/items").await.as_deref(),
            Some("1.1.0")
        );
        let items: Value = host
            .get("/p/goods/api/items")
            .await
            .json()
            .await
            .expect("json");
        let items = items.as_array().cloned().unwrap_or_default();
        assert_eq!(items.len(), 2, "{kind}: rows written under 1.0.0 are kept");
        for item in &items {
            assert_eq!(item["category"], "general", "{kind}: back-filled: {item}");
        }

        // 1.2.0's migration fails: 1.1.0 keeps serving and the journal says why.
        let (status, body) = admin.install(broken_goods_1_2(), "upgrade").await;
        assert_eq!(status, 422, "{kind}: {body}");
        assert!(
            Admin::message(&body).contains("0005_broken.sql"),
            "{kind}: {body}"
        );
        assert_eq!(
            served_version(&host, "/p/goods/api/items").await.as_deref(),
            Some("1.1.0")
        );
        let (_, plugins) = admin.get("/plugins").await;
        assert_eq!(plugins[0]["version"], "1.1.0", "{kind}: {plugins}");
        let (_, journal) = admin.get("/journal?plugin=goods").await;
        let failed = journal
            .as_array()
            .and_then(|steps| {
                steps
                    .iter()
                    .find(|s| s["step"] == "failed" && s["to_version"] == "1.2.0")
            })
            .cloned();
        assert!(
            failed.is_some(),
            "{kind}: the failure is journalled: {journal}"
        );
        if kind != crate::support::DbKind::Mysql {
            // Transactional DDL: 0004 rolled back with 0005.
            let note = host
                .get("/p/goods/api/items")
                .await
                .json::<Value>()
                .await
                .expect("json");
            assert!(note[0].get("note").is_none());
            let applied = sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM plinth_migrations WHERE scope = 'plugin:goods'",
            )
            .fetch_one(host.host.db.pool())
            .await
            .expect("ledger");
            assert_eq!(applied, 3, "{kind}: only 1.1.0's 0001 to 0003 are recorded");
        }

        // Rollback serves 1.0.0's code again; the data stays.
        let (status, body) = admin.post("/plugins/goods/rollback").await;
        assert_eq!(status, 200, "{kind}: {body}");
        assert_eq!(
            served_version(&host, "/p/goods/api/items").await.as_deref(),
            Some("1.0.0")
        );
        let items: Value = host
            .get("/p/goods/api/items")
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(items.as_array().map(Vec::len), Some(2), "{kind}");
        assert!(
            items[0].get("category").is_none(),
            "{kind}: 1.0.0 code has no category: {items}"
        );
        let (_, plugins) = admin.get("/plugins").await;
        assert_eq!(plugins[0]["version"], "1.0.0");
        assert_eq!(plugins[0]["previous_version"], "1.1.0");

        // A downgrade offered as an upgrade is refused and points at rollback.
        let (status, body) = admin.install(package("goods-1.0.0"), "upgrade").await;
        assert_eq!(status, 409, "{kind}: {body}");

        // Disable: routes and menus go, data stays; enable brings them back.
        let (status, _) = admin.post("/plugins/goods/disable").await;
        assert_eq!(status, 200);
        assert_eq!(host.get("/p/goods/api/items").await.status(), 404);
        let menus: Value = host.get("/api/menus").await.json().await.expect("json");
        assert_eq!(menus.as_array().map(Vec::len), Some(0), "{kind}");
        let (status, _) = admin.post("/plugins/goods/enable").await;
        assert_eq!(status, 200);
        let items: Value = host
            .get("/p/goods/api/items")
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(items.as_array().map(Vec::len), Some(2), "{kind}");

        // Remove with --drop-data: routes and tables are gone.
        let (status, body) = admin.delete("/plugins/goods?drop_data=true").await;
        assert_eq!(status, 200, "{kind}: {body}");
        assert_eq!(host.get("/p/goods/").await.status(), 404);
        let left = plinth_host::db::store::drop_tables_with_prefix(&host.host.db, "goods_")
            .await
            .expect("catalog");
        assert!(
            left.is_empty(),
            "{kind}: goods tables were dropped already: {left:?}"
        );
        host.stop().await;
    }
}

#[tokio::test]
async fn a_fork_installs_beside_the_original_with_its_own_routes_and_tables() {
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
        let (status, body) = admin.install(package("goods-acme-1.0.0"), "install").await;
        assert_eq!(status, 201, "{kind}: {body}");

        for (route, sku) in [("goods", "G-1"), ("goods-acme", "ACME-1")] {
            let created = host
                .client
                .post(host.url(&format!("/p/{route}/api/items")))
                .json(&json!({"sku": sku, "name": route}))
                .send()
                .await
                .expect("answered");
            assert_eq!(created.status(), 201, "{kind}: {route}");
        }
        for (route, sku) in [("goods", "G-1"), ("goods-acme", "ACME-1")] {
            let items: Value = host
                .get(&format!("/p/{route}/api/items"))
                .await
                .json()
                .await
                .expect("json");
            let items = items.as_array().cloned().unwrap_or_default();
            assert_eq!(
                items.len(),
                1,
                "{kind}: {route} sees only its own rows: {items:?}"
            );
            assert_eq!(items[0]["sku"], sku);
        }
        let plugins: Value = host.get("/api/plugins").await.json().await.expect("json");
        let fork = plugins
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == "goods-acme"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(fork["forked_from"], "goods", "{kind}");
        host.stop().await;
    }
}
