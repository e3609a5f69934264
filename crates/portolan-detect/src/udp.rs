//! UDP detection: protocol payloads turn silence into an answer. The payload the port
//! suggests goes first; the others follow at once, each from its own socket, and the
//! first reply that parses wins.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, timeout_at};

use crate::proto;
use crate::{Detection, Detector, Options, printable};

use portolan_payload::Kind as Probe;

/// The payload to try first: the well-known port's, or the alternative ports the test
/// bed and many unprivileged daemons use.
fn hint(port: u16) -> Option<Probe> {
    Probe::for_port(port).or(match port {
        5053 => Some(Probe::Dns),
        1161 => Some(Probe::Snmp),
        6969 => Some(Probe::Tftp),
        6767 => Some(Probe::Dhcp),
        _ => None,
    })
}

/// What one probe learned: a detection, or that the port is closed.
#[allow(clippy::large_enum_variant)]
enum Heard {
    Found(Detection),
    Closed,
    Nothing,
}

pub async fn detect(det: &Detector, addr: SocketAddr, opts: &Options) -> Detection {
    let first = hint(addr.port());
    let mut set = JoinSet::new();
    if let Some(p) = first {
        let (det, opts) = (det.clone(), opts.clone());
        set.spawn(async move { probe(&det, p, addr, &opts).await });
    }
    // The others start a little later, so that the likely one usually answers alone.
    let delay = if first.is_some() {
        opts.timeout / 4
    } else {
        Duration::ZERO
    };
    for p in Probe::ALL.into_iter().filter(|p| Some(*p) != first) {
        let (det, opts) = (det.clone(), opts.clone());
        set.spawn(async move {
            sleep(delay).await;
            probe(&det, p, addr, &opts).await
        });
    }
    let mut closed = false;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Heard::Found(d)) => {
                set.abort_all();
                return d;
            }
            // On a closed port every probe gets the ICMP port unreachable at once, so
            // waiting for the others costs nothing there. An open server that drops its
            // socket for a moment (tftpd-hpa between requests) may refuse one probe
            // while another gets its answer: one refusal does not stop the rest.
            Ok(Heard::Closed) => closed = true,
            _ => {}
        }
    }
    Detection::nothing(if closed {
        "closed (ICMP port unreachable)"
    } else {
        "no reply (open|filtered)"
    })
}

/// A detection from a parsed reply (its product from the parser or the signatures).
fn heard(det: &Detector, h: crate::service::Heard) -> Detection {
    let mut d = found(h.protocol, h.evidence);
    d.unauthenticated = h.unauthenticated;
    if !h.transcript.is_empty() {
        det.identify(&mut d, &h.transcript);
    }
    if h.product.is_some() {
        d.product = h.product;
        d.version = h.version;
    }
    d
}

fn found(protocol: &str, evidence: String) -> Detection {
    Detection {
        protocol: Some(protocol.to_string()),
        cleartext: true,
        evidence: printable(evidence.as_bytes(), 160),
        ..Detection::default()
    }
}

/// A number that differs between runs and probes, for transaction IDs.
fn nonce() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    t ^ std::process::id().rotate_left(16)
}

async fn bind_for(addr: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    UdpSocket::bind(local).await
}

/// Sends `req` (again halfway through the wait, in case one was lost) and returns the
/// first reply `parse` accepts. `connected` sockets see ICMP port unreachable as an
/// error; unconnected ones accept replies from any port of the target (TFTP answers
/// from a new port).
async fn exchange<T>(
    sock: &UdpSocket,
    addr: SocketAddr,
    connected: bool,
    req: &[u8],
    wait: Duration,
    parse: impl Fn(&[u8]) -> Option<T>,
) -> Result<Option<T>, io::Error> {
    let deadline = Instant::now() + wait;
    let resend = Instant::now() + wait / 2;
    let mut sent_twice = false;
    let send = async |sock: &UdpSocket| {
        if connected {
            sock.send(req).await.map(drop)
        } else {
            sock.send_to(req, addr).await.map(drop)
        }
    };
    send(sock).await?;
    let mut buf = vec![0u8; 8192];
    loop {
        let until = if sent_twice { deadline } else { resend };
        match timeout_at(until, sock.recv_from(&mut buf)).await {
            Err(_) if !sent_twice => {
                sent_twice = true;
                send(sock).await?;
            }
            Err(_) => return Ok(None),
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => return Err(e),
            Ok(Err(_)) => return Ok(None),
            Ok(Ok((n, from))) => {
                if from.ip() != addr.ip() {
                    continue;
                }
                if let Some(v) = parse(&buf[..n]) {
                    return Ok(Some(v));
                }
            }
        }
    }
}

async fn probe(det: &Detector, p: Probe, addr: SocketAddr, opts: &Options) -> Heard {
    let r = match p {
        Probe::Dhcp => dhcp(addr, opts).await,
        _ => simple(det, p, addr, opts).await,
    };
    match r {
        Ok(Some(d)) => Heard::Found(d),
        Ok(None) => Heard::Nothing,
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Heard::Closed,
        Err(_) => Heard::Nothing,
    }
}

async fn simple(
    det: &Detector,
    p: Probe,
    addr: SocketAddr,
    opts: &Options,
) -> io::Result<Option<Detection>> {
    let sock = bind_for(addr).await?;
    let n = nonce();
    let id = (n & 0xffff) as u16;
    let wait = opts.timeout;
    match p {
        Probe::Dns => {
            sock.connect(addr).await?;
            let q = proto::dns_version_query(id, false);
            let r = exchange(&sock, addr, true, &q, wait, |b| proto::dns_parse(id, b)).await?;
            Ok(r.map(|r| crate::tcp::dns_detection(det, &r)))
        }
        Probe::Ntp => {
            sock.connect(addr).await?;
            let sent = Instant::now();
            let Some(r) = exchange(
                &sock,
                addr,
                true,
                &proto::ntp_request(),
                wait,
                proto::ntp_parse,
            )
            .await?
            else {
                return Ok(None);
            };
            let rtt = sent.elapsed();
            let mut text = format!(
                "version: {}\nstratum: {}\nrefid: {}\nleap: {}\n",
                r.version, r.stratum, r.refid, r.leap
            );
            // ntpd names itself in mode 6; other servers stay silent, which costs a
            // few round trips only.
            // At least 100 ms, never past the timeout (which may be shorter).
            let grace = (rtt * 8).max(Duration::from_millis(100)).min(wait);
            let vars = exchange(
                &sock,
                addr,
                true,
                &proto::ntp_readvar(id),
                grace,
                proto::ntp_readvar_parse,
            )
            .await
            .ok()
            .flatten();
            if let Some(v) = &vars {
                text.push_str(v);
                text.push('\n');
            }
            let mut d = found(
                "ntp",
                format!(
                    "NTPv{} stratum {} refid {}{}",
                    r.version,
                    r.stratum,
                    r.refid,
                    if r.leap == 3 { " (unsynchronised)" } else { "" }
                ),
            );
            det.identify(&mut d, &text);
            Ok(Some(d))
        }
        Probe::Snmp => {
            sock.connect(addr).await?;
            let req = (n & 0x7fff_ffff) as i32;
            let oids: [&[u32]; 3] = [
                &proto::SYS_DESCR,
                &proto::SYS_OBJECT_ID,
                &proto::UCD_VERSION,
            ];
            let q = proto::snmp_get(1, "public", req, &oids);
            let mut r =
                exchange(&sock, addr, true, &q, wait, |b| proto::snmp_parse(b, req)).await?;
            if r.is_none() {
                // An SNMPv1-only agent: ask for sysDescr alone (v1 fails the whole
                // request when one name is unknown).
                let q = proto::snmp_get(0, "public", req, &oids[..1]);
                r = exchange(&sock, addr, true, &q, wait / 2, |b| {
                    proto::snmp_parse(b, req)
                })
                .await?;
            }
            let Some((status, binds)) = r else {
                return Ok(None);
            };
            let mut text = String::new();
            let mut descr = String::new();
            for (oid, v) in &binds {
                let name = match oid.as_str() {
                    "1.3.6.1.2.1.1.1.0" => {
                        descr = v.clone();
                        "sysDescr"
                    }
                    "1.3.6.1.2.1.1.2.0" => "sysObjectID",
                    "1.3.6.1.4.1.2021.100.2.0" => "versionTag",
                    other => other,
                };
                text.push_str(&format!("{name}: {v}\n"));
            }
            let ev = if descr.is_empty() {
                format!("SNMP reply, error status {status}")
            } else {
                format!("sysDescr: {descr}")
            };
            let mut d = found("snmp", ev);
            det.identify(&mut d, &text);
            // No signature: the maker from sysObjectID's enterprise arc, when known.
            let enterprise = binds
                .iter()
                .find(|(o, _)| o == "1.3.6.1.2.1.1.2.0")
                .and_then(|(_, v)| crate::enterprise::number(v));
            if let Some(n) = enterprise {
                match crate::enterprise::name(n) {
                    Some(vendor) if d.product.is_none() => {
                        d.product = Some(format!("{vendor} SNMP agent"));
                    }
                    None => {
                        d.evidence =
                            printable(format!("{}; enterprise {n}", d.evidence).as_bytes(), 200)
                    }
                    _ => {}
                }
            }
            Ok(Some(d))
        }
        Probe::NetbiosNs => {
            sock.connect(addr).await?;
            let q = proto::nbstat_query(id);
            let Some((names, mac)) =
                exchange(&sock, addr, true, &q, wait, |b| proto::nbstat_parse(id, b)).await?
            else {
                return Ok(None);
            };
            let text = format!("names: {}\nmac: {mac}\n", names.join(", "));
            let mut d = found("netbios-ns", format!("{}; MAC {mac}", names.join(", ")));
            det.identify(&mut d, &text);
            Ok(Some(d))
        }
        Probe::Tftp => {
            let file = format!("portolan-probe-{n:08x}.none");
            let q = proto::tftp_rrq(&file);
            let Some(what) = exchange(&sock, addr, false, &q, wait, proto::tftp_parse).await?
            else {
                return Ok(None);
            };
            let mut d = found("tftp", format!("RRQ {file}: {what}"));
            det.identify(&mut d, &format!("{what}\n"));
            Ok(Some(d))
        }
        Probe::Rpc => {
            sock.connect(addr).await?;
            let q = portolan_payload::service::rpc_dump(n);
            let r = exchange(&sock, addr, true, &q, wait, |b| {
                crate::service::rpcbind_heard(n, b)
            })
            .await?;
            Ok(r.map(|h| heard(det, h)))
        }
        Probe::Memcached => {
            sock.connect(addr).await?;
            let q = portolan_payload::service::memcached_udp_version(id);
            let r = exchange(&sock, addr, true, &q, wait, |b| {
                if b.get(..2)? != id.to_be_bytes() {
                    return None;
                }
                crate::service::memcached_parse(b.get(8..)?)
            })
            .await?;
            Ok(r.map(|mut h| {
                h.evidence = format!("{} (over UDP)", h.evidence);
                heard(det, h)
            }))
        }
        Probe::Dhcp => Ok(None),
    }
}

/// DHCP: a DHCPINFORM from our own address. Servers answer it with a unicast DHCPACK,
/// most to the port it came from; as root we also listen on port 68, where RFC 2131
/// says the reply goes.
async fn dhcp(addr: SocketAddr, opts: &Options) -> io::Result<Option<Detection>> {
    let IpAddr::V4(_) = addr.ip() else {
        return Ok(None);
    };
    let sock = bind_for(addr).await?;
    sock.connect(addr).await?;
    let IpAddr::V4(me) = sock.local_addr()?.ip() else {
        return Ok(None);
    };
    let xid = nonce();
    let q = proto::dhcp_inform(xid, me, [0x02, 0x50, 0x54, 0x4c, 0x4e, 0x01]);
    // Servers on another port answer the port after theirs (as 68 follows 67).
    let client_port = if addr.port() == 67 {
        68
    } else {
        addr.port().wrapping_add(1)
    };
    let on68 = UdpSocket::bind((me, client_port)).await.ok();
    // A DHCP server that is handing out an address pings it first (RFC 2131, 4.4.1) and
    // dnsmasq answers nothing else meanwhile, for up to three seconds: on a DHCP port,
    // wait past that (elsewhere a silent port must not cost more than the others).
    let wait = if hint(addr.port()) == Some(Probe::Dhcp) {
        (opts.timeout * 2)
            .max(Duration::from_secs(4))
            .min(opts.total)
    } else {
        opts.timeout
    };
    let main = exchange(&sock, addr, true, &q, wait, |b| proto::dhcp_parse(xid, b));
    let reply = match &on68 {
        None => main.await?,
        Some(s68) => {
            let mut buf = vec![0u8; 2048];
            let listen = async {
                let deadline = Instant::now() + wait;
                loop {
                    match timeout_at(deadline, s68.recv_from(&mut buf)).await {
                        Ok(Ok((n, from))) if from.ip() == addr.ip() => {
                            if let Some(r) = proto::dhcp_parse(xid, &buf[..n]) {
                                return Some(r);
                            }
                        }
                        Ok(Ok(_)) => {}
                        _ => return None,
                    }
                }
            };
            tokio::select! {
                r = main => r?,
                r = listen => r,
            }
        }
    };
    Ok(reply.map(|text| {
        let first = text.lines().next().unwrap_or("").to_string();
        let server = text
            .lines()
            .find(|l| l.starts_with("server-id:"))
            .unwrap_or("")
            .to_string();
        found("dhcp", format!("DHCPINFORM -> {first}; {server}"))
    }))
}
