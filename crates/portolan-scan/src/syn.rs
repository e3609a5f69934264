//! The SYN engine: hand-built SYNs on raw sockets, sent with sendmmsg; replies read on
//! the same raw sockets (behind a BPF filter on our source port) and validated by the
//! cookie in the sequence number. No state per connection exists, and no handshake is
//! completed: the kernel answers a SYN-ACK with RST, as no socket owns it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use portolan_registry::Proto;

use crate::packet::{
    self, CookieKey, Icmp, SYN_LEN, TCP_ACK, TCP_RST, TCP_SYN, build_echo, build_syn,
};
use crate::rounds::{self, Engine, Prober, Rounds, Table};
use crate::sys::{self, Outgoing, RawAddr};
use crate::{PortState, Reason, ScanConfig, ScanError, Sink, io_err};

/// The rate cap when the user gives none: fast enough for a LAN, and the controller cuts
/// it when answers fall away.
pub const DEFAULT_RATE: f64 = 400_000.0;

/// Source ports per scan.
const SOURCE_PORTS: usize = 8;

/// Raw sockets and the secret for one scan.
pub struct SynProber {
    key: CookieKey,
    /// Our source ports, one per try (cycling): a retry comes from a new port, so the
    /// target's half-open state from an earlier try cannot swallow it.
    sports: Vec<u16>,
    _reserve: Vec<TcpListenerGuard>,
    tcp4: Option<OwnedFd>,
    tcp6: Option<OwnedFd>,
    icmp4: Option<OwnedFd>,
    icmp6: Option<OwnedFd>,
    dests: Vec<RawAddr>,
    pkts: Vec<[u8; SYN_LEN]>,
    rbuf: Vec<u8>,
    batch: sys::RecvBatch,
    /// Discovery: send an ICMP echo with the first port's probe; the table's `disc`
    /// notes who answers.
    pub echo: Option<u16>,
}

/// A bound, never-listening TCP socket that keeps our source port from being handed to
/// anyone else while the scan runs.
struct TcpListenerGuard(#[allow(dead_code)] OwnedFd);

fn reserve_port(v6: bool) -> io::Result<(u16, TcpListenerGuard)> {
    // Binding without listening reserves the port; a SYN-ACK to it still gets a RST.
    let fam = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    let fd = sys::socket(fam, libc::SOCK_STREAM, 0)?;
    if v6 {
        let off: libc::c_int = 0;
        let _ = sys::setsockopt(fd.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, &off);
    }
    let any: SocketAddr = if v6 {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    sys::bind(fd.as_raw_fd(), any)?;
    let port = sys::local_name(fd.as_raw_fd())
        .map(|s| s.port())
        .ok_or_else(|| io::Error::other("getsockname"))?;
    Ok((port, TcpListenerGuard(fd)))
}

fn raw(fam: libc::c_int, proto: libc::c_int) -> Result<OwnedFd, ScanError> {
    sys::socket(fam, libc::SOCK_RAW, proto).map_err(|e| {
        if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
            ScanError::NeedRaw
        } else {
            ScanError::Io {
                op: "raw socket",
                source: e,
            }
        }
    })
}

impl SynProber {
    /// Sockets for the families asked for.
    pub fn new(any4: bool, any6: bool) -> Result<SynProber, ScanError> {
        let mut sports = Vec::new();
        let mut guards = Vec::new();
        for _ in 0..SOURCE_PORTS {
            let (port, guard) = reserve_port(true)
                .or_else(|_| reserve_port(false))
                .map_err(io_err("reserve a source port"))?;
            sports.push(port);
            guards.push(guard);
        }
        let mut p = SynProber {
            key: CookieKey::new(),
            sports: sports.clone(),
            _reserve: guards,
            tcp4: None,
            tcp6: None,
            icmp4: None,
            icmp6: None,
            dests: Vec::with_capacity(rounds::BATCH),
            pkts: vec![[0; SYN_LEN]; rounds::BATCH],
            rbuf: vec![0; 4096],
            batch: sys::RecvBatch::new(64),
            echo: None,
        };
        for (want, v6) in [(any4, false), (any6, true)] {
            if !want {
                continue;
            }
            let (fam, icmp) = if v6 {
                (libc::AF_INET6, libc::IPPROTO_ICMPV6)
            } else {
                (libc::AF_INET, libc::IPPROTO_ICMP)
            };
            let t = raw(fam, libc::IPPROTO_TCP)?;
            if !v6 {
                // Don't fragment, as a TCP stack sends: the kernel then skips choosing an
                // IP ID per packet (a shared, hashed counter).
                let _ = sys::setsockopt(
                    t.as_raw_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_MTU_DISCOVER,
                    &libc::IP_PMTUDISC_DO,
                );
            }
            sys::attach_filter(t.as_raw_fd(), &packet::tcp_port_filter(v6, &sports))
                .map_err(io_err("attach BPF filter"))?;
            sys::big_rcvbuf(t.as_raw_fd(), 32 << 20);
            let i = raw(fam, icmp)?;
            sys::big_rcvbuf(i.as_raw_fd(), 4 << 20);
            if v6 {
                (p.tcp6, p.icmp6) = (Some(t), Some(i));
            } else {
                (p.tcp4, p.icmp4) = (Some(t), Some(i));
            }
        }
        Ok(p)
    }

    fn handle_tcp(&mut self, ts: &mut [&mut Table], seg: packet::TcpSeen, sink: &mut Sink<'_>) {
        if !self.sports.contains(&seg.dport) {
            return;
        }
        let Some((t, i)) = ts
            .iter_mut()
            .find_map(|t| t.lookup(seg.src, seg.sport).map(|i| (t, i)))
        else {
            return;
        };
        let h = t.host_of(i);
        let src = t.srcs[h];
        if seg.dst != src && !seg.dst.is_unspecified() {
            return;
        }
        let cookie = self.key.cookie(src, seg.src, seg.dport, seg.sport);
        if seg.ack != cookie.wrapping_add(1) {
            return;
        }
        let ttl = Some(seg.ttl).filter(|&t| t > 0);
        if seg.flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK {
            t.finish(i, PortState::Open, Reason::SynAck, ttl, false, sink);
        } else if seg.flags & TCP_RST != 0 {
            t.finish(i, PortState::Closed, Reason::Reset, ttl, false, sink);
        }
    }

    fn handle_icmp(&mut self, ts: &mut [&mut Table], m: Icmp, sink: &mut Sink<'_>) {
        match m {
            Icmp::EchoReply { from, id, .. } => {
                if Some(id) != self.echo {
                    return;
                }
                let Some((t, h)) = ts
                    .iter_mut()
                    .find_map(|t| t.host_index(from).map(|h| (t, h)))
                else {
                    return;
                };
                let sent = t.sent_us[h * t.ports.len()];
                let now = t.now_us();
                if let Some(d) = &mut t.disc
                    && d.echo[h].is_none()
                {
                    d.echo[h] = Some(Duration::from_micros(now.saturating_sub(sent)));
                }
            }
            Icmp::Error(e) => {
                if e.proto != 6 || !self.sports.contains(&e.sport) {
                    return;
                }
                let Some((t, i)) = ts
                    .iter_mut()
                    .find_map(|t| t.lookup(e.dst, e.dport).map(|i| (t, i)))
                else {
                    return;
                };
                let src = t.srcs[t.host_of(i)];
                if Some(self.key.cookie(src, e.dst, e.sport, e.dport)) != e.seq {
                    return;
                }
                let reason = packet::icmp_reason(e.v6, e.icmp_type, e.code);
                t.finish(i, PortState::Filtered, reason, None, true, sink);
            }
        }
    }
}

fn drain(fd: Option<&OwnedFd>, buf: &mut [u8], mut f: impl FnMut(&[u8], Option<SocketAddr>)) {
    let Some(fd) = fd else { return };
    // Bounded, so one flood cannot starve the sender.
    for _ in 0..4096 {
        match sys::recv_from(fd.as_raw_fd(), buf) {
            Ok(Some((n, from))) => f(&buf[..n], from),
            Ok(None) | Err(_) => break,
        }
    }
}

impl Prober for SynProber {
    fn send(&mut self, t: &Table, batch: &[usize]) -> io::Result<usize> {
        // Send runs of one address family at a time.
        let v6 = t.hosts[t.host_of(batch[0])].is_ipv6();
        let run = batch
            .iter()
            .take_while(|&&q| t.hosts[t.host_of(q)].is_ipv6() == v6)
            .count()
            .min(self.pkts.len());
        let fd = if v6 { &self.tcp6 } else { &self.tcp4 };
        let Some(fd) = fd else {
            return Err(io::Error::other("no raw socket for the address family"));
        };
        self.dests.clear();
        for (k, &q) in batch[..run].iter().enumerate() {
            let h = t.host_of(q);
            let port = t.port_of(q);
            let sport = self.sports[usize::from(t.tries[q]) % self.sports.len()];
            let seq = self.key.cookie(t.srcs[h], t.hosts[h], sport, port);
            build_syn(&mut self.pkts[k], t.srcs[h], t.hosts[h], sport, port, seq);
            self.dests.push(RawAddr::new((t.hosts[h], 0).into()));
        }
        let out: Vec<Outgoing<'_>> = (0..run)
            .map(|k| Outgoing {
                buf: &self.pkts[k],
                to: &self.dests[k],
            })
            .collect();
        let n = sys::send_batch(fd.as_raw_fd(), &out)?;
        if let Some(id) = self.echo {
            for &q in &batch[..n] {
                if q % t.ports.len() == 0 {
                    let h = t.host_of(q);
                    let (sock, v6) = if t.hosts[h].is_ipv6() {
                        (&self.icmp6, true)
                    } else {
                        (&self.icmp4, false)
                    };
                    if let Some(s) = sock {
                        let e = build_echo(v6, id, t.tries[q].into());
                        let to = RawAddr::new((t.hosts[h], 0).into());
                        let _ = sys::send_to(s.as_raw_fd(), &e, &to);
                    }
                }
            }
        }
        Ok(n)
    }

    fn receive(&mut self, ts: &mut [&mut Table], sink: &mut Sink<'_>) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.rbuf);
        let mut segs = Vec::new();
        for (fd, v6) in [(&self.tcp4, false), (&self.tcp6, true)] {
            let Some(fd) = fd else { continue };
            // Bounded, so one flood cannot starve the sender.
            for _ in 0..64 {
                let n = sys::recv_batch(fd.as_raw_fd(), &mut self.batch).unwrap_or(0);
                for k in 0..n {
                    let data = &self.batch.bufs[k][..self.batch.lens[k]];
                    let seg = if v6 {
                        let unspec = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
                        self.batch.addrs[k]
                            .get()
                            .and_then(|from| packet::parse_tcp(data, from.ip(), unspec, 0))
                    } else {
                        packet::parse_tcp_v4(data)
                    };
                    segs.extend(seg);
                }
                if n < self.batch.bufs.len() {
                    break;
                }
            }
        }
        let mut icmps = Vec::new();
        drain(self.icmp4.as_ref(), &mut buf, |b, _| {
            if let Some(m) = packet::parse_icmp_v4(b) {
                icmps.push(m);
            }
        });
        drain(self.icmp6.as_ref(), &mut buf, |b, from| {
            if let Some(from) = from
                && let Some(m) = packet::parse_icmp_v6(b, from.ip())
            {
                icmps.push(m);
            }
        });
        self.rbuf = buf;
        for s in segs {
            self.handle_tcp(ts, s, sink);
        }
        for m in icmps {
            self.handle_icmp(ts, m, sink);
        }
        Ok(())
    }

    fn fds(&self) -> Vec<RawFd> {
        [&self.tcp4, &self.tcp6, &self.icmp4, &self.icmp6]
            .into_iter()
            .flatten()
            .map(AsRawFd::as_raw_fd)
            .collect()
    }
}

/// SYN-scans `ports` of `hosts`; returns each host's smoothed RTT.
pub fn scan(
    cfg: &ScanConfig,
    hosts: &[IpAddr],
    ports: &[u16],
    sink: &mut Sink<'_>,
) -> Result<Vec<Option<crate::HostTiming>>, ScanError> {
    rounds::scan_with(cfg, hosts, ports, SynProber::new, &engine(), sink)
}

/// How the SYN engine runs its rounds.
pub fn engine() -> Engine {
    Engine {
        proto: Proto::Tcp,
        default_rate: DEFAULT_RATE,
        min_rate: |max| (max / 64.0).min(1000.0),
        retry_cap: 10,
        rounds: Rounds {
            silent: PortState::Filtered,
            icmp_pacing: false,
        },
    }
}
