//! The connect engine: a [`Prober`] of nonblocking `connect()` calls watched by epoll,
//! run in rounds like the SYN and UDP engines (`rounds::run`, or the pipeline for many
//! hosts). A probe is one socket; its answer is the socket's error once epoll says it is
//! done. Sockets in flight are bounded by RLIMIT_NOFILE (the soft limit raised to the
//! hard one first): running out of descriptors, ports or buffers is back-pressure, never
//! a port state. A connection whose local address equals its peer's (a loopback
//! self-connect) is not an open port and is tried again.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use portolan_registry::Proto;

use crate::epoll::Epoll;
use crate::rate::{Controller, RetryPolicy};
use crate::rounds::{self, Engine, Prober, Rounds, Table};
use crate::rtt::RttEstimator;
use crate::sys::{self, RawAddr};
use crate::{HostTiming, PortState, Reason, ScanConfig, ScanError, Sink, io_err, packet};

/// Descriptors kept free for everything else the process does.
const RESERVE_FDS: usize = 32;
/// The most sockets in flight, whatever the limit allows.
const MAX_INFLIGHT: usize = 16_384;
/// How often a self-connect is tried again before the port is called closed.
const SELF_CONNECT_TRIES: u8 = 3;
/// No limit: the connect engine without `--rate` is paced by its sockets in flight.
pub const UNLIMITED: f64 = 1e9;
/// An answer this late came to the kernel's own SYN retransmission (its first timeout is
/// 1 s): the first try was lost.
const KERNEL_RETRANSMIT: Duration = Duration::from_millis(950);
/// The longest a full prober waits for a socket to finish before handing back.
const ROOM_WAIT: Duration = Duration::from_millis(5);

/// Misses in a row after which a connect in progress is no longer checked at once.
const QUICK_MISSES: u32 = 64;
/// Then one attempt in this many is checked, to notice a target that answers at once.
const QUICK_RETRY: u32 = 256;

/// How the connect engine runs its rounds.
pub fn engine() -> Engine {
    Engine {
        proto: Proto::Tcp,
        default_rate: UNLIMITED,
        // The sockets in flight are the congestion window: the rate is only a cap.
        min_rate: |max| max,
        retry_cap: 10,
        rounds: Rounds {
            silent: PortState::Filtered,
            icmp_pacing: false,
        },
    }
}

/// The sockets a scan may hold in flight: what RLIMIT_NOFILE leaves (after raising the
/// soft limit to the hard one), or `--concurrency` if that is lower.
pub fn fd_budget(cfg: &ScanConfig) -> usize {
    let nofile = usize::try_from(sys::raise_nofile()).unwrap_or(usize::MAX);
    let free = nofile
        .saturating_sub(sys::open_fds() + RESERVE_FDS)
        .min(MAX_INFLIGHT);
    cfg.concurrency.map_or(free, |c| c.min(free)).max(1)
}

/// Results a worker sends to the scan's thread at a time: one message per result would
/// cost a futex wake-up each.
const RESULT_BATCH: usize = 256;

/// Connect-scans `ports` of `hosts` (one block); returns each host's smoothed RTT.
///
/// The ports are split among threads (every core, at most 4), each running the rounds
/// on its own share with its own sockets: on a loopback or LAN target the scan is the
/// kernel's work of the syscalls, and that parallelizes. The descriptors and `--rate`
/// are split alike.
pub fn scan(
    cfg: &ScanConfig,
    hosts: &[IpAddr],
    ports: &[u16],
    sink: &mut Sink<'_>,
) -> Result<Vec<Option<HostTiming>>, ScanError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cfg
        .threads
        .unwrap_or(cores.min(4))
        .clamp(1, ports.len().max(1));
    let budget = (fd_budget(cfg) / threads).max(1);
    let rate = cfg
        .rate
        .map_or(UNLIMITED, |r| f64::from(r) / threads as f64);
    if threads == 1 {
        return scan_share(cfg, hosts, ports, budget, rate, sink);
    }
    let (tx, rx) = std::sync::mpsc::channel::<Vec<crate::PortResult>>();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let share: Vec<u16> = ports.iter().skip(k).step_by(threads).copied().collect();
                let tx = tx.clone();
                s.spawn(move || worker(cfg, hosts, &share, budget, rate, &tx))
            })
            .collect();
        drop(tx);
        for rs in rx {
            for r in rs {
                sink.port(r);
            }
        }
        let mut timing: Vec<Option<HostTiming>> = vec![None; hosts.len()];
        for h in handles {
            let (t, selfs) = h.join().unwrap_or_else(|_| {
                Err(ScanError::Io {
                    op: "connect worker",
                    source: io::Error::other("worker thread panicked"),
                })
            })?;
            sink.summary.self_connects += selfs;
            for (a, b) in timing.iter_mut().zip(t) {
                *a = a.or(b);
            }
        }
        Ok(timing)
    })
}

/// One thread's share of a connect scan: its results go to `tx` in batches; returns its
/// hosts' RTTs and how many self-connects it stepped around.
fn worker(
    cfg: &ScanConfig,
    hosts: &[IpAddr],
    ports: &[u16],
    budget: usize,
    rate: f64,
    tx: &std::sync::mpsc::Sender<Vec<crate::PortResult>>,
) -> Result<(Vec<Option<HostTiming>>, u64), ScanError> {
    let mut out = Vec::new();
    let mut on = |e: crate::Event| {
        if let crate::Event::Port(r) = e {
            out.push(r);
            if out.len() >= RESULT_BATCH {
                let _ = tx.send(std::mem::take(&mut out));
            }
        }
    };
    let mut sink = Sink::new(&mut on, 0);
    let timing = scan_share(cfg, hosts, ports, budget, rate, &mut sink)?;
    let selfs = sink.summary.self_connects;
    if !out.is_empty() {
        let _ = tx.send(out);
    }
    Ok((timing, selfs))
}

/// Scans `ports` of `hosts` in rounds with one prober of `budget` sockets at `rate`.
fn scan_share(
    cfg: &ScanConfig,
    hosts: &[IpAddr],
    ports: &[u16],
    budget: usize,
    rate: f64,
    sink: &mut Sink<'_>,
) -> Result<Vec<Option<HostTiming>>, ScanError> {
    let mut p = ConnectProber::new(budget, cfg.rtt.max)?;
    let e = engine();
    // The kernel picks the source address of a connect: none is looked up.
    let srcs = vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED); hosts.len()];
    let mut t = Table::new(
        hosts,
        srcs,
        ports,
        Proto::Tcp,
        RttEstimator::new(cfg.rtt),
        Instant::now(),
        Controller::new(rate, (e.min_rate)(rate)),
        RetryPolicy::new(cfg.max_retries, e.retry_cap),
    );
    rounds::run(&mut t, &mut p, &e.rounds, sink)?;
    Ok(t.rtt.iter().map(RttEstimator::timing).collect())
}

/// How a finished attempt turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Final(PortState, Reason),
    /// A local shortage (ports, buffers): not an answer, and not a try.
    Again,
    /// No answer: the round sends it again if tries are left.
    Silent,
}

fn classify(errno: i32) -> Outcome {
    match errno {
        0 => Outcome::Final(PortState::Open, Reason::SynAck),
        libc::ECONNREFUSED => Outcome::Final(PortState::Closed, Reason::ConnRefused),
        libc::EHOSTUNREACH => Outcome::Final(PortState::Filtered, Reason::HostUnreach),
        libc::ENETUNREACH => Outcome::Final(PortState::Filtered, Reason::NetUnreach),
        libc::EACCES | libc::EPERM => Outcome::Final(PortState::Filtered, Reason::AdminProhibited),
        libc::EADDRNOTAVAIL | libc::ENOBUFS | libc::EAGAIN | libc::ENOMEM => Outcome::Again,
        _ => Outcome::Silent,
    }
}

/// Refines an ICMP-caused failure with the type and code from the socket's error queue.
fn refine(fd: RawFd, o: Outcome) -> Outcome {
    if let Outcome::Final(PortState::Filtered, _) = o
        && let Some(e) = sys::recv_error(fd)
        && (e.icmp_type != 0 || e.v6)
    {
        // A port-unreachable to a TCP SYN stays filtered, as nmap has it: the host
        // refuses, but not as TCP does.
        let r = packet::icmp_reason(e.v6, e.icmp_type, e.icmp_code);
        return Outcome::Final(PortState::Filtered, r);
    }
    o
}

/// A socket in flight.
struct Conn {
    fd: OwnedFd,
    host: IpAddr,
    port: u16,
    started: Instant,
    timeout: Duration,
    generation: u32,
}

/// A finished attempt, waiting for `receive` to take it to its table.
struct Done {
    host: IpAddr,
    port: u16,
    outcome: Outcome,
    /// Answered after the kernel's own retransmission.
    late: bool,
}

/// What starting one attempt came to.
enum Start {
    Sent,
    /// Out of descriptors, ports or buffers: stop sending for now.
    Shortage,
}

/// The sockets in flight of one scan (or one pipeline stage) and what became of them.
pub struct ConnectProber {
    ep: Epoll,
    slots: Vec<Option<Conn>>,
    free: Vec<u32>,
    generation: u32,
    /// Deadlines of the sockets in flight, earliest first: (deadline, slot, generation).
    deadlines: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    inflight: usize,
    /// In flight at most: `max_cap` is the descriptor budget, `cap` what the last
    /// shortage left (growing back by one per finished socket).
    cap: usize,
    max_cap: usize,
    /// The longest any socket waits.
    rtt_max: Duration,
    done: Vec<Done>,
    ready: Vec<u64>,
    self_tries: HashMap<(IpAddr, u16), u8>,
    self_connects: u64,
    /// Attempts started, and how many in a row were not answered at once.
    starts: u32,
    quick_misses: u32,
}

impl ConnectProber {
    /// A prober that keeps at most `budget` sockets in flight, none longer than `rtt_max`.
    pub fn new(budget: usize, rtt_max: Duration) -> Result<ConnectProber, ScanError> {
        Ok(ConnectProber {
            ep: Epoll::new(1024).map_err(io_err("epoll_create"))?,
            slots: Vec::new(),
            free: Vec::new(),
            generation: 0,
            deadlines: BinaryHeap::new(),
            inflight: 0,
            cap: budget.max(1),
            max_cap: budget.max(1),
            rtt_max,
            done: Vec::new(),
            ready: Vec::new(),
            self_tries: HashMap::new(),
            self_connects: 0,
            starts: 0,
            quick_misses: 0,
        })
    }

    /// Starts one attempt: a nonblocking connect, finished at once or watched by epoll.
    fn start(&mut self, host: IpAddr, port: u16, timeout: Duration) -> io::Result<Start> {
        let fd = match sys::socket(sys::domain_of(host), libc::SOCK_STREAM, 0) {
            Ok(fd) => fd,
            Err(e) if is_shortage(&e) => return Ok(self.shortage()),
            Err(e) => return Err(e),
        };
        let _ = sys::enable_recverr(fd.as_raw_fd(), host.is_ipv6());
        let started = Instant::now();
        // Finished at once (refused, unreachable, or connected on loopback): the errno,
        // 0 for a connection.
        let errno = match sys::connect(fd.as_raw_fd(), &RawAddr::new((host, port).into())) {
            Ok(true) => 0,
            Ok(false) => match self.answered_at_once(fd.as_raw_fd()) {
                Some(errno) => errno,
                None => return self.watch(fd, host, port, started, timeout),
            },
            Err(e) => e.raw_os_error().unwrap_or(libc::EIO),
        };
        if classify(errno) == Outcome::Again {
            // Out of local ports or buffers: nothing was sent.
            return Ok(self.shortage());
        }
        self.finished(&fd, host, port, errno, started, timeout)?;
        Ok(Start::Sent)
    }

    /// The errno of a connect in progress that has already failed (on loopback or a
    /// veth the peer's RST is taken in before `connect` returns): it then needs no epoll
    /// watch. Tried while it pays: after `QUICK_MISSES` misses in a row, only every
    /// `QUICK_RETRY`th attempt, so a remote target costs one syscall in that many.
    fn answered_at_once(&mut self, fd: RawFd) -> Option<i32> {
        self.starts = self.starts.wrapping_add(1);
        if self.quick_misses >= QUICK_MISSES && self.starts % QUICK_RETRY != 0 {
            return None;
        }
        match sys::sock_error(fd) {
            Ok(errno) if errno != 0 => {
                self.quick_misses = 0;
                Some(errno)
            }
            _ => {
                self.quick_misses = self.quick_misses.saturating_add(1);
                None
            }
        }
    }

    /// Notes a shortage of descriptors, ports or buffers: what is in flight now is the
    /// limit until sockets finish.
    fn shortage(&mut self) -> Start {
        self.cap = self.inflight.max(1);
        Start::Shortage
    }

    /// Watches a connect in progress until it finishes or its timeout passes.
    fn watch(
        &mut self,
        fd: OwnedFd,
        host: IpAddr,
        port: u16,
        started: Instant,
        timeout: Duration,
    ) -> io::Result<Start> {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            (self.slots.len() - 1) as u32
        });
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        let token = (u64::from(generation) << 32) | u64::from(slot);
        self.ep.add_writable(&fd, token)?;
        self.deadlines
            .push(Reverse((started + timeout, slot, generation)));
        self.slots[slot as usize] = Some(Conn {
            fd,
            host,
            port,
            started,
            timeout,
            generation,
        });
        self.inflight += 1;
        Ok(Start::Sent)
    }

    /// Takes a finished attempt's errno to its outcome; a self-connect is tried again at
    /// once.
    fn finished(
        &mut self,
        fd: &OwnedFd,
        host: IpAddr,
        port: u16,
        errno: i32,
        started: Instant,
        timeout: Duration,
    ) -> io::Result<()> {
        let fd = fd.as_raw_fd();
        let mut outcome = refine(fd, classify(errno));
        if errno == 0 {
            // Close an open connection with RST: no TIME_WAIT left on either side.
            let linger = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            let _ = sys::setsockopt(fd, libc::SOL_SOCKET, libc::SO_LINGER, &linger);
            let local = sys::local_name(fd);
            if local.is_some() && local == sys::peer_name(fd) {
                // Connected to itself: nothing listens there.
                self.self_connects += 1;
                let n = self.self_tries.entry((host, port)).or_insert(0);
                *n += 1;
                if *n < SELF_CONNECT_TRIES {
                    self.start(host, port, timeout)?;
                    return Ok(());
                }
                outcome = Outcome::Final(PortState::Closed, Reason::ConnRefused);
            }
        }
        if let Outcome::Final(..) = outcome {
            self.self_tries.remove(&(host, port));
        }
        self.done.push(Done {
            host,
            port,
            outcome,
            late: started.elapsed() >= KERNEL_RETRANSMIT,
        });
        Ok(())
    }

    /// Takes in the sockets epoll reports done (waiting up to `wait` for the first), and
    /// closes the ones past their deadline.
    fn collect(&mut self, wait: Duration) -> io::Result<()> {
        if self.inflight == 0 {
            return Ok(());
        }
        let mut ready = std::mem::take(&mut self.ready);
        ready.clear();
        ready.extend(self.ep.wait(wait)?);
        for &token in &ready {
            let slot = (token & 0xffff_ffff) as u32;
            if let Some(c) = self.take(slot, (token >> 32) as u32) {
                let errno = sys::sock_error(c.fd.as_raw_fd()).unwrap_or(libc::EIO);
                self.finished(&c.fd, c.host, c.port, errno, c.started, c.timeout)?;
            }
        }
        self.ready = ready;
        self.expire();
        Ok(())
    }

    /// Closes the sockets past their deadline: silence, which the rounds send again.
    fn expire(&mut self) {
        let now = Instant::now();
        while let Some(&Reverse((deadline, slot, g))) = self.deadlines.peek() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            drop(self.take(slot, g));
        }
    }

    /// Takes the socket of `slot` out of flight, if it is still generation `g`.
    fn take(&mut self, slot: u32, g: u32) -> Option<Conn> {
        let s = self.slots.get_mut(slot as usize)?;
        if s.as_ref().is_none_or(|c| c.generation != g) {
            return None;
        }
        let c = s.take();
        self.free.push(slot);
        self.inflight -= 1;
        if self.cap < self.max_cap {
            self.cap += 1;
        }
        c
    }

    /// Waits (a little) for a socket in flight to finish.
    fn wait_for_room(&mut self) -> io::Result<()> {
        let now = Instant::now();
        let next = self
            .deadlines
            .peek()
            .map_or(ROOM_WAIT, |d| d.0.0.saturating_duration_since(now));
        // epoll waits whole milliseconds: round up, or a near deadline spins.
        let wait = next.min(ROOM_WAIT).max(Duration::from_millis(1));
        self.collect(wait)
    }

    /// Takes every finished attempt to the probe it belongs to, in whichever table holds
    /// it.
    fn deliver(&mut self, ts: &mut [&mut Table], sink: &mut Sink<'_>) {
        for d in self.done.drain(..) {
            let Some((t, i)) = ts
                .iter_mut()
                .find_map(|t| t.lookup(d.host, d.port).map(|i| (t, i)))
            else {
                continue;
            };
            if t.done[i] {
                continue;
            }
            match d.outcome {
                Outcome::Final(state, reason) => {
                    if d.late && t.tries[i] == 1 {
                        // The kernel's second SYN was answered, not ours: no RTT sample.
                        t.tries[i] = 2;
                    }
                    let icmp = state == PortState::Filtered;
                    t.finish(i, state, reason, None, icmp, sink);
                }
                Outcome::Again => t.tries[i] = t.tries[i].saturating_sub(1),
                Outcome::Silent => {}
            }
        }
    }
}

fn is_shortage(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

impl Prober for ConnectProber {
    fn send(&mut self, t: &Table, batch: &[usize]) -> io::Result<usize> {
        // Both drivers call `receive` before each batch: the finished sockets are taken
        // in there, and here only when full.
        let mut n = 0;
        let mut waited = false;
        while n < batch.len() {
            if self.inflight >= self.cap {
                // Full: wait once for room, then hand back what went out.
                if waited {
                    break;
                }
                waited = true;
                self.wait_for_room()?;
                continue;
            }
            let q = batch[n];
            let h = t.host_of(q);
            // Back off like TCP: each retry waits twice as long, so a slow answer (a
            // loaded host) is not taken for a lost one.
            let backoff = 1u32 << u32::from(t.tries[q]).min(2);
            let timeout = (t.rtt[h].timeout() * backoff).min(self.rtt_max);
            match self.start(t.hosts[h], t.port_of(q), timeout)? {
                Start::Sent => n += 1,
                Start::Shortage => break,
            }
        }
        Ok(n)
    }

    fn receive(&mut self, ts: &mut [&mut Table], sink: &mut Sink<'_>) -> io::Result<()> {
        self.collect(Duration::ZERO)?;
        sink.summary.self_connects += std::mem::take(&mut self.self_connects);
        self.deliver(ts, sink);
        Ok(())
    }

    fn fds(&self) -> Vec<RawFd> {
        vec![self.ep.as_raw_fd()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A nonblocking connect to a closed loopback port: in progress, its RST already in.
    fn refused_socket(port: u16) -> OwnedFd {
        let host = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let fd = sys::socket(sys::domain_of(host), libc::SOCK_STREAM, 0).unwrap();
        let r = sys::connect(fd.as_raw_fd(), &RawAddr::new((host, port).into()));
        assert!(matches!(r, Ok(false)), "connect to a closed port: {r:?}");
        fd
    }

    fn closed_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    #[test]
    fn refused_connect_is_answered_at_once_until_misses_pile_up() {
        let port = closed_port();
        let mut p = ConnectProber::new(16, Duration::from_secs(1)).unwrap();
        let fd = refused_socket(port);
        assert_eq!(p.answered_at_once(fd.as_raw_fd()), Some(libc::ECONNREFUSED));
        // A socket still connecting (here: never connected) is a miss.
        let idle = sys::socket(libc::AF_INET, libc::SOCK_STREAM, 0).unwrap();
        for _ in 0..QUICK_MISSES {
            assert_eq!(p.answered_at_once(idle.as_raw_fd()), None);
        }
        // Then it is checked only once in QUICK_RETRY attempts: answered sockets go
        // unseen until that check, whose hit resumes checking every attempt.
        let mut unseen = 0;
        loop {
            let fd = refused_socket(port);
            if p.answered_at_once(fd.as_raw_fd()).is_some() {
                break;
            }
            unseen += 1;
            assert!(unseen < QUICK_RETRY, "never checked again");
        }
        assert!(unseen > QUICK_RETRY / 2, "checked again after {unseen}");
        let fd = refused_socket(port);
        assert_eq!(p.answered_at_once(fd.as_raw_fd()), Some(libc::ECONNREFUSED));
    }
}
