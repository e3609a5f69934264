//! portolan's ranking of common ports (`data/top-ports.txt`, documented in `data/README.md`).

use portolan_model::spec::{PortSpec, PortSpecError, merge};
use portolan_registry::{PortRange, Proto};

const RANKING: &str = include_str!("../data/top-ports.txt");

/// The ranked ports of `proto`, most common first, each once.
pub fn ranked(proto: Proto) -> Vec<u16> {
    let mut seen = vec![false; 65536];
    let mut out = Vec::new();
    for line in RANKING.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut f = line.split_whitespace();
        let (Some(p), Some(port)) = (f.next(), f.next()) else {
            continue;
        };
        if p != proto.as_str() {
            continue;
        }
        if let Ok(port) = port.parse::<u16>()
            && !seen[usize::from(port)]
        {
            seen[usize::from(port)] = true;
            out.push(port);
        }
    }
    out
}

/// The `n` most common ports of `proto`: the ranking, then the other ports 1-65535 in
/// ascending order.
pub fn top_ports(proto: Proto, n: usize) -> Vec<u16> {
    let mut out = ranked(proto);
    out.truncate(n);
    if out.len() < n {
        let mut seen = vec![false; 65536];
        for &p in &out {
            seen[usize::from(p)] = true;
        }
        for p in 1..=65535u16 {
            if out.len() >= n {
                break;
            }
            if !seen[usize::from(p)] {
                out.push(p);
            }
        }
    }
    out
}

/// `--top N`: the `n` most common ports for each protocol, from portolan's own ranking
/// (`data/top-ports.txt`), padded with the remaining ports in ascending order.
pub fn top(n: usize) -> Result<PortSpec, PortSpecError> {
    if n > 65535 {
        return Err(PortSpecError::TopTooLarge(n));
    }
    let list = |proto| {
        merge(
            top_ports(proto, n)
                .into_iter()
                .map(PortRange::single)
                .collect(),
        )
    };
    Ok(PortSpec {
        tcp: list(Proto::Tcp),
        udp: list(Proto::Udp),
        ..PortSpec::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_file_is_well_formed() {
        for (i, line) in RANKING.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 3, "line {}: {line}", i + 1);
            assert!(f[0] == "tcp" || f[0] == "udp", "line {}: {line}", i + 1);
            assert!(f[1].parse::<u16>().is_ok_and(|p| p > 0), "line {}", i + 1);
        }
        let tcp = ranked(Proto::Tcp);
        assert_eq!(&tcp[..3], &[80, 443, 22]);
        assert!(tcp.len() > 250);
        assert_eq!(ranked(Proto::Udp)[0], 53);
    }

    #[test]
    fn top_pads_in_order() {
        let t = top_ports(Proto::Tcp, 1000);
        assert_eq!(t.len(), 1000);
        let mut s = t.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 1000);
        assert!(!t.contains(&0));
    }

    #[test]
    fn top_is_ranked_and_unique() {
        let t = top(100).unwrap();
        let tcp = t.ports(Proto::Tcp);
        assert_eq!(tcp.len(), 100);
        assert!(tcp.contains(&22) && tcp.contains(&443) && tcp.contains(&80));
        assert!(t.ports(Proto::Udp).contains(&53));
        assert_eq!(top(65535).unwrap().ports(Proto::Tcp).len(), 65535);
        assert!(top(70000).is_err());
    }
}
