//! The one parser for "a port or a service name": `22,80,8000-8100`, service names,
//! `T:`/`U:` prefixes, `53/udp` suffixes, and `-` for all. `lookup`, `ls -p`, `scan -p`,
//! policies and `detect` all read ports through it; [`Query`] is one item of it with any
//! protocol, as `lookup` and `explain` take it.

use portolan_registry::{PortRange, Proto, Registry};

/// Why a port specification could not be parsed. Each variant names the bad token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortSpecError {
    #[error("empty port specification")]
    Empty,
    #[error("invalid port '{token}' in port specification: {why}")]
    Bad { token: String, why: &'static str },
    #[error("unknown service name '{0}' in port specification")]
    UnknownService(String),
    #[error("--top {0}: the ranking holds at most 65535 ports")]
    TopTooLarge(usize),
}

/// Which protocol a part of the spec applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Any,
    Tcp,
    Udp,
}

/// A parsed port specification: ranges for TCP, for UDP, and for whichever protocol the
/// scan uses (tokens without a `T:`/`U:` prefix). Each list is sorted and merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortSpec {
    pub any: Vec<PortRange>,
    pub tcp: Vec<PortRange>,
    pub udp: Vec<PortRange>,
}

/// Looks a service name up: every (port, protocol) it is registered for.
pub type Resolver<'a> = &'a dyn Fn(&str) -> Vec<(u16, Proto)>;

/// Largest spec accepted, in bytes; anything longer is not a hand-written port list.
const MAX_SPEC: usize = 1 << 16;

impl PortSpec {
    /// Every port, 1-65535, for any protocol (what `-p-` means).
    pub fn all() -> PortSpec {
        PortSpec {
            any: vec![PortRange::new(1, 65535).expect("1 <= 65535")],
            ..PortSpec::default()
        }
    }

    /// Parses a spec such as `22,80,8000-8100`, `T:22,U:53,161`, `https`, `-` or `1-`.
    ///
    /// A `T:` or `U:` prefix applies to its token and the ones after it, up to the next
    /// prefix. `-` alone is 1-65535; `-100` is 1-100 and `60000-` is 60000-65535. Names are
    /// looked up with `resolve`; under a prefix only that protocol's ports of the name count.
    pub fn parse(spec: &str, resolve: Resolver<'_>) -> Result<PortSpec, PortSpecError> {
        if spec.len() > MAX_SPEC {
            return Err(PortSpecError::Bad {
                token: format!("{}...", spec.chars().take(32).collect::<String>()),
                why: "specification longer than 64 KiB",
            });
        }
        let mut out = PortSpec::default();
        let mut scope = Scope::Any;
        let mut any_token = false;
        for raw in spec.split(',') {
            let mut tok = raw.trim();
            if tok.is_empty() {
                if spec.trim().is_empty() {
                    return Err(PortSpecError::Empty);
                }
                return Err(PortSpecError::Bad {
                    token: raw.to_string(),
                    why: "empty item between commas",
                });
            }
            if let Some((p, rest)) = tok.split_once(':') {
                scope = match p {
                    "T" | "t" => Scope::Tcp,
                    "U" | "u" => Scope::Udp,
                    _ => {
                        return Err(PortSpecError::Bad {
                            token: tok.to_string(),
                            why: "prefix must be T: or U:",
                        });
                    }
                };
                tok = rest.trim();
                if tok.is_empty() {
                    return Err(PortSpecError::Bad {
                        token: raw.trim().to_string(),
                        why: "nothing after the prefix",
                    });
                }
            }
            any_token = true;
            // A `/tcp` or `/udp` suffix applies to this token only.
            let outer = scope;
            let mut scope = scope;
            if let Some((t, p)) = tok.rsplit_once('/')
                && let Ok(proto) = p.parse::<Proto>()
            {
                scope = match proto {
                    Proto::Tcp => Scope::Tcp,
                    Proto::Udp => Scope::Udp,
                    _ => {
                        return Err(PortSpecError::Bad {
                            token: tok.to_string(),
                            why: "only tcp and udp ports can be given here",
                        });
                    }
                };
                if outer != Scope::Any && outer != scope {
                    return Err(PortSpecError::Bad {
                        token: raw.trim().to_string(),
                        why: "the prefix and the suffix name different protocols",
                    });
                }
                tok = t.trim();
                if tok.is_empty() {
                    return Err(PortSpecError::Bad {
                        token: raw.trim().to_string(),
                        why: "nothing before the protocol",
                    });
                }
            }
            let list = match scope {
                Scope::Any => &mut out.any,
                Scope::Tcp => &mut out.tcp,
                Scope::Udp => &mut out.udp,
            };
            if tok.bytes().next().is_some_and(|b| b.is_ascii_digit()) || tok.starts_with('-') {
                list.push(parse_range(tok)?);
            } else {
                let found = resolve_name(tok, scope, resolve)?;
                for (port, proto) in found {
                    match (scope, proto) {
                        (Scope::Any, Proto::Tcp) => out.tcp.push(PortRange::single(port)),
                        (Scope::Any, Proto::Udp) => out.udp.push(PortRange::single(port)),
                        (Scope::Tcp, _) => out.tcp.push(PortRange::single(port)),
                        (Scope::Udp, _) => out.udp.push(PortRange::single(port)),
                        _ => {}
                    }
                }
            }
        }
        if !any_token {
            return Err(PortSpecError::Empty);
        }
        out.any = merge(out.any);
        out.tcp = merge(out.tcp);
        out.udp = merge(out.udp);
        Ok(out)
    }

    /// The ports to scan for `proto`: the unprefixed ones plus that protocol's own.
    pub fn ports(&self, proto: Proto) -> Vec<u16> {
        let own = match proto {
            Proto::Tcp => &self.tcp,
            Proto::Udp => &self.udp,
            _ => return Vec::new(),
        };
        let ranges = merge(self.any.iter().chain(own).copied().collect());
        ranges.iter().flat_map(PortRange::iter).collect()
    }

    /// Parses `spec`, looking names up in `registry` (and in portolan's service notes,
    /// so that `dns` means what a policy means by it).
    pub fn parse_with(spec: &str, registry: &Registry) -> Result<PortSpec, PortSpecError> {
        PortSpec::parse(spec, &|name| resolve_in(registry, name))
    }

    /// The merged ranges for `proto`: the unprefixed ones plus that protocol's own.
    pub fn ranges(&self, proto: Proto) -> Vec<PortRange> {
        let own = match proto {
            Proto::Tcp => &self.tcp,
            Proto::Udp => &self.udp,
            _ => return Vec::new(),
        };
        merge(self.any.iter().chain(own).copied().collect())
    }

    /// True when the spec holds `port` for `proto`.
    pub fn contains(&self, proto: Proto, port: u16) -> bool {
        self.ranges(proto).iter().any(|r| r.contains(port))
    }

    /// Every (protocol, range) the spec names; unprefixed ranges count for both.
    pub fn pairs(&self) -> Vec<(Option<Proto>, PortRange)> {
        let mut v: Vec<(Option<Proto>, PortRange)> = self.any.iter().map(|&r| (None, r)).collect();
        v.extend(self.tcp.iter().map(|&r| (Some(Proto::Tcp), r)));
        v.extend(self.udp.iter().map(|&r| (Some(Proto::Udp), r)));
        v
    }

    /// Whether the spec holds any port for `proto`.
    pub fn has(&self, proto: Proto) -> bool {
        !self.any.is_empty()
            || match proto {
                Proto::Tcp => !self.tcp.is_empty(),
                Proto::Udp => !self.udp.is_empty(),
                _ => false,
            }
    }
}

/// Every TCP/UDP port a service name stands for: portolan's notes first (`dns`,
/// `imaps`), then the registry's names and aliases. Ranges of more than 64 ports are left
/// out (a name is not a way to write a thousand ports).
pub fn resolve_in(registry: &Registry, name: &str) -> Vec<(u16, Proto)> {
    let mut out = Vec::new();
    if let Some(n) = portolan_registry::notes(name) {
        for (p, r) in n.used_ranges() {
            if r.len() <= 64 {
                out.extend(r.iter().map(|port| (port, p)));
            }
        }
    }
    if out.is_empty() {
        for e in registry.by_name(name) {
            if let (Some(r), Some(p)) = (e.ports, e.proto)
                && r.len() <= 64
            {
                out.extend(r.iter().map(|port| (port, p)));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn resolve_name(
    name: &str,
    scope: Scope,
    resolve: Resolver<'_>,
) -> Result<Vec<(u16, Proto)>, PortSpecError> {
    let valid = name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+' | b'/'));
    if !valid {
        return Err(PortSpecError::Bad {
            token: name.to_string(),
            why: "neither a port, a range nor a service name",
        });
    }
    let mut found = resolve(name);
    found.retain(|&(_, p)| match scope {
        Scope::Any => matches!(p, Proto::Tcp | Proto::Udp),
        Scope::Tcp => p == Proto::Tcp,
        Scope::Udp => p == Proto::Udp,
    });
    if found.is_empty() {
        return Err(PortSpecError::UnknownService(name.to_string()));
    }
    Ok(found)
}

fn parse_port(tok: &str, part: &str) -> Result<u16, PortSpecError> {
    if part.is_empty() || part.len() > 5 || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PortSpecError::Bad {
            token: tok.to_string(),
            why: "expected a number from 0 to 65535",
        });
    }
    part.parse::<u16>().map_err(|_| PortSpecError::Bad {
        token: tok.to_string(),
        why: "port greater than 65535",
    })
}

/// Parses `80`, `1-1024`, `-` (1-65535), `-100` (1-100) or `60000-` (60000-65535).
pub fn parse_range(tok: &str) -> Result<PortRange, PortSpecError> {
    let (a, b) = match tok.split_once('-') {
        None => {
            let p = parse_port(tok, tok)?;
            return Ok(PortRange::single(p));
        }
        Some(ab) => ab,
    };
    let first = if a.is_empty() { 1 } else { parse_port(tok, a)? };
    let last = if b.is_empty() {
        65535
    } else {
        parse_port(tok, b)?
    };
    PortRange::new(first, last).ok_or_else(|| PortSpecError::Bad {
        token: tok.to_string(),
        why: "the first port is greater than the last",
    })
}

/// One query of `lookup` or `explain`: a port or a closed range, or a service name or
/// alias, each with an optional protocol (`443`, `53/udp`, `137-139`, `domain/udp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// A port or range, with an optional protocol.
    Ports(PortRange, Option<String>),
    /// A service name or alias, with an optional protocol.
    Name(String, Option<String>),
}

/// Why a query token could not be read; each names the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("no protocol after '/' in '{0}'")]
    NoProtocol(String),
    #[error("no port or name before '/' in '{0}'")]
    NoTarget(String),
    #[error("unknown protocol '{proto}' in '{token}' (expected tcp, udp, sctp or dccp)")]
    UnknownProtocol { proto: String, token: String },
    #[error("empty query '{0}'")]
    Empty(String),
    #[error("bad query '{token}'")]
    Port {
        token: String,
        #[source]
        source: portolan_registry::ParseError,
    },
}

impl Query {
    /// Reads one token, a single item of a port specification with a protocol suffix that
    /// may be any of IANA's four or a word the services file uses (`1/ddp`). Ranges are
    /// closed (`12-` is an error here: a query names its ports). A name may hold a slash
    /// (`914c/g`): only a known protocol after the last slash is a protocol.
    pub fn parse(token: &str, registry: &Registry) -> Result<Query, QueryError> {
        if token.ends_with('/') {
            return Err(QueryError::NoProtocol(token.to_string()));
        }
        if token.starts_with('/') {
            return Err(QueryError::NoTarget(token.to_string()));
        }
        let known = |p: &str| known_protocol(p, registry);
        let (what, proto) = match token.rsplit_once('/') {
            Some((w, p)) if !w.is_empty() && is_port_item(w) => (w, Some(p)),
            Some((w, p)) if !w.is_empty() && known(p) => (w, Some(p)),
            _ => (token, None),
        };
        if let Some(p) = proto
            && !known(p)
        {
            return Err(QueryError::UnknownProtocol {
                proto: p.to_string(),
                token: token.to_string(),
            });
        }
        let proto = proto.map(str::to_string);
        if what.trim().is_empty() {
            return Err(QueryError::Empty(token.to_string()));
        }
        if is_port_item(what) {
            let range = what
                .parse::<PortRange>()
                .map_err(|source| QueryError::Port {
                    token: token.to_string(),
                    source,
                })?;
            return Ok(Query::Ports(range, proto));
        }
        Ok(Query::Name(what.to_string(), proto))
    }
}

/// Digits and dashes only: a port or a range (names always hold a letter).
fn is_port_item(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'-')
}

/// One of IANA's four protocols as written in lower case, or a protocol the registry's
/// services file uses.
fn known_protocol(p: &str, registry: &Registry) -> bool {
    p.parse::<Proto>().is_ok_and(|q| q.as_str() == p)
        || registry
            .services_file()
            .is_some_and(|f| f.lines.iter().any(|l| l.protocol == p))
}

/// Sorts ranges and joins the ones that overlap or touch.
pub fn merge(mut v: Vec<PortRange>) -> Vec<PortRange> {
    v.sort();
    let mut out: Vec<PortRange> = Vec::with_capacity(v.len());
    for r in v {
        match out.last_mut() {
            Some(last) if u32::from(r.first) <= u32::from(last.last) + 1 => {
                last.last = last.last.max(r.last);
            }
            _ => out.push(r),
        }
    }
    out
}

/// Writes ranges as a spec (`1-3,80`), as nmap's XML `services` attribute wants.
pub fn ranges_to_string(ports: &[u16]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < ports.len() {
        let mut j = i;
        while j + 1 < ports.len() && ports[j + 1] == ports[j].wrapping_add(1) {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if i == j {
            out.push_str(&ports[i].to_string());
        } else {
            out.push_str(&format!("{}-{}", ports[i], ports[j]));
        }
        i = j + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(name: &str) -> Vec<(u16, Proto)> {
        match name {
            "https" => vec![(443, Proto::Tcp), (443, Proto::Udp)],
            "ssh" => vec![(22, Proto::Tcp)],
            "domain" => vec![(53, Proto::Tcp), (53, Proto::Udp)],
            _ => vec![],
        }
    }

    fn p(s: &str) -> Result<PortSpec, PortSpecError> {
        PortSpec::parse(s, &names)
    }

    #[test]
    fn lists_and_ranges() {
        let s = p("22,80,8000-8100").unwrap();
        assert_eq!(s.ports(Proto::Tcp).len(), 2 + 101);
        assert_eq!(s.ports(Proto::Udp), s.ports(Proto::Tcp));
        assert_eq!(p("-").unwrap().ports(Proto::Tcp).len(), 65535);
        assert_eq!(p("-100").unwrap().ports(Proto::Tcp).len(), 100);
        assert_eq!(p("65530-").unwrap().ports(Proto::Tcp).len(), 6);
        assert_eq!(p("0").unwrap().ports(Proto::Tcp), vec![0]);
    }

    #[test]
    fn prefixes_carry_until_the_next() {
        let s = p("U:53,161,T:21-23,25").unwrap();
        assert_eq!(s.ports(Proto::Udp), vec![53, 161]);
        assert_eq!(s.ports(Proto::Tcp), vec![21, 22, 23, 25]);
        assert!(s.any.is_empty());
    }

    #[test]
    fn service_names() {
        let s = p("ssh,https").unwrap();
        assert_eq!(s.ports(Proto::Tcp), vec![22, 443]);
        assert_eq!(s.ports(Proto::Udp), vec![443]);
        let s = p("U:domain").unwrap();
        assert_eq!(s.ports(Proto::Udp), vec![53]);
        assert!(s.ports(Proto::Tcp).is_empty());
        assert_eq!(
            p("22,nosuch"),
            Err(PortSpecError::UnknownService("nosuch".into()))
        );
        assert_eq!(p("U:ssh"), Err(PortSpecError::UnknownService("ssh".into())));
    }

    #[test]
    fn errors_name_the_token() {
        for (spec, token) in [
            ("22,80-70", "80-70"),
            ("65536", "65536"),
            ("1-99999", "1-99999"),
            ("22,,23", ""),
            ("X:22", "X:22"),
            ("T:", "T:"),
            ("2 2", "2 2"),
            ("22;rm", "22;rm"),
        ] {
            match p(spec) {
                Err(PortSpecError::Bad { token: t, .. }) => assert_eq!(t, token, "{spec}"),
                other => panic!("{spec}: {other:?}"),
            }
        }
        assert_eq!(p(""), Err(PortSpecError::Empty));
        assert!(p("1--2").is_err());
    }

    #[test]
    fn suffixes_name_one_token() {
        let s = p("53/udp,22/tcp,80").unwrap();
        assert_eq!(s.ports(Proto::Udp), vec![53, 80]);
        assert_eq!(s.ports(Proto::Tcp), vec![22, 80]);
        assert_eq!(p("domain/udp").unwrap().ports(Proto::Udp), vec![53]);
        assert!(p("domain/udp").unwrap().ports(Proto::Tcp).is_empty());
        assert!(matches!(p("T:53/udp"), Err(PortSpecError::Bad { .. })));
        assert!(matches!(p("53/sctp"), Err(PortSpecError::Bad { .. })));
        assert!(matches!(p("/udp"), Err(PortSpecError::Bad { .. })));
    }

    #[test]
    fn registry_names_and_notes() {
        let reg = Registry::embedded();
        let s = PortSpec::parse_with("dns", reg).unwrap();
        assert!(s.contains(Proto::Udp, 53) && s.contains(Proto::Tcp, 53));
        let s = PortSpec::parse_with("imap,U:53", reg).unwrap();
        assert!(s.contains(Proto::Udp, 53) && s.contains(Proto::Tcp, 143));
        assert!(!s.contains(Proto::Tcp, 53));
        assert!(PortSpec::parse_with("nosuchservice", reg).is_err());
    }

    fn q(s: &str) -> Result<Query, QueryError> {
        Query::parse(s, Registry::embedded())
    }

    #[test]
    fn queries() {
        assert_eq!(
            q("443").unwrap(),
            Query::Ports(PortRange::single(443), None)
        );
        assert_eq!(
            q("53/udp").unwrap(),
            Query::Ports(PortRange::single(53), Some("udp".into()))
        );
        assert_eq!(
            q("137-139").unwrap(),
            Query::Ports(PortRange::new(137, 139).unwrap(), None)
        );
        assert_eq!(q("https").unwrap(), Query::Name("https".into(), None));
        assert_eq!(
            q("domain/udp").unwrap(),
            Query::Name("domain".into(), Some("udp".into()))
        );
        assert_eq!(q("914c/g").unwrap(), Query::Name("914c/g".into(), None));
        assert_eq!(
            q("914c/g/tcp").unwrap(),
            Query::Name("914c/g".into(), Some("tcp".into()))
        );
        assert_eq!(
            q("3com-tsmux").unwrap(),
            Query::Name("3com-tsmux".into(), None)
        );
    }

    #[test]
    fn bad_queries_name_the_token() {
        for (bad, says) in [
            ("70000", "'70000'"),
            ("139-137", "'139-137'"),
            ("53/icmp", "'icmp'"),
            ("53/TCP", "'TCP'"),
            ("ssh/", "'ssh/'"),
            ("/tcp", "'/tcp'"),
            ("", "''"),
            ("12-", "'12-'"),
        ] {
            let err = q(bad).unwrap_err();
            let text = match std::error::Error::source(&err) {
                Some(s) => format!("{err}: {s}"),
                None => err.to_string(),
            };
            assert!(text.contains(says), "{bad}: {text}");
        }
    }

    #[test]
    fn services_file_protocols_are_known() {
        let reg = Registry::with_services(
            portolan_registry::services::parse_services(b"rtmp 1/ddp\n"),
            portolan_registry::Origin::System,
        );
        assert_eq!(
            Query::parse("1/ddp", &reg).unwrap(),
            Query::Ports(PortRange::single(1), Some("ddp".into()))
        );
    }

    #[test]
    fn ranges_print_compactly() {
        assert_eq!(ranges_to_string(&[1, 2, 3, 80, 443, 444]), "1-3,80,443-444");
        assert_eq!(ranges_to_string(&[]), "");
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = p(&s);
            let _ = q(&s);
        }

        #[test]
        fn printed_lists_parse_back(ports in proptest::collection::btree_set(0u16.., 1..50)) {
            let v: Vec<u16> = ports.into_iter().collect();
            let spec = ranges_to_string(&v);
            prop_assert_eq!(p(&spec).unwrap().ports(Proto::Tcp), v);
        }

        #[test]
        fn merged_ranges_are_disjoint(rs in proptest::collection::vec((0u16.., 0u16..), 0..30)) {
            let v = merge(rs.into_iter().map(|(a, b)| PortRange::new(a.min(b), a.max(b)).unwrap()).collect());
            for w in v.windows(2) {
                prop_assert!(u32::from(w[0].last) + 1 < u32::from(w[1].first));
            }
        }
    }
}
