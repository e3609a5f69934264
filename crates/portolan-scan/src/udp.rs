//! The UDP engine: one unconnected UDP socket per address family with IP_RECVERR, so the
//! kernel hands back both the answers and the ICMP errors with the probe's destination.
//! Works with or without privileges.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use portolan_registry::Proto;

use crate::rounds::{self, Engine, Prober, Rounds, Table};
use crate::sys::{self, RawAddr};
use crate::{PortState, Reason, ScanConfig, ScanError, Sink, io_err, packet, payload};

/// Start at this rate; ICMP error pacing slows later rounds to what the target allows.
pub const DEFAULT_RATE: f64 = 5_000.0;

pub struct UdpProber {
    s4: Option<OwnedFd>,
    s6: Option<OwnedFd>,
    rbuf: Vec<u8>,
}

fn udp_socket(v6: bool) -> Result<OwnedFd, ScanError> {
    let fam = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    let fd = sys::socket(fam, libc::SOCK_DGRAM, 0).map_err(io_err("UDP socket"))?;
    sys::enable_recverr(fd.as_raw_fd(), v6).map_err(io_err("IP_RECVERR"))?;
    sys::big_rcvbuf(fd.as_raw_fd(), 4 << 20);
    let any: SocketAddr = if v6 {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    sys::bind(fd.as_raw_fd(), any).map_err(io_err("bind UDP socket"))?;
    Ok(fd)
}

impl Prober for UdpProber {
    fn send(&mut self, t: &Table, batch: &[usize]) -> io::Result<usize> {
        let mut n = 0;
        for &q in batch {
            let h = t.host_of(q);
            let host = t.hosts[h];
            let port = t.port_of(q);
            let fd = if host.is_ipv6() { &self.s6 } else { &self.s4 };
            let Some(fd) = fd else {
                return Err(io::Error::other("no UDP socket for the address family"));
            };
            let data = payload::for_port(port, t.tries[q].saturating_add(1));
            match sys::send_to(fd.as_raw_fd(), &data, &RawAddr::new((host, port).into())) {
                Ok(true) => n += 1,
                Ok(false) => break,
                // A local refusal (a firewall on this host): count it as sent; it stays
                // unanswered.
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => n += 1,
                // An ICMP error queued earlier is reported instead of sending: the
                // caller reads the error queue and sends this probe again.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(
                            libc::ECONNREFUSED
                                | libc::EHOSTUNREACH
                                | libc::ENETUNREACH
                                | libc::EACCES
                                | libc::EPROTO
                        )
                    ) =>
                {
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    fn receive(&mut self, ts: &mut [&mut Table], sink: &mut Sink<'_>) -> io::Result<()> {
        let find = |ts: &mut [&mut Table], ip: IpAddr, port: u16| {
            ts.iter().position(|t| t.lookup(ip, port).is_some())
        };
        for fd in [&self.s4, &self.s6].into_iter().flatten() {
            let fd = fd.as_raw_fd();
            for _ in 0..4096 {
                match sys::recv_from(fd, &mut self.rbuf)? {
                    None => break,
                    Some((_, None)) => {}
                    Some((n, Some(from))) => {
                        let mut port = from.port();
                        let mut k = find(ts, from.ip(), port);
                        // TFTP answers from a new port: DATA (3) or ERROR (5).
                        if k.is_none()
                            && n >= 4
                            && self.rbuf[0] == 0
                            && matches!(self.rbuf[1], 3 | 5)
                        {
                            port = 69;
                            k = find(ts, from.ip(), port);
                        }
                        if let Some(k) = k {
                            let t = &mut *ts[k];
                            if let Some(i) = t.lookup(from.ip(), port) {
                                t.finish(
                                    i,
                                    PortState::Open,
                                    Reason::UdpResponse,
                                    None,
                                    false,
                                    sink,
                                );
                            }
                        }
                    }
                }
            }
            while let Some(e) = sys::recv_error(fd) {
                let Some(dest) = e.dest else { continue };
                if e.icmp_type == 0 && e.icmp_code == 0 && !e.v6 {
                    continue;
                }
                let Some((t, i)) = ts
                    .iter_mut()
                    .find_map(|t| t.lookup(dest.ip(), dest.port()).map(|i| (t, i)))
                else {
                    continue;
                };
                let reason = packet::icmp_reason(e.v6, e.icmp_type, e.icmp_code);
                let state = if reason == Reason::PortUnreach {
                    PortState::Closed
                } else {
                    PortState::Filtered
                };
                t.finish(i, state, reason, None, true, sink);
            }
        }
        Ok(())
    }

    fn fds(&self) -> Vec<RawFd> {
        [&self.s4, &self.s6]
            .into_iter()
            .flatten()
            .map(AsRawFd::as_raw_fd)
            .collect()
    }
}

/// UDP-scans `ports` of `hosts`; returns each host's smoothed RTT.
pub fn scan(
    cfg: &ScanConfig,
    hosts: &[IpAddr],
    ports: &[u16],
    sink: &mut Sink<'_>,
) -> Result<Vec<Option<crate::HostTiming>>, ScanError> {
    rounds::scan_with(cfg, hosts, ports, UdpProber::new, &engine(), sink)
}

impl UdpProber {
    /// Sockets for the families asked for.
    pub fn new(any4: bool, any6: bool) -> Result<UdpProber, ScanError> {
        let mut p = UdpProber {
            s4: None,
            s6: None,
            rbuf: vec![0; 65536],
        };
        if any4 {
            p.s4 = Some(udp_socket(false)?);
        }
        if any6 {
            p.s6 = Some(udp_socket(true)?);
        }
        Ok(p)
    }
}

/// How the UDP engine runs its rounds.
pub fn engine() -> Engine {
    Engine {
        proto: Proto::Udp,
        default_rate: DEFAULT_RATE,
        min_rate: |max| max.min(10.0),
        retry_cap: 6,
        rounds: Rounds {
            silent: PortState::OpenFiltered,
            icmp_pacing: true,
        },
    }
}
