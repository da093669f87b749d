//! Typed plugin settings: the `[[settings]]` a manifest declares (key, type,
//! title, default, required, enum values), their validation, and the check
//! of one operator value against its declaration.
//!
//! The host resolves the operator's values (config.json, the environment, a
//! secret file) and asks [`SettingSpec::check`] about each, so the type rule
//! is written once, here, for the manifest's defaults and the operator's
//! values alike.

use serde::{Deserialize, Serialize};

use crate::manifest::ManifestError;

/// The type of a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SettingType {
    String,
    Int,
    Bool,
    Enum,
    /// A string the host never shows or logs; it may come from the
    /// environment or a file instead of config.json.
    Secret,
}

/// One declared setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingSpec {
    pub key: String,
    #[serde(rename = "type")]
    pub kind: SettingType,
    pub title: String,
    /// The value when the operator sets none, written as the plugin reads
    /// it (`"10"`, `"true"`); never allowed for a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// The allowed values of an enum.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl SettingSpec {
    /// `None` when `value` is valid for this setting, else what is wrong,
    /// never quoting a secret.
    pub fn check(&self, value: &str) -> Option<String> {
        match self.kind {
            SettingType::String | SettingType::Secret => None,
            SettingType::Int => value
                .trim()
                .parse::<i64>()
                .err()
                .map(|_| format!("{value:?} is not an integer (expected e.g. \"10\")")),
            SettingType::Bool => (!matches!(value, "true" | "false"))
                .then(|| format!("{value:?} is not a boolean (expected true or false)")),
            SettingType::Enum => (!self.values.iter().any(|v| v == value)).then(|| {
                format!(
                    "{value:?} is not one of the allowed values {:?}",
                    self.values
                )
            }),
        }
    }

    pub fn is_secret(&self) -> bool {
        self.kind == SettingType::Secret
    }
}

/// `^[a-z][a-z0-9_]{0,62}$`: a key is also the tail of its environment
/// variable, `PLINTH__PLUGINS__<NAME>__<KEY>`.
fn is_setting_key(key: &str) -> bool {
    let b = key.as_bytes();
    (1..=63).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// Checks `[[settings]]`, naming the field of the first problem.
pub fn validate_settings(settings: &[SettingSpec]) -> Result<(), ManifestError> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, spec) in settings.iter().enumerate() {
        let field = |f: &str| format!("settings[{i}].{f}");
        if !is_setting_key(&spec.key) {
            return Err(invalid(
                field("key"),
                format!(
                    "{:?} is not a valid setting key: expected a lowercase letter, then letters, digits or '_', at most 63 characters (e.g. \"page_size\")",
                    spec.key
                ),
            ));
        }
        if !seen.insert(spec.key.as_str()) {
            return Err(invalid(
                field("key"),
                format!("{:?} is declared more than once", spec.key),
            ));
        }
        if spec.title.trim().is_empty() {
            return Err(invalid(field("title"), "must not be empty"));
        }
        match spec.kind {
            SettingType::Enum if spec.values.is_empty() => {
                return Err(invalid(
                    field("values"),
                    "an enum setting needs its allowed values, e.g. values = [\"daily\", \"hourly\"]",
                ));
            }
            SettingType::Enum => {}
            _ if !spec.values.is_empty() => {
                return Err(invalid(
                    field("values"),
                    "only a setting of type = \"enum\" has values",
                ));
            }
            _ => {}
        }
        if let Some(default) = &spec.default {
            if spec.is_secret() {
                return Err(invalid(
                    field("default"),
                    "a secret has no default: a secret shipped in the package would not be secret",
                ));
            }
            if let Some(problem) = spec.check(default) {
                return Err(invalid(field("default"), problem));
            }
        }
    }
    Ok(())
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ManifestError {
    ManifestError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec(kind: SettingType) -> SettingSpec {
        SettingSpec {
            key: "page_size".into(),
            kind,
            title: "Page size".into(),
            default: None,
            required: false,
            values: vec![],
        }
    }

    #[test]
    fn values_are_checked_against_their_type() {
        assert!(spec(SettingType::Int).check("ten").is_some());
        assert_eq!(spec(SettingType::Int).check("10"), None);
        assert!(spec(SettingType::Bool).check("yes").is_some());
        let mut e = spec(SettingType::Enum);
        e.values = vec!["a".into()];
        assert!(e.check("b").is_some());
        assert_eq!(e.check("a"), None);
    }

    #[test]
    fn a_bad_declaration_names_its_field() {
        let mut s = spec(SettingType::Int);
        s.default = Some("many".into());
        assert_eq!(
            validate_settings(&[s]).unwrap_err().field(),
            "settings[0].default"
        );
        let mut s = spec(SettingType::Secret);
        s.default = Some("x".into());
        assert_eq!(
            validate_settings(&[s]).unwrap_err().field(),
            "settings[0].default"
        );
        assert_eq!(
            validate_settings(&[spec(SettingType::Enum)])
                .unwrap_err()
                .field(),
            "settings[0].values"
        );
    }
}
