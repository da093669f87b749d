//! The outbox survives the host: a real `plinth serve` killed with SIGKILL
//! while a subscriber is in the middle of an event comes back and delivers
//! it exactly once to each subscriber (the subscriber's own writes commit
//! with the delivery, so the killed attempt left nothing). And two host
//! processes on one database deliver each event once between them. On
//! SQLite (one host), PostgreSQL and MariaDB.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::Row;

use crate::support::{
    DbKind, ServeProcess, TestDb, all_dbs, eventually, stage_plugin, write_process_config,
};

/// `dir/config.json` for a host on `db` serving probe and notify, with a
/// short lease so a killed host's claim runs out quickly.
fn config_on(dir: &Path, db: &TestDb) -> PathBuf {
    let path = write_process_config(
        dir,
        serde_json::json!([
            { "name": "probe", "version": "0.1.0" },
            { "name": "notify", "version": "0.1.0" },
        ]),
    );
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read config")).expect("json");
    config["database"]["url"] = db.url.clone().into();
    config["events"] = serde_json::json!({ "poll_ms": 50, "lease_ms": 1500 });
    std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("json")).expect("write");
    stage_plugin(&dir.join("data"), "probe", "0.1.0");
    stage_plugin(&dir.join("data"), "notify", "0.1.0");
    path
}

async fn serve(dir: &Path, config: &Path) -> ServeProcess {
    ServeProcess::start(
        Path::new(env!("CARGO_BIN_EXE_plinth")),
        config,
        dir,
        &dir.join("data"),
    )
    .await
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("connect");
    let row = sqlx::query(sql).fetch_one(&pool).await.expect(sql);
    pool.close().await;
    row.try_get::<i64, _>(0).expect("a count")
}

async fn publish(client: &reqwest::Client, host: &ServeProcess, topic: &str, payload: &str) {
    let response = client
        .post(host.url(&format!("/p/probe/publish?topic={topic}")))
        .body(payload.to_owned())
        .send()
        .await
        .expect("answered");
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );
}

/// A client acting as the bootstrap super-admin (plugin routes check the
/// caller first).
fn client() -> reqwest::Client {
    crate::support::client_with_token(Some(&crate::support::bootstrap_token()))
}

#[tokio::test]
async fn an_event_whose_delivery_was_killed_is_delivered_once_after_a_restart() {
    for db in all_dbs().await {
        let kind = db.kind;
        let dir = tempfile::tempdir().expect("temp dir");
        let config = config_on(dir.path(), &db);
        let client = client();
        let host = serve(dir.path(), &config).await;

        // probe writes its row, then stays busy for 1.5 s: the kill lands
        // after the subscriber's write and before the delivery commits.
        publish(&client, &host, "goods.stock-low", "slow:1500").await;
        eventually(&format!("{kind}: probe's delivery under way"), Duration::from_secs(10), || async {
            (count(&db, "SELECT COUNT(*) FROM plinth_event_deliveries WHERE subscriber = 'probe' AND state = 'pending' AND claimed_by IS NOT NULL").await == 1).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        host.stop().await;

        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM probe_events").await,
            0,
            "{kind}: the killed delivery's write did not commit"
        );
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM plinth_event_deliveries WHERE subscriber = 'probe' AND state = 'pending'").await,
            1,
            "{kind}: probe's delivery is still owed"
        );

        let host = serve(dir.path(), &config).await;
        eventually(
            &format!("{kind}: delivered after the restart"),
            Duration::from_secs(30),
            || async {
                (count(
                    &db,
                    "SELECT COUNT(*) FROM plinth_event_deliveries WHERE state = 'delivered'",
                )
                .await
                    == 2)
                    .then_some(())
            },
        )
        .await;
        // Time for a second delivery, were there going to be one.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM probe_events WHERE payload = 'slow:1500'"
            )
            .await,
            1,
            "{kind}: probe received it exactly once"
        );
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM notify_notifications WHERE payload = 'slow:1500'"
            )
            .await,
            1,
            "{kind}: notify received it exactly once"
        );
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM plinth_event_deliveries").await,
            2,
            "{kind}: one delivery per subscriber"
        );
        host.stop().await;
    }
}

#[tokio::test]
async fn two_hosts_on_one_database_deliver_each_event_once_between_them() {
    for db in all_dbs().await {
        if db.kind == DbKind::Sqlite {
            continue; // one host per SQLite file
        }
        let kind = db.kind;
        let first_dir = tempfile::tempdir().expect("temp dir");
        let second_dir = tempfile::tempdir().expect("temp dir");
        let first_config = config_on(first_dir.path(), &db);
        let second_config = config_on(second_dir.path(), &db);
        let client = client();
        let first = serve(first_dir.path(), &first_config).await;
        let second = serve(second_dir.path(), &second_config).await;

        const EVENTS: usize = 60;
        let topics = ["probe.ping", "probe.slow", "goods.stock-low"];
        for n in 0..EVENTS {
            let host = if n % 2 == 0 { &first } else { &second };
            // Each delivery keeps probe busy for 10 ms, long enough for the
            // other host to claim the next free one.
            publish(&client, host, topics[n % 3], "slow:10").await;
        }
        eventually(&format!("{kind}: all delivered to probe"), Duration::from_secs(60), || async {
            (count(&db, "SELECT COUNT(*) FROM plinth_event_deliveries WHERE subscriber = 'probe' AND state = 'delivered'").await == EVENTS as i64).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM probe_events").await,
            EVENTS as i64,
            "{kind}: each event reached probe exactly once"
        );
        let hosts = count(&db, "SELECT COUNT(DISTINCT claimed_by) FROM plinth_event_deliveries WHERE subscriber = 'probe'").await;
        assert_eq!(hosts, 2, "{kind}: both hosts delivered some");
        first.stop().await;
        second.stop().await;
    }
}

mod in_transactions {
    //! In-process hosts: a plugin's transaction decides whether its event
    //! exists at all.

    use std::time::Duration;

    use serde_json::json;

    use crate::event_dead_letters::count;
    use crate::support::{TestHost, all_dbs, eventually, test_config};

    async fn post(host: &TestHost, path: &str, body: &str) -> u16 {
        host.client
            .post(host.url(path))
            .body(body.to_owned())
            .send()
            .await
            .expect("answered")
            .status()
            .as_u16()
    }

    #[tokio::test]
    async fn an_event_published_in_a_rolled_back_transaction_is_never_delivered() {
        for db in all_dbs().await {
            let kind = db.kind;
            let data = tempfile::tempdir().expect("temp dir");
            let mut config =
                test_config(&db, data.path(), &[("probe", "0.1.0"), ("notify", "0.1.0")]);
            config.events.poll_ms = 50;
            let host = TestHost::start(config).await.expect("host starts");

            let topic = "/p/probe/tx?topic=goods.stock-low";
            assert_eq!(
                post(&host, &format!("{topic}&end=rollback"), "rolled-back").await,
                200,
                "{kind}"
            );
            assert_eq!(
                post(&host, &format!("{topic}&end=open"), "left-open").await,
                200,
                "{kind}"
            );
            assert_eq!(
                post(&host, &format!("{topic}&end=commit"), "committed").await,
                200,
                "{kind}"
            );

            // Ordered delivery: once the last is in, the earlier ones would be too.
            eventually(
                &format!("{kind}: the committed event delivered"),
                Duration::from_secs(10),
                || async {
                    (count(
                        &db,
                        "SELECT COUNT(*) FROM notify_notifications WHERE payload = 'committed'",
                    )
                    .await
                        == 1)
                        .then_some(())
                },
            )
            .await;
            assert_eq!(
                count(&db, "SELECT COUNT(*) FROM notify_notifications WHERE payload IN ('rolled-back', 'left-open')").await,
                0,
                "{kind}: rolled-back events are never delivered"
            );
            assert_eq!(
                count(&db, "SELECT COUNT(*) FROM plinth_events WHERE payload IN ('rolled-back', 'left-open')").await,
                0,
                "{kind}: they never reached the outbox"
            );
            assert_eq!(
                count(&db, "SELECT COUNT(*) FROM probe_events WHERE topic = 'tx'").await,
                1,
                "{kind}: only the committed transaction's own write remains"
            );
            // A call that left its transaction open did not hold on to a connection.
            assert_eq!(
                post(&host, &format!("{topic}&end=commit"), "again").await,
                200,
                "{kind}"
            );
            host.stop().await;
        }
    }

    #[tokio::test]
    async fn goods_publishes_stock_low_with_the_stock_change_and_notify_lists_it() {
        for db in all_dbs().await {
            let kind = db.kind;
            let data = tempfile::tempdir().expect("temp dir");
            let mut config =
                test_config(&db, data.path(), &[("goods", "1.0.0"), ("notify", "0.1.0")]);
            config.plugins[0]
                .settings
                .insert("low_stock_threshold".into(), "5".into());
            config.events.poll_ms = 50;
            let host = TestHost::start(config).await.expect("host starts");

            let created = host
                .client
                .post(host.url("/p/goods/api/items"))
                .json(&json!({"sku": "LOW-7", "name": "Nearly gone", "stock": 8}))
                .send()
                .await
                .expect("answered");
            assert_eq!(created.status(), 201, "{kind}");
            let id = created.json::<serde_json::Value>().await.expect("json")["id"]
                .as_i64()
                .expect("id");
            let adjust = |delta: i64| {
                host.client
                    .post(host.url(&format!("/p/goods/api/items/{id}/stock")))
                    .json(&json!({ "delta": delta }))
                    .send()
            };
            assert_eq!(
                adjust(-2).await.expect("answered").status(),
                200,
                "{kind}: 6 left, not low"
            );
            assert_eq!(
                adjust(-20).await.expect("answered").status(),
                409,
                "{kind}: refused, rolled back"
            );
            assert_eq!(
                adjust(-3).await.expect("answered").status(),
                200,
                "{kind}: 3 left, low"
            );
            assert_eq!(
                adjust(-1).await.expect("answered").status(),
                200,
                "{kind}: still low, no new event"
            );

            let page = eventually(
                &format!("{kind}: notify lists the low stock"),
                Duration::from_secs(10),
                || async {
                    let page = host.get("/p/notify/").await.text().await.expect("page");
                    page.contains("LOW-7").then_some(page)
                },
            )
            .await;
            assert!(page.contains("goods.stock-low"), "{kind}: {page}");
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(
                count(
                    &db,
                    "SELECT COUNT(*) FROM notify_notifications WHERE topic = 'goods.stock-low'"
                )
                .await,
                1,
                "{kind}: one event, for the change that crossed the threshold"
            );
            assert_eq!(
                count(
                    &db,
                    "SELECT COUNT(*) FROM plinth_events WHERE topic = 'goods.stock-low'"
                )
                .await,
                1,
                "{kind}"
            );
            host.stop().await;
        }
    }
}
