//! The outbound address guard (SSRF): which URLs and addresses Switchboard may
//! call out to.
//!
//! Two moments use it:
//! - at escalation create, [`OutboundGuard::check_url`] refuses a bad
//!   `callback_url` with a 400 (syntax, scheme, credentials, IP literals,
//!   well-known internal names, and what the name resolves to right now);
//! - at every webhook attempt, [`OutboundGuard::resolve_checked`] resolves the
//!   host and returns the addresses only if every one passes. The webhook engine
//!   must connect to one of *those* addresses (never re-resolve the name), so a
//!   name that changes its answer between check and connect (DNS rebinding)
//!   cannot slip a private address through.
//!
//! Rules, per address (see [`classify`]):
//! - public addresses pass;
//! - loopback, private and link-local pass only with
//!   `SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE`;
//! - cloud metadata, unspecified, multicast and reserved never pass;
//! - then, if `SWITCHBOARD_OUTBOUND_ALLOW` is set, the address must also lie in
//!   one of its CIDRs: the list limits, it never overrides the class check.

mod classify;
pub mod http;

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use ipnet::IpNet;
use url::{Host, Url};

use crate::settings::Settings;

pub use classify::{classify, classify_v4, classify_v6, AddressClass};

/// How long a DNS lookup may take before the guard gives up on it.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why an outbound URL or address is refused. The message names the reason and
/// the address, fit to return to the API client in a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The URL does not parse.
    #[error("callback_url is not a valid URL: {0}")]
    BadUrl(String),
    /// A scheme other than http or https.
    #[error("callback_url must use http or https, not {0:?}")]
    Scheme(String),
    /// The URL has no host.
    #[error("callback_url has no host")]
    MissingHost,
    /// The URL carries a user name or password.
    #[error("callback_url must not contain credentials (user:password@)")]
    Credentials,
    /// The address is of a class the guard refuses.
    #[error("callback_url points at {} {class} address ({addr})", article(*class))]
    Forbidden { addr: IpAddr, class: AddressClass },
    /// The host name is one that always means an internal target (e.g.
    /// `localhost`, `metadata.google.internal`); refused without DNS.
    #[error("callback_url points at {} {class} host ({host})", article(*class))]
    ForbiddenHost { host: String, class: AddressClass },
    /// The address passes the class check but is outside `SWITCHBOARD_OUTBOUND_ALLOW`.
    #[error("callback_url points at {addr}, which is outside the allowed outbound networks")]
    NotAllowed { addr: IpAddr },
    /// The host name did not resolve to any address.
    #[error("callback_url's host {0} could not be resolved")]
    Unresolvable(String),
}

fn article(class: AddressClass) -> &'static str {
    match class {
        AddressClass::Unspecified => "an",
        _ => "a",
    }
}

/// The guard: the outbound policy from the settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundGuard {
    allow_private: bool,
    allow: Option<Vec<IpNet>>,
}

impl OutboundGuard {
    /// `allow_private` lets loopback, private and link-local addresses pass;
    /// `allow`, when set, limits every outbound address to those networks.
    pub fn new(allow_private: bool, allow: Option<Vec<IpNet>>) -> Self {
        Self { allow_private, allow }
    }

    /// From `SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE` and `SWITCHBOARD_OUTBOUND_ALLOW`.
    pub fn from_settings(settings: &Settings) -> Self {
        Self::new(settings.webhook_allow_private, settings.outbound_allow.clone())
    }

    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    pub fn allow_list(&self) -> Option<&[IpNet]> {
        self.allow.as_deref()
    }

    /// Whether one address may be called: its class first, then the allow-list.
    pub fn check_addr(&self, ip: IpAddr) -> Result<(), Refusal> {
        let class = classify(ip);
        let class_ok = match class {
            AddressClass::Public => true,
            AddressClass::Loopback | AddressClass::Private | AddressClass::LinkLocal => self.allow_private,
            AddressClass::Metadata
            | AddressClass::Unspecified
            | AddressClass::Multicast
            | AddressClass::Reserved => false,
        };
        if !class_ok {
            return Err(Refusal::Forbidden { addr: ip, class });
        }
        if let Some(allow) = &self.allow {
            // An IPv4-mapped address reaches the IPv4 host, so it matches an IPv4 net too.
            let canonical = ip.to_canonical();
            if !allow.iter().any(|net| net.contains(&ip) || net.contains(&canonical)) {
                return Err(Refusal::NotAllowed { addr: ip });
            }
        }
        Ok(())
    }

    /// Everything that can be judged without the network: the URL parses, its
    /// scheme is http or https, it has a host and no credentials, an IP-literal
    /// host passes [`check_addr`](Self::check_addr), and a host name is not one
    /// that always means an internal target.
    ///
    /// The `url` crate normalizes numeric IPv4 spellings (`2130706433`,
    /// `0x7f.0.0.1`, `127.1`, `0177.0.0.1`) to dotted quads, so they are
    /// judged as the address they denote.
    pub fn check_url_syntax(&self, raw: &str) -> Result<Url, Refusal> {
        let url = Url::parse(raw.trim()).map_err(|e| Refusal::BadUrl(e.to_string()))?;
        match url.scheme() {
            "http" | "https" => {}
            other => return Err(Refusal::Scheme(other.to_string())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::Credentials);
        }
        match url.host() {
            None => return Err(Refusal::MissingHost),
            Some(Host::Ipv4(ip)) => self.check_addr(IpAddr::V4(ip))?,
            Some(Host::Ipv6(ip)) => self.check_addr(IpAddr::V6(ip))?,
            Some(Host::Domain(name)) => {
                if name.is_empty() {
                    return Err(Refusal::MissingHost);
                }
                if let Some(class) = special_name_class(name) {
                    if !(self.allow_private && class.allowed_with_private()) {
                        return Err(Refusal::ForbiddenHost { host: name.to_string(), class });
                    }
                }
            }
        }
        Ok(url)
    }

    /// The create-time check: [`check_url_syntax`](Self::check_url_syntax),
    /// then, for a host name, resolve it (within [`RESOLVE_TIMEOUT`]) and refuse
    /// if ANY address it resolves to fails [`check_addr`](Self::check_addr).
    ///
    /// If resolution fails or times out, the URL is accepted: DNS may be down
    /// for a moment or the name may not exist yet, and refusing would add no
    /// safety anyway — whoever controls the name controls its answers and can
    /// change them after create. The authoritative check is the connect-time
    /// [`resolve_checked`](Self::resolve_checked), which runs on every attempt.
    pub async fn check_url(&self, raw: &str) -> Result<Url, Refusal> {
        let url = self.check_url_syntax(raw)?;
        if let Some(Host::Domain(name)) = url.host() {
            let port = url.port_or_known_default().unwrap_or(80);
            let resolved = resolve(name, port, RESOLVE_TIMEOUT).await;
            self.judge_at_create(&resolved)?;
        }
        Ok(url)
    }

    /// The connect-time check, for the webhook engine: the addresses `url`'s
    /// host resolves to now (an IP literal resolves to itself), returned only
    /// if every one passes. Connect to one of these, never to the name.
    pub async fn resolve_checked(&self, url: &Url) -> Result<Vec<SocketAddr>, Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal::Scheme(url.scheme().to_string()));
        }
        let port = url.port_or_known_default().unwrap_or(80);
        match url.host() {
            None => Err(Refusal::MissingHost),
            Some(Host::Ipv4(ip)) => self.judge_at_connect(&ip.to_string(), Ok(vec![(ip, port).into()])),
            Some(Host::Ipv6(ip)) => self.judge_at_connect(&ip.to_string(), Ok(vec![(ip, port).into()])),
            Some(Host::Domain(name)) => {
                self.check_name(name)?;
                let resolved = resolve(name, port, RESOLVE_TIMEOUT).await;
                self.judge_at_connect(name, resolved)
            }
        }
    }

    /// A host name that always means an internal target is refused without DNS.
    fn check_name(&self, name: &str) -> Result<(), Refusal> {
        match special_name_class(name) {
            Some(class) if !(self.allow_private && class.allowed_with_private()) => {
                Err(Refusal::ForbiddenHost { host: name.to_string(), class })
            }
            _ => Ok(()),
        }
    }

    /// [`resolve_checked`](Self::resolve_checked) for a name whose lookup
    /// answered `addrs` (tests script the answers; the server asks the system).
    #[cfg(test)]
    pub(crate) fn judge_name(&self, name: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, Refusal> {
        self.check_name(name)?;
        self.judge_at_connect(name, Ok(addrs))
    }

    /// Create time: refuse if any resolved address fails; accept a failed lookup.
    fn judge_at_create(&self, resolved: &Result<Vec<SocketAddr>, ResolveFailure>) -> Result<(), Refusal> {
        match resolved {
            Ok(addrs) => addrs.iter().try_for_each(|a| self.check_addr(a.ip())),
            Err(failure) => {
                tracing::debug!(%failure, "callback_url host did not resolve at create; checked again at connect");
                Ok(())
            }
        }
    }

    /// Connect time: every address must pass, and there must be at least one.
    fn judge_at_connect(
        &self,
        host: &str,
        resolved: Result<Vec<SocketAddr>, ResolveFailure>,
    ) -> Result<Vec<SocketAddr>, Refusal> {
        let addrs = resolved.map_err(|_| Refusal::Unresolvable(host.to_string()))?;
        let mut seen = HashSet::new();
        let addrs: Vec<SocketAddr> = addrs.into_iter().filter(|a| seen.insert(*a)).collect();
        if addrs.is_empty() {
            return Err(Refusal::Unresolvable(host.to_string()));
        }
        for addr in &addrs {
            self.check_addr(addr.ip())?;
        }
        Ok(addrs)
    }
}

/// Host names that always denote an internal target, judged without DNS.
fn special_name_class(name: &str) -> Option<AddressClass> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    const METADATA_NAMES: [&str; 4] =
        ["metadata.google.internal", "metadata.goog", "metadata", "instance-data"];
    if METADATA_NAMES.contains(&name.as_str()) {
        return Some(AddressClass::Metadata);
    }
    if name == "localhost" || name.ends_with(".localhost") {
        return Some(AddressClass::Loopback);
    }
    // mDNS (.local) and cloud/container-internal names (.internal, e.g.
    // host.docker.internal, *.ec2.internal) only ever reach the local network.
    if name.ends_with(".local") || name.ends_with(".internal") || name == "local" || name == "internal" {
        return Some(AddressClass::Private);
    }
    None
}

/// Why a lookup produced no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ResolveFailure {
    TimedOut,
    Failed(String),
}

impl fmt::Display for ResolveFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimedOut => f.write_str("lookup timed out"),
            Self::Failed(e) => write!(f, "lookup failed: {e}"),
        }
    }
}

/// Resolves `host:port` with the system resolver on the blocking pool (tokio's
/// `net` feature is not enabled), giving up after `timeout`. A lookup that times
/// out keeps its blocking thread until the resolver returns; that is bounded by
/// the system resolver's own timeouts.
async fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, ResolveFailure> {
    let host = host.to_string();
    let lookup = tokio::task::spawn_blocking(move || {
        (host.as_str(), port).to_socket_addrs().map(Iterator::collect::<Vec<_>>)
    });
    match tokio::time::timeout(timeout, lookup).await {
        Err(_) => Err(ResolveFailure::TimedOut),
        Ok(Err(join)) => Err(ResolveFailure::Failed(join.to_string())),
        Ok(Ok(Err(io))) => Err(ResolveFailure::Failed(io.to_string())),
        Ok(Ok(Ok(addrs))) => Ok(addrs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> OutboundGuard {
        OutboundGuard::new(false, None)
    }

    fn permissive() -> OutboundGuard {
        OutboundGuard::new(true, None)
    }

    fn nets(list: &[&str]) -> Option<Vec<IpNet>> {
        Some(list.iter().map(|s| s.parse().unwrap()).collect())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn forbidden_class(r: Result<Url, Refusal>) -> AddressClass {
        match r {
            Err(Refusal::Forbidden { class, .. }) | Err(Refusal::ForbiddenHost { class, .. }) => class,
            other => panic!("expected a forbidden address, got {other:?}"),
        }
    }

    #[test]
    fn public_addresses_pass() {
        for a in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert_eq!(strict().check_addr(ip(a)), Ok(()), "{a}");
            assert_eq!(permissive().check_addr(ip(a)), Ok(()), "{a}");
        }
    }

    #[test]
    fn every_internal_class_is_refused_by_default() {
        for (a, class) in [
            ("127.0.0.1", AddressClass::Loopback),
            ("::1", AddressClass::Loopback),
            ("10.0.0.1", AddressClass::Private),
            ("172.16.5.4", AddressClass::Private),
            ("192.168.0.1", AddressClass::Private),
            ("100.64.0.1", AddressClass::Private),
            ("fd00::1", AddressClass::Private),
            ("169.254.1.1", AddressClass::LinkLocal),
            ("fe80::1", AddressClass::LinkLocal),
            ("169.254.169.254", AddressClass::Metadata),
            ("169.254.170.2", AddressClass::Metadata),
            ("fd00:ec2::254", AddressClass::Metadata),
            ("0.0.0.0", AddressClass::Unspecified),
            ("::", AddressClass::Unspecified),
            ("224.0.0.1", AddressClass::Multicast),
            ("ff02::1", AddressClass::Multicast),
            ("255.255.255.255", AddressClass::Reserved),
            ("240.0.0.1", AddressClass::Reserved),
            ("192.0.2.1", AddressClass::Reserved),
            ("2001:db8::1", AddressClass::Reserved),
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("::ffff:169.254.169.254", AddressClass::Metadata),
            ("64:ff9b::7f00:1", AddressClass::Loopback),
            ("2002:a9fe:a9fe::1", AddressClass::Metadata),
        ] {
            assert_eq!(strict().check_addr(ip(a)), Err(Refusal::Forbidden { addr: ip(a), class }), "{a}");
        }
    }

    #[test]
    fn allow_private_admits_loopback_private_link_local_only() {
        let g = permissive();
        for a in ["127.0.0.1", "::1", "10.0.0.1", "192.168.1.1", "fd00::1", "169.254.1.1", "fe80::1"] {
            assert_eq!(g.check_addr(ip(a)), Ok(()), "{a}");
        }
        for a in [
            "169.254.169.254",
            "169.254.170.2",
            "100.100.100.200",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "ff02::1",
            "255.255.255.255",
            "198.18.0.1",
        ] {
            assert!(matches!(g.check_addr(ip(a)), Err(Refusal::Forbidden { .. })), "{a}");
        }
    }

    #[test]
    fn allow_list_limits_and_never_overrides() {
        let g = OutboundGuard::new(true, nets(&["127.0.0.0/8"]));
        assert_eq!(g.check_addr(ip("127.0.0.1")), Ok(()));
        assert_eq!(g.check_addr(ip("::ffff:127.0.0.1")), Ok(()));
        assert_eq!(g.check_addr(ip("10.0.0.1")), Err(Refusal::NotAllowed { addr: ip("10.0.0.1") }));
        assert_eq!(g.check_addr(ip("8.8.8.8")), Err(Refusal::NotAllowed { addr: ip("8.8.8.8") }));
        assert_eq!(g.check_addr(ip("::1")), Err(Refusal::NotAllowed { addr: ip("::1") }));

        // Listing a private net does not admit it without allow_private.
        let g = OutboundGuard::new(false, nets(&["10.0.0.0/8", "8.8.8.0/24"]));
        assert!(matches!(g.check_addr(ip("10.0.0.1")), Err(Refusal::Forbidden { .. })));
        assert_eq!(g.check_addr(ip("8.8.8.8")), Ok(()));
        assert_eq!(g.check_addr(ip("1.1.1.1")), Err(Refusal::NotAllowed { addr: ip("1.1.1.1") }));

        // Listing the metadata address never admits it.
        let g = OutboundGuard::new(true, nets(&["169.254.0.0/16", "0.0.0.0/0"]));
        assert!(matches!(g.check_addr(ip("169.254.169.254")), Err(Refusal::Forbidden { .. })));
        assert!(matches!(g.check_addr(ip("0.0.0.0")), Err(Refusal::Forbidden { .. })));
    }

    #[test]
    fn numeric_ipv4_spellings_are_normalized_and_refused() {
        for raw in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.0.0.1/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://127.0.1/",
            "https://127.0.0.1:8443/hook",
        ] {
            assert_eq!(forbidden_class(strict().check_url_syntax(raw)), AddressClass::Loopback, "{raw}");
        }
        assert_eq!(forbidden_class(strict().check_url_syntax("http://0/")), AddressClass::Unspecified);
        assert_eq!(forbidden_class(strict().check_url_syntax("http://2852039166/")), AddressClass::Metadata);
        assert_eq!(forbidden_class(strict().check_url_syntax("http://0xa9fea9fe/")), AddressClass::Metadata);
    }

    #[test]
    fn ipv6_literals_are_checked() {
        for (raw, class) in [
            ("http://[::1]/", AddressClass::Loopback),
            ("http://[::ffff:127.0.0.1]/", AddressClass::Loopback),
            ("http://[::ffff:7f00:1]:8080/", AddressClass::Loopback),
            ("http://[::ffff:169.254.169.254]/", AddressClass::Metadata),
            ("http://[fd00:ec2::254]/latest/meta-data/", AddressClass::Metadata),
            ("http://[::]/", AddressClass::Unspecified),
            ("http://[fe80::1]/", AddressClass::LinkLocal),
            ("http://[fc00::1]/", AddressClass::Private),
            ("http://[ff02::1]/", AddressClass::Multicast),
            ("http://[64:ff9b::a9fe:a9fe]/", AddressClass::Metadata),
        ] {
            assert_eq!(forbidden_class(strict().check_url_syntax(raw)), class, "{raw}");
        }
        assert!(strict().check_url_syntax("https://[2606:4700:4700::1111]/hook").is_ok());
    }

    #[test]
    fn metadata_urls_are_refused_even_with_allow_private() {
        for raw in [
            "http://169.254.169.254/latest/meta-data/",
            "http://169.254.170.2/v2/credentials",
            "http://[fd00:ec2::254]/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://METADATA.GOOGLE.INTERNAL./",
            "http://0.0.0.0:8080/",
        ] {
            let class = forbidden_class(permissive().check_url_syntax(raw));
            assert!(matches!(class, AddressClass::Metadata | AddressClass::Unspecified), "{raw}");
        }
    }

    #[test]
    fn internal_names_are_refused_without_dns() {
        for (raw, class) in [
            ("http://localhost/", AddressClass::Loopback),
            ("http://LOCALHOST:3000/", AddressClass::Loopback),
            ("http://localhost./", AddressClass::Loopback),
            ("http://api.localhost/", AddressClass::Loopback),
            ("http://printer.local/", AddressClass::Private),
            ("http://host.docker.internal/", AddressClass::Private),
            ("http://ip-10-0-0-1.ec2.internal/", AddressClass::Private),
            ("http://metadata.google.internal/", AddressClass::Metadata),
        ] {
            assert_eq!(forbidden_class(strict().check_url_syntax(raw)), class, "{raw}");
        }
        // With allow_private, local names pass the syntax check (the addresses they resolve to
        // are checked later), but metadata names never do.
        assert!(permissive().check_url_syntax("http://localhost:8080/hook").is_ok());
        assert!(permissive().check_url_syntax("http://printer.local/").is_ok());
        assert!(permissive().check_url_syntax("http://metadata.google.internal/").is_err());
    }

    #[test]
    fn schemes_other_than_http_are_refused() {
        for (raw, scheme) in [
            ("ftp://example.com/file", "ftp"),
            ("file:///etc/passwd", "file"),
            ("gopher://example.com:70/_", "gopher"),
            ("javascript:alert(1)", "javascript"),
            ("ws://example.com/", "ws"),
            ("data:text/plain,hi", "data"),
        ] {
            assert_eq!(strict().check_url_syntax(raw), Err(Refusal::Scheme(scheme.to_string())), "{raw}");
        }
    }

    #[test]
    fn credentials_are_refused() {
        for raw in [
            "https://user:pass@example.com/hook",
            "https://user@example.com/hook",
            "https://:secret@example.com/hook",
            "http://example.com@127.0.0.1/",
        ] {
            assert_eq!(strict().check_url_syntax(raw), Err(Refusal::Credentials), "{raw}");
        }
    }

    #[test]
    fn malformed_and_hostless_urls_are_refused() {
        for raw in
            ["", "not a url", "example.com/hook", "http://", "https://:443/", "http://[::1/", "http://a b/"]
        {
            let r = strict().check_url_syntax(raw);
            assert!(matches!(r, Err(Refusal::BadUrl(_)) | Err(Refusal::MissingHost)), "{raw}: {r:?}");
        }
    }

    #[test]
    fn public_urls_pass_syntax() {
        for raw in ["https://example.com/hook", "http://example.com:8080/a?b=c", "https://8.8.8.8/x"] {
            let url = strict().check_url_syntax(raw).unwrap();
            assert!(matches!(url.scheme(), "http" | "https"));
        }
    }

    #[test]
    fn refusal_messages_name_reason_and_address() {
        let e = strict().check_url_syntax("http://127.0.0.1/").unwrap_err();
        assert_eq!(e.to_string(), "callback_url points at a loopback address (127.0.0.1)");
        let e = strict().check_url_syntax("http://0.0.0.0/").unwrap_err();
        assert_eq!(e.to_string(), "callback_url points at an unspecified address (0.0.0.0)");
        let e = strict().check_url_syntax("http://169.254.169.254/").unwrap_err();
        assert_eq!(e.to_string(), "callback_url points at a cloud metadata address (169.254.169.254)");
        let e = strict().check_url_syntax("http://localhost/").unwrap_err();
        assert_eq!(e.to_string(), "callback_url points at a loopback host (localhost)");
        let e = OutboundGuard::new(false, nets(&["10.0.0.0/8"])).check_addr(ip("8.8.8.8")).unwrap_err();
        assert!(e.to_string().contains("8.8.8.8"));
        assert!(strict().check_url_syntax("ftp://x/").unwrap_err().to_string().contains("ftp"));
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn create_check_refuses_if_any_resolved_address_fails() {
        let g = strict();
        assert_eq!(g.judge_at_create(&Ok(vec![sa("8.8.8.8:443"), sa("[2001:4860::1]:443")])), Ok(()));
        assert!(matches!(
            g.judge_at_create(&Ok(vec![sa("8.8.8.8:443"), sa("10.0.0.1:443")])),
            Err(Refusal::Forbidden { class: AddressClass::Private, .. })
        ));
        // A failed or slow lookup is accepted at create; connect time checks again.
        assert_eq!(g.judge_at_create(&Err(ResolveFailure::TimedOut)), Ok(()));
        assert_eq!(g.judge_at_create(&Err(ResolveFailure::Failed("NXDOMAIN".into()))), Ok(()));
    }

    #[test]
    fn connect_check_returns_addresses_only_if_all_pass() {
        let g = strict();
        assert_eq!(
            g.judge_at_connect("h", Ok(vec![sa("8.8.8.8:443"), sa("8.8.8.8:443"), sa("1.1.1.1:443")])),
            Ok(vec![sa("8.8.8.8:443"), sa("1.1.1.1:443")])
        );
        assert!(matches!(
            g.judge_at_connect("h", Ok(vec![sa("8.8.8.8:443"), sa("[::ffff:127.0.0.1]:443")])),
            Err(Refusal::Forbidden { class: AddressClass::Loopback, .. })
        ));
        assert_eq!(g.judge_at_connect("h", Ok(vec![])), Err(Refusal::Unresolvable("h".into())));
        assert_eq!(
            g.judge_at_connect("h", Err(ResolveFailure::TimedOut)),
            Err(Refusal::Unresolvable("h".into()))
        );
        let limited = OutboundGuard::new(false, nets(&["8.8.8.0/24"]));
        assert!(matches!(
            limited.judge_at_connect("h", Ok(vec![sa("8.8.8.8:443"), sa("1.1.1.1:443")])),
            Err(Refusal::NotAllowed { .. })
        ));
    }

    #[tokio::test]
    async fn check_url_refuses_literals_and_internal_names_without_network() {
        let g = strict();
        for raw in [
            "http://2130706433/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:9/",
            "http://169.254.169.254/",
            "gopher://example.com/",
        ] {
            assert!(g.check_url(raw).await.is_err(), "{raw}");
        }
        assert!(g.check_url("https://8.8.8.8/hook").await.is_ok());
    }

    #[tokio::test]
    async fn resolve_checked_literals() {
        let g = strict();
        let url = Url::parse("https://8.8.8.8/hook").unwrap();
        assert_eq!(g.resolve_checked(&url).await, Ok(vec![sa("8.8.8.8:443")]));
        let url = Url::parse("http://[2606:4700:4700::1111]:8080/").unwrap();
        assert_eq!(g.resolve_checked(&url).await, Ok(vec![sa("[2606:4700:4700::1111]:8080")]));
        for raw in ["http://127.1/", "http://[::1]/", "http://169.254.169.254/", "http://localhost/"] {
            let url = Url::parse(raw).unwrap();
            assert!(g.resolve_checked(&url).await.is_err(), "{raw}");
        }
        let url = Url::parse("ftp://8.8.8.8/").unwrap();
        assert_eq!(g.resolve_checked(&url).await, Err(Refusal::Scheme("ftp".into())));
    }

    /// Resolves `localhost` through the system resolver (never an external name).
    #[tokio::test]
    async fn resolve_checked_localhost_with_allow_private_and_allow_list() {
        let url = Url::parse("http://localhost:8080/hook").unwrap();
        let addrs = permissive().resolve_checked(&url).await.unwrap();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.port() == 8080 && classify(a.ip()) == AddressClass::Loopback));
        assert!(permissive().check_url("http://localhost:8080/hook").await.is_ok());

        let limited = OutboundGuard::new(true, nets(&["10.0.0.0/8"]));
        assert!(matches!(limited.resolve_checked(&url).await, Err(Refusal::NotAllowed { .. })));
        assert!(matches!(
            limited.check_url("http://localhost:8080/hook").await,
            Err(Refusal::NotAllowed { .. })
        ));
    }
}
