//! UDP probe payloads, written from the protocol RFCs, so that a service that ignores an
//! empty datagram still answers. Ports without one get an empty datagram.

/// The payload for a UDP probe to `port`; `try_no` (from 1) lets a retry vary it (SNMP
/// alternates v1 and v2c).
pub fn for_port(port: u16, try_no: u8) -> Vec<u8> {
    match port {
        53 | 5353 => dns_query(),
        123 => ntp_request(),
        161 => snmp_get(if try_no % 2 == 1 { 1 } else { 0 }, b"public"),
        137 => netbios_nbstat(),
        69 => tftp_rrq(),
        67 => dhcp_discover(),
        _ => Vec::new(),
    }
}

/// RFC 1035: a standard query, recursion desired, for the root's NS records. Every
/// resolver or authoritative server answers it, if only with REFUSED.
pub fn dns_query() -> Vec<u8> {
    vec![
        0x70, 0x6f, // ID
        0x01, 0x00, // flags: RD
        0x00, 0x01, // QDCOUNT
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // AN, NS, AR counts
        0x00, // QNAME: the root
        0x00, 0x02, // QTYPE NS
        0x00, 0x01, // QCLASS IN
    ]
}

/// RFC 5905: a 48-byte client-mode request (LI 3 unsynchronised, version 4, mode 3).
pub fn ntp_request() -> Vec<u8> {
    let mut b = vec![0u8; 48];
    b[0] = (3 << 6) | (4 << 3) | 3;
    b
}

fn ber_len(n: usize, out: &mut Vec<u8>) {
    if n < 0x80 {
        out.push(n as u8);
    } else {
        out.push(0x81);
        out.push(n as u8);
    }
}

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    ber_len(body.len(), &mut v);
    v.extend_from_slice(body);
    v
}

/// RFC 1157 / RFC 3416: a GetRequest for sysDescr.0 (1.3.6.1.2.1.1.1.0) with the given
/// community; `version` 0 is SNMPv1, 1 is SNMPv2c.
pub fn snmp_get(version: u8, community: &[u8]) -> Vec<u8> {
    let oid = tlv(0x06, &[0x2b, 6, 1, 2, 1, 1, 1, 0]);
    let varbind = tlv(0x30, &[oid, vec![0x05, 0x00]].concat());
    let varbinds = tlv(0x30, &varbind);
    let pdu_body = [
        tlv(0x02, &[0x70, 0x6f]), // request-id
        tlv(0x02, &[0]),          // error-status
        tlv(0x02, &[0]),          // error-index
        varbinds,
    ]
    .concat();
    let pdu = tlv(0xa0, &pdu_body); // GetRequest-PDU
    let msg = [tlv(0x02, &[version]), tlv(0x04, community), pdu].concat();
    tlv(0x30, &msg)
}

/// RFC 1002: a NODE STATUS (NBSTAT) request for the wildcard name `*`.
pub fn netbios_nbstat() -> Vec<u8> {
    let mut b = vec![
        0x70, 0x6f, // transaction id
        0x00, 0x00, // flags: query
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // QD=1
        0x20, // name length 32
    ];
    // First-level encoding of "*" followed by 15 NULs: each nibble + 'A'.
    let mut name = [0u8; 16];
    name[0] = b'*';
    for c in name {
        b.push(b'A' + (c >> 4));
        b.push(b'A' + (c & 0x0f));
    }
    b.push(0); // end of name
    b.extend_from_slice(&[0x00, 0x21, 0x00, 0x01]); // NBSTAT, IN
    b
}

/// RFC 1350: a read request for a file that should not exist, in octet mode; a server
/// answers with DATA or an ERROR packet.
pub fn tftp_rrq() -> Vec<u8> {
    let mut b = vec![0x00, 0x01];
    b.extend_from_slice(b"portolan-probe.txt\0octet\0");
    b
}

/// RFC 2131: a DHCPDISCOVER with a fixed client hardware address.
pub fn dhcp_discover() -> Vec<u8> {
    let mut b = vec![0u8; 240];
    b[0] = 1; // BOOTREQUEST
    b[1] = 1; // Ethernet
    b[2] = 6; // hlen
    b[4..8].copy_from_slice(&[0x70, 0x6f, 0x72, 0x74]); // xid
    b[10] = 0x80; // broadcast flag
    b[28..34].copy_from_slice(&[0x02, 0x00, 0x5e, 0x70, 0x6f, 0x72]); // chaddr
    b[236..240].copy_from_slice(&[99, 130, 83, 99]); // magic cookie
    b.extend_from_slice(&[53, 1, 1]); // DHCP message type: DISCOVER
    b.extend_from_slice(&[55, 3, 1, 3, 6]); // ask for mask, router, DNS
    b.push(255);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_is_one_question() {
        let q = dns_query();
        assert_eq!(q.len(), 17);
        assert_eq!(&q[4..6], &[0, 1]);
    }

    #[test]
    fn snmp_encoding() {
        let v2 = snmp_get(1, b"public");
        // SEQUENCE, whole length, INTEGER version 1, OCTET STRING "public"
        assert_eq!(v2[0], 0x30);
        assert_eq!(usize::from(v2[1]), v2.len() - 2);
        assert_eq!(&v2[2..5], &[0x02, 0x01, 0x01]);
        assert_eq!(&v2[5..13], b"\x04\x06public");
        assert_eq!(snmp_get(0, b"public")[4], 0);
        assert_eq!(v2[13], 0xa0);
    }

    #[test]
    fn netbios_name_is_encoded() {
        let n = netbios_nbstat();
        assert_eq!(n.len(), 12 + 1 + 32 + 1 + 4);
        assert_eq!(&n[13..15], b"CK");
        assert_eq!(&n[15..17], b"AA");
    }

    #[test]
    fn fixed_sizes() {
        assert_eq!(ntp_request().len(), 48);
        assert_eq!(ntp_request()[0], 0xe3);
        assert_eq!(dhcp_discover()[240..243], [53, 1, 1]);
        assert!(tftp_rrq().ends_with(b"octet\0"));
        assert!(for_port(9999, 1).is_empty());
        assert_ne!(for_port(161, 1), for_port(161, 2));
    }
}
