//! The plugin manifest, `plugin.toml`.
//!
//! [`Manifest::parse`] is the only validated way in: it refuses unknown
//! fields and wrong types, fills defaults (`route_prefix`,
//! `capabilities.table_prefix`) and checks every cross-reference (menu
//! parents and permissions, dependencies, unique ids). Every error names the
//! field path (`tasks[1].cron`, `depends.hello`, `version`) and says in plain
//! words what is wrong.
//!
//! The `Deserialize` impl on [`Manifest`] exists so the host can read back a
//! manifest it stored as JSON after validating it; it does not validate.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use crate::task_policy::{self, Concurrency, Missed};
use semver::{Version, VersionReq};
use serde::{Deserialize, Serialize};

use crate::access::{self, Button, Route};
use crate::limits::{RouteLimit, validate_limits};
use crate::outbound::HostPattern;
use crate::plugin_files::{DEFAULT_FILES_QUOTA_MB, Upload, validate_quota, validate_uploads};
use crate::settings::{SettingSpec, validate_settings};

/// Table prefixes a plugin may never have: they would reach the database's
/// own catalog or the host's tables.
pub const RESERVED_TABLE_PREFIXES: &[&str] = &["sqlite_", "pg_", "plinth_"];

/// What a package contains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PackageKind {
    /// A WebAssembly component (`plugin.wasm`) plus optional assets.
    #[default]
    Plugin,
    /// Assets only: no `plugin.wasm`, no world, tasks or events.
    Static,
}

/// Which WIT world the plugin component implements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginWorld {
    /// The `plinth:plugin` world.
    #[default]
    Plinth,
    /// A standard `wasi:http/incoming-handler` component.
    WasiHttp,
}

/// A validated `plugin.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: Version,
    #[serde(default)]
    pub kind: PackageKind,
    #[serde(default)]
    pub world: PluginWorld,
    #[serde(default)]
    pub description: String,
    /// The host API range the plugin needs; `None` only for static packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_api: Option<VersionReq>,
    /// Set on a per-customer fork: the name of the plugin it was forked from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<String>,
    /// Served at `/p/<route_prefix>/`; defaults to `name`.
    pub route_prefix: String,
    #[serde(default)]
    pub depends: BTreeMap<String, VersionReq>,
    pub capabilities: Capabilities,
    #[serde(default)]
    pub menus: Vec<Menu>,
    #[serde(default)]
    pub permissions: Vec<Permission>,
    /// Button codes the plugin checks (see [`crate::access`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Button>,
    /// What each API route needs; an undeclared route is denied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub tasks: Vec<Task>,
    #[serde(default)]
    pub events: Events,
    /// Per-route rate limits (`[[limits]]`, see [`crate::limits`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<RouteLimit>,
    /// Typed settings the operator fills in (`crate::settings`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<SettingSpec>,
    /// Routes whose body the host stores as a file (`crate::plugin_files`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uploads: Vec<Upload>,
}

/// What the plugin may reach outside its own code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Every table the plugin uses starts with this prefix. Defaults to the
    /// name with `-` replaced by `_`, plus a trailing `_`.
    pub table_prefix: String,
    /// Hosts the plugin may call, as [`crate::outbound::HostPattern`]s
    /// (`[scheme://]host[:port]`, `*.example.com`).
    #[serde(default)]
    pub outbound_hosts: Vec<String>,
    /// How much its files under `data/files/<name>/` may take, in MiB.
    #[serde(default = "default_files_quota_mb")]
    pub files_quota_mb: u32,
}

fn default_files_quota_mb() -> u32 {
    DEFAULT_FILES_QUOTA_MB
}

/// An entry in the host's navigation menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Menu {
    pub id: String,
    pub title: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default)]
    pub order: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<String>,
}

/// A permission the plugin declares, e.g. `goods.view`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    pub code: String,
    pub title: String,
    #[serde(default)]
    pub default_roles: Vec<String>,
}

/// A scheduled task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub name: String,
    pub title: String,
    /// A `cron` crate expression with 6 or 7 fields (seconds first).
    pub cron: String,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u32,
    #[serde(default)]
    pub missed: Missed,
    #[serde(default)]
    pub concurrency: Concurrency,
    /// Shortest time between the starts of two runs; 0 means no limit.
    #[serde(default)]
    pub min_interval_secs: u32,
}

/// Events the plugin listens to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Events {
    #[serde(default)]
    pub subscribe: Vec<String>,
    /// Deliver each topic's events in publishing order (the default): a
    /// failing event holds back the later ones of its topic until it is
    /// delivered or dead. `false` lets them pass it.
    #[serde(default = "ordered_by_default")]
    pub ordered: bool,
}

fn ordered_by_default() -> bool {
    true
}

impl Default for Events {
    fn default() -> Self {
        Self {
            subscribe: Vec::new(),
            ordered: true,
        }
    }
}

/// Default task timeout in seconds.
pub const DEFAULT_TASK_TIMEOUT_SECS: u32 = 60;
/// Longest task timeout in seconds.
pub const MAX_TASK_TIMEOUT_SECS: u32 = 3600;

fn default_timeout_secs() -> u32 {
    DEFAULT_TASK_TIMEOUT_SECS
}

/// Why a manifest was refused. Display is `<field>: <reason>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The TOML did not parse, or a value has the wrong type or name.
    #[error("{field}: {reason}")]
    Syntax {
        field: String,
        reason: String,
        /// 1-based line of the problem, when the TOML parser knows it.
        line: Option<usize>,
    },
    /// The TOML is well formed but a value breaks a manifest rule.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl ManifestError {
    /// The field path the error is about, e.g. `tasks[1].cron`.
    pub fn field(&self) -> &str {
        match self {
            ManifestError::Syntax { field, .. } | ManifestError::Invalid { field, .. } => field,
        }
    }

    /// The reason, without the field path.
    pub fn reason(&self) -> &str {
        match self {
            ManifestError::Syntax { reason, .. } | ManifestError::Invalid { reason, .. } => reason,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ManifestError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

// The shape of plugin.toml as written, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    version: String,
    #[serde(default)]
    kind: PackageKind,
    #[serde(default)]
    world: PluginWorld,
    #[serde(default)]
    description: String,
    host_api: Option<String>,
    forked_from: Option<String>,
    route_prefix: Option<String>,
    #[serde(default)]
    depends: BTreeMap<String, String>,
    #[serde(default)]
    capabilities: RawCapabilities,
    #[serde(default)]
    menus: Vec<Menu>,
    #[serde(default)]
    permissions: Vec<Permission>,
    #[serde(default)]
    buttons: Vec<Button>,
    #[serde(default)]
    routes: Vec<Route>,
    #[serde(default)]
    tasks: Vec<Task>,
    #[serde(default)]
    events: Events,
    #[serde(default)]
    limits: Vec<RouteLimit>,
    #[serde(default)]
    settings: Vec<SettingSpec>,
    #[serde(default)]
    uploads: Vec<Upload>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCapabilities {
    table_prefix: Option<String>,
    #[serde(default)]
    outbound_hosts: Vec<String>,
    files_quota_mb: Option<u32>,
}

impl Manifest {
    /// Parses and validates `plugin.toml` text.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let raw = deserialize_raw(text)?;
        validate(raw)
    }

    /// Serializes the manifest back to TOML; the result parses to an equal
    /// manifest.
    pub fn to_toml(&self) -> String {
        // Serializing plain strings, integers and tables cannot fail.
        toml::to_string(self).unwrap_or_else(|e| format!("# could not serialize manifest: {e}\n"))
    }

    /// Whether a host implementing `host_api` satisfies this manifest's
    /// `host_api` range. Static packages (no range) run on any host.
    pub fn host_api_allows(&self, host_api: &Version) -> bool {
        self.host_api
            .as_ref()
            .is_none_or(|req| req.matches(host_api))
    }
}

fn deserialize_raw(text: &str) -> Result<RawManifest, ManifestError> {
    let line_of = |err: &toml::de::Error| {
        err.span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1)
    };
    let deserializer = toml::Deserializer::parse(text).map_err(|e| ManifestError::Syntax {
        field: "plugin.toml".to_string(),
        reason: with_line(e.message(), line_of(&e)),
        line: line_of(&e),
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner
            .message()
            .trim()
            .replace("expected i64", "expected an integer")
            .replace("expected u32", "expected a whole number from 0 to 4294967295");
        let line = line_of(&inner);
        let base = if path == "." { String::new() } else { path };
        let (field, reason) = match unknown_field(&message) {
            Some(unknown) => (
                // serde_path_to_error may or may not have pushed the unknown
                // key onto the path already.
                if base == unknown || base.ends_with(&format!(".{unknown}")) {
                    base.clone()
                } else {
                    join_path(&base, &unknown)
                },
                format!("unknown field `{unknown}` (check the spelling; plugin.toml refuses fields it does not know)"),
            ),
            None => {
                let reason = match missing_field(&message) {
                    Some(missing) => {
                        return ManifestError::Syntax {
                            field: join_path(&base, &missing),
                            reason: "is required but missing".to_string(),
                            line,
                        };
                    }
                    None => message,
                };
                (
                    if base.is_empty() {
                        "plugin.toml".to_string()
                    } else {
                        base
                    },
                    reason,
                )
            }
        };
        ManifestError::Syntax {
            field,
            reason: with_line(&reason, line),
            line,
        }
    })
}

fn with_line(reason: &str, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{reason} (line {line})"),
        None => reason.to_string(),
    }
}

fn join_path(base: &str, field: &str) -> String {
    if base.is_empty() {
        field.to_string()
    } else {
        format!("{base}.{field}")
    }
}

/// Extracts `x` from serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// Extracts `x` from serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

/// The plugin-name rule: `^[a-z][a-z0-9-]{1,39}$`, no trailing `-`, no
/// `--`; `None` when `value` follows it, else what is wrong, to follow
/// "it". Also the rule for route prefixes, task names and package names in
/// deployment manifests, and the host's config.json checks plugin names
/// with it.
pub fn name_problem(value: &str) -> Option<&'static str> {
    let bytes = value.as_bytes();
    if !(2..=40).contains(&bytes.len()) {
        return Some("must be 2 to 40 characters long");
    }
    if !bytes[0].is_ascii_lowercase() {
        return Some("must start with a lowercase letter a-z");
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    {
        return Some("may only contain lowercase letters a-z, digits 0-9 and '-'");
    }
    if value.ends_with('-') {
        return Some("must not end with '-'");
    }
    if value.contains("--") {
        return Some("must not contain \"--\"");
    }
    None
}

fn check_name(field: &str, value: &str) -> Result<(), ManifestError> {
    match name_problem(value) {
        Some(problem) => Err(ManifestError::invalid(
            field,
            format!(
                "{value:?} is not a valid name: it {problem} (e.g. \"goods\" or \"goods-acme\")"
            ),
        )),
        None => Ok(()),
    }
}

/// Dotted lowercase names: `^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$`.
fn is_dotted(value: &str) -> bool {
    let parts: Vec<&str> = value.split('.').collect();
    parts.len() >= 2
        && parts.iter().all(|p| {
            let b = p.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_lowercase()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// The reserved prefix `prefix` starts with, if any.
pub fn reserved_prefix(prefix: &str) -> Option<&'static str> {
    RESERVED_TABLE_PREFIXES
        .iter()
        .copied()
        .find(|r| prefix.starts_with(r))
}

/// The table-prefix rule: shaped like `goods_` and not reserved. The host's
/// SQL scope guard refuses any other prefix with it.
pub fn is_plugin_table_prefix(prefix: &str) -> bool {
    is_table_prefix(prefix) && reserved_prefix(prefix).is_none()
}

/// `^[a-z][a-z0-9_]{0,30}_$`
fn is_table_prefix(value: &str) -> bool {
    let b = value.as_bytes();
    (2..=32).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && value.ends_with('_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// `^[a-z][a-z0-9.-]*$`
fn is_menu_id(value: &str) -> bool {
    let b = value.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
}

/// A host name with an optional `:port`; no scheme, path or wildcard.
fn validate(raw: RawManifest) -> Result<Manifest, ManifestError> {
    check_name("name", &raw.name)?;
    let name = raw.name;

    let version = Version::parse(&raw.version).map_err(|_| {
        ManifestError::invalid(
            "version",
            format!(
                "{:?} is not a valid semver version (expected MAJOR.MINOR.PATCH, e.g. 1.0.0)",
                raw.version
            ),
        )
    })?;

    let host_api = match (&raw.host_api, raw.kind) {
        (Some(text), _) => Some(parse_req("host_api", text)?),
        (None, PackageKind::Static) => None,
        (None, PackageKind::Plugin) => {
            return Err(ManifestError::invalid(
                "host_api",
                "is required for kind = \"plugin\": the range of host API versions the plugin works with, e.g. \"^0.1\"",
            ));
        }
    };

    if let Some(fork) = &raw.forked_from {
        check_name("forked_from", fork)?;
        if *fork == name {
            return Err(ManifestError::invalid(
                "forked_from",
                format!(
                    "{fork:?} is the plugin's own name; a fork must have a different name from the plugin it was forked from"
                ),
            ));
        }
    }

    let route_prefix = raw.route_prefix.unwrap_or_else(|| name.clone());
    if let Some(problem) = name_problem(&route_prefix) {
        return Err(ManifestError::invalid(
            "route_prefix",
            format!("{route_prefix:?} is not a valid route prefix: it {problem}"),
        ));
    }

    let mut depends = BTreeMap::new();
    for (dep, range) in &raw.depends {
        let field = format!("depends.{dep}");
        check_name(&field, dep)?;
        if *dep == name {
            return Err(ManifestError::invalid(
                field,
                "a plugin cannot depend on itself",
            ));
        }
        depends.insert(dep.clone(), parse_req(&field, range)?);
    }

    let capabilities = validate_capabilities(&name, raw.capabilities)?;
    validate_permissions(&name, &raw.permissions)?;
    validate_buttons(&name, &raw.buttons, &raw.permissions, &raw.menus)?;
    let declared = |code: &str| {
        raw.permissions.iter().any(|p| p.code == code) || raw.buttons.iter().any(|b| b.code == code)
    };
    validate_menus(&raw.menus, &declared)?;
    if let Some((field, reason)) = access::routes_problem(&raw.routes, declared) {
        return Err(ManifestError::invalid(field, reason));
    }
    validate_tasks(&raw.tasks)?;
    validate_limits(&raw.limits)?;
    validate_settings(&raw.settings)?;
    validate_uploads(&raw.uploads)?;
    for (i, topic) in raw.events.subscribe.iter().enumerate() {
        if !is_dotted(topic) {
            return Err(ManifestError::invalid(
                format!("events.subscribe[{i}]"),
                format!(
                    "{topic:?} is not a valid event topic: expected dotted lowercase names like \"goods.stock-low\""
                ),
            ));
        }
    }

    if raw.kind == PackageKind::Static {
        if !raw.tasks.is_empty() {
            return Err(ManifestError::invalid(
                "tasks",
                "a static package has no plugin.wasm, so it cannot declare tasks",
            ));
        }
        if !raw.events.subscribe.is_empty() {
            return Err(ManifestError::invalid(
                "events.subscribe",
                "a static package has no plugin.wasm, so it cannot subscribe to events",
            ));
        }
    }

    let (permissions, routes) = legacy_access(
        &name,
        raw.kind,
        host_api.as_ref(),
        raw.permissions,
        raw.routes,
    );

    Ok(Manifest {
        name,
        version,
        kind: raw.kind,
        world: raw.world,
        description: raw.description,
        host_api,
        forked_from: raw.forked_from,
        route_prefix,
        depends,
        capabilities,
        menus: raw.menus,
        permissions,
        buttons: raw.buttons,
        routes,
        tasks: raw.tasks,
        events: raw.events,
        limits: raw.limits,
        settings: raw.settings,
        uploads: raw.uploads,
    })
}

/// The first host API whose plugins declare `[[routes]]`.
const ROUTES_SINCE: Version = Version::new(0, 2, 0);

/// The code a plugin built before `[[routes]]` existed is opened with.
pub fn legacy_use_code(plugin: &str) -> String {
    format!("{plugin}.use")
}

/// A plugin built for a host API before 0.2 predates `[[routes]]` and
/// `[[permissions]]`: with no route declared, every caller but a
/// super-admin would be refused all of it, and no grant could change
/// that. Such a manifest gets one permission, [`legacy_use_code`], held by
/// the `admin` role from install on, and one route covering everything
/// below its mount point that needs it, so an administrator opens the
/// plugin to others by granting that code. Any other manifest is kept as
/// written.
fn legacy_access(
    name: &str,
    kind: PackageKind,
    host_api: Option<&VersionReq>,
    permissions: Vec<Permission>,
    routes: Vec<Route>,
) -> (Vec<Permission>, Vec<Route>) {
    let legacy = kind == PackageKind::Plugin
        && permissions.is_empty()
        && routes.is_empty()
        && host_api.is_some_and(|req| !req.matches(&ROUTES_SINCE));
    if !legacy {
        return (permissions, routes);
    }
    let code = legacy_use_code(name);
    (
        vec![Permission {
            code: code.clone(),
            title: format!("Use {name} (built before plugins declared their permissions)"),
            default_roles: vec!["admin".into()],
        }],
        vec![Route {
            method: "*".into(),
            path: "/*".into(),
            permission: Some(code),
            public: false,
        }],
    )
}

fn parse_req(field: &str, text: &str) -> Result<VersionReq, ManifestError> {
    VersionReq::parse(text).map_err(|_| {
        ManifestError::invalid(
            field,
            format!("{text:?} is not a valid semver version range (e.g. \"^0.1\", \">=1.2, <2\", \"1.4.*\")"),
        )
    })
}

fn validate_capabilities(name: &str, raw: RawCapabilities) -> Result<Capabilities, ManifestError> {
    let field = "capabilities.table_prefix";
    let explicit = raw.table_prefix.is_some();
    let table_prefix = raw
        .table_prefix
        .unwrap_or_else(|| format!("{}_", name.replace('-', "_")));
    if !is_table_prefix(&table_prefix) {
        let reason = if explicit {
            format!(
                "{table_prefix:?} is not a valid table prefix: expected a lowercase letter, then letters, digits or '_', ending in '_', at most 32 characters (e.g. \"goods_\")"
            )
        } else {
            format!(
                "the default table prefix {table_prefix:?} derived from the name is too long (at most 32 characters); set capabilities.table_prefix explicitly"
            )
        };
        return Err(ManifestError::invalid(field, reason));
    }
    if let Some(reserved) = reserved_prefix(&table_prefix) {
        let hint = if explicit {
            ""
        } else {
            " (derived from the name; set capabilities.table_prefix explicitly)"
        };
        return Err(ManifestError::invalid(
            field,
            format!(
                "{table_prefix:?} starts with {reserved:?}, which is reserved for the database or the host{hint}"
            ),
        ));
    }
    for (i, host) in raw.outbound_hosts.iter().enumerate() {
        if let Err(problem) = host.parse::<HostPattern>() {
            return Err(ManifestError::invalid(
                format!("capabilities.outbound_hosts[{i}]"),
                format!("{host:?} {problem}"),
            ));
        }
    }
    let files_quota_mb = raw.files_quota_mb.unwrap_or(DEFAULT_FILES_QUOTA_MB);
    validate_quota(files_quota_mb)?;
    Ok(Capabilities {
        table_prefix,
        outbound_hosts: raw.outbound_hosts,
        files_quota_mb,
    })
}

fn validate_permissions(name: &str, permissions: &[Permission]) -> Result<(), ManifestError> {
    let mut seen = BTreeSet::new();
    for (i, p) in permissions.iter().enumerate() {
        if !is_dotted(&p.code) {
            return Err(ManifestError::invalid(
                format!("permissions[{i}].code"),
                format!(
                    "{:?} is not a valid permission code: expected dotted lowercase names like \"goods.view\"",
                    p.code
                ),
            ));
        }
        if let Some(problem) = access::code_problem(name, &p.code, false) {
            return Err(ManifestError::invalid(
                format!("permissions[{i}].code"),
                problem,
            ));
        }
        if !seen.insert(p.code.as_str()) {
            return Err(ManifestError::invalid(
                format!("permissions[{i}].code"),
                format!("{:?} is declared more than once", p.code),
            ));
        }
        if p.title.trim().is_empty() {
            return Err(ManifestError::invalid(
                format!("permissions[{i}].title"),
                "must not be empty",
            ));
        }
        for (j, role) in p.default_roles.iter().enumerate() {
            if let Some(problem) = access::role_problem(role) {
                return Err(ManifestError::invalid(
                    format!("permissions[{i}].default_roles[{j}]"),
                    problem,
                ));
            }
        }
    }
    Ok(())
}

fn validate_buttons(
    name: &str,
    buttons: &[Button],
    permissions: &[Permission],
    menus: &[Menu],
) -> Result<(), ManifestError> {
    for (i, b) in buttons.iter().enumerate() {
        let field = format!("buttons[{i}].code");
        if let Some(problem) = access::code_problem(name, &b.code, true) {
            return Err(ManifestError::invalid(field, problem));
        }
        if buttons[..i].iter().any(|other| other.code == b.code)
            || permissions.iter().any(|p| p.code == b.code)
        {
            return Err(ManifestError::invalid(
                field,
                format!("{:?} is declared more than once", b.code),
            ));
        }
        if b.title.trim().is_empty() {
            return Err(ManifestError::invalid(
                format!("buttons[{i}].title"),
                "must not be empty",
            ));
        }
        if let Some(menu) = &b.menu
            && !menus.iter().any(|m| m.id == *menu)
        {
            return Err(ManifestError::invalid(
                format!("buttons[{i}].menu"),
                format!("{menu:?} is not the id of a menu in [[menus]]"),
            ));
        }
        for (j, role) in b.default_roles.iter().enumerate() {
            if let Some(problem) = access::role_problem(role) {
                return Err(ManifestError::invalid(
                    format!("buttons[{i}].default_roles[{j}]"),
                    problem,
                ));
            }
        }
    }
    Ok(())
}

fn validate_menus(menus: &[Menu], declared: &dyn Fn(&str) -> bool) -> Result<(), ManifestError> {
    let mut ids = BTreeMap::new();
    for (i, m) in menus.iter().enumerate() {
        if !is_menu_id(&m.id) {
            return Err(ManifestError::invalid(
                format!("menus[{i}].id"),
                format!(
                    "{:?} is not a valid menu id: expected a lowercase letter, then letters, digits, '.' or '-'",
                    m.id
                ),
            ));
        }
        if ids.insert(m.id.as_str(), i).is_some() {
            return Err(ManifestError::invalid(
                format!("menus[{i}].id"),
                format!("{:?} is used by more than one menu", m.id),
            ));
        }
        if m.title.trim().is_empty() {
            return Err(ManifestError::invalid(
                format!("menus[{i}].title"),
                "must not be empty",
            ));
        }
        if !m.path.starts_with('/') {
            return Err(ManifestError::invalid(
                format!("menus[{i}].path"),
                format!("{:?} must start with '/' (e.g. \"/p/goods/\")", m.path),
            ));
        }
        if let Some(code) = &m.permission
            && !declared(code)
        {
            return Err(ManifestError::invalid(
                format!("menus[{i}].permission"),
                format!("{code:?} is not declared in [[permissions]] or [[buttons]]"),
            ));
        }
    }
    for (i, m) in menus.iter().enumerate() {
        let Some(parent) = &m.parent else { continue };
        let field = format!("menus[{i}].parent");
        if *parent == m.id {
            return Err(ManifestError::invalid(
                field,
                "a menu cannot be its own parent",
            ));
        }
        if !ids.contains_key(parent.as_str()) {
            return Err(ManifestError::invalid(
                field,
                format!("{parent:?} is not the id of another menu in this manifest"),
            ));
        }
        // Walk up the parents; more steps than menus means a cycle.
        let mut current = parent.as_str();
        let mut steps = 0;
        while let Some(&j) = ids.get(current) {
            steps += 1;
            if current == m.id || steps > menus.len() {
                return Err(ManifestError::invalid(
                    field,
                    format!("menu parents form a cycle through {:?}", m.id),
                ));
            }
            match &menus[j].parent {
                Some(next) => current = next,
                None => break,
            }
        }
    }
    Ok(())
}

fn validate_tasks(tasks: &[Task]) -> Result<(), ManifestError> {
    let mut seen = BTreeSet::new();
    for (i, t) in tasks.iter().enumerate() {
        check_name(&format!("tasks[{i}].name"), &t.name)?;
        if !seen.insert(t.name.as_str()) {
            return Err(ManifestError::invalid(
                format!("tasks[{i}].name"),
                format!("{:?} is used by more than one task", t.name),
            ));
        }
        if t.title.trim().is_empty() {
            return Err(ManifestError::invalid(
                format!("tasks[{i}].title"),
                "must not be empty",
            ));
        }
        let fields = t.cron.split_whitespace().count();
        if !(6..=7).contains(&fields) {
            return Err(ManifestError::invalid(
                format!("tasks[{i}].cron"),
                format!(
                    "{:?} has {fields} fields; expected 6 or 7: seconds minutes hours day-of-month month day-of-week [year], e.g. \"0 */5 * * * *\"",
                    t.cron
                ),
            ));
        }
        if let Err(e) = cron::Schedule::from_str(&t.cron) {
            // The cron crate's message repeats the expression with a caret
            // line; its last line is the actual complaint.
            let e = e.to_string();
            let e = e
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            return Err(ManifestError::invalid(
                format!("tasks[{i}].cron"),
                format!(
                    "{:?} is not a valid cron expression ({e}); expected seconds minutes hours day-of-month month day-of-week [year], e.g. \"0 */5 * * * *\"",
                    t.cron
                ),
            ));
        }
        if !(1..=MAX_TASK_TIMEOUT_SECS).contains(&t.timeout_secs) {
            return Err(ManifestError::invalid(
                format!("tasks[{i}].timeout_secs"),
                format!(
                    "{} is out of range: expected 1 to {MAX_TASK_TIMEOUT_SECS} seconds",
                    t.timeout_secs
                ),
            ));
        }
        task_policy::validate(i, t)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const FULL: &str = r#"
name = "goods"
version = "1.0.0"
kind = "plugin"
world = "plinth"
description = "Products and stock"
host_api = "^0.1"
route_prefix = "goods"

[depends]
hello = "^0.1"

[capabilities]
table_prefix = "goods_"
outbound_hosts = ["api.example.com", "stock.example.com:8443"]

[[menus]]
id = "reports"
title = "Reports"
path = "/p/goods/reports"

[[menus]]
id = "goods"
title = "Goods"
path = "/p/goods/"
parent = "reports"
order = 10
permission = "goods.view"

[[permissions]]
code = "goods.view"
title = "View goods"
default_roles = ["admin", "staff"]

[[buttons]]
code = "B_GOODS_ITEM_DELETE"
title = "Delete an item"
menu = "goods"
default_roles = ["admin"]

[[routes]]
method = "GET"
path = "/api/status"
public = true

[[routes]]
path = "/api/items/{id}"
permission = "B_GOODS_ITEM_DELETE"

[[tasks]]
name = "low-stock-report"
title = "Report low stock"
cron = "0 */5 * * * *"
timeout_secs = 30

[events]
subscribe = ["goods.stock-low"]
"#;

    const MINIMAL: &str = "name = \"goods-acme\"\nversion = \"0.2.0\"\nhost_api = \"^0.1\"\n";

    fn err(text: &str) -> ManifestError {
        match Manifest::parse(text) {
            Ok(m) => panic!("expected an error, parsed {m:?}"),
            Err(e) => e,
        }
    }

    /// MINIMAL plus `extra` appended.
    fn with(extra: &str) -> String {
        format!("{MINIMAL}{extra}")
    }

    #[test]
    fn full_manifest() {
        let m = Manifest::parse(FULL).unwrap();
        assert_eq!(m.name, "goods");
        assert_eq!(m.version, Version::new(1, 0, 0));
        assert_eq!(m.kind, PackageKind::Plugin);
        assert_eq!(m.world, PluginWorld::Plinth);
        assert_eq!(m.description, "Products and stock");
        assert_eq!(m.host_api, Some(VersionReq::parse("^0.1").unwrap()));
        assert_eq!(m.route_prefix, "goods");
        assert_eq!(m.depends["hello"], VersionReq::parse("^0.1").unwrap());
        assert_eq!(m.capabilities.table_prefix, "goods_");
        assert_eq!(m.capabilities.outbound_hosts.len(), 2);
        assert_eq!(m.menus.len(), 2);
        assert_eq!(m.menus[1].parent.as_deref(), Some("reports"));
        assert_eq!(m.menus[1].order, 10);
        assert_eq!(m.menus[1].permission.as_deref(), Some("goods.view"));
        assert_eq!(m.permissions[0].default_roles, ["admin", "staff"]);
        assert_eq!(m.buttons[0].code, "B_GOODS_ITEM_DELETE");
        assert_eq!(m.routes[1].method, "*");
        assert!(m.routes[0].public);
        assert_eq!(m.tasks[0].timeout_secs, 30);
        assert_eq!(m.events.subscribe, ["goods.stock-low"]);
    }

    #[test]
    fn defaults_are_filled() {
        let m = Manifest::parse(MINIMAL).unwrap();
        assert_eq!(m.capabilities.table_prefix, "goods_acme_");
        assert_eq!(m.route_prefix, "goods-acme");
        assert_eq!(m.kind, PackageKind::Plugin);
        assert_eq!(m.world, PluginWorld::Plinth);
        assert_eq!(m.description, "");
        assert!(m.depends.is_empty() && m.menus.is_empty() && m.tasks.is_empty());
        assert!(m.capabilities.outbound_hosts.is_empty());
        let m = Manifest::parse(&with(
            "[[tasks]]\nname = \"t1\"\ntitle = \"T\"\ncron = \"0 0 * * * *\"\n[[menus]]\nid = \"m\"\ntitle = \"M\"\npath = \"/\"\n",
        ))
        .unwrap();
        assert_eq!(m.tasks[0].timeout_secs, 60);
        assert_eq!(m.menus[0].order, 0);
        assert_eq!(m.tasks[0].missed, Missed::Skip);
        assert_eq!(m.tasks[0].concurrency, Concurrency::Skip);
        assert_eq!(m.tasks[0].min_interval_secs, 0);
        let m = Manifest::parse(&with(
            "[[tasks]]\nname = \"t1\"\ntitle = \"T\"\ncron = \"0 0 * * * *\"\nmissed = \"run-once\"\nconcurrency = \"queue\"\nmin_interval_secs = 30\n",
        ))
        .unwrap();
        assert_eq!(m.tasks[0].missed, Missed::RunOnce);
        assert_eq!(m.tasks[0].concurrency, Concurrency::Queue);
        assert_eq!(m.tasks[0].min_interval_secs, 30);
        assert_eq!(
            Manifest::parse(&m.to_toml()).unwrap(),
            m,
            "the policy round-trips"
        );
        let m = Manifest::parse(&with("world = \"wasi-http\"\n")).unwrap();
        assert_eq!(m.world, PluginWorld::WasiHttp);
    }

    #[test]
    fn round_trips_through_toml_and_json() {
        for text in [FULL, MINIMAL] {
            let m = Manifest::parse(text).unwrap();
            let again =
                Manifest::parse(&m.to_toml()).unwrap_or_else(|e| panic!("{e}\n{}", m.to_toml()));
            assert_eq!(m, again);
            let json = serde_json::to_string(&m).unwrap();
            let back: Manifest = serde_json::from_str(&json).unwrap();
            assert_eq!(m, back);
        }
        let s =
            Manifest::parse("name = \"assets\"\nversion = \"1.0.0\"\nkind = \"static\"\n").unwrap();
        assert_eq!(Manifest::parse(&s.to_toml()).unwrap(), s);
    }

    #[test]
    fn static_kind_needs_no_host_api() {
        let m =
            Manifest::parse("name = \"assets\"\nversion = \"1.0.0\"\nkind = \"static\"\n").unwrap();
        assert_eq!(m.kind, PackageKind::Static);
        assert_eq!(m.host_api, None);
        assert!(m.host_api_allows(&Version::new(9, 9, 9)));
        let e = err("name = \"goods\"\nversion = \"1.0.0\"\n");
        assert_eq!(e.field(), "host_api");
        let e = err(
            "name = \"assets\"\nversion = \"1.0.0\"\nkind = \"static\"\n[[tasks]]\nname = \"t1\"\ntitle = \"T\"\ncron = \"0 0 * * * *\"\n",
        );
        assert_eq!(e.field(), "tasks");
    }

    /// A plugin built before `[[routes]]` gets one grantable code covering
    /// all of it; a current one, or one that declares any, is kept as is.
    #[test]
    fn a_host_api_0_1_plugin_without_routes_is_opened_by_one_code() {
        let m = Manifest::parse(MINIMAL).unwrap();
        assert_eq!(m.permissions.len(), 1);
        assert_eq!(m.permissions[0].code, "goods-acme.use");
        assert_eq!(m.permissions[0].default_roles, ["admin"]);
        let table = access::RouteTable::new(&m.routes);
        assert_eq!(
            table.access("POST", "/any/where"),
            access::Access::Requires("goods-acme.use")
        );
        assert_eq!(Manifest::parse(&m.to_toml()).unwrap(), m, "it round-trips");

        let current = Manifest::parse(&MINIMAL.replace("^0.1", "^0.2")).unwrap();
        assert!(current.permissions.is_empty() && current.routes.is_empty());
        let declared = Manifest::parse(&with(
            "[[permissions]]\ncode = \"goods-acme.view\"\ntitle = \"View\"\n",
        ))
        .unwrap();
        assert_eq!(declared.permissions.len(), 1);
        assert!(declared.routes.is_empty());
    }

    #[test]
    fn host_api_check() {
        let m = Manifest::parse(MINIMAL).unwrap();
        assert!(m.host_api_allows(&Version::new(0, 1, 0)));
        assert!(m.host_api_allows(&Version::new(0, 1, 7)));
        assert!(!m.host_api_allows(&Version::new(0, 2, 0)));
        assert!(!m.host_api_allows(&Version::new(1, 0, 0)));
    }

    #[test]
    fn refusals_name_the_field() {
        let cases: &[(&str, &str, &str)] = &[
            // (manifest text, field, words expected in the reason)
            (&with("colour = \"red\"\n"), "colour", "unknown field"),
            (
                &with("[capabilities]\ntable_prefx = \"x_\"\n"),
                "capabilities.table_prefx",
                "unknown field",
            ),
            (
                &with("[[menus]]\nid = \"m\"\ntitle = \"M\"\npath = \"/\"\nicon = \"x\"\n"),
                "menus[0].icon",
                "unknown field",
            ),
            (
                &with(
                    "[[tasks]]\nname = \"a\"\ntitle = \"A\"\ncron = \"0 0 * * * *\"\n[[tasks]]\nname = \"bb\"\ntitle = \"B\"\ncron = \"0 0 * * * *\"\nretries = 3\n",
                ),
                "tasks[1].retries",
                "unknown field",
            ),
            (
                &with("[events]\npublish = []\n"),
                "events.publish",
                "unknown field",
            ),
            (
                "name = \"goods\"\nversion = \"1.0\"\nhost_api = \"^0.1\"\n",
                "version",
                "expected MAJOR.MINOR.PATCH",
            ),
            (
                "name = \"goods\"\nhost_api = \"^0.1\"\n",
                "version",
                "required",
            ),
            (
                "name = \"goods\"\nversion = 1\nhost_api = \"^0.1\"\n",
                "version",
                "string",
            ),
            (
                "name = \"goods\"\nversion = \"1.0.0\"\nhost_api = \"about 0.1\"\n",
                "host_api",
                "version range",
            ),
            (
                &with("[depends]\nhello = \"not a range\"\n"),
                "depends.hello",
                "version range",
            ),
            (
                &with("[depends]\n\"goods-acme\" = \"^0.1\"\n"),
                "depends.goods-acme",
                "itself",
            ),
            (
                &with("[depends]\nHello = \"^0.1\"\n"),
                "depends.Hello",
                "lowercase",
            ),
            (
                "name = \"Goods\"\nversion = \"1.0.0\"\nhost_api = \"^0.1\"\n",
                "name",
                "lowercase",
            ),
            (
                "name = \"goods-\"\nversion = \"1.0.0\"\nhost_api = \"^0.1\"\n",
                "name",
                "end with",
            ),
            (
                "name = \"go--ods\"\nversion = \"1.0.0\"\nhost_api = \"^0.1\"\n",
                "name",
                "--",
            ),
            (
                "name = \"g\"\nversion = \"1.0.0\"\nhost_api = \"^0.1\"\n",
                "name",
                "2 to 40",
            ),
            (
                "name = \"1goods\"\nversion = \"1.0.0\"\nhost_api = \"^0.1\"\n",
                "name",
                "start with",
            ),
            (
                &with("forked_from = \"goods-acme\"\n"),
                "forked_from",
                "different name",
            ),
            (
                &with("forked_from = \"Goods\"\n"),
                "forked_from",
                "not a valid name",
            ),
            (
                &with("route_prefix = \"goods/x\"\n"),
                "route_prefix",
                "not a valid route prefix",
            ),
            (&with("kind = \"dynamic\"\n"), "kind", "unknown variant"),
            (&with("world = \"wasi-cli\"\n"), "world", "unknown variant"),
            (
                &with("[capabilities]\ntable_prefix = \"goods\"\n"),
                "capabilities.table_prefix",
                "ending in '_'",
            ),
            (
                &with("[capabilities]\ntable_prefix = \"Goods_\"\n"),
                "capabilities.table_prefix",
                "not a valid table prefix",
            ),
            (
                &with("[capabilities]\ntable_prefix = \"plinth_\"\n"),
                "capabilities.table_prefix",
                "reserved",
            ),
            (
                "name = \"pg-stats\"\nversion = \"1.0.0\"\nhost_api = \"^0.1\"\n",
                "capabilities.table_prefix",
                "set capabilities.table_prefix explicitly",
            ),
            (
                "name = \"a123456789-123456789-123456789-12345678\"\nversion = \"1.0.0\"\nhost_api = \"^0.1\"\n",
                "capabilities.table_prefix",
                "too long",
            ),
            (
                &with("[capabilities]\noutbound_hosts = [\"ftp://api.example.com\"]\n"),
                "capabilities.outbound_hosts[0]",
                "scheme",
            ),
            (
                &with(
                    "[capabilities]\noutbound_hosts = [\"ok.example.com\", \"api.example.com/v1\"]\n",
                ),
                "capabilities.outbound_hosts[1]",
                "path",
            ),
            (
                &with("[capabilities]\noutbound_hosts = [\"api.example.com:99999\"]\n"),
                "capabilities.outbound_hosts[0]",
                "port",
            ),
            (
                &with(
                    "[[menus]]\nid = \"m\"\ntitle = \"M\"\npath = \"/\"\n[[menus]]\nid = \"m\"\ntitle = \"N\"\npath = \"/\"\n",
                ),
                "menus[1].id",
                "more than one menu",
            ),
            (
                &with("[[menus]]\nid = \"Menu\"\ntitle = \"M\"\npath = \"/\"\n"),
                "menus[0].id",
                "not a valid menu id",
            ),
            (
                &with("[[menus]]\nid = \"m\"\ntitle = \" \"\npath = \"/\"\n"),
                "menus[0].title",
                "empty",
            ),
            (
                &with("[[menus]]\nid = \"m\"\ntitle = \"M\"\npath = \"p/goods\"\n"),
                "menus[0].path",
                "start with '/'",
            ),
            (
                &with("[[menus]]\nid = \"m\"\ntitle = \"M\"\npath = \"/\"\nparent = \"nope\"\n"),
                "menus[0].parent",
                "not the id of another menu",
            ),
            (
                &with("[[menus]]\nid = \"m\"\ntitle = \"M\"\npath = \"/\"\nparent = \"m\"\n"),
                "menus[0].parent",
                "its own parent",
            ),
            (
                &with(
                    "[[menus]]\nid = \"a\"\ntitle = \"A\"\npath = \"/\"\nparent = \"b\"\n[[menus]]\nid = \"b\"\ntitle = \"B\"\npath = \"/\"\nparent = \"a\"\n",
                ),
                "menus[0].parent",
                "cycle",
            ),
            (
                &with(
                    "[[menus]]\nid = \"m\"\ntitle = \"M\"\npath = \"/\"\npermission = \"goods.view\"\n",
                ),
                "menus[0].permission",
                "not declared",
            ),
            (
                &with("[[menus]]\nid = \"m\"\ntitle = \"M\"\npath = \"/\"\norder = \"first\"\n"),
                "menus[0].order",
                "integer",
            ),
            (
                &with("[[permissions]]\ncode = \"view\"\ntitle = \"V\"\n"),
                "permissions[0].code",
                "dotted",
            ),
            (
                &with(
                    "[[permissions]]\ncode = \"goods-acme.view\"\ntitle = \"V\"\n[[permissions]]\ncode = \"goods-acme.view\"\ntitle = \"W\"\n",
                ),
                "permissions[1].code",
                "more than once",
            ),
            (
                &with("[[permissions]]\ncode = \"goods.view\"\ntitle = \"V\"\n"),
                "permissions[0].code",
                "\"goods-acme.\"",
            ),
            (
                &with(
                    "[[permissions]]\ncode = \"goods-acme.view\"\ntitle = \"V\"\ndefault_roles = [\"Clerk Role\"]\n",
                ),
                "permissions[0].default_roles[0]",
                "not a role name",
            ),
            (
                &with("[[buttons]]\ncode = \"B_GOODS_ITEM_DELETE\"\ntitle = \"Delete\"\n"),
                "buttons[0].code",
                "B_GOODS_ACME_",
            ),
            (
                &with(
                    "[[buttons]]\ncode = \"B_GOODS_ACME_X\"\ntitle = \"X\"\n[[buttons]]\ncode = \"B_GOODS_ACME_X\"\ntitle = \"Y\"\n",
                ),
                "buttons[1].code",
                "more than once",
            ),
            (
                &with("[[buttons]]\ncode = \"B_GOODS_ACME_X\"\ntitle = \"X\"\nmenu = \"nope\"\n"),
                "buttons[0].menu",
                "not the id of a menu",
            ),
            (
                &with(
                    "[[routes]]\nmethod = \"GET\"\npath = \"/api\"\npermission = \"goods-acme.nope\"\n",
                ),
                "routes[0].permission",
                "not declared",
            ),
            (
                &with("[[routes]]\nmethod = \"GET\"\npath = \"/api/*/x\"\npublic = true\n"),
                "routes[0].path",
                "last segment",
            ),
            (
                &with("[[routes]]\npath = \"/api\"\n"),
                "routes[0]",
                "denied",
            ),
            (
                &with(
                    "[[tasks]]\nname = \"report\"\ntitle = \"A\"\ncron = \"0 0 * * * *\"\n[[tasks]]\nname = \"report\"\ntitle = \"B\"\ncron = \"0 0 * * * *\"\n",
                ),
                "tasks[1].name",
                "more than one task",
            ),
            (
                &with(
                    "[[tasks]]\nname = \"a1\"\ntitle = \"A\"\ncron = \"0 0 * * * *\"\n[[tasks]]\nname = \"b1\"\ntitle = \"B\"\ncron = \"every five minutes\"\n",
                ),
                "tasks[1].cron",
                "expected 6 or 7",
            ),
            (
                &with("[[tasks]]\nname = \"a1\"\ntitle = \"A\"\ncron = \"0 99 * * * *\"\n"),
                "tasks[0].cron",
                "not a valid cron expression",
            ),
            (
                &with("[[tasks]]\nname = \"a1\"\ntitle = \"A\"\ncron = \"*/5 * * * *\"\n"),
                "tasks[0].cron",
                "expected 6 or 7",
            ),
            (
                &with(
                    "[[tasks]]\nname = \"a1\"\ntitle = \"A\"\ncron = \"0 0 * * * *\"\ntimeout_secs = 0\n",
                ),
                "tasks[0].timeout_secs",
                "1 to 3600",
            ),
            (
                &with(
                    "[[tasks]]\nname = \"a1\"\ntitle = \"A\"\ncron = \"0 0 * * * *\"\ntimeout_secs = 3601\n",
                ),
                "tasks[0].timeout_secs",
                "1 to 3600",
            ),
            (
                &with(
                    "[[tasks]]\nname = \"a1\"\ntitle = \"A\"\ncron = \"0 0 * * * *\"\ntimeout_secs = -5\n",
                ),
                "tasks[0].timeout_secs",
                "",
            ),
            (
                &with("[[tasks]]\nname = \"A_1\"\ntitle = \"A\"\ncron = \"0 0 * * * *\"\n"),
                "tasks[0].name",
                "not a valid name",
            ),
            (
                &with(
                    "[[tasks]]\nname = \"a1\"\ntitle = \"A\"\ncron = \"0 0 * * * *\"\nmissed = \"all\"\n",
                ),
                "tasks[0].missed",
                "run-once",
            ),
            (
                &with(
                    "[[tasks]]\nname = \"a1\"\ntitle = \"A\"\ncron = \"0 0 * * * *\"\nconcurrency = \"parallel\"\n",
                ),
                "tasks[0].concurrency",
                "queue",
            ),
            (
                &with(
                    "[[tasks]]\nname = \"a1\"\ntitle = \"A\"\ncron = \"0 0 * * * *\"\nmin_interval_secs = 86401\n",
                ),
                "tasks[0].min_interval_secs",
                "0 (no limit) to 86400",
            ),
            (
                &with("[events]\nsubscribe = [\"stock-low\"]\n"),
                "events.subscribe[0]",
                "dotted",
            ),
            (
                &with("[capabilities]\noutbound_hosts = \"api.example.com\"\n"),
                "capabilities.outbound_hosts",
                "sequence",
            ),
            (
                "name = \"goods\"\nversion = \"1.0.0\"\nhost_api = \"^0.1\"\nname = \"again\"\n",
                "plugin.toml",
                "duplicate",
            ),
            (
                "name = \"goods\nversion = \"1.0.0\"\n",
                "plugin.toml",
                "line",
            ),
        ];
        for (text, field, words) in cases {
            let e = err(text);
            assert_eq!(e.field(), *field, "{text}\n=> {e}");
            assert!(e.reason().contains(words), "{text}\n=> {e}");
            assert_eq!(e.to_string(), format!("{}: {}", e.field(), e.reason()));
        }
    }

    #[test]
    fn messages_read_well() {
        let e = err("name = \"goods\"\nversion = \"1.0\"\nhost_api = \"^0.1\"\n");
        assert_eq!(
            e.to_string(),
            "version: \"1.0\" is not a valid semver version (expected MAJOR.MINOR.PATCH, e.g. 1.0.0)"
        );
        let e = err(&with("[depends]\nhello = \"nope\"\n"));
        assert!(
            e.to_string()
                .starts_with("depends.hello: \"nope\" is not a valid semver version range"),
            "{e}"
        );
        let e = err(&with("colour = \"red\"\n"));
        assert!(
            e.to_string().starts_with("colour: unknown field `colour`"),
            "{e}"
        );
        assert!(e.to_string().contains("(line 4)"), "{e}");
    }
}
