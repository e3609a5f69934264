//! portolan's scanner: what another host really exposes.
//!
//! Parse targets with [`Target::parse`] into a [`TargetSet`], ports with [`PortSpec`], fill
//! a [`ScanConfig`], and [`Scanner::run`] streams [`Event`]s to a callback as results come
//! in. Three engines do the work:
//!
//! - `connect`: nonblocking `connect()` over epoll, on every core for one block, with the
//!   sockets in flight bounded by `RLIMIT_NOFILE` (raised to the hard limit); needs no
//!   privileges.
//! - `syn`: hand-built TCP SYNs sent in batches on a raw socket, stateless, with a keyed
//!   cookie in the sequence number that validates every reply; never completes a handshake.
//! - `udp`: protocol payloads for the common services; ICMP port-unreachable means closed.
//!
//! ```no_run
//! use portolan_scan::{Event, Mode, PortState, ScanConfig, Scanner, Target, TargetSet};
//!
//! let targets = TargetSet::build(&[Target::parse("198.18.0.2")?], &[], false)?;
//! let config = ScanConfig {
//!     mode: portolan_scan::best_mode(),
//!     tcp_ports: vec![22, 80, 443],
//!     discovery: false,
//!     ..ScanConfig::default()
//! };
//! let done = Scanner::new(config).run(&targets, &mut |event| {
//!     if let Event::Port(r) = event
//!         && r.state == PortState::Open
//!     {
//!         println!("{}:{} open ({})", r.host, r.port, r.reason);
//!     }
//! })?;
//! println!("{} open", done.summary.open);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! All three send in rounds: every unanswered probe is sent again, up to the retry limit,
//! with timeouts from per-host RTT estimates. The send rate falls only when the share of
//! answered probes drops far below what was seen before (congestion), not on the steady
//! loss of a lossy link.

#![deny(unsafe_code)]

mod connect;
mod discovery;
mod epoll;
pub mod packet;
pub mod payload;
pub mod perm;
mod pipeline;
pub mod plan;
mod rate;
mod rounds;
mod route;
pub mod rtt;
pub mod scope;
mod syn;
#[allow(unsafe_code)]
mod sys;
pub mod target;
mod top;
mod udp;

use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub use portolan_model::spec::{self as ports, PortSpec, PortSpecError};
pub use portolan_model::{
    Coverage, HostTiming, PortResult, PortState, Reason, ScanMode, ScanSummary,
};
pub use portolan_registry::{PortRange, Proto};
pub use rtt::{RttBounds, RttEstimator};
pub use target::{Target, TargetError, TargetSet};
pub use top::top;

/// How TCP ports are probed: the model's [`ScanMode`].
pub type Mode = ScanMode;

/// `Syn` when raw sockets can be opened, else `Connect`.
pub fn best_mode() -> Mode {
    if sys::can_raw() {
        Mode::Syn
    } else {
        Mode::Connect
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
    /// Threads of a scan: of a connect scan of one block, the ports split among them; of
    /// many blocks, the blocks, at a rate cap of 50,000/s or more (below it, one thread).
    /// `None` uses every core (at most 4).
    pub threads: Option<usize>,
    /// The seed of the probe order; `None`: [`plan::default_seed`] of the targets and
    /// ports, the same in every process.
    pub seed: Option<u64>,
    /// The share of the hosts this scanner takes.
    pub shard: plan::Shard,
    /// Blocks of the plan already done (by an interrupted run): start after them.
    pub start_block: u64,
    /// Blocks after `start_block` already done too (they finished out of order): skipped.
    pub skip_blocks: Vec<u64>,
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
            seed: None,
            shard: plan::Shard::default(),
            start_block: 0,
            skip_blocks: Vec::new(),
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
    /// Block `index` of the plan starts: `hosts` are its hosts, and no event of them
    /// came before this one.
    BlockStart { index: u64, hosts: Vec<IpAddr> },
    /// Every event of block `index`'s hosts was sent (of `blocks` in the plan): a resumed
    /// scan may skip the block. Blocks in flight together may finish in any order.
    BlockDone { index: u64, blocks: u64 },
}

/// The results sink the engines write to, with progress accounting.
pub(crate) struct Sink<'a> {
    on: &'a mut dyn FnMut(Event),
    done: u64,
    total: u64,
    last: Instant,
    summary: ScanSummary,
}

impl<'a> Sink<'a> {
    /// A sink for `total` results, with nothing counted yet.
    pub(crate) fn new(on: &'a mut dyn FnMut(Event), total: u64) -> Self {
        Sink {
            on,
            done: 0,
            total,
            last: Instant::now(),
            summary: ScanSummary::default(),
        }
    }

    pub(crate) fn port(&mut self, r: PortResult) {
        self.done += 1;
        self.summary.count(r.state);
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

/// What a finished scan returns: its totals and exactly what it probed (hosts found down
/// or unroutable were not port-probed and are not in the coverage).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scanned {
    pub summary: ScanSummary,
    pub coverage: Coverage,
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

    /// The seed of the probe order this scan uses on `targets`.
    pub fn seed(&self, targets: &TargetSet) -> u64 {
        let cfg = &self.config;
        cfg.seed
            .unwrap_or_else(|| plan::default_seed(targets, &cfg.tcp_ports, &cfg.udp_ports))
    }

    /// How many blocks the plan of this scan on `targets` has.
    pub fn blocks(&self, targets: &TargetSet) -> u64 {
        self.plan(targets).blocks()
    }

    fn plan<'t>(&self, targets: &'t TargetSet) -> plan::Plan<'t> {
        let cfg = &self.config;
        let per_host = (cfg.tcp_ports.len() + cfg.udp_ports.len()).max(1);
        plan::Plan::new(targets, self.seed(targets), cfg.shard, per_host)
    }

    /// Whether the scan of `blocks` blocks goes through the pipeline, blocks overlapping:
    /// in connect mode when there are blocks to overlap (connect and UDP need no
    /// privileges; one block is faster on every core, see `connect::scan`), and in SYN
    /// mode when raw sockets carry discovery too.
    fn pipelined(&self, blocks: u64) -> bool {
        let cfg = &self.config;
        if cfg.mode == Mode::Connect {
            return blocks > 1;
        }
        let raw = sys::can_raw();
        let tcp_raw = cfg.tcp_ports.is_empty() || cfg.mode == Mode::Syn;
        let disc_raw = !cfg.discovery || (cfg.mode == Mode::Syn && raw);
        raw && tcp_raw && disc_raw
    }

    /// Scans every target (of this shard, after `start_block`, but `skip_blocks`), calling `on` for each
    /// event as it happens.
    pub fn run(
        &self,
        targets: &TargetSet,
        on: &mut dyn FnMut(Event),
    ) -> Result<Scanned, ScanError> {
        let start = Instant::now();
        let cfg = &self.config;
        let tcp_ranges = portolan_model::spec::merge(
            cfg.tcp_ports
                .iter()
                .map(|&p| PortRange::single(p))
                .collect(),
        );
        let udp_ranges = portolan_model::spec::merge(
            cfg.udp_ports
                .iter()
                .map(|&p| PortRange::single(p))
                .collect(),
        );
        if cfg.mode == Mode::Syn && !sys::can_raw() && !cfg.tcp_ports.is_empty() {
            return Err(ScanError::NeedRaw);
        }
        let per_host = (cfg.tcp_ports.len() + cfg.udp_ports.len()).max(1);
        let plan = self.plan(targets);
        let first = cfg.start_block.min(plan.blocks());
        let skip: std::collections::BTreeSet<u64> = cfg
            .skip_blocks
            .iter()
            .copied()
            .filter(|&b| b >= first && b < plan.blocks())
            .collect();
        let skipped: u64 = skip
            .iter()
            .map(|&b| plan.hosts_before(b + 1) - plan.hosts_before(b))
            .sum();
        let total = (plan.hosts() - plan.hosts_before(first) - skipped)
            * (cfg.tcp_ports.len() + cfg.udp_ports.len()) as u64;
        let mut sink = Sink::new(on, total);
        let mut covered = Covered::new(targets);
        if self.pipelined(plan.blocks() - first - skip.len() as u64) {
            let families = targets.families();
            pipeline::scan(cfg, &plan, (first, &skip), families, &mut sink, &mut |a| {
                covered.add(a)
            })?;
        } else {
            for b in (first..plan.blocks()).filter(|b| !skip.contains(b)) {
                let hosts = plan.block(b);
                (sink.on)(Event::BlockStart {
                    index: b,
                    hosts: hosts.clone(),
                });
                self.block(&hosts, per_host, &mut sink, &mut covered)?;
                (sink.on)(Event::BlockDone {
                    index: b,
                    blocks: plan.blocks(),
                });
            }
        }
        let mut summary = sink.summary;
        summary.mode = (!cfg.tcp_ports.is_empty()).then_some(cfg.mode);
        summary.udp = !cfg.udp_ports.is_empty();
        summary.elapsed = start.elapsed();
        let coverage = covered.coverage(&tcp_ranges, &udp_ranges);
        Ok(Scanned { summary, coverage })
    }

    /// One block of hosts, one engine after the other (the connect engine's way).
    fn block(
        &self,
        chunk: &[IpAddr],
        per_host: usize,
        sink: &mut Sink<'_>,
        covered: &mut Covered<'_>,
    ) -> Result<(), ScanError> {
        let cfg = &self.config;
        sink.summary.hosts_total += chunk.len() as u64;
        // The raw and UDP engines need our source address towards each host; a host
        // without one (a broadcast address, no route) is down, not the end of the scan.
        let chunk: Vec<IpAddr> = if cfg.mode == Mode::Syn || !cfg.udp_ports.is_empty() {
            let mut ok = Vec::with_capacity(chunk.len());
            for &addr in chunk {
                let reason = match sys::source_for(addr) {
                    Ok(_) => {
                        ok.push(addr);
                        continue;
                    }
                    Err(e) => unroutable_reason(&e),
                };
                sink.total -= per_host as u64;
                (sink.on)(Event::Host {
                    addr,
                    up: false,
                    reason,
                    rtt: None,
                });
            }
            ok
        } else {
            chunk.to_vec()
        };
        if chunk.is_empty() {
            return Ok(());
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
                Mode::Connect => connect::scan(cfg, &live, &cfg.tcp_ports, sink)?,
                Mode::Syn => syn::scan(cfg, &live, &cfg.tcp_ports, sink)?,
            };
            timing = s;
        }
        if !live.is_empty() && !cfg.udp_ports.is_empty() {
            let s = udp::scan(cfg, &live, &cfg.udp_ports, sink)?;
            for (a, b) in timing.iter_mut().zip(s) {
                *a = a.or(b);
            }
        }
        for (&addr, timing) in live.iter().zip(timing) {
            covered.add(addr);
            (sink.on)(Event::HostDone { addr, timing });
        }
        Ok(())
    }
}

/// The hosts whose ports were probed: a bit for each address of the target set (they
/// come in probe order, a permutation, so ranges of them would stay fragmented until the
/// end, a quarter as many ranges as addresses half-way).
struct Covered<'t> {
    targets: &'t TargetSet,
    bits: Vec<u64>,
}

impl<'t> Covered<'t> {
    fn new(targets: &'t TargetSet) -> Covered<'t> {
        Covered {
            targets,
            bits: Vec::new(),
        }
    }

    fn add(&mut self, a: IpAddr) {
        let Some(i) = self
            .targets
            .index_of(a)
            .or_else(|| self.targets.index_of(portolan_model::canonical(a)))
        else {
            return;
        };
        let w = (i / 64) as usize;
        if w >= self.bits.len() {
            self.bits.resize(w + 1, 0);
        }
        self.bits[w] |= 1 << (i % 64);
    }

    fn has(&self, i: u64) -> bool {
        self.bits
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn coverage(&self, tcp: &[PortRange], udp: &[PortRange]) -> Coverage {
        let addresses: Vec<portolan_model::AddrRange> = self
            .targets
            .runs(|i| self.has(i))
            .into_iter()
            .map(|(first, last)| portolan_model::AddrRange {
                first: portolan_model::canonical(first),
                last: portolan_model::canonical(last),
            })
            .collect();
        let mut c = Coverage::default();
        for (protocol, ports) in [(Proto::Tcp, tcp), (Proto::Udp, udp)] {
            if !ports.is_empty() && !addresses.is_empty() {
                c.probed.push(portolan_model::Probed {
                    protocol,
                    ports: ports.to_vec(),
                    addresses: addresses.clone(),
                });
            }
        }
        c
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
}

/// What the kernel said when asked for a route and source address towards a host: no
/// route (ENETUNREACH, EHOSTUNREACH), or a refusal to send (EACCES: a broadcast address).
fn unroutable_reason(e: &io::Error) -> Reason {
    match e.raw_os_error() {
        Some(libc::EHOSTUNREACH) => Reason::HostUnreach,
        Some(libc::EACCES | libc::EPERM) => Reason::AdminProhibited,
        _ => Reason::NetUnreach,
    }
}
