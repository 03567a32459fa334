//! What kind of address an IP is, for the outbound guard. Pure functions: no
//! network, no settings.
//!
//! Addresses that embed an IPv4 address and, when used, reach that IPv4 host
//! (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64
//! `64:ff9b::/96`, 6to4 `2002::/16`) are classified by the embedded address, so
//! `[::ffff:127.0.0.1]` is loopback exactly like `127.0.0.1`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The class of an address, from the outbound guard's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// A globally routable address: allowed (subject to `SWITCHBOARD_OUTBOUND_ALLOW`).
    Public,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), CGNAT `100.64/10`, IPv6
    /// unique local `fc00::/7`, deprecated site-local `fec0::/10`, local-use NAT64.
    Private,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// A cloud instance-metadata endpoint: `169.254.169.254`, `169.254.170.2`
    /// (AWS ECS), `100.100.100.200` (Alibaba), `fd00:ec2::254` (AWS IPv6).
    Metadata,
    /// `0.0.0.0/8`, `::` (on many systems `0.0.0.0` reaches the local host).
    Unspecified,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// Broadcast, the reserved `240/4`, documentation, benchmarking and
    /// protocol-assignment ranges, Teredo, and IPv6 outside global unicast.
    Reserved,
}

impl AddressClass {
    /// Whether this class is reachable at all when private targets are allowed
    /// (`SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE`).
    pub fn allowed_with_private(self) -> bool {
        matches!(self, Self::Public | Self::Loopback | Self::Private | Self::LinkLocal)
    }

    /// Whether this class is reachable with the default (strict) settings.
    pub fn allowed_by_default(self) -> bool {
        matches!(self, Self::Public)
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link-local",
            Self::Metadata => "cloud metadata",
            Self::Unspecified => "unspecified",
            Self::Multicast => "multicast",
            Self::Reserved => "reserved",
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Classifies an address (see [`AddressClass`]).
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: u32, net: [u8; 4], prefix: u32) -> bool {
    let net = u32::from_be_bytes(net);
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    ip & mask == net & mask
}

/// Classifies an IPv4 address.
pub fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    use AddressClass::*;
    let n = u32::from(ip);
    // Most specific first: the metadata endpoints live inside link-local and CGNAT.
    const METADATA: [[u8; 4]; 3] = [[169, 254, 169, 254], [169, 254, 170, 2], [100, 100, 100, 200]];
    if METADATA.iter().any(|m| n == u32::from_be_bytes(*m)) {
        return Metadata;
    }
    let table: &[([u8; 4], u32, AddressClass)] = &[
        ([0, 0, 0, 0], 8, Unspecified),
        ([127, 0, 0, 0], 8, Loopback),
        ([10, 0, 0, 0], 8, Private),
        ([172, 16, 0, 0], 12, Private),
        ([192, 168, 0, 0], 16, Private),
        ([100, 64, 0, 0], 10, Private),
        ([169, 254, 0, 0], 16, LinkLocal),
        ([224, 0, 0, 0], 4, Multicast),
        // 240/4 also holds the limited broadcast 255.255.255.255.
        ([240, 0, 0, 0], 4, Reserved),
        ([192, 0, 0, 0], 24, Reserved),
        ([192, 0, 2, 0], 24, Reserved),
        ([198, 51, 100, 0], 24, Reserved),
        ([203, 0, 113, 0], 24, Reserved),
        ([198, 18, 0, 0], 15, Reserved),
        ([192, 88, 99, 0], 24, Reserved),
    ];
    table.iter().find(|(net, prefix, _)| in_v4(n, *net, *prefix)).map_or(Public, |(_, _, class)| *class)
}

fn in_v6(ip: u128, net: u128, prefix: u32) -> bool {
    let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
    ip & mask == net & mask
}

fn v6(s: &str) -> u128 {
    u128::from(s.parse::<Ipv6Addr>().expect("a valid IPv6 literal"))
}

fn low_v4(n: u128) -> Ipv4Addr {
    Ipv4Addr::from(n as u32)
}

/// Classifies an IPv6 address; IPv4-embedding forms by their IPv4 address.
pub fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    use AddressClass::*;
    let n = u128::from(ip);
    if n == 0 {
        return Unspecified;
    }
    if n == 1 {
        return Loopback;
    }
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        return Metadata;
    }
    // ::ffff:a.b.c.d (IPv4-mapped): what the socket actually reaches is the IPv4 host.
    if in_v6(n, v6("::ffff:0:0"), 96) {
        return classify_v4(low_v4(n));
    }
    // ::a.b.c.d (IPv4-compatible, deprecated but still honoured by some stacks).
    if in_v6(n, 0, 96) {
        return classify_v4(low_v4(n));
    }
    // 64:ff9b::/96 — the well-known NAT64 prefix, which translates to the IPv4 host.
    if in_v6(n, v6("64:ff9b::"), 96) {
        return classify_v4(low_v4(n));
    }
    // 64:ff9b:1::/48 — local-use NAT64 (RFC 8215). Where the IPv4 address sits depends on
    // the local prefix length, so judge by the usual /96 position but never call it public.
    if in_v6(n, v6("64:ff9b:1::"), 48) {
        return match classify_v4(low_v4(n)) {
            Public => Private,
            other => other,
        };
    }
    // 2002::/16 — 6to4: bits 16..48 are the IPv4 address of the relay/host.
    if in_v6(n, v6("2002::"), 16) {
        return classify_v4(Ipv4Addr::from((n >> 80) as u32));
    }
    let table: &[(&str, u32, AddressClass)] = &[
        ("ff00::", 8, Multicast),
        ("fe80::", 10, LinkLocal),
        ("fec0::", 10, Private),
        ("fc00::", 7, Private),
        // Teredo: a tunnel whose endpoints are obfuscated; no legitimate target uses it.
        ("2001::", 32, Reserved),
        ("2001:2::", 48, Reserved),
        ("2001:10::", 28, Reserved),
        ("2001:20::", 28, Reserved),
        ("2001:db8::", 32, Reserved),
        ("3fff::", 20, Reserved),
        ("100::", 64, Reserved),
    ];
    if let Some((_, _, class)) = table.iter().find(|(net, prefix, _)| in_v6(n, v6(net), *prefix)) {
        return *class;
    }
    // Only 2000::/3 is allocated global unicast; everything else is unassigned or special.
    if in_v6(n, v6("2000::"), 3) {
        Public
    } else {
        Reserved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AddressClass::*;

    fn c(s: &str) -> AddressClass {
        classify(s.parse().unwrap())
    }

    #[test]
    fn ipv4_classes() {
        for (addr, class) in [
            ("8.8.8.8", Public),
            ("1.1.1.1", Public),
            ("93.184.216.34", Public),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("10.0.0.1", Private),
            ("10.255.255.255", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("172.32.0.1", Public),
            ("172.15.255.255", Public),
            ("192.168.1.1", Private),
            ("100.64.0.1", Private),
            ("100.127.255.255", Private),
            ("100.128.0.1", Public),
            ("169.254.0.1", LinkLocal),
            ("169.254.169.254", Metadata),
            ("169.254.170.2", Metadata),
            ("100.100.100.200", Metadata),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("240.0.0.1", Reserved),
            ("255.255.255.255", Reserved),
            ("192.0.2.1", Reserved),
            ("198.51.100.7", Reserved),
            ("203.0.113.9", Reserved),
            ("198.18.0.1", Reserved),
            ("198.19.255.255", Reserved),
            ("192.0.0.192", Reserved),
            ("192.88.99.1", Reserved),
        ] {
            assert_eq!(c(addr), class, "{addr}");
        }
    }

    #[test]
    fn ipv6_classes() {
        for (addr, class) in [
            ("2606:4700:4700::1111", Public),
            ("2001:4860:4860::8888", Public),
            ("::1", Loopback),
            ("::", Unspecified),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fec0::1", Private),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fd00:ec2::254", Metadata),
            ("ff02::1", Multicast),
            ("ff05::1:3", Multicast),
            ("2001:db8::1", Reserved),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Reserved),
            ("100::1", Reserved),
            ("3fff::1", Reserved),
            ("4000::1", Reserved),
            ("::1:0:0:1", Reserved),
        ] {
            assert_eq!(c(addr), class, "{addr}");
        }
    }

    #[test]
    fn ipv4_mapped_and_compatible_use_the_embedded_address() {
        for (addr, class) in [
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:7f00:1", Loopback),
            ("::ffff:10.0.0.1", Private),
            ("::ffff:169.254.169.254", Metadata),
            ("::ffff:0.0.0.0", Unspecified),
            ("::ffff:224.0.0.1", Multicast),
            ("::ffff:8.8.8.8", Public),
            ("::127.0.0.1", Loopback),
            ("::169.254.169.254", Metadata),
            ("::8.8.8.8", Public),
        ] {
            assert_eq!(c(addr), class, "{addr}");
        }
    }

    #[test]
    fn nat64_and_6to4_use_the_embedded_address() {
        for (addr, class) in [
            ("64:ff9b::127.0.0.1", Loopback),
            ("64:ff9b::a9fe:a9fe", Metadata),
            ("64:ff9b::10.1.2.3", Private),
            ("64:ff9b::8.8.8.8", Public),
            ("64:ff9b:1::8.8.8.8", Private),
            ("64:ff9b:1::169.254.169.254", Metadata),
            ("2002:7f00:1::1", Loopback),
            ("2002:a9fe:a9fe::", Metadata),
            ("2002:0a00:0001::1", Private),
            ("2002:0808:0808::1", Public),
        ] {
            assert_eq!(c(addr), class, "{addr}");
        }
    }

    #[test]
    fn class_policies() {
        assert!(Public.allowed_by_default());
        assert!(!Loopback.allowed_by_default());
        for class in [Loopback, Private, LinkLocal] {
            assert!(class.allowed_with_private());
        }
        for class in [Metadata, Unspecified, Multicast, Reserved] {
            assert!(!class.allowed_with_private());
        }
        assert_eq!(Metadata.to_string(), "cloud metadata");
    }
}
