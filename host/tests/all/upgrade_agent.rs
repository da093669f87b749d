//! The upgrade path end to end, with the real vendor server as a process
//! and the host in-process, talking over loopback: publish, assign and push
//! `goods` 1.0.0 and the host serves it; publish and push 1.1.0 and the host
//! upgrades live, the vendor recording success; push a 1.2.0 whose
//! migration fails and the host keeps 1.1.0 while the vendor records the
//! failure and its reason. Then the faults: a download cut mid-body
//! resumes with a ranged request, a restarted vendor is reconnected to
//! within the back-off bound, a tampered package and a downgrade are
//! refused, a host pinning another key refuses the vendor's offers, and a
//! customer gets only its own fork.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    DbKind, TestDb, TestHost, agent_host, all_dbs, broken_goods_1_2, derived_package, eventually,
    package, served_version,
};
use crate::vendor_process::{CuttingProxy, VendorProcess};

const LIMIT: Duration = Duration::from_secs(60);

/// The vendor's record of the deployment that carries `plugin` `version`.
fn deployment_with(
    vendor: &VendorProcess,
    customer: &str,
    plugin: &str,
    version: &str,
) -> Option<Value> {
    let status = vendor.status(customer);
    let customers = status["customers"].as_array()?.clone();
    let entry = customers.into_iter().find(|c| c["name"] == customer)?;
    entry["deployments"].as_array()?.iter().find_map(|d| {
        d["packages"]
            .as_array()?
            .iter()
            .any(|p| p["name"] == plugin && p["version"] == version)
            .then(|| d.clone())
    })
}

/// Waits until the vendor records a final outcome for that deployment.
async fn outcome_of(vendor: &VendorProcess, customer: &str, plugin: &str, version: &str) -> Value {
    eventually(
        &format!("the vendor to record the outcome of {plugin} {version}"),
        LIMIT,
        || {
            let found = deployment_with(vendor, customer, plugin, version)
                .filter(|d| d["outcome"] == "success" || d["outcome"] == "failure");
            async move { found }
        },
    )
    .await
}

async fn serves(host: &TestHost, version: &str) {
    eventually(&format!("goods {version} to serve"), LIMIT, || async {
        (served_version(host, "/p/goods/api/items").await.as_deref() == Some(version)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn pushed_releases_install_upgrade_and_fail_safely() {
    for db in all_dbs().await {
        let kind = db.kind;
        let mut vendor = VendorProcess::new();
        vendor.serve().await;
        let token = vendor.add_customer("beta");
        vendor.publish("goods-1.0.0.zip", &package("goods-1.0.0"));
        vendor.ok(&["assign", "beta", "goods", "^1"]);
        vendor.ok(&["push", "beta"]);

        let data = tempfile::tempdir().expect("temp dir");
        let host = agent_host(
            &db,
            data.path(),
            &vendor.endpoint(),
            "beta",
            &token,
            &vendor.public_key,
        )
        .await;
        serves(&host, "1.0.0").await;
        let first = outcome_of(&vendor, "beta", "goods", "1.0.0").await;
        assert_eq!(first["outcome"], "success", "{kind}: {first:#}");

        // Data written under 1.0.0 survives the upgrade.
        let created = host
            .client
            .post(host.url("/p/goods/api/items"))
            .json(&serde_json::json!({ "sku": "A-1", "name": "Anvil", "price_cents": 500, "stock": 3 }))
            .send()
            .await
            .expect("create item");
        assert!(
            created.status().is_success(),
            "{kind}: {}",
            created.status()
        );

        vendor.publish("goods-1.1.0.zip", &package("goods-1.1.0"));
        vendor.ok(&["push", "beta"]);
        serves(&host, "1.1.0").await;
        let second = outcome_of(&vendor, "beta", "goods", "1.1.0").await;
        assert_eq!(second["outcome"], "success", "{kind}: {second:#}");
        // The vendor's view of what beta runs follows the reports.
        let status = vendor.status("beta");
        let installed = &status["customers"][0]["agent"]["installed"];
        assert!(
            installed.as_array().is_some_and(|list| list
                .iter()
                .any(|p| p["name"] == "goods" && p["version"] == "1.1.0")),
            "{kind}: {status:#}"
        );
        let items: Value = host
            .get("/p/goods/api/items")
            .await
            .json()
            .await
            .expect("items JSON");
        assert!(items.to_string().contains("A-1"), "{kind}: {items}");

        vendor.publish("goods-1.2.0.zip", &broken_goods_1_2());
        vendor.ok(&["push", "beta"]);
        let third = outcome_of(&vendor, "beta", "goods", "1.2.0").await;
        assert_eq!(third["outcome"], "failure", "{kind}: {third:#}");
        let reason = third.to_string();
        assert!(
            reason.contains("0005_broken.sql") || reason.contains("category"),
            "{kind}: the vendor's record names the failing migration: {third:#}"
        );
        assert_eq!(
            served_version(&host, "/p/goods/api/items").await.as_deref(),
            Some("1.1.0"),
            "{kind}: 1.1.0 keeps serving"
        );

        // The host's own view of the agent says the same, once its last
        // report is acknowledged (the vendor marks the deployment failed as
        // soon as the package's failure arrives, a moment before).
        let agent = eventually("the agent's final state", LIMIT, || async {
            let (status, agent) = host.admin().get("/agent").await;
            assert_eq!(status, 200);
            (agent["last_offer"]["outcome"] != "applying" && agent["unacknowledged_reports"] == 0)
                .then_some(agent)
        })
        .await;
        assert_eq!(agent["connected"], true, "{kind}: {agent:#}");
        assert_eq!(
            agent["last_offer"]["outcome"], "failure",
            "{kind}: {agent:#}"
        );
        assert_eq!(agent["unacknowledged_reports"], 0, "{kind}: {agent:#}");
        let goods = &agent["last_offer"]["packages"][0];
        assert_eq!(goods["state"]["state"], "failure", "{kind}: {agent:#}");

        // The vendor saw the installed set in the agent's hello.
        host.stop().await;
        drop(db);
    }
}

#[tokio::test]
async fn a_download_cut_mid_body_resumes_with_a_range_request() {
    let mut vendor = VendorProcess::new();
    vendor.serve().await;
    let token = vendor.add_customer("beta");
    let bytes = package("goods-1.0.0");
    vendor.publish("goods-1.0.0.zip", &bytes);
    vendor.ok(&["assign", "beta", "goods", "^1"]);
    vendor.ok(&["push", "beta"]);
    // Cut after the response head and about half the body.
    let proxy = CuttingProxy::start(vendor.addr, bytes.len() / 2).await;

    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = agent_host(
        &db,
        data.path(),
        &proxy.endpoint(),
        "beta",
        &token,
        &vendor.public_key,
    )
    .await;
    serves(&host, "1.0.0").await;

    let downloads = proxy.downloads();
    assert!(
        downloads.len() >= 2,
        "a second request after the cut: {downloads:#?}"
    );
    assert!(
        !downloads[0].to_ascii_lowercase().contains("range:"),
        "the first request asks for everything"
    );
    let resumed = downloads[1].to_ascii_lowercase();
    let start: u64 = resumed
        .split("range: bytes=")
        .nth(1)
        .and_then(|rest| rest.split('-').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("the second request is ranged: {resumed}"));
    assert!(start > 0, "it resumes, not restarts from zero");
    assert!(start < bytes.len() as u64);
    host.stop().await;
}

#[tokio::test]
async fn the_agent_reconnects_to_a_restarted_vendor_within_its_backoff_bound() {
    let mut vendor = VendorProcess::new();
    vendor.serve().await;
    let token = vendor.add_customer("beta");
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = agent_host(
        &db,
        data.path(),
        &vendor.endpoint(),
        "beta",
        &token,
        &vendor.public_key,
    )
    .await;
    let connected = |host: &TestHost| {
        let state = host.agent.snapshot();
        async move { state.connected.then_some(state.connections) }
    };
    let before = eventually("the first connection", LIMIT, || connected(&host)).await;

    vendor.kill();
    eventually("the agent to notice", LIMIT, || async {
        (!host.agent.snapshot().connected).then_some(())
    })
    .await;
    // Down for a while: attempts fail and back off (400 ms cap here).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    vendor.serve().await;
    // Timed from when the vendor answers again: its own start is not the
    // agent's back-off.
    let restarted = Instant::now();
    let after = eventually("a reconnection", LIMIT, || connected(&host)).await;
    assert!(after > before, "a new connection was made");
    // The cap is 400 ms; allow for the handshake on a loaded machine.
    let took = restarted.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "reconnected {took:?} after the vendor came back"
    );
    host.stop().await;
}

#[tokio::test]
async fn tampered_package_downgrade_and_foreign_key_are_refused() {
    let mut vendor = VendorProcess::new();
    vendor.serve().await;
    let token = vendor.add_customer("beta");
    vendor.publish("goods-1.0.0.zip", &package("goods-1.0.0"));
    vendor.publish("goods-1.1.0.zip", &package("goods-1.1.0"));

    // A host that pins another vendor key refuses the offer.
    let other_key = plinth_package::VendorKey::generate().public_hex();
    vendor.ok(&["assign", "beta", "goods", "=1.0.0"]);
    vendor.ok(&["push", "beta"]);
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = agent_host(
        &db,
        data.path(),
        &vendor.endpoint(),
        "beta",
        &token,
        &other_key,
    )
    .await;
    let refused = outcome_of(&vendor, "beta", "goods", "1.0.0").await;
    assert_eq!(refused["outcome"], "failure");
    assert!(refused.to_string().contains("signed by key"), "{refused:#}");
    assert_eq!(host.get("/p/goods/api/items").await.status(), 404);
    host.stop().await;

    // The right key: 1.1.0 installs.
    vendor.ok(&["assign", "beta", "goods", "=1.1.0"]);
    vendor.ok(&["push", "beta"]);
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = agent_host(
        &db,
        data.path(),
        &vendor.endpoint(),
        "beta",
        &token,
        &vendor.public_key,
    )
    .await;
    serves(&host, "1.1.0").await;

    // A downgrade offer is refused before any download.
    vendor.ok(&["assign", "beta", "goods", "=1.0.0"]);
    vendor.ok(&["push", "beta"]);
    let down = eventually("the downgrade refusal", LIMIT, || {
        let found = vendor
            .status("beta")
            .to_string()
            .contains("versions only move up")
            .then_some(());
        async move { found }
    })
    .await;
    let () = down;
    assert_eq!(
        served_version(&host, "/p/goods/api/items").await.as_deref(),
        Some("1.1.0")
    );

    // A package altered in the vendor's store after signing: sha256 refusal.
    let broken = derived_package("goods-1.1.0", "1.3.0", &[]);
    vendor.publish("goods-1.3.0.zip", &broken);
    let stored = find_stored(vendor.dir.path(), &broken);
    let mut altered = std::fs::read(&stored).expect("stored package");
    let last = altered.len() - 1;
    altered[last] ^= 0xff;
    std::fs::write(&stored, &altered).expect("tamper");
    vendor.ok(&["assign", "beta", "goods", "^1"]);
    vendor.ok(&["push", "beta"]);
    let tampered = outcome_of(&vendor, "beta", "goods", "1.3.0").await;
    assert_eq!(tampered["outcome"], "failure");
    assert!(tampered.to_string().contains("sha256"), "{tampered:#}");
    assert_eq!(
        served_version(&host, "/p/goods/api/items").await.as_deref(),
        Some("1.1.0")
    );
    host.stop().await;
}

/// The file in the vendor's store holding exactly `bytes`.
fn find_stored(root: &std::path::Path, bytes: &[u8]) -> std::path::PathBuf {
    let mut stack = vec![root.join("store")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("store dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path).is_ok_and(|b| b == bytes) {
                return path;
            }
        }
    }
    panic!("package not found in the vendor's store");
}

#[tokio::test]
async fn each_customer_receives_only_its_own_fork() {
    let mut vendor = VendorProcess::new();
    vendor.serve().await;
    let acme = vendor.add_customer("acme");
    let beta = vendor.add_customer("beta");
    vendor.publish("goods-1.0.0.zip", &package("goods-1.0.0"));
    vendor.publish("goods-acme-1.0.0.zip", &package("goods-acme-1.0.0"));
    vendor.ok(&["assign", "acme", "goods-acme", "^1"]);
    vendor.ok(&["assign", "beta", "goods", "^1"]);
    vendor.ok(&["push"]);

    let mut hosts = Vec::new();
    for (customer, token) in [("acme", &acme), ("beta", &beta)] {
        let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
        let data = tempfile::tempdir().expect("temp dir");
        let host = agent_host(
            &db,
            data.path(),
            &vendor.endpoint(),
            customer,
            token,
            &vendor.public_key,
        )
        .await;
        hosts.push((customer, host, db, data));
    }
    for (customer, host, ..) in &hosts {
        let mine = if *customer == "acme" {
            "goods-acme"
        } else {
            "goods"
        };
        let theirs = if *customer == "acme" {
            "goods"
        } else {
            "goods-acme"
        };
        eventually(&format!("{customer} to serve {mine}"), LIMIT, || async {
            (host.get(&format!("/p/{mine}/api/items")).await.status() == 200).then_some(())
        })
        .await;
        assert_eq!(
            host.get(&format!("/p/{theirs}/api/items")).await.status(),
            404,
            "{customer} does not get {theirs}"
        );
    }

    // acme's token asking for beta's package directly: 403, and audited.
    let client = reqwest::Client::new();
    let url = format!("http://{}/packages/goods/1.0.0", vendor.addr);
    let refused = client
        .get(&url)
        .bearer_auth(&acme)
        .send()
        .await
        .expect("download request");
    assert_eq!(refused.status(), 403);
    let allowed = client
        .get(format!("http://{}/packages/goods-acme/1.0.0", vendor.addr))
        .bearer_auth(&acme)
        .send()
        .await
        .expect("download request");
    assert_eq!(allowed.status(), 200);
    for (_, host, ..) in hosts {
        host.stop().await;
    }
}
