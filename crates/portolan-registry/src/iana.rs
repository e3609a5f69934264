//! The IANA registry, compiled in by `build.rs`: one [`Record`] per row of the CSV.

use std::fmt;

use crate::{PortRange, Proto};

/// One row as the build script lays it out: first and last port, protocol code, flags
/// (bit 0: has a port; bits 1-2: [`Status`]), the canonical row of an alias row, and the
/// text fields as indices into the string table.
pub(crate) struct Raw(
    pub(crate) u16,
    pub(crate) u16,
    pub(crate) u8,
    pub(crate) u8,
    pub(crate) u16,
    pub(crate) [u32; 12],
);

mod generated {
    use super::Raw;
    include!(concat!(env!("OUT_DIR"), "/iana.rs"));
}
pub(crate) use generated::{
    NAME_INDEX, NAME_KEY_OFF, NAME_KEYS, RECORDS, SEG_OFF, SEG_RECS, SEG_START, STR_OFF, STRINGS,
};

const NO_LINK: u16 = u16::MAX;

/// What a row of the registry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A named service.
    Assigned,
    /// Reserved by IANA: no service may use it.
    Reserved,
    /// Free: nothing is assigned.
    Unassigned,
    /// A row without a service name that is neither reserved nor unassigned (private use,
    /// de-registered, removed...); its description says which.
    Unnamed,
    /// A port of the dynamic range, 49152-65535, which IANA lists no row for: RFC 6335
    /// says these ports are never assigned.
    NeverAssigned,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Assigned => "assigned",
            Status::Reserved => "reserved",
            Status::Unassigned => "unassigned",
            Status::Unnamed => "unnamed",
            Status::NeverAssigned => "never-assigned",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of IANA's registry, with every column.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Record {
    idx: u16,
}

fn text(i: u32) -> &'static str {
    let i = i as usize;
    &STRINGS[STR_OFF[i] as usize..STR_OFF[i + 1] as usize]
}

impl Record {
    fn raw(self) -> &'static Raw {
        &RECORDS[usize::from(self.idx)]
    }

    /// Every row of the registry, in the order of IANA's file (alias rows included).
    pub fn all() -> impl ExactSizeIterator<Item = Record> + Clone {
        (0..RECORDS.len()).map(|i| Record { idx: i as u16 })
    }

    /// The row's position in IANA's file (0 is the first row after the header).
    pub fn index(self) -> usize {
        usize::from(self.idx)
    }

    /// The service name; empty on Reserved and Unassigned rows.
    pub fn name(self) -> &'static str {
        text(self.raw().5[0])
    }

    /// The port or range; `None` for a name registered without a port.
    pub fn ports(self) -> Option<PortRange> {
        let r = self.raw();
        (r.3 & 1 != 0).then_some(PortRange {
            first: r.0,
            last: r.1,
        })
    }

    /// The protocol; `None` when the row names none (it then holds for every protocol).
    pub fn proto(self) -> Option<Proto> {
        match self.raw().2 {
            1 => Some(Proto::Tcp),
            2 => Some(Proto::Udp),
            3 => Some(Proto::Sctp),
            4 => Some(Proto::Dccp),
            _ => None,
        }
    }

    pub fn status(self) -> Status {
        match (self.raw().3 >> 1) & 3 {
            0 => Status::Assigned,
            1 => Status::Reserved,
            2 => Status::Unassigned,
            _ => Status::Unnamed,
        }
    }

    pub fn description(self) -> &'static str {
        text(self.raw().5[1])
    }
    pub fn assignee(self) -> &'static str {
        text(self.raw().5[2])
    }
    pub fn contact(self) -> &'static str {
        text(self.raw().5[3])
    }
    /// Registration date, `YYYY-MM-DD`, or empty.
    pub fn registered(self) -> &'static str {
        text(self.raw().5[4])
    }
    /// Modification date, `YYYY-MM-DD`, or empty.
    pub fn modified(self) -> &'static str {
        text(self.raw().5[5])
    }
    /// The reference, e.g. `[RFC2818]`.
    pub fn reference(self) -> &'static str {
        text(self.raw().5[6])
    }
    pub fn service_code(self) -> &'static str {
        text(self.raw().5[7])
    }
    /// Reports of unauthorized use of the port.
    pub fn unauthorized_use(self) -> &'static str {
        text(self.raw().5[8])
    }
    /// IANA's assignment notes (may span lines).
    pub fn notes(self) -> &'static str {
        text(self.raw().5[9])
    }

    /// For a historic alias row (`whois++`), the canonical row it stands for (`whoispp`).
    pub fn alias_of(self) -> Option<Record> {
        let link = self.raw().4;
        (link != NO_LINK).then_some(Record { idx: link })
    }

    /// The historic names that are aliases of this row, space-separated (`whois++`).
    pub fn aliases(self) -> &'static str {
        text(self.raw().5[11])
    }

    /// True on a historic alias row.
    pub fn is_alias(self) -> bool {
        self.raw().4 != NO_LINK
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("line", &self.idx)
            .field("name", &self.name())
            .field("ports", &self.ports())
            .field("proto", &self.proto())
            .field("status", &self.status())
            .field("description", &self.description())
            .finish()
    }
}

/// The rows (no alias rows) whose ports cover `port`, in file order.
pub(crate) fn covering(port: u16) -> impl Iterator<Item = Record> + Clone {
    let s = SEG_START.partition_point(|&start| start <= port) - 1;
    SEG_RECS[SEG_OFF[s] as usize..SEG_OFF[s + 1] as usize]
        .iter()
        .map(|&idx| Record { idx })
}

/// The rows named `name` (any case), alias rows included, in file order.
pub(crate) fn named(name: &str) -> impl Iterator<Item = Record> + Clone {
    // Lower-case the query on the stack (names are short), then compare bytes with the
    // lower-case keys the build script laid out in index order.
    let mut buf = [0u8; 64];
    let owned;
    let key: &[u8] = if name.len() <= buf.len() {
        let b = &mut buf[..name.len()];
        b.copy_from_slice(name.as_bytes());
        b.make_ascii_lowercase();
        b
    } else {
        owned = name.to_ascii_lowercase();
        owned.as_bytes()
    };
    let at =
        |k: usize| &NAME_KEYS.as_bytes()[NAME_KEY_OFF[k] as usize..NAME_KEY_OFF[k + 1] as usize];
    let n = NAME_INDEX.len();
    let lo = partition(n, |k| at(k) < key);
    let hi = lo + partition(n - lo, |k| at(lo + k) == key);
    NAME_INDEX[lo..hi].iter().map(|&idx| Record { idx })
}

/// The first `k` in `0..n` for which `pred` is false (`pred` true then false).
fn partition(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}
