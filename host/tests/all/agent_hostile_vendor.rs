//! The upgrade agent against a hostile or broken vendor (the stand-in MOCK
//! of `vendor_standin`, which misbehaves on purpose): error answers with
//! multi-byte text at the cut, endless bodies, redirects into the
//! customer's network, sizes over the package limit, a 60 MB websocket
//! message, a vendor that stops reading, one that drops every session,
//! 429 with `Retry-After`, a protocol it does not speak, unusable ids and
//! a download at one byte a second. Each test also asserts what the
//! operator relies on meanwhile: the host keeps serving a plugin route,
//! its memory stays within a bound, and it writes nothing outside its data
//! dir (those two are the whole process's, so they are asserted when the
//! module runs in a process of its own, as `cargo xtask test` runs it).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use plinth_host::config::Config;
use plinth_package::protocol::{PackageState, StatusReport};
use plinth_package::{DeploymentManifest, DeploymentPackage};

use crate::support::{DbKind, TestDb, TestHost, agent_config, eventually, package};
use crate::vendor_standin::{DownloadFault, RawSocketVendor, SocketFault, StandInVendor, TOKEN};

const LIMIT: Duration = Duration::from_secs(20);
/// Most the host's resident memory may grow during one hostile exchange.
const RSS_BOUND_KIB: i64 = 64 * 1024;

/// Whether this module runs in a test process of its own, one test at a
/// time (`cargo xtask test`, and so CI, runs it that way and says so in
/// `PLINTH_TEST_PROCESS_ALONE`). Resident memory and the working directory
/// belong to the whole process: beside other tests their figures would be
/// everyone's, so only then are they asserted on.
fn process_alone() -> bool {
    let alone = std::env::var_os("PLINTH_TEST_PROCESS_ALONE").is_some();
    if !alone {
        eprintln!(
            "memory and working-directory bounds not checked: other tests share this process \
             (`cargo xtask test` runs this module alone)"
        );
    }
    alone
}

/// The hostile tests run one at a time so each one's memory figure is its
/// own.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// Resident memory of this process, KiB: the host runs in-process here.
fn rss_kib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The entries of the test's working directory, where a relative path
/// would land if the host wrote outside its data dir.
fn cwd_entries() -> BTreeSet<std::ffi::OsString> {
    std::fs::read_dir(".")
        .expect("cwd")
        .flatten()
        .map(|e| e.file_name())
        .collect()
}

/// A host serving `hello` whose agent talks to `endpoint`, watched for the
/// whole test.
struct Watched {
    host: TestHost,
    _db: TestDb,
    data: tempfile::TempDir,
    rss_before: i64,
    cwd_before: BTreeSet<std::ffi::OsString>,
    route_ok: Arc<AtomicUsize>,
    route_failed: Arc<AtomicUsize>,
    watcher: tokio::task::JoinHandle<()>,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Watched {
    async fn start(endpoint: &str, public_key: &str, tune: impl FnOnce(&mut Config)) -> Watched {
        let turn = ONE_AT_A_TIME.lock().await;
        let cwd_before = cwd_entries();
        let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
        let data = tempfile::tempdir().expect("temp dir");
        let mut config = agent_config(&db, data.path(), endpoint, "acme", TOKEN, public_key);
        config.plugins = vec![plinth_host::config::PluginEntry {
            name: "hello".into(),
            version: "0.1.0".parse().expect("semver"),
            enabled: true,
            settings: Default::default(),
        }];
        tune(&mut config);
        let host = TestHost::start(config).await.expect("host starts");
        assert_eq!(host.get("/p/hello/").await.status(), 200, "hello serves");
        let rss_before = rss_kib();
        let (route_ok, route_failed) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (ok, failed, url) = (
            route_ok.clone(),
            route_failed.clone(),
            host.url("/p/hello/"),
        );
        let client = host.client.clone();
        let watcher = tokio::spawn(async move {
            loop {
                let status = client.get(&url).send().await.map(|r| r.status().as_u16());
                if status.ok() == Some(200) {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Watched {
            host,
            _db: db,
            data,
            rss_before,
            cwd_before,
            route_ok,
            route_failed,
            watcher,
            _turn: turn,
        }
    }

    async fn agent(&self) -> serde_json::Value {
        let (status, agent) = self.host.admin().get("/agent").await;
        assert_eq!(status, 200);
        agent
    }

    /// The standing assertions, then stop.
    async fn finish(self) {
        let ok = self.route_ok.clone();
        eventually("the route watcher's first answer", LIMIT, || async {
            (ok.load(Ordering::Relaxed) > 0).then_some(())
        })
        .await;
        self.watcher.abort();
        let grown = rss_kib() - self.rss_before;
        eprintln!("resident memory grew by {grown} KiB");
        let alone = process_alone();
        if alone {
            assert!(
                grown < RSS_BOUND_KIB,
                "resident memory grew by {grown} KiB (bound {RSS_BOUND_KIB} KiB)"
            );
        }
        let ok = self.route_ok.load(Ordering::Relaxed);
        let failed = self.route_failed.load(Ordering::Relaxed);
        assert_eq!(
            failed, 0,
            "the plugin route failed {failed} times ({ok} answered)"
        );
        assert!(ok > 0, "the plugin route was checked");
        assert_eq!(
            self.host.get("/p/hello/").await.status(),
            200,
            "still serving"
        );
        if alone {
            assert_eq!(
                self.cwd_before,
                cwd_entries(),
                "nothing written outside the data dir"
            );
        }
        let parts: Vec<_> = std::fs::read_dir(self.data.path().join("download"))
            .map(|dir| {
                dir.flatten()
                    .map(|e| e.file_name())
                    .filter(|n| n.to_string_lossy().ends_with(".part"))
                    .collect()
            })
            .unwrap_or_default();
        assert!(parts.is_empty(), "partial downloads left: {parts:?}");
        self.host.stop().await;
    }
}

async fn standin_host(vendor: &StandInVendor, tune: impl FnOnce(&mut Config)) -> Watched {
    Watched::start(&vendor.endpoint(), &vendor.key.public_hex(), tune).await
}

fn reason(report: &StatusReport) -> String {
    match &report.state {
        PackageState::Failure { reason } => reason.clone(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn goods_offer(vendor: &StandInVendor, id: &str) -> plinth_package::SignedDeployment {
    vendor.deployment(id, "acme", now(), &[("goods", "1.0.0")])
}

#[tokio::test]
async fn agent_hostile_4xx_with_a_multibyte_char_at_the_cut_then_a_normal_offer_installs() {
    let vendor = StandInVendor::start().await;
    vendor.serve_package("goods", "1.0.0", package("goods-1.0.0"), 0);
    // 'é' straddles byte 300 (the old cut) and '€' byte 1024.
    let body = format!(
        "{}é{}€{}",
        "x".repeat(299),
        "y".repeat(722),
        "z".repeat(10_000)
    );
    vendor.set_download_fault(
        "goods",
        "1.0.0",
        Some(DownloadFault::Status { status: 403, body }),
    );
    vendor.set_offers(vec![goods_offer(&vendor, "d-1")]);
    let watched = standin_host(&vendor, |_| {}).await;

    let why = reason(&vendor.final_report("d-1").await);
    assert!(why.contains("403 Forbidden"), "{why}");
    assert!(!why.contains("xxx"), "no body in the report: {why}");

    vendor.set_download_fault("goods", "1.0.0", None);
    vendor.push_offer(goods_offer(&vendor, "d-2"));
    let done = vendor.final_report("d-2").await;
    assert_eq!(done.state, PackageState::Success, "{done:?}");
    assert_eq!(watched.host.get("/p/goods/api/items").await.status(), 200);
    assert_eq!(watched.agent().await["worker_failures"], 0);
    watched.finish().await;
}

/// A loopback server that counts the connections it gets.
async fn counting_server() -> (
    std::net::SocketAddr,
    Arc<AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    let server = tokio::spawn(async move {
        while let Ok((_stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr, count, server)
}

#[tokio::test]
async fn agent_hostile_redirects_to_the_admin_api_or_a_local_server_are_refused() {
    let vendor = StandInVendor::start().await;
    vendor.serve_package("goods", "1.0.0", package("goods-1.0.0"), 0);
    let (internal, requests, _server) = counting_server().await;
    vendor.set_offers(vec![]);
    let watched = standin_host(&vendor, |_| {}).await;
    eventually("the agent to connect", LIMIT, || async {
        watched.host.agent.snapshot().connected.then_some(())
    })
    .await;

    let admin = watched.host.url("/api/admin/agent");
    for (id, target) in [("d-1", admin), ("d-2", format!("http://{internal}/secret"))] {
        vendor.set_download_fault("goods", "1.0.0", Some(DownloadFault::Redirect(target)));
        vendor.push_offer(goods_offer(&vendor, id));
        let why = reason(&vendor.final_report(id).await);
        assert!(why.contains("302"), "{why}");
        assert!(why.contains("redirect refused"), "{why}");
        assert!(
            !why.contains("unacknowledged_reports"),
            "no admin API body: {why}"
        );
    }
    assert_eq!(
        requests.load(Ordering::SeqCst),
        0,
        "nothing reached the internal server"
    );
    assert_eq!(watched.host.get("/p/goods/api/items").await.status(), 404);
    watched.finish().await;
}

#[tokio::test]
async fn agent_hostile_an_endless_4xx_body_is_not_buffered() {
    let vendor = StandInVendor::start().await;
    vendor.serve_package("goods", "1.0.0", package("goods-1.0.0"), 0);
    vendor.set_download_fault("goods", "1.0.0", Some(DownloadFault::EndlessStatus(404)));
    vendor.set_offers(vec![goods_offer(&vendor, "d-1")]);
    let watched = standin_host(&vendor, |_| {}).await;
    let why = reason(&vendor.final_report("d-1").await);
    assert!(why.contains("404 Not Found"), "{why}");
    watched.finish().await;
}

#[tokio::test]
async fn agent_hostile_a_signed_size_over_the_package_limit_is_refused_before_any_byte() {
    let vendor = StandInVendor::start().await;
    let huge = vendor
        .key
        .sign(&DeploymentManifest {
            customer: "acme".into(),
            deployment_id: "d-1".into(),
            issued_at: now(),
            expires_at: now() + 3600,
            packages: vec![DeploymentPackage {
                name: "goods".into(),
                version: "1.0.0".parse().expect("semver"),
                size: 512 * 1024 * 1024,
                sha256: "0".repeat(64),
                url: "/packages/goods/1.0.0".into(),
            }],
        })
        .expect("sign");
    vendor.set_offers(vec![huge]);
    let watched = standin_host(&vendor, |_| {}).await;
    let why = reason(&vendor.final_report("d-1").await);
    assert!(why.contains("package limit"), "{why}");
    assert!(vendor.downloads().is_empty(), "no download was asked for");
    assert!(
        !watched.data.path().join("download").exists()
            || std::fs::read_dir(watched.data.path().join("download"))
                .expect("download dir")
                .next()
                .is_none(),
        "nothing was written"
    );
    watched.finish().await;
}

#[tokio::test]
async fn agent_hostile_a_60_mb_websocket_message_is_refused_by_the_socket() {
    let vendor = RawSocketVendor::start(60 * 1000 * 1000).await;
    let key = plinth_package::VendorKey::generate().public_hex();
    let watched = Watched::start(&vendor.endpoint(), &key, |config| {
        config.vendor.limits.send_timeout_ms = 1_000;
    })
    .await;
    let error = eventually("the agent to refuse the message", LIMIT, || async {
        let snapshot = watched.host.agent.snapshot();
        let text = snapshot.last_disconnect.unwrap_or_default();
        text.contains("over the agent's limit").then_some(text)
    })
    .await;
    assert!(error.contains("1009"), "{error}");
    eventually("a new session", LIMIT, || async {
        (vendor.sessions() >= 2).then_some(())
    })
    .await;
    // The vendor usually reads the close status too (it is writing when
    // the agent hangs up, so a reset may swallow it).
    if let Some((code, _)) = vendor.closes().first() {
        assert_eq!(*code, 1009);
    }
    watched.finish().await;
}

#[tokio::test]
async fn agent_hostile_a_vendor_that_stops_reading_is_noticed_and_reconnected() {
    let vendor = StandInVendor::start().await;
    vendor.set_socket_fault(SocketFault::StopReading);
    let watched = standin_host(&vendor, |config| {
        let limits = &mut config.vendor.limits;
        limits.ping_every_ms = 200;
        limits.silence_limit_ms = 1_000;
        limits.send_timeout_ms = 1_000;
    })
    .await;
    let started = Instant::now();
    eventually("a second session", LIMIT, || async {
        (vendor.hellos() >= 2).then_some(())
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let why = eventually("the reason in the admin view", LIMIT, || async {
        let agent = watched.agent().await;
        let text = agent["last_disconnect"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        text.contains("no word from the vendor").then_some(text)
    })
    .await;
    assert!(why.contains("1000 ms"), "{why}");
    watched.finish().await;
}

#[tokio::test]
async fn agent_hostile_a_vendor_that_closes_every_session_after_welcome_is_not_hammered() {
    let vendor = StandInVendor::start().await;
    vendor.set_socket_fault(SocketFault::CloseAfterWelcome);
    let watched = standin_host(&vendor, |config| {
        config.vendor.reconnect_max_ms = 1_000;
    })
    .await;
    // Scaled down from production (a 30 s cap): with a 1 s cap the
    // back-off, which a session that was not useful does not reset, allows
    // at most about one attempt per 0.5 s once it has grown.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let from = Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let late = vendor
        .attempt_times()
        .iter()
        .filter(|t| **t >= from)
        .count();
    assert!(late <= 13, "{late} attempts in 6 s once the back-off grew");
    assert!(late >= 3, "it keeps trying ({late})");
    let agent = watched.agent().await;
    let why = agent["last_disconnect"].as_str().unwrap_or_default();
    assert!(why.contains("back-off keeps growing"), "{agent:#}");
    watched.finish().await;
}

#[tokio::test]
async fn agent_hostile_connection_attempts_are_capped_per_minute() {
    let vendor = StandInVendor::start().await;
    vendor.set_socket_fault(SocketFault::CloseAfterWelcome);
    let watched = standin_host(&vendor, |config| {
        config.vendor.reconnect_max_ms = 100;
        config.vendor.limits.reconnects_per_minute = 4;
    })
    .await;
    let why = eventually("the cap to show", LIMIT, || async {
        let agent = watched.agent().await;
        let reason = agent["connection"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        reason
            .contains("at most 4 connection attempts a minute")
            .then_some(reason)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(vendor.attempts(), 4, "{why}");
    watched.finish().await;
}

#[tokio::test]
async fn agent_hostile_429_with_retry_after_is_retried_after_it() {
    let vendor = StandInVendor::start().await;
    vendor.set_socket_fault(SocketFault::RefuseUpgrade {
        status: 429,
        retry_after: Some(2),
        times: 1,
    });
    let watched = standin_host(&vendor, |_| {}).await;
    let waiting = watched.agent().await;
    eventually("the agent to connect by itself", LIMIT, || async {
        watched.host.agent.snapshot().connected.then_some(())
    })
    .await;
    let times = vendor.attempt_times();
    assert!(times.len() >= 2, "{times:?}");
    let gap = times[1] - times[0];
    assert!(
        gap >= Duration::from_millis(1_900) && gap < Duration::from_secs(4),
        "retried {gap:?} after the 429 (Retry-After: 2); view then: {waiting:#}"
    );
    watched.finish().await;
}

#[tokio::test]
async fn agent_hostile_protocol_2_is_closed_with_a_status_the_vendor_sees() {
    let vendor = StandInVendor::start().await;
    vendor.set_socket_fault(SocketFault::Protocol(2));
    let watched = standin_host(&vendor, |_| {}).await;
    let (code, why) = eventually("the agent's close frame", LIMIT, || async {
        vendor.closes().into_iter().next()
    })
    .await;
    assert_eq!(code, 1002, "{why}");
    assert!(why.contains("protocol 2"), "{why}");
    let shown = eventually("the reason in the admin view", LIMIT, || async {
        let agent = watched.agent().await;
        let text = agent["last_disconnect"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        text.contains("speaks protocol 2").then_some(text)
    })
    .await;
    assert!(shown.contains("1002"), "{shown}");
    assert!(!watched.host.agent.snapshot().connected);
    watched.finish().await;
}

#[tokio::test]
async fn agent_hostile_unusable_ids_and_formats_are_refused_with_a_report() {
    let vendor = StandInVendor::start().await;
    vendor.serve_package("goods", "1.0.0", package("goods-1.0.0"), 0);
    let deployment = serde_json::to_value(goods_offer(&vendor, "d-ok")).expect("json");
    let long = "d".repeat(200);
    let nul = "d-\u{0}-1".to_owned();
    let offer = |id: &str, deployment: &serde_json::Value| {
        serde_json::json!({"type": "offer", "deployment_id": id, "deployment": deployment})
            .to_string()
    };
    let mut unknown_field = deployment.clone();
    unknown_field["note"] = "outside the signature".into();
    vendor.set_extra_messages(vec![
        offer(&long, &deployment),
        offer(&nul, &deployment),
        offer("d-format", &unknown_field),
    ]);
    let watched = standin_host(&vendor, |_| {}).await;
    let long_why = reason(&vendor.final_report(&long).await);
    assert!(long_why.contains("200 bytes"), "{long_why}");
    let nul_why = reason(&vendor.final_report(&nul).await);
    assert!(nul_why.contains("NUL"), "{nul_why}");
    let format_why = reason(&vendor.final_report("d-format").await);
    assert!(
        format_why.contains("not in the protocol's format"),
        "{format_why}"
    );
    assert!(format_why.contains("note"), "names the field: {format_why}");
    assert_eq!(watched.host.get("/p/goods/api/items").await.status(), 404);
    watched.finish().await;
}

#[tokio::test]
async fn agent_hostile_a_1_byte_per_second_download_is_abandoned_and_resumed() {
    let vendor = StandInVendor::start().await;
    vendor.serve_package("goods", "1.0.0", package("goods-1.0.0"), 0);
    vendor.set_download_fault("goods", "1.0.0", Some(DownloadFault::SlowFirst));
    vendor.set_offers(vec![goods_offer(&vendor, "d-1")]);
    let watched = standin_host(&vendor, |config| {
        config.vendor.limits.download_rate_window_ms = 1_500;
    })
    .await;
    let done = vendor.final_report("d-1").await;
    assert_eq!(done.state, PackageState::Success, "{done:?}");
    assert!(vendor.downloads().len() >= 2, "{:?}", vendor.downloads());
    let agent = watched.agent().await;
    let retry = agent["last_offer"]["packages"][0]["retry_reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(retry.contains("minimum rate of 1024 bytes/s"), "{agent:#}");
    assert_eq!(watched.host.get("/p/goods/api/items").await.status(), 200);
    watched.finish().await;
}

#[tokio::test]
async fn agent_hostile_partial_downloads_are_removed_when_a_deployment_ends_and_at_start_up() {
    let vendor = StandInVendor::start().await;
    vendor.serve_package("goods", "1.0.0", package("goods-1.0.0"), 0);
    vendor.set_download_fault("goods", "1.0.0", Some(DownloadFault::SlowFirst));
    vendor.set_offers(vec![goods_offer(&vendor, "d-1")]);
    let watched = standin_host(&vendor, |config| {
        // One attempt: the slow one fails the deployment with a part file.
        config.vendor.download_attempts = 1;
        config.vendor.limits.download_rate_window_ms = 1_500;
        let stale = config.data_dir.join("download");
        std::fs::create_dir_all(&stale).expect("download dir");
        std::fs::write(stale.join("old-1.0.0-0123456789abcdef.part"), b"left over")
            .expect("stale part");
    })
    .await;
    let why = reason(&vendor.final_report("d-1").await);
    assert!(why.contains("minimum rate"), "{why}");
    // `finish` checks no part file is left, the stale one included.
    watched.finish().await;
}

#[tokio::test]
async fn agent_hostile_clock_skew_beyond_tolerance_is_shown() {
    let vendor = StandInVendor::start().await;
    vendor.set_clock_offset(86_400);
    let watched = standin_host(&vendor, |_| {}).await;
    let agent = eventually("the skew in the admin view", LIMIT, || async {
        let agent = watched.agent().await;
        agent["clock_warning"].is_string().then_some(agent)
    })
    .await;
    let skew = agent["clock_skew_secs"].as_i64().unwrap_or_default();
    assert!((86_390..=86_410).contains(&skew), "{agent:#}");
    assert!(
        agent["clock_warning"]
            .as_str()
            .unwrap_or_default()
            .contains("NTP")
    );
    watched.finish().await;
}

/// Packages are downloaded before the operation lock is taken: while a
/// deployment's download crawls, an operator's plugin operation goes
/// through at once instead of waiting for it.
///
/// The operator works on `http-hello`, not on the `hello` the standing
/// watcher asks: disabling the watched plugin would make the watcher's
/// own requests fail whenever one landed between the disable and the
/// enable, which is what the operator asked for, not a dropped request.
#[tokio::test]
async fn agent_hostile_a_slow_download_does_not_hold_up_an_operators_operation() {
    let vendor = StandInVendor::start().await;
    vendor.serve_package("goods", "1.0.0", package("goods-1.0.0"), 0);
    vendor.set_download_fault("goods", "1.0.0", Some(DownloadFault::SlowFirst));
    vendor.set_offers(vec![goods_offer(&vendor, "d-1")]);
    let watched = standin_host(&vendor, |config| {
        config.vendor.limits.download_rate_window_ms = 4_000;
        config.plugins.push(plinth_host::config::PluginEntry {
            name: "http-hello".into(),
            version: "0.1.0".parse().expect("semver"),
            enabled: true,
            settings: Default::default(),
        });
    })
    .await;
    eventually("the slow download to start", LIMIT, || async {
        (!vendor.downloads().is_empty()).then_some(())
    })
    .await;
    let started = std::time::Instant::now();
    let (status, body) = watched
        .host
        .admin()
        .post("/plugins/http-hello/disable")
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the disable waited {:?} for the download",
        started.elapsed()
    );
    assert!(
        vendor
            .reports()
            .iter()
            .all(|r| r.state != PackageState::Success),
        "the download was still going when the operator's call went through"
    );
    let (status, body) = watched
        .host
        .admin()
        .post("/plugins/http-hello/enable")
        .await;
    assert_eq!(status, 200, "{body}");
    let done = vendor.final_report("d-1").await;
    assert_eq!(done.state, PackageState::Success, "{done:?}");
    watched.finish().await;
}
