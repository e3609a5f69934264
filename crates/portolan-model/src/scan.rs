//! A scan's results: one port, one host, and the whole run with its coverage.

use std::net::IpAddr;
use std::time::Duration;

use portolan_registry::Proto;
use serde::{Deserialize, Serialize};

use crate::coverage::Coverage;
use crate::detection::Detection;
use crate::state::{PortState, Reason};

/// The state of one port of one host, as an engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortResult {
    pub host: IpAddr,
    pub port: u16,
    #[serde(rename = "protocol")]
    pub proto: Proto,
    pub state: PortState,
    pub reason: Reason,
    /// Round-trip time of the answer, when one came back to a probe sent once.
    #[serde(rename = "rtt_ms", with = "opt_ms", default)]
    pub rtt: Option<Duration>,
    /// TTL (hop limit) of the answer, when the engine sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
}

/// A port as a report shows it: the engine's result, the registry's name for the port,
/// and what detection found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScannedPort {
    #[serde(flatten)]
    pub result: PortResult,
    /// IANA's name for the port and protocol.
    pub service: Option<String>,
    /// What detection found; `None` when the port was not probed for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected: Option<Detection>,
}

/// Whether a host answered discovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostState {
    Up,
    Down,
}

impl HostState {
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Up => "up",
            HostState::Down => "down",
        }
    }
}

/// One host of a scan, with the ports worth showing and counts of the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostResult {
    pub host: IpAddr,
    pub state: HostState,
    pub reason: Reason,
    #[serde(rename = "rtt_ms", with = "opt_ms", default)]
    pub rtt: Option<Duration>,
    /// The ports shown: every open port, and the others unless their state is too
    /// common on this host (see `not_shown`).
    pub ports: Vec<ScannedPort>,
    /// Ports left out of `ports`, by state.
    #[serde(default)]
    pub not_shown: Vec<(PortState, u64)>,
    /// The same ports, by state, reason and protocol (nmap's `extrareasons`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_shown_reasons: Vec<ReasonCount>,
    /// The name the host was given by, when it was given by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When its scan started and ended, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<u64>,
    /// Its round-trip estimate at the end of the scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<HostTiming>,
}

/// A count of ports with one state, reason and protocol.
impl HostResult {
    /// A host with no ports yet; fill the rest with struct update syntax.
    pub fn new(host: IpAddr, state: HostState, reason: Reason) -> HostResult {
        HostResult {
            host,
            state,
            reason,
            rtt: None,
            ports: Vec::new(),
            not_shown: Vec::new(),
            not_shown_reasons: Vec::new(),
            name: None,
            started: None,
            ended: None,
            timing: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonCount {
    pub state: PortState,
    pub reason: Reason,
    pub protocol: Proto,
    pub count: u64,
}

/// A host's round-trip estimate at the end of its scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostTiming {
    #[serde(rename = "srtt_ms", with = "ms")]
    pub srtt: Duration,
    #[serde(rename = "rttvar_ms", with = "ms")]
    pub rttvar: Duration,
    /// The probe timeout derived from them.
    #[serde(rename = "timeout_ms", with = "ms")]
    pub timeout: Duration,
}

/// How TCP ports are probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanMode {
    /// Full `connect()`; needs no privileges.
    Connect,
    /// Raw half-open SYN probes; needs root or CAP_NET_RAW.
    Syn,
}

impl ScanMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ScanMode::Connect => "connect",
            ScanMode::Syn => "syn",
        }
    }
}

/// Totals at the end of a scan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanSummary {
    /// The TCP mode; `None` when no TCP port was scanned.
    pub mode: Option<ScanMode>,
    /// Whether UDP was scanned.
    #[serde(default)]
    pub udp: bool,
    pub hosts_total: u64,
    pub hosts_up: u64,
    pub ports_scanned: u64,
    pub open: u64,
    pub closed: u64,
    pub filtered: u64,
    pub open_filtered: u64,
    /// Connect mode: connections that reached their own socket (loopback, source port
    /// equal to the port probed); dropped and tried again, never reported open.
    #[serde(default)]
    pub self_connects: u64,
    #[serde(rename = "elapsed_ms", with = "ms")]
    pub elapsed: Duration,
}

impl ScanSummary {
    /// Counts one port's final state.
    pub fn count(&mut self, state: PortState) {
        self.ports_scanned += 1;
        match state {
            PortState::Open => self.open += 1,
            PortState::Closed => self.closed += 1,
            PortState::Filtered => self.filtered += 1,
            PortState::OpenFiltered => self.open_filtered += 1,
        }
    }
}

/// A whole scan: what it probed, what it found per host, and its totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanReport {
    /// The targets as the user gave them.
    pub targets: Vec<String>,
    pub coverage: Coverage,
    pub hosts: Vec<HostResult>,
    pub summary: ScanSummary,
    /// The ports asked for, per protocol (what nmap's `scaninfo` lists), whether or not
    /// any host was up to probe them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tcp_ports: Vec<portolan_registry::PortRange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub udp_ports: Vec<portolan_registry::PortRange>,
}

impl ScanReport {
    /// The result for `port` of `proto` on `host`, if the scan kept one.
    pub fn port(&self, host: IpAddr, proto: Proto, port: u16) -> Option<&ScannedPort> {
        let host = crate::net::canonical(host);
        self.hosts
            .iter()
            .filter(|h| crate::net::canonical(h.host) == host)
            .flat_map(|h| &h.ports)
            .find(|p| p.result.proto == proto && p.result.port == port)
    }
}

/// Durations as milliseconds (a float, microsecond precision).
pub(crate) mod ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        if !v.is_finite() || !(0.0..=1e15).contains(&v) {
            return Err(serde::de::Error::custom("duration out of range"));
        }
        Ok(Duration::from_secs_f64(v / 1e3))
    }
}

pub(crate) mod opt_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::ms::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<f64>::deserialize(d)? {
            None => Ok(None),
            Some(v) if v.is_finite() && (0.0..=1e15).contains(&v) => {
                Ok(Some(Duration::from_secs_f64(v / 1e3)))
            }
            Some(_) => Err(serde::de::Error::custom("duration out of range")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_round_trips() {
        let r = PortResult {
            host: "198.18.0.2".parse().unwrap(),
            port: 25,
            proto: Proto::Tcp,
            state: PortState::Open,
            reason: Reason::SynAck,
            rtt: Some(Duration::from_micros(125)),
            ttl: Some(64),
        };
        let mut cov = Coverage::default();
        cov.add_ports(r.host, Proto::Tcp, &[22, 25]);
        let mut summary = ScanSummary {
            mode: Some(ScanMode::Syn),
            hosts_total: 1,
            hosts_up: 1,
            elapsed: Duration::from_millis(12),
            ..ScanSummary::default()
        };
        summary.count(PortState::Open);
        let report = ScanReport {
            targets: vec!["198.18.0.2".into()],
            coverage: cov,
            hosts: vec![HostResult {
                host: r.host,
                state: HostState::Up,
                reason: Reason::UserSet,
                rtt: None,
                ports: vec![ScannedPort {
                    result: r,
                    service: Some("smtp".into()),
                    detected: None,
                }],
                not_shown: vec![(PortState::Closed, 1)],
                not_shown_reasons: vec![ReasonCount {
                    state: PortState::Closed,
                    reason: Reason::Reset,
                    protocol: Proto::Tcp,
                    count: 1,
                }],
                name: Some("mail".into()),
                started: Some(1_700_000_000),
                ended: Some(1_700_000_001),
                timing: Some(HostTiming {
                    srtt: Duration::from_micros(900),
                    rttvar: Duration::from_micros(300),
                    timeout: Duration::from_millis(50),
                }),
            }],
            summary,
            tcp_ports: vec![portolan_registry::PortRange::new(22, 25).unwrap()],
            udp_ports: Vec::new(),
        };
        let j = serde_json::to_string(&report).unwrap();
        assert!(j.contains(r#""protocol":"tcp""#) && j.contains(r#""rtt_ms":0.125"#));
        assert_eq!(serde_json::from_str::<ScanReport>(&j).unwrap(), report);
        assert!(report.port(r.host, Proto::Tcp, 25).is_some());
        assert!(report.port(r.host, Proto::Udp, 25).is_none());
    }

    #[test]
    fn hostile_durations_are_errors() {
        let bad = r#"{"host":"::1","port":1,"protocol":"tcp","state":"open","reason":"syn-ack","rtt_ms":-1}"#;
        assert!(serde_json::from_str::<PortResult>(bad).is_err());
    }
}
