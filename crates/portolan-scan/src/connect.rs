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

use crate::rate::{Pacer, RetryPolicy};
use crate::rtt::RttEstimator;
use crate::sys::{self, Epoll, RawAddr};
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
    let nports = w.ports.len();
    let mut rtt = vec![RttEstimator::new(w.cfg.rtt); w.hosts.len()];
    let dests: Vec<RawAddr> = w
        .hosts
        .iter()
        .map(|&h| RawAddr::new((h, 0).into()))
        .collect();
    let mut tries = vec![0u8; w.probes.len()];
    let mut selfc = vec![0u8; w.probes.len()];
    let mut retry = RetryPolicy::new(w.cfg.max_retries, 10);
    let mut pending: VecDeque<usize> = (0..w.probes.len()).collect();
    let mut slots: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut timeouts: VecDeque<(Instant, usize, u32)> = VecDeque::new();
    let mut generation = 0u32;
    let mut ep = Epoll::new(1024).map_err(io_err("epoll_create"))?;
    // In flight at once: `cap` is what the descriptors allow, `window` what the target
    // calls for. Answers that come at once need no parallelism (more only costs kernel
    // time); each attempt that waits out its timeout widens the window.
    let mut cap = w.limit;
    let mut window = INITIAL_WINDOW.min(cap);
    let mut limit = window;
    let mut late = 0u32;
    let mut min_rtt = Duration::MAX;
    let mut last_shrink = Instant::now();
    let mut inflight = 0usize;
    let mut pacer = Pacer::new(w.rate.min(1e9));
    let unlimited = !w.rate.is_finite();
    let mut backoff_until: Option<Instant> = None;

    // Results go to the main thread in batches: one channel message per result would
    // cost a futex wake-up each.
    let out = std::cell::RefCell::new(Vec::new());
    let report = |li: usize, state, reason, rtt_d: Option<Duration>| {
        let p = w.probes[li];
        out.borrow_mut().push(PortResult {
            host: w.hosts[p / nports],
            port: w.ports[p % nports],
            proto: Proto::Tcp,
            state,
            reason,
            rtt: rtt_d,
            ttl: None,
        });
    };

    // finish_now with the bookkeeping, borrowed afresh at each call (the loop uses its
    // parts in between).
    macro_rules! finish {
        ($fd:expr, $li:expr, $errno:expr, $started:expr) => {
            finish_now(
                $fd,
                $li,
                $errno,
                $started,
                &mut State {
                    tries: &mut tries,
                    selfc: &mut selfc,
                    pending: &mut pending,
                    rtt: &mut rtt,
                    retry: &mut retry,
                    late: &mut late,
                    min_rtt: &mut min_rtt,
                    report: &report,
                    probes: &w.probes,
                    nports,
                },
            )
        };
    }

    loop {
        // Start attempts while there is room.
        let now = Instant::now();
        let may_start = backoff_until.is_none_or(|t| now >= t);
        if may_start {
            backoff_until = None;
            let mut budget = if unlimited {
                usize::MAX
            } else {
                pacer.take(limit.saturating_sub(inflight))
            };
            while inflight < limit && budget > 0 {
                let Some(li) = pending.pop_front() else { break };
                budget -= 1;
                let p = w.probes[li];
                let h = p / nports;
                let port = w.ports[p % nports];
                let fd = match sys::socket(sys::domain_of(w.hosts[h]), libc::SOCK_STREAM, 0) {
                    Ok(fd) => fd,
                    Err(e) => {
                        pending.push_front(li);
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                        ) {
                            // Out of descriptors: that is our real limit for now.
                            cap = inflight.max(1);
                            limit = cap;
                            if inflight == 0 {
                                backoff_until = Some(Instant::now() + Duration::from_millis(5));
                            }
                            break;
                        }
                        return Err(ScanError::Io {
                            op: "socket",
                            source: e,
                        });
                    }
                };
                let _ = sys::enable_recverr(fd.as_raw_fd(), w.hosts[h].is_ipv6());
                let mut to = dests[h];
                set_port(&mut to, port);
                tries[li] = tries[li].saturating_add(1);
                let started = Instant::now();
                // Finished at once (refused, unreachable, or connected on loopback): the
                // errno, 0 for a connection.
                let at_once = match sys::connect(fd.as_raw_fd(), &to) {
                    Ok(true) => Some(0),
                    Ok(false) => None,
                    Err(e) => Some(e.raw_os_error().unwrap_or(0)),
                };
                if let Some(errno) = at_once {
                    finish!(&fd, li, errno, started);
                    continue;
                }
                let slot = free.pop().unwrap_or_else(|| {
                    slots.push(None);
                    slots.len() - 1
                });
                generation = generation.wrapping_add(1);
                let token = (u64::from(generation) << 32) | slot as u64;
                if let Err(e) = ep.add(
                    fd.as_raw_fd(),
                    (libc::EPOLLOUT | libc::EPOLLERR) as u32,
                    token,
                ) {
                    return Err(ScanError::Io {
                        op: "epoll_ctl",
                        source: e,
                    });
                }
                // Back off like TCP: each retry waits twice as long, so a slow
                // answer (a loaded host) is not taken for a lost one.
                let backoff = 1u32 << (tries[li].saturating_sub(1)).min(2);
                let deadline = started + (rtt[h].timeout() * backoff).min(w.cfg.rtt.max);
                timeouts.push_back((deadline, slot, generation));
                slots[slot] = Some(Conn {
                    fd,
                    probe: li,
                    started,
                    generation,
                });
                inflight += 1;
            }
        }
        if inflight == 0 && pending.is_empty() {
            break;
        }
        // Wait for completions, or the next timeout, or the pacer.
        let now = Instant::now();
        let mut wait = timeouts.front().map_or(Duration::from_millis(50), |t| {
            t.0.saturating_duration_since(now)
        });
        if !pending.is_empty() && inflight < limit {
            wait = wait.min(if unlimited {
                Duration::ZERO
            } else {
                pacer.wait()
            });
        }
        if let Some(b) = backoff_until {
            wait = wait.min(b.saturating_duration_since(now));
        }
        if inflight == 0 {
            std::thread::sleep(wait.min(Duration::from_millis(5)));
            continue;
        }
        let ready: Vec<(u64, u32)> = ep.wait(wait).map_err(io_err("epoll_wait"))?.collect();
        for (token, _) in ready {
            let slot = (token & 0xffff_ffff) as usize;
            let g = (token >> 32) as u32;
            let Some(c) = slots.get_mut(slot).and_then(Option::take) else {
                continue;
            };
            if c.generation != g {
                slots[slot] = Some(c);
                continue;
            }
            free.push(slot);
            inflight -= 1;
            let errno = sys::sock_error(c.fd.as_raw_fd()).unwrap_or(libc::EIO);
            finish!(&c.fd, c.probe, errno, c.started);
        }
        // Expire attempts past their deadline.
        let now = Instant::now();
        while let Some(&(deadline, slot, g)) = timeouts.front() {
            if deadline > now {
                break;
            }
            timeouts.pop_front();
            let live = slots
                .get(slot)
                .and_then(Option::as_ref)
                .is_some_and(|c| c.generation == g);
            if !live {
                continue;
            }
            let Some(c) = slots[slot].take() else {
                continue;
            };
            free.push(slot);
            inflight -= 1;
            let li = c.probe;
            drop(c);
            if u32::from(tries[li]) < retry.tries() {
                pending.push_back(li);
            } else {
                report(li, PortState::Filtered, Reason::NoResponse, None);
            }
            if late == 0 {
                window = (window + 1).min(w.limit);
            }
        }
        let batch = std::mem::take(&mut *out.borrow_mut());
        if !batch.is_empty() {
            let _ = tx.send(Msg::Ports(batch));
        }
        // Grow back towards the configured limit after a shortage of descriptors.
        // Answers slower than the fastest by far mean the queue is ours (too many
        // sockets in flight make the kernel's port search and our loop slow): shrink.
        if late > 0 && last_shrink.elapsed() > Duration::from_millis(10) {
            window = (window * 3 / 4).max(INITIAL_WINDOW.min(w.limit));
            last_shrink = Instant::now();
        }
        late = 0;
        if cap < w.limit && inflight + 1 >= cap {
            cap += 1;
        }
        limit = window.min(cap);
    }
    let batch = std::mem::take(&mut *out.borrow_mut());
    if !batch.is_empty() {
        let _ = tx.send(Msg::Ports(batch));
    }
    for (h, r) in rtt.iter().enumerate() {
        let _ = tx.send(Msg::Rtt(h, r.timing()));
    }
    let selfs: u64 = selfc.iter().map(|&n| u64::from(n)).sum();
    if selfs > 0 {
        let _ = tx.send(Msg::SelfConnects(selfs));
    }
    Ok(())
}

struct State<'a, F: Fn(usize, PortState, Reason, Option<Duration>)> {
    tries: &'a mut [u8],
    selfc: &'a mut [u8],
    pending: &'a mut VecDeque<usize>,
    rtt: &'a mut [RttEstimator],
    retry: &'a mut RetryPolicy,
    /// Answers that took far longer than the fastest one: our own queueing.
    late: &'a mut u32,
    min_rtt: &'a mut Duration,
    report: &'a F,
    probes: &'a [usize],
    nports: usize,
}

fn finish_now<F: Fn(usize, PortState, Reason, Option<Duration>)>(
    fd: &OwnedFd,
    li: usize,
    errno: i32,
    started: Instant,
    s: &mut State<'_, F>,
) {
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
            s.selfc[li] += 1;
            outcome = if s.selfc[li] >= SELF_CONNECT_TRIES {
                Outcome::Final(PortState::Closed, Reason::ConnRefused)
            } else {
                Outcome::Again
            };
        }
    }
    match outcome {
        Outcome::Final(state, reason) => {
            let tries = s.tries[li];
            s.retry.answered(tries);
            let h = s.probes[li] / s.nports;
            let d = started.elapsed();
            let rtt = (tries == 1).then_some(d);
            // An answer after a second or more came to the kernel's own SYN retransmit
            // (its first timeout is 1 s): not a round-trip time.
            if tries == 1 && d < Duration::from_millis(950) {
                s.rtt[h].sample(d);
                *s.min_rtt = (*s.min_rtt).min(d);
                if d > (*s.min_rtt * 8).max(Duration::from_millis(2)) {
                    *s.late += 1;
                }
            }
            (s.report)(li, state, reason, rtt);
        }
        Outcome::Again => {
            s.tries[li] = s.tries[li].saturating_sub(1);
            s.pending.push_back(li);
        }
        Outcome::Timeout => {
            if u32::from(s.tries[li]) < s.retry.tries() {
                s.pending.push_back(li);
            } else {
                (s.report)(li, PortState::Filtered, Reason::NoResponse, None);
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
