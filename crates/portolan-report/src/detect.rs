//! `portolan detect`: the table and the JSON Lines (docs/json.md). Every cell but the
//! target's transport came from the peer, so each goes through [`terminal`].

use std::io;
use std::net::SocketAddr;

use portolan_model::{Detection, Proto};
use serde::Serialize;

use crate::table::Table;
use crate::text::terminal;

#[derive(Serialize)]
struct Line<'a> {
    target: &'a str,
    address: SocketAddr,
    transport: Proto,
    detected: &'a Detection,
}

/// One line of `portolan detect --json`: `target` (as written), `address` (what it
/// resolved to), `transport` (`tcp` or `udp`) and `detected`.
pub fn json_line(
    w: &mut dyn io::Write,
    target: &str,
    address: SocketAddr,
    transport: Proto,
    detected: &Detection,
) -> io::Result<()> {
    crate::json::line(
        w,
        &Line {
            target,
            address,
            transport,
            detected,
        },
    )
}

/// The columns of the detect table.
pub const HEADERS: [&str; 7] = [
    "TARGET", "SERVICE", "PRODUCT", "VERSION", "TLS", "NOTES", "EVIDENCE",
];

/// One row: the target as written, then what answered. Peer text is escaped.
pub fn row(target: &str, d: &Detection) -> Vec<String> {
    let cell = |s: Option<&str>| s.map_or_else(|| "-".to_string(), |s| terminal(s).into_owned());
    let tls = d
        .tls
        .as_ref()
        .map(|t| cell(Some(t.version.as_deref().unwrap_or("yes"))))
        .unwrap_or_else(|| "-".into());
    let mut notes = Vec::new();
    if d.is_identified() && d.cleartext {
        notes.push("cleartext");
    }
    if d.starttls {
        notes.push("starttls");
    }
    vec![
        terminal(target).into_owned(),
        cell(d.protocol.as_deref()),
        cell(d.product.as_deref()),
        cell(d.version.as_deref()),
        tls,
        if notes.is_empty() {
            "-".into()
        } else {
            notes.join(",")
        },
        terminal(&d.evidence).into_owned(),
    ]
}

/// The detect table for `(target, detection)` pairs, in order.
pub fn table<'a>(rows: impl IntoIterator<Item = (&'a str, &'a Detection)>) -> Table {
    let mut t = Table::new(HEADERS);
    for (target, d) in rows {
        t.row(row(target, d));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_model::TlsInfo;

    fn smtp() -> Detection {
        Detection {
            protocol: Some("smtp".into()),
            product: Some("Postfix smtpd".into()),
            cleartext: true,
            starttls: true,
            evidence: "220 h ESMTP Postfix".into(),
            ..Detection::default()
        }
    }

    #[test]
    fn table_row_notes() {
        assert_eq!(
            row("h:25", &smtp()),
            vec![
                "h:25",
                "smtp",
                "Postfix smtpd",
                "-",
                "-",
                "cleartext,starttls",
                "220 h ESMTP Postfix"
            ]
        );
    }

    #[test]
    fn the_table() {
        let https = Detection {
            protocol: Some("http".into()),
            product: Some("nginx".into()),
            version: Some("1.22.1".into()),
            tls: Some(TlsInfo {
                version: Some("TLSv1.3".into()),
                ..TlsInfo::default()
            }),
            evidence: "HTTP/1.1 200 OK; Server: nginx/1.22.1".into(),
            ..Detection::default()
        };
        let quiet = Detection::nothing("no reply (open|filtered)");
        let rows = [
            ("198.18.5.2:25", smtp()),
            ("[2001:db8:ffff:ffff:ffff:ffff:ffff:fffe]:443", https),
            ("198.18.5.2:161/udp", quiet),
        ];
        let t = table(rows.iter().map(|(t, d)| (*t, d)));
        insta::assert_snapshot!(t.render(false));
    }

    /// Banners and products are the peer's words: an escape sequence in them must not
    /// reach the terminal.
    #[test]
    fn peer_text_is_escaped() {
        let d = Detection {
            protocol: Some("ssh".into()),
            product: Some("evil\x1b[2J".into()),
            version: Some("1\x07".into()),
            evidence: "SSH-2.0-x\x1b]0;owned\x07".into(),
            ..Detection::default()
        };
        let r = row("h:22\x1b[31m", &d);
        assert!(
            r.iter().all(|c| !c.contains('\x1b') && !c.contains('\x07')),
            "{r:?}"
        );
        assert_eq!(r[2], "evil\\x1b[2J");
    }

    #[test]
    fn json_line_as_documented() {
        let mut buf = Vec::new();
        let addr: SocketAddr = "198.18.5.2:25".parse().unwrap();
        json_line(&mut buf, "mail.test:25", addr, Proto::Tcp, &smtp()).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "{\"target\":\"mail.test:25\",\"address\":\"198.18.5.2:25\",\"transport\":\"tcp\",\
             \"detected\":{\"protocol\":\"smtp\",\"product\":\"Postfix smtpd\",\"version\":null,\
             \"tls\":null,\"cleartext\":true,\"starttls\":true,\"evidence\":\"220 h ESMTP Postfix\"}}\n"
        );
    }
}
