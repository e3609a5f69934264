//! The probe table and the round driver shared by the datagram engines (SYN and UDP).
//!
//! Round 0 sends every probe in random order; each later round sends again only the
//! probes still unanswered, after waiting out the slowest host's timeout. Rounds stop when
//! nothing is left, or when every probe has had as many tries as the loss seen so far
//! calls for ([`RetryPolicy`]).

use std::io;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use portolan_registry::Proto;

use crate::rate::{Controller, Pacer, RetryPolicy};
use crate::rtt::RttEstimator;
use crate::{PortResult, PortState, Reason, Rng, ScanError, Sink};

/// Rounds at most, whatever else happens (bounds a scan against a rate-limited target).
const MAX_ROUNDS: u32 = 64;

/// Fewer ICMP errors than this in one round cannot be a rate limiter's burst (Linux
/// allows 6 before limiting), so silence beside them is not blamed on a limit.
const ICMP_BURST: usize = 4;

/// Up to this many ports, a table finds a port's index by scanning the list.
const FEW_PORTS: usize = 16;

/// Probes sent per batch.
pub const BATCH: usize = 64;

/// Every (host, port) probe of a group and what became of it.
pub struct Table {
    pub hosts: Vec<IpAddr>,
    /// Our source address towards each host.
    pub srcs: Vec<IpAddr>,
    pub ports: Vec<u16>,
    port_idx: Vec<u32>,
    host_idx: crate::perm::AddrMap<u32>,
    pub done: Vec<bool>,
    pub tries: Vec<u8>,
    pub sent_us: Vec<u64>,
    pub rtt: Vec<RttEstimator>,
    pub start: Instant,
    pub remaining: usize,
    pub proto: Proto,
    pub ctl: Controller,
    pub retry: RetryPolicy,
    /// Answers in the current round, and how many of them were ICMP errors.
    pub gained: usize,
    pub gained_icmp: usize,
    /// ICMP errors from each host so far.
    pub icmp_by_host: Vec<u32>,
    /// Every RTT sample of the table: the starting estimate of the next block's hosts.
    pub all_rtt: RttEstimator,
    /// Discovery: what each host answered, instead of port results.
    pub disc: Option<Discovered>,
}

/// What discovery heard from each host of its table.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    /// The first SYN-ACK or RST, and its RTT.
    pub tcp: Vec<Option<(Reason, Option<Duration>)>>,
    /// The RTT of the echo reply.
    pub echo: Vec<Option<Duration>>,
}

/// Our source address towards each host (the kernel's route lookup).
pub fn sources(hosts: &[IpAddr]) -> Result<Vec<IpAddr>, ScanError> {
    let mut cache = crate::route::SourceCache::new();
    hosts
        .iter()
        .map(|&h| {
            cache
                .source_for(h)
                .map_err(|source| ScanError::NoSource { addr: h, source })
        })
        .collect()
}

impl Table {
    /// The probes of `hosts` (reached from `srcs`) x `ports`; times count from `start`,
    /// and each host's RTT estimate starts at `rtt`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        hosts: &[IpAddr],
        srcs: Vec<IpAddr>,
        ports: &[u16],
        proto: Proto,
        rtt: RttEstimator,
        start: Instant,
        ctl: Controller,
        retry: RetryPolicy,
    ) -> Table {
        // A few ports are looked up by a scan of the list; many through a full index.
        let mut port_idx = Vec::new();
        if ports.len() > FEW_PORTS {
            port_idx = vec![u32::MAX; 65536];
            for (i, &p) in ports.iter().enumerate() {
                port_idx[usize::from(p)] = i as u32;
            }
        }
        let n = hosts.len() * ports.len();
        Table {
            hosts: hosts.to_vec(),
            srcs,
            ports: ports.to_vec(),
            port_idx,
            host_idx: hosts
                .iter()
                .enumerate()
                .map(|(i, &h)| (h, i as u32))
                .collect(),
            done: vec![false; n],
            tries: vec![0; n],
            sent_us: vec![0; n],
            rtt: vec![rtt; hosts.len()],
            start,
            remaining: n,
            proto,
            ctl,
            retry,
            gained: 0,
            gained_icmp: 0,
            icmp_by_host: vec![0; hosts.len()],
            all_rtt: rtt,
            disc: None,
        }
    }

    pub fn host_index(&self, h: IpAddr) -> Option<usize> {
        self.host_idx.get(&h).map(|&i| i as usize)
    }

    /// The probe for (host, port), if it is in this table.
    pub fn lookup(&self, h: IpAddr, port: u16) -> Option<usize> {
        let hi = self.host_index(h)?;
        let pi = if self.port_idx.is_empty() {
            self.ports.iter().position(|&p| p == port)? as u32
        } else {
            self.port_idx[usize::from(port)]
        };
        (pi != u32::MAX).then(|| hi * self.ports.len() + pi as usize)
    }

    pub fn host_of(&self, i: usize) -> usize {
        i / self.ports.len()
    }

    pub fn port_of(&self, i: usize) -> u16 {
        self.ports[i % self.ports.len()]
    }

    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// The longest timeout of any host.
    pub fn max_timeout(&self) -> Duration {
        self.rtt
            .iter()
            .map(RttEstimator::timeout)
            .max()
            .unwrap_or_default()
    }

    /// Records the answer to probe `i`; reports it once. Returns false if it was already
    /// done.
    #[allow(clippy::too_many_arguments)]
    pub fn finish(
        &mut self,
        i: usize,
        state: PortState,
        reason: Reason,
        ttl: Option<u8>,
        icmp: bool,
        sink: &mut Sink<'_>,
    ) -> bool {
        if self.done[i] {
            return false;
        }
        self.done[i] = true;
        self.remaining -= 1;
        self.gained += 1;
        let h = self.host_of(i);
        if icmp {
            self.gained_icmp += 1;
            self.icmp_by_host[h] += 1;
        }
        let tries = self.tries[i];
        let mut rtt = None;
        if tries >= 1 {
            self.retry.answered(tries);
            self.ctl.answered(self.sent_us[i]);
        }
        if tries == 1 {
            let d = Duration::from_micros(self.now_us().saturating_sub(self.sent_us[i]));
            self.rtt[h].sample(d);
            self.all_rtt.sample(d);
            rtt = Some(d);
        }
        if let Some(disc) = &mut self.disc {
            let heard = matches!(reason, Reason::SynAck | Reason::Reset | Reason::ConnRefused);
            if heard && disc.tcp[h].is_none() {
                disc.tcp[h] = Some((reason, rtt));
            }
            return true;
        }
        sink.port(PortResult {
            host: self.hosts[h],
            port: self.port_of(i),
            proto: self.proto,
            state,
            reason,
            rtt,
            ttl,
        });
        true
    }
}

/// What the driver needs from an engine.
pub trait Prober {
    /// Sends these probes (indices into the table); returns how many went out, in order.
    fn send(&mut self, t: &Table, batch: &[usize]) -> io::Result<usize>;
    /// Reads every waiting answer and finishes the probes they belong to, in whichever
    /// of the tables holds them.
    fn receive(&mut self, ts: &mut [&mut Table], sink: &mut Sink<'_>) -> io::Result<()>;
    /// The sockets answers arrive on.
    fn fds(&self) -> Vec<RawFd>;
}

/// Settings of one run of rounds.
#[derive(Debug, Clone, Copy)]
pub struct Rounds {
    /// The state of a probe that was never answered.
    pub silent: PortState,
    /// UDP: when ICMP errors come back slower than probes go out (the kernel's ICMP rate
    /// limit), pace later rounds to the rate the errors arrive at.
    pub icmp_pacing: bool,
}

/// How a raw engine (SYN, UDP) runs: its protocol, pace, retries and rounds.
pub struct Engine {
    pub proto: Proto,
    /// Packets per second when `--rate` is not given.
    pub default_rate: f64,
    /// The rate the controller never goes below, for a maximum rate.
    pub min_rate: fn(f64) -> f64,
    /// Retransmissions at most when `--max-retries` is not given.
    pub retry_cap: u32,
    pub rounds: Rounds,
}

/// Scans `ports` of `hosts` with the prober in rounds; returns each host's smoothed RTT.
pub fn scan(
    cfg: &crate::ScanConfig,
    hosts: &[IpAddr],
    ports: &[u16],
    p: &mut dyn Prober,
    engine: &Engine,
    sink: &mut Sink<'_>,
) -> Result<Vec<Option<crate::HostTiming>>, ScanError> {
    let max = cfg.rate.map_or(engine.default_rate, f64::from);
    let mut t = Table::new(
        hosts,
        sources(hosts)?,
        ports,
        engine.proto,
        RttEstimator::new(cfg.rtt),
        Instant::now(),
        Controller::new(max, (engine.min_rate)(max)),
        RetryPolicy::new(cfg.max_retries, engine.retry_cap),
    );
    run(&mut t, p, &engine.rounds, sink)?;
    Ok(t.rtt.iter().map(RttEstimator::timing).collect())
}

/// [`scan`] with a prober made for the address families of `hosts`.
pub fn scan_with<P: Prober>(
    cfg: &crate::ScanConfig,
    hosts: &[IpAddr],
    ports: &[u16],
    new: fn(bool, bool) -> Result<P, ScanError>,
    engine: &Engine,
    sink: &mut Sink<'_>,
) -> Result<Vec<Option<crate::HostTiming>>, ScanError> {
    let mut p = new(
        hosts.iter().any(IpAddr::is_ipv4),
        hosts.iter().any(IpAddr::is_ipv6),
    )?;
    scan(cfg, hosts, ports, &mut p, engine, sink)
}

/// Sends every probe of the table in rounds and reports every result.
pub fn run(
    t: &mut Table,
    p: &mut dyn Prober,
    opts: &Rounds,
    sink: &mut Sink<'_>,
) -> Result<(), ScanError> {
    let io = crate::io_err;
    let fds = p.fds();
    let mut pacer = Pacer::new(t.ctl.rate());
    let order = crate::perm::Permutation::new(t.done.len() as u64, Rng::new().next());
    let mut queue: Vec<usize> = (0..order.len()).map(|i| order.get(i) as usize).collect();
    let mut round = 0u32;
    // Rounds that count against the retry limit.
    let mut counted = 0u32;
    let mut icmp_limited = false;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        t.gained = 0;
        t.gained_icmp = 0;
        let round_start = Instant::now();
        let mut i = 0;
        let mut last_send = Instant::now();
        while i < queue.len() {
            p.receive(&mut [&mut *t], sink).map_err(io("receive"))?;
            let allowed = pacer.take_batch(BATCH);
            if allowed == 0 {
                crate::sys::poll_read(&fds, pacer.wait_batch(BATCH));
                continue;
            }
            batch.clear();
            while batch.len() < allowed && i < queue.len() {
                let q = queue[i];
                i += 1;
                if !t.done[q] {
                    batch.push(q);
                }
            }
            pacer.unused(allowed - batch.len());
            if batch.is_empty() {
                continue;
            }
            let mut off = 0;
            while off < batch.len() {
                let n = p.send(t, &batch[off..]).map_err(io("send"))?;
                let now = t.now_us();
                for &q in &batch[off..off + n] {
                    t.tries[q] = t.tries[q].saturating_add(1);
                    t.sent_us[q] = now;
                }
                t.ctl.sent(now, n as u32);
                off += n;
                if n == 0 {
                    // Socket buffer full: let the queue drain, reading answers meanwhile.
                    crate::sys::poll_read(&fds, Duration::from_micros(200));
                    p.receive(&mut [&mut *t], sink).map_err(io("receive"))?;
                }
            }
            last_send = Instant::now();
            // UDP paces itself by the ICMP errors instead (below).
            let now = t.now_us();
            if let Some(r) = t.ctl.judge(now, t.max_timeout())
                && !opts.icmp_pacing
            {
                pacer.set_rate(r);
            }
        }
        // Wait out the timeout of the slowest host for the last probes sent.
        loop {
            p.receive(&mut [&mut *t], sink).map_err(io("receive"))?;
            if t.remaining == 0 {
                break;
            }
            // Before the last round is judged, wait longer: an answer that is only late
            // (a loaded host) must not turn into "no response".
            let last_round = counted + 1 >= t.retry.tries();
            let wait = if last_round {
                t.max_timeout() + Duration::from_millis(150)
            } else {
                t.max_timeout()
            };
            let deadline = last_send + wait;
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            crate::sys::poll_read(&fds, (deadline - now).min(Duration::from_millis(20)));
        }
        round += 1;
        // The first round drained the targets' ICMP token buckets: what is left is sent
        // at the pace they refill (see `bucket`).
        if opts.icmp_pacing && round == 1 && t.remaining > 0 && t.gained_icmp >= ICMP_BURST {
            bucket(t, p, &fds, last_send, sink)?;
            break;
        }
        // A round in which ICMP errors still came back while probes went unanswered is
        // the target's ICMP rate limit at work (Linux: a burst of 6, then one a second):
        // it does not count against the retries, and the next round goes out no faster
        // than the errors came back.
        // Once seen, a round that gets no error at all halves the rate (the errors may
        // come back slower still), down to one probe a second; only then do rounds count.
        let limited = opts.icmp_pacing
            && t.remaining > 0
            && (t.gained_icmp >= ICMP_BURST || (icmp_limited && t.gained_icmp > 0));
        icmp_limited |= limited;
        let slow_down = icmp_limited && !limited && t.remaining > 0 && pacer.rate() > 1.0;
        if !limited && !slow_down {
            counted += 1;
        }
        if t.remaining == 0 || counted >= t.retry.tries() || round >= MAX_ROUNDS {
            break;
        }
        queue.retain(|&q| !t.done[q]);
        if limited {
            let secs = round_start.elapsed().as_secs_f64().max(1e-3);
            let icmp_rate = t.gained_icmp as f64 / secs;
            if icmp_rate < pacer.rate() {
                pacer.set_rate(icmp_rate.max(1.0));
            }
        } else if slow_down {
            pacer.set_rate((pacer.rate() / 2.0).max(1.0));
        }
    }
    for q in 0..t.done.len() {
        if !t.done[q] {
            t.finish_silent(q, opts.silent, sink);
        }
    }
    Ok(())
}

/// The refill rate of a target's ICMP error limit, per second: Linux's default
/// (net.ipv4.icmp_ratelimit and net.ipv6.icmp.ratelimit, 1000 ms).
const ICMP_REFILL: f64 = 1.0;

/// Sends the probes still unanswered after the first round at the pace each host's ICMP
/// error limit allows, so that every closed port's port-unreachable comes back.
///
/// A host limits its ICMP errors with a token bucket per destination (Linux: a burst of
/// 6, then one a second). The first round, sent at full speed, drained it: the errors
/// that came back are its burst. Each host's bucket is modelled here, with that burst and
/// the refill rate: a probe goes out only when the host holds a token, so a closed port's
/// error cannot be suppressed. Answers that cost the host no token (a UDP reply, or
/// silence once the probe's timeout has passed) give it back. A probe that got no answer
/// although a token was there is silent, or was lost: it gets the retries the loss seen
/// calls for, at the same pace. The probes of the first round that came after the burst
/// are not counted as tries: their answer may have been suppressed.
pub fn bucket(
    t: &mut Table,
    p: &mut dyn Prober,
    fds: &[RawFd],
    drained_at: Instant,
    sink: &mut Sink<'_>,
) -> Result<(), ScanError> {
    use std::collections::VecDeque;
    let io = crate::io_err;
    let nh = t.hosts.len();
    let burst: Vec<f64> = t
        .icmp_by_host
        .iter()
        .map(|&k| f64::from(k.max(1)))
        .collect();
    let mut tokens = vec![0.0f64; nh];
    let mut refilled = vec![drained_at; nh];
    let mut queues: Vec<VecDeque<usize>> = vec![VecDeque::new(); nh];
    for q in 0..t.done.len() {
        if !t.done[q] {
            t.tries[q] = 0;
            queues[t.host_of(q)].push_back(q);
        }
    }
    // Sent and not yet answered: (deadline, probe, host).
    let mut inflight: Vec<(Instant, usize, usize)> = Vec::new();
    let mut batch = [0usize; 1];
    loop {
        p.receive(&mut [&mut *t], sink).map_err(io("receive"))?;
        let now = Instant::now();
        // Answered probes leave; timed-out ones too: silence cost the host no token, and
        // they are tried again if tries are left. (A UDP reply cost no token either, but
        // is not given back: the pace errs on the slow side only.)
        let mut k = 0;
        while k < inflight.len() {
            let (deadline, q, h) = inflight[k];
            if t.done[q] {
                inflight.swap_remove(k);
            } else if deadline <= now {
                inflight.swap_remove(k);
                tokens[h] = (tokens[h] + 1.0).min(burst[h]);
                if u32::from(t.tries[q]) < t.retry.tries() {
                    queues[h].push_back(q);
                }
            } else {
                k += 1;
            }
        }
        let mut next = now + Duration::from_millis(50);
        for h in 0..nh {
            let dt = now.duration_since(refilled[h]).as_secs_f64();
            refilled[h] = now;
            tokens[h] = (tokens[h] + dt * ICMP_REFILL).min(burst[h]);
            while tokens[h] >= 1.0 {
                let Some(q) = queues[h].pop_front() else {
                    break;
                };
                if t.done[q] {
                    continue;
                }
                batch[0] = q;
                if p.send(t, &batch).map_err(io("send"))? == 0 {
                    queues[h].push_front(q);
                    break;
                }
                tokens[h] -= 1.0;
                t.tries[q] = t.tries[q].saturating_add(1);
                t.sent_us[q] = t.now_us();
                let wait = t.rtt[h].timeout() + Duration::from_millis(50);
                inflight.push((now + wait, q, h));
            }
            if !queues[h].is_empty() {
                let missing = (1.0 - tokens[h]).max(0.0) / ICMP_REFILL;
                next = next.min(now + Duration::from_secs_f64(missing));
            }
        }
        if inflight.is_empty() && queues.iter().all(VecDeque::is_empty) {
            break;
        }
        if let Some(d) = inflight.iter().map(|f| f.0).min() {
            next = next.min(d);
        }
        let wait = next.saturating_duration_since(Instant::now());
        crate::sys::poll_read(fds, wait.max(Duration::from_micros(200)));
    }
    Ok(())
}

impl Table {
    pub fn finish_silent(&mut self, i: usize, state: PortState, sink: &mut Sink<'_>) {
        self.done[i] = true;
        self.remaining -= 1;
        let h = self.host_of(i);
        sink.port(PortResult {
            host: self.hosts[h],
            port: self.port_of(i),
            proto: self.proto,
            state,
            reason: Reason::NoResponse,
            rtt: None,
            ttl: None,
        });
    }
}
