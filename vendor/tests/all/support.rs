//! Test harness: a fresh database per test (SQLite always; PostgreSQL when
//! reachable, required when `CI` is set), small valid package archives, the
//! server in-process on a loopback port, and a websocket agent client with
//! a timeout on every wait.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use plinth_package::VendorKey;
use plinth_package::protocol::{
    AGENT_PATH, AgentMessage, InstalledPackage, PROTOCOL_VERSION, VendorMessage,
};
use plinth_vendor::Vendor;
use plinth_vendor::http::{self, AppState, RunningServer, ServerOptions};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The longest any single wait in a test may take.
pub const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

const POSTGRES_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn postgres_admin() -> String {
    std::env::var("PLINTH_TEST_POSTGRES_URL").unwrap_or_else(|_| POSTGRES_ADMIN.into())
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A database created for one test and dropped with the value.
pub struct TestDb {
    pub kind: DbKind,
    pub url: String,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn create(kind: DbKind) -> Option<TestDb> {
        sqlx::any::install_default_drivers();
        let name = format!(
            "vendor_test_{}_{}_{:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        if kind == DbKind::Sqlite {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("vendor.db").display());
            return Some(TestDb {
                kind,
                url,
                name,
                _dir: Some(dir),
            });
        }
        let admin = postgres_admin();
        let pool = match tokio::time::timeout(
            Duration::from_secs(5),
            sqlx::AnyPool::connect(&admin),
        )
        .await
        {
            Ok(Ok(pool)) => pool,
            Ok(Err(e)) => return unreachable(&admin, &e.to_string()),
            Err(_) => return unreachable(&admin, "timed out"),
        };
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .expect("create the test database");
        pool.close().await;
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        Some(TestDb {
            kind,
            url: format!("{base}/{name}"),
            name,
            _dir: None,
        })
    }
}

fn unreachable(url: &str, why: &str) -> Option<TestDb> {
    if std::env::var_os("CI").is_some() {
        panic!("PostgreSQL at {url} is not reachable in CI: {why}");
    }
    eprintln!("note: skipping PostgreSQL, not reachable at {url} ({why}); running on SQLite alone");
    None
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.kind != DbKind::Postgres {
            return;
        }
        let admin = postgres_admin();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop runs where we cannot block on the test's runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(pool) = sqlx::AnyPool::connect(&admin).await {
                    let _ = sqlx::raw_sql(&sql).execute(&pool).await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

/// SQLite, and PostgreSQL when reachable.
pub async fn all_dbs() -> Vec<TestDb> {
    let mut dbs = Vec::new();
    for kind in [DbKind::Sqlite, DbKind::Postgres] {
        if let Some(db) = TestDb::create(kind).await {
            dbs.push(db);
        }
    }
    dbs
}

/// A vendor on a fresh database, with a temp dir for its store and zips.
pub struct TestVendor {
    pub vendor: Vendor,
    pub key: VendorKey,
    pub dir: tempfile::TempDir,
    pub db: TestDb,
}

impl TestVendor {
    pub async fn new(db: TestDb) -> TestVendor {
        let dir = tempfile::tempdir().expect("temp dir");
        let vendor = Vendor::open(&db.url, dir.path().join("store"))
            .await
            .expect("open the vendor state");
        TestVendor {
            vendor,
            key: VendorKey::generate(),
            dir,
            db,
        }
    }

    pub fn kind(&self) -> DbKind {
        self.db.kind
    }

    /// Builds and publishes a package; returns its archive path.
    pub async fn publish(&self, name: &str, version: &str, depends: &[(&str, &str)]) -> PathBuf {
        let zip = package_zip(self.dir.path(), name, version, depends);
        self.vendor.publish(&zip).await.expect("publish");
        zip
    }

    /// Adds customers and returns their tokens in the same order.
    pub async fn customers(&self, names: &[&str]) -> Vec<String> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        self.vendor
            .add_customers(&names, &[])
            .await
            .expect("add customers")
            .into_iter()
            .map(|(_, token)| token)
            .collect()
    }

    pub async fn assign(&self, customer: &str, plugin: &str, range: &str) {
        self.vendor
            .assign(customer, plugin, range)
            .await
            .expect("assign")
            .expect("a satisfiable plan");
    }

    /// Pushes to one customer and returns the new deployment id.
    pub async fn push(&self, customer: &str) -> String {
        let results = self
            .vendor
            .push(&self.key, Some(customer), 3600)
            .await
            .expect("push");
        match &results[..] {
            [plinth_vendor::deploy::PushResult::Pushed { deployment_id, .. }] => {
                deployment_id.clone()
            }
            other => panic!("push to {customer} did not push: {other:?}"),
        }
    }

    /// The server in-process on 127.0.0.1:0 with default options.
    pub async fn serve(&self) -> RunningServer {
        self.serve_with(ServerOptions::default()).await
    }

    pub async fn serve_with(&self, options: ServerOptions) -> RunningServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let key = VendorKey::from_hex(&self.key.to_hex()).expect("key copy");
        http::start(AppState::new(self.vendor.clone(), key, options), listener)
            .await
            .expect("start the server")
    }
}

/// Writes `<dir>/<name>-<version>.zip`: a minimal valid plugin package.
pub fn package_zip(dir: &Path, name: &str, version: &str, depends: &[(&str, &str)]) -> PathBuf {
    let src = dir.join(format!("src-{name}-{version}"));
    std::fs::create_dir_all(&src).expect("package dir");
    let mut toml = format!("name = \"{name}\"\nversion = \"{version}\"\nhost_api = \"^0.1\"\n");
    if let Some(base) = name.strip_suffix("-acme") {
        toml.push_str(&format!("forked_from = \"{base}\"\n"));
    }
    if !depends.is_empty() {
        toml.push_str("\n[depends]\n");
        for (dep, range) in depends {
            toml.push_str(&format!("\"{dep}\" = \"{range}\"\n"));
        }
    }
    std::fs::write(src.join("plugin.toml"), toml).expect("plugin.toml");
    // A component header plus some bytes that identify the package.
    let mut wasm = plinth_package::archive::COMPONENT_MAGIC.to_vec();
    wasm.extend_from_slice(format!("{name} {version} ").repeat(200).as_bytes());
    std::fs::write(src.join("plugin.wasm"), wasm).expect("plugin.wasm");
    let bytes = plinth_package::pack_dir(&src).expect("pack");
    let zip = dir.join(format!("{name}-{version}.zip"));
    std::fs::write(&zip, bytes).expect("write zip");
    zip
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens the agent websocket with `token`; `Err` carries the HTTP status
/// and body of a refused upgrade.
pub async fn connect(addr: SocketAddr, token: Option<&str>) -> Result<Socket, (u16, String)> {
    let mut request = format!("ws://{addr}{AGENT_PATH}")
        .into_client_request()
        .expect("request");
    if let Some(token) = token {
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("connect timed out")
    {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err((status, body))
        }
        Err(e) => panic!("websocket connect failed: {e}"),
    }
}

pub fn hello(installed: &[(&str, &str)]) -> AgentMessage {
    AgentMessage::Hello {
        protocol: PROTOCOL_VERSION,
        agent_version: "0.1.0-test".into(),
        installed: installed
            .iter()
            .map(|(name, version)| InstalledPackage {
                name: name.to_string(),
                version: version.parse().expect("version"),
                enabled: true,
            })
            .collect(),
        last_deployment_id: None,
    }
}

pub async fn send(socket: &mut Socket, message: &AgentMessage) {
    send_text(socket, &message.to_json()).await;
}

pub async fn send_text(socket: &mut Socket, text: &str) {
    tokio::time::timeout(WAIT, socket.send(Message::text(text)))
        .await
        .expect("send timed out")
        .expect("send");
}

/// The next vendor message within `within`, skipping pings; `None` when
/// the socket closed.
pub async fn recv_within(socket: &mut Socket, within: Duration) -> Option<VendorMessage> {
    loop {
        let next = tokio::time::timeout(within, socket.next())
            .await
            .unwrap_or_else(|_| panic!("no message within {within:?}"));
        match next {
            Some(Ok(Message::Text(text))) => {
                return Some(
                    serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("bad message {text}: {e}")),
                );
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

pub async fn recv(socket: &mut Socket) -> VendorMessage {
    recv_within(socket, WAIT).await.expect("the socket closed")
}

/// Nothing arrives within `within`.
pub async fn assert_quiet(socket: &mut Socket, within: Duration) {
    if let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout(within, socket.next()).await {
        panic!("expected nothing, got {text}");
    }
}

/// Connects, says hello and returns the socket after `welcome`.
pub async fn agent(addr: SocketAddr, token: &str) -> Socket {
    let mut socket = connect(addr, Some(token)).await.expect("connect");
    send(&mut socket, &hello(&[])).await;
    match recv(&mut socket).await {
        VendorMessage::Welcome { .. } => socket,
        other => panic!("expected welcome, got {other:?}"),
    }
}

/// An HTTP client with a timeout.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .build()
        .expect("http client")
}
