//! Scopes of link-local targets (`fe80::1%eth0`): an IPv6 link-local address means
//! nothing without the interface it is on. The engines handle hosts as plain addresses,
//! so the scopes the targets named are kept here, and every socket address built for a
//! host gets its scope.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::RwLock;

static SCOPES: RwLock<Vec<(Ipv6Addr, u32)>> = RwLock::new(Vec::new());

/// True for a unicast link-local address (fe80::/10), the ones a scope applies to.
pub fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// Records that `addr` is on interface `scope`; false if it is known with another scope
/// (one scan cannot tell the two apart).
pub fn register(addr: Ipv6Addr, scope: u32) -> bool {
    let mut s = SCOPES.write().unwrap_or_else(|e| e.into_inner());
    match s.iter().find(|(a, _)| *a == addr) {
        Some(&(_, id)) => id == scope,
        None => {
            s.push((addr, scope));
            true
        }
    }
}

/// The scope recorded for `addr`, or 0.
pub fn of(addr: &Ipv6Addr) -> u32 {
    if !is_link_local(addr) {
        return 0;
    }
    let s = SCOPES.read().unwrap_or_else(|e| e.into_inner());
    s.iter().find(|(a, _)| a == addr).map_or(0, |&(_, id)| id)
}

/// The socket address of `port` on `host`, with its scope.
pub fn socket_addr(host: IpAddr, port: u16) -> SocketAddr {
    match host {
        IpAddr::V6(a) => SocketAddr::V6(SocketAddrV6::new(a, port, 0, of(&a))),
        IpAddr::V4(_) => SocketAddr::new(host, port),
    }
}

/// `a`, given the scope recorded for its address if it has none.
pub fn with_scope(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v) if v.scope_id() == 0 => SocketAddr::V6(SocketAddrV6::new(
            *v.ip(),
            v.port(),
            v.flowinfo(),
            of(v.ip()),
        )),
        _ => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_attach_to_link_local_addresses_only() {
        let a: Ipv6Addr = "fe80::dead:1".parse().unwrap();
        assert!(register(a, 7));
        assert!(register(a, 7));
        assert!(!register(a, 8));
        assert_eq!(
            socket_addr(IpAddr::V6(a), 22).to_string(),
            "[fe80::dead:1%7]:22"
        );
        let g: Ipv6Addr = "2001:2::1".parse().unwrap();
        assert_eq!(of(&g), 0);
    }
}
