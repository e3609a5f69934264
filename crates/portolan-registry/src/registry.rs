//! The registry: IANA's table, optionally merged with a services file, and its answers.

use std::fmt;
use std::path::Path;

use crate::iana::{self, Record, Status};
use crate::{Category, PortRange, Proto};

/// Where an answer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source<'a> {
    /// IANA's registry, built in.
    Iana,
    /// The system's `/etc/services`.
    System,
    /// A services file the user named (`--services FILE`).
    File(&'a Path),
}

impl Source<'_> {
    /// `iana`, `system`, or the file's path.
    pub fn label(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Source::Iana => "iana".into(),
            Source::System => "system".into(),
            Source::File(p) => p.to_string_lossy(),
        }
    }
}

impl fmt::Display for Source<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// One answer of the registry: a service (or a reserved/unassigned row) at a port or
/// range, for one protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The service name; empty on IANA's Reserved and Unassigned rows.
    pub name: &'a str,
    /// The port or range; `None` for a name IANA registered without a port.
    pub ports: Option<PortRange>,
    /// The protocol, when it is one of IANA's four; see [`Entry::protocol`] for the text.
    pub proto: Option<Proto>,
    /// The protocol as written: `tcp`, `udp`, `sctp`, `dccp`, any other word a services
    /// file uses (`ddp`), or empty when an IANA row names no protocol.
    pub protocol: &'a str,
    pub description: &'a str,
    pub status: Status,
    pub source: Source<'a>,
    /// The IANA row: the entry itself when the source is IANA, or the row that agrees
    /// with a services-file line (same name or alias, port and protocol).
    pub iana: Option<Record>,
    aliases: &'a str,
}

impl<'a> Entry<'a> {
    fn from_record(r: Record) -> Entry<'static> {
        Entry {
            name: r.name(),
            ports: r.ports(),
            proto: r.proto(),
            protocol: r.proto().map_or("", Proto::as_str),
            description: r.description(),
            status: r.status(),
            source: Source::Iana,
            iana: Some(r),
            aliases: r.aliases(),
        }
    }

    /// Other names of the service: a services file's aliases (`www` for `http`), or IANA's
    /// historic names (`whois++` for `whoispp`).
    pub fn aliases(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        self.aliases.split_ascii_whitespace()
    }

    /// The category of the first port (`None` without a port).
    pub fn category(&self) -> Option<Category> {
        self.ports.map(|p| Category::of(p.first))
    }

    /// The reference (RFCs and the like) from the IANA row, or empty.
    pub fn reference(&self) -> &'static str {
        self.iana.map_or("", Record::reference)
    }

    /// True when the name or an alias equals `name`, ignoring ASCII case.
    pub fn answers_to(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name) || self.aliases().any(|a| a.eq_ignore_ascii_case(name))
    }
}

/// The registry of ports and services.
///
/// [`Registry::embedded`] is IANA's table alone, compiled in.
#[derive(Debug)]
pub struct Registry {
    _private: (),
}

static EMBEDDED: Registry = Registry { _private: () };

fn proto_matches(rec: Option<Proto>, want: Proto) -> bool {
    rec.is_none_or(|p| p == want)
}

impl Registry {
    /// IANA's registry, built into the program; nothing is read or parsed.
    ///
    /// ```
    /// use portolan_registry::{Proto, Registry};
    /// let reg = Registry::embedded();
    /// let https = reg.by_port(443, Proto::Tcp);
    /// assert_eq!(https[0].name, "https");
    /// assert_eq!(https[0].reference(), "[RFC9110]");
    /// ```
    pub fn embedded() -> &'static Registry {
        &EMBEDDED
    }

    /// Every entry for `port` and `proto`, in IANA's order: assigned services, and the
    /// Reserved or Unassigned row when the port has no service. Ranges (`x11`,
    /// 6000-6063) answer for each of their ports; rows that name no protocol answer for
    /// all of them.
    ///
    /// ```
    /// use portolan_registry::{Proto, Registry, Status};
    /// let reg = Registry::embedded();
    /// assert_eq!(reg.by_port(6010, Proto::Tcp)[0].name, "x11");
    /// assert_eq!(reg.by_port(4, Proto::Tcp)[0].status, Status::Unassigned);
    /// ```
    pub fn by_port(&self, port: u16, proto: Proto) -> Vec<Entry<'_>> {
        iana::covering(port)
            .filter(|r| proto_matches(r.proto(), proto))
            .map(Entry::from_record)
            .collect()
    }

    /// Every entry for `port`, all protocols, in IANA's order.
    ///
    /// ```
    /// use portolan_registry::Registry;
    /// let names: Vec<_> = Registry::embedded()
    ///     .at_port(53)
    ///     .iter()
    ///     .map(|e| format!("{}/{}", e.name, e.protocol))
    ///     .collect();
    /// assert_eq!(names, ["domain/tcp", "domain/udp"]);
    /// ```
    pub fn at_port(&self, port: u16) -> Vec<Entry<'_>> {
        iana::covering(port).map(Entry::from_record).collect()
    }

    /// Every entry whose name or alias is `name` (IANA names ignore case). A historic
    /// alias answers with its canonical service, which lists it among its aliases.
    ///
    /// ```
    /// use portolan_registry::Registry;
    /// let reg = Registry::embedded();
    /// let smtp = reg.by_name("smtp");
    /// assert!(smtp.iter().all(|e| e.ports.unwrap().first == 25));
    /// let whois = reg.by_name("whois++");
    /// assert_eq!(whois[0].name, "whoispp");
    /// assert!(whois[0].aliases().any(|a| a == "whois++"));
    /// ```
    pub fn by_name(&self, name: &str) -> Vec<Entry<'_>> {
        let mut out: Vec<Record> = Vec::new();
        for r in iana::named(name) {
            let r = r.alias_of().unwrap_or(r);
            if !out.contains(&r) {
                out.push(r);
            }
        }
        out.sort_by_key(|r| r.index());
        out.into_iter().map(Entry::from_record).collect()
    }

    /// The name to show for a socket or a port: IANA's first assigned name for that port
    /// and protocol. Never "Reserved" or "Unassigned": `None` when nothing is assigned.
    ///
    /// ```
    /// use portolan_registry::{Proto, Registry};
    /// let reg = Registry::embedded();
    /// assert_eq!(reg.name_for(22, Proto::Tcp), Some("ssh"));
    /// assert_eq!(reg.name_for(53, Proto::Udp), Some("domain"));
    /// assert_eq!(reg.name_for(4, Proto::Tcp), None);
    /// ```
    pub fn name_for(&self, port: u16, proto: Proto) -> Option<&str> {
        iana::covering(port)
            .find(|r| r.status() == Status::Assigned && proto_matches(r.proto(), proto))
            .map(Record::name)
    }

    /// Every IANA row in file order, alias rows included.
    pub fn iana_records(&self) -> impl ExactSizeIterator<Item = Record> + Clone {
        Record::all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> &'static Registry {
        Registry::embedded()
    }

    #[test]
    fn every_row_is_kept() {
        assert_eq!(Record::all().len(), 14447);
        let first = Record::all().next().unwrap();
        assert_eq!(first.status(), Status::Reserved);
        assert_eq!(first.ports(), Some(PortRange::single(0)));
        assert_eq!(first.assignee(), "[Jon_Postel]");
    }

    #[test]
    fn ranges_answer_for_each_port() {
        for p in [6000, 6031, 6063] {
            assert_eq!(reg().name_for(p, Proto::Tcp), Some("x11"), "port {p}");
        }
        assert_eq!(
            reg().by_port(6000, Proto::Tcp)[0].ports,
            PortRange::new(6000, 6063)
        );
    }

    #[test]
    fn rows_without_protocol_answer_for_all() {
        // flex-lm 27000-27009 has no protocol in IANA's file.
        for proto in Proto::ALL {
            assert_eq!(reg().name_for(27005, proto), Some("flex-lm"));
        }
        let e = &reg().by_name("flex-lm")[0];
        assert_eq!(e.proto, None);
        assert_eq!(e.protocol, "");
    }

    #[test]
    fn reserved_and_unassigned() {
        let zero = reg().by_port(0, Proto::Tcp);
        assert_eq!(zero.len(), 1);
        assert_eq!(zero[0].status, Status::Reserved);
        assert_eq!(reg().name_for(0, Proto::Tcp), None);
        let e = reg().by_port(4, Proto::Udp);
        assert_eq!(e[0].status, Status::Unassigned);
        assert_eq!(e[0].name, "");
        assert!(
            reg()
                .by_port(65535, Proto::Tcp)
                .iter()
                .all(|e| e.status != Status::Assigned)
        );
    }

    #[test]
    fn aliases_link_to_canonical() {
        let r: Vec<_> = Record::all().filter(|r| r.name() == "whois++").collect();
        assert_eq!(r.len(), 2);
        for a in r {
            let canon = a.alias_of().unwrap();
            assert_eq!(canon.name(), "whoispp");
            assert_eq!(canon.proto(), a.proto());
            assert_eq!(canon.aliases(), "whois++");
        }
        // Alias rows are not answers of their own.
        let at63 = reg().by_port(63, Proto::Tcp);
        assert_eq!(at63.len(), 1);
        assert_eq!(at63[0].name, "whoispp");
        let e = reg().by_name("SQL*NET");
        assert_eq!(
            e.iter().map(|e| e.name).collect::<Vec<_>>(),
            ["sql-net", "sql-net"]
        );
    }

    #[test]
    fn names_ignore_case_and_include_odd_ones() {
        assert_eq!(reg().by_name("HTTPS").len(), reg().by_name("https").len());
        assert!(
            !reg()
                .by_name("Apple Remote Desktop (Net Assistant)")
                .is_empty()
        );
        assert!(reg().by_name("no-such-service").is_empty());
        assert!(reg().by_name("").is_empty());
    }

    #[test]
    fn names_without_port() {
        let e = reg().by_name("argus");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].ports, None);
        assert_eq!(e[0].category(), None);
        assert_eq!(e[0].description, "ARGUS Protocol");
    }

    #[test]
    fn index_agrees_with_a_linear_scan() {
        for port in (0..=65535u16)
            .step_by(97)
            .chain([0, 80, 443, 6000, 6063, 6064, 65535])
        {
            for proto in Proto::ALL {
                let fast: Vec<_> = reg().by_port(port, proto).iter().map(|e| e.iana).collect();
                let slow: Vec<_> = Record::all()
                    .filter(|r| !r.is_alias())
                    .filter(|r| r.ports().is_some_and(|p| p.contains(port)))
                    .filter(|r| proto_matches(r.proto(), proto))
                    .map(Some)
                    .collect();
                assert_eq!(fast, slow, "{port}/{proto}");
            }
        }
    }

    #[test]
    fn multiline_notes_survive() {
        let r = Record::all().find(|r| r.name() == "whois++").unwrap();
        assert!(r.notes().contains('\n'));
        assert!(!r.notes().contains('\r'));
    }
}
