//! The detect operation: what answers on each `HOST:PORT[/udp]`.
//!
//! Targets are parsed and resolved first (a name that does not resolve is an input
//! error, and nothing is probed), then every port goes through one
//! [`portolan_detect::Pool`]: the same runtime, concurrency limit and timeouts that
//! `scan --detect` and `audit --detect` use. A target given by name sends that name in
//! TLS SNI and HTTP Host.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use portolan_detect::{Detector, Options, Pool, Probe, SigError, Signatures};
use portolan_model::{Detection, Proto};
use serde::{Deserialize, Serialize};

/// Why detection could not run.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("target '{target}': {reason}")]
    Target { target: String, reason: String },
    #[error("cannot resolve '{host}'")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Signatures(#[from] SigError),
    #[error("starting service detection")]
    Start(#[source] std::io::Error),
}

/// One target as the user wrote it: a host (a name or an address, IPv6 without its
/// brackets and with its `%zone` if any), a port and a transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectTarget {
    pub host: String,
    pub port: u16,
    pub proto: Proto,
}

impl DetectTarget {
    /// The name to send in TLS SNI and HTTP Host: the host, when it is a name and not an
    /// address.
    pub fn server_name(&self) -> Option<&str> {
        let literal = self.host.parse::<IpAddr>().is_ok() || self.host.contains(':');
        (!literal).then_some(self.host.as_str())
    }
}

/// Parses `HOST:PORT`, `[V6]:PORT` (also `[fe80::1%eth0]:PORT`), with an optional
/// `/tcp` or `/udp`. The port is one number from 1 to 65535.
pub fn parse_target(s: &str) -> Result<DetectTarget, DetectError> {
    let bad = |reason: String| DetectError::Target {
        target: s.to_string(),
        reason,
    };
    let (hostport, proto) = match s.rsplit_once('/') {
        Some((hp, p)) if p.eq_ignore_ascii_case("udp") => (hp, Proto::Udp),
        Some((hp, p)) if p.eq_ignore_ascii_case("tcp") => (hp, Proto::Tcp),
        Some((_, p)) => return Err(bad(format!("unknown protocol '{p}' (expected tcp or udp)"))),
        None => (s, Proto::Tcp),
    };
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        rest.split_once("]:")
            .ok_or_else(|| bad("expected [IPV6]:PORT".into()))?
    } else {
        hostport
            .rsplit_once(':')
            .ok_or_else(|| bad("expected HOST:PORT".into()))?
    };
    if host.is_empty() {
        return Err(bad("the host is empty".into()));
    }
    if host.contains(':') && !hostport.starts_with('[') {
        return Err(bad(format!(
            "put IPv6 addresses in brackets, as [{host}]:{port}"
        )));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad(format!("invalid port '{port}' (1-65535)")))?;
    Ok(DetectTarget {
        host: host.to_string(),
        port,
        proto,
    })
}

/// The address a target names: an address as it is, a name through the system's
/// resolver (the first address it gives).
pub fn resolve(t: &DetectTarget) -> Result<SocketAddr, DetectError> {
    if let Ok(ip) = t.host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, t.port));
    }
    let err = |source| DetectError::Resolve {
        host: t.host.clone(),
        source,
    };
    (t.host.as_str(), t.port)
        .to_socket_addrs()
        .map_err(err)?
        .next()
        .ok_or_else(|| err(std::io::Error::other("no address")))
}

/// What answers on one target. Serialized, it is one line of `portolan detect --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detected {
    /// The target as written.
    pub target: String,
    /// The address it resolved to.
    pub address: SocketAddr,
    pub transport: Proto,
    pub detected: Detection,
}

/// What to detect, and how.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    /// Targets as the user wrote them (`HOST:PORT[/udp]`).
    pub targets: &'a [String],
    /// More signatures, tried before the built-in ones.
    pub signatures: Option<&'a Path>,
    /// The timeout of each connect and reply; `None` for the default (3 s).
    pub timeout: Option<Duration>,
}

/// The options every caller of detection uses: [`Options::default`] (3 s per connect
/// and reply, 15 s per port), or those scaled from `timeout`.
pub fn options(timeout: Option<Duration>) -> Options {
    timeout.map(Options::with_timeout).unwrap_or_default()
}

/// The built-in signatures, after the user's own when a file is given.
pub fn detector(signatures: Option<&Path>) -> Result<Detector, DetectError> {
    Ok(match signatures {
        Some(path) => Detector::with_user(Signatures::load(path)?),
        None => Detector::default(),
    })
}

/// A detection pool with portolan's defaults ([`options`]), for `scan --detect` and
/// `audit --detect`.
pub fn pool(detector: Detector, timeout: Option<Duration>) -> Result<Pool, DetectError> {
    Pool::new(detector, options(timeout)).map_err(DetectError::Start)
}

/// Detects every target, in the order given. Fails before probing anything when a
/// target is malformed or does not resolve, or the signatures cannot be read.
pub fn detect(req: &Request<'_>) -> Result<Vec<Detected>, DetectError> {
    let targets = req
        .targets
        .iter()
        .map(|t| parse_target(t))
        .collect::<Result<Vec<_>, _>>()?;
    let detector = detector(req.signatures)?;
    let probes = targets
        .iter()
        .map(|t| {
            Ok(Probe {
                addr: resolve(t)?,
                proto: t.proto,
                server_name: t.server_name().map(str::to_string),
            })
        })
        .collect::<Result<Vec<_>, DetectError>>()?;
    let found = pool(detector, req.timeout)?.detect_many(&probes);
    Ok(req
        .targets
        .iter()
        .zip(probes)
        .zip(found)
        .map(|((raw, p), detected)| Detected {
            target: raw.clone(),
            address: p.addr,
            transport: p.proto,
            detected,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn targets() {
        let t = parse_target("198.18.0.2:22").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.proto),
            ("198.18.0.2", 22, Proto::Tcp)
        );
        let t = parse_target("[2001:2::2]:53/udp").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.proto),
            ("2001:2::2", 53, Proto::Udp)
        );
        let t = parse_target("localhost:80/TCP").unwrap();
        assert_eq!(t.proto, Proto::Tcp);
        assert_eq!(t.server_name(), Some("localhost"));
        for (bad, want) in [
            ("host", "HOST:PORT"),
            ("h:0", "invalid port"),
            ("h:70000", "invalid port"),
            ("h:1/sctp", "unknown protocol"),
            ("::1:22", "brackets"),
            (":22", "empty"),
            ("[::1]22", "[IPV6]:PORT"),
        ] {
            let e = parse_target(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("target '{bad}': ")), "{e}");
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn addresses_get_no_server_name() {
        for t in ["198.18.0.2:443", "[::1]:443", "[fe80::1%lo]:443"] {
            assert_eq!(parse_target(t).unwrap().server_name(), None, "{t}");
        }
    }

    #[test]
    fn scoped_link_local_resolves_with_its_zone() {
        let t = parse_target("[fe80::1%lo]:22").unwrap();
        assert_eq!(t.host, "fe80::1%lo");
        let SocketAddr::V6(a) = resolve(&t).unwrap() else {
            panic!("not IPv6")
        };
        assert_eq!(a.ip().to_string(), "fe80::1");
        assert_eq!(a.port(), 22);
        assert_eq!(a.scope_id(), 1, "lo is interface 1");
    }

    #[test]
    fn unresolvable_name_names_the_host() {
        let req = Request {
            targets: &["127.0.0.1:1".into(), "no-such-host.invalid:22".into()],
            ..Request::default()
        };
        let e = detect(&req).unwrap_err();
        assert!(matches!(e, DetectError::Resolve { .. }), "{e:?}");
        assert_eq!(e.to_string(), "cannot resolve 'no-such-host.invalid'");
    }

    #[test]
    fn detects_a_refused_port_on_loopback() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let target = format!("localhost:{port}");
        let req = Request {
            targets: std::slice::from_ref(&target),
            timeout: Some(Duration::from_millis(500)),
            ..Request::default()
        };
        let got = detect(&req).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].target, target);
        assert!(got[0].address.ip().is_loopback());
        assert_eq!(got[0].transport, Proto::Tcp);
        assert!(!got[0].detected.is_identified());
        let line = serde_json::to_string(&got[0]).unwrap();
        let want = format!(
            "{{\"target\":\"{target}\",\"address\":\"{}\",\"transport\":\"tcp\",\"detected\":{{",
            got[0].address
        );
        assert!(line.starts_with(&want), "{line}");
        let back: Detected = serde_json::from_str(&line).unwrap();
        assert_eq!(back, got[0]);
    }

    proptest! {
        #[test]
        fn parse_target_never_panics(s in "\\PC{0,40}") {
            let _ = parse_target(&s);
        }

        #[test]
        fn parse_target_round_trips(host in "[a-z][a-z0-9.-]{0,20}", port in 1u16.., udp in any::<bool>()) {
            let s = format!("{host}:{port}{}", if udp { "/udp" } else { "" });
            let t = parse_target(&s).unwrap();
            prop_assert_eq!(t.host, host);
            prop_assert_eq!(t.port, port);
            prop_assert_eq!(t.proto, if udp { Proto::Udp } else { Proto::Tcp });
        }
    }
}
