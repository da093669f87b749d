//! `outbound` in `config.json`: the operator's say over plugins' outbound
//! HTTP. The limits apply to every call; `plugins.<name>` narrows or widens
//! one plugin's manifest allow-list and names the hosts it may reach on
//! private addresses.
//!
//! ```json
//! "outbound": {
//!   "timeout_ms": 5000, "max_response_bytes": 4194304,
//!   "max_in_flight": 8, "max_redirects": 5,
//!   "plugins": {
//!     "rates": {
//!       "hosts": ["https://api.example.com"],
//!       "add_hosts": ["http://rates.lan:8080"],
//!       "allow_private": ["rates.lan"]
//!     }
//!   }
//! }
//! ```

use std::collections::BTreeMap;

use plinth_package::outbound::HostPattern;
use serde::{Deserialize, Serialize};

/// `outbound`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// Whole call (connect, redirects, body) unless the plugin asks for
    /// less.
    pub timeout_ms: u64,
    /// A response body longer than this is cut off and the call fails.
    pub max_response_bytes: u64,
    /// Calls one plugin may have open at once; more wait for a slot
    /// within their time-out.
    pub max_in_flight: u32,
    /// Redirects followed (each re-checked); one more fails the call.
    pub max_redirects: u32,
    pub plugins: BTreeMap<String, PluginOutbound>,
}

/// `outbound.plugins.<name>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginOutbound {
    /// When set, used instead of the manifest's `capabilities.outbound_hosts`
    /// (to narrow it, or to point the plugin at a local stand-in).
    pub hosts: Option<Vec<String>>,
    /// Added to the manifest's list (or to `hosts`).
    pub add_hosts: Vec<String>,
    /// Exact host names (or IP literals) that may resolve to loopback,
    /// private, link-local or the host's own addresses. Wildcards are not
    /// accepted: the exception is for one known machine.
    pub allow_private: Vec<String>,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 5_000,
            max_response_bytes: 4 * 1024 * 1024,
            max_in_flight: 8,
            max_redirects: 5,
            plugins: BTreeMap::new(),
        }
    }
}

impl OutboundConfig {
    /// `Err((key, reason))` for the first bad value.
    pub fn check(&self) -> Result<(), (String, String)> {
        for (key, value) in [
            ("outbound.timeout_ms", self.timeout_ms),
            ("outbound.max_response_bytes", self.max_response_bytes),
            ("outbound.max_in_flight", u64::from(self.max_in_flight)),
        ] {
            if value < 1 {
                return Err((key.into(), "must be at least 1".into()));
            }
        }
        if self.max_redirects > 20 {
            return Err((
                "outbound.max_redirects".into(),
                format!("{} is too many: give 0..=20", self.max_redirects),
            ));
        }
        for (name, plugin) in &self.plugins {
            let lists = [
                ("hosts", plugin.hosts.as_deref().unwrap_or_default()),
                ("add_hosts", &plugin.add_hosts),
            ];
            for (list, hosts) in lists {
                for (i, host) in hosts.iter().enumerate() {
                    if let Err(problem) = host.parse::<HostPattern>() {
                        return Err((
                            format!("outbound.plugins.{name}.{list}[{i}]"),
                            format!("{host:?} {problem}"),
                        ));
                    }
                }
            }
            for (i, host) in plugin.allow_private.iter().enumerate() {
                let exact = host.parse::<HostPattern>().is_ok_and(|p| p.is_exact(host));
                if !exact {
                    return Err((
                        format!("outbound.plugins.{name}.allow_private[{i}]"),
                        format!(
                            "{host:?} must be one exact lowercase host name or IPv4 address, without scheme, port or wildcard"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(plugin: PluginOutbound) -> OutboundConfig {
        let mut config = OutboundConfig::default();
        config.plugins.insert("rates".into(), plugin);
        config
    }

    #[test]
    fn bad_values_are_named_by_key() {
        let zero = OutboundConfig {
            max_in_flight: 0,
            ..OutboundConfig::default()
        };
        assert_eq!(zero.check().expect_err("zero").0, "outbound.max_in_flight");
        let bad_host = with(PluginOutbound {
            add_hosts: vec!["ok.example.com".into(), "https://x/y".into()],
            ..Default::default()
        });
        let (key, reason) = bad_host.check().expect_err("path");
        assert_eq!(key, "outbound.plugins.rates.add_hosts[1]");
        assert!(reason.contains("without a path"), "{reason}");
        for wide in ["*.example.com", "127.0.0.1:8080", "http://stub.test"] {
            let (key, _) = with(PluginOutbound {
                allow_private: vec![wide.into()],
                ..Default::default()
            })
            .check()
            .expect_err(wide);
            assert_eq!(key, "outbound.plugins.rates.allow_private[0]", "{wide}");
        }
        assert!(
            with(PluginOutbound {
                hosts: Some(vec!["http://127.0.0.1:9000".into()]),
                allow_private: vec!["127.0.0.1".into()],
                ..Default::default()
            })
            .check()
            .is_ok()
        );
    }
}
