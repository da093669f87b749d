//! A plugin's settings, from the operator's `plugins[].settings` in
//! config.json (or the environment, or a secret file) to the checked
//! strings the plugin reads through the WIT `settings.get`.
//!
//! [`SettingValue`] is what config.json may hold for one key: a string, an
//! integer, a boolean, or `{"file": "/run/secrets/x"}` naming a file whose
//! contents are the value (for secrets). [`resolve`] checks every value
//! against the manifest's `[[settings]]` ([`SettingSpec::check`], the one
//! type rule) at start-up and on every install, upgrade, rollback and
//! enable, with one message naming the plugin and the key; a variable
//! `PLINTH__PLUGINS__<NAME>__<KEY>` (name and key upper-cased, `-` as `_`)
//! wins over config.json. [`ResolvedSettings`] remembers which keys are
//! secret, and neither it nor [`SettingsError`] ever shows a secret's
//! value: its `Debug` masks them and errors quote only non-secret values.
//!
//! A plugin that declares no `[[settings]]` gets its config.json strings as
//! they are (plugins written before typed settings existed).
//!
//! [`ConfiguredSettings`] holds the running host's copy of every plugin's
//! `plugins[].settings`: loaded from config.json at start-up and changed by
//! the admin API (which also writes the file), so a plugin reloaded after a
//! change reads the new values without a restart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use plinth_package::settings::{SettingSpec, SettingType};
use serde::{Deserialize, Deserializer, Serialize};

/// One value in `plugins[].settings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SettingValue {
    Text(String),
    Int(i64),
    Bool(bool),
    /// The value is the contents of this file (trailing newline trimmed).
    File {
        file: PathBuf,
    },
}

impl<'de> Deserialize<'de> for SettingValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(deserializer)?;
        match value {
            serde_json::Value::String(s) => Ok(SettingValue::Text(s)),
            serde_json::Value::Bool(b) => Ok(SettingValue::Bool(b)),
            serde_json::Value::Number(n) if n.is_i64() => {
                Ok(SettingValue::Int(n.as_i64().unwrap_or_default()))
            }
            serde_json::Value::Object(map)
                if map.len() == 1 && map.get("file").is_some_and(|f| f.is_string()) =>
            {
                let file = map.get("file").and_then(|f| f.as_str()).unwrap_or_default();
                Ok(SettingValue::File { file: file.into() })
            }
            _ => Err(D::Error::custom(
                "a setting is a string, an integer, true/false, or {\"file\": \"/path/to/secret\"}",
            )),
        }
    }
}

impl From<&str> for SettingValue {
    fn from(value: &str) -> Self {
        SettingValue::Text(value.to_owned())
    }
}

/// Every plugin's configured values (config.json's `plugins[].settings`,
/// never the environment's), shared by the clones of a host.
#[derive(Debug, Clone, Default)]
pub struct ConfiguredSettings {
    by_plugin: Arc<RwLock<BTreeMap<String, BTreeMap<String, SettingValue>>>>,
}

impl ConfiguredSettings {
    pub fn new(by_plugin: BTreeMap<String, BTreeMap<String, SettingValue>>) -> Self {
        Self {
            by_plugin: Arc::new(RwLock::new(by_plugin)),
        }
    }

    /// Plugin `plugin`'s configured values (empty when it has none).
    pub fn of(&self, plugin: &str) -> BTreeMap<String, SettingValue> {
        self.by_plugin
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(plugin)
            .cloned()
            .unwrap_or_default()
    }

    pub fn set(&self, plugin: &str, values: BTreeMap<String, SettingValue>) {
        self.by_plugin
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(plugin.to_owned(), values);
    }
}

/// The settings a plugin instance reads: every declared key with a value
/// (given or default), checked.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ResolvedSettings {
    values: BTreeMap<String, String>,
    secrets: BTreeSet<String>,
}

impl ResolvedSettings {
    pub fn get(&self, key: &str) -> Option<&String> {
        self.values.get(key)
    }

    pub fn is_secret(&self, key: &str) -> bool {
        self.secrets.contains(key)
    }

    /// Settings with no schema behind them (tests, built in memory).
    pub fn unchecked(values: BTreeMap<String, String>) -> Self {
        Self {
            values,
            secrets: BTreeSet::new(),
        }
    }
}

impl std::fmt::Debug for ResolvedSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in &self.values {
            if self.secrets.contains(key) {
                map.entry(key, &"<secret>");
            } else {
                map.entry(key, value);
            }
        }
        map.finish()
    }
}

/// One setting as the admin API shows it: the schema, and the value only
/// when it is not a secret (a secret says whether it is `set`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingView {
    pub key: String,
    #[serde(rename = "type")]
    pub kind: SettingType,
    pub title: String,
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub set: bool,
}

/// The admin API's view of `specs` with `resolved` values.
pub fn view(specs: &[SettingSpec], resolved: Option<&ResolvedSettings>) -> Vec<SettingView> {
    specs
        .iter()
        .map(|spec| {
            let value = resolved.and_then(|r| r.get(&spec.key));
            SettingView {
                key: spec.key.clone(),
                kind: spec.kind,
                title: spec.title.clone(),
                required: spec.required,
                default: spec.default.clone(),
                values: spec.values.clone(),
                value: if spec.is_secret() {
                    None
                } else {
                    value.cloned()
                },
                set: value.is_some(),
            }
        })
        .collect()
}

/// A setting the operator must fix. One message: plugin, key, what is
/// wrong and where to set it; never a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin {plugin}: setting {key:?} {reason}")]
pub struct SettingsError {
    pub plugin: String,
    pub key: String,
    pub reason: String,
}

/// The environment variable that sets `key` of plugin `plugin`.
pub fn env_var(plugin: &str, key: &str) -> String {
    format!(
        "{}PLUGINS__{}__{}",
        super::ENV_PREFIX,
        plugin.to_ascii_uppercase().replace('-', "_"),
        key.to_ascii_uppercase()
    )
}

/// Checks and resolves plugin `plugin`'s settings: `configured` from
/// config.json, `env` the `PLINTH__PLUGINS__<NAME>__<KEY>` variables the
/// host was started with, `specs` its manifest's `[[settings]]`.
pub fn resolve(
    plugin: &str,
    specs: &[SettingSpec],
    configured: &BTreeMap<String, SettingValue>,
    env: &BTreeMap<String, String>,
) -> Result<ResolvedSettings, SettingsError> {
    let error = |key: &str, reason: String| SettingsError {
        plugin: plugin.to_owned(),
        key: key.to_owned(),
        reason,
    };
    if specs.is_empty() {
        let mut values = BTreeMap::new();
        for (key, value) in configured {
            let text = match value {
                SettingValue::Text(s) => s.clone(),
                SettingValue::Int(n) => n.to_string(),
                SettingValue::Bool(b) => b.to_string(),
                SettingValue::File { file } => {
                    read_secret_file(file).map_err(|reason| error(key, reason))?
                }
            };
            values.insert(key.clone(), text);
        }
        return Ok(ResolvedSettings::unchecked(values));
    }
    if let Some(unknown) = configured
        .keys()
        .find(|k| !specs.iter().any(|s| &s.key == *k))
    {
        let declared: Vec<&str> = specs.iter().map(|s| s.key.as_str()).collect();
        return Err(error(
            unknown,
            format!(
                "in config.json is not declared by the plugin (it declares {}); remove it or check the spelling",
                declared.join(", ")
            ),
        ));
    }
    let mut resolved = ResolvedSettings::default();
    for spec in specs {
        let var = env_var(plugin, &spec.key);
        let where_to = || {
            format!(
                "set plugins[].settings.{} in config.json or {var}",
                spec.key
            )
        };
        let value = match (env.get(&var), configured.get(&spec.key)) {
            (Some(from_env), _) => Some(from_env.clone()),
            (None, Some(value)) => Some(text_of(spec, value).map_err(|r| error(&spec.key, r))?),
            (None, None) => spec.default.clone(),
        };
        let Some(value) = value else {
            if spec.required {
                return Err(error(&spec.key, format!("is required: {}", where_to())));
            }
            continue;
        };
        if spec.required && value.is_empty() {
            return Err(error(
                &spec.key,
                format!("is required but empty: {}", where_to()),
            ));
        }
        if let Some(problem) = spec.check(&value) {
            return Err(error(
                &spec.key,
                format!(
                    "({}) is invalid: {problem}; {}",
                    type_name(spec.kind),
                    where_to()
                ),
            ));
        }
        if spec.is_secret() {
            resolved.secrets.insert(spec.key.clone());
        }
        resolved.values.insert(spec.key.clone(), value);
    }
    Ok(resolved)
}

/// The plugin-facing text of a config.json value, refusing a JSON type
/// that does not fit the declared one (`5` for a string, `"x"` stays a
/// string to be checked).
fn text_of(spec: &SettingSpec, value: &SettingValue) -> Result<String, String> {
    match (spec.kind, value) {
        (_, SettingValue::Text(s)) => Ok(s.clone()),
        (SettingType::Int, SettingValue::Int(n)) => Ok(n.to_string()),
        (SettingType::Bool, SettingValue::Bool(b)) => Ok(b.to_string()),
        (SettingType::Secret, SettingValue::File { file }) => read_secret_file(file),
        (_, SettingValue::File { .. }) => Err(format!(
            "({}) is invalid: only a secret may be read from a file",
            type_name(spec.kind)
        )),
        (kind, other) => Err(format!(
            "({}) is invalid: config.json gives {}",
            type_name(kind),
            match other {
                SettingValue::Int(_) => "an integer",
                SettingValue::Bool(_) => "a boolean",
                _ => "another type",
            }
        )),
    }
}

fn read_secret_file(file: &PathBuf) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        format!(
            "names the file {} which cannot be read ({e}); create it or fix the path",
            file.display()
        )
    })?;
    Ok(text.strip_suffix('\n').unwrap_or(&text).to_owned())
}

fn type_name(kind: SettingType) -> &'static str {
    match kind {
        SettingType::String => "a string",
        SettingType::Int => "an integer",
        SettingType::Bool => "a boolean",
        SettingType::Enum => "an enum",
        SettingType::Secret => "a secret",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn specs() -> Vec<SettingSpec> {
        let spec = |key: &str, kind, default: Option<&str>, required| SettingSpec {
            key: key.into(),
            kind,
            title: key.into(),
            default: default.map(str::to_owned),
            required,
            values: vec![],
        };
        vec![
            spec("page_size", SettingType::Int, Some("20"), false),
            spec("api_key", SettingType::Secret, None, true),
        ]
    }

    #[test]
    fn a_wrong_type_names_the_plugin_and_key_and_where_to_fix_it() {
        let configured = BTreeMap::from([
            ("page_size".to_owned(), "twenty".into()),
            ("api_key".to_owned(), "s3cr3t-value".into()),
        ]);
        let e = resolve("goods", &specs(), &configured, &BTreeMap::new()).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("plugin goods: setting \"page_size\""),
            "{text}"
        );
        assert!(text.contains("PLINTH__PLUGINS__GOODS__PAGE_SIZE"), "{text}");
    }

    #[test]
    fn secrets_come_from_the_environment_or_a_file_and_never_show_in_debug() {
        let env = BTreeMap::from([(
            "PLINTH__PLUGINS__GOODS__API_KEY".to_owned(),
            "from-env-value".to_owned(),
        )]);
        let resolved = resolve("goods", &specs(), &BTreeMap::new(), &env).unwrap();
        assert_eq!(resolved.get("api_key").unwrap(), "from-env-value");
        assert_eq!(resolved.get("page_size").unwrap(), "20");
        assert!(!format!("{resolved:?}").contains("from-env-value"));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "from-file-value\n").unwrap();
        let configured =
            BTreeMap::from([("api_key".to_owned(), SettingValue::File { file: path })]);
        let resolved = resolve("goods", &specs(), &configured, &BTreeMap::new()).unwrap();
        assert_eq!(resolved.get("api_key").unwrap(), "from-file-value");
    }

    #[test]
    fn a_missing_required_secret_and_an_undeclared_key_are_refused() {
        let e = resolve("goods", &specs(), &BTreeMap::new(), &BTreeMap::new()).unwrap_err();
        assert_eq!(e.key, "api_key");
        let configured = BTreeMap::from([("pagesize".to_owned(), "1".into())]);
        let e = resolve("goods", &specs(), &configured, &BTreeMap::new()).unwrap_err();
        assert_eq!(e.key, "pagesize");
    }
}
