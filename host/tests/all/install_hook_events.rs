//! An install hook may publish: its events commit with the upgrade and are
//! delivered, on every database, including PostgreSQL and MariaDB, where
//! the hook's SQL runs logged in as the plugin's own role or account,
//! which has no right on the host's event tables. A hook that fails
//! publishes nothing.

use std::time::Duration;

use crate::support::{DbKind, TestHost, all_dbs, derived_package, eventually, test_config};

/// Replaces probe's install script (its `probe_notes` rows with a negative
/// id, run in order on an upgrade) with `lines`.
async fn set_script(host: &TestHost, kind: DbKind, lines: &[&str]) {
    let pool = host.host.db.pool();
    sqlx::query("DELETE FROM probe_notes WHERE id < 0")
        .execute(pool)
        .await
        .expect("clear the hook's script");
    let placeholder = if kind == DbKind::Postgres { "$1" } else { "?" };
    for (i, line) in lines.iter().enumerate() {
        sqlx::query(&format!(
            "INSERT INTO probe_notes (id, body) VALUES ({}, {placeholder})",
            -(i as i64) - 1
        ))
        .bind(*line)
        .execute(pool)
        .await
        .expect("store the hook's script");
    }
}

async fn events_with(host: &TestHost, payload: &str) -> i64 {
    let row = sqlx::query(&format!(
        "SELECT COUNT(*) FROM plinth_events WHERE source = 'probe' AND topic = 'probe.ping' \
         AND payload = '{payload}'"
    ))
    .fetch_one(host.host.db.pool())
    .await
    .expect("count events");
    sqlx::Row::try_get::<i64, _>(&row, 0).expect("count")
}

#[tokio::test]
async fn an_install_hooks_event_commits_with_the_upgrade_and_a_failed_hooks_never_does() {
    for db in all_dbs().await {
        let kind = db.kind;
        let data = tempfile::tempdir().expect("temp dir");
        let host = TestHost::start(test_config(&db, data.path(), &[("probe", "0.1.0")]))
            .await
            .expect("host starts");

        set_script(
            &host,
            kind,
            &[
                "publish probe.ping from-a-failed-hook",
                "SELECT * FROM probe_no_such_table",
            ],
        )
        .await;
        let (status, body) = host
            .admin()
            .install(derived_package("probe-0.1.0", "0.2.0", &[]), "upgrade")
            .await;
        assert_eq!(
            status, 422,
            "{kind}: the second line fails the hook: {body}"
        );
        assert_eq!(
            events_with(&host, "from-a-failed-hook").await,
            0,
            "{kind}: the failed hook's event is rolled back with it"
        );

        set_script(&host, kind, &["publish probe.ping from-the-hook"]).await;
        let (status, body) = host
            .admin()
            .install(derived_package("probe-0.1.0", "0.3.0", &[]), "upgrade")
            .await;
        assert!(
            (200..300).contains(&status),
            "{kind}: a hook that publishes upgrades: {body}"
        );
        assert_eq!(events_with(&host, "from-the-hook").await, 1, "{kind}");
        let delivered = eventually(
            &format!("{kind}: the hook's event delivered"),
            Duration::from_secs(15),
            || async {
                let response = host.get("/p/probe/last-event?topic=probe.ping").await;
                if response.status() != 200 {
                    return None;
                }
                response.text().await.ok()
            },
        )
        .await;
        assert_eq!(delivered, "from-the-hook", "{kind}");
        assert_eq!(
            events_with(&host, "from-a-failed-hook").await,
            0,
            "{kind}: still nothing from the failed one"
        );
        host.stop().await;
    }
}
