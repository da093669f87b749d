//! Per-route rate limits a manifest declares (`[[limits]]`), which the host
//! enforces before the plugin is called:
//!
//! ```toml
//! [[limits]]
//! path = "/api/items"          # this path and everything below it
//! methods = ["POST", "PUT"]    # optional; every method when absent
//! per = "user"                 # "ip" | "user" | "plugin"
//! rate = "10/min"              # N per "s" | "min" | "hour" | "day"
//! ```
//!
//! A rate of N per period lets a burst of N through and then one more
//! every period/N, so the eleventh call within a minute of a `10/min` route
//! is refused.

use std::num::NonZeroU32;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::manifest::ManifestError;

/// Whose calls one limit counts together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LimitPer {
    /// Each client address.
    Ip,
    /// Each signed-in caller; anonymous requests count per address.
    User,
    /// All calls to the plugin route together.
    Plugin,
}

/// One validated `[[limits]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteLimit {
    /// Below the plugin's mount point, starting with `/`.
    pub path: String,
    /// Upper-case method names; empty means every method.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    pub per: LimitPer,
    /// As written, e.g. `10/min`; [`RouteLimit::rate`] reads it.
    pub rate: String,
}

/// A parsed `N/period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub period: Duration,
}

impl RouteLimit {
    /// The parsed rate. A validated manifest always has a valid one; a
    /// stored manifest read back without validation falls back to 1/s.
    pub fn rate(&self) -> Rate {
        parse_rate(&self.rate).unwrap_or(Rate {
            count: NonZeroU32::MIN,
            period: Duration::from_secs(1),
        })
    }

    /// Whether a request for `path` (below the mount point) with `method`
    /// falls under this limit.
    pub fn applies_to(&self, method: &str, path: &str) -> bool {
        let base = self.path.trim_end_matches('/');
        let under = path == base
            || base.is_empty()
            || path
                .strip_prefix(base)
                .is_some_and(|rest| rest.starts_with('/'));
        under
            && (self.methods.is_empty()
                || self.methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
    }
}

/// Parses `N/s`, `N/min`, `N/hour` or `N/day`.
pub fn parse_rate(text: &str) -> Result<Rate, &'static str> {
    let (count, period) = text
        .split_once('/')
        .ok_or("must look like \"10/min\" (N per s, min, hour or day)")?;
    let count = count
        .trim()
        .parse::<NonZeroU32>()
        .map_err(|_| "must start with a whole number of calls of at least 1, as in \"10/min\"")?;
    let period = match period.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        "day" => Duration::from_secs(86_400),
        _ => return Err("must end in a period of s, min, hour or day, as in \"10/min\""),
    };
    Ok(Rate { count, period })
}

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Checks every entry, naming the field of the first problem.
pub fn validate_limits(limits: &[RouteLimit]) -> Result<(), ManifestError> {
    for (i, limit) in limits.iter().enumerate() {
        if !limit.path.starts_with('/') || limit.path.contains("..") || limit.path.contains('?') {
            return Err(ManifestError::invalid(
                format!("limits[{i}].path"),
                format!(
                    "{:?} must be a path below the plugin's mount point starting with '/', without '..' or a query (e.g. \"/api/sync\")",
                    limit.path
                ),
            ));
        }
        for (j, method) in limit.methods.iter().enumerate() {
            if !METHODS.contains(&method.as_str()) {
                return Err(ManifestError::invalid(
                    format!("limits[{i}].methods[{j}]"),
                    format!("{method:?} is not one of {}", METHODS.join(", ")),
                ));
            }
        }
        if let Err(problem) = parse_rate(&limit.rate) {
            return Err(ManifestError::invalid(
                format!("limits[{i}].rate"),
                format!("{:?} {problem}", limit.rate),
            ));
        }
        let duplicate = limits[..i]
            .iter()
            .any(|l| l.path == limit.path && l.per == limit.per && l.methods == limit.methods);
        if duplicate {
            return Err(ManifestError::invalid(
                format!("limits[{i}]"),
                format!(
                    "repeats the path {:?}, methods and per of an earlier limit; keep one",
                    limit.path
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(path: &str, methods: &[&str]) -> RouteLimit {
        RouteLimit {
            path: path.into(),
            methods: methods.iter().map(|m| (*m).to_owned()).collect(),
            per: LimitPer::User,
            rate: "10/min".into(),
        }
    }

    #[test]
    fn rates_parse() {
        let rate = parse_rate("10/min").expect("rate");
        assert_eq!(rate.count.get(), 10);
        assert_eq!(rate.period, Duration::from_secs(60));
        assert_eq!(
            parse_rate("5/s").expect("rate").period,
            Duration::from_secs(1)
        );
        assert!(parse_rate("0/min").is_err());
        assert!(parse_rate("10").is_err());
        assert!(parse_rate("10/week").is_err());
    }

    #[test]
    fn a_limit_covers_its_path_and_below_for_its_methods() {
        let writes = limit("/api/items", &["POST", "DELETE"]);
        assert!(writes.applies_to("POST", "/api/items"));
        assert!(writes.applies_to("DELETE", "/api/items/3"));
        assert!(!writes.applies_to("GET", "/api/items"));
        assert!(!writes.applies_to("POST", "/api/itemsx"));
        assert!(!writes.applies_to("POST", "/api"));
        assert!(limit("/", &[]).applies_to("GET", "/anything"));
    }

    #[test]
    fn problems_name_the_field() {
        let mut bad = limit("api", &[]);
        let e = validate_limits(&[bad.clone()]).expect_err("path");
        assert_eq!(e.field(), "limits[0].path");
        bad.path = "/api".into();
        bad.rate = "ten/min".into();
        let e = validate_limits(&[bad.clone()]).expect_err("rate");
        assert_eq!(e.field(), "limits[0].rate");
        bad.rate = "1/s".into();
        bad.methods = vec!["post".into()];
        let e = validate_limits(&[bad.clone()]).expect_err("method");
        assert_eq!(e.field(), "limits[0].methods[0]");
        let ok = limit("/a", &[]);
        let e = validate_limits(&[ok.clone(), ok]).expect_err("duplicate");
        assert_eq!(e.field(), "limits[1]");
    }
}
