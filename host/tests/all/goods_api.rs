//! The goods example plugin end to end: its own tables created by its
//! per-dialect SQL, JSON CRUD with bound parameters, its HTML page, and rows
//! that survive a restart.

use serde_json::{Value, json};

use crate::support::{DbKind, TestDb, TestHost, all_dbs, test_config};

async fn post(host: &TestHost, path: &str, body: Value) -> reqwest::Response {
    host.client
        .post(host.url(path))
        .json(&body)
        .send()
        .await
        .expect("answered")
}

#[tokio::test]
async fn goods_crud_works_on_every_dialect() {
    for db in all_dbs().await {
        let kind = db.kind;
        let data = tempfile::tempdir().expect("temp dir");
        let config = test_config(&db, data.path(), &[("goods", "1.0.0")]);
        let host = TestHost::start(config).await.expect("host starts");

        // A hostile-looking value is stored verbatim: parameters are bound.
        let tricky = "Robert'); DROP TABLE goods_items; --";
        let created = post(
            &host,
            "/p/goods/api/items",
            json!({"sku": "A-1", "name": tricky, "price_cents": 1250, "stock": 7}),
        )
        .await;
        assert_eq!(created.status(), 201, "{kind}");
        assert_eq!(
            created
                .headers()
                .get("x-plugin-version")
                .and_then(|v| v.to_str().ok()),
            Some("1.0.0")
        );
        let item: Value = created.json().await.expect("json");
        let id = item["id"].as_i64().expect("id");
        assert_eq!(item["name"], tricky);

        let duplicate = post(
            &host,
            "/p/goods/api/items",
            json!({"sku": "A-1", "name": "x"}),
        )
        .await;
        assert_eq!(duplicate.status(), 409, "{kind}: duplicate sku");
        let bad = host
            .client
            .post(host.url("/p/goods/api/items"))
            .body("{not json")
            .send()
            .await
            .expect("answered");
        assert_eq!(bad.status(), 400, "{kind}: bad json");

        let list: Value = host
            .get("/p/goods/api/items")
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(list.as_array().map(Vec::len), Some(1), "{kind}: {list}");
        let found: Value = host
            .get("/p/goods/api/items?q=A-")
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(found.as_array().map(Vec::len), Some(1), "{kind}: search");

        let update = host
            .client
            .put(host.url(&format!("/p/goods/api/items/{id}")))
            .json(&json!({"name": "Widget", "price_cents": 990, "stock": 3}))
            .send()
            .await
            .expect("answered");
        assert_eq!(update.status(), 200, "{kind}: update");

        let too_many = post(
            &host,
            &format!("/p/goods/api/items/{id}/stock"),
            json!({"delta": -4}),
        )
        .await;
        assert_eq!(too_many.status(), 409, "{kind}: stock cannot go negative");
        let take = post(
            &host,
            &format!("/p/goods/api/items/{id}/stock"),
            json!({"delta": -2}),
        )
        .await;
        assert_eq!(take.status(), 200, "{kind}");
        let item: Value = host
            .get(&format!("/p/goods/api/items/{id}"))
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(item["stock"], 1, "{kind}");
        assert_eq!(item["name"], "Widget", "{kind}");

        let page = host.get("/p/goods/").await;
        assert_eq!(page.status(), 200);
        assert!(
            page.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .starts_with("text/html")
        );
        assert!(page.text().await.expect("html").contains("Widget"));

        let delete = host
            .client
            .delete(host.url(&format!("/p/goods/api/items/{id}")))
            .send()
            .await
            .expect("answered");
        assert!(delete.status().is_success(), "{kind}: delete");
        assert_eq!(
            host.get(&format!("/p/goods/api/items/{id}")).await.status(),
            404
        );

        // The manifest's menu reaches the admin web.
        let menus: Value = host.get("/api/menus").await.json().await.expect("json");
        assert!(
            menus
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["plugin"] == "goods")),
            "{kind}: {menus}"
        );
        host.stop().await;
    }
}

#[tokio::test]
async fn goods_rows_survive_a_restart_on_sqlite() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let config = test_config(&db, data.path(), &[("goods", "1.0.0")]);

    let host = TestHost::start(config.clone()).await.expect("host starts");
    let created = post(
        &host,
        "/p/goods/api/items",
        json!({"sku": "KEEP-1", "name": "Kept"}),
    )
    .await;
    assert_eq!(created.status(), 201);
    host.stop().await;

    let host = TestHost::start(config).await.expect("host restarts");
    let list: Value = host
        .get("/p/goods/api/items")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list[0]["sku"], "KEEP-1", "{list}");
    host.stop().await;
}
