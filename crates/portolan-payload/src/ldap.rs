//! LDAP requests (RFC 4511): the root DSE search, an anonymous search of a naming
//! context, and the StartTLS extended request. None binds: an LDAPv3 client that sends
//! no bind is anonymous (RFC 4513, 5.1.1).

use crate::ber;

/// The protocolOp tag of a SearchRequest ([APPLICATION 3], constructed).
const SEARCH_REQUEST: u8 = 0x63;
/// The filter `(attr=*)`: a present filter ([7], primitive).
const PRESENT: u8 = 0x87;

/// The root DSE attributes detection asks for.
const ROOT_DSE_ATTRS: &[&str] = &[
    "*",
    "+",
    "vendorName",
    "vendorVersion",
    "supportedLDAPVersion",
    "objectClass",
];

/// The search scope (RFC 4511, 4.5.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Base = 0,
    Subtree = 2,
}

/// A SearchRequest for `(objectClass=*)` under `base`, with the limits the server must
/// apply (`size_limit` entries, `time_limit` seconds) and the attributes wanted.
pub fn search(
    msgid: i64,
    base: &str,
    scope: Scope,
    size_limit: i64,
    time_limit: i64,
    attrs: &[&str],
) -> Vec<u8> {
    let attrs: Vec<Vec<u8>> = attrs
        .iter()
        .map(|a| ber::tlv(ber::OCTET_STRING, a.as_bytes()))
        .collect();
    let search = ber::cons(
        SEARCH_REQUEST,
        &[
            ber::tlv(ber::OCTET_STRING, base.as_bytes()),
            ber::int(ber::ENUMERATED, scope as i64),
            ber::int(ber::ENUMERATED, 0), // derefAliases: never
            ber::int(ber::INTEGER, size_limit),
            ber::int(ber::INTEGER, time_limit),
            ber::tlv(ber::BOOLEAN, &[0]), // typesOnly: false
            ber::tlv(PRESENT, b"objectClass"),
            ber::cons(ber::SEQUENCE, &attrs),
        ],
    );
    ber::cons(ber::SEQUENCE, &[ber::int(ber::INTEGER, msgid), search])
}

/// A search of the root DSE: base "", scope base, no size limit, 10 seconds.
pub fn rootdse(msgid: i64) -> Vec<u8> {
    search(msgid, "", Scope::Base, 0, 10, ROOT_DSE_ATTRS)
}

/// An anonymous search for one entry under a naming context: the whole subtree, at most
/// one entry, its `objectClass` only, and at most 2 seconds of the server's time. A
/// directory open to anonymous clients answers with an entry.
pub fn anonymous_search(msgid: i64, base: &str) -> Vec<u8> {
    search(msgid, base, Scope::Subtree, 1, 2, &["objectClass"])
}

/// The StartTLS extended request (RFC 4511, 4.14.1).
pub fn starttls(msgid: i64) -> Vec<u8> {
    let req = ber::cons(0x77, &[ber::tlv(0x80, b"1.3.6.1.4.1.1466.20037")]);
    ber::cons(ber::SEQUENCE, &[ber::int(ber::INTEGER, msgid), req])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_dse_search_is_unchanged() {
        // The bytes portolan sent before the builder moved here (the recorded answers
        // of the beds were taken with them).
        let hex = "3069020101636404000a01000a010002010002010a010100870b6f626a656374436c617373\
                   304404012a04012b040a76656e646f724e616d65040d76656e646f7256657273696f6e\
                   0414737570706f727465644c44415056657273696f6e040b6f626a656374436c617373";
        let want: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(rootdse(1), want);
    }

    #[test]
    fn anonymous_search_asks_for_one_entry_of_the_subtree() {
        let r = anonymous_search(2, "dc=portolan,dc=test");
        let (msg, rest) = ber::parse(&r).unwrap();
        assert!(rest.is_empty());
        let parts = ber::children(msg.content).unwrap();
        assert_eq!(ber::as_int(parts[0].content), Some(2));
        let req = ber::children(parts[1].content).unwrap();
        assert_eq!(req[0].content, b"dc=portolan,dc=test");
        let ints: Vec<_> = req[1..5].iter().map(|t| ber::as_int(t.content)).collect();
        assert_eq!(ints, [Some(2), Some(0), Some(1), Some(2)]);
        assert_eq!((req[6].tag, req[6].content), (PRESENT, &b"objectClass"[..]));
        let attrs = ber::children(req[7].content).unwrap();
        assert_eq!(attrs.len(), 1);
    }
}
