//! The agents' websocket: authentication, hello/welcome/offer, delivery of
//! pushes and cancellations, status acks, reissue and idle close.

use std::time::{Duration, Instant};

use plinth_package::protocol::{AgentMessage, PackageState, StatusReport, VendorMessage};
use plinth_vendor::db::deployments;
use plinth_vendor::db::overview;
use plinth_vendor::http::ServerOptions;

use crate::support::{
    TestVendor, agent, all_dbs, assert_quiet, connect, hello, recv, recv_within, send, send_text,
};

fn status(deployment: &str, seq: u64, package: Option<&str>, state: PackageState) -> AgentMessage {
    AgentMessage::Status(StatusReport {
        seq,
        deployment_id: deployment.to_string(),
        package: package.map(str::to_string),
        version: package.map(|_| "1.1.0".parse().unwrap()),
        state,
        at_ms: 1,
    })
}

async fn report_count(tv: &TestVendor, deployment: &str) -> i64 {
    let sql = tv
        .vendor
        .db
        .sql("SELECT COUNT(*) FROM status_reports WHERE deployment_id = ?");
    let (n,): (i64,) = sqlx::query_as(&sql)
        .bind(deployment)
        .fetch_one(tv.vendor.db.pool())
        .await
        .unwrap();
    n
}

#[tokio::test]
async fn upgrade_without_or_with_a_wrong_token_is_refused_with_json_401() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        tv.customers(&["acme"]).await;
        let server = tv.serve().await;
        for token in [None, Some("0".repeat(64).as_str()), Some("")] {
            let (status, body) = connect(server.addr(), token).await.err().unwrap();
            assert_eq!(status, 401, "{token:?}");
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            let expected = if token.is_some_and(|t| !t.is_empty()) {
                "unknown_token"
            } else {
                "missing_token"
            };
            assert_eq!(json["code"], expected, "{body}");
            assert!(
                json["message"].as_str().unwrap().contains("customer_token"),
                "{body}"
            );
        }
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn hello_gets_welcome_then_the_open_deployment_and_the_installed_set_is_stored() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        tv.publish("goods", "1.1.0", &[]).await;
        let tokens = tv.customers(&["acme"]).await;
        tv.assign("acme", "goods", "^1").await;
        let pushed = tv.push("acme").await;
        let server = tv.serve().await;

        let mut socket = connect(server.addr(), Some(&tokens[0])).await.unwrap();
        send(&mut socket, &hello(&[("goods", "1.0.0")])).await;
        match recv(&mut socket).await {
            VendorMessage::Welcome {
                customer, protocol, ..
            } => {
                assert_eq!(customer, "acme");
                assert_eq!(protocol, plinth_package::protocol::PROTOCOL_VERSION);
            }
            other => panic!("expected welcome, got {other:?}"),
        }
        match recv(&mut socket).await {
            VendorMessage::Offer {
                deployment_id,
                deployment,
            } => {
                assert_eq!(deployment_id, pushed);
                let m = deployment
                    .verify(
                        &tv.key.public_key(),
                        &plinth_package::Expectations {
                            customer: "acme",
                            now: plinth_vendor::db::now_secs(),
                            max_clock_skew_secs: 300,
                        },
                    )
                    .unwrap();
                assert_eq!(m.deployment_id, pushed);
            }
            other => panic!("expected offer, got {other:?}"),
        }
        // The poller must not offer the same deployment a second time.
        assert_quiet(&mut socket, Duration::from_millis(600)).await;

        let acme = tv.vendor.customer("acme").await.unwrap();
        let seen = overview::load(&tv.vendor.db, Some(acme.id)).await.unwrap();
        let agent = seen.customers[0].agent.as_ref().unwrap();
        assert!(agent.connected);
        assert_eq!(agent.installed[0].name, "goods");
        assert_eq!(agent.installed[0].version.to_string(), "1.0.0");
        drop(socket);
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_push_while_connected_is_delivered_within_a_second() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        tv.publish("goods", "1.1.0", &[]).await;
        let tokens = tv.customers(&["acme", "beta"]).await;
        tv.assign("acme", "goods", "^1").await;
        let server = tv.serve().await;
        let mut acme = agent(server.addr(), &tokens[0]).await;
        let mut beta = agent(server.addr(), &tokens[1]).await;
        // Nothing pushed yet: nothing offered.
        assert_quiet(&mut acme, Duration::from_millis(300)).await;

        // Timed from the push's commit: planning and signing it is the
        // release engineer's wait, not the delivery's.
        let pushed = tv.push("acme").await;
        let started = Instant::now();
        match recv_within(&mut acme, Duration::from_secs(1)).await {
            Some(VendorMessage::Offer { deployment_id, .. }) => assert_eq!(deployment_id, pushed),
            other => panic!("expected the offer, got {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        // Another customer's connection hears nothing.
        assert_quiet(&mut beta, Duration::from_millis(400)).await;
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn status_is_acked_and_a_resend_is_stored_once() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        tv.publish("goods", "1.1.0", &[]).await;
        let tokens = tv.customers(&["acme"]).await;
        tv.assign("acme", "goods", "^1").await;
        let id = tv.push("acme").await;
        let server = tv.serve().await;
        let mut socket = agent(server.addr(), &tokens[0]).await;
        assert!(matches!(
            recv(&mut socket).await,
            VendorMessage::Offer { .. }
        ));

        let report = status(
            &id,
            1,
            Some("goods"),
            PackageState::Downloading {
                bytes: 5,
                total: 10,
            },
        );
        for _ in 0..2 {
            send(&mut socket, &report).await;
            match recv(&mut socket).await {
                VendorMessage::Ack { deployment_id, seq } => {
                    assert_eq!((deployment_id.as_str(), seq), (id.as_str(), 1));
                }
                other => panic!("expected ack, got {other:?}"),
            }
        }
        assert_eq!(report_count(&tv, &id).await, 1);

        // Final reports set the outcome: success for the whole deployment.
        send(
            &mut socket,
            &status(&id, 2, Some("goods"), PackageState::Success),
        )
        .await;
        assert!(matches!(
            recv(&mut socket).await,
            VendorMessage::Ack { seq: 2, .. }
        ));
        send(&mut socket, &status(&id, 3, None, PackageState::Success)).await;
        assert!(matches!(
            recv(&mut socket).await,
            VendorMessage::Ack { seq: 3, .. }
        ));
        let row = deployments::by_id(&tv.vendor.db, &id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.outcome.as_deref(), Some("success"));
        assert_eq!(report_count(&tv, &id).await, 3);
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_package_failure_marks_the_deployment_failed_with_its_reason() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        tv.publish("goods", "1.1.0", &[]).await;
        let tokens = tv.customers(&["acme"]).await;
        tv.assign("acme", "goods", "^1").await;
        let id = tv.push("acme").await;
        let server = tv.serve().await;
        let mut socket = agent(server.addr(), &tokens[0]).await;
        recv(&mut socket).await;
        let failure = PackageState::Failure {
            reason: "migration 0002 failed".into(),
        };
        send(&mut socket, &status(&id, 1, Some("goods"), failure)).await;
        assert!(matches!(
            recv(&mut socket).await,
            VendorMessage::Ack { seq: 1, .. }
        ));
        let row = deployments::by_id(&tv.vendor.db, &id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.outcome.as_deref(), Some("failure"));
        assert!(
            row.outcome_reason
                .unwrap()
                .contains("migration 0002 failed")
        );
        // A finished deployment is not offered again on the next hello.
        drop(socket);
        let mut again = agent(server.addr(), &tokens[0]).await;
        assert_quiet(&mut again, Duration::from_millis(500)).await;
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn status_for_an_unknown_or_foreign_deployment_is_an_error_and_not_stored() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        tv.publish("goods", "1.1.0", &[]).await;
        let tokens = tv.customers(&["acme", "beta"]).await;
        tv.assign("beta", "goods", "^1").await;
        let betas = tv.push("beta").await;
        let server = tv.serve().await;
        let mut acme = agent(server.addr(), &tokens[0]).await;
        for id in ["no-such-deployment", betas.as_str()] {
            send(&mut acme, &status(id, 1, None, PackageState::Success)).await;
            match recv(&mut acme).await {
                VendorMessage::Error { code, .. } => assert_eq!(code, "unknown_deployment"),
                other => panic!("expected error, got {other:?}"),
            }
            assert_eq!(report_count(&tv, id).await, 0);
        }
        let row = deployments::by_id(&tv.vendor.db, &betas)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.outcome, None);
        // Bad JSON after hello gets an error; the connection stays usable.
        send_text(&mut acme, "{not json").await;
        assert!(
            matches!(recv(&mut acme).await, VendorMessage::Error { code, .. } if code == "bad_message")
        );
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_first_message_other_than_hello_gets_an_error_and_a_close() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        let tokens = tv.customers(&["acme"]).await;
        let server = tv.serve().await;
        for first in [
            "{not json".to_string(),
            status("d", 1, None, PackageState::Verifying).to_json(),
        ] {
            let mut socket = connect(server.addr(), Some(&tokens[0])).await.unwrap();
            send_text(&mut socket, &first).await;
            match recv(&mut socket).await {
                VendorMessage::Error { code, message } => {
                    assert!(code == "bad_message" || code == "expected_hello", "{code}");
                    assert!(message.contains("hello"), "{message}");
                }
                other => panic!("expected error, got {other:?}"),
            }
            assert_eq!(recv_within(&mut socket, Duration::from_secs(5)).await, None);
        }
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn cancel_is_delivered_to_the_connected_agent() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        tv.publish("goods", "1.1.0", &[]).await;
        let tokens = tv.customers(&["acme"]).await;
        tv.assign("acme", "goods", "^1").await;
        let id = tv.push("acme").await;
        let server = tv.serve().await;
        let mut socket = agent(server.addr(), &tokens[0]).await;
        assert!(matches!(
            recv(&mut socket).await,
            VendorMessage::Offer { .. }
        ));
        let cancelled = tv.vendor.cancel("acme", "wrong build").await.unwrap();
        assert_eq!(cancelled, id);
        match recv_within(&mut socket, Duration::from_secs(2)).await {
            Some(VendorMessage::Cancel {
                deployment_id,
                reason,
            }) => {
                assert_eq!(deployment_id, id);
                assert_eq!(reason, "wrong build");
            }
            other => panic!("expected cancel, got {other:?}"),
        }
        let row = deployments::by_id(&tv.vendor.db, &id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.outcome.as_deref(), Some("cancelled"));
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn an_expired_open_deployment_is_reissued_under_a_new_id_on_hello() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        tv.publish("goods", "1.1.0", &[]).await;
        let tokens = tv.customers(&["acme"]).await;
        tv.assign("acme", "goods", "^1").await;
        let results = tv.vendor.push(&tv.key, Some("acme"), 1).await.unwrap();
        let plinth_vendor::deploy::PushResult::Pushed {
            deployment_id: old, ..
        } = &results[0]
        else {
            panic!("not pushed");
        };
        let server = tv.serve().await;
        let mut socket = agent(server.addr(), &tokens[0]).await;
        let fresh = match recv(&mut socket).await {
            VendorMessage::Offer {
                deployment_id,
                deployment,
            } => {
                let m: plinth_package::DeploymentManifest =
                    serde_json::from_str(&deployment.manifest).unwrap();
                assert!(m.expires_at > plinth_vendor::db::now_secs() + 3000);
                assert_eq!(m.packages[0].name, "goods");
                deployment_id
            }
            other => panic!("expected offer, got {other:?}"),
        };
        assert_ne!(&fresh, old);
        let old_row = deployments::by_id(&tv.vendor.db, old)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(old_row.outcome.as_deref(), Some("superseded"));
        // Offered once, though the reissue also queued an event.
        assert_quiet(&mut socket, Duration::from_millis(500)).await;
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn an_idle_connection_is_closed_and_pings_keep_it_open() {
    use futures::SinkExt as _;
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        let tokens = tv.customers(&["acme"]).await;
        let server = tv
            .serve_with(ServerOptions {
                idle_timeout: Duration::from_millis(700),
                ..ServerOptions::default()
            })
            .await;
        let mut socket = agent(server.addr(), &tokens[0]).await;
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            socket
                .send(tokio_tungstenite::tungstenite::Message::Ping(
                    vec![1].into(),
                ))
                .await
                .unwrap();
        }
        // Still open after 900 ms of pings alone...
        send_text(&mut socket, "{not json").await;
        assert!(matches!(
            recv(&mut socket).await,
            VendorMessage::Error { .. }
        ));
        // ...then silence closes it.
        assert_eq!(recv_within(&mut socket, Duration::from_secs(5)).await, None);
        let acme = tv.vendor.customer("acme").await.unwrap();
        // The disconnect is recorded.
        let mut connected = true;
        for _ in 0..50 {
            let seen = overview::load(&tv.vendor.db, Some(acme.id)).await.unwrap();
            connected = seen.customers[0].agent.as_ref().unwrap().connected;
            if !connected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!connected);
        server.shutdown().await.unwrap();
    }
}
