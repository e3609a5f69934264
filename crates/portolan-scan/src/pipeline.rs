//! The engines (SYN or connect, UDP, and discovery by either) over many hosts: blocks of
//! the plan go through discovery, the TCP ports and the UDP ports, each stage in rounds as
//! `rounds::run` has them, but several blocks are in flight at once. While one block waits
//! out its timeout, the next one sends, so the waits overlap instead of adding up, and a
//! block's port phase runs while later blocks are still in discovery.
//!
//! One pacer bounds every packet sent; only one stage sends at a time (the oldest that has
//! something to send), at the rate its controller allows.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::connect::ConnectProber;
use crate::perm::Permutation;
use crate::plan::Plan;
use crate::rate::{Controller, Pacer, RetryPolicy};
use crate::rounds::{self, BATCH, Engine, Prober, Rounds, Table};
use crate::rtt::RttEstimator;
use crate::syn::SynProber;
use crate::udp::UdpProber;
use crate::{Event, HostTiming, Mode, Reason, ScanConfig, ScanError, Sink, io_err};

/// Finished hosts reported at a time while the pacer refills.
const REPORT_BATCH: usize = 4;

/// Finished hosts waiting to be reported at most before another block may start: bounds
/// the memory of the hosts finished but not yet reported.
const PENDING_MAX: usize = 4096;

/// Blocks in flight at most.
const LIVE: usize = 3;

/// How far past the oldest unfinished block a new block may be: bounds the blocks that
/// finished out of order (a resume file lists them).
const AHEAD: u64 = 64;

/// Rounds at most per stage.
const MAX_ROUNDS: u32 = 64;

/// Fewer ICMP errors than this in one round cannot be a rate limiter's burst.
const ICMP_BURST: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Discover,
    Tcp,
    Udp,
}

impl Stage {
    fn prober(self) -> usize {
        match self {
            Stage::Discover => 0,
            Stage::Tcp => 1,
            Stage::Udp => 2,
        }
    }
}

/// One stage of one block in rounds.
struct Job {
    t: Table,
    stage: Stage,
    opts: Rounds,
    /// Round 0 goes in this order; later rounds go through `queue`.
    order: Permutation,
    queue: Vec<usize>,
    cursor: u64,
    round: u32,
    counted: u32,
    icmp_limited: bool,
    sending: bool,
    round_start: Instant,
    last_send: Instant,
    /// The pace this stage may send at.
    rate: f64,
    /// The longest timeout of the table's hosts, as of the last batch.
    max_to: Duration,
}

impl Job {
    fn new(t: Table, stage: Stage, opts: Rounds, seed: u64) -> Job {
        let now = Instant::now();
        Job {
            order: Permutation::new(t.done.len() as u64, seed),
            rate: t.ctl.rate(),
            max_to: t.max_timeout(),
            t,
            stage,
            opts,
            queue: Vec::new(),
            cursor: 0,
            round: 0,
            counted: 0,
            icmp_limited: false,
            sending: true,
            round_start: now,
            last_send: now,
        }
    }

    /// The next probe to send this round.
    fn next(&mut self) -> Option<usize> {
        loop {
            let q = if self.round == 0 {
                if self.cursor >= self.order.len() {
                    return None;
                }
                self.order.get(self.cursor) as usize
            } else {
                *self.queue.get(self.cursor as usize)?
            };
            self.cursor += 1;
            if !self.t.done[q] {
                return Some(q);
            }
        }
    }

    /// When the current round's wait ends.
    fn deadline(&self) -> Instant {
        let last_round = self.counted + 1 >= self.t.retry.tries();
        let extra = if last_round {
            Duration::from_millis(150)
        } else {
            Duration::ZERO
        };
        self.last_send + self.max_to + extra
    }
}

/// A block of hosts going through its stages.
struct Block {
    index: u64,
    hosts: Vec<IpAddr>,
    srcs: Vec<IpAddr>,
    job: Option<Job>,
    timing: Vec<Option<HostTiming>>,
}

/// What carries over from one block to the next of the same stage: what the controller,
/// the retry policy and the RTT estimate learned.
#[derive(Clone)]
struct Learned {
    ctl: Controller,
    retry: RetryPolicy,
    rtt: RttEstimator,
}

struct Driver<'c, 'p> {
    cfg: &'c ScanConfig,
    plan: &'p Plan<'p>,
    probers: [Option<Box<dyn Prober>>; 3],
    fds: Vec<RawFd>,
    pacer: Pacer,
    start: Instant,
    learned: [Option<Learned>; 3],
    per_host: u64,
    /// Blocks finished out of order, waiting for the ones before them.
    finished: BTreeSet<u64>,
    /// Every block before this one is finished.
    prefix: u64,
    sources: crate::route::SourceCache,
    /// Finished hosts and blocks not reported yet.
    pending: std::collections::VecDeque<Pending>,
    /// The next block's hosts and their source addresses, looked up ahead.
    prep: Option<Prep>,
}

struct Prep {
    index: u64,
    hosts: Vec<IpAddr>,
    srcs: Vec<std::io::Result<IpAddr>>,
}

enum Pending {
    Host(IpAddr, Option<HostTiming>),
    Block(u64),
}

fn engine(stage: Stage, mode: Mode) -> Engine {
    match (stage, mode) {
        (Stage::Udp, _) => crate::udp::engine(),
        (_, Mode::Connect) => crate::connect::engine(),
        _ => crate::syn::engine(),
    }
}

/// Scans the plan's blocks from `first` on, but those in `skip`; `probed` gets every
/// host whose ports were probed (in block order).
pub fn scan(
    cfg: &ScanConfig,
    plan: &Plan<'_>,
    (first, skip): (u64, &BTreeSet<u64>),
    families: (bool, bool),
    sink: &mut Sink<'_>,
    probed: &mut dyn FnMut(IpAddr),
) -> Result<(), ScanError> {
    let (v4, v6) = families;
    let connect = cfg.mode == Mode::Connect;
    // The connect stages share the descriptors: discovery a quarter, the ports the rest.
    let budget = if connect {
        crate::connect::fd_budget(cfg)
    } else {
        0
    };
    let both = cfg.discovery && !cfg.tcp_ports.is_empty();
    let disc_fds = if both { budget / 4 } else { budget };
    let tcp_fds = if both { budget - budget / 4 } else { budget };
    let discover = match (cfg.discovery, connect) {
        (false, _) => None,
        (true, true) => {
            Some(Box::new(ConnectProber::new(disc_fds, cfg.rtt.max)?) as Box<dyn Prober>)
        }
        (true, false) => {
            let mut p = SynProber::new(v4, v6)?;
            p.echo = Some(crate::discovery::echo_id());
            Some(Box::new(p) as Box<dyn Prober>)
        }
    };
    let tcp = match (cfg.tcp_ports.is_empty(), connect) {
        (true, _) => None,
        (false, true) => {
            let p = ConnectProber::new(tcp_fds, cfg.rtt.max)?;
            Some(Box::new(p) as Box<dyn Prober>)
        }
        (false, false) => Some(Box::new(SynProber::new(v4, v6)?) as Box<dyn Prober>),
    };
    let udp = if cfg.udp_ports.is_empty() {
        None
    } else {
        Some(Box::new(UdpProber::new(v4, v6)?) as Box<dyn Prober>)
    };
    let probers = [discover, tcp, udp];
    let fds = probers.iter().flatten().flat_map(|p| p.fds()).collect();
    let max = cfg.rate.map_or(crate::syn::DEFAULT_RATE, f64::from);
    let mut d = Driver {
        cfg,
        plan,
        probers,
        fds,
        pacer: Pacer::new(max),
        start: Instant::now(),
        learned: [None, None, None],
        per_host: (cfg.tcp_ports.len() + cfg.udp_ports.len()) as u64,
        finished: skip.clone(),
        prefix: first,
        sources: crate::route::SourceCache::default(),
        pending: std::collections::VecDeque::new(),
        prep: None,
    };
    while d.finished.remove(&d.prefix) {
        d.prefix += 1;
    }
    let mut live: Vec<Block> = Vec::new();
    let blocks = plan.blocks();
    let after = |mut b: u64| {
        while skip.contains(&b) {
            b += 1;
        }
        b
    };
    let mut next = after(first);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        d.receive(&mut live, sink)?;
        // Stages whose round is over: the next round, the next stage, or the block's end.
        let now = Instant::now();
        let mut k = 0;
        while k < live.len() {
            let b = &mut live[k];
            let over = b
                .job
                .as_ref()
                .is_some_and(|j| !j.sending && (j.t.remaining == 0 || now >= j.deadline()));
            if over {
                d.end_round(b, sink)?;
            }
            if live[k].job.is_none() {
                let b = live.remove(k);
                d.block_done(b);
                continue;
            }
            k += 1;
        }
        // The oldest stage with something to send sends.
        let mut wait = Duration::from_millis(50);
        let sender = live
            .iter_mut()
            .filter_map(|b| b.job.as_mut())
            .find(|j| j.sending);
        let sending = sender.is_some();
        if let Some(job) = sender {
            if (d.pacer.rate() - job.rate).abs() > 0.5 {
                d.pacer.set_rate(job.rate);
            }
            let allowed = d.pacer.take_batch(BATCH);
            if allowed == 0 {
                wait = d.pacer.wait_batch(BATCH);
                // The wait for the next batch is time to report finished hosts in.
                let until = Instant::now() + wait;
                let mut reported = false;
                while Instant::now() < until && d.report(Some(REPORT_BATCH), sink, probed) {
                    reported = true;
                }
                // And to look up the next block's sources in.
                d.prepare(next, until);
                if reported || Instant::now() >= until {
                    continue;
                }
            } else {
                batch.clear();
                while batch.len() < allowed {
                    match job.next() {
                        Some(q) => batch.push(q),
                        None => break,
                    }
                }
                // What this stage had no probes for is another stage's.
                d.pacer.unused(allowed - batch.len());
                let prober = d.probers[job.stage.prober()]
                    .as_mut()
                    .expect("a prober for every stage that runs");
                let mut off = 0;
                while off < batch.len() {
                    let n = prober.send(&job.t, &batch[off..]).map_err(io_err("send"))?;
                    let now = job.t.now_us();
                    for &q in &batch[off..off + n] {
                        job.t.tries[q] = job.t.tries[q].saturating_add(1);
                        job.t.sent_us[q] = now;
                    }
                    job.t.ctl.sent(now, n as u32);
                    off += n;
                    if n == 0 {
                        // Socket buffer full: let it drain.
                        crate::sys::poll_read(&[], Duration::from_micros(200));
                    }
                }
                job.last_send = Instant::now();
                if batch.len() < allowed {
                    job.sending = false;
                }
                // A table of thousands of hosts: its longest timeout is not recomputed
                // for every batch.
                if job.cursor % (BATCH as u64 * 16) < batch.len() as u64 || !job.sending {
                    job.max_to = job.t.max_timeout();
                }
                let now = job.t.now_us();
                if let Some(r) = job.t.ctl.judge(now, job.max_to)
                    && !job.opts.icmp_pacing
                {
                    job.rate = r;
                }
                continue;
            }
        }
        if !sending
            && live.len() < LIVE
            && next < blocks
            && next < d.prefix + AHEAD
            && d.pending.len() <= PENDING_MAX
        {
            let b = d.start_block(next, sink)?;
            next = after(next + 1);
            if b.job.is_none() {
                d.block_done(b);
            } else {
                live.push(b);
            }
            continue;
        }
        if !sending {
            // Nothing to send (or no room for another block): report what is finished.
            d.report(None, sink, probed);
        }
        if live.is_empty() && next >= blocks {
            break;
        }
        for j in live.iter().filter_map(|b| b.job.as_ref()) {
            if !j.sending {
                wait = wait.min(j.deadline().saturating_duration_since(Instant::now()));
            }
        }
        crate::sys::poll_read(&d.fds, wait.max(Duration::from_micros(20)));
    }
    Ok(())
}

impl Driver<'_, '_> {
    fn receive(&mut self, live: &mut [Block], sink: &mut Sink<'_>) -> Result<(), ScanError> {
        for (k, p) in self.probers.iter_mut().enumerate() {
            let Some(p) = p else { continue };
            let mut ts: Vec<&mut Table> = live
                .iter_mut()
                .filter_map(|b| b.job.as_mut())
                .filter(|j| j.stage.prober() == k)
                .map(|j| &mut j.t)
                .collect();
            p.receive(&mut ts, sink).map_err(io_err("receive"))?;
        }
        Ok(())
    }

    /// Block `index`: its routable hosts, and its first stage.
    /// Looks up the source addresses of block `index`'s hosts ahead, until `until`.
    fn prepare(&mut self, index: u64, until: Instant) {
        if index >= self.plan.blocks() {
            return;
        }
        if self.prep.as_ref().is_none_or(|p| p.index != index) {
            // Each block reads the routing tables afresh.
            self.sources.refresh();
            self.prep = Some(Prep {
                index,
                hosts: self.plan.block(index),
                srcs: Vec::new(),
            });
        }
        let Some(p) = self.prep.as_mut() else { return };
        while p.srcs.len() < p.hosts.len() && Instant::now() < until {
            for _ in 0..16 {
                let Some(&addr) = p.hosts.get(p.srcs.len()) else {
                    break;
                };
                p.srcs.push(self.sources.source_for(addr));
            }
        }
    }

    fn start_block(&mut self, index: u64, sink: &mut Sink<'_>) -> Result<Block, ScanError> {
        let (all, mut looked) = match self.prep.take() {
            Some(p) if p.index == index => (p.hosts, p.srcs),
            _ => {
                self.sources.refresh();
                (self.plan.block(index), Vec::new())
            }
        };
        (sink.on)(Event::BlockStart {
            index,
            hosts: all.clone(),
        });
        while looked.len() < all.len() {
            looked.push(self.sources.source_for(all[looked.len()]));
        }
        let mut hosts = Vec::with_capacity(all.len());
        let mut srcs = Vec::with_capacity(all.len());
        for (addr, src) in all.into_iter().zip(looked) {
            sink.summary.hosts_total += 1;
            match src {
                Ok(s) => {
                    hosts.push(addr);
                    srcs.push(s);
                }
                Err(e) => {
                    sink.total = sink.total.saturating_sub(self.per_host);
                    (sink.on)(Event::Host {
                        addr,
                        up: false,
                        reason: crate::unroutable_reason(&e),
                        rtt: None,
                    });
                }
            }
        }
        let mut b = Block {
            index,
            timing: vec![None; hosts.len()],
            hosts,
            srcs,
            job: None,
        };
        if b.hosts.is_empty() {
            return Ok(b);
        }
        if self.cfg.discovery {
            let learned = self.learned[0].clone();
            let rtt = learned
                .as_ref()
                .map_or(RttEstimator::new(self.cfg.rtt), |l| l.rtt);
            let mut t =
                crate::discovery::table(self.cfg, &b.hosts, b.srcs.clone(), rtt, self.start);
            if let Some(l) = learned {
                t.ctl = l.ctl;
            }
            let seed = self.plan.block_seed(index) ^ 0xd15c;
            b.job = Some(Job::new(t, Stage::Discover, crate::discovery::ROUNDS, seed));
        } else {
            for &addr in &b.hosts {
                (sink.on)(Event::Host {
                    addr,
                    up: true,
                    reason: Reason::UserSet,
                    rtt: None,
                });
            }
            sink.summary.hosts_up += b.hosts.len() as u64;
            self.next_stage(&mut b, None);
        }
        Ok(b)
    }

    /// Starts the port stage after `after` (None: the first), if any.
    fn next_stage(&mut self, b: &mut Block, after: Option<Stage>) {
        let order = [Stage::Tcp, Stage::Udp];
        let from = match after {
            Some(Stage::Tcp) => 1,
            Some(Stage::Udp) => 2,
            _ => 0,
        };
        for &stage in &order[from..] {
            let ports = match stage {
                Stage::Tcp => &self.cfg.tcp_ports,
                _ => &self.cfg.udp_ports,
            };
            if ports.is_empty() || b.hosts.is_empty() {
                continue;
            }
            let e = engine(stage, self.cfg.mode);
            let max = self.cfg.rate.map_or(e.default_rate, f64::from);
            let learned = self.learned[stage.prober()].clone();
            let (ctl, retry, rtt) = match learned {
                Some(l) => (l.ctl, l.retry, l.rtt),
                None => (
                    Controller::new(max, (e.min_rate)(max)),
                    RetryPolicy::new(self.cfg.max_retries, e.retry_cap),
                    // What discovery measured is the best first guess.
                    self.learned[0]
                        .as_ref()
                        .map_or(RttEstimator::new(self.cfg.rtt), |l| l.rtt),
                ),
            };
            let t = Table::new(
                &b.hosts,
                b.srcs.clone(),
                ports,
                e.proto,
                rtt,
                self.start,
                ctl,
                retry,
            );
            let seed = self.plan.block_seed(b.index) ^ stage.prober() as u64;
            b.job = Some(Job::new(t, stage, e.rounds, seed));
            return;
        }
        b.job = None;
    }

    /// The end of a round of `b`'s stage: another round, or the stage's end.
    fn end_round(&mut self, b: &mut Block, sink: &mut Sink<'_>) -> Result<(), ScanError> {
        let Some(mut job) = b.job.take() else {
            return Ok(());
        };
        job.round += 1;
        let t = &mut job.t;
        let mut over = t.remaining == 0;
        if !over
            && job.opts.icmp_pacing
            && job.round == 1
            && t.gained_icmp >= ICMP_BURST
            && let Some(p) = self.probers[job.stage.prober()].as_mut()
        {
            // The targets' ICMP limit: the rest goes out at the pace it refills, this
            // block alone (see `rounds::bucket`).
            let fds = p.fds();
            rounds::bucket(t, &mut **p, &fds, job.last_send, sink)?;
            over = true;
        }
        if !over {
            let limited = job.opts.icmp_pacing
                && (t.gained_icmp >= ICMP_BURST || (job.icmp_limited && t.gained_icmp > 0));
            job.icmp_limited |= limited;
            let slow_down = job.icmp_limited && !limited && job.rate > 1.0;
            if !limited && !slow_down {
                job.counted += 1;
            }
            over = job.counted >= t.retry.tries() || job.round >= MAX_ROUNDS;
            if !over {
                if limited {
                    let secs = job.round_start.elapsed().as_secs_f64().max(1e-3);
                    let icmp_rate = t.gained_icmp as f64 / secs;
                    job.rate = job.rate.min(icmp_rate.max(1.0));
                } else if slow_down {
                    job.rate = (job.rate / 2.0).max(1.0);
                }
                job.queue = (0..t.done.len()).filter(|&q| !t.done[q]).collect();
                job.cursor = 0;
                job.sending = true;
                job.round_start = Instant::now();
                t.gained = 0;
                t.gained_icmp = 0;
                b.job = Some(job);
                return Ok(());
            }
        }
        // The stage is over. (Discovery's silence is no port result.)
        for q in 0..t.done.len() {
            if !t.done[q] && t.disc.is_none() {
                t.finish_silent(q, job.opts.silent, sink);
            }
        }
        let k = job.stage.prober();
        self.learned[k] = Some(Learned {
            ctl: t.ctl.carry(),
            retry: t.retry.clone(),
            rtt: t.all_rtt,
        });
        match job.stage {
            Stage::Discover => {
                let disc = t.disc.take().unwrap_or_default();
                let mut up = Vec::new();
                let mut srcs = Vec::new();
                for (h, &addr) in b.hosts.iter().enumerate() {
                    let tcp = disc.tcp.get(h).copied().flatten();
                    let echo = disc.echo.get(h).copied().flatten();
                    let seen = tcp.or(echo.map(|d| (Reason::EchoReply, Some(d))));
                    let (up_now, reason, rtt) = match seen {
                        Some((r, rtt)) => (true, r, rtt),
                        None => (false, Reason::NoResponse, None),
                    };
                    (sink.on)(Event::Host {
                        addr,
                        up: up_now,
                        reason,
                        rtt,
                    });
                    if up_now {
                        up.push(addr);
                        srcs.push(b.srcs[h]);
                    } else {
                        sink.total = sink.total.saturating_sub(self.per_host);
                    }
                }
                sink.summary.hosts_up += up.len() as u64;
                b.timing = vec![None; up.len()];
                b.hosts = up;
                b.srcs = srcs;
            }
            Stage::Tcp | Stage::Udp => {
                for (a, r) in b.timing.iter_mut().zip(&t.rtt) {
                    *a = a.or(r.timing());
                }
            }
        }
        self.next_stage(b, Some(job.stage));
        Ok(())
    }

    /// A finished block: its hosts' ends are reported a few at a time between batches
    /// (see [`Driver::report`]), so that a large block's reporting does not stop the
    /// sending.
    fn block_done(&mut self, b: Block) {
        for (&addr, &timing) in b.hosts.iter().zip(&b.timing) {
            self.pending.push_back(Pending::Host(addr, timing));
        }
        self.pending.push_back(Pending::Block(b.index));
    }

    /// Reports up to `n` finished hosts (all with `None`), and the ends of the blocks
    /// whose hosts are all reported.
    fn report(
        &mut self,
        n: Option<usize>,
        sink: &mut Sink<'_>,
        probed: &mut dyn FnMut(IpAddr),
    ) -> bool {
        let any = !self.pending.is_empty();
        let mut left = n.unwrap_or(usize::MAX);
        while left > 0
            && let Some(p) = self.pending.pop_front()
        {
            match p {
                Pending::Host(addr, timing) => {
                    left -= 1;
                    probed(addr);
                    (sink.on)(Event::HostDone { addr, timing });
                }
                Pending::Block(index) => {
                    self.finished.insert(index);
                    while self.finished.remove(&self.prefix) {
                        self.prefix += 1;
                    }
                    (sink.on)(Event::BlockDone {
                        index,
                        blocks: self.plan.blocks(),
                    });
                }
            }
        }
        any
    }
}
