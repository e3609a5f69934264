//! The small part of BER (X.690) that SNMP and LDAP need: definite lengths, one-byte tags,
//! integers, strings and object identifiers. Decoding never trusts a length it cannot see.

use std::fmt::Write as _;

pub const INTEGER: u8 = 0x02;
pub const OCTET_STRING: u8 = 0x04;
pub const NULL: u8 = 0x05;
pub const OID: u8 = 0x06;
pub const ENUMERATED: u8 = 0x0a;
pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;
pub const BOOLEAN: u8 = 0x01;

/// Why a BER encoding could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BerError {
    #[error("BER data ends early")]
    Truncated,
    #[error("BER length form not supported")]
    Length,
    #[error("BER multi-byte tags are not supported")]
    Tag,
}

/// One decoded element: its tag and the bytes of its contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
}

/// Encodes a length in the shortest definite form.
fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Encodes one element.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    push_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// A constructed element from already encoded parts.
pub fn cons(tag: u8, parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(tag, &parts.concat())
}

/// An integer in the fewest two's-complement bytes.
pub fn int(tag: u8, v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    tlv(tag, &bytes[start..])
}

/// An object identifier from its dotted arcs (at least two).
pub fn oid(arcs: &[u32]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut push = |v: u32| {
        let mut tmp = [0u8; 5];
        let mut n = 0;
        let mut v = v;
        loop {
            tmp[n] = (v & 0x7f) as u8;
            n += 1;
            v >>= 7;
            if v == 0 {
                break;
            }
        }
        for i in (0..n).rev() {
            body.push(tmp[i] | if i > 0 { 0x80 } else { 0 });
        }
    };
    if arcs.len() >= 2 {
        push(arcs[0] * 40 + arcs[1]);
        for a in &arcs[2..] {
            push(*a);
        }
    }
    tlv(OID, &body)
}

/// Reads one element from the front of `data`; returns it and the rest.
pub fn parse(data: &[u8]) -> Result<(Tlv<'_>, &[u8]), BerError> {
    let (&tag, rest) = data.split_first().ok_or(BerError::Truncated)?;
    if tag & 0x1f == 0x1f {
        return Err(BerError::Tag);
    }
    let (&first, mut rest) = rest.split_first().ok_or(BerError::Truncated)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(BerError::Length);
        }
        if rest.len() < n {
            return Err(BerError::Truncated);
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return Err(BerError::Truncated);
    }
    Ok((
        Tlv {
            tag,
            content: &rest[..len],
        },
        &rest[len..],
    ))
}

/// How many bytes the element at the front of `data` takes, once its header is there;
/// `None` while the header itself is incomplete or invalid.
pub fn element_len(data: &[u8]) -> Option<usize> {
    let first = *data.get(1)?;
    if first < 0x80 {
        return Some(2 + usize::from(first));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let bytes = data.get(2..2 + n)?;
    let len = bytes
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Some(2 + n + len)
}

/// All elements inside a constructed element's contents.
pub fn children(mut content: &[u8]) -> Result<Vec<Tlv<'_>>, BerError> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (t, rest) = parse(content)?;
        out.push(t);
        content = rest;
    }
    Ok(out)
}

/// An integer's value (up to 8 bytes).
pub fn as_int(content: &[u8]) -> Option<i64> {
    if content.is_empty() || content.len() > 8 {
        return None;
    }
    let neg = content[0] & 0x80 != 0;
    let mut v: i64 = if neg { -1 } else { 0 };
    for b in content {
        v = (v << 8) | i64::from(*b);
    }
    Some(v)
}

/// An object identifier in dotted form.
pub fn as_oid(content: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut v: u64 = 0;
    for (i, b) in content.iter().enumerate() {
        if v > (u64::MAX >> 8) {
            return None;
        }
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (v / 40).min(2);
                arcs.push(first);
                arcs.push(v - first * 40);
            } else {
                arcs.push(v);
            }
            v = 0;
        } else if i + 1 == content.len() {
            return None;
        }
    }
    if arcs.is_empty() {
        return None;
    }
    let mut s = String::new();
    for (i, a) in arcs.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        let _ = write!(s, "{a}");
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encodes_lengths_and_integers() {
        assert_eq!(int(INTEGER, 0), vec![2, 1, 0]);
        assert_eq!(int(INTEGER, 128), vec![2, 2, 0, 128]);
        assert_eq!(int(INTEGER, -1), vec![2, 1, 0xff]);
        let long = tlv(OCTET_STRING, &[7u8; 300]);
        assert_eq!(&long[..4], &[4, 0x82, 1, 44]);
        assert_eq!(element_len(&long), Some(304));
    }

    #[test]
    fn oid_round_trip() {
        let e = oid(&[1, 3, 6, 1, 4, 1, 8072, 3, 2, 10]);
        let (t, rest) = parse(&e).unwrap();
        assert!(rest.is_empty());
        assert_eq!(t.tag, OID);
        assert_eq!(as_oid(t.content).unwrap(), "1.3.6.1.4.1.8072.3.2.10");
    }

    #[test]
    fn rejects_lengths_past_the_end() {
        assert_eq!(parse(&[4, 5, 1, 2]), Err(BerError::Truncated));
        assert_eq!(parse(&[4, 0x80]), Err(BerError::Length));
        assert_eq!(parse(&[0x1f, 1, 0]), Err(BerError::Tag));
    }

    proptest! {
        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok((t, rest)) = parse(&data) {
                prop_assert!(t.content.len() + rest.len() < data.len());
            }
            let _ = children(&data);
            let _ = as_oid(&data);
        }

        #[test]
        fn int_round_trip(v in any::<i64>()) {
            let e = int(INTEGER, v);
            let (t, _) = parse(&e).unwrap();
            prop_assert_eq!(as_int(t.content), Some(v));
        }
    }
}
