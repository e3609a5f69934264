//! Targets: addresses, CIDR blocks, ranges and host names, with exclusions and a cap on
//! how many addresses one scan may cover.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};

/// The most addresses one scan covers (a /8, or a /104 of IPv6); more is almost certainly
/// a typo (`/8` for `/24`, or an IPv6 `/64`).
pub const MAX_HOSTS: u128 = 1 << 24;

/// Why a target could not be used. Each variant names the bad token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("invalid target '{token}': {why}")]
    Bad { token: String, why: &'static str },
    #[error("cannot resolve host name '{name}': {why}")]
    Resolve { name: String, why: String },
    #[error("'{0}' is a host name, but name resolution is off (-n)")]
    NoResolve(String),
    #[error("targets cover {count} addresses, more than the limit of {max}", max = MAX_HOSTS)]
    TooMany { count: u128 },
    #[error("no targets given")]
    Empty,
}

/// One target as written on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Addr(IpAddr),
    /// An address and a prefix length: `198.18.0.0/24`.
    Cidr(IpAddr, u8),
    /// An inclusive range: `198.18.0.1-20` or `2001:2::1-2001:2::ff`.
    Range(IpAddr, IpAddr),
    /// A host name, resolved when the set is built.
    Name(String),
    /// A link-local IPv6 address on one interface: `fe80::1%eth0` (the interface as
    /// written, and its index).
    Scoped(Ipv6Addr, String, u32),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Addr(a) => write!(f, "{a}"),
            Target::Cidr(a, n) => write!(f, "{a}/{n}"),
            Target::Range(a, b) => write!(f, "{a}-{b}"),
            Target::Name(n) => f.write_str(n),
            Target::Scoped(a, iface, _) => write!(f, "{a}%{iface}"),
        }
    }
}

impl Target {
    /// Parses one target token.
    pub fn parse(token: &str) -> Result<Target, TargetError> {
        let t = token.trim();
        let bad = |why| TargetError::Bad {
            token: token.to_string(),
            why,
        };
        if t.is_empty() {
            return Err(bad("empty"));
        }
        if t.len() > 255 {
            return Err(bad("longer than 255 characters"));
        }
        if let Ok(a) = t.parse::<IpAddr>() {
            return Ok(Target::Addr(a));
        }
        if let Some((a, iface)) = t.split_once('%') {
            let a = a.strip_prefix('[').unwrap_or(a);
            let iface = iface.strip_suffix(']').unwrap_or(iface);
            return parse_scoped(a, iface).map_err(bad);
        }
        // Bracketed IPv6 ([2001:2::1]) as URLs write it.
        if let Some(inner) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']'))
            && let Ok(a) = inner.parse::<Ipv6Addr>()
        {
            return Ok(Target::Addr(IpAddr::V6(a)));
        }
        if let Some((a, p)) = t.split_once('/') {
            let addr = a
                .parse::<IpAddr>()
                .map_err(|_| bad("the part before '/' is not an IP address"))?;
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("the prefix length is not a number"));
            }
            let len: u8 = p.parse().map_err(|_| bad("prefix length too large"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            if len > max {
                return Err(bad("prefix length too large for the address family"));
            }
            return Ok(Target::Cidr(addr, len));
        }
        if let Some((a, b)) = t.split_once('-')
            && let Ok(first) = a.parse::<IpAddr>()
        {
            let last = match (first, b.parse::<IpAddr>()) {
                (_, Ok(last)) => last,
                (IpAddr::V4(f), Err(_)) => {
                    if b.is_empty() || b.len() > 3 || !b.bytes().all(|c| c.is_ascii_digit()) {
                        return Err(bad("the range end is neither an address nor an octet"));
                    }
                    let o: u8 = b.parse().map_err(|_| bad("range end octet above 255"))?;
                    let [x, y, z, _] = f.octets();
                    IpAddr::V4(Ipv4Addr::new(x, y, z, o))
                }
                (IpAddr::V6(_), Err(_)) => {
                    return Err(bad("an IPv6 range needs a full end address"));
                }
            };
            if first.is_ipv4() != last.is_ipv4() {
                return Err(bad("the range mixes IPv4 and IPv6"));
            }
            if to_u128(last) < to_u128(first) {
                return Err(bad("the range ends before it starts"));
            }
            return Ok(Target::Range(first, last));
        }
        if is_host_name(t) {
            return Ok(Target::Name(t.to_string()));
        }
        Err(bad("not an address, CIDR block, range or host name"))
    }
}

/// `fe80::1` and `eth0` (or an interface index) of `fe80::1%eth0`.
fn parse_scoped(a: &str, iface: &str) -> Result<Target, &'static str> {
    let addr: Ipv6Addr = a
        .parse()
        .map_err(|_| "a scope (%INTERFACE) follows an IPv6 address")?;
    if !crate::scope::is_link_local(&addr) {
        return Err("a scope (%INTERFACE) applies to link-local addresses (fe80::/10) only");
    }
    let name_ok = !iface.is_empty()
        && iface.len() < 16
        && iface
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if !name_ok {
        return Err("the scope is not an interface name or index");
    }
    // A numeric address with a scope: getaddrinfo maps the interface name (or index) to
    // its index, and asks no name server.
    let id = (format!("{addr}%{iface}").as_str(), 0)
        .to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .and_then(|s| match s {
            std::net::SocketAddr::V6(v) => Some(v.scope_id()),
            std::net::SocketAddr::V4(_) => None,
        })
        .filter(|&id| id != 0)
        .ok_or("no such network interface")?;
    Ok(Target::Scoped(addr, iface.to_string(), id))
}

/// A syntactically valid DNS name: labels of letters, digits, `-` and `_`, not starting or
/// ending with `-`, at most 63 characters each, and not all digits (that would be a typo'd
/// address).
fn is_host_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    let labels_ok = s.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    labels_ok && !s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(v6: bool, n: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(n))
    } else {
        // Blocks of IPv4 never leave the 32-bit space.
        IpAddr::V4(Ipv4Addr::from(n as u32))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Block {
    v6: bool,
    first: u128,
    last: u128,
}

impl Block {
    fn len(&self) -> u128 {
        (self.last - self.first).saturating_add(1)
    }
}

/// Reads targets from the text of an `-iL` file: whitespace-separated tokens, `#` starts a
/// comment that runs to the end of the line.
pub fn read_list(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(str::split_whitespace)
        .map(str::to_string)
        .collect()
}

/// A resolved, de-duplicated set of addresses to scan, in ascending order (IPv4 first),
/// with exclusions applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetSet {
    blocks: Vec<Block>,
    /// The position of each block's first address in the set.
    starts: Vec<u64>,
    /// The name each address came from, for reports.
    names: Vec<(IpAddr, String)>,
}

impl TargetSet {
    /// Builds the set: resolves names (unless `resolve` is false, when a name is an error),
    /// subtracts `exclude`, and refuses more than [`MAX_HOSTS`] addresses.
    pub fn build(
        targets: &[Target],
        exclude: &[Target],
        resolve: bool,
    ) -> Result<TargetSet, TargetError> {
        if targets.is_empty() {
            return Err(TargetError::Empty);
        }
        let mut names = Vec::new();
        let mut blocks = Vec::new();
        for t in targets {
            if let Target::Scoped(a, _, id) = t
                && !crate::scope::register(*a, *id)
            {
                return Err(TargetError::Bad {
                    token: t.to_string(),
                    why: "the same link-local address is on another interface too: scan one at a time",
                });
            }
            blocks.push(block_of(t, resolve, Some(&mut names))?);
        }
        let mut ex = Vec::new();
        for t in exclude {
            ex.push(block_of(t, resolve, None)?);
        }
        let blocks = subtract(merge(blocks), &merge(ex));
        let count: u128 = blocks.iter().fold(0u128, |a, b| a.saturating_add(b.len()));
        if count > MAX_HOSTS {
            return Err(TargetError::TooMany { count });
        }
        let mut starts = Vec::with_capacity(blocks.len());
        let mut at = 0u64;
        for b in &blocks {
            starts.push(at);
            at += b.len() as u64;
        }
        Ok(TargetSet {
            blocks,
            starts,
            names,
        })
    }

    /// Whether the set holds IPv4 addresses, and IPv6 ones.
    pub fn families(&self) -> (bool, bool) {
        (
            self.blocks.iter().any(|b| !b.v6),
            self.blocks.iter().any(|b| b.v6),
        )
    }

    /// The address at position `i` of [`TargetSet::iter`]'s order (`i < len()`).
    pub fn nth(&self, i: u64) -> Option<IpAddr> {
        let k = self.starts.partition_point(|&s| s <= i).checked_sub(1)?;
        let b = self.blocks[k];
        let off = u128::from(i - self.starts[k]);
        (off < b.len()).then(|| from_u128(b.v6, b.first + off))
    }

    /// The position of `addr` in [`TargetSet::iter`]'s order, if the set holds it.
    pub fn index_of(&self, addr: IpAddr) -> Option<u64> {
        let (v6, n) = (addr.is_ipv6(), to_u128(addr));
        let k = self.blocks.partition_point(|b| (b.v6, b.last) < (v6, n));
        let b = self.blocks.get(k)?;
        (b.v6 == v6 && b.first <= n).then(|| self.starts[k] + (n - b.first) as u64)
    }

    /// The runs of consecutive addresses whose positions `f` holds, in order.
    pub fn runs(&self, f: impl Fn(u64) -> bool) -> Vec<(IpAddr, IpAddr)> {
        let mut out = Vec::new();
        for (b, &start) in self.blocks.iter().zip(&self.starts) {
            let len = b.len() as u64;
            let mut i = 0;
            while i < len {
                if !f(start + i) {
                    i += 1;
                    continue;
                }
                let first = i;
                while i < len && f(start + i) {
                    i += 1;
                }
                out.push((
                    from_u128(b.v6, b.first + u128::from(first)),
                    from_u128(b.v6, b.first + u128::from(i - 1)),
                ));
            }
        }
        out
    }

    /// A digest of the set (its address blocks), the same in every process: part of the
    /// default probe-order seed and of a resume file's check.
    pub fn digest(&self) -> u64 {
        let mut h = 0x7072_6f62_6573u64;
        for b in &self.blocks {
            for w in [
                u64::from(b.v6),
                b.first as u64,
                (b.first >> 64) as u64,
                b.last as u64,
                (b.last >> 64) as u64,
            ] {
                h = crate::perm::mix(h ^ w);
            }
        }
        h
    }

    /// How many addresses the set holds.
    pub fn len(&self) -> u64 {
        // Bounded by MAX_HOSTS, so it fits.
        self.blocks.iter().map(|b| b.len() as u64).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The addresses, in order.
    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.blocks
            .iter()
            .flat_map(|b| (b.first..=b.last).map(move |n| from_u128(b.v6, n)))
    }

    /// The host name an address was given as, if it was.
    pub fn name_of(&self, addr: IpAddr) -> Option<&str> {
        self.names
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|(_, n)| n.as_str())
    }
}

fn block_of(
    t: &Target,
    resolve: bool,
    names: Option<&mut Vec<(IpAddr, String)>>,
) -> Result<Block, TargetError> {
    Ok(match *t {
        Target::Addr(a) => Block {
            v6: a.is_ipv6(),
            first: to_u128(a),
            last: to_u128(a),
        },
        Target::Scoped(a, _, _) => Block {
            v6: true,
            first: u128::from(a),
            last: u128::from(a),
        },
        Target::Cidr(a, len) => {
            let bits = if a.is_ipv4() { 32 } else { 128 };
            let host_bits = u32::from(bits - len);
            let mask = if host_bits >= 128 {
                u128::MAX
            } else {
                (1u128 << host_bits) - 1
            };
            let first = to_u128(a) & !mask;
            Block {
                v6: a.is_ipv6(),
                first,
                last: first | mask,
            }
        }
        Target::Range(a, b) => Block {
            v6: a.is_ipv6(),
            first: to_u128(a),
            last: to_u128(b),
        },
        Target::Name(ref name) => {
            if !resolve {
                return Err(TargetError::NoResolve(name.clone()));
            }
            let addrs: Vec<IpAddr> = (name.as_str(), 0)
                .to_socket_addrs()
                .map_err(|e| TargetError::Resolve {
                    name: name.clone(),
                    why: e.to_string(),
                })?
                .map(|s| s.ip())
                .collect();
            // Like other scanners, one address per name; IPv4 first.
            let a = addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .copied()
                .ok_or_else(|| TargetError::Resolve {
                    name: name.clone(),
                    why: "no addresses".into(),
                })?;
            if let Some(names) = names {
                names.push((a, name.clone()));
            }
            Block {
                v6: a.is_ipv6(),
                first: to_u128(a),
                last: to_u128(a),
            }
        }
    })
}

fn merge(mut v: Vec<Block>) -> Vec<Block> {
    v.sort();
    let mut out: Vec<Block> = Vec::with_capacity(v.len());
    for b in v {
        match out.last_mut() {
            Some(l) if l.v6 == b.v6 && b.first <= l.last.saturating_add(1) => {
                l.last = l.last.max(b.last);
            }
            _ => out.push(b),
        }
    }
    out
}

/// `a` minus `ex`, both merged.
fn subtract(a: Vec<Block>, ex: &[Block]) -> Vec<Block> {
    let mut out = Vec::new();
    for mut b in a {
        let mut alive = true;
        for e in ex.iter().filter(|e| e.v6 == b.v6) {
            if e.last < b.first || e.first > b.last {
                continue;
            }
            if e.first > b.first {
                out.push(Block {
                    last: e.first - 1,
                    ..b
                });
            }
            if e.last >= b.last {
                alive = false;
                break;
            }
            b.first = e.last + 1;
        }
        if alive {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(t: &[&str], ex: &[&str]) -> Result<Vec<String>, TargetError> {
        let t: Vec<Target> = t.iter().map(|s| Target::parse(s).unwrap()).collect();
        let ex: Vec<Target> = ex.iter().map(|s| Target::parse(s).unwrap()).collect();
        Ok(TargetSet::build(&t, &ex, false)?
            .iter()
            .map(|a| a.to_string())
            .collect())
    }

    /// Regression (issue 15): the coverage of a scan kept ranges of the probed hosts,
    /// fragmented by the permuted order (16 bytes an address half-way); it is a bit per
    /// position now, and these give the positions and the ranges back.
    #[test]
    fn coverage_positions_and_runs() {
        let t: Vec<Target> = ["198.18.0.0/30", "198.18.0.8/31", "2001:2::1"]
            .iter()
            .map(|s| Target::parse(s).unwrap())
            .collect();
        let set = TargetSet::build(&t, &[], false).unwrap();
        for (i, a) in set.iter().enumerate() {
            assert_eq!(set.index_of(a), Some(i as u64), "{a}");
        }
        for a in [
            "198.18.0.4",
            "198.18.0.7",
            "198.18.0.10",
            "2001:2::2",
            "::1",
        ] {
            assert_eq!(set.index_of(a.parse().unwrap()), None, "{a}");
        }
        // Positions 0, 1, 3 (of the /30), 4, 5 (the /31), 6 (the IPv6 address): runs stop
        // at a gap and at the end of an address block, though the positions go on.
        let held = [0u64, 1, 3, 4, 5, 6];
        let runs: Vec<String> = set
            .runs(|i| held.contains(&i))
            .into_iter()
            .map(|(a, b)| format!("{a}-{b}"))
            .collect();
        assert_eq!(
            runs,
            [
                "198.18.0.0-198.18.0.1",
                "198.18.0.3-198.18.0.3",
                "198.18.0.8-198.18.0.9",
                "2001:2::1-2001:2::1"
            ]
        );
    }

    #[test]
    fn forms() {
        assert_eq!(
            set(&["198.18.0.1-3"], &[]).unwrap(),
            ["198.18.0.1", "198.18.0.2", "198.18.0.3"]
        );
        assert_eq!(set(&["198.18.0.0/30"], &[]).unwrap().len(), 4);
        assert_eq!(set(&["198.18.0.9/32", "198.18.0.9"], &[]).unwrap().len(), 1);
        assert_eq!(set(&["2001:2::1-2001:2::3"], &[]).unwrap().len(), 3);
        assert_eq!(set(&["[::1]"], &[]).unwrap(), ["::1"]);
        assert_eq!(set(&["2001:2::/126"], &[]).unwrap().len(), 4);
        assert_eq!(
            Target::parse("scanme.example").unwrap(),
            Target::Name("scanme.example".into())
        );
    }

    #[test]
    fn nth_follows_the_order() {
        let t: Vec<Target> = ["198.18.0.0/30", "198.18.1.7", "2001:2::1-2001:2::2"]
            .iter()
            .map(|s| Target::parse(s).unwrap())
            .collect();
        let set = TargetSet::build(&t, &[], false).unwrap();
        let all: Vec<IpAddr> = set.iter().collect();
        for (i, a) in all.iter().enumerate() {
            assert_eq!(set.nth(i as u64), Some(*a));
        }
        assert_eq!(set.nth(all.len() as u64), None);
        let again = TargetSet::build(&t, &[], false).unwrap();
        assert_eq!(set.digest(), again.digest());
        let other = TargetSet::build(&t[..2], &[], false).unwrap();
        assert_ne!(set.digest(), other.digest());
    }

    #[test]
    fn exclusions() {
        assert_eq!(
            set(&["198.18.0.0/29"], &["198.18.0.2-5"]).unwrap(),
            ["198.18.0.0", "198.18.0.1", "198.18.0.6", "198.18.0.7"]
        );
        assert!(set(&["198.18.0.1"], &["198.18.0.0/24"]).unwrap().is_empty());
    }

    #[test]
    fn caps_and_errors() {
        assert_eq!(
            set(&["10.0.0.0/7"], &[]),
            Err(TargetError::TooMany { count: 1 << 25 })
        );
        assert!(set(&["10.0.0.0/8"], &[]).is_ok());
        assert!(matches!(
            set(&["2001:2::/64"], &[]),
            Err(TargetError::TooMany { .. })
        ));
        for bad in [
            "198.18.0.1/33",
            "198.18.0.1/",
            "198.18.0.5-1",
            "198.18.0.1-256",
            "::1/129",
            "1.2.3",
            "1.2.3.4.5",
            "bad host!",
            "-foo",
            "198.18.0.1-::2",
            "",
        ] {
            match Target::parse(bad) {
                Err(TargetError::Bad { token, .. }) => assert_eq!(token, bad),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let t = [Target::parse("localhost").unwrap()];
        assert_eq!(
            TargetSet::build(&t, &[], false),
            Err(TargetError::NoResolve("localhost".into()))
        );
    }

    #[test]
    fn scoped_link_local_targets_are_accepted() {
        let t = Target::parse("fe80::1%lo").unwrap();
        assert_eq!(
            t,
            Target::Scoped("fe80::1".parse().unwrap(), "lo".into(), 1)
        );
        assert_eq!(t.to_string(), "fe80::1%lo");
        assert_eq!(
            Target::parse("[fe80::1%1]").unwrap().to_string(),
            "fe80::1%1"
        );
        for bad in [
            "fe80::1%",
            "fe80::1%nosuch0",
            "2001:2::1%lo",
            "198.18.0.1%lo",
            "fe80::1%a b",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn list_files() {
        assert_eq!(
            read_list("198.18.0.1 # a comment\n\n  198.18.0.2\t198.18.0.3\n#x\n"),
            ["198.18.0.1", "198.18.0.2", "198.18.0.3"]
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,60}") {
            let _ = Target::parse(&s);
        }

        #[test]
        fn addresses_round_trip(a in any::<u32>(), b in any::<u128>()) {
            let v4 = Ipv4Addr::from(a).to_string();
            prop_assert_eq!(Target::parse(&v4).unwrap(), Target::Addr(IpAddr::V4(Ipv4Addr::from(a))));
            let v6 = Ipv6Addr::from(b).to_string();
            prop_assert_eq!(Target::parse(&v6).unwrap(), Target::Addr(IpAddr::V6(Ipv6Addr::from(b))));
        }

        #[test]
        fn exclusion_counts(base in any::<u8>(), len in 0u8..=255, ex_a in any::<u8>(), ex_b in any::<u8>()) {
            let (lo, hi) = (ex_a.min(ex_b), ex_a.max(ex_b));
            let last = base.saturating_add(len);
            let got = set(&[&format!("198.18.1.{base}-{last}")], &[&format!("198.18.1.{lo}-{hi}")]).unwrap();
            let want = (base..=last).filter(|o| *o < lo || *o > hi).count();
            prop_assert_eq!(got.len(), want);
        }
    }
}
