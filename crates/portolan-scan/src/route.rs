//! Our source address towards many IPv4 hosts, asked of the kernel once per run of
//! addresses that no route or rule tells apart, instead of once per host.
//!
//! Linux picks an IPv4 source from the route a lookup ends on (its preferred source, or
//! the address its device has towards the gateway), not from the destination itself.
//! Addresses that every route (of every table) and every rule's destination selector
//! treat alike therefore get the same route and the same source. Such a run is an
//! *atom*: the largest aligned block around an address that no route or rule prefix lies
//! strictly inside. The kernel is asked for the first host of each atom; the others get
//! its answer. Looked up per host instead: IPv6 (its source selection weighs each
//! destination against every address), a local route (the source is the destination
//! itself), any multipath route or nexthop object (a hash of the flow picks the path),
//! and more than [`MAX_PREFIXES`] prefixes. The tables are read again for every block of
//! a scan, and one cached answer in [`CHECK_EVERY`] is checked against the kernel: a
//! mismatch turns the cache off for the rest of the scan.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};

use crate::sys::{self, Sources};

/// More route and rule prefixes than this (a full routing table): looked up per host.
pub const MAX_PREFIXES: usize = 1024;

/// One answer from the cache in this many is checked against the kernel.
pub const CHECK_EVERY: u32 = 256;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWRULE: u16 = 32;
const RTM_GETRULE: u16 = 34;
/// RTA_DST and FRA_DST.
const ATTR_DST: u16 = 1;
const RTA_MULTIPATH: u16 = 9;
const RTA_NH_ID: u16 = 30;

/// Blocks the kernel's routing treats apart, whatever the routes say: "this network",
/// loopback, multicast and the reserved block with the limited broadcast.
const SPECIAL: [(u32, u8); 4] = [
    (0x0000_0000, 8),
    (0x7f00_0000, 8),
    (0xe000_0000, 4),
    (0xf000_0000, 4),
];

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

/// The IPv4 prefixes of the routes and rules, masked, sorted and without repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefixes(Vec<(u32, u8)>);

impl Prefixes {
    pub fn new(mut v: Vec<(u32, u8)>) -> Prefixes {
        for p in &mut v {
            p.1 = p.1.min(32);
            p.0 &= mask(p.1);
        }
        v.extend(SPECIAL);
        v.sort_unstable();
        v.dedup();
        Prefixes(v)
    }

    /// The atom of `dst`: (its first address, its prefix length).
    pub fn atom(&self, dst: u32) -> (u32, u8) {
        // dst/len must not hold any prefix strictly: for each (p, l), len >= l, or len
        // past the bits dst shares with p.
        let mut len = 0u8;
        for &(p, l) in &self.0 {
            let common = (p ^ dst).leading_zeros() as u8;
            len = len.max(l.min(common.saturating_add(1)));
        }
        let len = len.min(32);
        (dst & mask(len), len)
    }
}

/// Why a dump cannot give atoms.
#[derive(Debug, PartialEq, Eq)]
pub enum Unusable {
    /// A multipath route or a nexthop object: the path depends on the flow.
    Multipath,
    /// More than [`MAX_PREFIXES`].
    TooMany,
    /// The kernel refused (its errno), or the answer did not parse.
    Failed(i32),
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads one datagram of a route or rule dump into `out`; Ok(true) once the dump's end
/// is in it.
pub fn parse_dump(dgram: &[u8], out: &mut Vec<(u32, u8)>) -> Result<bool, Unusable> {
    let bad = || Unusable::Failed(libc::EBADMSG);
    let mut off = 0;
    while off + 16 <= dgram.len() {
        let len = u32_at(dgram, off).ok_or_else(bad)? as usize;
        let ty = u16_at(dgram, off + 4).ok_or_else(bad)?;
        if len < 16 || off + len > dgram.len() {
            return Err(bad());
        }
        let msg = &dgram[off..off + len];
        match ty {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let e = u32_at(msg, 16).map_or(libc::EBADMSG, |e| -(e as i32));
                return Err(Unusable::Failed(e));
            }
            RTM_NEWROUTE | RTM_NEWRULE => {
                // rtmsg and fib_rule_hdr: the family, then the destination's length.
                let dst_len = *msg.get(17).ok_or_else(bad)?;
                let mut dst = None;
                let mut a = 28;
                while a + 4 <= msg.len() {
                    let alen = usize::from(u16_at(msg, a).unwrap_or(0));
                    let aty = u16_at(msg, a + 2).unwrap_or(0) & 0x3fff;
                    if alen < 4 || a + alen > msg.len() {
                        return Err(bad());
                    }
                    let data = &msg[a + 4..a + alen];
                    match aty {
                        ATTR_DST if data.len() == 4 => {
                            dst = Some(u32::from_be_bytes(data.try_into().unwrap_or([0; 4])));
                        }
                        RTA_MULTIPATH | RTA_NH_ID if ty == RTM_NEWROUTE => {
                            return Err(Unusable::Multipath);
                        }
                        _ => {}
                    }
                    a += alen.div_ceil(4) * 4;
                }
                if dst_len > 0 {
                    let dst = dst.ok_or_else(bad)?;
                    out.push((dst, dst_len));
                    if out.len() > MAX_PREFIXES {
                        return Err(Unusable::TooMany);
                    }
                }
            }
            _ => {}
        }
        off += len.div_ceil(4) * 4;
    }
    Ok(false)
}

/// The prefixes of every IPv4 route (of every table) and rule of this namespace.
pub fn ipv4_prefixes() -> Result<Prefixes, Unusable> {
    let mut out = Vec::new();
    for kind in [RTM_GETROUTE, RTM_GETRULE] {
        let mut res = Ok(false);
        sys::rtnl_dump(kind, libc::AF_INET as u8, &mut |d| {
            res = parse_dump(d, &mut out);
            matches!(res, Ok(false))
        })
        .map_err(|e| Unusable::Failed(e.raw_os_error().unwrap_or(libc::EIO)))?;
        if !res? {
            return Err(Unusable::Failed(libc::ETIMEDOUT));
        }
    }
    Ok(Prefixes::new(out))
}

/// [`Sources`] with the answers of the kernel kept per atom.
#[derive(Default)]
pub struct SourceCache {
    kernel: Sources,
    /// None: every host is looked up.
    prefixes: Option<Prefixes>,
    known: HashMap<(u32, u8), Ipv4Addr>,
    hits: u32,
    /// A cached answer was wrong: per host for the rest of the scan.
    off: bool,
    /// Lookups the kernel was asked for.
    pub asked: u64,
}

impl SourceCache {
    /// A cache with the routing tables read now.
    pub fn new() -> SourceCache {
        let mut c = SourceCache::default();
        c.refresh();
        c
    }

    /// Reads the routing tables again and forgets every answer.
    pub fn refresh(&mut self) {
        self.known.clear();
        self.prefixes = if self.off { None } else { ipv4_prefixes().ok() };
    }

    fn ask(&mut self, dst: IpAddr) -> io::Result<IpAddr> {
        self.asked += 1;
        self.kernel.source_for(dst)
    }

    /// The source address the kernel would use to reach `dst`.
    pub fn source_for(&mut self, dst: IpAddr) -> io::Result<IpAddr> {
        let (IpAddr::V4(d), Some(pre)) = (dst, &self.prefixes) else {
            return self.ask(dst);
        };
        let key = pre.atom(u32::from(d));
        if let Some(&src) = self.known.get(&key) {
            self.hits = self.hits.wrapping_add(1);
            if self.hits % CHECK_EVERY != 0 {
                return Ok(IpAddr::V4(src));
            }
            let real = self.ask(dst);
            if real.as_ref().ok() != Some(&IpAddr::V4(src)) {
                self.off = true;
                self.prefixes = None;
                self.known.clear();
            }
            return real;
        }
        let real = self.ask(dst)?;
        // A local route answers with the destination itself: not shared.
        if let IpAddr::V4(s) = real
            && real != dst
        {
            self.known.insert(key, s);
        }
        Ok(real)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v4(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    #[test]
    fn an_atom_stops_short_of_a_more_specific_route() {
        let p = Prefixes::new(vec![
            (v4("198.19.0.0"), 16),
            (v4("198.18.0.0"), 24),
            (v4("198.18.0.1"), 32),
            (v4("198.19.7.0"), 24),
        ]);
        assert_eq!(p.atom(v4("198.19.0.5")), (v4("198.19.0.0"), 22));
        assert_eq!(p.atom(v4("198.19.7.9")), (v4("198.19.7.0"), 24));
        assert_eq!(p.atom(v4("198.19.200.1")), (v4("198.19.128.0"), 17));
        assert_eq!(p.atom(v4("198.18.0.1")), (v4("198.18.0.1"), 32));
        assert_eq!(p.atom(v4("198.18.0.2")), (v4("198.18.0.2"), 31));
        // Loopback and multicast are apart from everything, routes or not.
        let none = Prefixes::new(Vec::new());
        assert_eq!(none.atom(v4("127.0.0.1")), (v4("127.0.0.0"), 8));
        assert_eq!(none.atom(v4("10.1.2.3")), (v4("8.0.0.0"), 5));
        assert_eq!(none.atom(v4("239.1.1.1")), (v4("224.0.0.0"), 4));
    }

    proptest! {
        #[test]
        fn an_atom_holds_its_address_and_no_prefix_strictly(
            prefixes in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..40),
            dst in any::<u32>(),
        ) {
            let p = Prefixes::new(prefixes);
            let (first, len) = p.atom(dst);
            prop_assert_eq!(dst & mask(len), first);
            let inside = |a: u32, l: u8, q: u32, m: u8| m > l && q & mask(l) == a;
            for &(q, m) in &p.0 {
                // Inside the prefix, or apart from it.
                let within = len >= m && first & mask(m) == q;
                let apart = q & mask(len) != first && first & mask(m) != q;
                prop_assert!(within || apart, "{first:x}/{len} against {q:x}/{m}");
            }
            // And as large as it can be.
            if len > 0 {
                let wider = len - 1;
                let wfirst = dst & mask(wider);
                prop_assert!(p.0.iter().any(|&(q, m)| inside(wfirst, wider, q, m)));
            }
        }
    }

    /// One message of a dump: its type, the destination's length, its attributes.
    type Msg<'a> = (u16, u8, &'a [(u16, &'a [u8])]);

    /// A dump datagram of the given messages.
    fn dgram(msgs: &[Msg<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for &(ty, dst_len, attrs) in msgs {
            let mut body = vec![libc::AF_INET as u8, dst_len, 0, 0, 254, 0, 0, 1, 0, 0, 0, 0];
            for &(aty, data) in attrs {
                let alen = 4 + data.len();
                body.extend_from_slice(&(alen as u16).to_ne_bytes());
                body.extend_from_slice(&aty.to_ne_bytes());
                body.extend_from_slice(data);
                body.resize(body.len().div_ceil(4) * 4, 0);
            }
            let len = 16 + body.len();
            out.extend_from_slice(&(len as u32).to_ne_bytes());
            out.extend_from_slice(&ty.to_ne_bytes());
            out.extend_from_slice(&[0; 10]);
            out.extend_from_slice(&body);
        }
        out
    }

    #[test]
    fn a_dump_gives_its_prefixes_and_a_multipath_route_none() {
        let dst = [198, 19, 0, 0];
        let gw = [198, 18, 0, 2];
        let d = dgram(&[
            (RTM_NEWROUTE, 16, &[(ATTR_DST, &dst), (5, &gw)]),
            (RTM_NEWROUTE, 0, &[(5, &gw)]),
            (RTM_NEWRULE, 24, &[(ATTR_DST, &[198, 18, 7, 0])]),
        ]);
        let mut out = Vec::new();
        assert_eq!(parse_dump(&d, &mut out), Ok(false));
        assert_eq!(out, vec![(v4("198.19.0.0"), 16), (v4("198.18.7.0"), 24)]);
        let done = dgram(&[(NLMSG_DONE, 0, &[])]);
        assert_eq!(parse_dump(&done, &mut out), Ok(true));
        let mp = dgram(&[(
            RTM_NEWROUTE,
            8,
            &[(ATTR_DST, &[10, 0, 0, 0]), (RTA_MULTIPATH, &[0; 8])],
        )]);
        assert_eq!(parse_dump(&mp, &mut Vec::new()), Err(Unusable::Multipath));
        let nh = dgram(&[(
            RTM_NEWROUTE,
            8,
            &[(ATTR_DST, &[10, 0, 0, 0]), (RTA_NH_ID, &[1, 0, 0, 0])],
        )]);
        assert_eq!(parse_dump(&nh, &mut Vec::new()), Err(Unusable::Multipath));
        let mut trunc = dgram(&[(RTM_NEWROUTE, 16, &[(ATTR_DST, &dst)])]);
        trunc.truncate(trunc.len() - 2);
        assert!(parse_dump(&trunc, &mut Vec::new()).is_err());
    }

    #[test]
    fn a_full_table_is_looked_up_per_host() {
        let msgs: Vec<(u16, u8, Vec<u8>)> = (0..=MAX_PREFIXES as u32)
            .map(|i| (RTM_NEWROUTE, 32, (0x0a00_0000 + i).to_be_bytes().to_vec()))
            .collect();
        let attrs: Vec<[(u16, &[u8]); 1]> = msgs.iter().map(|m| [(ATTR_DST, &m.2[..])]).collect();
        let refs: Vec<Msg<'_>> = msgs
            .iter()
            .zip(&attrs)
            .map(|(m, a)| (m.0, m.1, &a[..]))
            .collect();
        let d = dgram(&refs);
        assert_eq!(parse_dump(&d, &mut Vec::new()), Err(Unusable::TooMany));
    }

    /// Every address of 198.18.64.0/18 under routes of several kinds: a gateway on each
    /// of two subnets, a more specific route and a host route inside a larger one, a
    /// preferred source, a local route (the source is the destination), a rule sending a
    /// /24 to another table, and an unreachable route. The cache agrees with the kernel
    /// asked for each host, and asks it far less often.
    #[test]
    fn hosts_under_different_routes_get_the_sources_the_kernel_gives() {
        if !portolan_testkit::require_root(
            "hosts_under_different_routes_get_the_sources_the_kernel_gives",
        ) {
            return;
        }
        let ns = portolan_testkit::Netns::new("fast16rt").unwrap();
        let ip = |a: &str| {
            let args: Vec<&str> = a.split_whitespace().collect();
            ns.ip(&args).unwrap();
        };
        ip("link add d0 type veth peer d1");
        ip("link set d0 up");
        ip("link set d1 up");
        ns.addr("d0", "198.18.1.1/24").unwrap();
        ns.addr("d0", "198.18.2.1/24").unwrap();
        ns.addr("d0", "198.18.3.1/24").unwrap();
        ip("route add 198.18.64.0/18 via 198.18.1.2");
        ip("route add 198.18.80.0/20 via 198.18.2.2");
        ip("route add 198.18.81.7/32 via 198.18.1.2 src 198.18.3.1");
        ip("route add 198.18.90.0/23 dev d0 src 198.18.3.1");
        ip("route add local 198.18.96.0/24 dev lo");
        ip("route add unreachable 198.18.100.0/24");
        ip("route add 198.18.64.0/18 via 198.18.3.2 table 100");
        ip("rule add to 198.18.70.0/24 lookup 100");
        let name = ns.name().to_string();
        std::thread::spawn(move || {
            sys::enter_netns(&name).unwrap();
            let mut cache = SourceCache::new();
            assert!(
                cache.prefixes.is_some(),
                "the tables of the namespace are read"
            );
            let mut kernel = Sources::default();
            let mut by_src = HashMap::new();
            for n in v4("198.18.64.0")..v4("198.18.128.0") {
                let h = IpAddr::V4(Ipv4Addr::from(n));
                let want = kernel.source_for(h).map_err(|e| e.raw_os_error());
                let got = cache.source_for(h).map_err(|e| e.raw_os_error());
                assert_eq!(got, want, "{h}");
                *by_src.entry(want).or_insert(0u32) += 1;
            }
            let src = |s: &str| Ok(IpAddr::V4(s.parse().unwrap()));
            // The /20 less its /23 and its host route; those two, and the rule's /24.
            assert_eq!(by_src[&src("198.18.2.1")], 4096 - 512 - 1);
            assert_eq!(by_src[&src("198.18.3.1")], 512 + 1 + 256);
            assert_eq!(by_src[&src("198.18.96.7")], 1);
            assert_eq!(by_src[&Err(Some(libc::EHOSTUNREACH))], 256);
            let rest = 16384 - 4096 - 256 - 256 - 256;
            assert_eq!(by_src[&src("198.18.1.1")], rest);
            // Asked: the local and unreachable /24s per host, one host in 256 of the
            // rest as a check, and once per atom.
            assert!(
                cache.asked < 512 + 16384 / 256 + 64,
                "asked {}",
                cache.asked
            );
        })
        .join()
        .unwrap();
    }
}
