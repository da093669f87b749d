//! Test harness: real databases (a fresh one per test), the real host
//! assembled in-process on a loopback port, and the example plugins built by
//! `cargo xtask build-plugins`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use plinth_host::Host;
use plinth_host::agent::AgentState;
use plinth_host::background::{Background, Scheduler};
use plinth_host::config::{Config, PluginEntry};
use plinth_host::http::{AppState, app};
use plinth_host::startup::{self, StartupError};

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
    Mysql,
}

impl std::fmt::Display for DbKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
        })
    }
}

const POSTGRES_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";
const MYSQL_ADMIN: &str = "mysql://root@127.0.0.1:3306/test";

fn admin_url(kind: DbKind) -> String {
    match kind {
        DbKind::Sqlite => String::new(),
        DbKind::Postgres => {
            std::env::var("PLINTH_TEST_POSTGRES_URL").unwrap_or_else(|_| POSTGRES_ADMIN.into())
        }
        DbKind::Mysql => {
            std::env::var("PLINTH_TEST_MYSQL_URL").unwrap_or_else(|_| MYSQL_ADMIN.into())
        }
    }
}

/// A database created for one test and dropped when the value is dropped.
pub struct TestDb {
    pub kind: DbKind,
    pub url: String,
    admin: String,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh database of `kind`, or `None` when that server is not
    /// reachable outside CI. In CI (`CI` set) an unreachable server fails
    /// the test, so a green run really covered all three dialects.
    pub async fn create(kind: DbKind) -> Option<TestDb> {
        sqlx::any::install_default_drivers();
        let name = format!(
            "plinth_t_{}_{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        if kind == DbKind::Sqlite {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("plinth.db").display());
            return Some(TestDb {
                kind,
                url,
                admin: String::new(),
                name,
                _dir: Some(dir),
            });
        }
        let admin = admin_url(kind);
        let connect =
            tokio::time::timeout(Duration::from_secs(5), sqlx::AnyPool::connect(&admin)).await;
        let pool = match connect {
            Ok(Ok(pool)) => pool,
            Ok(Err(e)) => return unreachable_server(kind, &admin, &e.to_string()),
            Err(_) => return unreachable_server(kind, &admin, "timed out"),
        };
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .expect("create test database");
        pool.close().await;
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        Some(TestDb {
            kind,
            url: format!("{base}/{name}"),
            admin,
            name,
            _dir: None,
        })
    }
}

fn unreachable_server(kind: DbKind, url: &str, why: &str) -> Option<TestDb> {
    if std::env::var_os("CI").is_some() {
        panic!("{kind} at {url} is not reachable in CI: {why}");
    }
    eprintln!("skipping {kind}: not reachable at {url} ({why}); running on SQLite alone");
    None
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.kind == DbKind::Sqlite {
            return;
        }
        let admin = self.admin.clone();
        let drop_sql = match self.kind {
            DbKind::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            _ => format!(
                "SET SESSION lock_wait_timeout = 30; DROP DATABASE IF EXISTS {}",
                self.name
            ),
        };
        let kind = self.kind;
        let name = self.name.clone();
        let role_tag = match kind {
            DbKind::Postgres => Some(plinth_host::db::plugin_roles::role_tag(
                &self.name, "public",
            )),
            _ => Some(plinth_host::db::plugin_roles::role_tag(&self.name, "")),
        };
        // Drop runs outside any async context we can block on, so use a
        // small runtime on a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(pool) = sqlx::AnyPool::connect(&admin).await {
                    if kind == DbKind::Mysql {
                        end_mysql_sessions(&pool, &name).await;
                    }
                    let _ = sqlx::raw_sql(&drop_sql).execute(&pool).await;
                    // Roles and accounts are server-wide: drop this database's too.
                    match (kind, role_tag) {
                        (DbKind::Postgres, Some(tag)) => {
                            let _ = plinth_host::db::plugin_roles::drop_roles_for_tag(&pool, &tag)
                                .await;
                        }
                        (DbKind::Mysql, Some(tag)) => {
                            let _ =
                                plinth_host::db::plugin_roles::drop_accounts_for_tag(&pool, &tag)
                                    .await;
                        }
                        _ => {}
                    }
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

/// MySQL's `DROP DATABASE` waits for every open transaction on the database
/// (a metadata lock, for up to a year by default), and the drop runs while
/// the test's own runtime is blocked on it: a connection whose rollback is
/// still a task on that runtime (one a stopped host dropped mid-transaction)
/// would hold it for good. So its sessions are ended first, as PostgreSQL's
/// `WITH (FORCE)` does, and the drop itself waits a bounded time.
async fn end_mysql_sessions(pool: &sqlx::AnyPool, database: &str) {
    use sqlx::Row;
    let ids = sqlx::query("SELECT CAST(ID AS SIGNED) AS id FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()")
        .bind(database)
        .fetch_all(pool)
        .await
        .unwrap_or_default();
    for row in ids {
        if let Ok(id) = row.try_get::<i64, _>("id") {
            let _ = sqlx::raw_sql(&format!("KILL CONNECTION {id}"))
                .execute(pool)
                .await;
        }
    }
}

/// Every database this machine offers: SQLite always, PostgreSQL and MySQL
/// when their servers answer.
pub async fn all_dbs() -> Vec<TestDb> {
    let mut dbs = Vec::new();
    for kind in [DbKind::Sqlite, DbKind::Postgres, DbKind::Mysql] {
        if let Some(db) = TestDb::create(kind).await {
            dbs.push(db);
        }
    }
    dbs
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_owned()
}

/// Where `cargo xtask build-plugins` leaves the example plugins.
pub fn built_plugins() -> PathBuf {
    let dir = repo_root().join("target").join("plugins");
    assert!(
        dir.join("hello-0.1.0").join("plugin.wasm").is_file(),
        "the example plugins are not built: run `cargo xtask build-plugins` (`cargo xtask test` does it for you)"
    );
    dir
}

/// Copies a built plugin version into a data dir as if it were installed.
pub fn stage_plugin(data_dir: &Path, name: &str, version: &str) {
    let from = built_plugins().join(format!("{name}-{version}"));
    let to = data_dir.join("plugins").join(name).join(version);
    copy_dir(&from, &to);
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// A connection pool of the test's own on `db`, beside any host: for
/// writing or reading what a host would, while no host (or several) runs.
pub async fn test_pool(db: &TestDb) -> plinth_host::db::Db {
    plinth_host::db::Db::connect(&plinth_host::db::DbOptions {
        url: db.url.clone(),
        max_connections: 2,
        connect_timeout: Duration::from_secs(5),
    })
    .await
    .expect("the test connects to its database")
}

/// A config for a test: defaults, the given database, a data dir, and the
/// repo's host schema.
pub fn test_config(db: &TestDb, data_dir: &Path, plugins: &[(&str, &str)]) -> Config {
    let mut config = Config::from_json_str("{}", data_dir, Vec::<(String, String)>::new())
        .expect("default config");
    config.data_dir = data_dir.to_owned();
    config.public_dir = repo_root().join("public");
    config.database.url = db.url.clone();
    config.database.schema_dir = repo_root().join("common-sql");
    config.server.bind = "127.0.0.1:0".parse().expect("addr");
    // The pooling allocator reserves terabytes of address space per engine
    // (one per host); one test process holding dozens of in-process hosts
    // runs out of it. The tests of the real binary (`ServeProcess`) keep
    // the production default, so pooling stays covered.
    config.runtime.pooling = false;
    config.plugins = plugins
        .iter()
        .map(|(name, version)| PluginEntry {
            name: (*name).to_owned(),
            version: version.parse().expect("semver"),
            enabled: true,
            settings: Default::default(),
        })
        .collect();
    config
}

/// Host logs go to the test's captured output; `RUST_LOG` picks the level.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// The bootstrap `admin.token` of a config that sets none (dev mode): what
/// requests to a test host send to act as the super-admin.
pub fn bootstrap_token() -> String {
    Config::from_json_str("{}", Path::new("."), Vec::<(String, String)>::new())
        .expect("default config")
        .admin
        .token
}

/// A client sending `Authorization: Bearer <token>` on every request (none
/// without a token); a request's own `bearer_auth` overrides it.
pub fn client_with_token(token: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .expect("token is a header value");
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .default_headers(headers)
        .build()
        .expect("http client")
}

/// The host running in-process on a loopback port.
pub struct TestHost {
    pub host: Host,
    /// The upgrade agent's state (disabled without a vendor endpoint).
    pub agent: AgentState,
    /// The task scheduler, for running a task by hand.
    pub scheduler: Scheduler,
    pub addr: SocketAddr,
    /// Sends the bootstrap token on every request, so tests act as the
    /// super-admin unless they use [`TestHost::anonymous`] or set a caller.
    pub client: reqwest::Client,
    /// Sends no credentials.
    pub anonymous: reqwest::Client,
    background: Option<Background>,
    server: tokio::task::JoinHandle<()>,
}

impl TestHost {
    /// Runs `stmt` through the probe plugin's `/p/probe/<route>` (`sql`
    /// queries, `exec` executes): its status and JSON answer.
    pub async fn probe(&self, route: &str, stmt: &str) -> (u16, serde_json::Value) {
        let response = self
            .client
            .get(self.url(&format!("/p/probe/{route}")))
            .query(&[("stmt", stmt)])
            .send()
            .await
            .expect("answered");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Stages `plugins` into `data_dir` and starts the host on `config`.
    pub async fn start(config: Config) -> Result<TestHost, StartupError> {
        Self::start_at(config, None).await
    }

    /// [`TestHost::start`] for a `config` loaded from the file at
    /// `config_path`, which the host then keeps in line with what it installs.
    pub async fn start_at(
        config: Config,
        config_path: Option<PathBuf>,
    ) -> Result<TestHost, StartupError> {
        for entry in &config.plugins {
            let dir = config
                .data_dir
                .join("plugins")
                .join(&entry.name)
                .join(entry.version.to_string());
            if !dir.exists() {
                stage_plugin(&config.data_dir, &entry.name, &entry.version.to_string());
            }
        }
        Self::start_unstaged(config, config_path).await
    }

    /// Starts the host on `config` as it is: plugins it lists that are not
    /// in the data dir stay missing (their entries may carry settings for
    /// a package the test installs).
    pub async fn start_unstaged(
        config: Config,
        config_path: Option<PathBuf>,
    ) -> Result<TestHost, StartupError> {
        init_tracing();
        let startup::Started {
            host,
            agent,
            background,
        } = startup::start(config, config_path).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let state = AppState::ready(host.clone(), agent.clone());
        state.set_scheduler(background.scheduler.clone());
        let router = app(state);
        let server = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        let client = client_with_token(Some(&host.config.admin.token));
        let anonymous = client_with_token(None);
        Ok(TestHost {
            host,
            agent,
            scheduler: background.scheduler.clone(),
            addr,
            client,
            anonymous,
            background: Some(background),
            server,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// Stops serving and closes the database pool.
    pub async fn stop(mut self) {
        self.server.abort();
        if let Some(background) = self.background.take() {
            background.stop();
        }
        self.host.db.close().await;
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(background) = self.background.take() {
            background.stop();
        }
    }
}

/// The packed example package `<name>-<version>.zip` from `target/plugins/`.
pub fn package(name_version: &str) -> Vec<u8> {
    let path = built_plugins().join(format!("{name_version}.zip"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A package made from a built one: `version` replaced and `extra` files
/// (relative path, contents) added. Used for versions that exist only to be
/// refused or to fail.
pub fn derived_package(base: &str, version: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&built_plugins().join(base), dir.path());
    let manifest_path = dir.path().join("plugin.toml");
    let manifest = std::fs::read_to_string(&manifest_path).expect("manifest");
    let manifest: String = manifest
        .lines()
        .map(|line| {
            if line.starts_with("version = ") {
                format!("version = \"{version}\"")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&manifest_path, manifest).expect("write manifest");
    for (path, contents) in extra {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, contents).expect("write extra file");
    }
    plinth_package::pack_dir(dir.path()).expect("pack")
}

/// A 1.2.0 whose second migration fails (the column already exists), after
/// a first one that would have succeeded: on dialects with transactional
/// DDL neither stays.
pub fn broken_goods_1_2() -> Vec<u8> {
    let mut extra = Vec::new();
    for dialect in ["sqlite", "postgres", "mysql"] {
        extra.push((
            format!("sql/{dialect}/0004_add_note.sql"),
            "ALTER TABLE {{prefix}}items ADD COLUMN note VARCHAR(100);".to_owned(),
        ));
        extra.push((
            format!("sql/{dialect}/0005_broken.sql"),
            "ALTER TABLE {{prefix}}items ADD COLUMN category VARCHAR(40);".to_owned(),
        ));
    }
    let extra: Vec<(&str, &str)> = extra
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    derived_package("goods-1.1.0", "1.2.0", &extra)
}

/// The admin API of a test host (as the super-admin: the client sends the
/// bootstrap token).
pub struct Admin<'a> {
    host: &'a TestHost,
}

impl TestHost {
    pub fn admin(&self) -> Admin<'_> {
        Admin { host: self }
    }
}

impl Admin<'_> {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.host
            .client
            .request(method, self.host.url(&format!("/api/admin{path}")))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
        let response = request.send().await.expect("admin API answered");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Installs (mode `install`, `upgrade` or `auto`) a package.
    pub async fn install(&self, bytes: Vec<u8>, mode: &str) -> (u16, serde_json::Value) {
        self.send(
            self.request(reqwest::Method::POST, &format!("/plugins?mode={mode}"))
                .header("content-type", "application/zip")
                .body(bytes),
        )
        .await
    }

    pub async fn post(&self, path: &str) -> (u16, serde_json::Value) {
        self.send(self.request(reqwest::Method::POST, path)).await
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, serde_json::Value) {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    /// The error message of a refusal.
    pub fn message(body: &serde_json::Value) -> String {
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// The `x-plugin-version` header of `GET path`.
pub async fn served_version(host: &TestHost, path: &str) -> Option<String> {
    let response = host.get(path).await;
    response
        .headers()
        .get("x-plugin-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A config whose upgrade agent talks to `endpoint` as `customer`, with
/// short reconnect delays so tests stay quick.
pub fn agent_config(
    db: &TestDb,
    data_dir: &Path,
    endpoint: &str,
    customer: &str,
    token: &str,
    public_key: &str,
) -> Config {
    let mut config = test_config(db, data_dir, &[]);
    config.vendor = plinth_host::config::VendorConfig {
        endpoint: endpoint.to_owned(),
        customer: customer.to_owned(),
        customer_token: token.to_owned(),
        public_key: public_key.to_owned(),
        reconnect_initial_ms: 50,
        reconnect_max_ms: 400,
        // Tests reconnect on purpose, faster than production allows.
        limits: plinth_host::agent::AgentLimits {
            reconnects_per_minute: 600,
            ..Default::default()
        },
        ..Default::default()
    };
    config
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A host whose upgrade agent talks to `endpoint` (see [`agent_config`]).
pub async fn agent_host(
    db: &TestDb,
    data_dir: &Path,
    endpoint: &str,
    customer: &str,
    token: &str,
    public_key: &str,
) -> TestHost {
    TestHost::start(agent_config(
        db, data_dir, endpoint, customer, token, public_key,
    ))
    .await
    .expect("host starts")
}

/// A real `plinth serve` process, for tests that check what an operator
/// sees: the binary as installed, its exit code and its stderr.
pub struct ServeProcess {
    child: tokio::process::Child,
    /// Reads stderr as it comes, so a chatty log level cannot fill the pipe
    /// and stall the host.
    stderr: tokio::task::JoinHandle<String>,
    /// The address from the `host.json` it wrote once it was serving.
    pub bind: String,
}

/// Spawns `command`, retrying while its binary is "text file busy": a
/// binary a test has just copied stays open for writing in any child that
/// another test thread forked meanwhile, until that child's exec.
async fn spawn_when_not_busy(command: &mut tokio::process::Command) -> tokio::process::Child {
    for _ in 0..40 {
        match command.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            spawned => return spawned.expect("plinth serve starts"),
        }
    }
    command.spawn().expect("plinth serve starts")
}

impl ServeProcess {
    /// Starts `binary serve --config <config>` in `cwd` and waits (at most
    /// 60 s) until `<data_dir>/host.json` names its address; panics with
    /// its stderr if it exits first.
    pub async fn start(binary: &Path, config: &Path, cwd: &Path, data_dir: &Path) -> Self {
        Self::start_with_env(binary, config, cwd, data_dir, &[]).await
    }

    /// [`ServeProcess::start`] with extra environment variables (they may
    /// override `RUST_LOG=warn`).
    pub async fn start_with_env(
        binary: &Path,
        config: &Path,
        cwd: &Path,
        data_dir: &Path,
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = tokio::process::Command::new(binary);
        command
            .args(["serve", "--config"])
            .arg(config)
            .current_dir(cwd)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = spawn_when_not_busy(&mut command).await;
        let mut pipe = child.stderr.take().expect("stderr piped");
        let stderr = tokio::spawn(async move {
            let mut bytes = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut pipe, &mut bytes).await;
            String::from_utf8_lossy(&bytes).into_owned()
        });
        let host_file = data_dir.join("host.json");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let bind = loop {
            if let Ok(text) = std::fs::read_to_string(&host_file)
                && let Ok(running) = serde_json::from_str::<serde_json::Value>(&text)
                && let Some(bind) = running["bind"].as_str()
            {
                break bind.to_owned();
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "plinth serve exited ({status}) instead of serving: {}",
                    stderr.await.unwrap_or_default()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "plinth serve did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        Self {
            child,
            stderr,
            bind,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.bind)
    }

    /// A client acting as the super-admin through the bootstrap token the
    /// process's config defaults to.
    pub fn client(&self) -> reqwest::Client {
        client_with_token(Some(&bootstrap_token()))
    }

    /// Stops the process and returns what it wrote to stderr.
    pub async fn stop(mut self) -> String {
        self.child.start_kill().expect("stop the host");
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the host stops")
            .expect("exit status");
        tokio::time::timeout(Duration::from_secs(30), self.stderr)
            .await
            .expect("stderr closes")
            .unwrap_or_default()
    }
}

/// Writes `<dir>/config.json` for a real `plinth` process: SQLite and the
/// data dir under `dir`, a loopback port from the OS, and `plugins` as its
/// plugins list. Returns the file's path.
pub fn write_process_config(dir: &Path, plugins: serde_json::Value) -> PathBuf {
    let config = serde_json::json!({
        "data_dir": dir.join("data"),
        "public_dir": repo_root().join("public"),
        "server": { "bind": "127.0.0.1:0" },
        "database": {
            "url": format!("sqlite://{}", dir.join("data").join("plinth.db").display()),
            "schema_dir": repo_root().join("common-sql"),
        },
        "plugins": plugins,
    });
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("json")).expect("write config");
    path
}

/// Signing in to a test host.
impl TestHost {
    /// Signs in through `POST /api/auth/login`: the status and the session
    /// cookie (`plinth_session=…`, ready for a `Cookie` header) when one
    /// was set.
    pub async fn sign_in(&self, login: &str, password: &str) -> (u16, Option<String>) {
        let response = self
            .anonymous
            .post(self.url("/api/auth/login"))
            .json(&serde_json::json!({ "login": login, "password": password }))
            .send()
            .await
            .expect("login answered");
        let status = response.status().as_u16();
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .filter(|pair| pair.len() > "plinth_session=".len())
            .map(str::to_owned);
        (status, cookie)
    }

    /// Signs in as the seeded administrator (`admin.login` / `admin.password`).
    pub async fn sign_in_admin(&self) -> String {
        let config = &self.host.config.admin;
        let (status, cookie) = self.sign_in(&config.login, &config.password).await;
        assert_eq!(status, 200, "the seeded administrator signs in");
        cookie.expect("a session cookie")
    }

    /// Creates user `login` with `password` and `roles` through the admin
    /// API (as the bootstrap token) and signs them in: their cookie.
    pub async fn user_with_roles(&self, login: &str, password: &str, roles: &[&str]) -> String {
        let (status, body) = self
            .admin()
            .post_json(
                "/users",
                serde_json::json!({ "login": login, "display_name": login, "password": password, "roles": roles }),
            )
            .await;
        assert_eq!(status, 201, "create user {login}: {body}");
        let (status, cookie) = self.sign_in(login, password).await;
        assert_eq!(status, 200, "{login} signs in");
        cookie.expect("a session cookie")
    }

    /// A request carrying session `cookie`.
    pub fn with_cookie(
        &self,
        method: reqwest::Method,
        path: &str,
        cookie: &str,
    ) -> reqwest::RequestBuilder {
        self.anonymous
            .request(method, self.url(path))
            .header("cookie", cookie)
    }
}

impl Admin<'_> {
    /// A JSON request as the bootstrap admin.
    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.send(self.request(reqwest::Method::POST, path).json(&body))
            .await
    }

    pub async fn put(&self, path: &str) -> (u16, serde_json::Value) {
        self.send(self.request(reqwest::Method::PUT, path)).await
    }

    pub async fn patch_json(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.send(self.request(reqwest::Method::PATCH, path).json(&body))
            .await
    }
}

/// A `multipart/form-data` body: the text `fields`, then one file part
/// `file` sent as `filename` with `content_type`. Returns the request's
/// Content-Type (with the boundary) and the body.
pub fn multipart_body(
    fields: &[(&str, &str)],
    file: &str,
    filename: &str,
    content_type: &str,
    bytes: &[u8],
) -> (String, Vec<u8>) {
    const BOUNDARY: &str = "plinth-test-boundary-7d1f0c";
    let mut body = Vec::with_capacity(bytes.len() + 1024);
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{file}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}
