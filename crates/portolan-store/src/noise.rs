//! Noise control: what a diff marks as noise, hides, or ignores.

use std::str::FromStr;
use std::time::Duration;

use portolan_model::{Listener, PortRange, Proto, SocketState};

use crate::error::ParseError;

/// How a diff is made. The default hides noise: listeners in `ephemeral` and connected
/// UDP client sockets are marked `noise: true` and left out unless `show_noise`.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// The kernel's ephemeral port range (`net.ipv4.ip_local_port_range`); `None`
    /// marks nothing as ephemeral.
    pub ephemeral: Option<PortRange>,
    /// Keep changes marked as noise in the result.
    pub show_noise: bool,
    /// A change counts only once its new state has held this long at the later point
    /// (database diffs; a diff of two files has no history and ignores it).
    pub min_age: Option<Duration>,
    /// Changes matching any of these are left out.
    pub ignore: Vec<Ignore>,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            ephemeral: Some(PortRange {
                first: 32768,
                last: 60999,
            }),
            show_noise: false,
            min_age: None,
            ignore: Vec::new(),
        }
    }
}

impl DiffOptions {
    /// True for a listener that is usually noise.
    pub fn is_noise(&self, l: &Listener) -> bool {
        l.state == SocketState::Connected || self.ephemeral.is_some_and(|r| r.contains(l.port))
    }
}

/// One `--ignore` pattern: a port or range with an optional protocol (`8080`,
/// `6000-6063/tcp`), a protocol alone (`/udp`), or a process name with `*` globs
/// (`chrome*`), matched against the owners' names and executable file names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignore {
    Port {
        ports: Option<PortRange>,
        protocol: Option<Proto>,
    },
    Process(String),
}

const EXPECTED: &str = "expected a port or range with an optional /protocol (8080, 6000-6063/tcp, /udp) or a process name with * globs (chrome*)";

impl FromStr for Ignore {
    type Err = ParseError;
    fn from_str(text: &str) -> Result<Ignore, ParseError> {
        let bad = || ParseError::new("ignore pattern", text, EXPECTED);
        let t = text.trim();
        if t.is_empty() || t.len() > 256 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (ports, proto) = match t.rsplit_once('/') {
            Some((p, proto)) => {
                let proto: Proto = proto.parse().map_err(|_| bad())?;
                (p, Some(proto))
            }
            None => (t, None),
        };
        let numeric = ports.bytes().all(|b| b.is_ascii_digit() || b == b'-');
        if ports.is_empty() {
            return proto
                .map(|p| Ignore::Port {
                    ports: None,
                    protocol: Some(p),
                })
                .ok_or_else(bad);
        }
        if !numeric {
            if proto.is_some() || t.contains('/') {
                return Err(bad());
            }
            return Ok(Ignore::Process(t.to_string()));
        }
        let (a, b) = ports.split_once('-').unwrap_or((ports, ports));
        let a: u16 = a.parse().map_err(|_| bad())?;
        let b: u16 = b.parse().map_err(|_| bad())?;
        let range = PortRange::new(a, b).ok_or_else(bad)?;
        Ok(Ignore::Port {
            ports: Some(range),
            protocol: proto,
        })
    }
}

impl Ignore {
    /// Parses a list of patterns, stopping at the first bad one.
    pub fn parse_all<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Ignore>, ParseError> {
        texts.iter().map(|t| t.as_ref().parse()).collect()
    }

    /// True when the pattern matches a port of a protocol, owned by processes with
    /// these names (process patterns never match a change with no process).
    pub fn matches(&self, protocol: Option<Proto>, port: Option<u16>, names: &[&str]) -> bool {
        match self {
            Ignore::Port {
                ports,
                protocol: want,
            } => {
                want.is_none_or(|w| protocol == Some(w))
                    && ports.is_none_or(|r| port.is_some_and(|p| r.contains(p)))
            }
            Ignore::Process(glob) => names.iter().any(|n| glob_match(glob, n)),
        }
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub(crate) fn glob_match(glob: &str, text: &str) -> bool {
    let parts: Vec<&str> = glob.split('*').collect();
    if parts.len() == 1 {
        return glob == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn patterns() {
        let i: Ignore = "6000-6063/tcp".parse().unwrap();
        assert!(i.matches(Some(Proto::Tcp), Some(6010), &[]));
        assert!(!i.matches(Some(Proto::Udp), Some(6010), &[]));
        assert!(!i.matches(Some(Proto::Tcp), Some(6064), &[]));
        let u: Ignore = "/udp".parse().unwrap();
        assert!(u.matches(Some(Proto::Udp), Some(1), &[]));
        let p: Ignore = "chrom*".parse().unwrap();
        assert!(p.matches(Some(Proto::Udp), Some(5353), &["chromium"]));
        assert!(!p.matches(Some(Proto::Udp), Some(5353), &["firefox"]));
        assert_eq!(
            "53".parse::<Ignore>().unwrap(),
            Ignore::Port {
                ports: Some(PortRange::single(53)),
                protocol: None
            }
        );
    }

    #[test]
    fn bad_patterns_name_the_text() {
        for s in [
            "",
            "70000",
            "9-1",
            "22/xyz",
            "a b",
            "nginx/tcp",
            "/",
            "1-2-3",
        ] {
            let e = s.parse::<Ignore>().unwrap_err();
            assert!(e.to_string().contains(&format!("'{s}'")), "{e}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("a*c*e", "abcde"));
        assert!(!glob_match("a*c*e", "abde"));
        assert!(!glob_match("ab*ba", "aba"));
        assert!(glob_match("*d", "sshd"));
    }

    proptest! {
        #[test]
        fn pattern_parser_never_panics(s in "\\PC{0,30}") {
            let _ = s.parse::<Ignore>();
        }

        #[test]
        fn star_glob_matches_its_pieces(a in "[a-z]{0,5}", b in "[a-z]{0,5}", mid in "[a-z]{0,5}") {
            let text = format!("{a}{mid}{b}");
            let glob = format!("{a}*{b}");
            prop_assert!(glob_match(&glob, &text));
        }
    }
}
