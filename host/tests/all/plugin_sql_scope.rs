//! A plugin's SQL is confined to its own tables, on every dialect: a
//! statement naming another table is refused before it reaches the
//! database, and its own tables work.

use serde_json::Value;

use crate::support::{TestHost, all_dbs, test_config};

async fn run_sql(host: &TestHost, stmt: &str) -> (u16, Value) {
    host.probe("sql", stmt).await
}

#[tokio::test]
async fn sql_outside_the_plugin_prefix_is_refused_on_every_dialect() {
    for db in all_dbs().await {
        let data = tempfile::tempdir().expect("temp dir");
        let config = test_config(&db, data.path(), &[("probe", "0.1.0")]);
        let host = TestHost::start(config).await.expect("host starts");

        let (status, body) = run_sql(&host, "SELECT id, body FROM probe_notes").await;
        assert_eq!(status, 200, "{}: own table readable: {body}", db.kind);

        for stmt in [
            "SELECT * FROM plinth_plugins",
            "SELECT n.id FROM probe_notes n JOIN plinth_plugin_kv k ON k.k = n.body",
            "SELECT id FROM probe_notes WHERE id IN (SELECT 1 FROM plinth_migrations)",
            "DELETE FROM plinth_plugins",
            "DROP TABLE probe_notes",
            "SELECT 1; DELETE FROM probe_notes",
        ] {
            let (status, body) = run_sql(&host, stmt).await;
            assert_eq!(
                status, 403,
                "{}: {stmt} must be refused, got {body}",
                db.kind
            );
            let message = body["error"].as_str().unwrap_or_default();
            assert!(!message.is_empty(), "{}: refusal explains itself", db.kind);
        }
        let (_, body) = run_sql(&host, "SELECT * FROM plinth_plugins").await;
        let message = body["error"].as_str().unwrap_or_default();
        assert!(
            message.contains("plinth_plugins") && message.contains("probe_"),
            "{}: the refusal names the table and the prefix: {message}",
            db.kind
        );

        // The refused statements did not run: the host's tables are intact.
        let installed = plinth_host::db::store::installed_plugins(&host.host.db)
            .await
            .expect("read plugins");
        assert_eq!(installed.len(), 1, "{}", db.kind);
        host.stop().await;
    }
}

/// The escapes found by hostile testing, through the real probe plugin with
/// the guard on: a write aimed at another plugin's table through a CTE of
/// the same name, sub-queries smuggled past the guard in comments, and
/// statements long or deep enough to overflow a recursive check. Each is
/// refused, the other plugin's rows are unchanged, and the host keeps
/// serving.
#[tokio::test]
async fn cte_shadowing_comment_smuggling_and_huge_expressions_are_refused() {
    for db in all_dbs().await {
        let data = tempfile::tempdir().expect("temp dir");
        let config = test_config(&db, data.path(), &[("probe", "0.1.0"), ("goods", "1.0.0")]);
        let host = TestHost::start(config).await.expect("host starts");
        let created = host
            .client
            .post(host.url("/p/goods/api/items"))
            .json(&serde_json::json!({ "sku": "W-1", "name": "Widget", "price_cents": 100, "stock": 3 }))
            .send()
            .await
            .expect("goods answered");
        assert_eq!(created.status().as_u16(), 201, "{}", db.kind);

        for stmt in [
            "WITH goods_items AS (SELECT 1 AS id) UPDATE goods_items SET name = 'pwned'",
            "WITH goods_items AS (SELECT 1 AS id) DELETE FROM goods_items",
            "WITH probe_x AS (SELECT 1), goods_items AS (SELECT 2) INSERT INTO goods_items (sku, name, price_cents, stock) VALUES ('X', 'x', 1, 1)",
            "WITH \"Goods_items\" AS (SELECT 1 AS id) UPDATE goods_items SET name = 'pwned'",
            "SELECT 1 </*'*/ 2, (SELECT COUNT(*) FROM plinth_plugins)",
            "SELECT id FROM probe_notes /*! UNION SELECT manifest FROM plinth_plugins */",
            "SELECT id FROM probe_notes /*M! UNION SELECT manifest FROM plinth_plugins */",
            "SELECT id FROM probe_notes --\t\nUNION SELECT 1",
            "SELECT id FROM probe_notes WHERE 1 = 1\0; DELETE FROM goods_items",
        ] {
            let route = if stmt.starts_with("SELECT") {
                "sql"
            } else {
                "exec"
            };
            let (status, body) = host.probe(route, stmt).await;
            assert_eq!(
                status, 403,
                "{}: {stmt:?} must be refused, got {body}",
                db.kind
            );
        }

        // 100,000 terms (over the size limit) and 30,000 terms (under it,
        // over the chain limit): refused without recursion.
        for terms in [100_000, 30_000] {
            let expression = vec!["1"; terms].join("*");
            let response = host
                .client
                .post(host.url("/p/probe/sql"))
                .body(format!("SELECT {expression}"))
                .send()
                .await
                .expect("answered");
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            let body = body.get(..300).unwrap_or(&body);
            assert!(
                status == 403 || status == 400,
                "{}: a {terms}-term expression is refused, got {status} {body}",
                db.kind
            );
        }

        let health = host
            .client
            .get(host.url("/healthz"))
            .send()
            .await
            .expect("healthz");
        assert_eq!(
            health.status().as_u16(),
            200,
            "{}: the host keeps serving",
            db.kind
        );
        let items = host
            .client
            .get(host.url("/p/goods/api/items"))
            .send()
            .await
            .expect("goods answered");
        assert_eq!(items.status().as_u16(), 200, "{}", db.kind);
        let items: Value = items.json().await.expect("json");
        let text = items.to_string();
        assert!(
            text.contains("Widget") && !text.contains("pwned") && !text.contains("\"X\""),
            "{}: goods' rows are unchanged: {text}",
            db.kind
        );
        host.stop().await;
    }
}
