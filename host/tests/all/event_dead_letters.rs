//! A subscriber that keeps failing: its delivery backs off, lands in the
//! dead letters after `events.max_attempts` failures while other
//! subscribers go on receiving, and a replay delivers it exactly once.
//! Removing a subscriber drops what was still waiting for it and says how
//! much. On SQLite, PostgreSQL and MariaDB.

use std::time::Duration;

use sqlx::Row;

use crate::support::{TestDb, TestHost, all_dbs, eventually, test_config};

/// A host serving `probe` (which can be told to fail) and `notify`, with
/// back-off short enough that five failures take well under a second.
async fn host_on(db: &TestDb, data: &std::path::Path) -> TestHost {
    let mut config = test_config(db, data, &[("probe", "0.1.0"), ("notify", "0.1.0")]);
    config.events.poll_ms = 50;
    config.events.retry_base_ms = 20;
    config.events.retry_max_ms = 100;
    config.events.max_attempts = 5;
    TestHost::start(config).await.expect("host starts")
}

pub async fn count(db: &TestDb, sql: &str) -> i64 {
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("connect");
    let row = sqlx::query(sql).fetch_one(&pool).await.expect(sql);
    pool.close().await;
    row.try_get::<i64, _>(0).expect("a count")
}

pub async fn publish(host: &TestHost, topic: &str, payload: &str) {
    let response = host
        .client
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

async fn set_failing(host: &TestHost, on: bool) {
    let on = if on { "yes" } else { "no" };
    let response = host.get(&format!("/p/probe/fail-events?on={on}")).await;
    assert_eq!(response.status(), 200);
}

async fn dead_letters(host: &TestHost) -> Vec<serde_json::Value> {
    let (status, body) = host.admin().get("/events/dead-letters").await;
    assert_eq!(status, 200, "{body}");
    body.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_failing_subscriber_lands_in_dead_letters_and_a_replay_delivers_once() {
    for db in all_dbs().await {
        let kind = db.kind;
        let data = tempfile::tempdir().expect("temp dir");
        let host = host_on(&db, data.path()).await;
        set_failing(&host, true).await;

        // Both subscribe to goods.stock-low; probe fails, notify must not wait for it.
        publish(&host, "goods.stock-low", "{\"sku\":\"DL-1\"}").await;
        eventually(
            &format!("{kind}: notify received while probe failed"),
            Duration::from_secs(10),
            || async {
                (count(
                    &db,
                    "SELECT COUNT(*) FROM notify_notifications WHERE payload LIKE '%DL-1%'",
                )
                .await
                    == 1)
                    .then_some(())
            },
        )
        .await;

        let dead = eventually(
            &format!("{kind}: the dead letter"),
            Duration::from_secs(15),
            || async {
                let dead = dead_letters(&host).await;
                (!dead.is_empty()).then_some(dead)
            },
        )
        .await;
        assert_eq!(dead.len(), 1, "{kind}: {dead:?}");
        let letter = &dead[0];
        assert_eq!(letter["subscriber"], "probe", "{kind}");
        assert_eq!(letter["topic"], "goods.stock-low", "{kind}");
        assert_eq!(letter["attempts"], 5, "{kind}: five attempts, then dead");
        assert!(
            letter["last_error"]
                .as_str()
                .unwrap_or_default()
                .contains("failing `goods.stock-low` as asked"),
            "{kind}: the last error is kept: {letter}"
        );
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM probe_events").await,
            0,
            "{kind}: a failed delivery's writes rolled back with it"
        );

        // Replay once the subscriber works again: delivered exactly once.
        set_failing(&host, false).await;
        let id = letter["id"].as_i64().expect("id");
        let (status, body) = host
            .admin()
            .post(&format!("/events/dead-letters/{id}/replay"))
            .await;
        assert_eq!(
            (status, body["replayed"].as_i64()),
            (200, Some(1)),
            "{kind}: {body}"
        );
        eventually(
            &format!("{kind}: the replayed delivery"),
            Duration::from_secs(10),
            || async {
                (count(
                    &db,
                    "SELECT COUNT(*) FROM probe_events WHERE payload LIKE '%DL-1%'",
                )
                .await
                    == 1)
                    .then_some(())
            },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM probe_events WHERE payload LIKE '%DL-1%'"
            )
            .await,
            1,
            "{kind}: delivered once, not again"
        );
        assert!(dead_letters(&host).await.is_empty(), "{kind}");
        let (status, _) = host
            .admin()
            .post(&format!("/events/dead-letters/{id}/replay"))
            .await;
        assert_eq!(status, 404, "{kind}: a delivered event is no dead letter");

        // Discard: gone from the list, never delivered.
        set_failing(&host, true).await;
        publish(&host, "probe.ping", "discard-me").await;
        let dead = eventually(
            &format!("{kind}: the second dead letter"),
            Duration::from_secs(15),
            || async {
                let dead = dead_letters(&host).await;
                (!dead.is_empty()).then_some(dead)
            },
        )
        .await;
        let id = dead[0]["id"].as_i64().expect("id");
        let (status, _) = host
            .admin()
            .delete(&format!("/events/dead-letters/{id}"))
            .await;
        assert_eq!(status, 200, "{kind}");
        assert!(dead_letters(&host).await.is_empty(), "{kind}");
        let (status, body) = host
            .admin()
            .delete(&format!("/events/dead-letters/{id}"))
            .await;
        assert_eq!(status, 404, "{kind}: {body}");

        // Without credentials there is no dead-letter list.
        let anonymous = host
            .anonymous
            .get(host.url("/api/admin/events/dead-letters"))
            .send()
            .await
            .expect("answered");
        assert_eq!(anonymous.status(), 401, "{kind}");
        host.stop().await;
    }
}

#[tokio::test]
async fn removing_a_subscriber_drops_its_undelivered_events_with_a_record() {
    for db in all_dbs().await {
        let kind = db.kind;
        let data = tempfile::tempdir().expect("temp dir");
        let host = host_on(&db, data.path()).await;
        set_failing(&host, true).await;
        for n in 0..3 {
            publish(&host, "probe.ping", &format!("undelivered-{n}")).await;
        }
        eventually(&format!("{kind}: three deliveries waiting"), Duration::from_secs(10), || async {
            (count(&db, "SELECT COUNT(*) FROM plinth_event_deliveries WHERE subscriber = 'probe' AND state <> 'delivered'").await == 3).then_some(())
        })
        .await;

        let (status, body) = host.admin().delete("/plugins/probe").await;
        assert_eq!(status, 200, "{kind}: {body}");
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM plinth_event_deliveries WHERE subscriber = 'probe'"
            )
            .await,
            0,
            "{kind}: its undelivered events are dropped"
        );
        // The record: the host's own event, delivered to notify like any other.
        let payload = eventually(&format!("{kind}: notify heard of the removal"), Duration::from_secs(10), || async {
            let pool = sqlx::AnyPool::connect(&db.url).await.expect("connect");
            let row = sqlx::query("SELECT payload FROM notify_notifications WHERE topic = 'plinth.plugin.removed'")
                .fetch_optional(&pool)
                .await
                .expect("query");
            pool.close().await;
            row.map(|r| plinth_host::db::store::text(&r, "payload").expect("text"))
        })
        .await;
        let payload: serde_json::Value = serde_json::from_str(&payload).expect("json");
        assert_eq!(payload["plugin"], "probe", "{kind}");
        assert_eq!(payload["dropped_deliveries"], 3, "{kind}: {payload}");

        // Nothing new reaches a removed plugin: an event on a topic it
        // subscribed to is fanned out to no one.
        host.host
            .events
            .publish("test", "probe.ping".into(), "after-removal".into())
            .await
            .expect("published");
        eventually(&format!("{kind}: the event fanned out"), Duration::from_secs(10), || async {
            (count(&db, "SELECT COUNT(*) FROM plinth_events WHERE payload = 'after-removal' AND fanned_out = 'yes'").await == 1).then_some(())
        })
        .await;
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM plinth_event_deliveries WHERE subscriber = 'probe'"
            )
            .await,
            0,
            "{kind}: no delivery to the removed plugin"
        );
        host.stop().await;
    }
}

#[tokio::test]
async fn a_delivery_running_while_its_subscriber_is_removed_leaves_nothing_waiting() {
    for db in all_dbs().await {
        let kind = db.kind;
        let data = tempfile::tempdir().expect("temp dir");
        let host = host_on(&db, data.path()).await;
        // probe writes the payload to `probe_events` in the delivery's
        // transaction, then spins for 1.5 s: long enough to be removed under.
        publish(&host, "probe.ping", "slow:1500").await;
        eventually(&format!("{kind}: the delivery is in flight"), Duration::from_secs(10), || async {
            (count(&db, "SELECT COUNT(*) FROM plinth_event_deliveries WHERE subscriber = 'probe' AND claimed_by IS NOT NULL").await == 1).then_some(())
        })
        .await;
        let (status, body) = host.admin().delete("/plugins/probe").await;
        assert_eq!(status, 200, "{kind}: {body}");
        // The hook finishes on the version it started on, before or after
        // the removal commits: either way nothing is left waiting, and what
        // it wrote stands or falls with its delivery.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let delivered = count(&db, "SELECT COUNT(*) FROM plinth_event_deliveries WHERE subscriber = 'probe' AND state = 'delivered'").await;
        let written = count(
            &db,
            "SELECT COUNT(*) FROM probe_events WHERE payload = 'slow:1500'",
        )
        .await;
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM plinth_event_deliveries WHERE subscriber = 'probe' AND state <> 'delivered'").await,
            0,
            "{kind}: nothing is left waiting for the removed plugin"
        );
        assert_eq!(
            delivered, written,
            "{kind}: the delivery and its write commit together"
        );
        host.stop().await;
    }
}
