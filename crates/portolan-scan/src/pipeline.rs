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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

/// Blocks in flight at most, of all workers together (a worker may always have one):
/// three let a block's wait overlap the next two's sending, and bound the hosts in flight
/// (which the output holds too).
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

struct Driver<'c, 'p, 's, 'k> {
    cfg: &'c ScanConfig,
    plan: &'p Plan<'p>,
    shared: &'s Shared<'k>,
    /// The workers the rate is shared among.
    share: f64,
    probers: [Option<Box<dyn Prober>>; 3],
    fds: Vec<RawFd>,
    pacer: Pacer,
    start: Instant,
    learned: [Option<Learned>; 3],
    per_host: u64,
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

/// Below this rate cap one worker sends: the pacer is the limit, not the CPU, and one
/// pacer holds the cap to the end of the scan. (One worker sends over 100,000 SYNs a
/// second here.)
pub const PARALLEL_RATE: f64 = 50_000.0;

/// Events a worker hands to the scan's thread at a time: one message per event would
/// cost a futex wake-up each.
const EVENT_BATCH: usize = 256;

/// Batches of events in flight to the scan's thread at most: bounds their memory when
/// the output is slower than the scan.
const EVENT_QUEUE: usize = 8;

/// How long a worker keeps events before it hands them over, while it is busy sending.
const EVENT_DELAY: Duration = Duration::from_millis(20);

/// The workers a scan of `blocks` blocks runs: one per core (at most 4, or
/// `cfg.threads`), no more than there are blocks, and one under [`PARALLEL_RATE`].
fn workers(cfg: &ScanConfig, blocks: u64) -> usize {
    if cfg.rate.is_some_and(|r| f64::from(r) < PARALLEL_RATE) {
        return 1;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let want = cfg.threads.unwrap_or(cores.min(4)).max(1);
    want.min(usize::try_from(blocks).unwrap_or(usize::MAX))
        .max(1)
}

/// Which blocks are taken and which are finished, shared by the workers.
struct Claims<'s> {
    skip: &'s BTreeSet<u64>,
    blocks: u64,
    /// The next block nobody has taken.
    next: u64,
    /// Blocks finished out of order, waiting for the ones before them.
    finished: BTreeSet<u64>,
    /// Every block before this one is finished.
    prefix: u64,
}

/// What a worker gets when it asks for a block.
enum Claim {
    Block(u64),
    /// Too far past the oldest unfinished block: ask again when it is done.
    Wait,
    /// Every block is taken.
    Done,
}

impl<'s> Claims<'s> {
    fn new(blocks: u64, first: u64, skip: &'s BTreeSet<u64>) -> Claims<'s> {
        let mut c = Claims {
            skip,
            blocks,
            next: first,
            finished: skip.clone(),
            prefix: first,
        };
        c.next = c.after(first);
        c.advance();
        c
    }

    fn after(&self, mut b: u64) -> u64 {
        while self.skip.contains(&b) {
            b += 1;
        }
        b
    }

    fn advance(&mut self) {
        while self.finished.remove(&self.prefix) {
            self.prefix += 1;
        }
    }

    fn claim(&mut self) -> Claim {
        if self.next >= self.blocks {
            return Claim::Done;
        }
        if self.next >= self.prefix + AHEAD {
            return Claim::Wait;
        }
        let b = self.next;
        self.next = self.after(b + 1);
        Claim::Block(b)
    }

    fn finish(&mut self, b: u64) {
        self.finished.insert(b);
        self.advance();
    }
}

/// Shared by the workers of one scan.
struct Shared<'s> {
    claims: std::sync::Mutex<Claims<'s>>,
    /// A worker failed: the others stop.
    stop: AtomicBool,
    /// Blocks in flight, of every worker.
    live: AtomicUsize,
    workers: usize,
}

impl Shared<'_> {
    fn claim(&self) -> Claim {
        match self.claims.lock() {
            Ok(mut c) => c.claim(),
            Err(_) => Claim::Done,
        }
    }

    fn finish(&self, b: u64) {
        if let Ok(mut c) = self.claims.lock() {
            c.finish(b);
        }
    }
}

/// Scans the plan's blocks from `first` on, but those in `skip`; `probed` gets every
/// host whose ports were probed (in block order).
///
/// Several workers (threads, see [`workers`]) take blocks in turn, each with its own
/// sockets, pacer and share of the rate; the scan's thread passes their events on. On a
/// fast link most of a SYN's cost is the kernel's, charged to the thread that sends it,
/// so the sending has to be spread for the kernel's work to be.
pub fn scan(
    cfg: &ScanConfig,
    plan: &Plan<'_>,
    (first, skip): (u64, &BTreeSet<u64>),
    families: (bool, bool),
    sink: &mut Sink<'_>,
    probed: &mut dyn FnMut(IpAddr),
) -> Result<(), ScanError> {
    let left = plan.blocks().saturating_sub(first + skip.len() as u64);
    let shared = Shared {
        claims: std::sync::Mutex::new(Claims::new(plan.blocks(), first, skip)),
        stop: AtomicBool::new(false),
        live: AtomicUsize::new(0),
        workers: workers(cfg, left),
    };
    if shared.workers == 1 {
        return worker(cfg, plan, &shared, families, sink, probed, &mut |_| {});
    }
    let per_host = (cfg.tcp_ports.len() + cfg.udp_ports.len()) as u64;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Event>>(EVENT_QUEUE);
    std::thread::scope(|s| {
        let shared = &shared;
        let handles: Vec<_> = (0..shared.workers)
            .map(|_| {
                let tx = tx.clone();
                s.spawn(move || {
                    let r = relay_worker(cfg, plan, shared, families, &tx);
                    if r.is_err() {
                        shared.stop.store(true, Ordering::Relaxed);
                    }
                    r
                })
            })
            .collect();
        drop(tx);
        for events in rx {
            for e in events {
                match e {
                    Event::Port(r) => sink.port(r),
                    Event::Progress { .. } => {}
                    Event::Host { up: false, .. } => {
                        sink.total = sink.total.saturating_sub(per_host);
                        (sink.on)(e);
                    }
                    Event::HostDone { addr, .. } => {
                        probed(addr);
                        (sink.on)(e);
                    }
                    e => (sink.on)(e),
                }
            }
        }
        let mut failed = None;
        for h in handles {
            let r = h.join().unwrap_or_else(|_| {
                Err(ScanError::Io {
                    op: "scan worker",
                    source: std::io::Error::other("worker thread panicked"),
                })
            });
            match r {
                Ok(w) => {
                    sink.summary.hosts_total += w.hosts_total;
                    sink.summary.hosts_up += w.hosts_up;
                    sink.summary.self_connects += w.self_connects;
                }
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        failed.map_or(Ok(()), Err)
    })
}

/// Events a worker holds before it hands them to the scan's thread.
struct Outbox<'t> {
    events: Vec<Event>,
    since: Instant,
    tx: &'t std::sync::mpsc::SyncSender<Vec<Event>>,
}

impl Outbox<'_> {
    /// Hands the events over: all of them with `all`, else when there are many or they
    /// have waited long.
    fn flush(&mut self, all: bool) {
        if self.events.is_empty()
            || !(all || self.events.len() >= EVENT_BATCH || self.since.elapsed() >= EVENT_DELAY)
        {
            return;
        }
        let events = std::mem::replace(&mut self.events, Vec::with_capacity(EVENT_BATCH));
        // The scan's thread stopped reading only if it is gone: nothing to tell.
        let _ = self.tx.send(events);
        self.since = Instant::now();
    }
}

/// A worker of a scan with several: its events go to `tx`; returns its counts of hosts.
fn relay_worker(
    cfg: &ScanConfig,
    plan: &Plan<'_>,
    shared: &Shared<'_>,
    families: (bool, bool),
    tx: &std::sync::mpsc::SyncSender<Vec<Event>>,
) -> Result<crate::ScanSummary, ScanError> {
    let out = std::cell::RefCell::new(Outbox {
        events: Vec::with_capacity(EVENT_BATCH),
        since: Instant::now(),
        tx,
    });
    let mut on = |e: Event| {
        if matches!(e, Event::Progress { .. }) {
            return;
        }
        let mut o = out.borrow_mut();
        if o.events.is_empty() {
            o.since = Instant::now();
        }
        o.events.push(e);
        if o.events.len() >= EVENT_BATCH {
            o.flush(true);
        }
    };
    let mut sink = Sink::new(&mut on, 0);
    let r = worker(
        cfg,
        plan,
        shared,
        families,
        &mut sink,
        &mut |_| {},
        &mut |all| out.borrow_mut().flush(all),
    );
    let summary = sink.summary;
    out.borrow_mut().flush(true);
    r.map(|()| summary)
}

/// One worker: takes blocks and runs them through their stages until none is left.
/// `flush(all)` is called in each turn of the loop (`all`: before it waits).
fn worker(
    cfg: &ScanConfig,
    plan: &Plan<'_>,
    shared: &Shared<'_>,
    families: (bool, bool),
    sink: &mut Sink<'_>,
    probed: &mut dyn FnMut(IpAddr),
    flush: &mut dyn FnMut(bool),
) -> Result<(), ScanError> {
    let (v4, v6) = families;
    let connect = cfg.mode == Mode::Connect;
    let share = shared.workers as f64;
    // The connect stages share the descriptors: discovery a quarter, the ports the rest.
    let budget = if connect {
        (crate::connect::fd_budget(cfg) / shared.workers).max(1)
    } else {
        0
    };
    let both = cfg.discovery && !cfg.tcp_ports.is_empty();
    let disc_fds = if both { (budget / 4).max(1) } else { budget };
    let tcp_fds = if both {
        (budget - budget / 4).max(1)
    } else {
        budget
    };
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
    let max = cfg.rate.map_or(crate::syn::DEFAULT_RATE, f64::from) / share;
    let mut d = Driver {
        cfg,
        plan,
        shared,
        share,
        probers,
        fds,
        pacer: Pacer::new(max),
        start: Instant::now(),
        learned: [None, None, None],
        per_host: (cfg.tcp_ports.len() + cfg.udp_ports.len()) as u64,
        sources: crate::route::SourceCache::default(),
        pending: std::collections::VecDeque::new(),
        prep: None,
    };
    let mut live: Vec<Block> = Vec::new();
    // The block this worker took and has not started yet, and whether none is left.
    let mut upcoming: Option<u64> = None;
    let mut exhausted = false;
    let take = |upcoming: &mut Option<u64>, exhausted: &mut bool| {
        if upcoming.is_none() && !*exhausted {
            match shared.claim() {
                Claim::Block(b) => *upcoming = Some(b),
                Claim::Wait => {}
                Claim::Done => *exhausted = true,
            }
        }
    };
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if shared.workers > 1 {
            // Reporting is handing events over, cheap for a worker: finished hosts leave
            // at once, and the hosts the output holds are only those of blocks in flight.
            d.report(None, sink, probed);
        }
        flush(false);
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
                shared.live.fetch_sub(1, Ordering::Relaxed);
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
                take(&mut upcoming, &mut exhausted);
                if let Some(b) = upcoming {
                    d.prepare(b, until);
                }
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
            && (live.is_empty() || shared.live.load(Ordering::Relaxed) < LIVE)
            && d.pending.len() <= PENDING_MAX
        {
            take(&mut upcoming, &mut exhausted);
            if let Some(index) = upcoming.take() {
                let b = d.start_block(index, sink)?;
                if b.job.is_none() {
                    d.block_done(b);
                } else {
                    shared.live.fetch_add(1, Ordering::Relaxed);
                    live.push(b);
                }
                continue;
            }
        }
        if !sending {
            // Nothing to send (or no room for another block): report what is finished.
            d.report(None, sink, probed);
        }
        if live.is_empty() && upcoming.is_none() && d.pending.is_empty() {
            if exhausted {
                break;
            }
            // Past the window: another worker's oldest block has to finish first.
            wait = Duration::from_millis(1);
        }
        for j in live.iter().filter_map(|b| b.job.as_ref()) {
            if !j.sending {
                wait = wait.min(j.deadline().saturating_duration_since(Instant::now()));
            }
        }
        flush(true);
        crate::sys::poll_read(&d.fds, wait.max(Duration::from_micros(20)));
    }
    flush(true);
    Ok(())
}

impl Driver<'_, '_, '_, '_> {
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
            let max = self.cfg.rate.map_or(crate::syn::DEFAULT_RATE, f64::from) / self.share;
            let mut t =
                crate::discovery::table(self.cfg, &b.hosts, b.srcs.clone(), (rtt, max), self.start);
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
            let max = self.cfg.rate.map_or(e.default_rate, f64::from) / self.share;
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
                    self.shared.finish(index);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn take_all(c: &mut Claims<'_>) -> (Vec<u64>, bool) {
        let mut got = Vec::new();
        loop {
            match c.claim() {
                Claim::Block(b) => got.push(b),
                Claim::Wait => return (got, false),
                Claim::Done => return (got, true),
            }
        }
    }

    #[test]
    fn claims_hand_out_each_block_once_skipping_the_done_ones() {
        let skip: BTreeSet<u64> = [3, 4, 9].into();
        let mut c = Claims::new(12, 2, &skip);
        let (got, done) = take_all(&mut c);
        assert_eq!(got, vec![2, 5, 6, 7, 8, 10, 11]);
        assert!(done);
        assert!(matches!(c.claim(), Claim::Done));
    }

    #[test]
    fn claims_wait_past_the_window_until_the_oldest_block_finishes() {
        let skip = BTreeSet::new();
        let mut c = Claims::new(AHEAD * 3, 0, &skip);
        let (got, done) = take_all(&mut c);
        assert_eq!(got.len() as u64, AHEAD, "a window's worth");
        assert!(!done);
        // Blocks after the oldest finishing do not move the window.
        for b in 1..AHEAD {
            c.finish(b);
        }
        assert!(matches!(c.claim(), Claim::Wait));
        // The oldest finishing moves it past every finished block.
        c.finish(0);
        assert_eq!(c.prefix, AHEAD);
        let (more, _) = take_all(&mut c);
        assert_eq!(more, (AHEAD..AHEAD * 2).collect::<Vec<_>>());
    }

    #[test]
    fn one_worker_under_the_parallel_rate_and_no_more_workers_than_blocks() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let slow = ScanConfig {
            rate: Some(PARALLEL_RATE as u32 - 1),
            threads: Some(4),
            ..ScanConfig::default()
        };
        assert_eq!(workers(&slow, 100), 1);
        let fast = ScanConfig {
            rate: Some(PARALLEL_RATE as u32),
            threads: Some(4),
            ..ScanConfig::default()
        };
        assert_eq!(workers(&fast, 100), 4);
        assert_eq!(workers(&fast, 3), 3);
        assert_eq!(workers(&fast, 0), 1);
        let default = ScanConfig::default();
        assert_eq!(workers(&default, 100), cores.min(4));
    }
}
