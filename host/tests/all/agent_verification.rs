//! The upgrade agent refuses, before installing anything, every offer it
//! must not trust: signed by another key, altered, expired, for another
//! customer, replayed after a newer one, or whose download runs past the
//! signed size. Each refusal is reported to the vendor with its reason.
//! The vendor here is the stand-in (see `vendor_standin`), because the real
//! one does none of these things on purpose.

use std::time::Duration;

use plinth_package::VendorKey;
use plinth_package::protocol::PackageState;

use crate::support::{DbKind, TestDb, TestHost, agent_host, eventually, package};
use crate::vendor_standin::{StandInVendor, TOKEN};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

async fn host_for(vendor: &StandInVendor, db: &TestDb, data: &std::path::Path) -> TestHost {
    agent_host(
        db,
        data,
        &vendor.endpoint(),
        "acme",
        TOKEN,
        &vendor.key.public_hex(),
    )
    .await
}

fn reason(state: &PackageState) -> String {
    match state {
        PackageState::Failure { reason } => reason.clone(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// Starts a host against a stand-in that offers `offer(vendor)` and
/// returns the reason its final report gives.
async fn refusal_reason(
    make: impl FnOnce(&StandInVendor) -> plinth_package::SignedDeployment,
) -> (String, TestHost, StandInVendor, tempfile::TempDir, TestDb) {
    let vendor = StandInVendor::start().await;
    vendor.serve_package("hello", "0.1.0", package("hello-0.1.0"), 0);
    let offer = make(&vendor);
    vendor.set_offers(vec![offer]);
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = host_for(&vendor, &db, data.path()).await;
    let report = vendor.final_report("d-1").await;
    let why = reason(&report.state);
    assert_eq!(
        host.get("/p/hello/").await.status(),
        404,
        "nothing from a refused offer serves"
    );
    (why, host, vendor, data, db)
}

#[tokio::test]
async fn offer_signed_by_another_key_is_refused() {
    let (why, ..) = refusal_reason(|v| {
        let real = v.deployment("d-1", "acme", now(), &[("hello", "0.1.0")]);
        let forged = VendorKey::generate();
        let manifest = serde_json::from_str(&real.manifest).expect("manifest");
        forged.sign(&manifest).expect("sign")
    })
    .await;
    assert!(why.contains("signed by key"), "{why}");
}

#[tokio::test]
async fn offer_altered_after_signing_is_refused() {
    let (why, ..) = refusal_reason(|v| {
        let mut offer = v.deployment("d-1", "acme", now(), &[("hello", "0.1.0")]);
        offer.manifest = offer.manifest.replace("\"acme\"", "\"acme\" ");
        offer
    })
    .await;
    assert!(why.contains("signature does not match"), "{why}");
}

#[tokio::test]
async fn expired_offer_is_refused() {
    let (why, ..) =
        refusal_reason(|v| v.deployment("d-1", "acme", now() - 7200, &[("hello", "0.1.0")])).await;
    assert!(why.contains("expired"), "{why}");
}

#[tokio::test]
async fn offer_for_another_customer_is_refused() {
    let (why, ..) =
        refusal_reason(|v| v.deployment("d-1", "beta", now(), &[("hello", "0.1.0")])).await;
    assert!(why.contains("customer \"beta\""), "{why}");
}

#[tokio::test]
async fn download_past_the_signed_size_is_stopped_and_deleted() {
    let vendor = StandInVendor::start().await;
    let bytes = package("hello-0.1.0");
    vendor.serve_package("hello", "0.1.0", bytes, 0);
    let offer = vendor.deployment("d-1", "acme", now(), &[("hello", "0.1.0")]);
    // Same signed size and hash, but the server now appends 64 KiB.
    vendor.serve_package("hello", "0.1.0", package("hello-0.1.0"), 64 * 1024);
    vendor.set_offers(vec![offer]);
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = host_for(&vendor, &db, data.path()).await;

    let report = vendor.final_report("d-1").await;
    let why = reason(&report.state);
    assert!(why.contains("more than the signed size"), "{why}");
    assert_eq!(host.get("/p/hello/").await.status(), 404);
    let leftovers: Vec<_> = std::fs::read_dir(data.path().join("download"))
        .map(|dir| dir.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "partial download deleted: {leftovers:?}"
    );
    host.stop().await;
}

#[tokio::test]
async fn replayed_and_repeated_offers_are_not_applied_again() {
    let vendor = StandInVendor::start().await;
    vendor.serve_package("hello", "0.1.0", package("hello-0.1.0"), 0);
    let current = vendor.deployment("d-new", "acme", now(), &[("hello", "0.1.0")]);
    let older = vendor.deployment("d-old", "acme", now() - 60, &[("hello", "0.1.0")]);
    // The current deployment twice (a resend), then an older one captured
    // earlier and replayed.
    vendor.set_offers(vec![current.clone(), current, older]);
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = host_for(&vendor, &db, data.path()).await;

    let applied = vendor.final_report("d-new").await;
    assert_eq!(applied.state, PackageState::Success);
    let replay = vendor.final_report("d-old").await;
    let why = reason(&replay.state);
    assert!(why.contains("replayed or out-of-date"), "{why}");
    assert_eq!(host.get("/p/hello/").await.status(), 200);

    // d-new was installed once; its repeat was answered, not re-applied.
    let finals = eventually(
        "two final reports for d-new",
        Duration::from_secs(10),
        || {
            let reports = vendor.reports();
            async move {
                let finals: Vec<_> = reports
                    .into_iter()
                    .filter(|r| r.deployment_id == "d-new" && r.package.is_none())
                    .collect();
                (finals.len() >= 2).then_some(finals)
            }
        },
    )
    .await;
    assert!(finals.iter().all(|r| r.state == PackageState::Success));
    assert!(finals[0].seq < finals[1].seq, "sequence numbers rise");
    let (_, journal) = host.admin().get("/journal?plugin=hello").await;
    let installs = journal
        .as_array()
        .expect("journal rows")
        .iter()
        .filter(|row| row["step"] == "done")
        .count();
    assert_eq!(installs, 1, "hello installed exactly once: {journal:#}");
    host.stop().await;
}

#[tokio::test]
async fn a_refused_token_stops_the_agent_until_an_operator_restarts_it() {
    let vendor = StandInVendor::start().await;
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = agent_host(
        &db,
        data.path(),
        &vendor.endpoint(),
        "acme",
        "not-the-token",
        &vendor.key.public_hex(),
    )
    .await;
    let stopped = |host: &TestHost| {
        let agent = host.agent.snapshot();
        async move {
            match agent.connection {
                plinth_host::agent::ConnectionState::Stopped { reason } => Some(reason),
                _ => None,
            }
        }
    };
    let reason = eventually("the agent to stop", Duration::from_secs(10), || {
        stopped(&host)
    })
    .await;
    assert!(reason.contains("401"), "{reason}");
    assert!(reason.contains("final"), "{reason}");
    let attempts = vendor.attempts();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(vendor.attempts(), attempts, "a 4xx is not retried");

    // The operator's restart tries once more, and stops again.
    let (status, _) = host.admin().post("/agent/reconnect").await;
    assert_eq!(status, 200);
    eventually("one more attempt", Duration::from_secs(10), || {
        let more = vendor.attempts() > attempts;
        async move { more.then_some(()) }
    })
    .await;
    eventually("the agent to stop again", Duration::from_secs(10), || {
        stopped(&host)
    })
    .await;
    let (_, agent) = host.admin().get("/agent").await;
    assert_eq!(agent["connection"]["state"], "stopped", "{agent:#}");
    assert_eq!(agent["connected"], false);
    host.stop().await;
}
