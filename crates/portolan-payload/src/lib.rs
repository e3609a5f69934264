//! The requests portolan's probes send, as bytes, written from the protocol RFCs: the
//! scanner's UDP payloads (so that a service that ignores an empty datagram still
//! answers) and the questions service detection asks. Both crates build them here, so an
//! encoding is written once. The parsers of the replies live with detection.
//!
//! Every function is pure: no I/O, no clock. Transaction IDs are parameters; the
//! scanner's fixed ones are [`SCAN_ID`] and [`SCAN_XID`].
#![forbid(unsafe_code)]

pub mod ber;
pub mod ldap;
pub mod service;

use std::net::Ipv4Addr;

/// The UDP protocols portolan has a payload for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Dns,
    Ntp,
    Snmp,
    NetbiosNs,
    Tftp,
    Dhcp,
    /// ONC RPC portmapper / rpcbind (DUMP).
    Rpc,
    /// memcached's `version`, with the UDP frame header.
    Memcached,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Dns,
        Kind::Ntp,
        Kind::Snmp,
        Kind::NetbiosNs,
        Kind::Tftp,
        Kind::Dhcp,
        Kind::Rpc,
        Kind::Memcached,
    ];

    /// The protocol a well-known UDP port suggests.
    pub fn for_port(port: u16) -> Option<Kind> {
        Some(match port {
            53 | 5353 => Kind::Dns,
            123 => Kind::Ntp,
            161 => Kind::Snmp,
            137 => Kind::NetbiosNs,
            69 => Kind::Tftp,
            67 => Kind::Dhcp,
            111 => Kind::Rpc,
            11211 => Kind::Memcached,
            _ => return None,
        })
    }
}

/// The transaction ID of the scanner's payloads ("po").
pub const SCAN_ID: u16 = 0x706f;
/// The DHCP transaction ID of the scanner's payload ("port").
pub const SCAN_XID: u32 = 0x706f_7274;
/// The file the scanner's TFTP read request asks for.
pub const SCAN_TFTP_FILE: &str = "portolan-probe.txt";

/// The scanner's payload for a UDP probe to `port`; `try_no` (from 1) lets a retry vary
/// it (SNMP alternates v2c and v1). Ports without one get an empty datagram.
pub fn for_port(port: u16, try_no: u8) -> Vec<u8> {
    match Kind::for_port(port) {
        Some(Kind::Dns) => dns_root_ns_query(SCAN_ID),
        Some(Kind::Ntp) => ntp_request(),
        Some(Kind::Snmp) => {
            let version = if try_no % 2 == 1 { 1 } else { 0 };
            snmp_get(version, "public", i32::from(SCAN_ID), &[&SYS_DESCR])
        }
        Some(Kind::NetbiosNs) => nbstat_query(SCAN_ID),
        Some(Kind::Tftp) => tftp_rrq(SCAN_TFTP_FILE),
        Some(Kind::Dhcp) => dhcp_discover(SCAN_XID),
        Some(Kind::Rpc) => service::rpc_dump(SCAN_XID),
        Some(Kind::Memcached) => service::memcached_udp_version(SCAN_ID),
        None => Vec::new(),
    }
}

// ---- DNS (RFC 1035) ----

/// The 12-byte header of a standard query with recursion desired and one question.
fn dns_header(id: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(40);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    m
}

/// A query for the root's NS records. Every resolver or authoritative server answers
/// it, if only with REFUSED.
pub fn dns_root_ns_query(id: u16) -> Vec<u8> {
    let mut m = dns_header(id);
    m.push(0); // QNAME: the root
    m.extend_from_slice(&[0, 2, 0, 1]); // NS, IN
    m
}

/// A `version.bind` CH TXT query; over TCP it gets its two-byte length prefix.
pub fn dns_version_query(id: u16, tcp: bool) -> Vec<u8> {
    let mut m = dns_header(id);
    for label in ["version", "bind"] {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&[0, 16, 0, 3]); // TXT, CH
    if tcp {
        let mut t = (m.len() as u16).to_be_bytes().to_vec();
        t.extend_from_slice(&m);
        t
    } else {
        m
    }
}

// ---- NTP (RFC 5905) and its mode 6 control messages ----

/// A 48-byte client-mode request: leap indicator 3 (unsynchronised), version 4, mode 3.
pub fn ntp_request() -> Vec<u8> {
    let mut p = vec![0u8; 48];
    p[0] = (3 << 6) | (4 << 3) | 3;
    p
}

/// A mode 6 READVAR request for the system variables (ntpd answers it with its version).
pub fn ntp_readvar(seq: u16) -> Vec<u8> {
    let mut p = vec![0x16, 0x02];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0; 8]);
    p
}

// ---- SNMP (RFC 1157, RFC 3416) ----

pub const SYS_DESCR: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 1, 0];
pub const SYS_OBJECT_ID: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 2, 0];
/// UCD-SNMP-MIB versionTag: Net-SNMP's own version.
pub const UCD_VERSION: [u32; 10] = [1, 3, 6, 1, 4, 1, 2021, 100, 2, 0];

/// A GetRequest for `oids` with request ID `req`. `version` is 0 for v1, 1 for v2c.
pub fn snmp_get(version: i64, community: &str, req: i32, oids: &[&[u32]]) -> Vec<u8> {
    let binds: Vec<Vec<u8>> = oids
        .iter()
        .map(|o| ber::cons(ber::SEQUENCE, &[ber::oid(o), ber::tlv(ber::NULL, &[])]))
        .collect();
    let pdu = ber::cons(
        0xa0, // GetRequest-PDU
        &[
            ber::int(ber::INTEGER, i64::from(req)),
            ber::int(ber::INTEGER, 0), // error-status
            ber::int(ber::INTEGER, 0), // error-index
            ber::cons(ber::SEQUENCE, &binds),
        ],
    );
    ber::cons(
        ber::SEQUENCE,
        &[
            ber::int(ber::INTEGER, version),
            ber::tlv(ber::OCTET_STRING, community.as_bytes()),
            pdu,
        ],
    )
}

// ---- NetBIOS (RFC 1001, 1002) ----

/// First-level encoding of a NetBIOS name (15 characters padded with `pad`, then the
/// suffix byte), as the 34-byte wire form.
pub fn nb_name(name: &str, pad: u8, suffix: u8) -> Vec<u8> {
    let mut raw = [pad; 16];
    for (i, c) in name.bytes().take(15).enumerate() {
        raw[i] = c;
    }
    raw[15] = suffix;
    let mut out = vec![32];
    for b in raw {
        out.push(b'A' + (b >> 4));
        out.push(b'A' + (b & 0x0f));
    }
    out.push(0);
    out
}

/// A node status (NBSTAT) request for the wildcard name `*`.
pub fn nbstat_query(id: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]); // query, one question
    m.extend(nb_name("*", 0, 0));
    m.extend_from_slice(&[0, 0x21, 0, 1]); // NBSTAT, IN
    m
}

/// A session service request (TCP port 139) to `*SMBSERVER`.
pub fn nb_session_request() -> Vec<u8> {
    let mut body = nb_name("*SMBSERVER", b' ', 0x20);
    body.extend(nb_name("PORTOLAN", b' ', 0));
    let mut m = vec![0x81, 0];
    m.extend_from_slice(&(body.len() as u16).to_be_bytes());
    m.extend(body);
    m
}

// ---- TFTP (RFC 1350) ----

/// A read request for `file` in octet mode; a server answers with DATA or an ERROR
/// packet (ask for a file that should not exist).
pub fn tftp_rrq(file: &str) -> Vec<u8> {
    let mut m = vec![0, 1];
    m.extend_from_slice(file.as_bytes());
    m.push(0);
    m.extend_from_slice(b"octet\0");
    m
}

// ---- DHCP (RFC 2131, 2132) ----

/// The magic cookie that starts the options of a DHCP message.
pub const DHCP_COOKIE: [u8; 4] = [99, 130, 83, 99];

/// A BOOTREQUEST (Ethernet) up to and including the magic cookie.
fn bootrequest(xid: u32, ciaddr: Ipv4Addr, mac: [u8; 6]) -> Vec<u8> {
    let mut m = vec![0u8; 240];
    m[0] = 1; // BOOTREQUEST
    m[1] = 1; // Ethernet
    m[2] = 6; // hlen
    m[4..8].copy_from_slice(&xid.to_be_bytes());
    m[12..16].copy_from_slice(&ciaddr.octets());
    m[28..34].copy_from_slice(&mac);
    m[236..240].copy_from_slice(&DHCP_COOKIE);
    m
}

/// A DHCPDISCOVER with the broadcast flag and a fixed client hardware address.
pub fn dhcp_discover(xid: u32) -> Vec<u8> {
    let mut m = bootrequest(
        xid,
        Ipv4Addr::UNSPECIFIED,
        [0x02, 0x00, 0x5e, 0x70, 0x6f, 0x72],
    );
    m[10] = 0x80; // broadcast flag
    m.extend_from_slice(&[53, 1, 1]); // DHCP message type: DISCOVER
    m.extend_from_slice(&[55, 3, 1, 3, 6]); // ask for mask, router, DNS
    m.push(255);
    m
}

/// A DHCPINFORM from `ciaddr`: the server answers it with a unicast DHCPACK to the
/// address (and, for most servers, the port) it came from.
pub fn dhcp_inform(xid: u32, ciaddr: Ipv4Addr, mac: [u8; 6]) -> Vec<u8> {
    let mut m = bootrequest(xid, ciaddr, mac);
    m.extend_from_slice(&[53, 1, 8]); // DHCPINFORM
    m.extend_from_slice(&[55, 4, 1, 3, 6, 15]); // ask for mask, router, DNS, domain
    m.push(255);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// The scanner's payloads, byte for byte as they were before they moved here.
    #[test]
    fn scanner_payloads_are_unchanged() {
        let zeros = |n: usize| "00".repeat(n);
        let dhcp = format!(
            "01010600706f72740000800000000000000000000000000000000000\
             02005e706f72{}63825363350101370301030 6ff",
            zeros(202)
        )
        .replace(' ', "");
        let want: [(u16, u8, String); 9] = [
            (53, 1, "706f010000010000000000000000020001".into()),
            (5353, 2, "706f010000010000000000000000020001".into()),
            (123, 1, format!("e3{}", zeros(47))),
            (
                161,
                1,
                "302702010104067075626c6963a01a0202706f020100020100300e300c06082b060102010101000500"
                    .into(),
            ),
            (
                161,
                2,
                "302702010004067075626c6963a01a0202706f020100020100300e300c06082b060102010101000500"
                    .into(),
            ),
            (
                137,
                1,
                format!("706f00000001000000000000204{}{}0000210001", "34b", "41".repeat(30)),
            ),
            (
                69,
                1,
                "0001706f72746f6c616e2d70726f62652e747874006f6374657400".into(),
            ),
            (67, 1, dhcp),
            (9999, 1, String::new()),
        ];
        for (port, try_no, bytes) in want {
            assert_eq!(hex(&for_port(port, try_no)), bytes, "{port} try {try_no}");
        }
    }

    #[test]
    fn detection_requests() {
        let q = dns_version_query(0x1234, false);
        assert_eq!(&q[..2], &[0x12, 0x34]);
        assert!(q.ends_with(&[0, 16, 0, 3]));
        assert_eq!(&dns_version_query(1, true)[..2], &[0, q.len() as u8]);
        assert_eq!(ntp_readvar(7), [0x16, 2, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0]);
        let inform = dhcp_inform(9, Ipv4Addr::new(198, 18, 0, 1), [2, 0, 0, 0, 0, 1]);
        assert_eq!(&inform[12..16], &[198, 18, 0, 1]);
        assert_eq!(&inform[240..243], &[53, 1, 8]);
        assert_eq!(inform[10], 0, "no broadcast flag: the reply is unicast");
        let s = nb_session_request();
        assert_eq!(usize::from(u16::from_be_bytes([s[2], s[3]])), s.len() - 4);
    }

    #[test]
    fn every_kind_has_a_port() {
        for k in Kind::ALL {
            assert!(
                (1..=u16::MAX).any(|p| Kind::for_port(p) == Some(k)),
                "{k:?}"
            );
        }
    }
}
