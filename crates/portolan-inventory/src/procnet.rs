//! The `/proc/net/{tcp,tcp6,udp,udp6}` fallback.
//!
//! Each line after the header is `sl local rem st tx:rx tr:when retrnsmt uid timeout inode
//! ...`, with addresses as the kernel's in-memory words in hex and ports in host order.
//! `/proc/net` tells neither `IPV6_V6ONLY` nor the bound interface; the live reader fills
//! those in from the socket itself where it can.

use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use portolan_registry::Proto;

use crate::{Family, RawSocket, SocketState, socket_state};

/// A line of a `/proc/net` table that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {what}")]
pub struct ParseError {
    pub line: usize,
    pub what: &'static str,
}

fn hex_u32(s: &str) -> Option<u32> {
    if s.len() != 8 {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

fn endpoint(s: &str, family: Family) -> Option<(IpAddr, u16)> {
    let (a, p) = s.split_once(':')?;
    if p.len() != 4 {
        return None;
    }
    let port = u16::from_str_radix(p, 16).ok()?;
    let addr = match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(hex_u32(a)?.to_ne_bytes())),
        Family::V6 => {
            if a.len() != 32 || !a.is_char_boundary(8) {
                return None;
            }
            let mut b = [0u8; 16];
            for i in 0..4 {
                let word = hex_u32(a.get(i * 8..i * 8 + 8)?)?;
                b[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
    };
    Some((addr, port))
}

/// Parses one line of a table (not the header). `Ok(None)` for sockets in states the
/// inventory does not list.
pub fn parse_line(
    line: &str,
    proto: Proto,
    family: Family,
    lineno: usize,
) -> Result<Option<RawSocket>, ParseError> {
    let err = |what| ParseError { line: lineno, what };
    let mut f = line.split_ascii_whitespace();
    let _sl = f.next().ok_or(err("empty line"))?;
    let local = f.next().ok_or(err("missing local address"))?;
    let remote = f.next().ok_or(err("missing remote address"))?;
    let st = f.next().ok_or(err("missing state"))?;
    let st = u8::from_str_radix(st, 16).map_err(|_| err("bad state"))?;
    let (uid, inode) = {
        let mut rest = f.skip(3);
        let uid = rest.next().ok_or(err("missing uid"))?;
        let _timeout = rest.next().ok_or(err("missing timeout"))?;
        let inode = rest.next().ok_or(err("missing inode"))?;
        (
            uid.parse::<u32>().map_err(|_| err("bad uid"))?,
            inode.parse::<u64>().map_err(|_| err("bad inode"))?,
        )
    };
    let (address, port) = endpoint(local, family).ok_or(err("bad local address"))?;
    let (raddr, rport) = endpoint(remote, family).ok_or(err("bad remote address"))?;
    let Some(state) = socket_state(proto, st) else {
        return Ok(None);
    };
    Ok(Some(RawSocket {
        protocol: proto,
        family,
        state,
        address,
        port,
        remote: (state == SocketState::Connected).then_some((raddr, rport)),
        v6only: match family {
            Family::V4 => Some(false),
            Family::V6 => None,
        },
        ifindex: 0,
        interface: None,
        uid,
        inode,
        from_proc: true,
    }))
}

/// Parses a whole table (header included), appending what it lists to `out`.
pub fn parse(
    text: &str,
    proto: Proto,
    family: Family,
    out: &mut Vec<RawSocket>,
) -> Result<(), ParseError> {
    for (i, line) in text.lines().enumerate() {
        if i == 0 || line.trim().is_empty() {
            continue; // the header
        }
        if let Some(s) = parse_line(line, proto, family, i + 1)? {
            out.push(s);
        }
    }
    Ok(())
}

/// Reads a table line by line from `r` (large tables are never held whole); `path`
/// names it in errors.
pub fn read(
    r: impl BufRead,
    path: &std::path::Path,
    proto: Proto,
    family: Family,
    out: &mut Vec<RawSocket>,
) -> Result<(), crate::Error> {
    let mut r = r;
    let mut line = String::new();
    let mut n = 0;
    loop {
        line.clear();
        let got = r
            .read_line(&mut line)
            .map_err(|source| crate::Error::Read {
                path: path.to_path_buf(),
                source,
            })?;
        if got == 0 {
            return Ok(());
        }
        n += 1;
        if n == 1 || line.trim().is_empty() {
            continue;
        }
        match parse_line(&line, proto, family, n) {
            Ok(Some(s)) => out.push(s),
            Ok(None) => {}
            Err(source) => {
                return Err(crate::Error::ProcParse {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
}

/// Formats one socket as a `/proc/net` line, for tests, fuzzing seeds and benches.
pub fn format_line(sl: usize, s: &RawSocket) -> String {
    let st = match s.state {
        SocketState::Listen => crate::TCP_LISTEN,
        SocketState::Unconnected => crate::TCP_CLOSE,
        SocketState::Connected => crate::TCP_ESTABLISHED,
    };
    let ep = |a: IpAddr, p: u16| match a {
        IpAddr::V4(a) => format!("{:08X}:{p:04X}", u32::from_ne_bytes(a.octets())),
        IpAddr::V6(a) => {
            let o = a.octets();
            let mut t = String::new();
            for w in o.chunks_exact(4) {
                t.push_str(&format!(
                    "{:08X}",
                    u32::from_ne_bytes([w[0], w[1], w[2], w[3]])
                ));
            }
            format!("{t}:{p:04X}")
        }
    };
    let (ra, rp) = s.remote.unwrap_or((s.family.any(), 0));
    format!(
        "{sl:4}: {} {} {st:02X} 00000000:00000000 00:00000000 00000000 {:5} 0 {} 2 0000000000000000 100 0 0 10 0",
        ep(s.address, s.port),
        ep(ra, rp),
        s.uid,
        s.inode
    )
}

/// The header line of a table.
pub const HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
