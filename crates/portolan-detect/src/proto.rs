//! Protocol messages: the requests we send and parsers for the replies, as pure functions
//! over bytes (the I/O lives in `tcp` and `udp`). Every parser treats its input as
//! hostile: lengths are checked, nothing is trusted to be text.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::ber::{self, Tlv};

// The requests are built in `portolan-payload`, which the scanner shares.
pub use portolan_payload::{
    DHCP_COOKIE, SYS_DESCR, SYS_OBJECT_ID, UCD_VERSION, dhcp_inform, dns_version_query,
    nb_session_request, nbstat_query, ntp_readvar, ntp_request, snmp_get, tftp_rrq,
};

/// What a server that speaks first said about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeting {
    Ssh,
    Telnet,
    Pop3,
    Imap,
    Nntp,
    Smtp,
    Ftp,
    /// A `220` greeting that could be FTP or SMTP.
    Mail220,
    /// The MySQL/MariaDB handshake packet (or its error packet).
    Mysql,
    /// `@RSYNCD: 31.0`.
    Rsync,
    /// `RFB 003.008`.
    Vnc,
}

/// Classifies the first bytes a server sent before we said anything.
pub fn classify_greeting(b: &[u8]) -> Option<Greeting> {
    if b.starts_with(b"SSH-") {
        return Some(Greeting::Ssh);
    }
    if b.len() >= 2 && b[0] == 0xff && (0xfb..=0xfe).contains(&b[1]) {
        return Some(Greeting::Telnet);
    }
    if b.starts_with(b"+OK") {
        return Some(Greeting::Pop3);
    }
    if b.starts_with(b"* OK") || b.starts_with(b"* PREAUTH") || b.starts_with(b"* BYE") {
        return Some(Greeting::Imap);
    }
    if crate::service::rsync_greeting(b).is_some() {
        return Some(Greeting::Rsync);
    }
    if crate::service::rfb_version(b).is_some() {
        return Some(Greeting::Vnc);
    }
    if crate::service::mysql_parse(b).is_some() {
        return Some(Greeting::Mysql);
    }
    let first = first_line(b).to_ascii_lowercase();
    let coded = first.len() >= 3 && first.as_bytes()[..3].iter().all(u8::is_ascii_digit);
    if !coded {
        return None;
    }
    let smtp = ["smtp", "postfix", "exim", "sendmail", "mail"]
        .iter()
        .any(|w| first.contains(w));
    let ftp = first.contains("ftp");
    let nntp = ["nntp", "leafnode", "news", "inn "]
        .iter()
        .any(|w| first.contains(w));
    if first.starts_with("200 ") || first.starts_with("201 ") || (nntp && !smtp && !ftp) {
        return Some(Greeting::Nntp);
    }
    match (smtp, ftp) {
        (true, false) => Some(Greeting::Smtp),
        (false, true) => Some(Greeting::Ftp),
        _ if first.starts_with("220") || first.starts_with("421") => Some(Greeting::Mail220),
        _ => None,
    }
}

pub fn first_line(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == b'\n').unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).trim_end().to_string()
}

/// Lossy text with control characters other than line breaks removed.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .collect()
}

/// True when a line of `reply` (after a status code or `*`/`+`) is the capability `cap`.
pub fn has_capability(reply: &str, cap: &str) -> bool {
    capability_line(reply, cap).is_some()
}

/// The rest of the line whose first word (after a status code) is `cap`.
pub fn capability_line<'a>(reply: &'a str, cap: &str) -> Option<&'a str> {
    reply.lines().find_map(|l| {
        let l = l.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-' || c == ' ');
        let mut words = l.splitn(2, char::is_whitespace);
        let first = words.next()?;
        first
            .eq_ignore_ascii_case(cap)
            .then(|| words.next().unwrap_or("").trim())
    })
}

/// True when the word `cap` appears anywhere in an IMAP capability list.
pub fn has_word(reply: &str, cap: &str) -> bool {
    reply
        .split(|c: char| c.is_whitespace() || c == '[' || c == ']')
        .any(|w| w.eq_ignore_ascii_case(cap))
}

// ---- telnet (RFC 854, 855) ----

pub const IAC: u8 = 255;
const WILL: u8 = 251;
const WONT: u8 = 252;
const DO: u8 = 253;
const DONT: u8 = 254;
const SB: u8 = 250;
const SE: u8 = 240;

/// Splits telnet input into option negotiations (`DO 24`, `WILL 1`) and the text.
pub fn telnet_parse(b: &[u8]) -> (Vec<(u8, u8)>, Vec<u8>) {
    let mut opts = Vec::new();
    let mut text = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != IAC {
            text.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(&c @ (WILL | WONT | DO | DONT)) => {
                if let Some(&o) = b.get(i + 2) {
                    opts.push((c, o));
                }
                i += 3;
            }
            Some(&SB) => {
                // Skip to IAC SE.
                let mut j = i + 2;
                while j + 1 < b.len() && !(b[j] == IAC && b[j + 1] == SE) {
                    j += 1;
                }
                i = j + 2;
            }
            Some(&IAC) => {
                text.push(IAC);
                i += 2;
            }
            Some(_) => i += 2,
            None => i += 1,
        }
    }
    (opts, text)
}

/// Our answer to a negotiation: refuse everything (WONT to DO, DONT to WILL).
pub fn telnet_refuse(opts: &[(u8, u8)]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(c, o) in opts {
        match c {
            DO => out.extend_from_slice(&[IAC, WONT, o]),
            WILL => out.extend_from_slice(&[IAC, DONT, o]),
            _ => {}
        }
    }
    out
}

pub fn telnet_describe(opts: &[(u8, u8)]) -> String {
    let mut s = String::new();
    for (i, (c, o)) in opts.iter().enumerate() {
        let verb = match *c {
            WILL => "WILL",
            WONT => "WONT",
            DO => "DO",
            _ => "DONT",
        };
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{verb} {o}");
    }
    s
}

// ---- HTTP ----

pub fn http_get(host: &str) -> Vec<u8> {
    format!(
        "GET / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: portolan\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// The header block of an HTTP response (`HTTP/1.x NNN ...` up to the blank line).
pub fn http_parse(b: &[u8]) -> Option<String> {
    let first = first_line(b);
    let mut parts = first.split_whitespace();
    let v = parts.next()?;
    let code = parts.next()?;
    if !v.starts_with("HTTP/") || code.len() != 3 || !code.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let end = crate::conn::find(b, b"\r\n\r\n")
        .or_else(|| crate::conn::find(b, b"\n\n"))
        .unwrap_or(b.len());
    Some(text(&b[..end]))
}

/// Where an HTTP response ends: its head, and the body when its length is known and
/// small (`Content-Length` up to 32 KiB, or a chunked body up to its last chunk).
pub fn end_of_http_message(b: &[u8]) -> Option<usize> {
    let head = end_of_http_head(b)?;
    let h = String::from_utf8_lossy(&b[..head]).to_ascii_lowercase();
    let header = |name: &str| {
        h.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if n <= 32 * 1024 {
            return (b.len() >= head + n).then_some(head + n);
        }
        return Some(head);
    }
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return crate::conn::find(&b[head..], b"0\r\n\r\n")
            .map(|i| head + i + 5)
            .or_else(|| (b.len() - head > 32 * 1024).then_some(b.len()));
    }
    Some(head)
}

/// The body of an HTTP response (decoded when chunked), at most 32 KiB.
pub fn http_body(b: &[u8]) -> Vec<u8> {
    let Some(head) = end_of_http_head(b) else {
        return Vec::new();
    };
    let body = &b[head..];
    let chunked = String::from_utf8_lossy(&b[..head])
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    if !chunked {
        return body[..body.len().min(32 * 1024)].to_vec();
    }
    let mut out = Vec::new();
    let mut i = 0;
    for _ in 0..64 {
        let Some(nl) = body[i..].iter().position(|c| *c == b'\n') else {
            break;
        };
        let size = String::from_utf8_lossy(&body[i..i + nl]);
        let Ok(n) = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16) else {
            break;
        };
        if n == 0 || out.len() + n > 32 * 1024 {
            break;
        }
        let start = i + nl + 1;
        let Some(chunk) = body.get(start..start + n) else {
            out.extend_from_slice(&body[start.min(body.len())..]);
            break;
        };
        out.extend_from_slice(chunk);
        i = start + n + 2;
        if i > body.len() {
            break;
        }
    }
    out
}

pub fn end_of_http_head(b: &[u8]) -> Option<usize> {
    crate::conn::find(b, b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| crate::conn::find(b, b"\n\n").map(|i| i + 2))
}

// ---- DNS (RFC 1035) ----

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsReply {
    pub rcode: u8,
    pub txt: Vec<String>,
}

fn skip_name(m: &[u8], mut i: usize) -> Option<usize> {
    for _ in 0..128 {
        let len = *m.get(i)?;
        if len == 0 {
            return Some(i + 1);
        }
        if len & 0xc0 == 0xc0 {
            m.get(i + 1)?;
            return Some(i + 2);
        }
        if len & 0xc0 != 0 {
            return None;
        }
        i += 1 + usize::from(len);
    }
    None
}

/// A reply to our query: its rcode and the TXT strings of its answers.
pub fn dns_parse(id: u16, m: &[u8]) -> Option<DnsReply> {
    if m.len() < 12 || m[..2] != id.to_be_bytes() || m[2] & 0x80 == 0 {
        return None;
    }
    let rcode = m[3] & 0x0f;
    let qd = u16::from_be_bytes([m[4], m[5]]);
    let an = u16::from_be_bytes([m[6], m[7]]);
    let mut i = 12;
    for _ in 0..qd.min(8) {
        i = skip_name(m, i)? + 4;
    }
    let mut txt = Vec::new();
    for _ in 0..an.min(16) {
        i = skip_name(m, i)?;
        let h = m.get(i..i + 10)?;
        let rtype = u16::from_be_bytes([h[0], h[1]]);
        let len = usize::from(u16::from_be_bytes([h[8], h[9]]));
        let rdata = m.get(i + 10..i + 10 + len)?;
        if rtype == 16 {
            let mut s = String::new();
            let mut j = 0;
            while j < rdata.len() {
                let l = usize::from(rdata[j]);
                let part = rdata.get(j + 1..j + 1 + l)?;
                s.push_str(&text(part));
                j += 1 + l;
            }
            txt.push(s);
        }
        i += 10 + len;
    }
    Some(DnsReply { rcode, txt })
}

// ---- NTP (RFC 5905) and its mode 6 control messages ----

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NtpReply {
    pub version: u8,
    pub stratum: u8,
    pub refid: String,
    pub leap: u8,
}

pub fn ntp_parse(b: &[u8]) -> Option<NtpReply> {
    if b.len() < 48 || b[0] & 0x07 != 4 {
        return None;
    }
    let version = (b[0] >> 3) & 0x07;
    if !(1..=4).contains(&version) {
        return None;
    }
    let stratum = b[1];
    let r = &b[12..16];
    let refid = if stratum <= 1 {
        r.iter()
            .take_while(|c| **c != 0)
            .filter(|c| c.is_ascii_graphic())
            .map(|c| *c as char)
            .collect()
    } else {
        Ipv4Addr::new(r[0], r[1], r[2], r[3]).to_string()
    };
    Some(NtpReply {
        version,
        stratum,
        refid,
        leap: b[0] >> 6,
    })
}

/// The text of a mode 6 READVAR reply (`version="ntpd 4.2.8p15", ...`).
pub fn ntp_readvar_parse(b: &[u8]) -> Option<String> {
    if b.len() < 12 || b[0] & 0x07 != 6 || b[1] & 0x80 == 0 || b[1] & 0x1f != 2 {
        return None;
    }
    let count = usize::from(u16::from_be_bytes([b[10], b[11]]));
    let data = b.get(12..12 + count).unwrap_or(&b[12..]);
    Some(text(data))
}

// ---- SNMP (RFC 3416, v2c and v1) ----

/// A GetResponse to request `req`: its error status and its (oid, value) pairs.
pub fn snmp_parse(b: &[u8], req: i32) -> Option<(i64, Vec<(String, String)>)> {
    let (msg, _) = ber::parse(b).ok()?;
    if msg.tag != ber::SEQUENCE {
        return None;
    }
    let parts = ber::children(msg.content).ok()?;
    let [version, _community, pdu, ..] = parts.as_slice() else {
        return None;
    };
    if version.tag != ber::INTEGER || pdu.tag != 0xa2 {
        return None;
    }
    let f = ber::children(pdu.content).ok()?;
    let [id, status, _index, binds, ..] = f.as_slice() else {
        return None;
    };
    if ber::as_int(id.content)? != i64::from(req) {
        return None;
    }
    let status = ber::as_int(status.content)?;
    let mut out = Vec::new();
    for b in ber::children(binds.content).ok()? {
        let kv = ber::children(b.content).ok()?;
        let [name, value, ..] = kv.as_slice() else {
            continue;
        };
        let name = ber::as_oid(name.content)?;
        out.push((name, snmp_value(value)));
    }
    Some((status, out))
}

fn snmp_value(v: &Tlv<'_>) -> String {
    match v.tag {
        ber::OCTET_STRING => text(v.content).replace('\n', " "),
        ber::OID => ber::as_oid(v.content).unwrap_or_default(),
        ber::INTEGER | 0x41 | 0x42 | 0x43 | 0x46 => ber::as_int(v.content)
            .map(|i| i.to_string())
            .unwrap_or_default(),
        0x80 => "noSuchObject".into(),
        0x81 => "noSuchInstance".into(),
        0x82 => "endOfMibView".into(),
        _ => String::new(),
    }
}

// ---- NetBIOS (RFC 1001, 1002) ----

/// The names and the unit ID (MAC) of a node status reply.
pub fn nbstat_parse(id: u16, m: &[u8]) -> Option<(Vec<String>, String)> {
    if m.len() < 12 || m[..2] != id.to_be_bytes() || m[2] & 0x80 == 0 {
        return None;
    }
    let mut i = skip_name(m, 12)?;
    let h = m.get(i..i + 10)?;
    if u16::from_be_bytes([h[0], h[1]]) != 0x21 {
        return None;
    }
    i += 10;
    let count = usize::from(*m.get(i)?);
    i += 1;
    let mut names = Vec::new();
    for _ in 0..count {
        let e = m.get(i..i + 18)?;
        let name: String = e[..15]
            .iter()
            .map(|c| {
                if c.is_ascii_graphic() {
                    *c as char
                } else {
                    ' '
                }
            })
            .collect();
        let group = e[16] & 0x80 != 0;
        names.push(format!(
            "{}<{:02x}>{}",
            name.trim_end(),
            e[15],
            if group { " group" } else { "" }
        ));
        i += 18;
    }
    let mac = m
        .get(i..i + 6)
        .map(|b| {
            b.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        })
        .unwrap_or_default();
    Some((names, mac))
}

/// A session service reply: positive (0x82), negative (0x83, with its error code) or
/// retarget (0x84).
pub fn nb_session_parse(b: &[u8]) -> Option<String> {
    if b.len() < 4 || b[1] & 0xfe != 0 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
    match b[0] {
        0x82 if len == 0 => Some("positive session response".into()),
        0x83 if len == 1 => Some(format!(
            "negative session response, error 0x{:02x}",
            b.get(4).copied().unwrap_or(0)
        )),
        0x84 if len == 6 => Some("retarget session response".into()),
        _ => None,
    }
}

// ---- TFTP (RFC 1350) ----

pub fn tftp_parse(b: &[u8]) -> Option<String> {
    if b.len() < 4 || b[0] != 0 {
        return None;
    }
    match b[1] {
        5 => {
            let code = u16::from_be_bytes([b[2], b[3]]);
            if code > 8 {
                return None;
            }
            let msg = &b[4..];
            let end = msg.iter().position(|c| *c == 0)?;
            Some(format!("error {code}: {}", text(&msg[..end])))
        }
        3 => Some(format!("data block {}", u16::from_be_bytes([b[2], b[3]]))),
        6 => Some("option acknowledgement".into()),
        _ => None,
    }
}

// ---- DHCP (RFC 2131, 2132) ----

/// A BOOTREPLY to `xid`, rendered as `name: value` lines of its options.
pub fn dhcp_parse(xid: u32, b: &[u8]) -> Option<String> {
    if b.len() < 240 || b[0] != 2 || b[4..8] != xid.to_be_bytes() || b[236..240] != DHCP_COOKIE {
        return None;
    }
    let mut out = String::new();
    let mut i = 240;
    while i < b.len() {
        let code = b[i];
        if code == 255 {
            break;
        }
        if code == 0 {
            i += 1;
            continue;
        }
        let len = usize::from(*b.get(i + 1)?);
        let v = b.get(i + 2..i + 2 + len)?;
        let ip = |v: &[u8]| {
            v.chunks_exact(4)
                .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]).to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let line = match code {
            53 => {
                let t = match v.first() {
                    Some(2) => "OFFER",
                    Some(5) => "ACK",
                    Some(6) => "NAK",
                    _ => "other",
                };
                format!("message: {t}")
            }
            54 => format!("server-id: {}", ip(v)),
            1 => format!("subnet-mask: {}", ip(v)),
            3 => format!("router: {}", ip(v)),
            6 => format!("dns: {}", ip(v)),
            15 => format!("domain: {}", text(v)),
            51 => format!(
                "lease: {}",
                v.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x))
            ),
            56 => format!("error: {}", text(v)),
            60 => format!("vendor-class: {}", text(v)),
            _ => format!("option-{code}: {}", v.len()),
        };
        out.push_str(&line);
        out.push('\n');
        i += 2 + len;
    }
    Some(out)
}

// ---- LDAP (RFC 4511) ----

pub use portolan_payload::ldap;

/// What an LDAP search returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LdapReply {
    /// The attributes of every entry, in order (a root DSE search has one entry).
    pub attrs: Vec<(String, Vec<String>)>,
    /// How many entries came, and the name of the first.
    pub entries: usize,
    pub first_dn: Option<String>,
    /// How many search result references (referrals to other servers) came.
    pub references: usize,
    pub result: Option<i64>,
    pub diagnostic: String,
}

impl LdapReply {
    pub fn values(&self, name: &str) -> impl Iterator<Item = &str> {
        self.attrs
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.iter().map(String::as_str))
    }

    /// `name: value` lines, attributes sorted by name, values in order.
    pub fn transcript(&self) -> String {
        let mut attrs = self.attrs.clone();
        attrs.sort_by_key(|(n, _)| n.to_ascii_lowercase());
        let mut s = String::new();
        for (n, vs) in &attrs {
            for v in vs {
                let _ = writeln!(s, "{n}: {v}");
            }
        }
        if let Some(r) = self.result {
            let _ = writeln!(s, "result: {r} {}", self.diagnostic);
        }
        s
    }
}

/// Where the LDAP messages in `b` end, once a SearchResultDone (or an error) arrived.
pub fn end_of_ldap_search(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        let rest = &b[i..];
        if rest.is_empty() {
            return None;
        }
        let n = ber::element_len(rest)?;
        if n > rest.len() {
            return None;
        }
        let Ok((msg, _)) = ber::parse(rest) else {
            return Some(i + n);
        };
        i += n;
        let op = ber::children(msg.content)
            .ok()
            .and_then(|c| c.get(1).map(|t| t.tag));
        // Anything but a search entry or reference ends the exchange.
        if !matches!(op, Some(0x64) | Some(0x73)) {
            return Some(i);
        }
    }
}

/// Parses the messages of a root DSE search. `None` when it is not LDAP at all.
pub fn ldap_parse(mut b: &[u8]) -> Option<LdapReply> {
    let mut reply = LdapReply::default();
    let mut any = false;
    while !b.is_empty() {
        let Ok((msg, rest)) = ber::parse(b) else {
            break;
        };
        b = rest;
        if msg.tag != ber::SEQUENCE {
            return None;
        }
        let parts = ber::children(msg.content).ok()?;
        let [id, op, ..] = parts.as_slice() else {
            return None;
        };
        if id.tag != ber::INTEGER {
            return None;
        }
        any = true;
        match op.tag {
            0x64 => {
                let e = ber::children(op.content).ok()?;
                reply.entries += 1;
                if reply.first_dn.is_none() {
                    reply.first_dn = e.first().map(|dn| text(dn.content));
                }
                let Some(list) = e.get(1) else { continue };
                for a in ber::children(list.content).ok()? {
                    let kv = ber::children(a.content).ok()?;
                    let [name, vals, ..] = kv.as_slice() else {
                        continue;
                    };
                    let values = ber::children(vals.content)
                        .ok()?
                        .iter()
                        .map(|v| text(v.content))
                        .collect();
                    reply.attrs.push((text(name.content), values));
                }
            }
            0x73 => reply.references += 1,
            0x65 | 0x78 => {
                let r = ber::children(op.content).ok()?;
                reply.result = r.first().and_then(|t| ber::as_int(t.content));
                reply.diagnostic = r.get(2).map(|t| text(t.content)).unwrap_or_default();
            }
            _ => {}
        }
    }
    any.then_some(reply)
}

/// OpenLDAP does not name its version; its root DSE shows which features it has. This
/// returns the release the features point to.
pub fn openldap_version(r: &LdapReply) -> Option<String> {
    let is_openldap = r
        .values("objectClass")
        .chain(r.values("structuralObjectClass"))
        .any(|v| v.eq_ignore_ascii_case("OpenLDAProotDSE"));
    if !is_openldap {
        return None;
    }
    let has = |attr: &str, oid: &str| r.values(attr).any(|v| v == oid);
    // 2.4 built the Don't Use Copy control (RFC 6171) and LDAP transactions (RFC 5805)
    // only in development builds; 2.5 enabled both in releases.
    if has("supportedControl", "1.3.6.1.1.22") || has("supportedExtension", "1.3.6.1.1.21.1") {
        return Some("2.5 or later".into());
    }
    Some("2.4 or earlier".into())
}

/// The most naming contexts an anonymous search is tried on.
pub const LDAP_MAX_CONTEXTS: usize = 3;

/// The naming contexts a root DSE names: `defaultNamingContext` (Active Directory)
/// first, then `namingContexts`, without repeats, at most [`LDAP_MAX_CONTEXTS`].
pub fn ldap_contexts(r: &LdapReply) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in r
        .values("defaultNamingContext")
        .chain(r.values("namingContexts"))
    {
        let v = v.trim();
        if v.is_empty() || out.iter().any(|o| o.eq_ignore_ascii_case(v)) {
            continue;
        }
        out.push(v.to_string());
        if out.len() == LDAP_MAX_CONTEXTS {
            break;
        }
    }
    out
}

/// The name of an LDAP result code (RFC 4511, appendix A), for the common ones.
pub fn ldap_result_name(code: i64) -> Option<&'static str> {
    Some(match code {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        13 => "confidentialityRequired",
        32 => "noSuchObject",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        80 => "other",
        _ => return None,
    })
}

/// True when a result code refuses the operation to an anonymous client: it asks for
/// authentication, for a stronger one, or for TLS, or the access rules deny it. OpenLDAP's
/// `require authc` answers unwillingToPerform ("authentication required"), Active
/// Directory operationsError ("a successful bind must be completed").
pub fn ldap_refuses(code: i64, diagnostic: &str) -> bool {
    let d = diagnostic.to_ascii_lowercase();
    let about_auth = d.contains("auth") || d.contains("bind");
    matches!(code, 8 | 13 | 48 | 50) || (matches!(code, 1 | 53) && about_auth)
}

/// What an anonymous client was given: served (`Some(true)`), refused (`Some(false)`),
/// or not known; and why, for the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapAccess {
    pub served: Option<bool>,
    pub why: String,
    /// The directory asked for TLS (confidentialityRequired): worth asking again inside.
    pub wants_tls: bool,
}

/// `code name: diagnostic`, bounded.
fn ldap_result_text(code: i64, diagnostic: &str) -> String {
    let mut s = match ldap_result_name(code) {
        Some(n) => format!("{code} {n}"),
        None => format!("result {code}"),
    };
    let d = diagnostic.trim();
    if !d.is_empty() {
        s.push_str(": ");
        s.push_str(&bounded(d, 60));
    }
    s
}

fn bounded(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

/// The root DSE refused to an anonymous client (no entry, a refusing result), if it was.
pub fn ldap_rootdse_refused(r: &LdapReply) -> Option<LdapAccess> {
    let code = r.result?;
    (r.entries == 0 && ldap_refuses(code, &r.diagnostic)).then(|| LdapAccess {
        served: Some(false),
        why: format!(
            "the root DSE is refused to an anonymous client ({})",
            ldap_result_text(code, &r.diagnostic)
        ),
        wants_tls: code == 13,
    })
}

/// What the answer to an anonymous search of `base` (a naming context the root DSE
/// named) says: an entry is an open directory. No entry with success means every entry
/// there is hidden from anonymous clients; noSuchObject cannot tell an empty context from
/// one hidden whole, so it decides nothing; nor do referrals or other errors.
pub fn ldap_search_access(base: &str, r: Option<&LdapReply>) -> LdapAccess {
    let base_text = if base.is_empty() {
        "\"\"".to_string()
    } else {
        bounded(base, 60)
    };
    let of = format!("anonymous search of {base_text}");
    let (served, why) = match r {
        None => (None, format!("{of}: no answer")),
        Some(r) if r.entries > 0 => (
            Some(true),
            format!(
                "{of} returned entry {}",
                bounded(r.first_dn.as_deref().unwrap_or(""), 60)
            ),
        ),
        Some(r) => match r.result {
            None => (None, format!("{of}: no result")),
            Some(code) if ldap_refuses(code, &r.diagnostic) => (
                Some(false),
                format!("{of} refused ({})", ldap_result_text(code, &r.diagnostic)),
            ),
            Some(0 | 4) if r.references > 0 => (
                None,
                format!("{of} returned only referrals to other servers"),
            ),
            Some(0) => (
                Some(false),
                format!("{of} returned no entry (success): none is visible to an anonymous client"),
            ),
            Some(32) => (
                None,
                format!(
                    "{of} found nothing ({}): the context is empty, or hidden from anonymous clients",
                    ldap_result_text(32, &r.diagnostic)
                ),
            ),
            Some(code) => (
                None,
                format!("{of}: {}", ldap_result_text(code, &r.diagnostic)),
            ),
        },
    };
    let wants_tls = served == Some(false) && r.and_then(|r| r.result) == Some(13);
    LdapAccess {
        served,
        why,
        wants_tls,
    }
}

/// The verdict over the contexts searched, in order: served when any served; refused when
/// every one refused; otherwise not known, with the first unknown's reason.
pub fn ldap_access(tried: &[LdapAccess]) -> LdapAccess {
    if let Some(a) = tried.iter().find(|a| a.served == Some(true)) {
        return a.clone();
    }
    if let Some(a) = tried.iter().find(|a| a.served.is_none()) {
        return a.clone();
    }
    match tried.first() {
        Some(a) => a.clone(),
        None => LdapAccess {
            served: None,
            why: "the root DSE names no naming context to search".into(),
            wants_tls: false,
        },
    }
}

// ---- SMB2 (MS-SMB2 2.2.3), over direct TCP (445) or a NetBIOS session

/// An SMB2 NEGOTIATE offering the dialects 2.0.2 to 3.0.2, with its 4-byte framing.
pub fn smb2_negotiate() -> Vec<u8> {
    let mut m = vec![0xfe, b'S', b'M', b'B', 64, 0];
    m.extend_from_slice(&[0; 58]); // credit charge .. signature: all zero, command 0
    m[14] = 1; // credits requested
    m.extend_from_slice(&[36, 0, 4, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(b"portolan-detect!"); // client GUID
    m.extend_from_slice(&[0; 8]);
    for d in [0x0202u16, 0x0210, 0x0300, 0x0302] {
        m.extend_from_slice(&d.to_le_bytes());
    }
    let mut out = vec![0];
    out.extend_from_slice(&(m.len() as u32).to_be_bytes()[1..]);
    out.extend(m);
    out
}

/// The dialect an SMB server chose, from its framed negotiate response.
pub fn smb_parse(b: &[u8]) -> Option<String> {
    let m = b.get(4..)?;
    if m.starts_with(&[0xfe, b'S', b'M', b'B']) {
        let body = m.get(64..)?;
        let d = u16::from_le_bytes([*body.get(4)?, *body.get(5)?]);
        let dialect = match d {
            0x0202 => "2.0.2".to_string(),
            0x0210 => "2.1".to_string(),
            0x0300 => "3.0".to_string(),
            0x0302 => "3.0.2".to_string(),
            0x0311 => "3.1.1".to_string(),
            0x02ff => "2.???".to_string(),
            other => format!("0x{other:04x}"),
        };
        return Some(format!("SMB2 dialect {dialect}"));
    }
    if m.starts_with(&[0xff, b'S', b'M', b'B']) {
        return Some("SMB1".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings() {
        assert_eq!(
            classify_greeting(b"SSH-2.0-OpenSSH_9.2p1\r\n"),
            Some(Greeting::Ssh)
        );
        assert_eq!(classify_greeting(&[255, 253, 24]), Some(Greeting::Telnet));
        assert_eq!(
            classify_greeting(b"+OK Dovecot ready.\r\n"),
            Some(Greeting::Pop3)
        );
        assert_eq!(
            classify_greeting(b"* OK [CAPABILITY IMAP4rev1] x\r\n"),
            Some(Greeting::Imap)
        );
        assert_eq!(
            classify_greeting(b"200 Leafnode NNTP daemon\r\n"),
            Some(Greeting::Nntp)
        );
        assert_eq!(
            classify_greeting(b"220 h ESMTP Postfix\r\n"),
            Some(Greeting::Smtp)
        );
        assert_eq!(
            classify_greeting(b"220 (vsFTPd 3.0.3)\r\n"),
            Some(Greeting::Ftp)
        );
        assert_eq!(classify_greeting(b"220 ready\r\n"), Some(Greeting::Mail220));
        assert_eq!(classify_greeting(b"\x00\x01garbage"), None);
        assert_eq!(
            classify_greeting(b"500 OOPS: vsftpd: no\r\n"),
            Some(Greeting::Ftp)
        );
        assert_eq!(
            classify_greeting(b"503 Leafnode must\r\n"),
            Some(Greeting::Nntp)
        );
        assert_eq!(classify_greeting(b"HTTP/1.1 400 Bad\r\n"), None);
    }

    #[test]
    fn capabilities() {
        let ehlo = "250-host\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n";
        assert!(has_capability(ehlo, "STARTTLS"));
        assert!(!has_capability(ehlo, "AUTH"));
        let feat = "211-Features:\r\n AUTH TLS\r\n PBSZ\r\n211 End\r\n";
        assert!(has_capability(feat, "AUTH"));
        assert!(has_word(
            "* OK [CAPABILITY IMAP4rev1 STARTTLS] hi",
            "STARTTLS"
        ));
    }

    #[test]
    fn telnet_negotiation() {
        let (opts, text) = telnet_parse(&[
            IAC, DO, 24, IAC, WILL, 1, b'h', b'i', IAC, SB, 24, 1, IAC, SE,
        ]);
        assert_eq!(opts, vec![(DO, 24), (WILL, 1)]);
        assert_eq!(text, b"hi");
        assert_eq!(telnet_refuse(&opts), vec![IAC, WONT, 24, IAC, DONT, 1]);
        assert_eq!(telnet_describe(&opts), "DO 24 WILL 1");
    }

    #[test]
    fn dns_round_trip() {
        let q = dns_version_query(0x1234, false);
        let mut r = q.clone();
        r[2] |= 0x80;
        r[7] = 1; // one answer
        r.extend_from_slice(&[0xc0, 12, 0, 16, 0, 3, 0, 0, 0, 0, 0, 13, 12]);
        r.extend_from_slice(b"dnsmasq-2.89");
        let p = dns_parse(0x1234, &r).unwrap();
        assert_eq!(p.txt, vec!["dnsmasq-2.89".to_string()]);
        assert!(dns_parse(0x1235, &r).is_none());
        assert_eq!(&dns_version_query(1, true)[..2], &[0, q.len() as u8]);
    }

    #[test]
    fn snmp_round_trip() {
        let q = snmp_get(1, "public", 77, &[&SYS_DESCR]);
        // Turn the request into a response by hand: tag a0 -> a2 and fill a value.
        let mut r = q.clone();
        let pos = r.iter().position(|b| *b == 0xa0).unwrap();
        r[pos] = 0xa2;
        let parsed = snmp_parse(&r, 77).unwrap();
        assert_eq!(parsed.1[0].0, "1.3.6.1.2.1.1.1.0");
        assert!(snmp_parse(&r, 78).is_none());
    }

    #[test]
    fn nbstat_wire_name() {
        let q = nbstat_query(7);
        assert_eq!(q.len(), 12 + 34 + 4);
        assert_eq!(&q[13..15], b"CK"); // '*' = 0x2a
        let s = nb_session_request();
        assert_eq!(s.len(), 4 + 68);
        assert_eq!(
            nb_session_parse(&[0x82, 0, 0, 0]).as_deref(),
            Some("positive session response")
        );
        assert!(nb_session_parse(b"HTTP").is_none());
    }

    #[test]
    fn tftp_error() {
        assert_eq!(
            tftp_parse(b"\0\x05\0\x01File not found\0").as_deref(),
            Some("error 1: File not found")
        );
        assert!(tftp_parse(b"\0\x05\0\x01no nul").is_none());
    }

    #[test]
    fn dhcp_reply() {
        let mut r = dhcp_inform(9, Ipv4Addr::new(198, 18, 0, 1), [2, 0, 0, 0, 0, 1]);
        r[0] = 2;
        r.truncate(240);
        r.extend_from_slice(&[53, 1, 5, 54, 4, 198, 18, 0, 2, 255]);
        assert_eq!(
            dhcp_parse(9, &r).unwrap(),
            "message: ACK\nserver-id: 198.18.0.2\n"
        );
        assert!(dhcp_parse(8, &r).is_none());
    }

    #[test]
    fn ldap_entry_and_done() {
        let attr = |n: &str, v: &[&str]| {
            ber::cons(
                ber::SEQUENCE,
                &[
                    ber::tlv(ber::OCTET_STRING, n.as_bytes()),
                    ber::cons(
                        ber::SET,
                        &v.iter()
                            .map(|x| ber::tlv(ber::OCTET_STRING, x.as_bytes()))
                            .collect::<Vec<_>>(),
                    ),
                ],
            )
        };
        let entry = ber::cons(
            ber::SEQUENCE,
            &[
                ber::int(ber::INTEGER, 1),
                ber::cons(
                    0x64,
                    &[
                        ber::tlv(ber::OCTET_STRING, b""),
                        ber::cons(
                            ber::SEQUENCE,
                            &[
                                attr("objectClass", &["top", "OpenLDAProotDSE"]),
                                attr("supportedLDAPVersion", &["3"]),
                            ],
                        ),
                    ],
                ),
            ],
        );
        let done = ber::cons(
            ber::SEQUENCE,
            &[
                ber::int(ber::INTEGER, 1),
                ber::cons(
                    0x65,
                    &[
                        ber::int(ber::ENUMERATED, 0),
                        ber::tlv(4, b""),
                        ber::tlv(4, b""),
                    ],
                ),
            ],
        );
        let all = [entry.clone(), done].concat();
        assert_eq!(end_of_ldap_search(&entry), None);
        assert_eq!(end_of_ldap_search(&all), Some(all.len()));
        let r = ldap_parse(&all).unwrap();
        assert_eq!(
            r.values("supportedldapversion").collect::<Vec<_>>(),
            vec!["3"]
        );
        assert_eq!(r.result, Some(0));
        assert_eq!(openldap_version(&r).as_deref(), Some("2.4 or earlier"));
        assert!(smb_parse(&smb2_negotiate()).is_some());
        assert!(ldap_parse(b"HTTP/1.1 400").is_none());
    }

    /// A recorded answer of a bed's directory (tests/data), parsed.
    fn recorded(b: &[u8]) -> LdapReply {
        assert_eq!(end_of_ldap_search(b), Some(b.len()));
        ldap_parse(b).unwrap()
    }

    const OPENLDAP_ROOT_DSE: &[u8] = include_bytes!("../tests/data/openldap-2.5-rootdse.ber");

    #[test]
    fn ldap_contexts_come_from_the_root_dse() {
        let r = recorded(OPENLDAP_ROOT_DSE);
        assert_eq!(ldap_contexts(&r), ["dc=portolan,dc=test"]);
        let ds = recorded(include_bytes!(
            "../tests/data/389ds-2.3.1-rootdse-contexts.ber"
        ));
        // defaultNamingContext first, and not twice.
        assert_eq!(ldap_contexts(&ds), ["dc=portolan,dc=test"]);
        // The bed-3 root DSE of a 389 DS without a backend names none.
        let bare = recorded(include_bytes!("../tests/data/389ds-2.3.1-rootdse.ber"));
        assert!(ldap_contexts(&bare).is_empty());
        let none = ldap_access(&[]);
        assert_eq!(none.served, None);
        assert!(none.why.contains("no naming context"), "{}", none.why);
        let many = LdapReply {
            attrs: vec![(
                "namingContexts".into(),
                (0..10).map(|i| format!("dc=d{i}")).collect(),
            )],
            ..LdapReply::default()
        };
        assert_eq!(ldap_contexts(&many).len(), LDAP_MAX_CONTEXTS);
    }

    #[test]
    fn an_entry_for_an_anonymous_client_is_an_open_directory() {
        for b in [
            &include_bytes!("../tests/data/openldap-2.5-search-entry.ber")[..],
            &include_bytes!("../tests/data/389ds-2.3.1-search-entry.ber")[..],
        ] {
            let r = recorded(b);
            assert_eq!(r.entries, 1);
            // OpenLDAP and 389 DS both say sizeLimitExceeded after the one entry.
            assert_eq!(r.result, Some(4));
            let a = ldap_search_access("dc=portolan,dc=test", Some(&r));
            assert_eq!(a.served, Some(true));
            assert_eq!(
                a.why,
                "anonymous search of dc=portolan,dc=test returned entry dc=portolan,dc=test"
            );
        }
    }

    #[test]
    fn refusals_of_an_anonymous_client() {
        let cases: [(&[u8], &str); 2] = [
            (
                include_bytes!("../tests/data/openldap-2.5-search-50.ber"),
                "refused (50 insufficientAccessRights)",
            ),
            (
                include_bytes!("../tests/data/389ds-2.3.1-search-48.ber"),
                "refused (48 inappropriateAuthentication: Anonymous access is not allowed.)",
            ),
        ];
        for (b, why) in cases {
            let a = ldap_search_access("dc=portolan,dc=test", Some(&recorded(b)));
            assert_eq!(a.served, Some(false));
            assert!(a.why.ends_with(why), "{}", a.why);
            assert!(!a.wants_tls);
        }
        // Success without an entry: every entry hidden (an access rule that lets
        // anonymous clients search but read nothing).
        let hidden = recorded(include_bytes!(
            "../tests/data/openldap-2.5-search-no-entry.ber"
        ));
        let a = ldap_search_access("dc=portolan,dc=test", Some(&hidden));
        assert_eq!(a.served, Some(false));
        assert!(a.why.contains("returned no entry (success)"), "{}", a.why);
        // Active Directory's answer before a bind.
        let ad = LdapReply {
            result: Some(1),
            diagnostic: "000004DC: LdapErr: DSID-0C090A5C, comment: In order to perform this \
                         operation a successful bind must be completed on the connection., data 0"
                .into(),
            ..LdapReply::default()
        };
        let a = ldap_search_access("DC=corp,DC=example", Some(&ad));
        assert_eq!(a.served, Some(false));
        assert!(a.why.chars().count() < 160, "{}", a.why);
    }

    #[test]
    fn a_refused_root_dse_is_a_refusal() {
        let authc = recorded(include_bytes!("../tests/data/openldap-2.5-rootdse-53.ber"));
        let a = ldap_rootdse_refused(&authc).unwrap();
        assert_eq!(a.served, Some(false));
        assert!(
            a.why
                .ends_with("(53 unwillingToPerform: authentication required)"),
            "{}",
            a.why
        );
        let ssf = recorded(include_bytes!("../tests/data/openldap-2.5-rootdse-13.ber"));
        let a = ldap_rootdse_refused(&ssf).unwrap();
        assert!(a.wants_tls, "confidentialityRequired asks for TLS");
        let off = recorded(include_bytes!("../tests/data/389ds-2.3.1-rootdse-48.ber"));
        assert_eq!(ldap_rootdse_refused(&off).unwrap().served, Some(false));
        assert!(ldap_rootdse_refused(&recorded(OPENLDAP_ROOT_DSE)).is_none());
        // unwillingToPerform about something else is no refusal of anonymous clients.
        let busy = LdapReply {
            result: Some(53),
            diagnostic: "shutting down".into(),
            ..LdapReply::default()
        };
        assert!(ldap_rootdse_refused(&busy).is_none());
    }

    #[test]
    fn what_decides_nothing() {
        // noSuchObject under a context the root DSE named: OpenLDAP says it for an empty
        // database as for a suffix hidden whole.
        let empty = recorded(include_bytes!("../tests/data/openldap-2.5-search-32.ber"));
        let a = ldap_search_access("dc=portolan,dc=test", Some(&empty));
        assert_eq!(a.served, None);
        assert!(a.why.contains("32 noSuchObject"), "{}", a.why);
        assert!(a.why.contains("empty, or hidden"), "{}", a.why);
        assert_eq!(ldap_search_access("dc=x", None).served, None);
        let referral = LdapReply {
            references: 2,
            result: Some(0),
            ..LdapReply::default()
        };
        assert_eq!(ldap_search_access("dc=x", Some(&referral)).served, None);
        let busy = LdapReply {
            result: Some(51),
            ..LdapReply::default()
        };
        assert_eq!(ldap_search_access("dc=x", Some(&busy)).served, None);
        // Over several contexts: one open is open; one unknown among refusals is unknown.
        let refused = ldap_search_access(
            "dc=a",
            Some(&recorded(include_bytes!(
                "../tests/data/openldap-2.5-search-50.ber"
            ))),
        );
        let unknown = ldap_search_access("dc=b", None);
        let open = ldap_search_access(
            "dc=c",
            Some(&recorded(include_bytes!(
                "../tests/data/openldap-2.5-search-entry.ber"
            ))),
        );
        assert_eq!(
            ldap_access(&[refused.clone(), unknown.clone()]).served,
            None
        );
        assert_eq!(
            ldap_access(&[refused.clone(), refused.clone()]).served,
            Some(false)
        );
        assert_eq!(ldap_access(&[refused, unknown, open]).served, Some(true));
    }

    #[test]
    fn ntp_reply() {
        let mut r = vec![0u8; 48];
        r[0] = 0x24; // v4 server
        r[1] = 2;
        r[12..16].copy_from_slice(&[198, 18, 0, 9]);
        let p = ntp_parse(&r).unwrap();
        assert_eq!(
            (p.version, p.stratum, p.refid.as_str()),
            (4, 2, "198.18.0.9")
        );
        assert!(ntp_parse(&ntp_request()).is_none());
    }
}
