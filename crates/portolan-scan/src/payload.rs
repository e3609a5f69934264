//! UDP probe payloads, so that a service that ignores an empty datagram still answers.
//! They are built in `portolan-payload`, which service detection shares; ports without
//! one get an empty datagram.

pub use portolan_payload::for_port;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_is_one_question() {
        let q = for_port(53, 1);
        assert_eq!(q.len(), 17);
        assert_eq!(&q[4..6], &[0, 1]);
        assert_eq!(for_port(5353, 1), q);
    }

    #[test]
    fn snmp_encoding() {
        let v2 = for_port(161, 1);
        // SEQUENCE, whole length, INTEGER version 1, OCTET STRING "public"
        assert_eq!(v2[0], 0x30);
        assert_eq!(usize::from(v2[1]), v2.len() - 2);
        assert_eq!(&v2[2..5], &[0x02, 0x01, 0x01]);
        assert_eq!(&v2[5..13], b"\x04\x06public");
        assert_eq!(for_port(161, 2)[4], 0);
        assert_eq!(v2[13], 0xa0);
    }

    #[test]
    fn netbios_name_is_encoded() {
        let n = for_port(137, 1);
        assert_eq!(n.len(), 12 + 1 + 32 + 1 + 4);
        assert_eq!(&n[13..15], b"CK");
        assert_eq!(&n[15..17], b"AA");
    }

    #[test]
    fn fixed_sizes() {
        assert_eq!(for_port(123, 1).len(), 48);
        assert_eq!(for_port(123, 1)[0], 0xe3);
        assert_eq!(for_port(67, 1)[240..243], [53, 1, 1]);
        assert!(for_port(69, 1).ends_with(b"octet\0"));
        assert!(for_port(9999, 1).is_empty());
        assert_ne!(for_port(161, 1), for_port(161, 2));
    }
}
