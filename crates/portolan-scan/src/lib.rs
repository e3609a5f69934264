//! portolan's scanner: what another host really exposes.
//!
//! Parse targets with [`Target::parse`] into a [`TargetSet`], ports with [`PortSpec`], fill
//! a [`ScanConfig`], and [`Scanner::run`] streams [`Event`]s to a callback as results come
//! in. Three engines do the work:
//!
//! - `connect`: nonblocking `connect()` over epoll, on every core, with concurrency sized
//!   from `RLIMIT_NOFILE` (raised to the hard limit); needs no privileges.
//! - `syn`: hand-built TCP SYNs sent in batches on a raw socket, stateless, with a keyed
//!   cookie in the sequence number that validates every reply; never completes a handshake.
//! - `udp`: protocol payloads for the common services; ICMP port-unreachable means closed.
//!
//! ```no_run
//! use portolan_scan::{Event, Mode, PortState, ScanConfig, Scanner, Target, TargetSet};
//!
//! let targets = TargetSet::build(&[Target::parse("198.18.0.2")?], &[], false)?;
//! let config = ScanConfig {
//!     mode: Mode::best_available(),
//!     tcp_ports: vec![22, 80, 443],
//!     discovery: false,
//!     ..ScanConfig::default()
//! };
//! let summary = Scanner::new(config).run(&targets, &mut |event| {
//!     if let Event::Port(r) = event
//!         && r.state == PortState::Open
//!     {
//!         println!("{}:{} open ({})", r.host, r.port, r.reason);
//!     }
//! })?;
//! println!("{} open", summary.open);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! All three send in rounds: every unanswered probe is sent again, up to the retry limit,
//! with timeouts from per-host RTT estimates. The send rate falls only when the share of
//! answered probes drops far below what was seen before (congestion), not on the steady
//! loss of a lossy link.

mod connect;
mod discovery;
pub mod packet;
pub mod payload;
pub mod ports;
mod rate;
mod rounds;
pub mod rtt;
mod syn;
mod sys;
pub mod target;
mod top;
mod udp;
pub mod xml;

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub use portolan_registry::{PortRange, Proto};
pub use ports::{PortSpec, PortSpecError};
pub use rtt::{RttBounds, RttEstimator};
pub use target::{Target, TargetError, TargetSet};

/// A port's state, as nmap defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortState {
    Open,
    Closed,
    Filtered,
    #[serde(rename = "open|filtered")]
    OpenFiltered,
}

impl PortState {
    pub const ALL: [PortState; 4] = [
        PortState::Open,
        PortState::Closed,
        PortState::Filtered,
        PortState::OpenFiltered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PortState::Open => "open",
            PortState::Closed => "closed",
            PortState::Filtered => "filtered",
            PortState::OpenFiltered => "open|filtered",
        }
    }
}

impl fmt::Display for PortState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a port (or host) got its state, in nmap's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// A SYN-ACK came back (or the connection was made).
    SynAck,
    /// A RST came back.
    Reset,
    /// `connect()` was refused.
    ConnRefused,
    /// Nothing came back, after every retry.
    NoResponse,
    HostUnreach,
    NetUnreach,
    AdminProhibited,
    PortUnreach,
    ProtoUnreach,
    TimeExceeded,
    /// A UDP datagram came back.
    UdpResponse,
    /// The host answered an ICMP echo.
    EchoReply,
    /// Host discovery was skipped (`-Pn`).
    UserSet,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::SynAck => "syn-ack",
            Reason::Reset => "reset",
            Reason::ConnRefused => "conn-refused",
            Reason::NoResponse => "no-response",
            Reason::HostUnreach => "host-unreach",
            Reason::NetUnreach => "net-unreach",
            Reason::AdminProhibited => "admin-prohibited",
            Reason::PortUnreach => "port-unreach",
            Reason::ProtoUnreach => "proto-unreach",
            Reason::TimeExceeded => "time-exceeded",
            Reason::UdpResponse => "udp-response",
            Reason::EchoReply => "echo-reply",
            Reason::UserSet => "user-set",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of one port of one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortResult {
    pub host: IpAddr,
    pub port: u16,
    pub proto: Proto,
    pub state: PortState,
    pub reason: Reason,
    /// Round-trip time of the answer, when one came back to a probe sent once.
    pub rtt: Option<Duration>,
    /// TTL (hop limit) of the answer, when the engine sees it.
    pub ttl: Option<u8>,
}

/// How TCP ports are probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Full `connect()`; needs no privileges.
    Connect,
    /// Raw half-open SYN probes; needs root or CAP_NET_RAW.
    Syn,
}

impl Mode {
    /// `Syn` when raw sockets can be opened, else `Connect`.
    pub fn best_available() -> Mode {
        if sys::can_raw() {
            Mode::Syn
        } else {
            Mode::Connect
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Connect => "connect",
            Mode::Syn => "syn",
        }
    }
}

/// Everything a scan needs besides its targets. Build with struct update syntax from
/// `ScanConfig::default()`.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    pub mode: Mode,
    /// TCP ports to probe (empty: no TCP scan).
    pub tcp_ports: Vec<u16>,
    /// UDP ports to probe (empty: no UDP scan).
    pub udp_ports: Vec<u16>,
    /// Find out first which hosts are up (ICMP echo and TCP SYN to 80/443); off means
    /// every host is taken as up.
    pub discovery: bool,
    /// Retransmissions of an unanswered probe; `None` picks per engine and adapts.
    pub max_retries: Option<u32>,
    /// Timeout bounds for the RTT estimator.
    pub rtt: RttBounds,
    /// Upper bound on packets (or connection attempts) per second.
    pub rate: Option<u32>,
    /// Connections in flight for the connect engine; `None` sizes it from RLIMIT_NOFILE.
    pub concurrency: Option<usize>,
    /// Worker threads for the connect engine; `None` uses every core (at most 4).
    pub threads: Option<usize>,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            mode: Mode::Connect,
            tcp_ports: Vec::new(),
            udp_ports: Vec::new(),
            discovery: true,
            max_retries: None,
            rtt: RttBounds::default(),
            rate: None,
            concurrency: None,
            threads: None,
        }
    }
}

/// Why a scan could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("SYN scan needs root or CAP_NET_RAW (use the connect mode instead)")]
    NeedRaw,
    #[error("no route or source address for {addr}: {source}")]
    NoSource {
        addr: IpAddr,
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn io_err(op: &'static str) -> impl FnOnce(std::io::Error) -> ScanError {
    move |source| ScanError::Io { op, source }
}

/// What a scan reports while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A host was found up (or down) by discovery, or taken as up with `-Pn`.
    Host {
        addr: IpAddr,
        up: bool,
        reason: Reason,
        rtt: Option<Duration>,
    },
    /// A port's final state. Open ports come as soon as they are found; ports that stay
    /// unanswered come when the retries are spent.
    Port(PortResult),
    /// Every port of this host has been reported.
    HostDone {
        addr: IpAddr,
        timing: Option<HostTiming>,
    },
    /// Probes finished so far, of the total.
    Progress { done: u64, total: u64 },
}

/// A host's round-trip estimate at the end of its scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostTiming {
    pub srtt: Duration,
    pub rttvar: Duration,
    /// The probe timeout derived from them.
    pub timeout: Duration,
}

/// Totals at the end of a scan.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    pub hosts_total: u64,
    pub hosts_up: u64,
    pub ports_scanned: u64,
    pub open: u64,
    pub closed: u64,
    pub filtered: u64,
    pub open_filtered: u64,
    /// Connect mode: connections that reached their own socket (loopback, source port
    /// equal to the port probed); dropped and tried again, never reported open.
    pub self_connects: u64,
    #[serde(serialize_with = "ser_ms", rename = "elapsed_ms")]
    pub elapsed: Duration,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

/// How many probes one group of hosts may hold; bounds memory whatever the target count.
const GROUP_PROBES: usize = 1 << 18;

/// The results sink the engines write to, with progress accounting.
pub(crate) struct Sink<'a> {
    on: &'a mut dyn FnMut(Event),
    done: u64,
    total: u64,
    last: Instant,
    summary: Summary,
}

impl Sink<'_> {
    pub(crate) fn port(&mut self, r: PortResult) {
        self.done += 1;
        self.summary.ports_scanned += 1;
        match r.state {
            PortState::Open => self.summary.open += 1,
            PortState::Closed => self.summary.closed += 1,
            PortState::Filtered => self.summary.filtered += 1,
            PortState::OpenFiltered => self.summary.open_filtered += 1,
        }
        (self.on)(Event::Port(r));
        if self.last.elapsed() > Duration::from_millis(100) {
            self.last = Instant::now();
            (self.on)(Event::Progress {
                done: self.done,
                total: self.total,
            });
        }
    }
}

/// Runs scans.
#[derive(Debug, Clone)]
pub struct Scanner {
    config: ScanConfig,
}

impl Scanner {
    pub fn new(config: ScanConfig) -> Scanner {
        Scanner { config }
    }

    pub fn config(&self) -> &ScanConfig {
        &self.config
    }

    /// Scans every target, calling `on` for each event as it happens.
    pub fn run(
        &self,
        targets: &TargetSet,
        on: &mut dyn FnMut(Event),
    ) -> Result<Summary, ScanError> {
        let start = Instant::now();
        let cfg = &self.config;
        if cfg.mode == Mode::Syn && !sys::can_raw() && !cfg.tcp_ports.is_empty() {
            return Err(ScanError::NeedRaw);
        }
        let per_host = (cfg.tcp_ports.len() + cfg.udp_ports.len()).max(1);
        let group = (GROUP_PROBES / per_host).clamp(1, 4096);
        let mut sink = Sink {
            on,
            done: 0,
            total: targets.len() * (cfg.tcp_ports.len() + cfg.udp_ports.len()) as u64,
            last: Instant::now(),
            summary: Summary::default(),
        };
        let mut hosts = targets.iter();
        loop {
            let chunk: Vec<IpAddr> = hosts.by_ref().take(group).collect();
            if chunk.is_empty() {
                break;
            }
            sink.summary.hosts_total += chunk.len() as u64;
            // The raw and UDP engines need our source address towards each host; a host
            // without one (a broadcast address, no route) is down, not the end of the scan.
            let chunk: Vec<IpAddr> = if cfg.mode == Mode::Syn || !cfg.udp_ports.is_empty() {
                let (ok, unroutable): (Vec<IpAddr>, Vec<IpAddr>) =
                    chunk.into_iter().partition(|&a| sys::source_for(a).is_ok());
                for addr in unroutable {
                    sink.total -= per_host as u64;
                    (sink.on)(Event::Host {
                        addr,
                        up: false,
                        reason: Reason::NetUnreach,
                        rtt: None,
                    });
                }
                ok
            } else {
                chunk
            };
            if chunk.is_empty() {
                continue;
            }
            let up = if cfg.discovery {
                discovery::discover(cfg, &chunk)?
            } else {
                chunk.iter().map(|&a| (a, Reason::UserSet, None)).collect()
            };
            let up_set: std::collections::HashSet<IpAddr> = up.iter().map(|u| u.0).collect();
            for &(addr, reason, rtt) in &up {
                (sink.on)(Event::Host {
                    addr,
                    up: true,
                    reason,
                    rtt,
                });
            }
            for &addr in chunk.iter().filter(|a| !up_set.contains(a)) {
                sink.total -= per_host as u64;
                (sink.on)(Event::Host {
                    addr,
                    up: false,
                    reason: Reason::NoResponse,
                    rtt: None,
                });
            }
            sink.summary.hosts_up += up.len() as u64;
            let live: Vec<IpAddr> = up.iter().map(|u| u.0).collect();
            let mut timing = vec![None; live.len()];
            if !live.is_empty() && !cfg.tcp_ports.is_empty() {
                let s = match cfg.mode {
                    Mode::Connect => connect::scan(cfg, &live, &cfg.tcp_ports, &mut sink)?,
                    Mode::Syn => syn::scan(cfg, &live, &cfg.tcp_ports, &mut sink)?,
                };
                timing = s;
            }
            if !live.is_empty() && !cfg.udp_ports.is_empty() {
                let s = udp::scan(cfg, &live, &cfg.udp_ports, &mut sink)?;
                for (a, b) in timing.iter_mut().zip(s) {
                    *a = a.or(b);
                }
            }
            for (&addr, timing) in live.iter().zip(timing) {
                (sink.on)(Event::HostDone { addr, timing });
            }
        }
        let mut summary = sink.summary;
        summary.elapsed = start.elapsed();
        Ok(summary)
    }
}

/// A small, fast, non-cryptographic generator for probe order (xorshift64*), seeded from
/// the OS through `RandomState`.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new() -> Rng {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x5eed);
        Rng(h.finish() | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}
