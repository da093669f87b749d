//! The vendor server's agent endpoint, `vendor.endpoint` in a host's
//! config.json: `ws://HOST[:PORT]/PATH` or `wss://HOST[:PORT]/PATH`. The
//! host's config check and its upgrade agent both read it through
//! [`WsEndpoint::parse`], so what one accepts the other can use.

/// A parsed `ws://` or `wss://` endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsEndpoint<'a> {
    /// `wss://` (TLS) rather than `ws://`.
    pub secure: bool,
    /// Everything between `//` and the path: `[user@]host[:port]`.
    pub authority: &'a str,
    /// The host name or address, without port or IPv6 brackets.
    pub host: &'a str,
}

/// Why an endpoint is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("is not a WebSocket URL (ws://… or wss://…)")]
    NotWebSocket,
    #[error("has no valid host")]
    NoHost,
}

impl<'a> WsEndpoint<'a> {
    pub fn parse(endpoint: &'a str) -> Result<Self, EndpointError> {
        let (secure, rest) = if let Some(rest) = endpoint.strip_prefix("wss://") {
            (true, rest)
        } else if let Some(rest) = endpoint.strip_prefix("ws://") {
            (false, rest)
        } else {
            return Err(EndpointError::NotWebSocket);
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host_port = authority.rsplit('@').next().unwrap_or("");
        if host_port.is_empty()
            || host_port.starts_with(':')
            || endpoint.contains(char::is_whitespace)
        {
            return Err(EndpointError::NoHost);
        }
        let host = match host_port.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host_port.split(':').next().unwrap_or(""),
        };
        if host.is_empty() {
            return Err(EndpointError::NoHost);
        }
        Ok(Self {
            secure,
            authority,
            host,
        })
    }

    /// The HTTP base the same server answers downloads on:
    /// `ws://h:p/x` → `http://h:p`, `wss://h/x` → `https://h`.
    pub fn http_base(&self) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_into_host_and_http_base() {
        let e = WsEndpoint::parse("wss://vendor.example.com:8443/api/agent?x=1").expect("valid");
        assert!(e.secure);
        assert_eq!(e.host, "vendor.example.com");
        assert_eq!(e.http_base(), "https://vendor.example.com:8443");
        let e = WsEndpoint::parse("ws://[::1]:7400/api/agent").expect("valid");
        assert_eq!(e.host, "::1");
        assert_eq!(e.http_base(), "http://[::1]:7400");
    }

    #[test]
    fn bad_endpoints_say_why() {
        assert_eq!(
            WsEndpoint::parse("https://vendor.example.com"),
            Err(EndpointError::NotWebSocket)
        );
        for bad in ["ws:///path", "ws://:80/x", "wss://a b/x", "ws://user@/x"] {
            assert_eq!(WsEndpoint::parse(bad), Err(EndpointError::NoHost), "{bad}");
        }
    }
}
