//! Each plugin's own database role (PostgreSQL) or account (MariaDB) lives
//! as long as its tables: a fork gets one of its own, a plain removal keeps
//! it for the kept tables and a reinstall goes on with it, and a removal
//! with `--drop-data` drops it, so no `plinth_p_*` role is left behind.

use serde_json::{Value, json};

use plinth_host::db::plugin_roles::{DbRights, account_name, role_name};

use crate::support::{DbKind, TestDb, TestHost, package, test_config};

/// The plugin roles or accounts of this host's database, sorted.
async fn plugin_roles(host: &TestHost) -> Vec<String> {
    let (sql, tag) = match host.host.db.plugin_sql().rights() {
        DbRights::PostgresRoles { tag, .. } => (
            "SELECT CAST(rolname AS TEXT) FROM pg_roles WHERE rolname LIKE $1 ORDER BY 1",
            tag,
        ),
        DbRights::Mysql { tag, .. } => (
            "SELECT CAST(user AS CHAR) FROM mysql.user WHERE user LIKE ? ORDER BY 1",
            tag,
        ),
        other => panic!("the test user can make plugin roles, got {other:?}"),
    };
    let rows = sqlx::query(sql)
        .bind(format!("plinth\\_p\\_{tag}\\_%"))
        .fetch_all(host.host.db.pool())
        .await
        .expect("roles");
    rows.iter()
        .map(|r| sqlx::Row::try_get(r, 0).expect("role name"))
        .collect()
}

/// The name `plugin`'s role or account has on this host's database.
fn role_of(host: &TestHost, plugin: &str) -> String {
    match host.host.db.plugin_sql().rights() {
        DbRights::PostgresRoles { tag, .. } => role_name(tag, plugin),
        DbRights::Mysql { tag, .. } => account_name(tag, plugin),
        other => panic!("no roles: {other:?}"),
    }
}

async fn items(host: &TestHost, mount: &str) -> Value {
    let response = host.get(&format!("/p/{mount}/api/items")).await;
    assert_eq!(response.status().as_u16(), 200, "{mount} lists its items");
    response.json().await.expect("items")
}

#[tokio::test]
async fn plugin_roles_follow_their_tables_through_forks_removal_and_reinstall() {
    for kind in [DbKind::Postgres, DbKind::Mysql] {
        let Some(db) = TestDb::create(kind).await else {
            continue;
        };
        let data = tempfile::tempdir().expect("temp dir");
        let config = test_config(
            &db,
            data.path(),
            &[("goods", "1.0.0"), ("goods-acme", "1.0.0")],
        );
        let host = TestHost::start(config).await.expect("host starts");
        let goods = role_of(&host, "goods");
        let acme = role_of(&host, "goods-acme");
        assert_ne!(goods, acme, "{kind}: the fork has its own role");
        assert_eq!(
            plugin_roles(&host).await,
            {
                let mut both = vec![goods.clone(), acme.clone()];
                both.sort();
                both
            },
            "{kind}: one role per plugin"
        );
        let response = host
            .client
            .post(host.url("/p/goods-acme/api/items"))
            .json(&json!({ "sku": "K-1", "name": "Kept", "price_cents": 5, "stock": 2 }))
            .send()
            .await
            .expect("goods-acme answered");
        assert_eq!(response.status().as_u16(), 201, "{kind}: the fork writes");

        // A plain removal keeps the tables and the role they belong to.
        let (status, body) = host.admin().delete("/plugins/goods-acme").await;
        assert_eq!(status, 200, "{kind}: {body}");
        assert!(
            plugin_roles(&host).await.contains(&acme),
            "{kind}: the kept tables keep their role"
        );
        // A reinstall goes on with the role and finds its rows.
        let (status, body) = host
            .admin()
            .install(package("goods-acme-1.0.0"), "install")
            .await;
        assert!((200..300).contains(&status), "{kind}: reinstall: {body}");
        let kept = items(&host, "goods-acme").await;
        assert_eq!(kept[0]["sku"], "K-1", "{kind}: the kept rows are readable");
        let response = host
            .client
            .post(host.url("/p/goods-acme/api/items"))
            .json(&json!({ "sku": "K-2", "name": "New", "price_cents": 5, "stock": 2 }))
            .send()
            .await
            .expect("goods-acme answered");
        assert_eq!(
            response.status().as_u16(),
            201,
            "{kind}: the reinstalled fork writes its kept table"
        );

        // Removal with its data drops the fork's role only.
        let (status, body) = host
            .admin()
            .delete("/plugins/goods-acme?drop_data=true")
            .await;
        assert_eq!(status, 200, "{kind}: {body}");
        assert_eq!(
            plugin_roles(&host).await,
            vec![goods.clone()],
            "{kind}: the fork's role is gone, goods' stays"
        );
        assert_eq!(
            items(&host, "goods").await,
            json!([]),
            "{kind}: goods works"
        );
        let (status, body) = host.admin().delete("/plugins/goods?drop_data=true").await;
        assert_eq!(status, 200, "{kind}: {body}");
        assert_eq!(
            plugin_roles(&host).await,
            Vec::<String>::new(),
            "{kind}: no plinth_p_* role is left after --drop-data"
        );
        // A fresh install after that makes the role again.
        let (status, body) = host
            .admin()
            .install(package("goods-1.0.0"), "install")
            .await;
        assert!(
            (200..300).contains(&status),
            "{kind}: install again: {body}"
        );
        assert_eq!(plugin_roles(&host).await, vec![goods], "{kind}");
        assert_eq!(
            items(&host, "goods").await,
            json!([]),
            "{kind}: fresh tables"
        );
        host.stop().await;
    }
}
