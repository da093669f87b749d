//! Which destinations one plugin may reach: the allow-list check made
//! before any DNS lookup, and the address check made on every address a
//! name resolves to (the SSRF guard). Pure rules, no sockets: the client
//! in `super` calls them at each hop.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use plinth_package::outbound::{HostPattern, Scheme};

use crate::config::OutboundConfig;

/// Why an address is not reachable by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Loopback,
    Private,
    LinkLocal,
    UniqueLocal,
    Unspecified,
    Multicast,
    SharedCgnat,
    Broadcast,
    /// Documentation, benchmarking and reserved ranges: never a real peer.
    Reserved,
    /// The host's own listen address.
    OwnAddress,
}

impl AddressClass {
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private-network address",
            AddressClass::LinkLocal => "a link-local address (cloud metadata services live here)",
            AddressClass::UniqueLocal => "an IPv6 unique-local address",
            AddressClass::Unspecified => "the unspecified address",
            AddressClass::Multicast => "a multicast address",
            AddressClass::SharedCgnat => "a carrier-grade NAT address",
            AddressClass::Broadcast => "the broadcast address",
            AddressClass::Reserved => "a reserved address",
            AddressClass::OwnAddress => "this host's own listen address",
        }
    }
}

/// The class of an address that is not public, or `None` for a public one.
/// IPv4-mapped and IPv4-compatible IPv6 addresses are judged as the IPv4
/// address they carry.
pub fn classify(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return classify_v4(v4);
            }
            classify_v6(v6)
        }
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    let [a, b, _, _] = ip.octets();
    let class = if ip.is_unspecified() || a == 0 {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_private() {
        AddressClass::Private
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if a == 100 && (64..128).contains(&b) {
        AddressClass::SharedCgnat
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if ip.is_broadcast() {
        AddressClass::Broadcast
    } else if ip.is_documentation()
        || a >= 240
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (18..20).contains(&b))
    {
        AddressClass::Reserved
    } else {
        return None;
    };
    Some(class)
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    let first = ip.segments()[0];
    let class = if ip.is_unspecified() {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if first & 0xffc0 == 0xfe80 {
        AddressClass::LinkLocal
    } else if first & 0xfe00 == 0xfc00 {
        AddressClass::UniqueLocal
    } else if first & 0xffc0 == 0xfec0 {
        // Deprecated site-local: private in all but name.
        AddressClass::Private
    } else if first == 0x2001 && ip.segments()[1] == 0x0db8 {
        AddressClass::Reserved
    } else if ip.segments()[..6] == [0; 6] {
        // IPv4-compatible (`::a.b.c.d`): judged by the IPv4 it carries.
        let [.., g, h] = ip.segments();
        let v4 = Ipv4Addr::new((g >> 8) as u8, g as u8, (h >> 8) as u8, h as u8);
        return classify_v4(v4).or(Some(AddressClass::Reserved));
    } else if first == 0x0064 && ip.segments()[1] == 0xff9b {
        // NAT64 (`64:ff9b::a.b.c.d`): judged by the IPv4 it reaches.
        let [.., g, h] = ip.segments();
        let v4 = Ipv4Addr::new((g >> 8) as u8, g as u8, (h >> 8) as u8, h as u8);
        return classify_v4(v4);
    } else {
        return None;
    };
    Some(class)
}

/// Why a destination is refused before any lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// `host:port` as the plugin asked for it.
    pub host: String,
    /// Where the operator or author would allow it.
    pub setting: String,
}

/// One plugin's outbound rules, built from its manifest and config.json.
#[derive(Debug, Clone)]
pub struct OutboundPolicy {
    plugin: String,
    allowed: Vec<HostPattern>,
    /// Exact host names (lower-case) that may reach non-public addresses.
    allow_private: Vec<String>,
    /// The host's own listen address, refused even when public.
    own: Vec<IpAddr>,
    /// Whether config.json replaced the manifest's list.
    replaced: bool,
}

impl OutboundPolicy {
    /// The policy of `plugin`, whose manifest lists `manifest_hosts`.
    /// Patterns that do not parse are skipped: the manifest and config were
    /// validated when loaded, so none should.
    pub fn new(
        plugin: &str,
        manifest_hosts: &[String],
        config: &OutboundConfig,
        own: Vec<IpAddr>,
    ) -> Self {
        let operator = config.plugins.get(plugin);
        let base = operator
            .and_then(|o| o.hosts.as_deref())
            .unwrap_or(manifest_hosts);
        let extra = operator.map(|o| o.add_hosts.as_slice()).unwrap_or_default();
        let allowed = base
            .iter()
            .chain(extra)
            .filter_map(|h| h.parse::<HostPattern>().ok())
            .collect();
        let allow_private = operator
            .map(|o| o.allow_private.clone())
            .unwrap_or_default();
        Self {
            plugin: plugin.to_owned(),
            allowed,
            allow_private,
            own: own.into_iter().filter(|ip| !ip.is_unspecified()).collect(),
            replaced: operator.is_some_and(|o| o.hosts.is_some()),
        }
    }

    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    pub fn allows_any(&self) -> bool {
        !self.allowed.is_empty()
    }

    /// The allow-list check, made before any DNS lookup.
    pub fn check_destination(&self, scheme: Scheme, host: &str, port: u16) -> Result<(), Denied> {
        if self.allowed.iter().any(|p| p.matches(scheme, host, port)) {
            return Ok(());
        }
        let plugin = &self.plugin;
        let setting = if self.replaced {
            format!("outbound.plugins.{plugin}.hosts in config.json")
        } else {
            format!(
                "capabilities.outbound_hosts of the {plugin} manifest (or outbound.plugins.{plugin}.add_hosts in config.json)"
            )
        };
        Err(Denied {
            host: format!("{}://{host}:{port}", scheme.as_str()),
            setting,
        })
    }

    /// The address check for `ip`, one of the addresses `host` resolved to
    /// (or `host` itself when it is a literal): `Err` says what kind of
    /// address it is.
    pub fn check_address(&self, host: &str, ip: IpAddr) -> Result<(), AddressClass> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let exempt = self.allow_private.contains(&host);
        let own = self.own.contains(&ip)
            || ip.to_canonical() != ip && self.own.contains(&ip.to_canonical());
        if exempt {
            return Ok(());
        }
        // The range's name first: "loopback" says more than "own address".
        match classify(ip) {
            Some(class) => Err(class),
            None if own => Err(AddressClass::OwnAddress),
            None => Ok(()),
        }
    }

    /// The setting that would let `host` reach a private address.
    pub fn private_setting(&self, host: &str) -> String {
        format!(
            "add {host:?} to outbound.plugins.{}.allow_private in config.json if this machine is meant to be reached",
            self.plugin
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PluginOutbound;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn non_public_addresses_are_classified() {
        for (text, class) in [
            ("127.0.0.1", AddressClass::Loopback),
            ("127.8.9.10", AddressClass::Loopback),
            ("10.1.2.3", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("192.168.1.1", AddressClass::Private),
            ("169.254.169.254", AddressClass::LinkLocal),
            ("100.64.0.1", AddressClass::SharedCgnat),
            ("0.0.0.0", AddressClass::Unspecified),
            ("0.1.2.3", AddressClass::Unspecified),
            ("224.0.0.1", AddressClass::Multicast),
            ("255.255.255.255", AddressClass::Broadcast),
            ("240.0.0.1", AddressClass::Reserved),
            ("::1", AddressClass::Loopback),
            ("::", AddressClass::Unspecified),
            ("fe80::1", AddressClass::LinkLocal),
            ("fd00::1", AddressClass::UniqueLocal),
            ("ff02::1", AddressClass::Multicast),
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("::ffff:10.0.0.1", AddressClass::Private),
            ("::127.0.0.1", AddressClass::Loopback),
            ("64:ff9b::a9fe:a9fe", AddressClass::LinkLocal),
        ] {
            assert_eq!(classify(ip(text)), Some(class), "{text}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "100.128.0.1",
            "2606:4700::1111",
            "172.32.0.1",
        ] {
            assert_eq!(classify(ip(public)), None, "{public}");
        }
    }

    fn config(plugin: PluginOutbound) -> OutboundConfig {
        let mut config = OutboundConfig::default();
        config.plugins.insert("rates".into(), plugin);
        config
    }

    #[test]
    fn the_allow_list_comes_from_the_manifest_and_the_operator() {
        let manifest = vec!["api.example.com".to_owned(), "*.cdn.example.com".to_owned()];
        let policy = OutboundPolicy::new("rates", &manifest, &OutboundConfig::default(), vec![]);
        assert!(
            policy
                .check_destination(Scheme::Https, "api.example.com", 443)
                .is_ok()
        );
        assert!(
            policy
                .check_destination(Scheme::Https, "x.cdn.example.com", 443)
                .is_ok()
        );
        let denied = policy
            .check_destination(Scheme::Https, "evil.example.net", 443)
            .expect_err("not listed");
        assert_eq!(denied.host, "https://evil.example.net:443");
        assert!(
            denied.setting.contains("capabilities.outbound_hosts"),
            "{}",
            denied.setting
        );

        let narrowed = OutboundPolicy::new(
            "rates",
            &manifest,
            &config(PluginOutbound {
                hosts: Some(vec!["https://api.example.com".into()]),
                add_hosts: vec!["http://127.0.0.1:9000".into()],
                allow_private: vec![],
            }),
            vec![],
        );
        assert!(
            narrowed
                .check_destination(Scheme::Https, "x.cdn.example.com", 443)
                .is_err()
        );
        assert!(
            narrowed
                .check_destination(Scheme::Http, "api.example.com", 80)
                .is_err()
        );
        assert!(
            narrowed
                .check_destination(Scheme::Http, "127.0.0.1", 9000)
                .is_ok()
        );
        let denied = narrowed
            .check_destination(Scheme::Http, "other.example.com", 80)
            .expect_err("replaced list");
        assert!(
            denied.setting.contains("outbound.plugins.rates.hosts"),
            "{}",
            denied.setting
        );
    }

    #[test]
    fn private_addresses_need_the_exact_host_exempted() {
        let manifest = vec!["localhost".to_owned(), "stub.test".to_owned()];
        let policy = OutboundPolicy::new(
            "rates",
            &manifest,
            &config(PluginOutbound {
                allow_private: vec!["stub.test".into()],
                ..Default::default()
            }),
            vec![ip("198.51.100.7"), ip("93.184.216.99")],
        );
        assert_eq!(
            policy.check_address("localhost", ip("127.0.0.1")),
            Err(AddressClass::Loopback)
        );
        assert!(policy.check_address("stub.test", ip("127.0.0.1")).is_ok());
        assert!(policy.check_address("STUB.test.", ip("10.0.0.1")).is_ok());
        assert!(
            policy
                .check_address("localhost", ip("93.184.216.34"))
                .is_ok()
        );
        assert_eq!(
            policy.check_address("localhost", ip("93.184.216.99")),
            Err(AddressClass::OwnAddress)
        );
    }
}
