//! Addresses, families, endpoints and how far a socket can be reached.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use portolan_registry::Proto;
use serde::{Deserialize, Serialize};

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Family {
    #[serde(rename = "ipv4")]
    V4,
    #[serde(rename = "ipv6")]
    V6,
}

impl Family {
    pub fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }

    /// The unspecified address of the family.
    pub fn any(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it stands for; others unchanged.
pub fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// `addr:port`, with IPv6 addresses in brackets.
pub fn fmt_endpoint(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// How far a listener can be reached, ordered by risk (`All` is the greatest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Exposure {
    /// Only from this host (127.0.0.0/8, ::1, `::ffff:127.0.0.1`, or bound to `lo`).
    Loopback,
    /// On one address that is not loopback.
    Address,
    /// On every address: 0.0.0.0, ::, `::ffff:0.0.0.0`, or a dual-stack `[::]`.
    All,
}

impl Exposure {
    pub const ALL: [Exposure; 3] = [Exposure::All, Exposure::Address, Exposure::Loopback];

    pub fn as_str(self) -> &'static str {
        match self {
            Exposure::Loopback => "loopback",
            Exposure::Address => "address",
            Exposure::All => "all",
        }
    }

    /// The exposure of a socket bound to `addr` and, if set, to `interface`
    /// (`SO_BINDTODEVICE`): a socket bound to `lo` is loopback whatever its address.
    ///
    /// ```
    /// use portolan_model::Exposure;
    /// let of = |a: &str, i| Exposure::of(a.parse().unwrap(), i);
    /// assert_eq!(of("::ffff:127.0.0.1", None), Exposure::Loopback);
    /// assert_eq!(of("::ffff:0.0.0.0", None), Exposure::All);
    /// assert_eq!(of("0.0.0.0", Some("lo")), Exposure::Loopback);
    /// assert_eq!(of("198.18.0.2", None), Exposure::Address);
    /// ```
    pub fn of(addr: IpAddr, interface: Option<&str>) -> Exposure {
        if interface == Some("lo") {
            return Exposure::Loopback;
        }
        let addr = canonical(addr);
        if addr.is_unspecified() {
            Exposure::All
        } else if addr.is_loopback() {
            Exposure::Loopback
        } else {
            Exposure::Address
        }
    }
}

impl fmt::Display for Exposure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Exposure {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Exposure::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| format!("unknown exposure '{s}' (expected all, address or loopback)"))
    }
}

/// Where a socket is: its address and port, protocol, network namespace and the interface
/// it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Endpoint {
    pub address: IpAddr,
    pub port: u16,
    pub protocol: Proto,
    /// The namespace label (`host`, an `ip netns` name, `pid:N`), when known.
    pub netns: Option<Arc<str>>,
    /// The interface the socket is bound to (`SO_BINDTODEVICE`).
    pub interface: Option<Arc<str>>,
}

impl Endpoint {
    pub fn new(address: IpAddr, port: u16, protocol: Proto) -> Endpoint {
        Endpoint {
            address,
            port,
            protocol,
            netns: None,
            interface: None,
        }
    }

    pub fn family(&self) -> Family {
        Family::of(self.address)
    }

    pub fn exposure(&self) -> Exposure {
        Exposure::of(self.address, self.interface.as_deref())
    }
}

impl fmt::Display for Endpoint {
    /// `198.18.0.2:25/tcp`, `[::]:53/udp`, `*%lo:631/tcp` style without the wildcard.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", fmt_endpoint(self.address, self.port))?;
        if let Some(i) = &self.interface {
            write!(f, "%{i}")?;
        }
        write!(f, "/{}", self.protocol)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposure_covers_mapped_and_bound() {
        let of = |a: &str, i| Exposure::of(a.parse().unwrap(), i);
        assert_eq!(of("127.0.0.53", None), Exposure::Loopback);
        assert_eq!(of("::1", None), Exposure::Loopback);
        assert_eq!(of("::ffff:127.0.0.1", None), Exposure::Loopback);
        assert_eq!(of("::ffff:0.0.0.0", None), Exposure::All);
        assert_eq!(of("::", None), Exposure::All);
        assert_eq!(of("::", Some("lo")), Exposure::Loopback);
        assert_eq!(of("0.0.0.0", Some("eth0")), Exposure::All);
        assert_eq!(of("192.0.2.1", None), Exposure::Address);
        assert!(Exposure::All > Exposure::Address && Exposure::Address > Exposure::Loopback);
    }

    #[test]
    fn endpoint_round_trips() {
        let mut e = Endpoint::new("::".parse().unwrap(), 53, Proto::Udp);
        e.netns = Some("web1".into());
        e.interface = Some("eth0".into());
        let j = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<Endpoint>(&j).unwrap(), e);
        assert_eq!(e.to_string(), "[::]:53%eth0/udp");
    }
}
