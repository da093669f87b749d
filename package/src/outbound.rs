//! Outbound host patterns: the entries of a manifest's
//! `capabilities.outbound_hosts` and of an operator's per-plugin
//! `outbound_hosts` in config.json, parsed and matched by one rule.
//!
//! A pattern is `[scheme://]host[:port]`: `api.example.com`,
//! `https://api.example.com`, `*.example.com:8443`, `127.0.0.1:9000`. The
//! host is an exact lowercase name (or an IPv4 literal), or `*.` followed by
//! a name, which matches any name below it but not the name itself. Without
//! a scheme both `http` and `https` are allowed; without a port only the
//! scheme's default port (80 or 443) is, so a pattern never opens every
//! service of a machine by accident.

use std::fmt;
use std::str::FromStr;

/// One allowed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    scheme: Option<Scheme>,
    host: HostMatch,
    port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn parse(text: &str) -> Option<Scheme> {
        match text {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            _ => None,
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Exact(String),
    /// `*.example.com`, kept as `.example.com`.
    Below(String),
}

impl HostPattern {
    /// Whether a request to `scheme://host:port` is allowed by this
    /// pattern. `host` is compared case-insensitively, without a trailing
    /// dot.
    pub fn matches(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        if self.scheme.is_some_and(|s| s != scheme) {
            return false;
        }
        if port != self.port.unwrap_or(scheme.default_port()) {
            return false;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        match &self.host {
            HostMatch::Exact(name) => host == *name,
            HostMatch::Below(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        }
    }

    /// The host part as written (`api.example.com`, `*.example.com`).
    pub fn host(&self) -> String {
        match &self.host {
            HostMatch::Exact(name) => name.clone(),
            HostMatch::Below(suffix) => format!("*{suffix}"),
        }
    }

    /// Whether the pattern names exactly this host (no wildcard), the only
    /// kind an operator may allow private addresses for.
    pub fn is_exact(&self, host: &str) -> bool {
        matches!(&self.host, HostMatch::Exact(name) if *name == host.trim_end_matches('.').to_ascii_lowercase())
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(scheme) = self.scheme {
            write!(f, "{}://", scheme.as_str())?;
        }
        f.write_str(&self.host())?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

impl FromStr for HostPattern {
    /// What is wrong, to follow the quoted value in a message.
    type Err = &'static str;

    fn from_str(value: &str) -> Result<HostPattern, &'static str> {
        let (scheme, rest) = match value.split_once("://") {
            Some((scheme, rest)) => (
                Some(Scheme::parse(scheme).ok_or(
                    "has a scheme other than http:// or https:// (or write the bare host name)",
                )?),
                rest,
            ),
            None => (None, value),
        };
        if rest.contains('/') {
            return Err("must be a host name without a path (e.g. \"api.example.com\")");
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => match p.parse::<u16>() {
                Ok(port) if port > 0 => (h, Some(port)),
                _ => return Err("has an invalid port (expected 1-65535)"),
            },
            None => (rest, None),
        };
        let (wildcard, name) = match host.strip_prefix("*.") {
            Some(name) => (true, name),
            None => (false, host),
        };
        if name.is_empty() || name.len() > 253 {
            return Err("must be a host name of 1 to 253 characters");
        }
        let labels_ok = name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        });
        if !labels_ok {
            return Err(
                "must be a lowercase host name made of letters, digits, '-' and '.', optionally starting with \"*.\" (e.g. \"api.example.com\", \"*.example.com\")",
            );
        }
        if wildcard && !name.contains('.') {
            return Err(
                "is a wildcard over a whole top-level domain; name at least two labels after \"*.\"",
            );
        }
        let host = if wildcard {
            HostMatch::Below(format!(".{name}"))
        } else {
            HostMatch::Exact(name.to_owned())
        };
        Ok(HostPattern { scheme, host, port })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> HostPattern {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn exact_names_match_only_themselves_on_the_default_port() {
        let pattern = p("api.example.com");
        assert!(pattern.matches(Scheme::Https, "api.example.com", 443));
        assert!(pattern.matches(Scheme::Http, "API.example.com.", 80));
        assert!(!pattern.matches(Scheme::Https, "api.example.com", 8443));
        assert!(!pattern.matches(Scheme::Https, "x.api.example.com", 443));
        assert!(!pattern.matches(Scheme::Https, "api.example.com.evil.net", 443));
        assert!(!pattern.matches(Scheme::Https, "example.com", 443));
    }

    #[test]
    fn wildcards_match_names_below_but_not_the_name_itself() {
        let pattern = p("*.example.com");
        assert!(pattern.matches(Scheme::Https, "a.example.com", 443));
        assert!(pattern.matches(Scheme::Https, "a.b.example.com", 443));
        assert!(!pattern.matches(Scheme::Https, "example.com", 443));
        assert!(!pattern.matches(Scheme::Https, "badexample.com", 443));
    }

    #[test]
    fn scheme_and_port_narrow_the_pattern() {
        let pattern = p("https://api.example.com:8443");
        assert!(pattern.matches(Scheme::Https, "api.example.com", 8443));
        assert!(!pattern.matches(Scheme::Http, "api.example.com", 8443));
        assert!(!pattern.matches(Scheme::Https, "api.example.com", 443));
        let http = p("http://127.0.0.1:9000");
        assert!(http.matches(Scheme::Http, "127.0.0.1", 9000));
        assert_eq!(http.to_string(), "http://127.0.0.1:9000");
        assert!(http.is_exact("127.0.0.1"));
        assert!(!p("*.example.com").is_exact("a.example.com"));
    }

    #[test]
    fn bad_patterns_say_what_is_wrong() {
        for (text, expected) in [
            ("ftp://api.example.com", "scheme"),
            ("api.example.com/v1", "path"),
            ("api.example.com:0", "port"),
            ("api.example.com:99999", "port"),
            ("API.example.com", "lowercase"),
            ("*", "lowercase"),
            ("*.com", "top-level"),
            ("a.*.example.com", "lowercase"),
            ("", "1 to 253"),
        ] {
            let error = text.parse::<HostPattern>().expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
