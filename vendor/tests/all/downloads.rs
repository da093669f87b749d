//! Package downloads: bearer auth, only issued packages, `Range` support.

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_RANGE, CONTENT_TYPE, RANGE};

use plinth_vendor::db::deployments;

use crate::support::{TestVendor, all_dbs, http};

#[tokio::test]
async fn an_issued_package_downloads_whole_and_by_range() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        let zip = tv.publish("goods", "1.1.0", &[]).await;
        let bytes = std::fs::read(&zip).unwrap();
        let tokens = tv.customers(&["acme"]).await;
        tv.assign("acme", "goods", "^1").await;
        tv.push("acme").await;
        let server = tv.serve().await;
        let url = format!("http://{}/packages/goods/1.1.0", server.addr());
        let client = http();
        let auth = format!("Bearer {}", tokens[0]);

        let whole = client
            .get(&url)
            .header(AUTHORIZATION, &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(whole.status(), StatusCode::OK);
        assert_eq!(whole.headers()[CONTENT_TYPE], "application/zip");
        assert_eq!(whole.bytes().await.unwrap().as_ref(), &bytes[..]);

        let from = 100;
        let tail = client
            .get(&url)
            .header(AUTHORIZATION, &auth)
            .header(RANGE, format!("bytes={from}-"))
            .send()
            .await
            .unwrap();
        assert_eq!(tail.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            tail.headers()[CONTENT_RANGE].to_str().unwrap(),
            format!("bytes {from}-{}/{}", bytes.len() - 1, bytes.len())
        );
        assert_eq!(tail.bytes().await.unwrap().as_ref(), &bytes[from..]);

        let beyond = client
            .get(&url)
            .header(AUTHORIZATION, &auth)
            .header(RANGE, format!("bytes={}-", bytes.len() + 10))
            .send()
            .await
            .unwrap();
        assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_download_without_a_known_token_is_401() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        tv.publish("goods", "1.1.0", &[]).await;
        let server = tv.serve().await;
        let url = format!("http://{}/packages/goods/1.1.0", server.addr());
        let client = http();
        let missing = client.get(&url).send().await.unwrap();
        assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
        let body: serde_json::Value = missing.json().await.unwrap();
        assert_eq!(body["code"], "missing_token");
        let wrong = client
            .get(&url)
            .header(AUTHORIZATION, format!("Bearer {}", "f".repeat(64)))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let body: serde_json::Value = wrong.json().await.unwrap();
        assert_eq!(body["code"], "unknown_token");
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn another_customers_fork_is_403_and_audited() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        tv.publish("goods", "1.1.0", &[]).await;
        tv.publish("goods-acme", "1.0.0", &[]).await;
        let tokens = tv.customers(&["acme", "beta"]).await;
        tv.assign("acme", "goods-acme", "^1").await;
        tv.assign("beta", "goods", "^1").await;
        tv.push("acme").await;
        tv.push("beta").await;
        let server = tv.serve().await;
        let client = http();
        // beta asks for acme's fork.
        let url = format!("http://{}/packages/goods-acme/1.0.0", server.addr());
        let refused = client
            .get(&url)
            .header(AUTHORIZATION, format!("Bearer {}", tokens[1]))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["code"], "not_issued");
        assert!(body["message"].as_str().unwrap().contains("goods-acme"));
        let audit = deployments::audit_entries(&tv.vendor.db, 10).await.unwrap();
        assert_eq!(audit.len(), 1);
        let (_, customer, action, detail) = &audit[0];
        assert_eq!(customer.as_deref(), Some("beta"));
        assert_eq!(action, "download_refused");
        assert!(detail.contains("goods-acme 1.0.0"), "{detail}");
        // acme itself may download it; an unpublished version is refused too.
        let ok = client
            .get(&url)
            .header(AUTHORIZATION, format!("Bearer {}", tokens[0]))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        let bogus = client
            .get(format!(
                "http://{}/packages/goods-acme/not-a-version",
                server.addr()
            ))
            .header(AUTHORIZATION, format!("Bearer {}", tokens[0]))
            .send()
            .await
            .unwrap();
        assert_eq!(bogus.status(), StatusCode::FORBIDDEN);
        server.shutdown().await.unwrap();
    }
}
