//! A plugin's SQL is confined to its own tables, on every dialect: a
//! statement naming another table is refused before it reaches the
//! database, and its own tables work.

use serde_json::Value;

use crate::support::{TestHost, all_dbs, test_config};

async fn run_sql(host: &TestHost, stmt: &str) -> (u16, Value) {
    let response = host
        .client
        .get(host.url("/p/probe/sql"))
        .query(&[("stmt", stmt)])
        .send()
        .await
        .expect("answered");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
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
