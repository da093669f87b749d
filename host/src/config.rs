//! Host configuration: the `config.json` schema, its loader and its validation.
//!
//! This module owns everything between the operator's `config.json` and a
//! validated [`Config`] value: the types and their defaults, strict
//! deserialization (every struct denies unknown keys), environment overrides,
//! resolution of relative paths, semantic validation, and
//! [`Config::save_plugins`], which the installer uses to record the installed
//! set in the file.
//!
//! # The file is the operator's
//!
//! The host writes only `plugins[].name`, `version` and `enabled`, and a
//! plugin's `settings` when the operator changes them through the admin API
//! ([`Config::save_plugin_settings`]; a secret only as `{"file": …}` naming
//! the host's own file, see `install::secret_files`), and only into the file as it is on
//! disk at that moment: never from the snapshot
//! loaded at start-up, so an edit made while the host runs (a plugin's
//! `settings`, any other key) stays, and never a value that came from the
//! environment. A file that no longer parses is not overwritten.
//!
//! # Loading
//!
//! [`Config::load`] reads the file, merges it over the defaults, applies the
//! environment overrides, deserializes strictly, resolves `data_dir`,
//! `public_dir`, a non-empty `database.schema_dir` and the file path of a `sqlite://` URL
//! against the directory that holds the config file, and validates. Every
//! error names the offending key (`server.bind`, `plugins[0].version`) or
//! environment variable and says what to do about it.
//!
//! # Environment overrides
//!
//! A variable `PLINTH__SECTION__KEY=value` sets `section.key`, and
//! `PLINTH__DATA_DIR=value` sets the top-level `data_dir`: a double underscore
//! separates levels, a single underscore is part of a key, and keys are
//! lower-cased. Overrides are applied to the JSON document (the file merged
//! over the defaults) before it is deserialized, so they obey the same strict
//! schema: an override of a key that does not exist is refused with an error
//! naming the variable. The value is typed by what it replaces (the default,
//! or else the file's value): a string key takes the value verbatim; a
//! number, boolean, array or object key needs a JSON value
//! (`PLINTH__RUNTIME__POOLING=false`) and the variable is refused if it is
//! not one; a key the document does not have takes JSON if it parses and a
//! string otherwise. Overriding a whole section (`PLINTH__SERVER={…}`)
//! replaces it. Individual plugin
//! entries cannot be overridden; `PLINTH__PLUGINS=<json array>` replaces the
//! whole list. `PLINTH__PLUGINS__<NAME>__<KEY>` (a name, not an index) is a
//! plugin setting, kept in [`Config::plugin_env`] and checked against the
//! plugin's manifest when it loads ([`plugin_settings`]).
//!
//! # Placeholder secrets
//!
//! In `production` mode `admin.token` (and `vendor.customer_token` when
//! `vendor.endpoint` is set) must be a real secret: non-empty, at least 16
//! characters, and not a placeholder: anything starting with `change-me` or
//! `dev-`, or one of `__MUST_SET__`, `secret`, `password`, `admin`, `token`,
//! `test`, `changeme` (compared case-insensitively). `dev` mode accepts
//! placeholders so the shipped `config.json` runs as is. In every mode a
//! `vendor.endpoint` requires a `vendor.public_key`, because the upgrade agent
//! must verify the vendor's signatures.

mod agent_limits;
mod events;
mod files;
mod outbound;
pub mod plugin_settings;
mod sign_in;
mod task_history;

pub use agent_limits::AgentLimits;
pub use events::EventsConfig;
pub use files::{FilesConfig, PluginFilesConfig};
pub use outbound::{OutboundConfig, PluginOutbound};
pub use plugin_settings::SettingValue;
pub use sign_in::SignInLimits;
pub use task_history::{TaskHistory, resolve_host_id};

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use plinth_package::vendor_endpoint::{EndpointError, WsEndpoint};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "PLINTH__";

/// Minimum length of a production secret.
const MIN_SECRET_LEN: usize = 16;

/// Secrets (compared lower-cased) that are refused in production.
const PLACEHOLDERS: &[&str] = &[
    "__must_set__",
    "secret",
    "password",
    "admin",
    "token",
    "test",
    "changeme",
];

/// Prefixes (compared lower-cased) of secrets that are refused in production.
const PLACEHOLDER_PREFIXES: &[&str] = &["change-me", "dev-"];

/// Accepted `database.url` schemes.
const DB_SCHEMES: &[&str] = &[
    "sqlite:",
    "postgres://",
    "postgresql://",
    "mysql://",
    "mariadb://",
];

/// File name used in error messages when the text did not come from a file.
const DEFAULT_FILE_LABEL: &str = "config.json";

/// Whether the host runs for development or for real.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Placeholder secrets are accepted.
    #[default]
    Dev,
    /// Placeholder secrets are refused.
    Production,
}

/// The whole `config.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub mode: Mode,
    /// Runtime state directory (absolute after loading).
    pub data_dir: PathBuf,
    /// Static admin web files served at `/` (absolute after loading).
    pub public_dir: PathBuf,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub admin: AdminConfig,
    pub vendor: VendorConfig,
    pub runtime: RuntimeConfig,
    pub tasks: TaskHistory,
    /// Plugins' outbound HTTP (`config/outbound.rs`).
    pub outbound: OutboundConfig,
    /// Plugin files: the operator's quotas (`config/files.rs`).
    pub files: FilesConfig,
    pub events: EventsConfig,
    pub plugins: Vec<PluginEntry>,
    /// `PLINTH__PLUGINS__<NAME>__<KEY>` variables the host started with:
    /// plugin settings (secrets above all) kept out of config.json, read by
    /// [`plugin_settings::resolve`].
    #[serde(skip)]
    pub plugin_env: BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Dev,
            data_dir: PathBuf::from("data"),
            public_dir: PathBuf::from("public"),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            admin: AdminConfig::default(),
            vendor: VendorConfig::default(),
            runtime: RuntimeConfig::default(),
            tasks: TaskHistory::default(),
            outbound: OutboundConfig::default(),
            files: FilesConfig::default(),
            events: EventsConfig::default(),
            plugins: Vec::new(),
            plugin_env: BTreeMap::new(),
        }
    }
}

/// `server`: the HTTP listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(deserialize_with = "de_socket_addr")]
    pub bind: SocketAddr,
    pub body_limit_bytes: usize,
    pub shutdown_grace_secs: u64,
    /// Names this host on task runs and claims; empty means
    /// `<hostname>:<pid>` ([`resolve_host_id`]).
    pub host_id: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: 2 * 1024 * 1024,
            shutdown_grace_secs: 10,
            host_id: String::new(),
        }
    }
}

impl ServerConfig {
    /// `shutdown_grace_secs` as a [`Duration`].
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

/// `database`: the host database and its schema files.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH`, `postgres://…`, `postgresql://…`, `mysql://…` or
    /// `mariadb://…`; a relative sqlite path is absolute after loading.
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout_secs: u64,
    /// Empty (the default): the host schema built into the binary from the
    /// repository's `common-sql/`. Otherwise a folder that replaces it,
    /// laid out `<schema_dir>/table/<table>/<dialect>/NNNN_*.sql` (absolute
    /// after loading).
    pub schema_dir: PathBuf,
    /// Production mode refuses to run plugin SQL through a PostgreSQL
    /// superuser connection unless this is `true` (see ARCHITECTURE.md,
    /// "Database rights").
    pub plugin_sql_as_superuser: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://data/plinth.db".to_owned(),
            max_connections: 8,
            connect_timeout_secs: 5,
            schema_dir: PathBuf::new(),
            plugin_sql_as_superuser: false,
        }
    }
}

impl DatabaseConfig {
    /// `connect_timeout_secs` as a [`Duration`].
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url_password(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("schema_dir", &self.schema_dir)
            .field("plugin_sql_as_superuser", &self.plugin_sql_as_superuser)
            .finish()
    }
}

/// `admin`: access to the admin API.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// The bootstrap bearer token for the admin API (acts as super-admin);
    /// people sign in as users, automation uses service tokens.
    pub token: String,
    /// The first administrator, seeded at start-up when no user has this
    /// login yet.
    pub login: String,
    /// The seeded administrator's first password (a placeholder is refused
    /// in production).
    pub password: String,
    pub sign_in: SignInLimits,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            token: "dev-admin-token".to_owned(),
            login: "admin".to_owned(),
            password: "dev-admin-password".to_owned(),
            sign_in: SignInLimits::default(),
        }
    }
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfig")
            .field("token", &redacted(&self.token))
            .field("login", &self.login)
            .field("password", &redacted(&self.password))
            .field("sign_in", &self.sign_in)
            .finish()
    }
}

/// `vendor`: the upgrade agent's connection to the vendor server.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VendorConfig {
    /// `ws://` or `wss://` URL of the vendor server's agent endpoint
    /// (e.g. `wss://vendor.example.com/api/agent`); empty turns the agent
    /// off. Package downloads go to the same host over `http(s)://`.
    pub endpoint: String,
    /// The customer account this host belongs to. Offers signed for any
    /// other customer are refused, whatever the server says.
    pub customer: String,
    pub customer_token: String,
    /// The vendor's ed25519 public key, 64 hex characters (or empty).
    pub public_key: String,
    /// First reconnect delay after a lost connection, milliseconds; it
    /// doubles per failed attempt up to `reconnect_max_ms`, with jitter.
    pub reconnect_initial_ms: u64,
    pub reconnect_max_ms: u64,
    /// Consecutive failed connection attempts before the agent gives up
    /// (until restarted through the admin API or a host restart).
    pub reconnect_attempts: u32,
    /// Attempts per package download; each retry resumes where the last
    /// one broke off.
    pub download_attempts: u32,
    /// The agent's time-outs, minimum download rate and reconnect cap.
    pub limits: AgentLimits,
}

impl Default for VendorConfig {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            customer: String::new(),
            customer_token: String::new(),
            public_key: String::new(),
            reconnect_initial_ms: 500,
            reconnect_max_ms: 30_000,
            reconnect_attempts: 100,
            download_attempts: 5,
            limits: AgentLimits::default(),
        }
    }
}

impl VendorConfig {
    /// Whether the upgrade agent should run.
    pub fn is_enabled(&self) -> bool {
        !self.endpoint.is_empty()
    }

    /// The host part of `endpoint` (without port or brackets), if any.
    pub fn endpoint_host(&self) -> Option<&str> {
        WsEndpoint::parse(&self.endpoint).ok().map(|e| e.host)
    }
}

/// Whether `host` names this machine: `localhost`, 127.0.0.0/8 or `::1`.
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl fmt::Debug for VendorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VendorConfig")
            .field("endpoint", &self.endpoint)
            .field("customer", &self.customer)
            .field("customer_token", &redacted(&self.customer_token))
            .field("public_key", &self.public_key)
            .field("reconnect_initial_ms", &self.reconnect_initial_ms)
            .field("reconnect_max_ms", &self.reconnect_max_ms)
            .field("reconnect_attempts", &self.reconnect_attempts)
            .field("download_attempts", &self.download_attempts)
            .field("limits", &self.limits)
            .finish()
    }
}

/// `runtime`: limits of the plugin runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Linear memory per plugin instance, MiB (1..=4096).
    pub memory_limit_mib: u32,
    /// CPU/wall budget per plugin call, ms (≥ 10).
    pub call_timeout_ms: u64,
    /// Budget per scheduled task, ms (≥ 10).
    pub task_timeout_ms: u64,
    /// Warm instances kept per plugin (≥ 1).
    pub max_warm_instances: u32,
    /// Use wasmtime's pooling allocator.
    pub pooling: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            memory_limit_mib: 64,
            call_timeout_ms: 2000,
            task_timeout_ms: 60_000,
            max_warm_instances: 16,
            pooling: true,
        }
    }
}

impl RuntimeConfig {
    /// `memory_limit_mib` in bytes.
    pub fn memory_limit_bytes(&self) -> u64 {
        u64::from(self.memory_limit_mib) * 1024 * 1024
    }

    /// `call_timeout_ms` as a [`Duration`].
    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms)
    }

    /// `task_timeout_ms` as a [`Duration`].
    pub fn task_timeout(&self) -> Duration {
        Duration::from_millis(self.task_timeout_ms)
    }
}

/// One entry of `plugins`: an installed plugin and its settings.
///
/// `name` and `version` are required; `enabled` defaults to true and
/// `settings` to empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    pub name: String,
    pub version: semver::Version,
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default)]
    pub settings: BTreeMap<String, SettingValue>,
}

fn default_true() -> bool {
    true
}

/// Why the configuration could not be loaded or saved.
///
/// `Display` names the file or environment variable, the key and the reason,
/// and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or written. The message tells the cause,
    /// so `cause` is not also the error's `source()`.
    #[error("{}", io_message(path, cause))]
    Io { path: PathBuf, cause: io::Error },

    /// The file is not valid JSON.
    #[error(
        "{}:{line}:{column}: invalid JSON: {message}; fix the syntax there (JSON allows no comments or trailing commas)",
        path.display()
    )]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },

    /// A key in the file has a wrong type or an invalid value.
    #[error("{}: {}", file.display(), keyed(key, reason))]
    Invalid {
        file: PathBuf,
        /// Dotted path, e.g. `server.bind` or `plugins[0].version`; empty for
        /// the document itself.
        key: String,
        reason: String,
    },

    /// The file has a key the schema does not know.
    #[error(
        "{}: unknown key \"{key}\" (known keys: {known}); remove it or fix its spelling",
        file.display()
    )]
    UnknownKey {
        file: PathBuf,
        key: String,
        /// Comma-separated keys allowed at that level.
        known: String,
    },

    /// An environment override is malformed, or the value it set is invalid.
    #[error("{}", env_message(var, key, reason))]
    Env {
        var: String,
        /// Dotted path the variable sets (or the key inside it that is
        /// wrong); empty when the variable name itself is malformed.
        key: String,
        reason: String,
    },

    /// A production secret is missing or a placeholder.
    #[error("{}: {key} {reason}; {hint}", file.display())]
    Placeholder {
        file: PathBuf,
        key: String,
        reason: String,
        hint: String,
    },
}

fn io_message(path: &Path, source: &io::Error) -> String {
    if source.kind() == io::ErrorKind::NotFound {
        format!(
            "config file {} not found: copy config.json from the Plinth repository (or release archive) to that path and edit it, or point the host at an existing config file",
            path.display()
        )
    } else {
        format!("{}: {source}", path.display())
    }
}

fn keyed(key: &str, reason: &str) -> String {
    if key.is_empty() {
        reason.to_owned()
    } else {
        format!("{key}: {reason}")
    }
}

fn env_message(var: &str, key: &str, reason: &str) -> String {
    if key.is_empty() {
        format!("environment variable {var}: {reason}")
    } else {
        format!("{var} ({key}): {reason}")
    }
}

impl Config {
    /// Loads, overrides from the process environment, resolves and validates
    /// the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        // `std::env::vars` panics on non-Unicode variables; only names matter
        // here, and an override value that is not Unicode is taken lossily.
        let env = std::env::vars_os().filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            let value = value
                .into_string()
                .unwrap_or_else(|v| v.to_string_lossy().into_owned());
            Some((name, value))
        });
        Self::load_with_env(path, env)
    }

    /// [`Config::load`] with an explicit environment (only `PLINTH__*`
    /// variables are looked at).
    pub fn load_with_env(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = fs::read_to_string(path).map_err(|cause| ConfigError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        let absolute = std::path::absolute(path).map_err(|cause| ConfigError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        let base_dir = absolute.parent().unwrap_or(Path::new("/"));
        Self::parse(&text, path, base_dir, env)
    }

    /// Parses `text` as a config file located in `base_dir` (relative paths
    /// resolve against it); errors call the file `config.json`.
    pub fn from_json_str(
        text: &str,
        base_dir: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        Self::parse(text, Path::new(DEFAULT_FILE_LABEL), base_dir, env)
    }

    /// Brings the `plugins` list of the config file at `path`, as it is on
    /// disk now, in line with `plugins`: the host's installed set.
    ///
    /// Only `name`, `version` and `enabled` of an entry are the host's to
    /// write. An entry whose plugin is in `plugins` gets those three set and
    /// keeps every other key (its `settings` above all) as the operator wrote
    /// it; an entry is added for a plugin the file does not list yet, with the
    /// given `settings`; an entry named in `forget` (a plugin just removed) is
    /// dropped; any other entry (a plugin listed but not installed) stays.
    /// Every other member of the file keeps its text, in its order.
    ///
    /// Nothing is written when nothing changes. Otherwise the new text goes
    /// to a temporary file in the same folder, is synced and renamed over the
    /// old one (keeping its permissions), and only if the file still holds
    /// what was read; if someone saved it in between, the update starts again
    /// from the newer text. A file that is not valid JSON, or whose `plugins`
    /// is not a list of objects, is left as it is and the error says why.
    pub fn save_plugins(
        path: &Path,
        plugins: &[PluginEntry],
        forget: &[&str],
    ) -> Result<(), ConfigError> {
        if let Err(problem) = validate_plugins(plugins) {
            return Err(problem.into_error(path, &EnvOrigins::default()));
        }
        save_with(path, "plugins", |text| {
            rewrite_plugins(text, path, plugins, forget)
        })?;
        Ok(())
    }

    /// Applies `changes` (a key's new value, or `None` to remove the key)
    /// to plugin `plugin`'s `settings` in the file at `path`, the way
    /// [`Config::save_plugins`] writes (every other member keeps its text,
    /// an atomic rename, a retry when the file changed meanwhile). Only the
    /// keys named change: a key the operator edited in the file meanwhile
    /// stays as they wrote it, and so does a `{"file": …}` secret. The
    /// plugin must have an entry; its other members stay.
    pub fn save_plugin_settings(
        path: &Path,
        plugin: &str,
        changes: &BTreeMap<String, Option<SettingValue>>,
    ) -> Result<(), ConfigError> {
        save_with(path, "plugins", |text| {
            rewrite_plugin_settings(text, path, plugin, changes)
        })
    }

    /// The sqlite database file, if `database.url` is a file-backed sqlite
    /// URL.
    pub fn database_path(&self) -> Option<PathBuf> {
        let (path, query) = split_sqlite_url(&self.database.url)?;
        if is_sqlite_memory(path, query) {
            return None;
        }
        Some(PathBuf::from(path))
    }

    /// Whether `mode` is `production`.
    pub fn is_production(&self) -> bool {
        self.mode == Mode::Production
    }

    fn parse(
        text: &str,
        file: &Path,
        base_dir: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let file_value = parse_json(text, file)?;
        if !file_value.is_object() {
            return Err(ConfigError::Invalid {
                file: file.to_path_buf(),
                key: String::new(),
                reason: not_an_object_reason(&file_value),
            });
        }
        let mut doc = defaults_value();
        merge(&mut doc, file_value, "")
            .map_err(|problem| problem.into_error(file, &EnvOrigins::default()))?;
        let (plugin_env, env): (Vec<_>, Vec<_>) = env
            .into_iter()
            .partition(|(name, _)| is_plugin_setting_var(name));
        let origins = apply_env(&mut doc, env)?;

        let mut config: Config =
            serde_path_to_error::deserialize(doc).map_err(|e| de_error(&e, file, &origins))?;
        config.plugin_env = plugin_env.into_iter().collect();
        config.resolve_paths(base_dir);
        config
            .validate()
            .map_err(|problem| problem.into_error(file, &origins))?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base_dir: &Path) {
        self.data_dir = resolve_path(base_dir, &self.data_dir);
        self.public_dir = resolve_path(base_dir, &self.public_dir);
        if !self.database.schema_dir.as_os_str().is_empty() {
            self.database.schema_dir = resolve_path(base_dir, &self.database.schema_dir);
        }
        if let Some((path, query)) = split_sqlite_url(&self.database.url)
            && !is_sqlite_memory(path, query)
            && Path::new(path).is_relative()
        {
            let absolute = base_dir.join(path);
            self.database.url = format!("sqlite://{}{query}", absolute.display());
        }
    }

    fn validate(&self) -> Result<(), Problem> {
        validate_database_url(&self.database.url)?;
        if self.database.max_connections < 1 {
            return Err(Problem::invalid(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        let rt = &self.runtime;
        if !(1..=4096).contains(&rt.memory_limit_mib) {
            return Err(Problem::invalid(
                "runtime.memory_limit_mib",
                format!(
                    "{} is out of range: give 1..=4096 (MiB of linear memory per plugin instance)",
                    rt.memory_limit_mib
                ),
            ));
        }
        for (key, value) in [
            ("runtime.call_timeout_ms", rt.call_timeout_ms),
            ("runtime.task_timeout_ms", rt.task_timeout_ms),
        ] {
            if value < 10 {
                return Err(Problem::invalid(
                    key,
                    format!("{value} is too small: give at least 10 (milliseconds)"),
                ));
            }
        }
        if rt.max_warm_instances < 1 {
            return Err(Problem::invalid(
                "runtime.max_warm_instances",
                "must be at least 1",
            ));
        }
        if let Some((key, reason)) = self.events.problem() {
            return Err(Problem::invalid(key, reason));
        }
        self.validate_vendor()?;
        if let Err((key, reason)) = self.tasks.check() {
            return Err(Problem::invalid(key, reason));
        }
        self.outbound
            .check()
            .map_err(|(key, reason)| Problem::invalid(&key, reason))?;
        self.files
            .check()
            .map_err(|(key, reason)| Problem::invalid(&key, reason))?;
        validate_plugins(&self.plugins)?;
        if let Some((key, reason)) = self.admin.sign_in.problem() {
            return Err(Problem::invalid(&format!("admin.sign_in.{key}"), reason));
        }
        if self.admin.login.trim().is_empty() {
            return Err(Problem::invalid(
                "admin.login",
                "is empty: give the login of the first administrator",
            ));
        }
        if self.is_production() {
            check_secret("admin.token", &self.admin.token)?;
            check_secret("admin.password", &self.admin.password)?;
            if self.vendor.is_enabled() {
                check_secret("vendor.customer_token", &self.vendor.customer_token)?;
            }
        }
        Ok(())
    }

    fn validate_vendor(&self) -> Result<(), Problem> {
        let vendor = &self.vendor;
        if vendor.is_enabled() {
            match WsEndpoint::parse(&vendor.endpoint) {
                Ok(_) => {}
                Err(EndpointError::NotWebSocket) => {
                    return Err(Problem::invalid(
                        "vendor.endpoint",
                        format!(
                            "{:?} is not a WebSocket URL: give ws://HOST[:PORT]/PATH or wss://HOST[:PORT]/PATH, or \"\" to turn the vendor agent off",
                            vendor.endpoint
                        ),
                    ));
                }
                Err(EndpointError::NoHost) => {
                    return Err(Problem::invalid(
                        "vendor.endpoint",
                        format!(
                            "{:?} has no valid host: give e.g. wss://vendor.example.com/agent",
                            vendor.endpoint
                        ),
                    ));
                }
            }
        }
        let key = &vendor.public_key;
        if !key.is_empty() && (key.len() != 64 || !key.chars().all(|c| c.is_ascii_hexdigit())) {
            return Err(Problem::invalid(
                "vendor.public_key",
                format!(
                    "must be the vendor's ed25519 public key as 64 hex characters (got {} characters{})",
                    key.chars().count(),
                    if key.chars().all(|c| c.is_ascii_hexdigit()) {
                        ""
                    } else {
                        ", some not hex"
                    }
                ),
            ));
        }
        if vendor.is_enabled() && key.is_empty() {
            return Err(Problem::invalid(
                "vendor.public_key",
                "is empty but vendor.endpoint is set; the vendor agent must verify the vendor's signatures: set it to the vendor's ed25519 public key (64 hex characters) or clear vendor.endpoint",
            ));
        }
        if vendor.is_enabled() {
            if self.mode != Mode::Dev
                && vendor.endpoint.starts_with("ws://")
                && !vendor.endpoint_host().is_some_and(is_loopback_host)
            {
                return Err(Problem::invalid(
                    "vendor.endpoint",
                    format!(
                        "{:?} is plain ws:// to another machine, which only dev mode allows: use wss:// so the customer token and packages travel encrypted",
                        vendor.endpoint
                    ),
                ));
            }
            if vendor.customer.trim().is_empty() {
                return Err(Problem::invalid(
                    "vendor.customer",
                    "is empty but vendor.endpoint is set: give the customer account name the vendor issued your token for",
                ));
            }
            if vendor.customer_token.is_empty() {
                return Err(Problem::invalid(
                    "vendor.customer_token",
                    "is empty but vendor.endpoint is set: give the token the vendor printed for your customer account",
                ));
            }
            if vendor.reconnect_initial_ms < 10
                || vendor.reconnect_max_ms < vendor.reconnect_initial_ms
            {
                return Err(Problem::invalid(
                    "vendor.reconnect_max_ms",
                    format!(
                        "reconnect delays {}..{} ms are not a range: give reconnect_initial_ms >= 10 and reconnect_max_ms >= reconnect_initial_ms",
                        vendor.reconnect_initial_ms, vendor.reconnect_max_ms
                    ),
                ));
            }
            for (key, value) in [
                ("vendor.reconnect_attempts", vendor.reconnect_attempts),
                ("vendor.download_attempts", vendor.download_attempts),
            ] {
                if value < 1 {
                    return Err(Problem::invalid(key, "must be at least 1"));
                }
            }
            if let Err(key) = vendor.limits.check() {
                return Err(Problem::invalid(&key, "must be at least 1"));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Validation helpers

/// A validation failure before it is attributed to the file or to an
/// environment variable.
#[derive(Debug)]
enum Problem {
    Invalid { key: String, reason: String },
    Placeholder { key: String, reason: String },
}

impl Problem {
    fn invalid(key: &str, reason: impl Into<String>) -> Problem {
        Problem::Invalid {
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    fn into_error(self, file: &Path, origins: &EnvOrigins) -> ConfigError {
        match self {
            Problem::Invalid { key, reason } => match origins.var_for(&key) {
                Some(var) => ConfigError::Env {
                    var: var.to_owned(),
                    key,
                    reason,
                },
                None => ConfigError::Invalid {
                    file: file.to_path_buf(),
                    key,
                    reason,
                },
            },
            Problem::Placeholder { key, reason } => match origins.var_for(&key) {
                Some(var) => ConfigError::Env {
                    var: var.to_owned(),
                    key,
                    reason: format!(
                        "{reason}; production mode needs a real secret of at least {MIN_SECRET_LEN} random characters (e.g. from `openssl rand -hex 32`)"
                    ),
                },
                None => {
                    let var = env_var_for(&key);
                    ConfigError::Placeholder {
                        file: file.to_path_buf(),
                        hint: format!(
                            "production mode needs a real secret: set {var} (or {key} in the config file) to at least {MIN_SECRET_LEN} random characters, e.g. from `openssl rand -hex 32`"
                        ),
                        key,
                        reason,
                    }
                }
            },
        }
    }
}

/// `server.bind` -> `PLINTH__SERVER__BIND`.
fn env_var_for(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.replace('.', "__").to_ascii_uppercase()
    )
}

fn check_secret(key: &str, value: &str) -> Result<(), Problem> {
    let lower = value.trim().to_ascii_lowercase();
    let reason = if value.trim().is_empty() {
        "is empty".to_owned()
    } else if PLACEHOLDERS.contains(&lower.as_str())
        || PLACEHOLDER_PREFIXES.iter().any(|p| lower.starts_with(p))
    {
        format!("is a placeholder ({value:?})")
    } else if value.chars().count() < MIN_SECRET_LEN {
        format!(
            "is too short ({} characters, at least {MIN_SECRET_LEN} needed)",
            value.chars().count()
        )
    } else {
        return Ok(());
    };
    Err(Problem::Placeholder {
        key: key.to_owned(),
        reason,
    })
}

fn validate_database_url(url: &str) -> Result<(), Problem> {
    const KEY: &str = "database.url";
    const EXPECTED: &str = "give sqlite://PATH, postgres://USER:PASSWORD@HOST/DB, postgresql://…, mysql://… or mariadb://…";
    if url.trim().is_empty() {
        return Err(Problem::invalid(KEY, format!("is empty: {EXPECTED}")));
    }
    if !DB_SCHEMES.iter().any(|scheme| url.starts_with(scheme)) {
        // Show only the scheme: the rest may hold a password.
        let scheme = url.split(':').next().unwrap_or(url);
        return Err(Problem::invalid(
            KEY,
            format!("unsupported scheme {scheme:?}: {EXPECTED}"),
        ));
    }
    if let Some((path, _)) = split_sqlite_url(url) {
        if path.is_empty() {
            return Err(Problem::invalid(
                KEY,
                "sqlite URL has no database file: give e.g. sqlite://data/plinth.db (or sqlite::memory: for a throwaway database)",
            ));
        }
    } else {
        let rest = url.split_once("://").map_or("", |(_, rest)| rest);
        if rest.split(['/', '?']).next().unwrap_or("").is_empty() {
            return Err(Problem::invalid(KEY, format!("has no host: {EXPECTED}")));
        }
    }
    Ok(())
}

/// The manifest's name rule, so config.json cannot list a name no package
/// can have.
#[cfg(test)]
fn is_valid_plugin_name(name: &str) -> bool {
    plinth_package::manifest::name_problem(name).is_none()
}

fn validate_plugins(plugins: &[PluginEntry]) -> Result<(), Problem> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, plugin) in plugins.iter().enumerate() {
        let key = format!("plugins[{i}].name");
        if let Some(problem) = plinth_package::manifest::name_problem(&plugin.name) {
            return Err(Problem::invalid(
                &key,
                format!(
                    "{:?} is not a valid plugin name: it {problem} (e.g. \"goods\" or \"goods-acme\")",
                    plugin.name
                ),
            ));
        }
        if let Some(first) = seen.insert(&plugin.name, i) {
            return Err(Problem::invalid(
                &key,
                format!(
                    "{:?} is listed twice (also plugins[{first}]); keep one entry per plugin",
                    plugin.name
                ),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// JSON document: defaults, merge, environment overrides, serde errors

fn parse_json(text: &str, file: &Path) -> Result<Value, ConfigError> {
    serde_json::from_str(text).map_err(|e| {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
        ConfigError::Syntax {
            path: file.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message,
        }
    })
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn not_an_object_reason(value: &Value) -> String {
    format!(
        "the document must be a JSON object ({{ \"mode\": …, \"server\": {{ … }}, … }}), found {}",
        json_kind(value)
    )
}

fn defaults_value() -> Value {
    serde_json::to_value(Config::default()).unwrap_or_else(|_| Value::Object(Map::new()))
}

fn join_key(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Merges `file` over `base` (objects recursively, everything else replaced).
/// A section the defaults hold as an object must be an object in the file,
/// and every plugin entry must be an object: serde would otherwise accept a
/// JSON array for a struct.
fn merge(base: &mut Value, file: Value, prefix: &str) -> Result<(), Problem> {
    let (Value::Object(base_map), Value::Object(file_map)) = (&mut *base, file) else {
        return Ok(());
    };
    for (key, value) in file_map {
        let path = join_key(prefix, &key);
        match base_map.get_mut(&key) {
            Some(existing @ Value::Object(_)) => {
                if !value.is_object() {
                    return Err(Problem::invalid(
                        &path,
                        format!("expected an object {{ … }}, found {}", json_kind(&value)),
                    ));
                }
                merge(existing, value, &path)?;
            }
            _ => {
                if key == "plugins"
                    && prefix.is_empty()
                    && let Value::Array(items) = &value
                    && let Some((i, item)) = items.iter().enumerate().find(|(_, v)| !v.is_object())
                {
                    return Err(Problem::invalid(
                        &format!("plugins[{i}]"),
                        format!(
                            "expected an object {{ \"name\": …, \"version\": … }}, found {}",
                            json_kind(item)
                        ),
                    ));
                }
                base_map.insert(key, value);
            }
        }
    }
    Ok(())
}

/// Which dotted keys were set by which environment variable.
#[derive(Debug, Default)]
struct EnvOrigins(Vec<(String, String)>);

impl EnvOrigins {
    /// The variable that set `key` or one of its ancestors.
    fn var_for(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(path, _)| {
                key == path
                    || key
                        .strip_prefix(path.as_str())
                        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
            })
            .map(|(_, var)| var.as_str())
    }

    /// The variable that set a key below `key`.
    fn var_below(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(path, _)| {
                path.strip_prefix(key)
                    .is_some_and(|rest| rest.starts_with('.'))
            })
            .map(|(_, var)| var.as_str())
    }
}

/// `PLINTH__PLUGINS__<NAME>__<KEY>` with a name (not an index): a plugin
/// setting, not an override of the `plugins` list.
fn is_plugin_setting_var(var: &str) -> bool {
    let Some(rest) = var
        .strip_prefix(ENV_PREFIX)
        .and_then(|r| r.strip_prefix("PLUGINS__"))
    else {
        return false;
    };
    let parts: Vec<&str> = rest.split("__").collect();
    parts.len() == 2
        && parts.iter().all(|p| !p.is_empty())
        && !parts[0].bytes().all(|b| b.is_ascii_digit())
}

fn apply_env(
    doc: &mut Value,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<EnvOrigins, ConfigError> {
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    let defaults = defaults_value();
    let mut origins = EnvOrigins::default();
    for (var, raw) in vars {
        let segments: Vec<String> = var[ENV_PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        let env_error = |key: &str, reason: String| ConfigError::Env {
            var: var.clone(),
            key: key.to_owned(),
            reason,
        };
        if segments.iter().any(String::is_empty) {
            return Err(env_error(
                "",
                format!(
                    "malformed name: use {ENV_PREFIX}KEY or {ENV_PREFIX}SECTION__KEY (double underscores between levels only)"
                ),
            ));
        }
        let key = segments.join(".");
        let Some(root) = doc.as_object_mut() else {
            return Err(env_error(&key, "the document is not an object".to_owned()));
        };
        if segments[0] == "plugins" {
            if segments.len() > 1 {
                return Err(env_error(
                    &key,
                    format!(
                        "single plugin entries cannot be overridden; set {ENV_PREFIX}PLUGINS to the whole JSON array instead"
                    ),
                ));
            }
            let value: Value = serde_json::from_str(&raw).map_err(|e| {
                env_error(&key, format!("is not a JSON array of plugin entries: {e}"))
            })?;
            if !value.is_array() {
                return Err(env_error(
                    &key,
                    format!(
                        "must be a JSON array of plugin entries, found {}",
                        json_kind(&value)
                    ),
                ));
            }
            root.insert(key.clone(), value);
        } else {
            let mut map = root;
            let (last, parents) = segments
                .split_last()
                .ok_or_else(|| env_error(&key, "empty name".to_owned()))?;
            for (depth, segment) in parents.iter().enumerate() {
                let slot = map
                    .entry(segment.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                let kind = json_kind(slot);
                let Some(inner) = slot.as_object_mut() else {
                    let parent = segments[..=depth].join(".");
                    return Err(env_error(
                        &key,
                        format!("{parent} is a {kind}, not a section, so it has no key {last:?}"),
                    ));
                };
                map = inner;
            }
            // Type by the schema's default where there is one, so a value
            // of the wrong type in the file does not mistype its override.
            let typed_by = segments
                .iter()
                .try_fold(&defaults, |v, segment| v.get(segment))
                .filter(|v| !v.is_null())
                .or_else(|| map.get(last));
            let value = match typed_by {
                Some(Value::String(_)) => Value::String(raw),
                None | Some(Value::Null) => {
                    serde_json::from_str(&raw).unwrap_or(Value::String(raw))
                }
                Some(existing) => serde_json::from_str(&raw).map_err(|_| {
                    env_error(
                        &key,
                        format!(
                            "{raw:?} is not valid JSON, but this key holds a {} (e.g. {existing}); give a JSON value",
                            json_kind(existing)
                        ),
                    )
                })?,
            };
            map.insert(last.clone(), value);
        }
        tracing::debug!(var = %var, key = %key, "config: override from environment");
        origins.0.push((key, var));
    }
    Ok(origins)
}

/// `unknown field `x`, expected one of `a`, `b`` -> (`x`, "a, b").
fn parse_unknown_field(message: &str) -> Option<(&str, String)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let known: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    let known = if known.is_empty() {
        "none".to_owned()
    } else {
        known.join(", ")
    };
    Some((field, known))
}

fn de_error(
    error: &serde_path_to_error::Error<serde_json::Error>,
    file: &Path,
    origins: &EnvOrigins,
) -> ConfigError {
    let path = error.path().to_string();
    let key = if path == "." { String::new() } else { path };
    let message = error.inner().to_string();
    let var = origins.var_for(&key).map(str::to_owned);

    if let Some((field, known)) = parse_unknown_field(&message) {
        // The path ends with the unknown field; make sure it does.
        let key = if key.ends_with(field) {
            key
        } else {
            join_key(&key, field)
        };
        // An override of `nope.deep` is reported as the unknown key `nope`.
        let var = var.or_else(|| origins.var_below(&key).map(str::to_owned));
        return match var {
            Some(var) => ConfigError::Env {
                var,
                key,
                reason: format!("unknown key (known keys: {known})"),
            },
            None => ConfigError::UnknownKey {
                file: file.to_path_buf(),
                key,
                known,
            },
        };
    }

    // Serde names Rust types; operators think in JSON.
    let message = ["usize", "u64", "u32"]
        .iter()
        .find_map(|ty| {
            message
                .strip_suffix(&format!("expected {ty}"))
                .map(|head| format!("{head}expected a non-negative integer"))
        })
        .unwrap_or(message);
    let is_plugin_version = key.starts_with("plugins[") && key.ends_with("].version");
    let reason = if is_plugin_version {
        format!("{message}; give a semantic version such as \"1.2.3\"")
    } else {
        message
    };
    match var {
        Some(var) => ConfigError::Env { var, key, reason },
        None => ConfigError::Invalid {
            file: file.to_path_buf(),
            key,
            reason,
        },
    }
}

fn de_socket_addr<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "{text:?} is not a socket address (expected IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080; host names are not resolved)"
        ))
    })
}

// ---------------------------------------------------------------------------
// Paths and URLs

fn resolve_path(base_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

/// `sqlite://PATH?QUERY` or `sqlite:PATH?QUERY` -> (PATH, "?QUERY").
fn split_sqlite_url(url: &str) -> Option<(&str, &str)> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    Some(match rest.find('?') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    })
}

fn is_sqlite_memory(path: &str, query: &str) -> bool {
    path.is_empty() || path.starts_with(":memory:") || query.contains("mode=memory")
}

fn redacted(secret: &str) -> &str {
    if secret.is_empty() { "" } else { "<redacted>" }
}

/// `postgres://user:pw@host/db` -> `postgres://user:<redacted>@host/db`,
/// the same mask as the other secrets in `Debug`.
fn redact_url_password(url: &str) -> String {
    plinth_package::db_url::redact_password(url, "<redacted>")
}

// ---------------------------------------------------------------------------
// Saving

/// A JSON object's members in file order, each value as its exact text.
struct RawMembers(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for RawMembers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> serde::de::Visitor<'de> for MembersVisitor {
            type Value = RawMembers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawMembers, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Box<RawValue>>()? {
                    members.push(member);
                }
                Ok(RawMembers(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

impl RawMembers {
    /// The value of the last member called `key` (JSON's last-one-wins,
    /// as the loader reads it).
    fn get(&self, key: &str) -> Option<&RawValue> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| &**v)
    }

    /// Sets the last member called `key` (the one the loader reads), or
    /// appends it.
    fn set(&mut self, key: &str, value: Box<RawValue>) {
        match self.0.iter_mut().rfind(|(k, _)| k == key) {
            Some(member) => member.1 = value,
            None => self.0.push((key.to_owned(), value)),
        }
    }

    /// The object laid out as [`render_object`] does, values as they were.
    fn render(&self, one_line: bool, indent: &str) -> String {
        let members: Vec<(String, String)> = self
            .0
            .iter()
            .map(|(k, v)| (k.clone(), v.get().to_owned()))
            .collect();
        render_object(&members, one_line, indent)
    }
}

/// The `plugins` list laid out from its entries' text, one entry a line.
fn render_plugin_list(entries: &[String]) -> String {
    if entries.is_empty() {
        "[]".to_owned()
    } else {
        format!("[\n    {}\n  ]", entries.join(",\n    "))
    }
}

/// The host's three fields of an entry, as JSON text.
fn host_fields(plugin: &PluginEntry) -> [(&'static str, String); 3] {
    [
        ("name", Value::String(plugin.name.clone()).to_string()),
        (
            "version",
            Value::String(plugin.version.to_string()).to_string(),
        ),
        ("enabled", plugin.enabled.to_string()),
    ]
}

/// Whether the file's entry already says what `plugin` says (an absent
/// `enabled` means true, as when loading).
fn entry_matches(entry: &RawMembers, plugin: &PluginEntry) -> bool {
    let version = entry
        .get("version")
        .and_then(|v| serde_json::from_str::<String>(v.get()).ok());
    let enabled = entry
        .get("enabled")
        .map_or(Some(true), |v| serde_json::from_str::<bool>(v.get()).ok());
    version.as_deref() == Some(plugin.version.to_string().as_str())
        && enabled == Some(plugin.enabled)
}

/// Lays out an object's members, one line (`{ "a": 1 }`) or one member a
/// line at `indent` (the object's own line indentation).
fn render_object(members: &[(String, String)], one_line: bool, indent: &str) -> String {
    if members.is_empty() {
        return "{}".to_owned();
    }
    let rendered: Vec<String> = members
        .iter()
        .map(|(key, value)| format!("{}: {value}", Value::String(key.clone())))
        .collect();
    if one_line {
        format!("{{ {} }}", rendered.join(", "))
    } else {
        format!(
            "{{\n{indent}  {}\n{indent}}}",
            rendered.join(&format!(",\n{indent}  "))
        )
    }
}

/// The entry the file has for an installed plugin, with the host's fields
/// set and every other member as it was.
fn updated_entry(raw: &RawValue, entry: &RawMembers, plugin: &PluginEntry) -> String {
    let mut members: Vec<(String, String)> = entry
        .0
        .iter()
        .map(|(k, v)| (k.clone(), v.get().to_owned()))
        .collect();
    for (key, value) in host_fields(plugin) {
        match members.iter_mut().rfind(|(k, _)| k == key) {
            Some(member) => member.1 = value,
            None => members.push((key.to_owned(), value)),
        }
    }
    render_object(&members, !raw.get().contains('\n'), "    ")
}

/// A new entry for a plugin the file does not list.
fn new_entry(plugin: &PluginEntry) -> String {
    let mut members: Vec<(String, String)> = host_fields(plugin)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let settings = serde_json::to_string_pretty(&plugin.settings)
        .unwrap_or_else(|_| "{}".to_owned())
        .replace('\n', "\n      ");
    members.push(("settings".to_owned(), settings));
    render_object(&members, false, "    ")
}

/// The file's text with its `plugins` list brought in line (see
/// [`Config::save_plugins`]), or `None` when it already is.
fn rewrite_plugins(
    text: &str,
    path: &Path,
    plugins: &[PluginEntry],
    forget: &[&str],
) -> Result<Option<String>, ConfigError> {
    let invalid = |key: &str, reason: String| ConfigError::Invalid {
        file: path.to_path_buf(),
        key: key.to_owned(),
        reason,
    };
    let document = parse_json(text, path)?;
    if !document.is_object() {
        return Err(invalid("", not_an_object_reason(&document)));
    }
    let mut top: RawMembers = serde_json::from_str(text)
        .map_err(|e| invalid("", format!("cannot read the members: {e}")))?;
    let listed: Vec<&RawValue> = match top.get("plugins") {
        None => Vec::new(),
        Some(raw) => serde_json::from_str(raw.get()).map_err(|_| {
            invalid(
                "plugins",
                "is not a list; make it a JSON array of { \"name\": …, \"version\": … } entries (the host did not change the file)".to_owned(),
            )
        })?,
    };

    let mut changed = top.get("plugins").is_none();
    let mut entries = Vec::with_capacity(listed.len() + plugins.len());
    let mut seen: Vec<&str> = Vec::new();
    for (i, raw) in listed.iter().enumerate() {
        let entry: RawMembers = serde_json::from_str(raw.get()).map_err(|_| {
            invalid(
                &format!("plugins[{i}]"),
                "is not an object { \"name\": …, \"version\": … } (the host did not change the file)".to_owned(),
            )
        })?;
        let name = entry
            .get("name")
            .and_then(|v| serde_json::from_str::<String>(v.get()).ok());
        let installed = name
            .as_deref()
            .and_then(|name| plugins.iter().find(|p| p.name == name));
        match (installed, name.as_deref()) {
            (Some(plugin), _) => {
                seen.push(&plugin.name);
                if entry_matches(&entry, plugin) {
                    entries.push(raw.get().to_owned());
                } else {
                    changed = true;
                    entries.push(updated_entry(raw, &entry, plugin));
                }
            }
            (None, Some(name)) if forget.contains(&name) => changed = true,
            (None, _) => entries.push(raw.get().to_owned()),
        }
    }
    for plugin in plugins.iter().filter(|p| !seen.contains(&p.name.as_str())) {
        changed = true;
        entries.push(new_entry(plugin));
    }
    if !changed {
        return Ok(None);
    }

    let array = RawValue::from_string(render_plugin_list(&entries))
        .map_err(|e| invalid("plugins", format!("cannot lay out the new list: {e}")))?;
    top.set("plugins", array);
    let new_text = format!("{}\n", top.render(false, ""));

    // The rewrite must change the host's fields and nothing else.
    changes_only(document, &new_text, path, "the plugins list", |doc| {
        if let Some(map) = doc.as_object_mut() {
            map.remove("plugins");
        }
    })?;
    Ok(Some(new_text))
}

/// Refuses a rewrite of `document` into `new_text` that changes anything
/// `strip` does not remove from both: the host writes its own fields and
/// must never touch what the operator wrote.
fn changes_only(
    mut before: Value,
    new_text: &str,
    path: &Path,
    what: &str,
    strip: impl Fn(&mut Value),
) -> Result<(), ConfigError> {
    let mut after = parse_json(new_text, path)?;
    strip(&mut before);
    strip(&mut after);
    if before != after {
        return Err(ConfigError::Invalid {
            file: path.to_path_buf(),
            key: String::new(),
            reason: format!(
                "rewriting {what} would change other keys; the host did not change the file"
            ),
        });
    }
    Ok(())
}

/// Runs `rewrite` on the file's current text and writes what it answers,
/// one writer per process at a time; another process saving in between is
/// caught by the compare-before-rename in [`write_atomic`] and the rewrite
/// starts again from the newer text. `None` from `rewrite` writes nothing.
fn save_with(
    path: &Path,
    key: &str,
    rewrite: impl Fn(&str) -> Result<Option<String>, ConfigError>,
) -> Result<(), ConfigError> {
    static SAVE_LOCK: Mutex<()> = Mutex::new(());
    let _guard = SAVE_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    const ATTEMPTS: usize = 5;
    for _ in 0..ATTEMPTS {
        let text = fs::read_to_string(path).map_err(|cause| ConfigError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        let Some(new_text) = rewrite(&text)? else {
            return Ok(());
        };
        if write_atomic(path, &new_text, &text)? {
            tracing::info!(path = %path.display(), key, "config: saved");
            return Ok(());
        }
    }
    Err(ConfigError::Invalid {
        file: path.to_path_buf(),
        key: key.to_owned(),
        reason: format!(
            "the file changed {ATTEMPTS} times while the host was updating it; left as it is (the database still holds the installed set)"
        ),
    })
}

/// The file's text with `changes` applied to plugin `plugin`'s `settings`
/// member (see [`Config::save_plugin_settings`]), or `None` when they
/// change nothing.
fn rewrite_plugin_settings(
    text: &str,
    path: &Path,
    plugin: &str,
    changes: &BTreeMap<String, Option<SettingValue>>,
) -> Result<Option<String>, ConfigError> {
    let invalid = |key: &str, reason: String| ConfigError::Invalid {
        file: path.to_path_buf(),
        key: key.to_owned(),
        reason,
    };
    let document = parse_json(text, path)?;
    let mut top: RawMembers =
        serde_json::from_str(text).map_err(|_| invalid("", not_an_object_reason(&document)))?;
    let no_entry = || {
        invalid(
            "plugins",
            format!(
                "has no entry for {plugin}; the host writes its settings into that entry (the host did not change the file)"
            ),
        )
    };
    let raw_list = top.get("plugins").ok_or_else(&no_entry)?;
    let listed: Vec<&RawValue> = serde_json::from_str(raw_list.get()).map_err(|_| {
        invalid(
            "plugins",
            "is not a list (the host did not change the file)".to_owned(),
        )
    })?;
    let mut found = None;
    let mut entries = Vec::with_capacity(listed.len());
    for (i, raw) in listed.iter().enumerate() {
        let mut entry: RawMembers = serde_json::from_str(raw.get()).map_err(|_| {
            invalid(
                &format!("plugins[{i}]"),
                "is not an object (the host did not change the file)".to_owned(),
            )
        })?;
        let name = entry
            .get("name")
            .and_then(|v| serde_json::from_str::<String>(v.get()).ok());
        if found.is_some() || name.as_deref() != Some(plugin) {
            entries.push(raw.get().to_owned());
            continue;
        }
        found = Some(i);
        let current: Map<String, Value> = match entry.get("settings") {
            None => Map::new(),
            Some(raw) => serde_json::from_str(raw.get()).map_err(|_| {
                invalid(
                    &format!("plugins[{i}].settings"),
                    "is not an object (the host did not change the file)".to_owned(),
                )
            })?,
        };
        let mut wanted = current.clone();
        for (key, value) in changes {
            match value {
                Some(value) => {
                    let value = serde_json::to_value(value).map_err(|e| {
                        invalid("plugins", format!("cannot lay out the settings: {e}"))
                    })?;
                    wanted.insert(key.clone(), value);
                }
                None => {
                    wanted.remove(key);
                }
            }
        }
        if current == wanted {
            return Ok(None);
        }
        let rendered = serde_json::to_string_pretty(&wanted)
            .unwrap_or_else(|_| "{}".to_owned())
            .replace('\n', "\n      ");
        let rendered = RawValue::from_string(rendered)
            .map_err(|e| invalid("plugins", format!("cannot lay out the settings: {e}")))?;
        entry.set("settings", rendered);
        entries.push(entry.render(false, "    "));
    }
    let Some(index) = found else {
        return Err(no_entry());
    };
    let array = RawValue::from_string(render_plugin_list(&entries))
        .map_err(|e| invalid("plugins", format!("cannot lay out the new list: {e}")))?;
    top.set("plugins", array);
    let new_text = format!("{}\n", top.render(false, ""));

    // The rewrite must change that one entry's settings and nothing else.
    changes_only(document, &new_text, path, "the plugin's settings", |doc| {
        if let Some(entry) = doc
            .get_mut("plugins")
            .and_then(|p| p.get_mut(index))
            .and_then(Value::as_object_mut)
        {
            entry.remove("settings");
        }
    })?;
    Ok(Some(new_text))
}

/// Replaces the file at `path` with `contents` if it still holds
/// `expected`; returns false (and writes nothing) if it does not.
fn write_atomic(path: &Path, contents: &str, expected: &str) -> Result<bool, ConfigError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // Replace the file a symlink points at, not the symlink.
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = target.file_name().map_or_else(
        || "config.json".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));

    let write = || -> io::Result<bool> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        if let Ok(meta) = fs::metadata(&target) {
            file.set_permissions(meta.permissions())?;
        }
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        drop(file);
        // An editor may have saved the file since it was read: then its
        // text wins and the caller starts again from it.
        if fs::read_to_string(&target)? != expected {
            fs::remove_file(&tmp)?;
            return Ok(false);
        }
        fs::rename(&tmp, &target)?;
        Ok(true)
    };
    let written = match write() {
        Ok(written) => written,
        Err(cause) => {
            let _ = fs::remove_file(&tmp);
            return Err(ConfigError::Io {
                path: target,
                cause,
            });
        }
    };
    // Make the rename durable; not every platform can open a directory.
    if written && let Ok(dir) = fs::File::open(&dir) {
        let _ = dir.sync_all();
    }
    Ok(written)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn base() -> PathBuf {
        PathBuf::from("/srv/plinth")
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_json_str(text, &base(), Vec::new())
    }

    fn parse_env(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_json_str(text, &base(), env(vars))
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    const FULL: &str = r#"{
  "mode": "production",
  "data_dir": "/var/lib/plinth",
  "public_dir": "web",
  "server": {
    "bind": "0.0.0.0:9090",
    "body_limit_bytes": 1048576,
    "shutdown_grace_secs": 3
  },
  "database": {
    "url": "postgres://plinth:hunter2@db.internal/plinth",
    "max_connections": 4,
    "connect_timeout_secs": 7,
    "schema_dir": "sql"
  },
  "admin": {
    "token": "Zq8vN3kLp0sXw7Rt", "password": "Pw9xT4mLq2sVn8Rk"
  },
  "vendor": {
    "endpoint": "wss://vendor.example.com/agent",
    "customer": "acme",
    "customer_token": "cust-4f9a8b7c6d5e4f3a",
    "public_key": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
  },
  "runtime": {
    "memory_limit_mib": 128,
    "call_timeout_ms": 500,
    "task_timeout_ms": 30000,
    "max_warm_instances": 2,
    "pooling": false
  },
  "plugins": [
    { "name": "hello", "version": "0.1.0", "enabled": true, "settings": { "greeting": "hi" } },
    { "name": "goods", "version": "1.2.3-beta.1" }
  ]
}
"#;

    #[test]
    fn defaults_load_from_empty_object() {
        let config = parse("{}").unwrap();
        let expected = Config {
            data_dir: base().join("data"),
            public_dir: base().join("public"),
            database: DatabaseConfig {
                url: "sqlite:///srv/plinth/data/plinth.db".to_owned(),
                schema_dir: PathBuf::new(),
                ..DatabaseConfig::default()
            },
            ..Config::default()
        };
        assert_eq!(config, expected);
        assert_eq!(config.mode, Mode::Dev);
        assert!(!config.is_production());
        assert_eq!(config.server.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.server.body_limit_bytes, 2_097_152);
        assert_eq!(config.runtime.memory_limit_mib, 64);
        assert!(config.runtime.pooling);
        assert!(config.plugins.is_empty());
        assert_eq!(
            config.database_path(),
            Some(PathBuf::from("/srv/plinth/data/plinth.db"))
        );
    }

    #[test]
    fn full_file() {
        let config = parse(FULL).unwrap();
        assert!(config.is_production());
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/plinth"));
        assert_eq!(config.public_dir, base().join("web"));
        assert_eq!(config.server.bind.to_string(), "0.0.0.0:9090");
        assert_eq!(config.server.body_limit_bytes, 1_048_576);
        assert_eq!(config.server.shutdown_grace(), Duration::from_secs(3));
        assert_eq!(
            config.database.url,
            "postgres://plinth:hunter2@db.internal/plinth"
        );
        assert_eq!(config.database.max_connections, 4);
        assert_eq!(config.database.connect_timeout_secs, 7);
        assert_eq!(config.database.schema_dir, base().join("sql"));
        assert_eq!(config.database_path(), None);
        assert!(config.vendor.is_enabled());
        assert_eq!(config.vendor.public_key, KEY);
        assert_eq!(config.runtime.memory_limit_mib, 128);
        assert_eq!(config.runtime.call_timeout(), Duration::from_millis(500));
        assert_eq!(config.runtime.task_timeout_ms, 30_000);
        assert_eq!(config.runtime.max_warm_instances, 2);
        assert!(!config.runtime.pooling);
        assert_eq!(config.plugins.len(), 2);
        let hello = &config.plugins[0];
        assert_eq!(hello.name, "hello");
        assert_eq!(hello.version, semver::Version::new(0, 1, 0));
        assert!(hello.enabled);
        assert_eq!(
            hello.settings.get("greeting"),
            Some(&SettingValue::from("hi"))
        );
        let goods = &config.plugins[1];
        assert!(goods.enabled, "enabled defaults to true");
        assert!(goods.settings.is_empty());
        assert_eq!(goods.version.to_string(), "1.2.3-beta.1");
    }

    #[test]
    fn env_overrides_string_number_bool_nested_and_data_dir() {
        let config = parse_env(
            r#"{ "server": { "body_limit_bytes": 5 }, "admin": { "token": "x" } }"#,
            &[
                ("PLINTH__SERVER__BIND", "0.0.0.0:1234"),
                ("PLINTH__SERVER__BODY_LIMIT_BYTES", "4096"),
                ("PLINTH__RUNTIME__POOLING", "false"),
                ("PLINTH__DATABASE__MAX_CONNECTIONS", "3"),
                ("PLINTH__DATA_DIR", "/var/lib/x"),
                ("PLINTH__ADMIN__TOKEN", "12345"),
                ("PLINTH__MODE", "dev"),
                ("PLINTH_LOG", "ignored"),
                ("HOME", "/root"),
            ],
        )
        .unwrap();
        assert_eq!(config.server.bind.to_string(), "0.0.0.0:1234");
        assert_eq!(config.server.body_limit_bytes, 4096);
        assert!(!config.runtime.pooling);
        assert_eq!(config.database.max_connections, 3);
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/x"));
        // A string key keeps the value verbatim even when it looks like JSON.
        assert_eq!(config.admin.token, "12345");
    }

    #[test]
    fn env_override_fixes_a_mistyped_file_value() {
        let config = parse_env(
            r#"{ "server": { "body_limit_bytes": "2MB" } }"#,
            &[("PLINTH__SERVER__BODY_LIMIT_BYTES", "1024")],
        )
        .unwrap();
        assert_eq!(config.server.body_limit_bytes, 1024);
    }

    #[test]
    fn env_override_of_plugins_as_a_whole() {
        let config = parse_env(
            "{}",
            &[(
                "PLINTH__PLUGINS",
                r#"[{"name":"hello","version":"0.2.0","enabled":false}]"#,
            )],
        )
        .unwrap();
        assert_eq!(config.plugins.len(), 1);
        assert!(!config.plugins[0].enabled);

        let e = parse_env("{}", &[("PLINTH__PLUGINS__0__NAME", "x")]).unwrap_err();
        assert!(matches!(e, ConfigError::Env { .. }));
        assert!(e.to_string().contains("PLINTH__PLUGINS"), "{e}");

        // A name, not an index: a plugin setting, kept for the plugin's
        // settings check and out of the document.
        let config = parse_env("{}", &[("PLINTH__PLUGINS__GOODS__API_KEY", "k")]).unwrap();
        assert_eq!(
            config.plugin_env.get("PLINTH__PLUGINS__GOODS__API_KEY"),
            Some(&"k".to_owned())
        );
        assert!(config.plugins.is_empty());

        let e = parse_env(
            "{}",
            &[("PLINTH__PLUGINS", r#"[{"name":"hello","version":"x"}]"#)],
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("PLINTH__PLUGINS (plugins[0].version): "),
            "{e}"
        );
    }

    #[test]
    fn env_override_with_unknown_key_names_the_variable() {
        let e = parse_env("{}", &[("PLINTH__SERVER__BINDD", "1.2.3.4:5")]).unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e, ConfigError::Env { ref var, ref key, .. } if var == "PLINTH__SERVER__BINDD" && key == "server.bindd")
        );
        assert!(
            text.starts_with("PLINTH__SERVER__BINDD (server.bindd): unknown key"),
            "{text}"
        );
        assert!(
            text.contains("bind, body_limit_bytes, shutdown_grace_secs, host_id"),
            "{text}"
        );

        let e = parse_env("{}", &[("PLINTH__NOPE__DEEP", "1")]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("PLINTH__NOPE__DEEP (nope): unknown key"),
            "{e}"
        );
    }

    #[test]
    fn env_override_with_bad_value_names_the_variable() {
        let e = parse_env("{}", &[("PLINTH__RUNTIME__CALL_TIMEOUT_MS", "soon")]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("PLINTH__RUNTIME__CALL_TIMEOUT_MS (runtime.call_timeout_ms): \"soon\" is not valid JSON"),
            "{e}"
        );
        let e = parse_env("{}", &[("PLINTH__RUNTIME__MEMORY_LIMIT_MIB", "-1")]).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "PLINTH__RUNTIME__MEMORY_LIMIT_MIB (runtime.memory_limit_mib): invalid value"
            ),
            "{e}"
        );
        // Validation failures of env-set values name the variable too.
        let e = parse_env("{}", &[("PLINTH__RUNTIME__MEMORY_LIMIT_MIB", "0")]).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "PLINTH__RUNTIME__MEMORY_LIMIT_MIB (runtime.memory_limit_mib): 0 is out of range"
            ),
            "{e}"
        );
        let e = parse_env("{}", &[("PLINTH__SERVER__BIND", "localhost:abc")]).unwrap_err();
        assert!(
            e.to_string().contains("PLINTH__SERVER__BIND (server.bind)"),
            "{e}"
        );
        let e = parse_env("{}", &[("PLINTH__MODE__X", "1")]).unwrap_err();
        assert!(
            e.to_string().contains("mode is a string, not a section"),
            "{e}"
        );
        let e = parse_env("{}", &[("PLINTH__SERVER____BIND", "1")]).unwrap_err();
        assert!(e.to_string().contains("malformed name"), "{e}");
    }

    #[test]
    fn unknown_key_in_file_names_the_key() {
        let e = parse(r#"{ "server": { "bindd": "1.2.3.4:5" } }"#).unwrap_err();
        assert!(matches!(e, ConfigError::UnknownKey { ref key, .. } if key == "server.bindd"));
        assert_eq!(
            e.to_string(),
            "config.json: unknown key \"server.bindd\" (known keys: bind, body_limit_bytes, shutdown_grace_secs, host_id); remove it or fix its spelling"
        );
        let text =
            err(r#"{ "plugins": [{ "name": "hello", "version": "1.0.0", "setting": {} }] }"#);
        assert!(
            text.contains("unknown key \"plugins[0].setting\""),
            "{text}"
        );
        let text = err(r#"{ "modee": "dev" }"#);
        assert!(
            text.contains("unknown key \"modee\" (known keys: mode, data_dir"),
            "{text}"
        );
    }

    #[test]
    fn wrong_type_names_the_key() {
        let text = err(r#"{ "server": { "body_limit_bytes": "2MB" } }"#);
        assert!(
            text.starts_with("config.json: server.body_limit_bytes: invalid type: string \"2MB\""),
            "{text}"
        );
        let text = err(r#"{ "server": [] }"#);
        assert!(
            text.starts_with("config.json: server: expected an object"),
            "{text}"
        );
        let text = err(r#"{ "mode": "prod" }"#);
        assert!(
            text.starts_with("config.json: mode: unknown variant `prod`"),
            "{text}"
        );
        let text = err("[]");
        assert!(text.contains("must be a JSON object"), "{text}");
        let text = err(r#"{ "plugins": ["hello"] }"#);
        assert!(
            text.starts_with("config.json: plugins[0]: expected an object"),
            "{text}"
        );
    }

    #[test]
    fn bad_bind_address() {
        let text = err(r#"{ "server": { "bind": "localhost:abc" } }"#);
        assert!(
            text.starts_with(
                "config.json: server.bind: \"localhost:abc\" is not a socket address (expected IP:PORT, e.g. 127.0.0.1:8080"
            ),
            "{text}"
        );
    }

    #[test]
    fn bad_semver_in_plugins() {
        let e = parse(r#"{ "plugins": [{ "name": "hello", "version": "1.0" }] }"#).unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { ref key, .. } if key == "plugins[0].version"));
        assert!(
            e.to_string()
                .starts_with("config.json: plugins[0].version: "),
            "{e}"
        );
        assert!(e.to_string().contains("semantic version"), "{e}");
        let text = err(r#"{ "plugins": [{ "name": "hello" }] }"#);
        assert!(
            text.contains("plugins[0]: missing field `version`"),
            "{text}"
        );
    }

    #[test]
    fn duplicate_and_invalid_plugin_names() {
        let text = err(
            r#"{ "plugins": [{ "name": "hello", "version": "1.0.0" }, { "name": "hello", "version": "2.0.0" }] }"#,
        );
        assert!(
            text.starts_with(
                "config.json: plugins[1].name: \"hello\" is listed twice (also plugins[0])"
            ),
            "{text}"
        );
        for bad in [
            "Hello",
            "h",
            "1abc",
            "a_b",
            "a-very-long-plugin-name-that-goes-past-40-chars",
        ] {
            let text = err(&format!(
                r#"{{ "plugins": [{{ "name": "{bad}", "version": "1.0.0" }}] }}"#
            ));
            assert!(text.contains("plugins[0].name"), "{bad}: {text}");
        }
        assert!(is_valid_plugin_name("ab"));
        assert!(is_valid_plugin_name("http-hello2"));
    }

    #[test]
    fn plugin_names_follow_the_manifest_rule() {
        for bad in ["goods-", "goods--acme"] {
            let text = err(&format!(
                r#"{{ "plugins": [{{ "name": "{bad}", "version": "1.0.0" }}] }}"#
            ));
            assert!(
                text.contains("plugins[0].name") && text.contains("is not a valid plugin name"),
                "{bad}: {text}"
            );
            assert!(
                plinth_package::manifest::Manifest::parse(&format!(
                    "name = \"{bad}\"\nversion = \"1.0.0\"\nhost_api = \"^0.1\"\n"
                ))
                .is_err()
            );
        }
    }

    #[test]
    fn placeholder_secret_refused_in_production() {
        let e =
            parse(r#"{ "mode": "production", "admin": { "token": "change-me" } }"#).unwrap_err();
        assert!(matches!(e, ConfigError::Placeholder { ref key, .. } if key == "admin.token"));
        assert!(
            e.to_string().starts_with(
                "config.json: admin.token is a placeholder (\"change-me\"); production mode needs a real secret: set PLINTH__ADMIN__TOKEN"
            ),
            "{e}"
        );
        // The default dev token is a placeholder too.
        let text = err(r#"{ "mode": "production" }"#);
        assert!(
            text.contains("admin.token is a placeholder (\"dev-admin-token\")"),
            "{text}"
        );
        for bad in [
            "",
            "secret",
            "PASSWORD",
            "__MUST_SET__",
            "change-me-please-now-ok",
            "dev-0123456789abcdef",
        ] {
            let text = err(&format!(
                r#"{{ "mode": "production", "admin": {{ "token": "{bad}" }} }}"#
            ));
            assert!(text.contains("admin.token"), "{bad}: {text}");
        }
        let text = err(r#"{ "mode": "production", "admin": { "token": "short-but-real" } }"#);
        assert!(
            text.contains("admin.token is too short (14 characters"),
            "{text}"
        );
        assert!(
            !text.contains("short-but-real"),
            "a too-short secret is not echoed: {text}"
        );

        // The vendor token is checked only when the agent is on.
        let vendor = format!(
            r#"{{ "mode": "production", "admin": {{ "token": "Zq8vN3kLp0sXw7Rt", "password": "Pw9xT4mLq2sVn8Rk" }},
                 "vendor": {{ "endpoint": "wss://v.example.com", "customer": "acme", "customer_token": "changeme", "public_key": "{KEY}" }} }}"#
        );
        let e = parse(&vendor).unwrap_err();
        assert!(
            matches!(e, ConfigError::Placeholder { ref key, .. } if key == "vendor.customer_token")
        );
        assert!(
            e.to_string().contains("PLINTH__VENDOR__CUSTOMER_TOKEN"),
            "{e}"
        );
        parse(r#"{ "mode": "production", "admin": { "token": "Zq8vN3kLp0sXw7Rt", "password": "Pw9xT4mLq2sVn8Rk" }, "vendor": { "customer_token": "x" } }"#)
            .unwrap();

        // A placeholder set from the environment names the variable.
        let e = parse_env(
            r#"{ "mode": "production" }"#,
            &[("PLINTH__ADMIN__TOKEN", "token")],
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("PLINTH__ADMIN__TOKEN (admin.token): is a placeholder"),
            "{e}"
        );
        // And a real one from the environment fixes the file's placeholder.
        parse_env(
            r#"{ "mode": "production", "admin": { "token": "change-me", "password": "Pw9xT4mLq2sVn8Rk" } }"#,
            &[("PLINTH__ADMIN__TOKEN", "Zq8vN3kLp0sXw7Rt")],
        )
        .unwrap();
        // The seeded administrator's password is held to the same rule,
        // named by its key.
        let e = parse(r#"{ "mode": "production", "admin": { "token": "Zq8vN3kLp0sXw7Rt" } }"#)
            .unwrap_err();
        assert!(
            matches!(e, ConfigError::Placeholder { ref key, .. } if key == "admin.password"),
            "{e}"
        );
        let e = parse_env(
            r#"{ "mode": "production", "admin": { "token": "Zq8vN3kLp0sXw7Rt" } }"#,
            &[("PLINTH__ADMIN__PASSWORD", "admin")],
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("PLINTH__ADMIN__PASSWORD (admin.password): is a placeholder"),
            "{e}"
        );
    }

    #[test]
    fn placeholder_secret_accepted_in_dev() {
        let config = parse(r#"{ "mode": "dev", "admin": { "token": "change-me" } }"#).unwrap();
        assert_eq!(config.admin.token, "change-me");
        parse(r#"{ "admin": { "token": "" } }"#).unwrap();
    }

    #[test]
    fn vendor_endpoint_rules() {
        let text = err(r#"{ "vendor": { "endpoint": "wss://vendor.example.com/agent" } }"#);
        assert!(
            text.starts_with("config.json: vendor.public_key: is empty but vendor.endpoint is set"),
            "{text}"
        );
        let text = err(&format!(
            r#"{{ "vendor": {{ "endpoint": "https://vendor.example.com", "public_key": "{KEY}" }} }}"#
        ));
        assert!(
            text.contains("vendor.endpoint: \"https://vendor.example.com\" is not a WebSocket URL"),
            "{text}"
        );
        let text = err(&format!(
            r#"{{ "vendor": {{ "endpoint": "ws:///path", "public_key": "{KEY}" }} }}"#
        ));
        assert!(text.contains("has no valid host"), "{text}");
        let text = err(r#"{ "vendor": { "public_key": "abc" } }"#);
        assert!(text.contains("vendor.public_key: must be the vendor's ed25519 public key as 64 hex characters (got 3"), "{text}");
        let text = err(&format!(
            r#"{{ "vendor": {{ "endpoint": "ws://127.0.0.1:9000/agent", "public_key": "{KEY}" }} }}"#
        ));
        assert!(text.contains("vendor.customer: is empty"), "{text}");
        let config = parse(&format!(
            r#"{{ "vendor": {{ "endpoint": "ws://127.0.0.1:9000/agent", "customer": "acme",
                 "customer_token": "t", "public_key": "{}" }} }}"#,
            KEY.to_ascii_uppercase()
        ))
        .unwrap();
        assert!(config.vendor.is_enabled());
        assert_eq!(config.vendor.endpoint_host(), Some("127.0.0.1"));

        // Plain ws:// leaves the machine only in dev mode.
        let remote = |mode: &str, endpoint: &str| {
            format!(
                r#"{{ "mode": "{mode}", "admin": {{ "token": "Zq8vN3kLp0sXw7Rt", "password": "Pw9xT4mLq2sVn8Rk" }},
                   "vendor": {{ "endpoint": "{endpoint}", "customer": "acme",
                   "customer_token": "Vq8vN3kLp0sXw7Rt4", "public_key": "{KEY}" }} }}"#
            )
        };
        let text = err(&remote("production", "ws://vendor.example.com/api/agent"));
        assert!(text.contains("vendor.endpoint: \"ws://vendor.example.com/api/agent\" is plain ws:// to another machine"), "{text}");
        parse(&remote("dev", "ws://vendor.example.com/api/agent")).unwrap();
        parse(&remote("production", "ws://[::1]:7400/api/agent")).unwrap();
        parse(&remote("production", "ws://localhost:7400/api/agent")).unwrap();
        parse(&remote("production", "wss://vendor.example.com/api/agent")).unwrap();
    }

    #[test]
    fn other_validation_rules() {
        let text = err(r#"{ "database": { "url": "oracle://scott:tiger@db/orcl" } }"#);
        assert!(
            text.starts_with("config.json: database.url: unsupported scheme \"oracle\""),
            "{text}"
        );
        assert!(
            !text.contains("tiger"),
            "the URL's password is not echoed: {text}"
        );
        for (json, key) in [
            (
                r#"{ "database": { "max_connections": 0 } }"#,
                "database.max_connections",
            ),
            (
                r#"{ "runtime": { "memory_limit_mib": 4097 } }"#,
                "runtime.memory_limit_mib",
            ),
            (
                r#"{ "runtime": { "call_timeout_ms": 9 } }"#,
                "runtime.call_timeout_ms",
            ),
            (
                r#"{ "runtime": { "max_warm_instances": 0 } }"#,
                "runtime.max_warm_instances",
            ),
            (
                r#"{ "database": { "url": "postgres://" } }"#,
                "database.url",
            ),
            (r#"{ "database": { "url": "sqlite://" } }"#, "database.url"),
        ] {
            let e = parse(json).unwrap_err();
            assert!(
                matches!(e, ConfigError::Invalid { key: ref k, .. } if k == key),
                "{json}: {e}"
            );
        }
        parse(r#"{ "runtime": { "memory_limit_mib": 4096 } }"#).unwrap();
        for url in [
            "postgresql://h/db",
            "mysql://h/db",
            "mariadb://u:p@h:3306/db",
        ] {
            let config = parse(&format!(r#"{{ "database": {{ "url": "{url}" }} }}"#)).unwrap();
            assert_eq!(config.database.url, url);
        }
    }

    #[test]
    fn sqlite_urls() {
        let config = parse(r#"{ "database": { "url": "sqlite:///abs/x.db?mode=rwc" } }"#).unwrap();
        assert_eq!(config.database.url, "sqlite:///abs/x.db?mode=rwc");
        assert_eq!(config.database_path(), Some(PathBuf::from("/abs/x.db")));
        let config = parse(r#"{ "database": { "url": "sqlite:rel.db?mode=rwc" } }"#).unwrap();
        assert_eq!(config.database.url, "sqlite:///srv/plinth/rel.db?mode=rwc");
        let config = parse(r#"{ "database": { "url": "sqlite::memory:" } }"#).unwrap();
        assert_eq!(config.database.url, "sqlite::memory:");
        assert_eq!(config.database_path(), None);
    }

    #[test]
    fn relative_paths_resolve_against_the_config_dir() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(
            &path,
            r#"{ "data_dir": "state", "public_dir": "/opt/web", "database": { "url": "sqlite://state/p.db", "schema_dir": "../sql" } }"#,
        )
        .unwrap();
        let config = Config::load_with_env(&path, Vec::new()).unwrap();
        let root = std::path::absolute(dir.path()).unwrap();
        assert_eq!(config.data_dir, root.join("state"));
        assert_eq!(config.public_dir, PathBuf::from("/opt/web"));
        assert_eq!(config.database.schema_dir, root.join("../sql"));
        assert_eq!(config.database_path(), Some(root.join("state/p.db")));
        assert_eq!(
            config.database.url,
            format!("sqlite://{}", root.join("state/p.db").display())
        );
    }

    #[test]
    fn missing_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.json");
        let e = Config::load_with_env(&path, Vec::new()).unwrap_err();
        assert!(matches!(e, ConfigError::Io { .. }));
        let text = e.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("copy config.json"), "{text}");
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let e = parse("{\n  \"mode\": \"dev\",\n  \"data_dir\": ,\n}").unwrap_err();
        let ConfigError::Syntax { line, column, .. } = &e else {
            panic!("expected a syntax error, got {e:?}");
        };
        assert_eq!((*line, *column), (3, 15));
        let text = e.to_string();
        assert!(
            text.starts_with("config.json:3:15: invalid JSON: expected value;"),
            "{text}"
        );
    }

    #[test]
    fn save_plugin_settings_changes_the_named_keys_of_that_entry_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let head = "{\n  \"mode\": \"dev\",\n  \"server\": {\"bind\":\"127.0.0.1:9999\"},\n  \"plugins\": ";
        let other = "{\"name\":\"hello\",\"version\":\"0.1.0\",\"settings\":{\"greeting\":\"hi\"}}";
        let tail = ",\n  \"admin\": { \"token\": \"operator-token\" }\n}\n";
        let goods = "{\"name\":\"goods\",\"version\":\"1.0.0\",\"enabled\":false,\"settings\":{\"key\":{\"file\":\"/run/k\"}}}";
        fs::write(&path, format!("{head}[ {other}, {goods} ]{tail}")).unwrap();

        let changes = BTreeMap::from([
            ("page_size".to_owned(), Some(SettingValue::Int(50))),
            ("verbose".to_owned(), Some(SettingValue::Bool(true))),
            ("absent".to_owned(), None),
        ]);
        Config::save_plugin_settings(&path, "goods", &changes).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(head), "{text}");
        assert!(text.ends_with(tail), "{text}");
        assert!(
            text.contains(other),
            "the other entry keeps its text: {text}"
        );
        let config = Config::load_with_env(&path, Vec::new()).unwrap();
        let entry = config.plugins.iter().find(|p| p.name == "goods").unwrap();
        let expected = BTreeMap::from([
            ("page_size".to_owned(), SettingValue::Int(50)),
            (
                "key".to_owned(),
                SettingValue::File {
                    file: "/run/k".into(),
                },
            ),
            ("verbose".to_owned(), SettingValue::Bool(true)),
        ]);
        assert_eq!(entry.settings, expected, "the key not named stays");
        assert!(!entry.enabled, "its other members stay");

        // Saving the same again writes nothing; a plugin without an entry
        // is refused and the file left alone.
        Config::save_plugin_settings(&path, "goods", &changes).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        let e = Config::save_plugin_settings(&path, "absent", &changes).unwrap_err();
        assert!(e.to_string().contains("no entry for absent"), "{e}");
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn save_plugins_preserves_other_keys_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let head = "{\n  \"mode\": \"dev\",\n  \"server\": {\"bind\":\"127.0.0.1:9999\",   \"shutdown_grace_secs\": 1},\n  \"plugins\": ";
        let tail = ",\n  \"admin\": { \"token\": \"operator-token\" }\n}\n";
        fs::write(
            &path,
            format!("{head}[ {{\"name\":\"old\",\"version\":\"0.0.1\"}} ]{tail}"),
        )
        .unwrap();

        let mut settings = BTreeMap::new();
        settings.insert("greeting".to_owned(), "hi \"there\"".into());
        let plugins = vec![
            PluginEntry {
                name: "hello".to_owned(),
                version: semver::Version::new(0, 1, 0),
                enabled: true,
                settings,
            },
            PluginEntry {
                name: "goods".to_owned(),
                version: semver::Version::parse("2.0.0-rc.1").unwrap(),
                enabled: false,
                settings: BTreeMap::new(),
            },
        ];
        Config::save_plugins(&path, &plugins, &["old"]).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(head), "{text}");
        assert!(text.ends_with(tail), "{text}");
        assert!(
            text.contains("\n    {\n      \"name\": \"hello\",\n"),
            "{text}"
        );
        let config = Config::load_with_env(&path, Vec::new()).unwrap();
        assert_eq!(config.plugins, plugins);
        assert_eq!(config.server.bind.to_string(), "127.0.0.1:9999");
        assert_eq!(config.admin.token, "operator-token");
        // No temp files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

        // Saving an empty list and again a list round-trips.
        Config::save_plugins(&path, &[], &["hello", "goods"]).unwrap();
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .contains("\"plugins\": []")
        );
        Config::save_plugins(&path, &plugins[..1], &[]).unwrap();
        assert_eq!(
            Config::load_with_env(&path, Vec::new()).unwrap().plugins,
            plugins[..1]
        );
    }

    #[test]
    fn save_plugins_adds_the_key_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let plugins = vec![PluginEntry {
            name: "hello".to_owned(),
            version: semver::Version::new(1, 0, 0),
            enabled: true,
            settings: BTreeMap::new(),
        }];
        for original in [
            "{}",
            "{ \"mode\": \"dev\" }\n",
            "{\n  \"server\": { \"bind\": \"127.0.0.1:1\" }\n}\n",
        ] {
            fs::write(&path, original).unwrap();
            Config::save_plugins(&path, &plugins, &[]).unwrap();
            let config = Config::load_with_env(&path, Vec::new()).unwrap();
            assert_eq!(config.plugins, plugins, "{original}");
        }
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(
                "{\n  \"server\": { \"bind\": \"127.0.0.1:1\" },\n  \"plugins\": [\n    {\n"
            ),
            "{text}"
        );

        // Invalid entries are refused before anything is written.
        let dup = vec![plugins[0].clone(), plugins[0].clone()];
        let e = Config::save_plugins(&path, &dup, &[]).unwrap_err();
        assert!(e.to_string().contains("plugins[1].name"), "{e}");
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn debug_redacts_secrets() {
        let config = parse(FULL).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("Zq8vN3kLp0sXw7Rt"), "{debug}");
        assert!(!debug.contains("cust-4f9a8b7c6d5e4f3a"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert!(
            debug.contains("postgres://plinth:<redacted>@db.internal/plinth"),
            "{debug}"
        );
        let empty = format!("{:?}", VendorConfig::default());
        assert!(!empty.contains("<redacted>"), "{empty}");
    }
}
