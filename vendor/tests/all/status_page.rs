//! The status page, its JSON twin and the health check.

use plinth_package::protocol::{AgentMessage, PackageState, StatusReport, VendorMessage};
use reqwest::StatusCode;

use crate::support::{
    DbKind, TestDb, TestVendor, agent, all_dbs, connect, hello, http, recv, send,
};

#[tokio::test]
async fn status_page_lists_customers_assignments_installed_and_outcomes() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        tv.publish("goods", "1.1.0", &[]).await;
        tv.publish("goods-acme", "1.0.0", &[]).await;
        let tokens = tv.customers(&["acme", "beta"]).await;
        tv.assign("acme", "goods-acme", "^1").await;
        tv.assign("beta", "goods", "^1").await;
        let acme_deployment = tv.push("acme").await;
        tv.push("beta").await;
        let server = tv.serve().await;

        // acme connects, reports what it runs and fails its deployment.
        let mut socket = connect(server.addr(), Some(&tokens[0])).await.unwrap();
        send(&mut socket, &hello(&[("goods-acme", "0.9.0")])).await;
        assert!(matches!(
            recv(&mut socket).await,
            VendorMessage::Welcome { .. }
        ));
        assert!(matches!(
            recv(&mut socket).await,
            VendorMessage::Offer { .. }
        ));
        let report = AgentMessage::Status(StatusReport {
            seq: 1,
            deployment_id: acme_deployment.clone(),
            package: Some("goods-acme".into()),
            version: Some("1.0.0".parse().unwrap()),
            state: PackageState::Failure {
                reason: "disk <full>".into(),
            },
            at_ms: 5,
        });
        send(&mut socket, &report).await;
        assert!(matches!(recv(&mut socket).await, VendorMessage::Ack { .. }));
        let _beta = agent(server.addr(), &tokens[1]).await;

        let client = http();
        let page = client
            .get(format!("http://{}/", server.addr()))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert!(
            page.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let page = page.text().await.unwrap();
        for expected in [
            "acme",
            "beta",
            "goods-acme ^1",
            "goods ^1",
            "goods-acme 0.9.0",
            "connected",
            &acme_deployment,
            "failure",
            "disk &lt;full&gt;",
        ] {
            assert!(
                page.contains(expected),
                "{expected} missing from the page:\n{page}"
            );
        }
        assert!(!page.contains("disk <full>"));

        let json: serde_json::Value = client
            .get(format!("http://{}/api/status", server.addr()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let acme = &json["customers"][0];
        assert_eq!(acme["name"], "acme");
        assert_eq!(acme["assignments"][0]["plugin"], "goods-acme");
        assert_eq!(acme["agent"]["connected"], true);
        assert_eq!(acme["agent"]["installed"][0]["version"], "0.9.0");
        assert_eq!(acme["deployments"][0]["outcome"], "failure");
        assert_eq!(acme["deployments"][0]["packages"][0]["state"], "failure");
        assert_eq!(
            acme["deployments"][0]["packages"][0]["reason"],
            "disk <full>"
        );
        assert_eq!(json["customers"][1]["deployments"][0]["outcome"], "open");

        let health: serde_json::Value = client
            .get(format!("http://{}/healthz", server.addr()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health["status"], "ok");
        assert_eq!(health["connections"], 2);
        let missing = client
            .get(format!("http://{}/nope", server.addr()))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        server.shutdown().await.unwrap();
    }
}

/// A monitor reads 503 as "this instance cannot serve", with the one JSON
/// error and nothing of the database's own words.
#[tokio::test]
async fn healthz_is_503_when_the_database_is_gone() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let tv = TestVendor::new(db).await;
    let server = tv.serve().await;
    let url = format!("http://{}/healthz", server.addr());
    assert_eq!(
        http().get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
    tv.vendor.db.close().await;
    let response = http().get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unavailable", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("database does not answer"),
        "{body}"
    );
    server.shutdown().await.unwrap();
}
