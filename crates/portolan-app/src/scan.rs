//! The scan operation: probe the targets, gather each host's results (which ports are
//! listed, which are summarised as "not shown"), name the ports from the registry, run
//! service detection when asked, and return the model's [`ScanReport`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portolan_detect::{Detector, Options, Pool, Probe};
use portolan_model::{
    HostResult, HostState, HostTiming, PortRange, PortResult, PortSpec, PortSpecError, PortState,
    Proto, Reason, ReasonCount, ScanMode, ScanReport, ScannedPort, spec,
};
use portolan_registry::Registry;
pub use portolan_scan::plan::Shard;
use portolan_scan::{
    Event, RttBounds, ScanConfig, ScanError, Scanner, Target, TargetError, TargetSet,
};

pub mod held;

pub use held::HeldOutput;

/// A state with more ports than this on one host is summarised, not listed (as nmap).
pub const LIST_LIMIT: u64 = 25;

/// Which ports to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ports {
    /// A parsed `-p` specification.
    Spec(PortSpec),
    /// The `n` most common ports of each protocol (`--top`).
    Top(usize),
}

/// What to scan and how.
#[derive(Debug, Clone)]
pub struct ScanRequest {
    pub targets: Vec<Target>,
    pub exclude: Vec<Target>,
    /// Resolve host names (off: names are an error).
    pub resolve: bool,
    pub ports: Ports,
    /// Scan TCP, and how (`None`: SYN when raw sockets can be opened, else connect).
    pub tcp: bool,
    pub mode: Option<ScanMode>,
    pub udp: bool,
    /// Find out first which hosts are up.
    pub discovery: bool,
    /// Upper bound on the probe timeout (and the detection timeout).
    pub timeout: Option<Duration>,
    pub max_retries: Option<u32>,
    pub rate: Option<u32>,
    pub concurrency: Option<usize>,
    /// Detect what answers on open ports (`-sV`).
    pub detect: bool,
    /// List every port, whatever its state.
    pub all: bool,
    /// The seed of the probe order (`None`: derived from the targets and ports).
    pub seed: Option<u64>,
    /// Take only this share of the hosts.
    pub shard: Shard,
    /// Keep the progress in this file, and continue from it when it exists (see
    /// [`ResumeState`] for what the consumer of the events does).
    pub resume: Option<PathBuf>,
    /// Standard output, when it is a regular file: checked against the resume file.
    pub output: Option<OutputFile>,
    /// Keep every finished host in the returned report (off: only the summary and the
    /// coverage come back, and memory does not grow with the hosts).
    pub keep_hosts: bool,
}

impl Default for ScanRequest {
    fn default() -> Self {
        ScanRequest {
            targets: Vec::new(),
            exclude: Vec::new(),
            resolve: true,
            ports: Ports::Top(1000),
            tcp: true,
            mode: None,
            udp: false,
            discovery: true,
            timeout: None,
            max_retries: None,
            rate: None,
            concurrency: None,
            detect: false,
            all: false,
            seed: None,
            shard: Shard::default(),
            resume: None,
            output: None,
            keep_hosts: true,
        }
    }
}

/// Why a scan could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScanOpError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("--exclude leaves none of the targets to scan")]
    AllExcluded,
    #[error("no targets to scan (give addresses, names, or -iL FILE)")]
    NoTargets,
    #[error(transparent)]
    Ports(#[from] PortSpecError),
    #[error("the port specification leaves no ports for the chosen scan modes")]
    NoPorts,
    #[error(
        "UDP port 0 cannot be scanned: the kernel refuses to send to it (leave 0 out, e.g. T:0,U:1-1024)"
    )]
    UdpPortZero,
    #[error("starting service detection: {0}")]
    Detect(#[source] std::io::Error),
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error("resume file {path}: {why}")]
    Resume { path: PathBuf, why: String },
    /// The output a [`scan_to`] writes to failed; the blocks whose records it did not
    /// take are not recorded as done.
    #[error("cannot write the output")]
    Output(#[source] std::io::Error),
}

/// What a scan reports while it runs.
#[derive(Debug)]
pub enum ScanEvent<'a> {
    /// A host was found up or down (or taken as up with `-Pn`).
    Host {
        addr: IpAddr,
        up: bool,
        reason: Reason,
        rtt: Option<Duration>,
    },
    /// A port to show, in the order to show it: open ports as soon as they are found
    /// (with detection, when their host is done), the other listed states at the host's
    /// end.
    Port(&'a ScannedPort),
    /// Every port of this host has been reported.
    HostDone(&'a HostResult),
    /// Probes finished so far, of the total.
    Progress { done: u64, total: u64 },
    /// With `resume`: the events that follow, up to the next `InBlock`, are of block
    /// `index`'s hosts. Blocks in flight together interleave their events.
    InBlock(u64),
    /// With `resume`: every event of block `index` has been sent, and the resume file is
    /// about to record the block as done. A consumer that holds the block's output (see
    /// [`ResumeState`]) sets `written` to the position of its output file now and after
    /// the block's output (`(before, after)`) and writes it at the `Checkpoint` that
    /// follows; one that does not writes everything of the block out now.
    BlockDone {
        index: u64,
        written: &'a mut Option<(u64, u64)>,
    },
    /// With `resume`: the resume file now records `done` blocks of `blocks` (the last one
    /// the block of the `BlockDone` before).
    Checkpoint { done: u64, blocks: u64 },
    /// Something the user should know about the resume file or the output.
    Notice(&'a str),
}

/// The file that standard output is, when it is a regular file: its identity and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutputFile {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
}

/// Where the output of the last block a resume file records went: the output file, and
/// its size before and after the block's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutputMark {
    pub dev: u64,
    pub ino: u64,
    pub block: u64,
    pub before: u64,
    pub after: u64,
}

/// What a resume file holds: the scan it belongs to, and how far it got.
///
/// A block's output is held until the block is done, then the file is written (a
/// temporary file, then a rename) and then the output. When the output is a regular
/// file, the resume file records where the block's output goes (`output`): a run that
/// resumes finds the file at `after` (the block is out), at `before` (the scan was killed
/// after the rename but before the write: the block is scanned again), or elsewhere (a
/// write cut short, or another writer), which it reports. When the output is a pipe or a
/// terminal, the output goes first and the rename after it: a kill between the two gives
/// the block's records twice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResumeState {
    /// The file's format (2; 1 is read too).
    pub portolan_resume: u32,
    pub seed: u64,
    /// `I/N`, from 1.
    pub shard: String,
    /// Digests of the target set and of the ports and modes, to tell another command
    /// line's file.
    pub targets: String,
    pub probes: String,
    /// Blocks of hosts in the plan, and how many of the first ones are finished.
    pub blocks: u64,
    pub blocks_done: u64,
    /// Blocks after the first `blocks_done` that are finished too (blocks in flight
    /// together finish in any order; at most 64).
    #[serde(default)]
    pub done_after: Vec<u64>,
    #[serde(default)]
    pub output: Option<OutputMark>,
}

/// The resume file format written.
const FORMAT: u32 = 2;

impl ResumeState {
    /// Reads a resume file; an error names it and what is wrong.
    pub fn read(path: &Path) -> Result<ResumeState, ScanOpError> {
        let bad = |why: String| ScanOpError::Resume {
            path: path.to_path_buf(),
            why,
        };
        let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        if meta.len() > 64 << 10 {
            return Err(bad("too large to be a resume file".into()));
        }
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let state: ResumeState = serde_json::from_str(&text)
            .map_err(|e| bad(format!("not a portolan resume file ({e})")))?;
        if !(1..=FORMAT).contains(&state.portolan_resume) {
            return Err(bad(format!(
                "format {} is not one this portolan reads",
                state.portolan_resume
            )));
        }
        let beyond = state.done_after.iter().any(|&b| b >= state.blocks);
        if state.blocks_done > state.blocks || beyond {
            return Err(bad("more blocks done than the scan has".into()));
        }
        Ok(state)
    }

    /// Writes it atomically: a temporary file beside it, then a rename.
    pub fn write(&self, path: &Path) -> Result<(), ScanOpError> {
        let bad = |e: std::io::Error| ScanOpError::Resume {
            path: path.to_path_buf(),
            why: e.to_string(),
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let text = serde_json::to_string_pretty(self).map_err(|e| bad(e.into()))?;
        std::fs::write(&tmp, text + "\n").map_err(|e| ScanOpError::Resume {
            path: path.to_path_buf(),
            why: format!("cannot write {}: {e}", tmp.display()),
        })?;
        std::fs::rename(&tmp, path).map_err(|e| ScanOpError::Resume {
            path: path.to_path_buf(),
            why: format!("cannot rename {} to it: {e}", tmp.display()),
        })
    }

    /// How many blocks are done.
    pub fn done(&self) -> u64 {
        self.blocks_done + self.done_after.len() as u64
    }

    /// Records block `b` as done.
    fn add(&mut self, b: u64) {
        if b < self.blocks_done || self.done_after.contains(&b) {
            return;
        }
        self.done_after.push(b);
        self.done_after.sort_unstable();
        while self.done_after.first() == Some(&self.blocks_done) {
            self.done_after.remove(0);
            self.blocks_done += 1;
        }
    }

    /// Records block `b` as not done.
    fn remove(&mut self, b: u64) {
        if let Some(i) = self.done_after.iter().position(|&d| d == b) {
            self.done_after.remove(i);
        } else if b < self.blocks_done {
            self.done_after.extend(b + 1..self.blocks_done);
            self.done_after.sort_unstable();
            self.blocks_done = b;
        }
    }

    /// Checks the output this run appends to against where the last block's output went:
    /// a block that the file records but whose output is not there is done again. Returns
    /// what the user should know, if anything.
    pub fn reconcile(&mut self, out: Option<OutputFile>, path: &Path) -> Option<String> {
        let m = self.output?;
        let out = out.filter(|o| (o.dev, o.ino) == (m.dev, m.ino))?;
        if self.done() == self.blocks && out.size >= m.after {
            // Finished: the summary came after the last block.
            return None;
        }
        let file = path.display();
        if out.size == m.after {
            None
        } else if out.size == m.before {
            // Killed after the rename, before the write: nothing of the block is out.
            self.remove(m.block);
            self.output = None;
            None
        } else if out.size > m.before && out.size < m.after {
            self.remove(m.block);
            self.output = None;
            Some(format!(
                "{file}: bytes {}..{} of the output are the first {} of the {} bytes of \
                 block {}'s records (the scan was killed while writing them); the block is \
                 scanned again, so its records there come again after them, and the last \
                 one there may be cut short",
                m.before,
                out.size,
                out.size - m.before,
                m.after - m.before,
                m.block
            ))
        } else if out.size > m.after {
            Some(format!(
                "{file}: the output has {} bytes more than when the last block was recorded \
                 (another writer?)",
                out.size - m.after
            ))
        } else {
            Some(format!(
                "{file}: the output is {} bytes, {} when the last block was recorded: the \
                 records of the blocks done before are not in it (append with >>)",
                out.size, m.after
            ))
        }
    }

    /// What doesn't match between this file and `other` (the command line's), if any.
    fn mismatch(&self, other: &ResumeState) -> Option<&'static str> {
        if self.targets != other.targets {
            Some("it was written for other targets")
        } else if self.probes != other.probes {
            Some("it was written for other ports or scan modes")
        } else if self.shard != other.shard {
            Some("it was written for another shard")
        } else if self.seed != other.seed {
            Some("it was written for another --seed")
        } else if self.blocks != other.blocks {
            Some("it was written for a scan of another size")
        } else {
            None
        }
    }
}

/// The resume state of a scan that has done nothing yet.
fn fresh_state(req: &ScanRequest, cfg: &ScanConfig, targets: &TargetSet) -> ResumeState {
    let scanner = Scanner::new(cfg.clone());
    let mut h =
        portolan_scan::plan::default_seed(&TargetSet::default(), &cfg.tcp_ports, &cfg.udp_ports);
    for w in [
        u64::from(cfg.mode == ScanMode::Syn),
        u64::from(cfg.discovery),
        u64::from(req.all),
    ] {
        h = portolan_scan::perm::mix(h ^ w);
    }
    ResumeState {
        portolan_resume: FORMAT,
        seed: scanner.seed(targets),
        shard: format!("{}/{}", cfg.shard.index + 1, cfg.shard.count),
        targets: format!("{:016x}", targets.digest()),
        probes: format!("{h:016x}"),
        blocks: scanner.blocks(targets),
        blocks_done: 0,
        done_after: Vec::new(),
        output: None,
    }
}

/// The scanner configuration a request asks for.
pub fn config(req: &ScanRequest) -> Result<ScanConfig, ScanOpError> {
    let spec = match &req.ports {
        Ports::Spec(s) => s.clone(),
        Ports::Top(n) => portolan_scan::top(*n)?,
    };
    let tcp_ports = if req.tcp {
        spec.ports(Proto::Tcp)
    } else {
        Vec::new()
    };
    let udp_ports = if req.udp {
        spec.ports(Proto::Udp)
    } else {
        Vec::new()
    };
    if tcp_ports.is_empty() && udp_ports.is_empty() {
        return Err(ScanOpError::NoPorts);
    }
    if udp_ports.contains(&0) {
        return Err(ScanOpError::UdpPortZero);
    }
    let mut rtt = RttBounds::default();
    if let Some(t) = req.timeout {
        rtt.max = t;
        rtt.initial = rtt.initial.min(t);
        rtt.min = rtt.min.min(t);
    }
    Ok(ScanConfig {
        mode: req.mode.unwrap_or_else(portolan_scan::best_mode),
        tcp_ports,
        udp_ports,
        discovery: req.discovery,
        max_retries: req.max_retries,
        rtt,
        rate: req.rate,
        concurrency: req.concurrency,
        seed: req.seed,
        shard: req.shard,
        ..ScanConfig::default()
    })
}

/// The request's targets, less the excluded ones.
pub fn targets(req: &ScanRequest) -> Result<TargetSet, ScanOpError> {
    let set = TargetSet::build(&req.targets, &req.exclude, req.resolve)?;
    if set.is_empty() {
        return Err(if req.exclude.is_empty() {
            ScanOpError::NoTargets
        } else {
            ScanOpError::AllExcluded
        });
    }
    Ok(set)
}

/// Runs the scan, calling `on` for each event as it happens, and returns the report.
///
/// With `resume`, the consumer holds each block's output (see [`ScanEvent::BlockDone`]);
/// [`scan_to`] does that for it.
pub fn scan(
    req: &ScanRequest,
    on: &mut dyn FnMut(ScanEvent<'_>),
) -> Result<ScanReport, ScanOpError> {
    run(req, None, on)
}

/// Runs the scan as [`scan`] does, with `out` the output that `on` renders to (through
/// [`HeldOutput::writer`]). With `resume`, each block's records are held in `out` until
/// the block is done, and go out as [`ResumeState`] says: `on` gets no `InBlock` and no
/// `BlockDone`, and a `Checkpoint` once the block's records are out. If `out` fails, the
/// blocks after are not recorded as done (nor written), and the scan's result is
/// [`ScanOpError::Output`]. `req.output` is `out`'s [`HeldOutput::file`] as it was before
/// anything was written.
pub fn scan_to(
    req: &ScanRequest,
    out: &HeldOutput,
    on: &mut dyn FnMut(ScanEvent<'_>),
) -> Result<ScanReport, ScanOpError> {
    let report = run(req, Some(out), on);
    out.in_block(None);
    report
}

fn run(
    req: &ScanRequest,
    held: Option<&HeldOutput>,
    on: &mut dyn FnMut(ScanEvent<'_>),
) -> Result<ScanReport, ScanOpError> {
    let targets = targets(req)?;
    let mut cfg = config(req)?;
    let mut state = fresh_state(req, &cfg, &targets);
    if let Some(path) = &req.resume
        && !path.exists()
    {
        // Written now, so that a file that cannot be written is said before the scan,
        // not at its first block.
        state.write(path)?;
    } else if let Some(path) = &req.resume {
        let saved = ResumeState::read(path)?;
        if let Some(why) = saved.mismatch(&state) {
            return Err(ScanOpError::Resume {
                path: path.clone(),
                why: format!("{why} than this command line's"),
            });
        }
        state.blocks_done = saved.blocks_done;
        state.done_after = saved.done_after;
        state.output = saved.output;
        if let Some(note) = state.reconcile(req.output, path) {
            on(ScanEvent::Notice(&note));
        }
        cfg.start_block = state.blocks_done;
        cfg.skip_blocks = state.done_after.clone();
    }
    let detect = if req.detect {
        let opts = Options::with_timeout(req.timeout.unwrap_or(Duration::from_secs(3)));
        Some(Pool::new(Detector::default(), opts).map_err(ScanOpError::Detect)?)
    } else {
        None
    };
    let mut agg = Aggregator::new(&targets, req.all);
    agg.detect = detect;
    agg.keep = req.keep_hosts;
    let mut failed = None;
    // With a resume file, each event says its block: the block of each host in flight.
    let mut block_of = portolan_scan::perm::AddrMap::<u64>::default();
    let mut current = None;
    let scanned = Scanner::new(cfg.clone()).run(&targets, &mut |e| {
        let Some(path) = &req.resume else {
            return match e {
                Event::BlockStart { .. } | Event::BlockDone { .. } => {}
                e => agg.event(e, on),
            };
        };
        match e {
            Event::BlockStart { index, hosts } => {
                block_of.extend(hosts.into_iter().map(|h| (h, index)));
            }
            Event::BlockDone { index, blocks } => {
                let mut written = None;
                match held {
                    // A failed output takes nothing more: the blocks after are
                    // neither written nor recorded.
                    Some(out) if failed.is_some() => return out.discard(index),
                    Some(out) => match out.block_done(index) {
                        Ok(w) => written = w,
                        Err(e) => {
                            failed = Some(ScanOpError::Output(e));
                            return;
                        }
                    },
                    None => on(ScanEvent::BlockDone {
                        index,
                        written: &mut written,
                    }),
                }
                if failed.is_none() {
                    state.add(index);
                    state.output = match (written, req.output) {
                        (Some((before, after)), Some(o)) => Some(OutputMark {
                            dev: o.dev,
                            ino: o.ino,
                            block: index,
                            before,
                            after,
                        }),
                        _ => None,
                    };
                    failed = state.write(path).err();
                }
                if let Some(out) = held {
                    if failed.is_some() {
                        // Not recorded: its records would come again on resuming.
                        return;
                    }
                    if let Err(e) = out.checkpoint() {
                        failed = Some(ScanOpError::Output(e));
                        return;
                    }
                }
                on(ScanEvent::Checkpoint {
                    done: state.done(),
                    blocks,
                });
            }
            e => agg.event(e, &mut |se| {
                let block = match &se {
                    ScanEvent::Host { addr, up, .. } => {
                        let b = block_of.get(addr).copied();
                        if !up {
                            block_of.remove(addr);
                        }
                        b
                    }
                    ScanEvent::Port(p) => block_of.get(&p.result.host).copied(),
                    ScanEvent::HostDone(h) => block_of.remove(&h.host),
                    _ => None,
                };
                if let Some(b) = block
                    && current != Some(b)
                {
                    current = Some(b);
                    match held {
                        Some(out) => out.in_block(Some(b)),
                        None => on(ScanEvent::InBlock(b)),
                    }
                }
                on(se)
            }),
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    let mut summary = scanned.summary;
    summary.open += agg.promoted;
    summary.open_filtered = summary.open_filtered.saturating_sub(agg.promoted);
    // Hosts finish in probe order (a permutation); the report lists them in the target
    // set's order (ascending, IPv4 first), whatever the seed.
    let mut hosts = agg.done;
    hosts.sort_by_key(|h| h.host);
    Ok(ScanReport {
        targets: req.targets.iter().map(|t| t.to_string()).collect(),
        coverage: scanned.coverage,
        hosts,
        summary,
        tcp_ports: ranges(&cfg.tcp_ports),
        udp_ports: ranges(&cfg.udp_ports),
    })
}

fn ranges(ports: &[u16]) -> Vec<PortRange> {
    spec::merge(ports.iter().map(|&p| PortRange::single(p)).collect())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One host's results, held until its end, when it is known whether a state is listed
/// or summarised. Kept small (tens of thousands of hosts are in flight in a large scan):
/// plain results, not the shown ports, which are built again at the host's end.
#[derive(Default)]
struct HostAgg {
    /// Ports per (state, reason, protocol), in that order.
    counts: Vec<((PortState, Reason, Proto), u32)>,
    /// Ports of states that may be listed at the host's end (at most one past the limit
    /// of each state).
    held: Vec<PortResult>,
    /// Ports already shown (listed).
    shown: Vec<PortResult>,
    /// Listed ports waiting for their detection.
    deferred: Vec<PortResult>,
    started: u64,
    reason: Option<Reason>,
    rtt: Option<Duration>,
}

impl HostAgg {
    fn count(&mut self, key: (PortState, Reason, Proto), add: bool) {
        match self.counts.binary_search_by_key(&key, |c| c.0) {
            Ok(i) if add => self.counts[i].1 += 1,
            Ok(i) => {
                self.counts[i].1 -= 1;
                if self.counts[i].1 == 0 {
                    self.counts.remove(i);
                }
            }
            Err(i) if add => self.counts.insert(i, (key, 1)),
            Err(_) => {}
        }
    }

    fn hold(&mut self, r: PortResult) {
        let same = self.held.iter().filter(|h| h.state == r.state).count();
        if (same as u64) < LIST_LIMIT + 1 {
            self.held.push(r);
        }
    }
}

/// The per-host aggregation of engine events: which ports are shown and when, and the
/// finished hosts. [`scan`] drives it from the scanner; tests drive it with plain events.
pub struct Aggregator<'a> {
    registry: &'static Registry,
    detect: Option<Pool>,
    all: bool,
    names: &'a TargetSet,
    /// Boxed: the map churns (a block's hosts come and go), and its table grows past
    /// the hosts it holds; small entries keep that cheap.
    hosts: portolan_scan::perm::AddrMap<Box<HostAgg>>,
    done: Vec<HostResult>,
    /// Keep finished hosts in `done`.
    keep: bool,
    /// UDP ports found `open|filtered` that answered detection, and so became `open`.
    promoted: u64,
}

/// Whether detection is worth running on a port in this state.
fn wants_detection(r: &PortResult) -> bool {
    r.state == PortState::Open || (r.proto == Proto::Udp && r.state == PortState::OpenFiltered)
}

impl<'a> Aggregator<'a> {
    /// Without detection; `names` gives the names hosts were given by.
    pub fn new(names: &'a TargetSet, all: bool) -> Aggregator<'a> {
        Aggregator {
            registry: Registry::embedded(),
            detect: None,
            all,
            names,
            hosts: portolan_scan::perm::AddrMap::default(),
            done: Vec::new(),
            keep: true,
            promoted: 0,
        }
    }

    /// How many UDP ports detection promoted from `open|filtered` to `open`.
    pub fn promoted(&self) -> u64 {
        self.promoted
    }

    /// Every host finished (or found down) so far.
    pub fn into_hosts(self) -> Vec<HostResult> {
        self.done
    }

    /// Takes one engine event, calling `on` with what it shows.
    pub fn event(&mut self, e: Event, on: &mut dyn FnMut(ScanEvent<'_>)) {
        match e {
            Event::Host {
                addr,
                up,
                reason,
                rtt,
            } => self.host(addr, up, reason, rtt, on),
            Event::Port(r) => self.port(r, on),
            Event::HostDone { addr, timing } => self.host_done(addr, timing, on),
            Event::Progress { done, total } => on(ScanEvent::Progress { done, total }),
            Event::BlockStart { .. } | Event::BlockDone { .. } => {}
        }
    }

    fn host(
        &mut self,
        addr: IpAddr,
        up: bool,
        reason: Reason,
        rtt: Option<Duration>,
        on: &mut dyn FnMut(ScanEvent<'_>),
    ) {
        if up {
            let h = self.hosts.entry(addr).or_default();
            h.started = now_secs();
            h.reason = Some(reason);
            h.rtt = rtt;
        } else if self.keep {
            self.done.push(HostResult {
                host: addr,
                state: HostState::Down,
                reason,
                rtt,
                ports: Vec::new(),
                not_shown: Vec::new(),
                not_shown_reasons: Vec::new(),
                name: self.names.name_of(addr).map(str::to_string),
                started: None,
                ended: None,
                timing: None,
            });
        }
        on(ScanEvent::Host {
            addr,
            up,
            reason,
            rtt,
        });
    }

    fn scanned(&mut self, r: PortResult) -> ScannedPort {
        let detected = self.detect.as_mut().and_then(|d| {
            d.get(portolan_scan::scope::socket_addr(r.host, r.port), r.proto)
                .cloned()
        });
        ScannedPort {
            result: r,
            service: self.registry.name_for(r.port, r.proto).map(str::to_string),
            detected,
        }
    }

    fn port(&mut self, r: PortResult, on: &mut dyn FnMut(ScanEvent<'_>)) {
        if let Some(d) = self.detect.as_mut()
            && wants_detection(&r)
        {
            let addr = portolan_scan::scope::socket_addr(r.host, r.port);
            let probe = Probe {
                addr,
                proto: r.proto,
                server_name: self.names.name_of(r.host).map(str::to_string),
            };
            d.start(&probe);
        }
        let detecting = self.detect.is_some();
        let all = self.all;
        let h = self.hosts.entry(r.host).or_default();
        h.count((r.state, r.reason, r.proto), true);
        if detecting && wants_detection(&r) {
            // Shown (or summarised) with its detection at the host's end: an answer
            // makes a UDP open|filtered port open.
            h.deferred.push(r);
            return;
        }
        if r.state == PortState::Open || all {
            h.shown.push(r);
            let p = self.scanned(r);
            on(ScanEvent::Port(&p));
            return;
        }
        h.hold(r);
    }

    fn host_done(
        &mut self,
        addr: IpAddr,
        timing: Option<HostTiming>,
        on: &mut dyn FnMut(ScanEvent<'_>),
    ) {
        let mut h = self.hosts.remove(&addr).unwrap_or_default();
        let shown = std::mem::take(&mut h.shown);
        let mut listed: Vec<ScannedPort> = shown.into_iter().map(|r| self.scanned(r)).collect();
        // What waited for the host's end is shown in port order, not in the order the
        // answers came.
        let mut deferred = std::mem::take(&mut h.deferred);
        deferred.sort_by_key(|r| (r.proto, r.port));
        for r in deferred {
            let mut p = self.scanned(r);
            if promote(&mut p) {
                self.promoted += 1;
                h.count((PortState::OpenFiltered, r.reason, r.proto), false);
                h.count((p.result.state, p.result.reason, p.result.proto), true);
            }
            if p.result.state == PortState::Open || self.all {
                on(ScanEvent::Port(&p));
                listed.push(p);
            } else {
                h.hold(p.result);
            }
        }
        let mut per_state: BTreeMap<PortState, u64> = BTreeMap::new();
        for ((s, _, _), n) in &h.counts {
            *per_state.entry(*s).or_default() += u64::from(*n);
        }
        let mut held = std::mem::take(&mut h.held);
        held.sort_by_key(|r| (r.state, r.proto, r.port));
        for r in held {
            if per_state.get(&r.state).copied().unwrap_or(0) > LIST_LIMIT {
                continue;
            }
            let p = self.scanned(r);
            on(ScanEvent::Port(&p));
            listed.push(p);
        }
        let result = finish(addr, *h, listed, per_state, timing, self.names);
        on(ScanEvent::HostDone(&result));
        if self.keep {
            self.done.push(result);
        }
    }
}

/// A UDP port that stayed silent to the scan's probe but whose service answered
/// detection is open, as nmap has it. Returns true if the port was promoted.
fn promote(p: &mut ScannedPort) -> bool {
    let answered = p.detected.as_ref().is_some_and(|d| d.is_identified());
    if p.result.proto == Proto::Udp && p.result.state == PortState::OpenFiltered && answered {
        p.result.state = PortState::Open;
        p.result.reason = Reason::UdpResponse;
        return true;
    }
    false
}

/// A finished host: its listed ports in port order, and counts of the others.
fn finish(
    addr: IpAddr,
    h: HostAgg,
    listed: Vec<ScannedPort>,
    per_state: BTreeMap<PortState, u64>,
    timing: Option<HostTiming>,
    names: &TargetSet,
) -> HostResult {
    let mut listed_count: BTreeMap<PortState, u64> = BTreeMap::new();
    for p in &listed {
        *listed_count.entry(p.result.state).or_default() += 1;
    }
    let hidden = |s: &PortState| listed_count.get(s).copied().unwrap_or(0) < per_state[s];
    let not_shown = per_state
        .iter()
        .filter(|(s, _)| hidden(s))
        .map(|(s, n)| (*s, *n))
        .collect();
    let not_shown_reasons = h
        .counts
        .iter()
        .filter(|&&((s, _, _), _)| hidden(&s))
        .map(|&((state, reason, protocol), count)| ReasonCount {
            state,
            reason,
            protocol,
            count: u64::from(count),
        })
        .collect();
    let mut ports = listed;
    ports.sort_by_key(|p| (p.result.proto, p.result.port));
    HostResult {
        host: addr,
        state: HostState::Up,
        reason: h.reason.unwrap_or(Reason::UserSet),
        rtt: h.rtt,
        ports,
        not_shown,
        not_shown_reasons,
        name: names.name_of(addr).map(str::to_string),
        started: Some(h.started),
        ended: Some(now_secs()),
        timing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pr(port: u16, proto: Proto, state: PortState, reason: Reason) -> PortResult {
        PortResult {
            host: "198.18.0.2".parse().unwrap(),
            port,
            proto,
            state,
            reason,
            rtt: None,
            ttl: None,
        }
    }

    /// Feeds engine events through the aggregation, returning what was shown and the host.
    fn run(all: bool, events: Vec<Event>) -> (Vec<String>, Vec<HostResult>) {
        let names = TargetSet::default();
        let mut agg = Aggregator::new(&names, all);
        let mut shown = Vec::new();
        for e in events {
            agg.event(e, &mut |e| {
                if let ScanEvent::Port(p) = e {
                    shown.push(format!("{}/{}", p.result.port, p.result.proto));
                }
            });
        }
        (shown, agg.done)
    }

    #[test]
    fn open_ports_come_first_and_common_states_are_summarised() {
        let host: IpAddr = "198.18.0.2".parse().unwrap();
        let mut ev = vec![Event::Host {
            addr: host,
            up: true,
            reason: Reason::SynAck,
            rtt: None,
        }];
        ev.push(Event::Port(pr(
            443,
            Proto::Tcp,
            PortState::Open,
            Reason::SynAck,
        )));
        for n in 1000..1030 {
            ev.push(Event::Port(pr(
                n,
                Proto::Tcp,
                PortState::Closed,
                Reason::Reset,
            )));
        }
        ev.push(Event::Port(pr(
            161,
            Proto::Udp,
            PortState::Closed,
            Reason::PortUnreach,
        )));
        ev.push(Event::Port(pr(
            22,
            Proto::Tcp,
            PortState::Filtered,
            Reason::NoResponse,
        )));
        ev.push(Event::HostDone {
            addr: host,
            timing: None,
        });
        let (shown, hosts) = run(false, ev.clone());
        assert_eq!(shown, ["443/tcp", "22/tcp"]);
        let h = &hosts[0];
        assert_eq!(h.not_shown, vec![(PortState::Closed, 31)]);
        assert_eq!(h.not_shown_reasons.len(), 2);
        assert_eq!(h.ports[0].service.as_deref(), Some("ssh"));
        let (shown, hosts) = run(true, ev);
        assert_eq!(shown.len(), 33);
        assert!(hosts[0].not_shown.is_empty());
    }

    #[test]
    fn udp_port_that_answers_detection_is_promoted() {
        let heard = portolan_model::Detection {
            protocol: Some("dns".into()),
            ..Default::default()
        };
        let silent = portolan_model::Detection::nothing("no reply (open|filtered)");
        let port = |proto, state, d: &portolan_model::Detection| ScannedPort {
            result: pr(53, proto, state, Reason::NoResponse),
            service: None,
            detected: Some(d.clone()),
        };
        let mut p = port(Proto::Udp, PortState::OpenFiltered, &heard);
        assert!(promote(&mut p));
        assert_eq!(
            (p.result.state, p.result.reason),
            (PortState::Open, Reason::UdpResponse)
        );
        for mut p in [
            port(Proto::Udp, PortState::OpenFiltered, &silent),
            port(Proto::Udp, PortState::Closed, &heard),
            port(Proto::Tcp, PortState::Filtered, &heard),
        ] {
            assert!(!promote(&mut p));
        }
    }

    #[test]
    fn requests_without_ports_or_with_udp_zero_are_refused() {
        let req = ScanRequest {
            ports: Ports::Spec(PortSpec::parse_with("U:53", Registry::embedded()).unwrap()),
            ..ScanRequest::default()
        };
        assert!(matches!(config(&req), Err(ScanOpError::NoPorts)));
        let req = ScanRequest {
            ports: Ports::Spec(PortSpec::parse_with("0", Registry::embedded()).unwrap()),
            udp: true,
            ..ScanRequest::default()
        };
        assert!(matches!(config(&req), Err(ScanOpError::UdpPortZero)));
        assert!(targets(&ScanRequest::default()).is_err());
    }

    /// Regression (issue 15): hosts finish in the permuted probe order, and the report
    /// listed them so, which reordered the addresses of an audit's "reached from outside
    /// at ..." (IPv6 before IPv4). The report keeps the target set's order for any seed.
    #[test]
    fn report_hosts_in_target_order_not_probe_order() {
        let mut targets: Vec<Target> = (1..=8)
            .map(|i| Target::parse(&format!("127.0.0.{i}")).unwrap())
            .collect();
        targets.push(Target::parse("::1").unwrap());
        targets.reverse();
        let mut sorted = 0;
        for seed in 1..=3 {
            let req = ScanRequest {
                targets: targets.clone(),
                ports: Ports::Spec(PortSpec::parse_with("T:1", Registry::embedded()).unwrap()),
                mode: Some(ScanMode::Connect),
                discovery: false,
                all: true,
                seed: Some(seed),
                timeout: Some(Duration::from_millis(500)),
                ..ScanRequest::default()
            };
            let set = super::targets(&req).unwrap();
            let probe_order =
                portolan_scan::plan::Plan::new(&set, seed, Shard::default(), 1).block(0);
            if probe_order.windows(2).all(|w| w[0] < w[1]) {
                sorted += 1;
            }
            let report = scan(&req, &mut |_| {}).unwrap();
            let hosts: Vec<IpAddr> = report.hosts.iter().map(|h| h.host).collect();
            let want: Vec<IpAddr> = set.iter().collect();
            assert_eq!(hosts, want, "seed {seed}, probe order {probe_order:?}");
        }
        // The probe order is a permutation: the test would catch the bug.
        assert!(sorted < 3);
    }

    fn state(blocks: u64) -> ResumeState {
        ResumeState {
            portolan_resume: FORMAT,
            seed: 1,
            shard: "1/1".into(),
            targets: String::new(),
            probes: String::new(),
            blocks,
            blocks_done: 0,
            done_after: Vec::new(),
            output: None,
        }
    }

    #[test]
    fn blocks_done_out_of_order_are_listed_until_the_prefix_reaches_them() {
        let mut s = state(10);
        for b in [1, 3, 0] {
            s.add(b);
        }
        assert_eq!((s.blocks_done, s.done_after.clone()), (2, vec![3]));
        s.add(2);
        assert_eq!((s.blocks_done, s.done_after.clone()), (4, vec![]));
        s.add(6);
        s.remove(2);
        assert_eq!((s.blocks_done, s.done_after.clone()), (2, vec![3, 6]));
        s.remove(6);
        assert_eq!(
            (s.blocks_done, s.done_after.clone(), s.done()),
            (2, vec![3], 3)
        );
    }

    /// The resumed run finds the output where the last block's records left it, where
    /// they would have started (killed between the resume file and the write), or
    /// elsewhere.
    #[test]
    fn a_block_recorded_but_not_written_is_scanned_again() {
        let path = Path::new("/tmp/x.resume");
        let mark = OutputMark {
            dev: 1,
            ino: 2,
            block: 3,
            before: 100,
            after: 250,
        };
        let at = |size| {
            Some(OutputFile {
                dev: 1,
                ino: 2,
                size,
            })
        };
        let mut s = state(10);
        for b in 0..5 {
            s.add(b);
        }
        s.output = Some(mark);
        let mut whole = s.clone();
        assert_eq!(whole.reconcile(at(250), path), None);
        assert_eq!(whole.done(), 5);
        let mut other = s.clone();
        let elsewhere = Some(OutputFile {
            dev: 1,
            ino: 9,
            size: 100,
        });
        assert_eq!(other.reconcile(elsewhere, path), None);
        assert_eq!(other.reconcile(None, path), None);
        assert_eq!(other.done(), 5);
        let mut none = s.clone();
        assert_eq!(none.reconcile(at(100), path), None);
        assert_eq!((none.blocks_done, none.done_after.clone()), (3, vec![4]));
        let mut part = s.clone();
        let note = part.reconcile(at(180), path).unwrap();
        assert!(
            note.contains(
                "bytes 100..180 of the output are the first 80 of the 150 bytes of block 3"
            ),
            "{note}"
        );
        assert_eq!(part.done(), 4);
        let mut more = s.clone();
        assert!(
            more.reconcile(at(300), path)
                .unwrap()
                .contains("50 bytes more")
        );
        assert_eq!(more.done(), 5);
        let mut fresh = s.clone();
        assert!(
            fresh
                .reconcile(at(0), path)
                .unwrap()
                .contains("append with >>")
        );
        // A finished scan's summary comes after its last block.
        let mut done = s.clone();
        for b in 5..10 {
            done.add(b);
        }
        assert_eq!(done.reconcile(at(300), path), None);
    }

    /// A writer that takes nothing.
    struct Full;

    impl std::io::Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::StorageFull.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Regression: when the output failed (a full disk), the blocks whose records it did
    /// not take were recorded as done all the same, so that resuming left them out for
    /// good. Now the resume file records no block whose records are not out.
    #[test]
    fn a_failed_output_leaves_its_blocks_unrecorded() {
        let dir = std::env::temp_dir().join(format!("resume-full-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state");
        let req = ScanRequest {
            targets: vec![Target::parse("127.0.0.1-9").unwrap()],
            ports: Ports::Spec(PortSpec::parse_with("T:1", Registry::embedded()).unwrap()),
            mode: Some(ScanMode::Connect),
            discovery: false,
            all: true,
            timeout: Some(Duration::from_millis(500)),
            resume: Some(path.clone()),
            ..ScanRequest::default()
        };
        let render = |out: &HeldOutput| {
            let mut w = out.writer();
            move |e: ScanEvent<'_>| {
                if let ScanEvent::Port(p) = e {
                    let _ = writeln!(w, "{} {}", p.result.host, p.result.port);
                }
            }
        };
        use std::io::Write;
        let full = HeldOutput::new(Box::new(Full), None);
        let err = scan_to(&req, &full, &mut render(&full)).unwrap_err();
        assert!(matches!(err, ScanOpError::Output(_)), "{err}");
        let s = ResumeState::read(&path).unwrap();
        assert_eq!(s.done(), 0, "a block whose records failed was recorded");
        // The same scan into an output that takes it records its one block.
        let buf = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.borrow_mut().write(b)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let good = HeldOutput::new(Box::new(Shared(buf.clone())), None);
        scan_to(&req, &good, &mut render(&good)).unwrap();
        let s = ResumeState::read(&path).unwrap();
        assert_eq!((s.done(), s.blocks), (1, 1));
        assert_eq!(String::from_utf8_lossy(&buf.borrow()).lines().count(), 9);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Regression: a resume file that could not be written (its directory missing) was
    /// an error only at the scan's first block done, with the scan run to its end; and
    /// the message named the error but not what was written. Now it fails before any
    /// probe, naming the temporary file it could not write.
    #[test]
    fn a_resume_file_that_cannot_be_written_fails_before_the_scan() {
        let path = std::env::temp_dir()
            .join(format!("resume-nodir-{}", std::process::id()))
            .join("state");
        let req = ScanRequest {
            targets: vec![Target::parse("127.0.0.1").unwrap()],
            ports: Ports::Spec(PortSpec::parse_with("T:1", Registry::embedded()).unwrap()),
            mode: Some(ScanMode::Connect),
            discovery: false,
            all: true,
            timeout: Some(Duration::from_millis(500)),
            resume: Some(path.clone()),
            ..ScanRequest::default()
        };
        let mut events = 0;
        let err = scan(&req, &mut |_| events += 1).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("cannot write {}.tmp", path.display())),
            "{text}"
        );
        assert_eq!(events, 0, "the scan ran before the error");
    }

    #[test]
    fn a_format_1_resume_file_is_read() {
        let dir = std::env::temp_dir().join(format!("resume-fmt1-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        std::fs::write(
            &path,
            r#"{"portolan_resume":1,"seed":5,"shard":"1/1","targets":"a","probes":"b","blocks":4,"blocks_done":2}"#,
        )
        .unwrap();
        let s = ResumeState::read(&path).unwrap();
        assert_eq!((s.done(), s.output), (2, None));
        let mut bad = s.clone();
        bad.done_after = vec![7];
        bad.write(&path).unwrap();
        assert!(ResumeState::read(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
