//! Shared by `lookup`, `search`, `services` and `explain`: opening the registry, reading a
//! port/name query, and writing registry entries as a table, JSON Lines or CSV.

use std::borrow::Cow;
use std::io::{self, Write};

use anyhow::{Context, bail};
use portolan_registry::{Entry, PortRange, Proto, Registry, Source};
use serde::Serialize;

use crate::cli::RegistryArgs;
use crate::out::{self, Table};

/// The registry the commands answer from: IANA merged with `--services FILE`, else with
/// `/etc/services`. Lines of the file that were skipped are reported on stderr.
pub fn open(args: &RegistryArgs) -> anyhow::Result<Registry> {
    let reg = match &args.services {
        Some(path) => Registry::with_services_file(path)?,
        None => Registry::system().context("reading the system's services")?,
    };
    // A file of junk would otherwise bury the output in warnings.
    const SHOWN: usize = 20;
    let warnings = reg.warnings();
    for w in warnings.iter().take(SHOWN) {
        eprintln!("portolan: warning: {w}");
    }
    if warnings.len() > SHOWN {
        eprintln!(
            "portolan: warning: ... and {} more skipped lines",
            warnings.len() - SHOWN
        );
    }
    Ok(reg)
}

/// A query of `lookup` and `explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// A port or range, with an optional protocol.
    Ports(PortRange, Option<String>),
    /// A service name or alias, with an optional protocol.
    Name(String, Option<String>),
}

/// Reads `443`, `53/udp`, `137-139`, `6000-6010/tcp`, `https`, `domain/udp`. A protocol
/// must be tcp, udp, sctp, dccp or one the services file uses (`ddp`). Errors name the
/// bad token.
pub fn parse_query(token: &str, reg: &Registry) -> anyhow::Result<Query> {
    if token.ends_with('/') {
        bail!("no protocol after '/' in '{token}'");
    }
    if token.starts_with('/') {
        bail!("no port or name before '/' in '{token}'");
    }
    let (what, proto) = match token.rsplit_once('/') {
        // A name may itself hold a slash (`914c/g`, `cl/1`): only a known protocol after
        // the last slash makes it a protocol.
        Some((w, p)) if !w.is_empty() && is_port_spec(w) => (w, Some(p)),
        Some((w, p)) if !w.is_empty() && known_protocol(p, reg) => (w, Some(p)),
        _ => (token, None),
    };
    let proto = match proto {
        Some(p) if !known_protocol(p, reg) => {
            bail!("unknown protocol '{p}' in '{token}' (expected tcp, udp, sctp or dccp)")
        }
        p => p.map(str::to_string),
    };
    if what.trim().is_empty() {
        bail!("empty query '{token}'");
    }
    if is_port_spec(what) {
        let range: PortRange = what
            .parse()
            .with_context(|| format!("bad query '{token}'"))?;
        return Ok(Query::Ports(range, proto));
    }
    Ok(Query::Name(what.to_string(), proto))
}

/// Digits and dashes only: a port or a range (names always hold a letter).
fn is_port_spec(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'-')
}

fn known_protocol(p: &str, reg: &Registry) -> bool {
    p.parse::<Proto>().is_ok_and(|q| q.as_str() == p)
        || reg
            .services_file()
            .is_some_and(|f| f.lines.iter().any(|l| l.protocol == p))
}

/// The entries a query finds, each once.
pub fn find<'r>(reg: &'r Registry, q: &Query) -> Vec<Entry<'r>> {
    let keep = |e: &Entry<'_>, proto: &Option<String>| {
        proto
            .as_deref()
            .is_none_or(|p| e.protocol == p || e.protocol.is_empty())
    };
    let mut out: Vec<Entry<'r>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    match q {
        Query::Ports(range, proto) => {
            for port in range.iter() {
                let found = match proto.as_deref().map(str::parse::<Proto>) {
                    Some(Ok(p)) => reg.by_port(port, p),
                    _ => reg.at_port(port),
                };
                for e in found {
                    if keep(&e, proto) && seen.insert(key(&e)) {
                        out.push(e);
                    }
                }
            }
        }
        Query::Name(name, proto) => {
            for e in reg.by_name(name) {
                if keep(&e, proto) && seen.insert(key(&e)) {
                    out.push(e);
                }
            }
        }
    }
    // By port, then protocol; stable, so a services-file line stays before IANA's row.
    out.sort_by_key(|e| {
        let proto = e
            .proto
            .map_or(if e.protocol.is_empty() { 5 } else { 4 }, |p| p as u8);
        (e.ports.is_none(), e.ports.map(|p| p.first), proto)
    });
    out
}

type Key = (String, String, Option<PortRange>, String, Option<usize>);

fn key(e: &Entry<'_>) -> Key {
    (
        e.source.label().into_owned(),
        e.name.to_string(),
        e.ports,
        e.protocol.to_string(),
        e.iana.map(|r| r.index()),
    )
}

/// Every source of an entry: its own, and IANA when a services-file line agrees with it.
pub fn sources<'a>(e: &'a Entry<'_>) -> Vec<Cow<'a, str>> {
    let mut v = vec![e.source.label()];
    if e.source != Source::Iana && e.iana.is_some() {
        v.push("iana".into());
    }
    v
}

/// The name to print: the service name, or what the row is.
pub fn display_name<'a>(e: &'a Entry<'_>) -> Cow<'a, str> {
    if e.name.is_empty() {
        format!("({})", e.status).into()
    } else {
        e.name.into()
    }
}

/// Text on one line (IANA's notes and some descriptions span lines).
pub fn one_line(s: &str) -> Cow<'_, str> {
    if s.contains(['\n', '\r', '\t']) {
        s.split_whitespace().collect::<Vec<_>>().join(" ").into()
    } else {
        s.into()
    }
}

/// One entry as JSON; the field names are documented in docs/json.md.
#[derive(Serialize)]
pub struct JsonEntry<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<u32>,
    pub name: Option<&'a str>,
    pub port: Option<u16>,
    pub last_port: Option<u16>,
    pub protocol: Option<&'a str>,
    pub description: &'a str,
    pub category: Option<&'static str>,
    pub category_iana: Option<&'static str>,
    pub source: Cow<'a, str>,
    pub sources: Vec<Cow<'a, str>>,
    pub aliases: Vec<&'a str>,
    pub reference: &'a str,
    pub status: &'static str,
    pub assignee: &'a str,
    pub contact: &'a str,
    pub registered: &'a str,
    pub modified: &'a str,
    pub service_code: &'a str,
    pub unauthorized_use: &'a str,
    pub assignment_notes: &'a str,
}

impl<'a> JsonEntry<'a> {
    pub fn new(e: &'a Entry<'a>, query: Option<&'a str>, score: Option<u32>) -> Self {
        let iana = |f: fn(portolan_registry::Record) -> &'static str| e.iana.map_or("", f);
        JsonEntry {
            query,
            score,
            name: (!e.name.is_empty()).then_some(e.name),
            port: e.ports.map(|p| p.first),
            last_port: e.ports.map(|p| p.last),
            protocol: (!e.protocol.is_empty()).then_some(e.protocol),
            description: e.description,
            category: e.category().map(|c| c.as_str()),
            category_iana: e.category().map(|c| c.iana_name()),
            source: e.source.label(),
            sources: sources(e),
            aliases: e.aliases().collect(),
            reference: e.reference(),
            status: e.status.as_str(),
            assignee: iana(|r| r.assignee()),
            contact: iana(|r| r.contact()),
            registered: iana(|r| r.registered()),
            modified: iana(|r| r.modified()),
            service_code: iana(|r| r.service_code()),
            unauthorized_use: iana(|r| r.unauthorized_use()),
            assignment_notes: iana(|r| r.notes()),
        }
    }

    const CSV_HEADER: [&'static str; 19] = [
        "name",
        "port",
        "last_port",
        "protocol",
        "description",
        "category",
        "category_iana",
        "source",
        "sources",
        "aliases",
        "reference",
        "status",
        "assignee",
        "contact",
        "registered",
        "modified",
        "service_code",
        "unauthorized_use",
        "assignment_notes",
    ];

    fn csv_fields(&self) -> Vec<Cow<'a, str>> {
        let num = |n: Option<u16>| n.map_or(Cow::Borrowed(""), |n| n.to_string().into());
        let mut v: Vec<Cow<'a, str>> = Vec::with_capacity(20);
        if let Some(q) = self.query {
            v.push(q.into());
        }
        if let Some(s) = self.score {
            v.push(s.to_string().into());
        }
        v.extend([
            self.name.unwrap_or("").into(),
            num(self.port),
            num(self.last_port),
            self.protocol.unwrap_or("").into(),
            self.description.into(),
            self.category.unwrap_or("").into(),
            self.category_iana.unwrap_or("").into(),
            self.source.clone(),
            self.sources.join(" ").into(),
            self.aliases.join(" ").into(),
            self.reference.into(),
            self.status.into(),
            self.assignee.into(),
            self.contact.into(),
            self.registered.into(),
            self.modified.into(),
            self.service_code.into(),
            self.unauthorized_use.into(),
            self.assignment_notes.into(),
        ]);
        v
    }
}

/// One entry to write, with what `lookup` and `search` add.
pub struct Item<'a> {
    pub entry: Entry<'a>,
    pub query: Option<&'a str>,
    pub score: Option<u32>,
}

/// Writes entries in the chosen format: a table, JSON Lines, or CSV with a header.
pub fn write(w: &mut dyn Write, items: &[Item<'_>], format: out::Format) -> io::Result<()> {
    match format {
        out::Format::Json => {
            for it in items {
                serde_json::to_writer(&mut *w, &JsonEntry::new(&it.entry, it.query, it.score))?;
                w.write_all(b"\n")?;
            }
        }
        out::Format::Csv => {
            let query = items.first().is_some_and(|i| i.query.is_some());
            let score = items.first().is_some_and(|i| i.score.is_some());
            let mut header: Vec<&str> = Vec::new();
            if query {
                header.push("query");
            }
            if score {
                header.push("score");
            }
            header.extend(JsonEntry::CSV_HEADER);
            out::csv_record(w, header)?;
            for it in items {
                out::csv_record(
                    w,
                    JsonEntry::new(&it.entry, it.query, it.score).csv_fields(),
                )?;
            }
        }
        out::Format::Table => {
            let query = items.windows(2).any(|p| p[0].query != p[1].query);
            let mut head = vec![];
            if query {
                head.push("QUERY");
            }
            head.extend([
                "PORT",
                "PROTO",
                "NAME",
                "ALIASES",
                "CATEGORY",
                "SOURCE",
                "DESCRIPTION",
            ]);
            let mut t = Table::new(head);
            for it in items {
                let e = &it.entry;
                let mut row: Vec<String> = Vec::new();
                if query {
                    row.push(it.query.unwrap_or("").to_string());
                }
                row.extend([
                    e.ports.map_or("-".into(), |p| p.to_string()),
                    if e.protocol.is_empty() {
                        "any".into()
                    } else {
                        e.protocol.to_string()
                    },
                    display_name(e).into_owned(),
                    e.aliases().collect::<Vec<_>>().join(","),
                    e.category().map_or("-", |c| c.as_str()).to_string(),
                    sources(e).join(","),
                    one_line(e.description).into_owned(),
                ]);
                t.row(row);
            }
            if !t.is_empty() {
                t.write(w, out::use_color())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> anyhow::Result<Query> {
        parse_query(s, Registry::embedded())
    }

    #[test]
    fn queries() {
        assert_eq!(
            q("443").unwrap(),
            Query::Ports(PortRange::single(443), None)
        );
        assert_eq!(
            q("53/udp").unwrap(),
            Query::Ports(PortRange::single(53), Some("udp".into()))
        );
        assert_eq!(
            q("137-139").unwrap(),
            Query::Ports(
                PortRange {
                    first: 137,
                    last: 139
                },
                None
            )
        );
        assert_eq!(q("https").unwrap(), Query::Name("https".into(), None));
        assert_eq!(
            q("domain/udp").unwrap(),
            Query::Name("domain".into(), Some("udp".into()))
        );
        // Names that hold a slash or start with digits.
        assert_eq!(q("914c/g").unwrap(), Query::Name("914c/g".into(), None));
        assert_eq!(
            q("914c/g/tcp").unwrap(),
            Query::Name("914c/g".into(), Some("tcp".into()))
        );
        assert_eq!(
            q("3com-tsmux").unwrap(),
            Query::Name("3com-tsmux".into(), None)
        );
    }

    #[test]
    fn bad_queries_name_the_token() {
        for (bad, says) in [
            ("70000", "'70000'"),
            ("139-137", "'139-137'"),
            ("53/icmp", "'icmp'"),
            ("53/TCP", "'TCP'"),
            ("ssh/", "'ssh/'"),
            ("/tcp", "'/tcp'"),
            ("", "''"),
            ("12-", "'12-'"),
        ] {
            let err = format!("{:#}", q(bad).unwrap_err());
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn services_file_protocols_are_known() {
        let reg = Registry::with_services(
            portolan_registry::services::parse_services(b"rtmp 1/ddp\n"),
            portolan_registry::Origin::System,
        );
        assert_eq!(
            parse_query("1/ddp", &reg).unwrap(),
            Query::Ports(PortRange::single(1), Some("ddp".into()))
        );
        assert!(find(&reg, &parse_query("1/ddp", &reg).unwrap())[0].name == "rtmp");
    }
}
