//! Parsers for the replies of the services the audit judges: databases, caches,
//! brokers, RPC, remote desktops, X11 and proxies. Pure functions over hostile bytes:
//! every length is checked, every loop is bounded, nothing is trusted to be text.
//!
//! Each parser returns a [`Heard`]: the protocol, what the wire names (product and
//! version only where the service says them), and whether it served an anonymous client.

use std::fmt::Write as _;

use crate::proto::text;

/// What one service said about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heard {
    pub protocol: &'static str,
    pub product: Option<String>,
    pub version: Option<String>,
    pub evidence: String,
    /// `Some(true)`: it served an anonymous client; `Some(false)`: it asked for
    /// credentials (or refused us for want of them).
    pub unauthenticated: Option<bool>,
    /// Lines for the signatures (`name: value`).
    pub transcript: String,
}

impl Heard {
    fn new(protocol: &'static str, evidence: impl Into<String>) -> Heard {
        Heard {
            protocol,
            evidence: evidence.into(),
            ..Heard::default()
        }
    }
}

fn be32(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

fn le16(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// Bytes up to the first NUL from `i`, and the index after it.
fn cstr(b: &[u8], i: usize) -> Option<(&[u8], usize)> {
    let rest = b.get(i..)?;
    let n = rest.iter().position(|c| *c == 0)?;
    Some((&rest[..n], i + n + 1))
}

/// The first `major.minor[.patch]` in `s`.
pub fn dotted_version(s: &str) -> Option<String> {
    let start = s.find(|c: char| c.is_ascii_digit())?;
    let v: String = s[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let v = v.trim_end_matches('.');
    v.contains('.').then(|| v.to_string())
}

// ---- PostgreSQL (protocol 3, "Frontend/Backend Protocol") ----

/// The reply to an SSLRequest: one byte, `S` (TLS offered) or `N`.
pub fn pg_ssl_parse(b: &[u8]) -> Option<bool> {
    match b {
        [b'S'] => Some(true),
        [b'N'] => Some(false),
        _ => None,
    }
}

/// The server's answer to a StartupMessage.
pub fn pg_parse(b: &[u8]) -> Option<Heard> {
    let mut i = 0;
    let mut auth: Option<u32> = None;
    let mut version: Option<String> = None;
    let mut error: Option<(String, String, bool)> = None; // code, message, has routine
    let mut any = false;
    for _ in 0..64 {
        let Some(&kind) = b.get(i) else { break };
        let Some(len) = be32(b, i + 1) else { break };
        let len = len as usize;
        if !(4..=1 << 16).contains(&len) || !kind.is_ascii_alphabetic() {
            // Protocol 2 servers answer a version they do not speak with 'E' and text.
            if kind == b'E' && i == 0 {
                let msg = text(&b[1..]);
                return msg.contains("protocol").then(|| {
                    let mut h = Heard::new("postgresql", format!("error: {}", msg.trim()));
                    h.product = Some("PostgreSQL".into());
                    h
                });
            }
            return None;
        }
        let Some(body) = b.get(i + 5..i + 1 + len) else {
            break;
        };
        match kind {
            b'R' => auth = Some(be32(body, 0)?),
            b'S' => {
                let (k, j) = cstr(body, 0)?;
                let (v, _) = cstr(body, j)?;
                if k == b"server_version" {
                    version = Some(text(v));
                }
            }
            b'E' => {
                let (mut code, mut msg, mut routine) = (String::new(), String::new(), false);
                let mut j = 0;
                while let Some(&f) = body.get(j) {
                    if f == 0 {
                        break;
                    }
                    let (v, next) = cstr(body, j + 1)?;
                    match f {
                        b'C' => code = text(v),
                        b'M' => msg = text(v),
                        b'R' => routine = true,
                        _ => {}
                    }
                    j = next;
                }
                error = Some((code, msg, routine));
            }
            b'K' | b'Z' | b'N' | b'v' => {}
            _ => return None,
        }
        any = true;
        i += 1 + len;
    }
    if !any {
        return None;
    }
    let mut h = Heard::new("postgresql", "");
    let mut ev = Vec::new();
    match auth {
        Some(0) => {
            ev.push("authentication ok (trust)".to_string());
            h.unauthenticated = Some(true);
        }
        Some(code) => {
            let how = match code {
                2 => "Kerberos",
                3 => "cleartext password",
                5 => "MD5 password",
                7 => "GSSAPI",
                9 => "SSPI",
                10 => "SASL",
                _ => "other",
            };
            ev.push(format!("asks for authentication ({how})"));
            h.unauthenticated = Some(false);
        }
        None => {}
    }
    if let Some((code, msg, routine)) = &error {
        ev.push(format!("error {code}: {msg}"));
        // 28000 invalid authorization, 28P01 invalid password: refused for credentials.
        if code.starts_with("28") && h.unauthenticated.is_none() {
            h.unauthenticated = Some(false);
        }
        if *routine {
            h.product = Some("PostgreSQL".into());
        }
    }
    if let Some(v) = &version {
        ev.push(format!("server_version {v}"));
        h.product = Some("PostgreSQL".into());
        h.version = dotted_version(v).or_else(|| Some(v.clone()));
    }
    h.evidence = ev.join("; ");
    Some(h)
}

// ---- MySQL / MariaDB (the initial handshake packet, protocol 10) ----

/// The server's first packet: a handshake (protocol 10) or an error (0xff).
pub fn mysql_parse(b: &[u8]) -> Option<Heard> {
    let len =
        usize::from(*b.first()?) | usize::from(*b.get(1)?) << 8 | usize::from(*b.get(2)?) << 16;
    if *b.get(3)? != 0 || !(3..=1 << 14).contains(&len) {
        return None;
    }
    let p = b.get(4..(4 + len).min(b.len()))?;
    match *p.first()? {
        10 => {
            let (v, _) = cstr(p, 1)?;
            if v.is_empty() || v.len() > 80 || !v.iter().all(|c| c.is_ascii_graphic()) {
                return None;
            }
            let v = text(v);
            let mut h = Heard::new("mysql", format!("handshake, server version {v}"));
            h.transcript = format!("version: {v}\n");
            Some(h)
        }
        0xff => {
            let code = le16(p, 1)?;
            let mut msg = p.get(3..).unwrap_or(&[]);
            if msg.first() == Some(&b'#') {
                msg = msg.get(6..).unwrap_or(&[]);
            }
            let msg = text(msg);
            if !(1000..5000).contains(&code) {
                return None;
            }
            let mut h = Heard::new("mysql", format!("error {code}: {msg}"));
            h.transcript = format!("error: {code} {msg}\n");
            Some(h)
        }
        _ => None,
    }
}

// ---- Redis (RESP) and memcached (text protocol) ----

/// memcached's answer to `version`.
pub fn memcached_parse(b: &[u8]) -> Option<Heard> {
    let line = crate::proto::first_line(b);
    let v = line.strip_prefix("VERSION ")?;
    let mut h = Heard::new("memcached", line.clone());
    h.product = Some("memcached".into());
    h.version = Some(v.trim().chars().take(40).collect());
    h.unauthenticated = Some(true);
    Some(h)
}

/// A RESP error line (`-ERR ...`, `-NOAUTH ...`).
pub fn resp_error(b: &[u8]) -> Option<String> {
    let line = crate::proto::first_line(b);
    let rest = line.strip_prefix('-')?;
    let word = rest.split_whitespace().next()?;
    (!word.is_empty() && word.bytes().all(|c| c.is_ascii_uppercase())).then(|| rest.to_string())
}

/// Redis's answer to `INFO server`: the bulk string, or an error.
pub fn redis_parse(b: &[u8]) -> Option<Heard> {
    if let Some(e) = resp_error(b) {
        let mut h = Heard::new("redis", format!("-{e}"));
        if e.starts_with("NOAUTH") || e.starts_with("DENIED") || e.starts_with("WRONGPASS") {
            h.unauthenticated = Some(false);
        }
        h.transcript = format!("error: {e}\n");
        return Some(h);
    }
    let head = crate::proto::first_line(b);
    let n: usize = head.strip_prefix('$')?.parse().ok()?;
    if n > 1 << 20 {
        return None;
    }
    let body = text(b.get(head.len()..)?);
    let mut h = Heard::new("redis", "");
    let mut version = None;
    let mut mode = None;
    for l in body.lines().take(200) {
        let l = l.trim();
        if let Some((k, v)) = l.split_once(':') {
            match k {
                "redis_version" => version = Some(v.to_string()),
                "valkey_version" => {
                    h.product = Some("Valkey".into());
                    version = Some(v.to_string());
                }
                "redis_mode" => mode = Some(v.to_string()),
                _ => {}
            }
        }
    }
    let v = version?;
    h.product.get_or_insert_with(|| "Redis".into());
    h.evidence = format!(
        "INFO server without authentication: redis_version {v}{}",
        mode.map(|m| format!(", mode {m}")).unwrap_or_default()
    );
    h.version = Some(v.chars().take(40).collect());
    h.unauthenticated = Some(true);
    Some(h)
}

// ---- MongoDB (OP_MSG replies, BSON) ----

/// The top-level fields of a BSON document we care about, as text.
fn bson_fields(doc: &[u8]) -> Option<Vec<(String, String)>> {
    let len = le32(doc, 0)? as usize;
    let doc = doc.get(..len)?;
    let mut i = 4;
    let mut out = Vec::new();
    for _ in 0..256 {
        let t = *doc.get(i)?;
        if t == 0 {
            return Some(out);
        }
        let (name, j) = cstr(doc, i + 1)?;
        let name = text(name);
        let (value, size) = match t {
            0x01 => (
                f64::from_le_bytes(doc.get(j..j + 8)?.try_into().ok()?).to_string(),
                8,
            ),
            0x02 => {
                let n = le32(doc, j)? as usize;
                let s = doc.get(j + 4..(j + 4 + n).checked_sub(1)?)?;
                (text(s), 4 + n)
            }
            0x03 | 0x04 => (String::new(), le32(doc, j)? as usize),
            0x05 => (String::new(), 5 + le32(doc, j)? as usize),
            0x07 => (String::new(), 12),
            0x08 => ((*doc.get(j)? != 0).to_string(), 1),
            0x09 | 0x11 | 0x12 => (
                i64::from_le_bytes(doc.get(j..j + 8)?.try_into().ok()?).to_string(),
                8,
            ),
            0x0a => (String::new(), 0),
            0x10 => (
                i32::from_le_bytes(doc.get(j..j + 4)?.try_into().ok()?).to_string(),
                4,
            ),
            0x13 => (String::new(), 16),
            _ => return None,
        };
        out.push((name, value));
        i = j.checked_add(size)?;
    }
    None
}

/// The replies to `hello`, `buildInfo` and `listDatabases` (request IDs 1, 2, 3).
pub fn mongo_parse(b: &[u8]) -> Option<Heard> {
    let mut i = 0;
    let mut h = Heard::new("mongodb", "");
    let mut any = false;
    let mut ev = Vec::new();
    for _ in 0..3 {
        let Some(len) = le32(b, i) else { break };
        let len = len as usize;
        if !(21..=1 << 20).contains(&len) {
            break;
        }
        let Some(msg) = b.get(i..i + len) else { break };
        let to = le32(msg, 8)?;
        let op = le32(msg, 12)?;
        let fields = match op {
            2013 if msg.get(20) == Some(&0) => bson_fields(msg.get(21..)?)?,
            // OP_REPLY: flags, cursor, start, count, then the documents.
            1 => bson_fields(msg.get(36..)?)?,
            _ => return None,
        };
        any = true;
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let ok = get("ok").is_some_and(|v| v == "1");
        match to {
            1 => {
                if let Some(w) = get("maxWireVersion") {
                    ev.push(format!("maxWireVersion {w}"));
                }
            }
            2 => {
                if let Some(v) = get("version").filter(|_| ok) {
                    h.product = Some("MongoDB".into());
                    h.version = Some(v.chars().take(40).collect());
                    ev.push(format!("buildInfo version {v}"));
                }
            }
            3 => {
                if ok {
                    h.unauthenticated = Some(true);
                    ev.push("listDatabases without authentication".into());
                } else {
                    let code = get("code").unwrap_or("");
                    // 13 Unauthorized, 18 AuthenticationFailed.
                    if code == "13" || code == "18" {
                        h.unauthenticated = Some(false);
                    }
                    ev.push(format!(
                        "listDatabases refused: {} {}",
                        code,
                        get("errmsg").unwrap_or("")
                    ));
                }
            }
            _ => {}
        }
        i += len;
    }
    if !any {
        return None;
    }
    h.evidence = ev.join("; ");
    Some(h)
}

// ---- MQTT 3.1.1 ----

/// One MQTT control packet: its type/flags byte and its body, and its whole length.
pub fn mqtt_packet(b: &[u8]) -> Option<(u8, &[u8], usize)> {
    let head = *b.first()?;
    let mut len = 0usize;
    let mut i = 1;
    for shift in 0..4 {
        let c = *b.get(i)?;
        len |= usize::from(c & 0x7f) << (7 * shift);
        i += 1;
        if c & 0x80 == 0 {
            let body = b.get(i..i + len)?;
            return Some((head, body, i + len));
        }
    }
    None
}

/// A CONNACK.
pub fn mqtt_connack(b: &[u8]) -> Option<Heard> {
    let (head, body, _) = mqtt_packet(b)?;
    if head != 0x20 || body.len() != 2 || body[0] > 1 {
        return None;
    }
    let (what, unauth) = match body[1] {
        0 => ("connection accepted without credentials", Some(true)),
        1 => ("refused: protocol version", None),
        2 => ("refused: client identifier", None),
        3 => ("refused: server unavailable", None),
        4 => ("refused: bad user name or password", Some(false)),
        5 => ("refused: not authorized", Some(false)),
        _ => return None,
    };
    let mut h = Heard::new("mqtt", format!("CONNACK {}: {what}", body[1]));
    h.unauthenticated = unauth;
    Some(h)
}

/// The topic and payload of a PUBLISH.
pub fn mqtt_publish(b: &[u8]) -> Option<(String, String)> {
    let (head, body, _) = mqtt_packet(b)?;
    if head & 0xf0 != 0x30 {
        return None;
    }
    let n = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let topic = body.get(2..2 + n)?;
    let mut rest = 2 + n;
    if head & 0x06 != 0 {
        rest += 2; // packet identifier for QoS 1 and 2
    }
    Some((text(topic), text(body.get(rest..)?)))
}

// ---- AMQP 0-9-1 ----

/// Reads an AMQP field table, returning its long-string fields.
fn amqp_table(t: &[u8]) -> Option<Vec<(String, String)>> {
    let mut i = 0;
    let mut out = Vec::new();
    for _ in 0..128 {
        if i >= t.len() {
            return Some(out);
        }
        let n = usize::from(*t.get(i)?);
        let name = text(t.get(i + 1..i + 1 + n)?);
        i += 1 + n;
        let kind = *t.get(i)?;
        i += 1;
        let size = match kind {
            b'S' | b'x' | b'F' | b'A' => {
                let n = be32(t, i)? as usize;
                if kind == b'S' {
                    out.push((name, text(t.get(i + 4..i + 4 + n)?)));
                }
                4 + n
            }
            b't' | b'b' | b'B' => 1,
            b's' | b'u' => 2,
            b'i' | b'I' | b'f' => 4,
            b'l' | b'd' | b'T' => 8,
            b'D' => 5,
            b'V' => 0,
            _ => return None,
        };
        i = i.checked_add(size)?;
    }
    Some(out)
}

/// The server's Connection.Start, or its own protocol header (a version it prefers).
pub fn amqp_parse(b: &[u8]) -> Option<Heard> {
    if b.len() >= 8 && b.starts_with(b"AMQP") {
        let v = &b[4..8];
        return Some(Heard::new(
            "amqp",
            format!("protocol header: speaks AMQP {}-{}-{}", v[1], v[2], v[3]),
        ));
    }
    if *b.first()? != 1 {
        return None;
    }
    let size = be32(b, 3)? as usize;
    let p = b.get(7..7 + size)?;
    if p.get(..4)? != [0, 10, 0, 10] {
        return None;
    }
    let n = be32(p, 6)? as usize;
    let props = amqp_table(p.get(10..10 + n)?)?;
    let m = be32(p, 10 + n)? as usize;
    let mechanisms = text(p.get(14 + n..14 + n + m)?);
    let get = |k: &str| props.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut h = Heard::new(
        "amqp",
        format!(
            "Connection.Start AMQP {}-{}; mechanisms {mechanisms}",
            p[4], p[5]
        ),
    );
    h.product = get("product").filter(|s| !s.is_empty());
    h.version = get("version").filter(|s| !s.is_empty());
    h.unauthenticated = Some(mechanisms.split_whitespace().any(|m| m == "ANONYMOUS"));
    for (k, v) in &props {
        let _ = writeln!(h.transcript, "{k}: {v}");
    }
    Some(h)
}

// ---- ONC RPC (RFC 5531), portmapper (RFC 1833) ----

/// How an RPC server answered a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcReply<'a> {
    /// Accepted and executed: the results.
    Success(&'a [u8]),
    /// Accepted, but the program is not there (1), the version is not (2, with the
    /// range), or the procedure (3), or arguments (4).
    Unavailable(u32, Option<(u32, u32)>),
    /// Rejected (RPC version or authentication).
    Denied(u32),
}

/// An RPC reply to `xid`, without record marking.
pub fn rpc_reply(xid: u32, b: &[u8]) -> Option<RpcReply<'_>> {
    if be32(b, 0)? != xid || be32(b, 4)? != 1 {
        return None;
    }
    match be32(b, 8)? {
        0 => {
            let vlen = be32(b, 16)? as usize;
            if vlen > 400 {
                return None;
            }
            let at = 20 + vlen;
            match be32(b, at)? {
                0 => Some(RpcReply::Success(b.get(at + 4..)?)),
                2 => Some(RpcReply::Unavailable(
                    2,
                    Some((be32(b, at + 4)?, be32(b, at + 8)?)),
                )),
                s @ 1..=5 => Some(RpcReply::Unavailable(s, None)),
                _ => None,
            }
        }
        1 => Some(RpcReply::Denied(be32(b, 12)?)),
        _ => None,
    }
}

/// Strips TCP record marking (one or more fragments, up to the last).
pub fn rpc_unmark(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    for _ in 0..64 {
        let mark = be32(b, i)?;
        let n = (mark & 0x7fff_ffff) as usize;
        out.extend_from_slice(b.get(i + 4..i + 4 + n)?);
        i += 4 + n;
        if mark & 0x8000_0000 != 0 {
            return Some(out);
        }
    }
    None
}

/// Where a record-marked RPC reply ends.
pub fn end_of_rpc_record(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    for _ in 0..64 {
        let mark = be32(b, i)?;
        let n = (mark & 0x7fff_ffff) as usize;
        if b.len() < i + 4 + n {
            return None;
        }
        i += 4 + n;
        if mark & 0x8000_0000 != 0 {
            return Some(i);
        }
    }
    Some(b.len())
}

/// The name of a well-known RPC program.
pub fn rpc_program(p: u32) -> Option<&'static str> {
    Some(match p {
        100000 => "rpcbind",
        100003 => "nfs",
        100005 => "mountd",
        100011 => "rquotad",
        100021 => "nlockmgr",
        100024 => "status",
        100227 => "nfs_acl",
        100004 => "ypserv",
        100007 => "ypbind",
        _ => return None,
    })
}

/// The portmapper's DUMP results: (program, version, protocol, port) entries.
pub fn rpc_dump_parse(r: &[u8]) -> Option<Vec<(u32, u32, u32, u32)>> {
    let mut out = Vec::new();
    let mut i = 0;
    for _ in 0..512 {
        match be32(r, i)? {
            0 => return Some(out),
            1 => {
                out.push((
                    be32(r, i + 4)?,
                    be32(r, i + 8)?,
                    be32(r, i + 12)?,
                    be32(r, i + 16)?,
                ));
                i += 20;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The portmapper's DUMP reply as a detection.
pub fn rpcbind_heard(xid: u32, b: &[u8]) -> Option<Heard> {
    let RpcReply::Success(r) = rpc_reply(xid, b)? else {
        return None;
    };
    let list = rpc_dump_parse(r)?;
    let mut progs: Vec<String> = Vec::new();
    for (p, v, proto, port) in &list {
        let name = rpc_program(*p).map(str::to_string).unwrap_or(p.to_string());
        let proto = match proto {
            6 => "tcp",
            17 => "udp",
            _ => "?",
        };
        let s = format!("{name} v{v} {proto}/{port}");
        if !progs.contains(&s) {
            progs.push(s);
        }
    }
    let mut h = Heard::new(
        "rpcbind",
        format!(
            "DUMP without authentication: {} registrations: {}",
            list.len(),
            progs.join(", ")
        ),
    );
    h.unauthenticated = Some(true);
    for s in &progs {
        let _ = writeln!(h.transcript, "program: {s}");
    }
    Some(h)
}

// ---- rsync daemon ----

/// The `@RSYNCD: 31.0 ...` greeting's protocol version.
pub fn rsync_greeting(b: &[u8]) -> Option<String> {
    let line = crate::proto::first_line(b);
    let v = line.strip_prefix("@RSYNCD: ")?;
    let v = v.split_whitespace().next()?;
    v.bytes()
        .all(|c| c.is_ascii_digit() || c == b'.')
        .then(|| v.to_string())
}

/// The module list (`name\tcomment` lines up to `@RSYNCD: EXIT`).
pub fn rsync_modules(b: &[u8]) -> Vec<String> {
    text(b)
        .lines()
        .take(64)
        .filter(|l| !l.starts_with('@') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

// ---- RFB (VNC), RFC 6143 ----

/// The `RFB xxx.yyy\n` greeting: (major, minor).
pub fn rfb_version(b: &[u8]) -> Option<(u16, u16)> {
    let g = b.get(..12)?;
    if !g.starts_with(b"RFB ") || g[7] != b'.' || g[11] != b'\n' {
        return None;
    }
    let num = |s: &[u8]| std::str::from_utf8(s).ok()?.parse::<u16>().ok();
    Some((num(&g[4..7])?, num(&g[8..11])?))
}

pub fn rfb_security_name(t: u8) -> String {
    match t {
        1 => "None".into(),
        2 => "VNC Authentication".into(),
        5 => "RA2".into(),
        6 => "RA2ne".into(),
        16 => "Tight".into(),
        17 => "Ultra".into(),
        18 => "TLS".into(),
        19 => "VeNCrypt".into(),
        20 => "SASL".into(),
        21 => "MD5".into(),
        22 => "xvp".into(),
        30 => "Apple Remote Desktop".into(),
        t => format!("type {t}"),
    }
}

/// The security types a 3.7/3.8 server offers (or the reason it refuses), or the one
/// type a 3.3 server decides.
pub fn rfb_security(minor: u16, b: &[u8]) -> Option<Result<Vec<u8>, String>> {
    if minor < 7 {
        let t = be32(b, 0)?;
        if t == 0 {
            let n = be32(b, 4)? as usize;
            return Some(Err(text(b.get(8..8 + n.min(400))?)));
        }
        return Some(Ok(vec![u8::try_from(t).ok()?]));
    }
    let n = usize::from(*b.first()?);
    if n == 0 {
        let len = be32(b, 1)? as usize;
        return Some(Err(text(b.get(5..5 + len.min(400))?)));
    }
    Some(Ok(b.get(1..1 + n)?.to_vec()))
}

// ---- RDP: the X.224 Connection Confirm (MS-RDPBCGR 2.2.1.2) ----

pub fn rdp_parse(b: &[u8]) -> Option<Heard> {
    if b.len() < 11 || b[0] != 3 || b[1] != 0 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
    let b = b.get(..len)?;
    if b.get(5)? & 0xf0 != 0xd0 {
        return None;
    }
    let neg = b.get(11..);
    let mut h = Heard::new("rdp", "X.224 connection confirm");
    match neg {
        Some([2, _, 8, 0, p0, p1, p2, p3]) => {
            let p = u32::from_le_bytes([*p0, *p1, *p2, *p3]);
            let what = match p {
                0 => "standard RDP security",
                1 => "TLS",
                2 => "CredSSP (NLA)",
                8 => "CredSSP with early user authorization",
                _ => "other",
            };
            h.evidence = format!("X.224 connection confirm; selected protocol {p} ({what})");
            if p == 2 || p == 8 {
                // Network Level Authentication: credentials before any session.
                h.unauthenticated = Some(false);
            }
        }
        Some([3, _, 8, 0, c0, c1, c2, c3]) => {
            let c = u32::from_le_bytes([*c0, *c1, *c2, *c3]);
            h.evidence = format!("X.224 connection confirm; negotiation failure {c}");
        }
        _ => {}
    }
    Some(h)
}

/// An X.224 Data TPKT carrying one MCS byte (a Disconnect Provider Ultimatum), sent
/// before any Connection Request: a protocol error to every RDP server.
pub const RDP_DATA_BEFORE_CONNECT: [u8; 8] = [3, 0, 0, 8, 2, 0xf0, 0x80, 0x64];

/// xrdp answers [`RDP_DATA_BEFORE_CONNECT`] (and any other PDU it cannot take before a
/// connection) with exactly this MCS Disconnect Provider Ultimatum; Windows closes.
pub fn rdp_is_xrdp_disconnect(b: &[u8]) -> bool {
    b == [3, 0, 0, 9, 2, 0xf0, 0x80, 0x21, 0x80]
}

// ---- X11 connection setup reply ----

pub fn x11_parse(b: &[u8]) -> Option<Heard> {
    let status = *b.first()?;
    let major = le16(b, 2)?;
    if major != 11 || status > 2 {
        return None;
    }
    let minor = le16(b, 4)?;
    let mut h = Heard::new("x11", "");
    match status {
        1 => {
            let release = le32(b, 8)?;
            let vlen = usize::from(le16(b, 24)?);
            let vendor = text(b.get(40..40 + vlen)?);
            h.evidence = format!(
                "X{major}.{minor} connection accepted without authorization; vendor {vendor}, release {release}"
            );
            h.unauthenticated = Some(true);
            h.transcript = format!("vendor: {vendor}\nrelease: {release}\n");
            if vendor.contains("X.Org") {
                h.product = Some("X.Org X server".into());
                h.version = Some(xorg_version(release));
            } else if !vendor.is_empty() {
                h.product = Some(vendor);
            }
        }
        _ => {
            let n = usize::from(*b.get(1)?);
            let reason = b.get(8..8 + n).map(text).unwrap_or_default();
            h.evidence = format!("X{major}.{minor} connection refused: {}", reason.trim());
            h.unauthenticated = Some(false);
        }
    }
    Some(h)
}

/// The X.Org server's version from its release number, which counts
/// major*10^7 + minor*10^5 + patch*10^3 + snapshot: `12014000` is 1.20.14. From 21.1 on
/// the server dropped the leading 1 from its version and kept it in the number:
/// `12101007` is 21.1.7.
pub fn xorg_version(release: u32) -> String {
    let major = release / 10_000_000;
    let minor = release / 100_000 % 100;
    let patch = release / 1000 % 100;
    let snap = release % 1000;
    if major == 1 && minor >= 21 {
        format!("{minor}.{patch}.{snap}")
    } else if snap == 0 {
        format!("{major}.{minor}.{patch}")
    } else {
        format!("{major}.{minor}.{patch}.{snap}")
    }
}

// ---- SOCKS ----

/// The reply to a SOCKS5 greeting: the method the server chose.
pub fn socks5_parse(b: &[u8]) -> Option<Heard> {
    let [5, m] = b else {
        return None;
    };
    let (what, unauth) = match m {
        0 => ("no authentication required", Some(true)),
        1 => ("GSSAPI required", Some(false)),
        2 => ("user name/password required", Some(false)),
        0xff => ("no acceptable method", Some(false)),
        _ => return None,
    };
    let mut h = Heard::new("socks", format!("SOCKS5: {what}"));
    h.unauthenticated = unauth;
    h.transcript = format!("socks5 method: {m}\n");
    Some(h)
}

/// The reply to a SOCKS4 CONNECT.
pub fn socks4_parse(b: &[u8]) -> Option<Heard> {
    let [0, code, _, _, _, _, _, _] = b else {
        return None;
    };
    let (what, unauth) = match code {
        0x5a => ("request granted", Some(true)),
        0x5b => ("request rejected or failed", None),
        0x5c | 0x5d => ("identd check failed", Some(false)),
        _ => return None,
    };
    let mut h = Heard::new("socks", format!("SOCKS4: {what}"));
    h.unauthenticated = unauth;
    Some(h)
}

// ---- where replies end (for the bounded reads) ----

/// Where PostgreSQL's answer to a startup message ends: after an error, an
/// authentication request, or ReadyForQuery.
pub fn end_of_pg(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    for _ in 0..64 {
        let kind = *b.get(i)?;
        let len = be32(b, i + 1)? as usize;
        if !(4..=1 << 16).contains(&len) {
            return Some(b.len());
        }
        if b.len() < i + 1 + len {
            return None;
        }
        let code = be32(b, i + 5).unwrap_or(0);
        i += 1 + len;
        match kind {
            b'E' | b'Z' => return Some(i),
            b'R' if code != 0 => return Some(i),
            _ => {}
        }
    }
    Some(i)
}

/// Where a RESP reply ends: a bulk string with its length, or one line.
pub fn end_of_resp(b: &[u8]) -> Option<usize> {
    let nl = b.iter().position(|c| *c == b'\n')?;
    if b.first() == Some(&b'$') {
        let n: i64 = text(&b[1..nl]).trim().parse().ok()?;
        if n < 0 {
            return Some(nl + 1);
        }
        let want = (nl + 1).saturating_add(n as usize).saturating_add(2);
        return (b.len() >= want).then_some(want);
    }
    Some(nl + 1)
}

/// Where three MongoDB replies end (or at once, for something else).
pub fn end_of_mongo(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    for _ in 0..3 {
        let len = le32(b, i)? as usize;
        if !(16..=1 << 20).contains(&len) {
            return Some(b.len());
        }
        if b.len() < i + len {
            return None;
        }
        i += len;
    }
    Some(i)
}

/// Where one MQTT packet ends (or at once, when the first byte is no CONNACK).
pub fn end_of_mqtt(b: &[u8]) -> Option<usize> {
    if *b.first()? & 0xf0 != 0x20 && *b.first()? & 0xf0 != 0x30 && *b.first()? & 0xf0 != 0x90 {
        return Some(b.len());
    }
    if b.len() > 5 && mqtt_packet(b).is_none() && b[1..5].iter().all(|c| c & 0x80 != 0) {
        return Some(b.len());
    }
    mqtt_packet(b).map(|(_, _, n)| n)
}

/// Where AMQP's first frame (or its protocol header) ends.
pub fn end_of_amqp(b: &[u8]) -> Option<usize> {
    if b.starts_with(b"AMQP") {
        return (b.len() >= 8).then_some(8);
    }
    if *b.first()? != 1 {
        return Some(b.len());
    }
    let size = be32(b, 3)? as usize;
    if size > 1 << 17 {
        return Some(b.len());
    }
    let want = 8 + size;
    (b.len() >= want).then_some(want)
}

/// Where a record-marked RPC reply ends; at once for something else.
pub fn end_of_rpc(b: &[u8]) -> Option<usize> {
    let mark = be32(b, 0)?;
    if (mark & 0x7fff_ffff) as usize > 1 << 20 {
        return Some(b.len());
    }
    end_of_rpc_record(b)
}

/// Where a TPKT (RDP) ends.
pub fn end_of_tpkt(b: &[u8]) -> Option<usize> {
    if *b.first()? != 3 {
        return Some(b.len());
    }
    let n = usize::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]));
    if n < 4 {
        return Some(b.len());
    }
    (b.len() >= n).then_some(n)
}

/// Where the X11 connection setup reply ends.
pub fn end_of_x11(b: &[u8]) -> Option<usize> {
    if b.len() < 8 {
        return None;
    }
    if b[0] > 2 || le16(b, 2) != Some(11) {
        return Some(b.len());
    }
    let want = 8 + 4 * usize::from(le16(b, 6)?);
    (b.len() >= want).then_some(want)
}

/// Where a SOCKS reply ends.
pub fn end_of_socks(b: &[u8]) -> Option<usize> {
    match b.first()? {
        5 => (b.len() >= 2).then_some(2),
        0 => (b.len() >= 8).then_some(8),
        _ => Some(b.len()),
    }
}

/// Runs every parser here on `data` (fuzzing and property tests).
pub fn parse_all(data: &[u8]) {
    let _ = pg_ssl_parse(data);
    let _ = pg_parse(data);
    let _ = mysql_parse(data);
    let _ = memcached_parse(data);
    let _ = redis_parse(data);
    let _ = mongo_parse(data);
    let _ = mqtt_connack(data);
    let _ = mqtt_publish(data);
    let _ = amqp_parse(data);
    let _ = rpc_unmark(data);
    let _ = rpcbind_heard(0, data);
    let _ = rpc_reply(u32::from_be_bytes([0; 4]), data);
    let _ = rsync_greeting(data);
    let _ = rsync_modules(data);
    let _ = rfb_version(data);
    let _ = rfb_security(3, data);
    let _ = rfb_security(8, data);
    let _ = rdp_parse(data);
    let _ = x11_parse(data);
    let _ = socks5_parse(data);
    let _ = socks4_parse(data);
    for end in [
        end_of_pg,
        end_of_resp,
        end_of_mongo,
        end_of_mqtt,
        end_of_amqp,
        end_of_rpc,
        end_of_tpkt,
        end_of_x11,
        end_of_socks,
    ] {
        if let Some(n) = end(data) {
            assert!(n <= data.len(), "an end past the data");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_payload::service as req;

    fn pg_msg(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn postgres_trust_and_password() {
        let mut ok = pg_msg(b'R', &0u32.to_be_bytes());
        ok.extend(pg_msg(
            b'S',
            b"server_version\x0015.14 (Debian 15.14-0+deb12u1)\x00",
        ));
        let h = pg_parse(&ok).unwrap();
        assert_eq!(h.product.as_deref(), Some("PostgreSQL"));
        assert_eq!(h.version.as_deref(), Some("15.14"));
        assert_eq!(h.unauthenticated, Some(true));
        let sasl = pg_msg(b'R', b"\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00");
        let h = pg_parse(&sasl).unwrap();
        assert_eq!(h.unauthenticated, Some(false));
        assert_eq!(h.product, None);
        let err = pg_msg(
            b'E',
            b"SFATAL\x00C28000\x00Mno pg_hba.conf entry\x00Fauth.c\x00Rauth_failed\x00\x00",
        );
        let h = pg_parse(&err).unwrap();
        assert_eq!(h.product.as_deref(), Some("PostgreSQL"));
        assert_eq!(h.unauthenticated, Some(false));
        assert_eq!(pg_ssl_parse(b"N"), Some(false));
        assert!(pg_parse(b"HTTP/1.1 400 Bad Request\r\n").is_none());
    }

    #[test]
    fn mysql_handshake_and_error() {
        let v = b"5.5.5-10.11.19-MariaDB-0+deb12u1";
        let mut p = vec![10];
        p.extend_from_slice(v);
        p.extend_from_slice(&[0, 1, 0, 0, 0]);
        let mut m = vec![p.len() as u8, 0, 0, 0];
        m.extend(p);
        let h = mysql_parse(&m).unwrap();
        assert!(h.transcript.contains("10.11.19-MariaDB"));
        let e = b"\x44\x00\x00\x00\xff\x6a\x04Host '198.18.6.1' is not allowed to connect to this MariaDB server";
        let h = mysql_parse(e).unwrap();
        assert!(h.evidence.starts_with("error 1130"), "{}", h.evidence);
        assert!(mysql_parse(b"SSH-2.0-x\r\n").is_none());
    }

    #[test]
    fn redis_and_memcached() {
        let h =
            redis_parse(b"$40\r\n# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n")
                .unwrap();
        assert_eq!(h.version.as_deref(), Some("7.0.15"));
        assert_eq!(h.unauthenticated, Some(true));
        let h = redis_parse(b"-NOAUTH Authentication required.\r\n").unwrap();
        assert_eq!(h.unauthenticated, Some(false));
        assert!(redis_parse(b"+OK\r\n").is_none());
        let h = memcached_parse(b"VERSION 1.6.18\r\n").unwrap();
        assert_eq!(h.version.as_deref(), Some("1.6.18"));
        assert!(resp_error(b"-ERR unknown command 'version'\r\n").is_some());
        assert!(resp_error(b"-rw-r--r-- file\r\n").is_none());
    }

    #[test]
    fn mongo_replies() {
        fn doc(fields: &[(&str, &str)], ok: bool) -> Vec<u8> {
            let mut body = vec![0x01];
            body.extend_from_slice(b"ok\0");
            body.extend_from_slice(&(if ok { 1.0f64 } else { 0.0 }).to_le_bytes());
            for (k, v) in fields {
                body.push(2);
                body.extend_from_slice(k.as_bytes());
                body.push(0);
                body.extend_from_slice(&((v.len() + 1) as i32).to_le_bytes());
                body.extend_from_slice(v.as_bytes());
                body.push(0);
            }
            body.push(0);
            let mut d = ((body.len() + 4) as i32).to_le_bytes().to_vec();
            d.extend(body);
            d
        }
        fn msg(to: i32, d: Vec<u8>) -> Vec<u8> {
            let mut b = 9i32.to_le_bytes().to_vec();
            b.extend_from_slice(&to.to_le_bytes());
            b.extend_from_slice(&2013i32.to_le_bytes());
            b.extend_from_slice(&[0, 0, 0, 0, 0]);
            b.extend(d);
            let mut m = ((b.len() + 4) as i32).to_le_bytes().to_vec();
            m.extend(b);
            m
        }
        let mut all = msg(1, doc(&[], true));
        all.extend(msg(2, doc(&[("version", "7.0.2")], true)));
        all.extend(msg(3, doc(&[("errmsg", "requires authentication")], false)));
        let h = mongo_parse(&all).unwrap();
        assert_eq!(h.version.as_deref(), Some("7.0.2"));
        assert_eq!(h.product.as_deref(), Some("MongoDB"));
        assert_eq!(h.unauthenticated, None);
        assert!(mongo_parse(b"HTTP/1.0 200 OK\r\n\r\n").is_none());
        assert!(req::mongo_probe().len() > 60);
    }

    #[test]
    fn mqtt_amqp() {
        assert_eq!(
            mqtt_connack(&[0x20, 2, 0, 0]).unwrap().unauthenticated,
            Some(true)
        );
        assert_eq!(
            mqtt_connack(&[0x20, 2, 0, 5]).unwrap().unauthenticated,
            Some(false)
        );
        let mut p = vec![0x31, 0];
        let topic = b"$SYS/broker/version";
        p.extend_from_slice(&[0, topic.len() as u8]);
        p.extend_from_slice(topic);
        p.extend_from_slice(b"mosquitto version 2.0.11");
        p[1] = (p.len() - 2) as u8;
        assert_eq!(
            mqtt_publish(&p).unwrap().1,
            "mosquitto version 2.0.11".to_string()
        );
        // Connection.Start with product and version.
        let mut table = Vec::new();
        for (k, v) in [("product", "RabbitMQ"), ("version", "3.12.1")] {
            table.push(k.len() as u8);
            table.extend_from_slice(k.as_bytes());
            table.push(b'S');
            table.extend_from_slice(&(v.len() as u32).to_be_bytes());
            table.extend_from_slice(v.as_bytes());
        }
        let mut pl = vec![0, 10, 0, 10, 0, 9];
        pl.extend_from_slice(&(table.len() as u32).to_be_bytes());
        pl.extend(table);
        for s in [&b"PLAIN AMQPLAIN"[..], b"en_US"] {
            pl.extend_from_slice(&(s.len() as u32).to_be_bytes());
            pl.extend_from_slice(s);
        }
        let mut f = vec![1, 0, 0];
        f.extend_from_slice(&(pl.len() as u32).to_be_bytes());
        f.extend(pl);
        f.push(0xce);
        let h = amqp_parse(&f).unwrap();
        assert_eq!(h.product.as_deref(), Some("RabbitMQ"));
        assert_eq!(h.version.as_deref(), Some("3.12.1"));
        assert_eq!(h.unauthenticated, Some(false));
    }

    #[test]
    fn rpc_dump_and_unmark() {
        let mut r = Vec::new();
        for w in [7u32, 1, 0, 0, 0, 0] {
            r.extend_from_slice(&w.to_be_bytes());
        }
        for w in [1u32, 100000, 4, 6, 111, 1, 100003, 3, 6, 2049, 0] {
            r.extend_from_slice(&w.to_be_bytes());
        }
        let h = rpcbind_heard(7, &r).unwrap();
        assert!(h.evidence.contains("nfs v3 tcp/2049"), "{}", h.evidence);
        let mut rec = (0x8000_0000u32 | r.len() as u32).to_be_bytes().to_vec();
        rec.extend_from_slice(&r);
        assert_eq!(end_of_rpc_record(&rec), Some(rec.len()));
        assert_eq!(rpc_unmark(&rec).unwrap(), r);
        assert!(rpcbind_heard(8, &r).is_none());
    }

    #[test]
    fn rfb_rdp_x11_socks() {
        assert_eq!(rfb_version(b"RFB 003.008\n"), Some((3, 8)));
        assert_eq!(rfb_security(8, &[2, 1, 2]), Some(Ok(vec![1, 2])));
        assert_eq!(rfb_security(3, &[0, 0, 0, 2]), Some(Ok(vec![2])));
        let cc = [
            3, 0, 0, 19, 14, 0xd0, 0, 0, 0x12, 0x34, 0, 2, 0, 8, 0, 2, 0, 0, 0,
        ];
        assert_eq!(rdp_parse(&cc).unwrap().unauthenticated, Some(false));
        // xrdp 0.9.21's answers, recorded on the third test bed.
        let xrdp = [
            3, 0, 0, 19, 14, 0xd0, 0, 0, 0x12, 0x34, 0, 2, 1, 8, 0, 1, 0, 0, 0,
        ];
        let h = rdp_parse(&xrdp).unwrap();
        assert!(
            h.evidence.contains("selected protocol 1 (TLS)"),
            "{}",
            h.evidence
        );
        assert_eq!(h.unauthenticated, None);
        assert!(rdp_is_xrdp_disconnect(&[
            3, 0, 0, 9, 2, 0xf0, 0x80, 0x21, 0x80
        ]));
        assert!(!rdp_is_xrdp_disconnect(&[3, 0, 0, 9, 2, 0xf0, 0x80, 0x21]));
        assert!(!rdp_is_xrdp_disconnect(b""));
        let mut x = vec![1, 0, 11, 0, 0, 0, 0, 0];
        x.extend_from_slice(&12101006u32.to_le_bytes());
        x.resize(24, 0);
        let vendor = b"The X.Org Foundation";
        x.extend_from_slice(&(vendor.len() as u16).to_le_bytes());
        x.resize(40, 0);
        x.extend_from_slice(vendor);
        let h = x11_parse(&x).unwrap();
        assert_eq!(h.version.as_deref(), Some("21.1.6"));
        assert_eq!(h.unauthenticated, Some(true));
        assert_eq!(socks5_parse(&[5, 0]).unwrap().unauthenticated, Some(true));
        assert!(socks5_parse(&[5, 0, 1]).is_none());
        assert!(socks4_parse(&[0, 0x5b, 0, 0, 0, 0, 0, 0]).is_some());
    }

    fn hex(h: &str) -> Vec<u8> {
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Xvfb 21.1.7 (Debian 12) says release 12101007: that is version 21.1.7, not the
    /// 1.21.1 an older reading of the number gave.
    #[test]
    fn x11_xorg_21_release_number_is_version_21_1_7() {
        // The first 60 bytes of the setup reply of `Xvfb :0 -ac`, recorded on the fourth
        // test bed (the screens and formats that follow are cut).
        let ok = hex(
            "01000b00000053098fa5b80000002000ffff1f00000100001400ffff01060000202008ff0000000054686520582e4f726720466f756e646174696f6e",
        );
        let h = x11_parse(&ok).unwrap();
        assert_eq!(h.product.as_deref(), Some("X.Org X server"));
        assert_eq!(h.version.as_deref(), Some("21.1.7"));
        assert_eq!(h.unauthenticated, Some(true));
        assert!(
            h.evidence
                .contains("vendor The X.Org Foundation, release 12101007"),
            "{}",
            h.evidence
        );
        assert_eq!(xorg_version(12014000), "1.20.14");
        assert_eq!(xorg_version(11903000), "1.19.3");
        assert_eq!(xorg_version(12099901), "1.20.99.901");
        assert_eq!(xorg_version(12300002), "23.0.2");
        // `Xvfb :1` with access control on, to a host not on its list: the whole reply.
        let refused = hex(
            "00400b0000001000417574686f72697a6174696f6e2072657175697265642c20627574206e6f20617574686f72697a6174696f6e2070726f746f636f6c207370656369666965640a",
        );
        assert_eq!(end_of_x11(&refused), Some(refused.len()));
        let h = x11_parse(&refused).unwrap();
        assert_eq!(h.unauthenticated, Some(false));
        assert_eq!(h.product, None);
        assert_eq!(h.version, None);
        assert_eq!(
            h.evidence,
            "X11.0 connection refused: Authorization required, but no authorization protocol specified"
        );
    }
}
