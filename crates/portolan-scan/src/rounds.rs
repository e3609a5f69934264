//! The probe table and the round driver shared by the datagram engines (SYN and UDP).
//!
//! Round 0 sends every probe in random order; each later round sends again only the
//! probes still unanswered, after waiting out the slowest host's timeout. Rounds stop when
//! nothing is left, or when every probe has had as many tries as the loss seen so far
//! calls for ([`RetryPolicy`]).

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use portolan_registry::Proto;

use crate::rate::{Controller, Pacer, RetryPolicy};
use crate::rtt::{RttBounds, RttEstimator};
use crate::{PortResult, PortState, Reason, Rng, ScanError, Sink};

/// Rounds at most, whatever else happens (bounds a scan against a rate-limited target).
const MAX_ROUNDS: u32 = 64;

/// Fewer ICMP errors than this in one round cannot be a rate limiter's burst (Linux
/// allows 6 before limiting), so silence beside them is not blamed on a limit.
const ICMP_BURST: usize = 4;

/// Probes sent per batch.
pub const BATCH: usize = 64;

/// Every (host, port) probe of a group and what became of it.
pub struct Table {
    pub hosts: Vec<IpAddr>,
    /// Our source address towards each host.
    pub srcs: Vec<IpAddr>,
    pub ports: Vec<u16>,
    port_idx: Vec<u32>,
    host_idx: HashMap<IpAddr, u32>,
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
}

impl Table {
    pub fn new(
        hosts: &[IpAddr],
        ports: &[u16],
        proto: Proto,
        bounds: RttBounds,
        ctl: Controller,
        retry: RetryPolicy,
    ) -> Result<Table, ScanError> {
        let mut srcs = Vec::with_capacity(hosts.len());
        for &h in hosts {
            srcs.push(
                crate::sys::source_for(h)
                    .map_err(|source| ScanError::NoSource { addr: h, source })?,
            );
        }
        let mut port_idx = vec![u32::MAX; 65536];
        for (i, &p) in ports.iter().enumerate() {
            port_idx[usize::from(p)] = i as u32;
        }
        let n = hosts.len() * ports.len();
        Ok(Table {
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
            rtt: vec![RttEstimator::new(bounds); hosts.len()],
            start: Instant::now(),
            remaining: n,
            proto,
            ctl,
            retry,
            gained: 0,
            gained_icmp: 0,
        })
    }

    pub fn host_index(&self, h: IpAddr) -> Option<usize> {
        self.host_idx.get(&h).map(|&i| i as usize)
    }

    /// The probe for (host, port), if it is in this table.
    pub fn lookup(&self, h: IpAddr, port: u16) -> Option<usize> {
        let hi = self.host_index(h)?;
        let pi = self.port_idx[usize::from(port)];
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
        if icmp {
            self.gained_icmp += 1;
        }
        let h = self.host_of(i);
        let tries = self.tries[i];
        let mut rtt = None;
        if tries >= 1 {
            self.retry.answered(tries);
            self.ctl.answered(self.sent_us[i]);
        }
        if tries == 1 {
            let d = Duration::from_micros(self.now_us().saturating_sub(self.sent_us[i]));
            self.rtt[h].sample(d);
            rtt = Some(d);
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
    /// Reads every waiting answer and finishes the probes they belong to.
    fn receive(&mut self, t: &mut Table, sink: &mut Sink<'_>) -> io::Result<()>;
    /// The sockets answers arrive on.
    fn fds(&self) -> Vec<RawFd>;
}

/// Settings of one run of rounds.
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
        ports,
        engine.proto,
        cfg.rtt,
        Controller::new(max, (engine.min_rate)(max)),
        RetryPolicy::new(cfg.max_retries, engine.retry_cap),
    )?;
    run(&mut t, p, &engine.rounds, sink)?;
    Ok(t.rtt.iter().map(RttEstimator::timing).collect())
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
    let mut queue: Vec<usize> = (0..t.done.len()).collect();
    Rng::new().shuffle(&mut queue);
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
            p.receive(t, sink).map_err(io("receive"))?;
            let allowed = pacer.take(BATCH);
            if allowed == 0 {
                crate::sys::poll_read(&fds, pacer.wait());
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
                    p.receive(t, sink).map_err(io("receive"))?;
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
            p.receive(t, sink).map_err(io("receive"))?;
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

impl Table {
    fn finish_silent(&mut self, i: usize, state: PortState, sink: &mut Sink<'_>) {
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
