//! Installs, upgrades and removals keep the grants of a plugin's declared
//! codes in line with its manifest, in the operation's own transaction:
//! new codes get their `default_roles` (creating missing roles with data
//! scope `self`), a code an upgrade drops loses its grants (a rename is a
//! drop plus an add), an administrator's revocation of a code that stays
//! is kept, a failed upgrade changes nothing, and uninstalling removes
//! every grant of the plugin's codes.

use plinth_host::db::{host_sql, plugin_grants};
use sqlx::Row;

use crate::support::{TestHost, all_dbs, built_plugins, derived_package, test_config};

/// goods 1.1.0 as `version` with `goods.items.write` renamed to
/// `goods.items.edit`, plus `extra` files.
fn renamed_goods(version: &str, extra: &[(String, String)]) -> Vec<u8> {
    let manifest = std::fs::read_to_string(built_plugins().join("goods-1.1.0/plugin.toml"))
        .expect("goods 1.1.0 manifest")
        .replace("goods.items.write", "goods.items.edit")
        .replace("version = \"1.1.0\"", &format!("version = \"{version}\""));
    let mut files: Vec<(&str, &str)> = vec![("plugin.toml", manifest.as_str())];
    files.extend(extra.iter().map(|(p, c)| (p.as_str(), c.as_str())));
    derived_package("goods-1.1.0", version, &files)
}

async fn role_scope(host: &TestHost, role: &str) -> Option<String> {
    let sql = host_sql(
        host.host.db.dialect(),
        "SELECT data_scope FROM plinth_roles WHERE name = ?",
    );
    let row = sqlx::query(&sql)
        .bind(role)
        .fetch_optional(host.host.db.pool())
        .await
        .expect("roles");
    row.map(|r| plinth_host::db::store::text(&r, "data_scope").expect("text"))
}

#[tokio::test]
async fn grants_follow_the_declared_codes_through_upgrade_and_removal() {
    for db in all_dbs().await {
        let kind = db.kind;
        let data = tempfile::tempdir().expect("temp dir");
        let config = test_config(&db, data.path(), &[("goods", "1.0.0")]);
        let host = TestHost::start(config).await.expect("host starts");
        let dbh = &host.host.db;
        let admin = host.admin();

        assert_eq!(
            plugin_grants::plugin_codes(dbh, "goods")
                .await
                .expect("codes"),
            [
                "B_GOODS_ITEM_DELETE",
                "goods.items.read",
                "goods.items.write"
            ],
            "{kind}"
        );
        assert_eq!(
            plugin_grants::role_codes(dbh, "staff")
                .await
                .expect("codes"),
            ["goods.items.read", "goods.items.write"],
            "{kind}"
        );
        assert_eq!(
            role_scope(&host, "clerk").await.as_deref(),
            Some("self"),
            "{kind}"
        );

        // An administrator takes read away from clerk; it stays away.
        let revoke = host_sql(
            dbh.dialect(),
            "DELETE FROM plinth_role_grants WHERE role = ? AND permission = ?",
        );
        sqlx::query(&revoke)
            .bind("clerk")
            .bind("goods.items.read")
            .execute(dbh.pool())
            .await
            .expect("revoke");

        // A failing upgrade (its second migration breaks) changes no grant.
        let mut broken = Vec::new();
        for dialect in ["sqlite", "postgres", "mysql"] {
            broken.push((
                format!("sql/{dialect}/0003_broken.sql"),
                "ALTER TABLE {{prefix}}items ADD COLUMN stock INTEGER;".to_owned(),
            ));
        }
        let (status, body) = admin
            .install(renamed_goods("1.2.0", &broken), "upgrade")
            .await;
        assert_ne!(status, 200, "{kind}: {body}");
        assert_eq!(
            plugin_grants::plugin_codes(dbh, "goods")
                .await
                .expect("codes"),
            [
                "B_GOODS_ITEM_DELETE",
                "goods.items.read",
                "goods.items.write"
            ],
            "{kind}: the failed upgrade left the grants as they were"
        );

        // The upgrade renames write to edit: a drop plus an add.
        let (status, body) = admin.install(renamed_goods("1.1.0", &[]), "upgrade").await;
        assert_eq!(status, 201, "{kind}: {body}");
        assert_eq!(
            plugin_grants::plugin_codes(dbh, "goods")
                .await
                .expect("codes"),
            [
                "B_GOODS_ITEM_DELETE",
                "goods.items.edit",
                "goods.items.read"
            ],
            "{kind}"
        );
        assert_eq!(
            plugin_grants::role_codes(dbh, "staff")
                .await
                .expect("codes"),
            ["goods.items.edit", "goods.items.read"],
            "{kind}: the dropped code's grant went, the new one came with its default roles"
        );
        assert!(
            plugin_grants::role_codes(dbh, "clerk")
                .await
                .expect("codes")
                .is_empty(),
            "{kind}: the revocation survived the upgrade"
        );

        let (status, body) = admin.delete("/plugins/goods").await;
        assert_eq!(status, 200, "{kind}: {body}");
        let left = sqlx::query(&host_sql(
            dbh.dialect(),
            "SELECT COUNT(*) AS n FROM plinth_role_grants WHERE plugin = ?",
        ))
        .bind("goods")
        .fetch_one(dbh.pool())
        .await
        .expect("count");
        assert_eq!(left.try_get::<i64, _>("n").expect("n"), 0, "{kind}");
        host.stop().await;
    }
}
