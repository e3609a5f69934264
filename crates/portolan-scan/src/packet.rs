//! Packets built and read by hand: TCP SYNs for IPv4 and IPv6, the replies to them, ICMP
//! errors that quote a probe, ICMP echo, and the keyed cookie that makes the SYN scan
//! stateless.

use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

/// Length of the SYN we send: a 20-byte header and a 4-byte MSS option.
pub const SYN_LEN: usize = 24;

/// A per-scan secret that turns (source, destination, ports) into a 32-bit cookie.
/// `RandomState` is SipHash with a random key drawn from the OS for each scan.
#[derive(Clone)]
pub struct CookieKey(std::collections::hash_map::RandomState);

impl Default for CookieKey {
    fn default() -> Self {
        Self::new()
    }
}

impl CookieKey {
    pub fn new() -> Self {
        CookieKey(std::collections::hash_map::RandomState::new())
    }

    pub fn cookie(&self, src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> u32 {
        let mut h = self.0.build_hasher();
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                h.write(&s.octets());
                h.write(&d.octets());
            }
            _ => {
                h.write(&v6(src).octets());
                h.write(&v6(dst).octets());
            }
        }
        h.write_u16(sport);
        h.write_u16(dport);
        h.finish() as u32
    }
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The Internet checksum of `data` (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    fold(sum16(data, 0))
}

/// The TCP/UDP/ICMPv6 checksum over the pseudo-header and `seg`.
pub fn l4_checksum(src: IpAddr, dst: IpAddr, proto: u8, seg: &[u8]) -> u16 {
    let mut acc = 0u32;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            acc = sum16(&s.octets(), acc);
            acc = sum16(&d.octets(), acc);
            acc += u32::from(proto);
            acc += seg.len() as u32;
        }
        _ => {
            acc = sum16(&v6(src).octets(), acc);
            acc = sum16(&v6(dst).octets(), acc);
            acc += seg.len() as u32;
            acc += u32::from(proto);
        }
    }
    fold(sum16(seg, acc))
}

/// Writes a TCP SYN segment (no IP header: the kernel adds it) into `buf`.
pub fn build_syn(
    buf: &mut [u8; SYN_LEN],
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
) {
    buf[0..2].copy_from_slice(&sport.to_be_bytes());
    buf[2..4].copy_from_slice(&dport.to_be_bytes());
    buf[4..8].copy_from_slice(&seq.to_be_bytes());
    buf[8..12].copy_from_slice(&0u32.to_be_bytes());
    buf[12] = ((SYN_LEN / 4) as u8) << 4;
    buf[13] = TCP_SYN;
    buf[14..16].copy_from_slice(&1024u16.to_be_bytes());
    buf[16..18].copy_from_slice(&[0, 0]);
    buf[18..20].copy_from_slice(&[0, 0]);
    // MSS 1460
    buf[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]);
    let c = l4_checksum(src, dst, 6, &buf[..]);
    buf[16..18].copy_from_slice(&c.to_be_bytes());
}

/// The parts of a TCP segment the scanner cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSeen {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub ttl: u8,
}

/// Reads an IPv4 packet (as a raw IPv4 socket delivers it, header included) holding TCP.
pub fn parse_tcp_v4(pkt: &[u8]) -> Option<TcpSeen> {
    let (src, dst, proto, ttl, l4) = parse_ipv4(pkt)?;
    if proto != 6 {
        return None;
    }
    parse_tcp(l4, IpAddr::V4(src), IpAddr::V4(dst), ttl)
}

/// Reads a TCP segment (as a raw IPv6 socket delivers it, without the IPv6 header).
pub fn parse_tcp(seg: &[u8], src: IpAddr, dst: IpAddr, ttl: u8) -> Option<TcpSeen> {
    if seg.len() < 20 {
        return None;
    }
    Some(TcpSeen {
        src,
        dst,
        sport: u16::from_be_bytes([seg[0], seg[1]]),
        dport: u16::from_be_bytes([seg[2], seg[3]]),
        seq: u32::from_be_bytes([seg[4], seg[5], seg[6], seg[7]]),
        ack: u32::from_be_bytes([seg[8], seg[9], seg[10], seg[11]]),
        flags: seg[13],
        ttl,
    })
}

fn parse_ipv4(pkt: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u8, u8, &[u8])> {
    if pkt.len() < 20 || pkt[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if ihl < 20 || pkt.len() < ihl {
        return None;
    }
    // Quoted packets inside ICMP errors are cut short, so trust the shorter length.
    let end = if total >= ihl {
        total.min(pkt.len())
    } else {
        pkt.len()
    };
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
    Some((src, dst, pkt[9], pkt[8], &pkt[ihl..end]))
}

/// An ICMP error that quotes one of our packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError {
    /// Who sent the error.
    pub from: IpAddr,
    pub v6: bool,
    pub icmp_type: u8,
    pub code: u8,
    /// The quoted packet: protocol, addresses, ports, and (for TCP) the sequence number.
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: Option<u32>,
}

/// An ICMP message of interest: an echo reply or an error quoting a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmp {
    EchoReply { from: IpAddr, id: u16, seq: u16 },
    Error(IcmpError),
}

/// Reads an IPv4 packet holding ICMP (raw ICMP sockets deliver the IP header).
pub fn parse_icmp_v4(pkt: &[u8]) -> Option<Icmp> {
    let (src, _dst, proto, _ttl, l4) = parse_ipv4(pkt)?;
    if proto != 1 || l4.len() < 8 {
        return None;
    }
    let (ty, code) = (l4[0], l4[1]);
    match ty {
        0 => Some(Icmp::EchoReply {
            from: IpAddr::V4(src),
            id: u16::from_be_bytes([l4[4], l4[5]]),
            seq: u16::from_be_bytes([l4[6], l4[7]]),
        }),
        3 | 11 => {
            let (isrc, idst, iproto, _, inner) = parse_ipv4(&l4[8..])?;
            quoted(
                IpAddr::V4(src),
                false,
                ty,
                code,
                iproto,
                IpAddr::V4(isrc),
                IpAddr::V4(idst),
                inner,
            )
        }
        _ => None,
    }
}

/// Reads an ICMPv6 message (raw ICMPv6 sockets deliver no IPv6 header); `from` is the
/// sender the socket reported.
pub fn parse_icmp_v6(msg: &[u8], from: IpAddr) -> Option<Icmp> {
    if msg.len() < 8 {
        return None;
    }
    let (ty, code) = (msg[0], msg[1]);
    match ty {
        129 => Some(Icmp::EchoReply {
            from,
            id: u16::from_be_bytes([msg[4], msg[5]]),
            seq: u16::from_be_bytes([msg[6], msg[7]]),
        }),
        1 | 3 => {
            let ip = &msg[8..];
            if ip.len() < 40 || ip[0] >> 4 != 6 {
                return None;
            }
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&ip[8..24]);
            d.copy_from_slice(&ip[24..40]);
            quoted(
                from,
                true,
                ty,
                code,
                ip[6],
                IpAddr::V6(Ipv6Addr::from(s)),
                IpAddr::V6(Ipv6Addr::from(d)),
                &ip[40..],
            )
        }
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn quoted(
    from: IpAddr,
    v6: bool,
    icmp_type: u8,
    code: u8,
    proto: u8,
    src: IpAddr,
    dst: IpAddr,
    l4: &[u8],
) -> Option<Icmp> {
    if l4.len() < 4 {
        return None;
    }
    let seq =
        (proto == 6 && l4.len() >= 8).then(|| u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]));
    Some(Icmp::Error(IcmpError {
        from,
        v6,
        icmp_type,
        code,
        proto,
        src,
        dst,
        sport: u16::from_be_bytes([l4[0], l4[1]]),
        dport: u16::from_be_bytes([l4[2], l4[3]]),
        seq,
    }))
}

/// An ICMP (or ICMPv6) echo request with no payload but 8 bytes of zeros.
pub fn build_echo(v6: bool, id: u16, seq: u16) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0] = if v6 { 128 } else { 8 };
    b[4..6].copy_from_slice(&id.to_be_bytes());
    b[6..8].copy_from_slice(&seq.to_be_bytes());
    if !v6 {
        // The kernel fills the ICMPv6 checksum; ICMPv4's is ours.
        let c = checksum(&b);
        b[2..4].copy_from_slice(&c.to_be_bytes());
    }
    b
}

/// The reason nmap's vocabulary gives an ICMP unreachable (or ICMPv6) error.
pub fn icmp_reason(v6: bool, ty: u8, code: u8) -> crate::Reason {
    use crate::Reason;
    if v6 {
        match (ty, code) {
            (1, 4) => Reason::PortUnreach,
            (1, 1) => Reason::AdminProhibited,
            (1, 3) => Reason::HostUnreach,
            (1, 0) => Reason::NetUnreach,
            (3, _) => Reason::TimeExceeded,
            _ => Reason::HostUnreach,
        }
    } else {
        match (ty, code) {
            (3, 3) => Reason::PortUnreach,
            (3, 2) => Reason::ProtoUnreach,
            (3, 0) | (3, 6) | (3, 11) => Reason::NetUnreach,
            (3, 9) | (3, 10) | (3, 13) => Reason::AdminProhibited,
            (11, _) => Reason::TimeExceeded,
            _ => Reason::HostUnreach,
        }
    }
}

/// Classic BPF: accept TCP segments whose destination port is one of `ports`. For IPv4
/// raw sockets the program sees the IP header first; for IPv6 it starts at TCP.
pub fn tcp_port_filter(v6: bool, ports: &[u16]) -> Vec<libc::sock_filter> {
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    let mut prog = if v6 {
        vec![op(libc::BPF_LD | libc::BPF_H | libc::BPF_ABS, 0, 0, 2)]
    } else {
        vec![
            op(libc::BPF_LDX | libc::BPF_B | libc::BPF_MSH, 0, 0, 0),
            op(libc::BPF_LD | libc::BPF_H | libc::BPF_IND, 0, 0, 2),
        ]
    };
    let ports = &ports[..ports.len().min(200)];
    let n = ports.len();
    for (i, &p) in ports.iter().enumerate() {
        // On a match jump to the accept at the end; else fall through to the next test.
        prog.push(op(jeq, (n - i) as u8, 0, u32::from(p)));
    }
    prog.push(op(ret, 0, 0, 0));
    prog.push(op(ret, 0, 0, 0xffff));
    prog
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
    const D: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));

    #[test]
    fn checksum_rfc1071_example() {
        // RFC 1071's example words sum to 0xddf2; the checksum is its complement.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn syn_checksums_verify() {
        let mut b = [0u8; SYN_LEN];
        build_syn(&mut b, S, D, 40000, 443, 0xdead_beef);
        assert_eq!(l4_checksum(S, D, 6, &b), 0);
        let s6: IpAddr = "2001:2::1".parse().unwrap();
        let d6: IpAddr = "2001:2::2".parse().unwrap();
        build_syn(&mut b, s6, d6, 40000, 22, 7);
        assert_eq!(l4_checksum(s6, d6, 6, &b), 0);
        let t = parse_tcp(&b, s6, d6, 64).unwrap();
        assert_eq!((t.sport, t.dport, t.seq, t.flags), (40000, 22, 7, TCP_SYN));
    }

    fn ipv4(proto: u8, src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        let len = (20 + payload.len()) as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn reads_a_syn_ack() {
        let mut seg = [0u8; 20];
        seg[0..2].copy_from_slice(&80u16.to_be_bytes());
        seg[2..4].copy_from_slice(&40000u16.to_be_bytes());
        seg[8..12].copy_from_slice(&1234u32.to_be_bytes());
        seg[13] = TCP_SYN | TCP_ACK;
        let p = ipv4(
            6,
            Ipv4Addr::new(198, 18, 0, 2),
            Ipv4Addr::new(198, 18, 0, 1),
            &seg,
        );
        let t = parse_tcp_v4(&p).unwrap();
        assert_eq!((t.src, t.sport, t.dport, t.ack), (D, 80, 40000, 1234));
        assert!(parse_tcp_v4(&p[..30]).is_none());
        assert!(parse_tcp_v4(&[]).is_none());
    }

    #[test]
    fn reads_an_icmp_error_quoting_our_syn() {
        let mut syn = [0u8; SYN_LEN];
        build_syn(&mut syn, S, D, 40000, 25, 99);
        let inner = ipv4(
            6,
            Ipv4Addr::new(198, 18, 0, 1),
            Ipv4Addr::new(198, 18, 0, 2),
            &syn[..8],
        );
        let mut icmp = vec![3, 13, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&inner);
        let p = ipv4(
            1,
            Ipv4Addr::new(198, 18, 0, 2),
            Ipv4Addr::new(198, 18, 0, 1),
            &icmp,
        );
        let Some(Icmp::Error(e)) = parse_icmp_v4(&p) else {
            panic!()
        };
        assert_eq!((e.dport, e.seq, e.code), (25, Some(99), 13));
        assert_eq!(icmp_reason(false, 3, 13), crate::Reason::AdminProhibited);
    }

    #[test]
    fn cookie_depends_on_every_field() {
        let k = CookieKey::new();
        let c = k.cookie(S, D, 1, 2);
        assert_eq!(c, k.cookie(S, D, 1, 2));
        assert_ne!(c, k.cookie(D, S, 1, 2));
        assert_ne!(c, k.cookie(S, D, 1, 3));
        assert_ne!(c, CookieKey::new().cookie(S, D, 1, 2));
    }

    #[test]
    fn echo_checksum() {
        let e = build_echo(false, 7, 9);
        assert_eq!(checksum(&e), 0);
    }
}
