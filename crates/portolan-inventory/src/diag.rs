//! Netlink `sock_diag` (INET_DIAG): the request builder, the dump parser and the socket
//! that runs a dump. The socket reads the namespace it was created in.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, OwnedFd};

use portolan_registry::Proto;

use crate::{Family, RawSocket, SocketState, socket_state, sys};

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x01;
const NLM_F_DUMP: u16 = 0x300;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `struct inet_diag_msg`: family, state, timer, retrans, sockid (48), expires, rqueue,
/// wqueue, uid, inode.
const DIAG_MSG_LEN: usize = 72;
const INET_DIAG_SKV6ONLY: u16 = 11;
/// One dump answer is at most about 32 KiB; twice that leaves room.
const RECV_BUF: usize = 64 * 1024;

/// A malformed netlink message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("message at offset {offset} is truncated ({len} bytes)")]
    Truncated { offset: usize, len: usize },
    #[error("message at offset {offset} has a bad length {len}")]
    BadLength { offset: usize, len: usize },
    #[error("inet_diag_msg at offset {offset} has unknown family {family}")]
    BadFamily { offset: usize, family: u8 },
}

/// What a parsed receive buffer says about the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More messages follow.
    More,
    /// `NLMSG_DONE`: the dump is complete.
    Done,
    /// `NLMSG_ERROR` with this (positive) errno.
    Error(i32),
}

/// Builds a `SOCK_DIAG_BY_FAMILY` dump request for the sockets of `proto`/`family` whose
/// state is in the `states` bitmask (bit N = kernel TCP state N).
pub fn request(proto: Proto, family: Family, states: u32, seq: u32) -> [u8; 72] {
    let mut m = [0u8; 72];
    m[0..4].copy_from_slice(&72u32.to_ne_bytes());
    m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    // inet_diag_req_v2
    m[16] = match family {
        Family::V4 => libc::AF_INET as u8,
        Family::V6 => libc::AF_INET6 as u8,
    };
    m[17] = match proto {
        Proto::Udp => libc::IPPROTO_UDP as u8,
        _ => libc::IPPROTO_TCP as u8,
    };
    m[18] = 0; // no optional extensions: INET_DIAG_SKV6ONLY always comes for v6 sockets
    m[20..24].copy_from_slice(&states.to_ne_bytes());
    m
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Parses one receive buffer of a `sock_diag` dump for `proto`, appending every socket
/// whose state the inventory knows to `out`. Messages of other types are skipped. Never
/// panics: short or inconsistent messages are a [`ParseError`].
pub fn parse(buf: &[u8], proto: Proto, out: &mut Vec<RawSocket>) -> Result<Progress, ParseError> {
    let mut off = 0;
    while off < buf.len() {
        let rest = &buf[off..];
        let len = u32_at(rest, 0).ok_or(ParseError::Truncated {
            offset: off,
            len: rest.len(),
        })? as usize;
        if len < NLMSG_HDRLEN {
            return Err(ParseError::BadLength { offset: off, len });
        }
        let msg = rest.get(..len).ok_or(ParseError::Truncated {
            offset: off,
            len: rest.len(),
        })?;
        let kind = u16_at(msg, 4).unwrap_or(0);
        let body = &msg[NLMSG_HDRLEN..];
        match kind {
            NLMSG_DONE => return Ok(Progress::Done),
            NLMSG_ERROR => {
                let err = u32_at(body, 0).ok_or(ParseError::Truncated { offset: off, len })? as i32;
                // An error of 0 is an acknowledgement.
                if err != 0 {
                    return Ok(Progress::Error(err.unsigned_abs() as i32));
                }
            }
            SOCK_DIAG_BY_FAMILY => {
                if let Some(s) = parse_diag_msg(body, proto, off)? {
                    out.push(s);
                }
            }
            _ => {}
        }
        off = off.saturating_add(align4(len));
    }
    Ok(Progress::More)
}

fn parse_diag_msg(b: &[u8], proto: Proto, offset: usize) -> Result<Option<RawSocket>, ParseError> {
    if b.len() < DIAG_MSG_LEN {
        return Err(ParseError::Truncated {
            offset,
            len: b.len() + NLMSG_HDRLEN,
        });
    }
    let family = match i32::from(b[0]) {
        libc::AF_INET => Family::V4,
        libc::AF_INET6 => Family::V6,
        f => {
            return Err(ParseError::BadFamily {
                offset,
                family: f as u8,
            });
        }
    };
    let Some(state) = socket_state(proto, b[1]) else {
        return Ok(None);
    };
    let port = u16::from_be_bytes([b[4], b[5]]);
    let rport = u16::from_be_bytes([b[6], b[7]]);
    let addr = |at: usize| -> IpAddr {
        match family {
            Family::V4 => IpAddr::V4(Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])),
            Family::V6 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(&b[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(a))
            }
        }
    };
    let ifindex = u32_at(b, 40).unwrap_or(0);
    let uid = u32_at(b, 64).unwrap_or(0);
    let inode = u64::from(u32_at(b, 68).unwrap_or(0));
    let mut v6only = None;
    let mut at = DIAG_MSG_LEN;
    while at + 4 <= b.len() {
        let alen = usize::from(u16_at(b, at).unwrap_or(0));
        let atype = u16_at(b, at + 2).unwrap_or(0) & 0x3fff;
        if alen < 4 || at + alen > b.len() {
            break; // a short or overlong attribute ends the list
        }
        if atype == INET_DIAG_SKV6ONLY && alen >= 5 {
            v6only = Some(b[at + 4] != 0);
        }
        at += align4(alen);
    }
    let remote = (state == SocketState::Connected).then(|| (addr(24), rport));
    Ok(Some(RawSocket {
        protocol: proto,
        family,
        state,
        address: addr(8),
        port,
        remote,
        v6only: match family {
            Family::V4 => Some(false),
            Family::V6 => v6only,
        },
        ifindex,
        interface: None,
        uid,
        inode,
        from_proc: false,
    }))
}

/// A `NETLINK_SOCK_DIAG` socket with its receive buffer.
pub struct DiagSocket {
    fd: OwnedFd,
    buf: Vec<u8>,
    seq: u32,
}

impl DiagSocket {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<DiagSocket> {
        let fd = sys::sock_diag_socket()?;
        Ok(DiagSocket {
            fd,
            buf: vec![0; RECV_BUF],
            seq: 0,
        })
    }

    /// Dumps the sockets of `proto`/`family` in `states` into `out`. An `NLMSG_ERROR`
    /// from the kernel (no such protocol, for example) is an `io::Error` with its errno.
    pub fn dump(
        &mut self,
        proto: Proto,
        family: Family,
        states: u32,
        out: &mut Vec<RawSocket>,
    ) -> Result<(), crate::Error> {
        self.seq = self.seq.wrapping_add(1);
        let req = request(proto, family, states, self.seq);
        sys::send_to_kernel(self.fd.as_fd(), &req)
            .map_err(|source| crate::Error::Netlink { op: "send", source })?;
        loop {
            let n = sys::recv(self.fd.as_fd(), &mut self.buf).map_err(|source| {
                crate::Error::Netlink {
                    op: "receive",
                    source,
                }
            })?;
            if n == 0 {
                return Ok(());
            }
            let got = &self.buf[..n];
            match parse(got, proto, out)? {
                Progress::More => {}
                Progress::Done => return Ok(()),
                Progress::Error(errno) => {
                    return Err(crate::Error::Netlink {
                        op: "dump",
                        source: io::Error::from_raw_os_error(errno),
                    });
                }
            }
        }
    }
}

/// The `states` bitmask for a protocol: TCP listeners, unconnected UDP sockets, and
/// connected UDP sockets too when `all` is set.
pub fn states_for(proto: Proto, all: bool) -> u32 {
    match proto {
        Proto::Udp if all => (1 << crate::TCP_CLOSE) | (1 << crate::TCP_ESTABLISHED),
        Proto::Udp => 1 << crate::TCP_CLOSE,
        _ => 1 << crate::TCP_LISTEN,
    }
}

/// Encodes one socket as the kernel would in a dump, for tests, fuzzing seeds and benches.
pub fn encode(s: &RawSocket, seq: u32) -> Vec<u8> {
    let mut body = vec![0u8; DIAG_MSG_LEN];
    body[0] = match s.family {
        Family::V4 => libc::AF_INET as u8,
        Family::V6 => libc::AF_INET6 as u8,
    };
    body[1] = match s.state {
        SocketState::Listen => crate::TCP_LISTEN,
        SocketState::Unconnected => crate::TCP_CLOSE,
        SocketState::Connected => crate::TCP_ESTABLISHED,
    };
    body[4..6].copy_from_slice(&s.port.to_be_bytes());
    let put = |body: &mut [u8], at: usize, a: IpAddr| match a {
        IpAddr::V4(a) => body[at..at + 4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => body[at..at + 16].copy_from_slice(&a.octets()),
    };
    put(&mut body, 8, s.address);
    if let Some((ra, rp)) = s.remote {
        body[6..8].copy_from_slice(&rp.to_be_bytes());
        put(&mut body, 24, ra);
    }
    body[40..44].copy_from_slice(&s.ifindex.to_ne_bytes());
    body[64..68].copy_from_slice(&s.uid.to_ne_bytes());
    body[68..72].copy_from_slice(&(s.inode as u32).to_ne_bytes());
    // INET_DIAG_SHUTDOWN, as the kernel always sends it.
    body.extend_from_slice(&5u16.to_ne_bytes());
    body.extend_from_slice(&8u16.to_ne_bytes());
    body.extend_from_slice(&[0, 0, 0, 0]);
    if s.family == Family::V6 {
        body.extend_from_slice(&5u16.to_ne_bytes());
        body.extend_from_slice(&INET_DIAG_SKV6ONLY.to_ne_bytes());
        body.extend_from_slice(&[u8::from(s.v6only == Some(true)), 0, 0, 0]);
    }
    let mut m = Vec::with_capacity(NLMSG_HDRLEN + body.len());
    m.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&2u16.to_ne_bytes()); // NLM_F_MULTI
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&body);
    m
}

/// An `NLMSG_DONE` message.
pub fn encode_done(seq: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(20);
    m.extend_from_slice(&20u32.to_ne_bytes());
    m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    m.extend_from_slice(&2u16.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m
}
