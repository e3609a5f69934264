//! The connect engine: nonblocking `connect()` calls watched by epoll, one loop per
//! worker thread. Concurrency comes from RLIMIT_NOFILE (raised to the hard limit first);
//! running out of descriptors or buffers is back-pressure, never a port state. A
//! connection whose local address equals its peer's (a loopback self-connect) is not an
//! open port and is tried again.

use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use portolan_registry::Proto;

use crate::epoll::Epoll;
use crate::rate::{Pacer, RetryPolicy};
use crate::rtt::RttEstimator;
use crate::sys::{self, RawAddr};
use crate::{
    HostTiming, PortResult, PortState, Reason, Rng, ScanConfig, ScanError, Sink, io_err, packet,
};

/// Descriptors kept free for everything else the process does.
const RESERVE_FDS: usize = 32;
/// The most connections in flight in all, whatever the limit allows.
const MAX_INFLIGHT: usize = 16_384;
/// Connections in flight per worker at the start.
const INITIAL_WINDOW: usize = 32;
/// How often a self-connect is retried before the port is called closed.
const SELF_CONNECT_TRIES: u8 = 3;

struct Conn {
    fd: OwnedFd,
    probe: usize,
    started: Instant,
    generation: u32,
}

enum Msg {
    Ports(Vec<PortResult>),
    Rtt(usize, Option<HostTiming>),
    SelfConnects(u64),
}

/// What one worker needs to know.
struct Work<'a> {
    hosts: &'a [IpAddr],
    ports: &'a [u16],
    cfg: &'a ScanConfig,
    /// This worker's probes.
    probes: Vec<usize>,
    limit: usize,
    rate: f64,
}

/// Connect-scans `ports` of `hosts`; returns each host's smoothed RTT.
pub fn scan(
    cfg: &ScanConfig,
    hosts: &[IpAddr],
    ports: &[u16],
    sink: &mut Sink<'_>,
) -> Result<Vec<Option<HostTiming>>, ScanError> {
    let nofile = sys::raise_nofile() as usize;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cfg.threads.unwrap_or(cores.min(4)).max(1);
    let free = nofile.saturating_sub(sys::open_fds() + RESERVE_FDS + 4 * threads);
    let total_limit = cfg
        .concurrency
        .unwrap_or(free.min(MAX_INFLIGHT))
        .max(threads);
    let n = hosts.len() * ports.len();
    let mut all: Vec<usize> = (0..n).collect();
    Rng::new().shuffle(&mut all);
    let rate = cfg.rate.map_or(f64::INFINITY, f64::from) / threads as f64;
    let (tx, rx) = mpsc::channel::<Msg>();
    let mut timing: Vec<Option<HostTiming>> = vec![None; hosts.len()];
    let mut first_err: Option<ScanError> = None;
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for w in 0..threads {
            let work = Work {
                hosts,
                ports,
                cfg,
                probes: all.iter().skip(w).step_by(threads).copied().collect(),
                limit: (total_limit / threads).max(1),
                rate,
            };
            let tx = tx.clone();
            handles.push(s.spawn(move || worker(work, &tx)));
        }
        drop(tx);
        for m in rx {
            match m {
                Msg::Ports(rs) => {
                    for r in rs {
                        sink.port(r);
                    }
                }
                Msg::SelfConnects(n) => sink.summary.self_connects += n,
                Msg::Rtt(h, d) => {
                    if timing[h].is_none() {
                        timing[h] = d;
                    }
                }
            }
        }
        for h in handles {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(ScanError::Io {
                        op: "connect worker",
                        source: io::Error::other("worker thread panicked"),
                    });
                }
            }
        }
    });
    match first_err {
        Some(e) => Err(e),
        None => Ok(timing),
    }
}

/// How a finished attempt turned out.
enum Outcome {
    Final(PortState, Reason),
    /// Try again without counting it (self-connect, local shortage).
    Again,
    /// No answer: a retry if any are left.
    Timeout,
}

fn classify(errno: i32) -> Outcome {
    match errno {
        0 => Outcome::Final(PortState::Open, Reason::SynAck),
        libc::ECONNREFUSED => Outcome::Final(PortState::Closed, Reason::ConnRefused),
        libc::EHOSTUNREACH => Outcome::Final(PortState::Filtered, Reason::HostUnreach),
        libc::ENETUNREACH => Outcome::Final(PortState::Filtered, Reason::NetUnreach),
        libc::EACCES | libc::EPERM => Outcome::Final(PortState::Filtered, Reason::AdminProhibited),
        libc::ETIMEDOUT => Outcome::Timeout,
        libc::EADDRNOTAVAIL | libc::ENOBUFS | libc::EAGAIN | libc::ENOMEM => Outcome::Again,
        _ => Outcome::Timeout,
    }
}

/// Refines an ICMP-caused failure with the type and code from the socket's error queue.
fn refine(fd: &OwnedFd, o: Outcome) -> Outcome {
    if let Outcome::Final(PortState::Filtered, _) = o
        && let Some(e) = sys::recv_error(fd.as_raw_fd())
        && (e.icmp_type != 0 || e.v6)
    {
        // A port-unreachable to a TCP SYN stays filtered, as nmap has it: the host
        // refuses, but not as TCP does.
        let r = packet::icmp_reason(e.v6, e.icmp_type, e.icmp_code);
        return Outcome::Final(PortState::Filtered, r);
    }
    o
}

fn worker(w: Work<'_>, tx: &mpsc::Sender<Msg>) -> Result<(), ScanError> {
    Worker::new(w)?.run(tx)
}

/// One worker's connection loop: start attempts while there is room, reap the finished
/// ones, expire the late ones, and size the window to what the target answers.
struct Worker<'a> {
    w: Work<'a>,
    nports: usize,
    rtt: Vec<RttEstimator>,
    dests: Vec<RawAddr>,
    tries: Vec<u8>,
    selfc: Vec<u8>,
    retry: RetryPolicy,
    pending: VecDeque<usize>,
    slots: Vec<Option<Conn>>,
    free: Vec<usize>,
    timeouts: VecDeque<(Instant, usize, u32)>,
    generation: u32,
    ep: Epoll,
    /// In flight at once: `cap` is what the descriptors allow, `window` what the target
    /// calls for, `limit` the smaller. Answers that come at once need no parallelism
    /// (more only costs kernel time); each attempt that waits out its timeout widens the
    /// window.
    cap: usize,
    window: usize,
    limit: usize,
    /// Answers this turn that took far longer than the fastest one: our own queueing.
    late: u32,
    min_rtt: Duration,
    last_shrink: Instant,
    inflight: usize,
    pacer: Pacer,
    unlimited: bool,
    backoff_until: Option<Instant>,
    /// Results for the main thread, sent in batches: one channel message per result
    /// would cost a futex wake-up each.
    out: Vec<PortResult>,
}

/// What starting one attempt came to.
enum Start {
    Started,
    /// Out of descriptors or buffers: stop starting for now.
    Shortage,
}

impl<'a> Worker<'a> {
    fn new(w: Work<'a>) -> Result<Worker<'a>, ScanError> {
        let n = w.probes.len();
        let cap = w.limit;
        let window = INITIAL_WINDOW.min(cap);
        Ok(Worker {
            nports: w.ports.len(),
            rtt: vec![RttEstimator::new(w.cfg.rtt); w.hosts.len()],
            dests: w
                .hosts
                .iter()
                .map(|&h| RawAddr::new((h, 0).into()))
                .collect(),
            tries: vec![0; n],
            selfc: vec![0; n],
            retry: RetryPolicy::new(w.cfg.max_retries, 10),
            pending: (0..n).collect(),
            slots: Vec::new(),
            free: Vec::new(),
            timeouts: VecDeque::new(),
            generation: 0,
            ep: Epoll::new(1024).map_err(io_err("epoll_create"))?,
            cap,
            window,
            limit: window,
            late: 0,
            min_rtt: Duration::MAX,
            last_shrink: Instant::now(),
            inflight: 0,
            pacer: Pacer::new(w.rate.min(1e9)),
            unlimited: !w.rate.is_finite(),
            backoff_until: None,
            out: Vec::new(),
            w,
        })
    }

    fn run(mut self, tx: &mpsc::Sender<Msg>) -> Result<(), ScanError> {
        loop {
            self.start_attempts()?;
            if self.inflight == 0 && self.pending.is_empty() {
                break;
            }
            if self.inflight == 0 {
                // Every deadline left belongs to a finished attempt: a past one would make
                // the wait zero, and the loop spin until the pacer grants a token.
                self.timeouts.clear();
            }
            let wait = self.next_wait();
            if self.inflight == 0 {
                std::thread::sleep(wait.min(Duration::from_millis(5)));
                continue;
            }
            self.reap(wait)?;
            self.expire();
            self.flush(tx);
            self.adapt();
        }
        self.flush(tx);
        for (h, r) in self.rtt.iter().enumerate() {
            let _ = tx.send(Msg::Rtt(h, r.timing()));
        }
        let selfs: u64 = self.selfc.iter().map(|&n| u64::from(n)).sum();
        if selfs > 0 {
            let _ = tx.send(Msg::SelfConnects(selfs));
        }
        Ok(())
    }

    fn report(&mut self, li: usize, state: PortState, reason: Reason, rtt: Option<Duration>) {
        let p = self.w.probes[li];
        self.out.push(PortResult {
            host: self.w.hosts[p / self.nports],
            port: self.w.ports[p % self.nports],
            proto: Proto::Tcp,
            state,
            reason,
            rtt,
            ttl: None,
        });
    }

    fn flush(&mut self, tx: &mpsc::Sender<Msg>) {
        if !self.out.is_empty() {
            let _ = tx.send(Msg::Ports(std::mem::take(&mut self.out)));
        }
    }

    /// Starts attempts while the window, the descriptors and the pacer allow.
    fn start_attempts(&mut self) -> Result<(), ScanError> {
        if self.backoff_until.is_some_and(|t| Instant::now() < t) {
            return Ok(());
        }
        self.backoff_until = None;
        let mut budget = if self.unlimited {
            usize::MAX
        } else {
            self.pacer.take(self.limit.saturating_sub(self.inflight))
        };
        while self.inflight < self.limit && budget > 0 {
            let Some(li) = self.pending.pop_front() else {
                break;
            };
            budget -= 1;
            if let Start::Shortage = self.start(li)? {
                break;
            }
        }
        Ok(())
    }

    /// Starts one attempt: a nonblocking connect, finished at once or watched by epoll.
    fn start(&mut self, li: usize) -> Result<Start, ScanError> {
        let p = self.w.probes[li];
        let h = p / self.nports;
        let port = self.w.ports[p % self.nports];
        let fd = match sys::socket(sys::domain_of(self.w.hosts[h]), libc::SOCK_STREAM, 0) {
            Ok(fd) => fd,
            Err(e) => {
                self.pending.push_front(li);
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                ) {
                    // Out of descriptors: that is our real limit for now.
                    self.cap = self.inflight.max(1);
                    self.limit = self.cap;
                    if self.inflight == 0 {
                        self.backoff_until = Some(Instant::now() + Duration::from_millis(5));
                    }
                    return Ok(Start::Shortage);
                }
                return Err(ScanError::Io {
                    op: "socket",
                    source: e,
                });
            }
        };
        let _ = sys::enable_recverr(fd.as_raw_fd(), self.w.hosts[h].is_ipv6());
        let mut to = self.dests[h];
        set_port(&mut to, port);
        self.tries[li] = self.tries[li].saturating_add(1);
        let started = Instant::now();
        // Finished at once (refused, unreachable, or connected on loopback): the errno,
        // 0 for a connection.
        let at_once = match sys::connect(fd.as_raw_fd(), &to) {
            Ok(true) => Some(0),
            Ok(false) => None,
            Err(e) => Some(e.raw_os_error().unwrap_or(0)),
        };
        if let Some(errno) = at_once {
            self.finish(&fd, li, errno, started);
            return Ok(Start::Started);
        }
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        let token = (u64::from(generation) << 32) | slot as u64;
        self.ep
            .add_writable(&fd, token)
            .map_err(io_err("epoll_ctl"))?;
        // Back off like TCP: each retry waits twice as long, so a slow answer (a loaded
        // host) is not taken for a lost one.
        let backoff = 1u32 << (self.tries[li].saturating_sub(1)).min(2);
        let deadline = started + (self.rtt[h].timeout() * backoff).min(self.w.cfg.rtt.max);
        self.timeouts.push_back((deadline, slot, generation));
        self.slots[slot] = Some(Conn {
            fd,
            probe: li,
            started,
            generation,
        });
        self.inflight += 1;
        Ok(Start::Started)
    }

    /// How long to wait for completions: until the next timeout, the pacer or the end of
    /// a back-off.
    fn next_wait(&mut self) -> Duration {
        let now = Instant::now();
        let mut wait = self
            .timeouts
            .front()
            .map_or(Duration::from_millis(50), |t| {
                t.0.saturating_duration_since(now)
            });
        if !self.pending.is_empty() && self.inflight < self.limit {
            wait = wait.min(if self.unlimited {
                Duration::ZERO
            } else {
                self.pacer.wait()
            });
        }
        if let Some(b) = self.backoff_until {
            wait = wait.min(b.saturating_duration_since(now));
        }
        wait
    }

    /// Finishes the attempts epoll reports done.
    fn reap(&mut self, wait: Duration) -> Result<(), ScanError> {
        let ready: Vec<u64> = self.ep.wait(wait).map_err(io_err("epoll_wait"))?.collect();
        for token in ready {
            let slot = (token & 0xffff_ffff) as usize;
            let g = (token >> 32) as u32;
            let Some(c) = self.slots.get_mut(slot).and_then(Option::take) else {
                continue;
            };
            if c.generation != g {
                self.slots[slot] = Some(c);
                continue;
            }
            self.free.push(slot);
            self.inflight -= 1;
            let errno = sys::sock_error(c.fd.as_raw_fd()).unwrap_or(libc::EIO);
            self.finish(&c.fd, c.probe, errno, c.started);
        }
        Ok(())
    }

    /// Gives up on attempts past their deadline: retried, or filtered when the retries
    /// are spent.
    fn expire(&mut self) {
        let now = Instant::now();
        while let Some(&(deadline, slot, g)) = self.timeouts.front() {
            if deadline > now {
                break;
            }
            self.timeouts.pop_front();
            let live = self
                .slots
                .get(slot)
                .and_then(Option::as_ref)
                .is_some_and(|c| c.generation == g);
            if !live {
                continue;
            }
            let Some(c) = self.slots[slot].take() else {
                continue;
            };
            self.free.push(slot);
            self.inflight -= 1;
            let li = c.probe;
            drop(c);
            if u32::from(self.tries[li]) < self.retry.tries() {
                self.pending.push_back(li);
            } else {
                self.report(li, PortState::Filtered, Reason::NoResponse, None);
            }
            if self.late == 0 {
                self.window = (self.window + 1).min(self.w.limit);
            }
        }
    }

    /// Sizes the window: answers slower than the fastest by far mean the queue is ours
    /// (too many sockets in flight make the kernel's port search and our loop slow), so
    /// shrink; after a shortage of descriptors, grow back towards the configured limit.
    fn adapt(&mut self) {
        if self.late > 0 && self.last_shrink.elapsed() > Duration::from_millis(10) {
            self.window = (self.window * 3 / 4).max(INITIAL_WINDOW.min(self.w.limit));
            self.last_shrink = Instant::now();
        }
        self.late = 0;
        if self.cap < self.w.limit && self.inflight + 1 >= self.cap {
            self.cap += 1;
        }
        self.limit = self.window.min(self.cap);
    }

    /// Takes a finished attempt's errno to a result, a retry or another try.
    fn finish(&mut self, fd: &OwnedFd, li: usize, errno: i32, started: Instant) {
        let mut outcome = refine(fd, classify(errno));
        if errno == 0 {
            // Close an open connection with RST: no TIME_WAIT left on either side.
            let linger = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            let _ = sys::setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_LINGER, &linger);
            let local = sys::local_name(fd.as_raw_fd());
            if local.is_some() && local == sys::peer_name(fd.as_raw_fd()) {
                // Connected to itself: nothing listens there.
                self.selfc[li] += 1;
                outcome = if self.selfc[li] >= SELF_CONNECT_TRIES {
                    Outcome::Final(PortState::Closed, Reason::ConnRefused)
                } else {
                    Outcome::Again
                };
            }
        }
        match outcome {
            Outcome::Final(state, reason) => {
                let tries = self.tries[li];
                self.retry.answered(tries);
                let h = self.w.probes[li] / self.nports;
                let d = started.elapsed();
                let rtt = (tries == 1).then_some(d);
                // An answer after a second or more came to the kernel's own SYN
                // retransmit (its first timeout is 1 s): not a round-trip time.
                if tries == 1 && d < Duration::from_millis(950) {
                    self.rtt[h].sample(d);
                    self.min_rtt = self.min_rtt.min(d);
                    if d > (self.min_rtt * 8).max(Duration::from_millis(2)) {
                        self.late += 1;
                    }
                }
                self.report(li, state, reason, rtt);
            }
            Outcome::Again => {
                self.tries[li] = self.tries[li].saturating_sub(1);
                self.pending.push_back(li);
            }
            Outcome::Timeout => {
                if u32::from(self.tries[li]) < self.retry.tries() {
                    self.pending.push_back(li);
                } else {
                    self.report(li, PortState::Filtered, Reason::NoResponse, None);
                }
            }
        }
    }
}

fn set_port(a: &mut RawAddr, port: u16) {
    if let Some(mut sa) = a.get() {
        sa.set_port(port);
        *a = RawAddr::new(sa);
    }
}
