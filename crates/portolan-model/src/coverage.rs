//! What a scan probed: which addresses, protocols and ports. Anything outside it is
//! "not checked", never "not reachable".

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use portolan_registry::{PortRange, Proto};
use serde::{Deserialize, Serialize};

use crate::net::canonical;

/// A run of consecutive addresses of one family, written `198.18.0.1` or
/// `198.18.0.1-198.18.0.254`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddrRange {
    pub first: IpAddr,
    pub last: IpAddr,
}

fn num(a: IpAddr) -> (bool, u128) {
    match a {
        IpAddr::V4(v4) => (false, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => (true, u128::from(v6)),
    }
}

impl AddrRange {
    pub fn single(a: IpAddr) -> AddrRange {
        AddrRange { first: a, last: a }
    }

    pub fn contains(&self, a: IpAddr) -> bool {
        let (f6, f) = num(self.first);
        let (l6, l) = num(self.last);
        let (a6, n) = num(a);
        f6 == a6 && l6 == a6 && f <= n && n <= l
    }

    /// Grows the range by `a` when `a` comes right after its last address.
    fn extend(&mut self, a: IpAddr) -> bool {
        let (l6, l) = num(self.last);
        let (a6, n) = num(a);
        if l6 == a6 && l.checked_add(1) == Some(n) {
            self.last = a;
            true
        } else {
            l6 == a6 && n >= num(self.first).1 && n <= l
        }
    }

    /// How many addresses it holds (saturating).
    pub fn len(&self) -> u128 {
        num(self.last)
            .1
            .saturating_sub(num(self.first).1)
            .saturating_add(1)
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

impl fmt::Display for AddrRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

impl FromStr for AddrRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid address range '{s}' (expected ADDR or ADDR-ADDR)");
        let (a, b) = match s.split_once('-') {
            Some((a, b)) => (a, b),
            None => (s, s),
        };
        let first: IpAddr = a.trim().parse().map_err(|_| bad())?;
        let last: IpAddr = b.trim().parse().map_err(|_| bad())?;
        let (f6, f) = num(first);
        let (l6, l) = num(last);
        if f6 != l6 || f > l {
            return Err(bad());
        }
        Ok(AddrRange { first, last })
    }
}

impl Serialize for AddrRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AddrRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One protocol and port list probed on a set of addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probed {
    pub protocol: Proto,
    pub ports: Vec<PortRange>,
    pub addresses: Vec<AddrRange>,
}

/// Exactly what a scan probed. Hosts found down were not port-probed and are not in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    pub probed: Vec<Probed>,
}

impl Coverage {
    /// Records that `ports` (sorted, merged) of `protocol` were probed on `addr`.
    pub fn add(&mut self, addr: IpAddr, protocol: Proto, ports: &[PortRange]) {
        if ports.is_empty() {
            return;
        }
        let addr = canonical(addr);
        let group = match self
            .probed
            .iter_mut()
            .find(|p| p.protocol == protocol && p.ports == ports)
        {
            Some(g) => g,
            None => {
                self.probed.push(Probed {
                    protocol,
                    ports: ports.to_vec(),
                    addresses: Vec::new(),
                });
                self.probed.last_mut().expect("just pushed")
            }
        };
        if let Some(last) = group.addresses.last_mut()
            && last.extend(addr)
        {
            return;
        }
        if group.addresses.iter().any(|r| r.contains(addr)) {
            return;
        }
        group.addresses.push(AddrRange::single(addr));
    }

    /// Records a list of single ports.
    pub fn add_ports(&mut self, addr: IpAddr, protocol: Proto, ports: &[u16]) {
        self.add(addr, protocol, &ranges_of(ports));
    }

    /// Puts another scan's coverage into this one.
    pub fn merge(&mut self, other: &Coverage) {
        for p in &other.probed {
            for r in &p.addresses {
                // Ranges are small in practice (one per scanned run of hosts); walking
                // them address by address keeps `add` the one place that merges.
                let (six, f) = num(r.first);
                let (_, l) = num(r.last);
                let mut n = f;
                while n <= l {
                    let a = if six {
                        IpAddr::V6(n.into())
                    } else {
                        IpAddr::V4((n as u32).into())
                    };
                    self.add(a, p.protocol, &p.ports);
                    if n == l {
                        break;
                    }
                    n += 1;
                }
            }
        }
    }

    /// True when `port` of `protocol` was probed on `addr`.
    pub fn covers(&self, addr: IpAddr, protocol: Proto, port: u16) -> bool {
        let addr = canonical(addr);
        self.probed.iter().any(|p| {
            p.protocol == protocol
                && p.ports.iter().any(|r| r.contains(port))
                && p.addresses.iter().any(|r| r.contains(addr))
        })
    }

    /// True when anything at all was probed on `addr`.
    pub fn covers_address(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.probed
            .iter()
            .any(|p| p.addresses.iter().any(|r| r.contains(addr)))
    }

    /// Every address probed, one per range start (small scans: every address).
    pub fn addresses(&self) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = Vec::new();
        for p in &self.probed {
            for r in &p.addresses {
                if r.first == r.last {
                    v.push(r.first);
                } else {
                    v.push(r.first);
                    v.push(r.last);
                }
            }
        }
        v.sort();
        v.dedup();
        v
    }

    pub fn is_empty(&self) -> bool {
        self.probed.iter().all(|p| p.addresses.is_empty())
    }
}

/// Sorted, merged ranges from a list of ports.
pub fn ranges_of(ports: &[u16]) -> Vec<PortRange> {
    let mut p = ports.to_vec();
    p.sort_unstable();
    p.dedup();
    let mut out: Vec<PortRange> = Vec::new();
    for port in p {
        match out.last_mut() {
            Some(r) if r.last.checked_add(1) == Some(port) => r.last = port,
            _ => out.push(PortRange::single(port)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn covers_only_what_was_probed() {
        let mut c = Coverage::default();
        c.add_ports(a("198.18.0.2"), Proto::Tcp, &[22, 25, 80, 81]);
        assert!(c.covers(a("198.18.0.2"), Proto::Tcp, 25));
        assert!(c.covers(a("::ffff:198.18.0.2"), Proto::Tcp, 81));
        assert!(!c.covers(a("198.18.0.2"), Proto::Tcp, 3306));
        assert!(!c.covers(a("198.18.0.2"), Proto::Udp, 53));
        assert!(!c.covers(a("2001:2::2"), Proto::Tcp, 25));
        assert!(!c.covers(a("198.18.0.3"), Proto::Tcp, 25));
        assert!(c.covers_address(a("198.18.0.2")));
    }

    #[test]
    fn consecutive_hosts_make_one_range() {
        let mut c = Coverage::default();
        for i in 1..=200u8 {
            c.add_ports(IpAddr::V4([198, 18, 0, i].into()), Proto::Tcp, &[22]);
        }
        assert_eq!(c.probed.len(), 1);
        assert_eq!(c.probed[0].addresses.len(), 1);
        assert_eq!(
            c.probed[0].addresses[0].to_string(),
            "198.18.0.1-198.18.0.200"
        );
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Coverage>(&j).unwrap(), c);
        let mut m = Coverage::default();
        m.merge(&c);
        assert_eq!(m, c);
    }

    #[test]
    fn bad_ranges_are_refused() {
        assert!("198.18.0.9-198.18.0.1".parse::<AddrRange>().is_err());
        assert!("198.18.0.1-::1".parse::<AddrRange>().is_err());
        assert!("x".parse::<AddrRange>().is_err());
    }
}
