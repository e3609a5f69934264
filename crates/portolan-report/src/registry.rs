//! The registry's views: entries (of `lookup`, `search` and `services`) as a table,
//! JSON Lines or CSV, the whole registry as an `/etc/services` file, and `explain`'s page
//! and JSON. The field names are documented in docs/json.md.

use std::borrow::Cow;
use std::io::{self, Write};
use std::path::Path;

use portolan_registry::services::EtcServices;
use portolan_registry::{Category, Entry, Record, Source, Which};
use serde::Serialize;

use crate::table::Table;

/// How to write entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryFormat {
    Table,
    Json,
    Csv,
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
        let iana = |f: fn(Record) -> &'static str| e.iana.map_or("", f);
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

    /// The CSV header, without `query` and `score`.
    pub const CSV_HEADER: [&'static str; 19] = [
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

    /// The CSV fields, in the order of [`JsonEntry::CSV_HEADER`] (with the query and
    /// score first when set).
    pub fn csv_fields(&self) -> Vec<Cow<'a, str>> {
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

/// Writes entries in the chosen format: a table (bold header with `color`), JSON Lines,
/// or CSV with a header.
pub fn write_entries(
    w: &mut dyn Write,
    items: &[Item<'_>],
    format: EntryFormat,
    color: bool,
) -> io::Result<()> {
    match format {
        EntryFormat::Json => {
            for it in items {
                crate::json::line(w, &JsonEntry::new(&it.entry, it.query, it.score))?;
            }
        }
        EntryFormat::Csv => {
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
            let mut csv = crate::csv::Writer::new(w);
            csv.record(header)?;
            for it in items {
                csv.record(JsonEntry::new(&it.entry, it.query, it.score).csv_fields())?;
            }
            csv.flush()?;
        }
        EntryFormat::Table => {
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
                t.write(w, color)?;
            }
        }
    }
    Ok(())
}

/// Writes `entries` (of `which` part of the registry) as a valid `/etc/services`, one
/// line per port and protocol; returns the names a services file cannot hold, which were
/// left out.
pub fn write_etc_services(
    w: &mut dyn Write,
    entries: &[Entry<'_>],
    which: Which,
    services_path: Option<&Path>,
) -> io::Result<Vec<String>> {
    let etc = EtcServices::from_entries(entries, which != Which::System);
    let from = match (which, services_path) {
        (Which::Iana, _) | (_, None) => "IANA's registry".to_string(),
        (Which::System, Some(p)) => p.display().to_string(),
        (Which::All, Some(p)) => format!("IANA's registry and {}", p.display()),
    };
    let header = format!(
        "Network services, Internet style.\n\
         Written by portolan {} from {from}.\n\
         Port ranges are written one line per port; names holding blanks are left out.",
        env!("CARGO_PKG_VERSION")
    );
    w.write_all(etc.render(&header).as_bytes())?;
    Ok(etc.skipped)
}

/// Everything `explain` says, as its JSON.
#[derive(Serialize)]
pub struct JsonExplanation<'a> {
    pub query: &'a str,
    pub port: Option<u16>,
    pub last_port: Option<u16>,
    pub protocol: Option<&'a str>,
    pub category: Option<&'static str>,
    pub category_iana: Option<&'static str>,
    pub category_meaning: Option<&'static str>,
    pub services: Vec<JsonEntry<'a>>,
    pub cleartext: Option<bool>,
    pub secure_alternative: Option<&'static str>,
    pub local_only: Option<bool>,
    pub starttls: Option<bool>,
    pub bind_hint: Option<&'static str>,
    pub risk: Option<&'static str>,
    pub advice: &'a str,
}

impl<'a> JsonExplanation<'a> {
    pub fn new(x: &'a Explanation<'a>) -> Self {
        let notes = x.notes;
        JsonExplanation {
            query: x.query,
            port: x.range.map(|r| r.first),
            last_port: x.range.map(|r| r.last),
            protocol: x.protocol,
            category: x.category.map(Category::as_str),
            category_iana: x.category.map(Category::iana_name),
            category_meaning: x.category.map(Category::meaning),
            services: x
                .found
                .iter()
                .map(|e| JsonEntry::new(e, None, None))
                .collect(),
            cleartext: notes.map(|n| n.cleartext),
            secure_alternative: notes.and_then(|n| n.secure_alternative),
            local_only: notes.map(|n| n.local_only),
            starttls: notes.map(|n| n.starttls),
            bind_hint: notes.and_then(|n| n.bind_hint),
            risk: notes.map(|n| n.risk).filter(|r| !r.is_empty()),
            advice: x.advice,
        }
    }
}

/// What `explain` renders: the app's explanation, borrowed field by field so that this
/// crate needs no operation crate.
pub struct Explanation<'a> {
    pub query: &'a str,
    pub range: Option<portolan_registry::PortRange>,
    pub protocol: Option<&'a str>,
    pub category: Option<Category>,
    pub found: &'a [Entry<'a>],
    pub name: Option<&'a str>,
    pub notes: Option<&'static portolan_registry::Notes>,
    pub advice: &'a str,
    /// The services file merged in, when it has no line among `found`.
    pub not_in: Option<&'a Path>,
}

/// Writes `explain`'s JSON document.
pub fn write_explanation_json(w: &mut dyn Write, x: &Explanation<'_>) -> io::Result<()> {
    crate::json::document(w, &JsonExplanation::new(x))
}

/// Writes `explain`'s page: the title, the category, the registered entries, portolan's
/// notes and the advice, wrapped at 78 columns.
pub fn write_explanation(w: &mut dyn Write, x: &Explanation<'_>) -> io::Result<()> {
    let title = match (x.range, x.protocol) {
        (Some(r), Some(p)) => format!("{r}/{p}"),
        (Some(r), None) => r.to_string(),
        (None, _) => x.query.to_string(),
    };
    match x.name {
        Some(n) if n != title => writeln!(w, "{title}: {n}")?,
        _ => writeln!(w, "{title}")?,
    }
    writeln!(w)?;
    if let Some(c) = x.category {
        writeln!(w, "Category     {c} (IANA \"{}\")", c.iana_name())?;
        write_wrapped(w, c.meaning())?;
    }
    writeln!(w)?;
    if x.found.is_empty() {
        writeln!(w, "Registered   nothing")?;
    } else {
        writeln!(w, "Registered")?;
        for e in x.found {
            let ports = e.ports.map_or("-".to_string(), |p| p.to_string());
            let protocol = if e.protocol.is_empty() {
                "any"
            } else {
                e.protocol
            };
            let mut line = format!("  {}/{protocol}  {}", ports, display_name(e));
            let aliases: Vec<&str> = e.aliases().collect();
            if !aliases.is_empty() {
                line.push_str(&format!(" (alias {})", aliases.join(", ")));
            }
            if !e.description.is_empty() {
                line.push_str(&format!(": {}", one_line(e.description)));
            }
            if !e.reference().is_empty() {
                line.push_str(&format!(" {}", one_line(e.reference())));
            }
            line.push_str(&format!("  [{}]", sources(e).join(", ")));
            writeln!(w, "{line}")?;
        }
    }
    if let Some(path) = x.not_in {
        writeln!(w, "  (not in {})", path.display())?;
    }
    writeln!(w)?;
    match x.notes {
        Some(n) => {
            let clear = if n.cleartext { "yes" } else { "no" };
            writeln!(w, "Cleartext    {clear}")?;
            if let Some(alt) = n.secure_alternative {
                writeln!(w, "Use instead  {alt}")?;
            }
            if n.starttls {
                writeln!(
                    w,
                    "STARTTLS     offered by the protocol: require it before login"
                )?;
            }
            if n.local_only {
                writeln!(
                    w,
                    "Exposure     keep it local: it should not be reachable from the internet"
                )?;
            }
            if let Some(hint) = n.bind_hint {
                writeln!(w, "Loopback")?;
                write_wrapped(w, hint)?;
            }
            if !n.risk.is_empty() {
                writeln!(w, "Risk")?;
                write_wrapped(w, n.risk)?;
            }
        }
        None => writeln!(w, "Cleartext    unknown (portolan has no notes about it)")?,
    }
    writeln!(w)?;
    writeln!(w, "Advice")?;
    write_wrapped(w, x.advice)
}

/// Writes text indented by two spaces, wrapped at 78 columns.
fn write_wrapped(w: &mut dyn Write, text: &str) -> io::Result<()> {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > 76 {
            writeln!(w, "  {line}")?;
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        writeln!(w, "  {line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_registry::{Proto, Registry};

    fn items(reg: &Registry) -> Vec<Item<'_>> {
        reg.by_port(22, Proto::Tcp)
            .into_iter()
            .map(|entry| Item {
                entry,
                query: Some("22/tcp"),
                score: None,
            })
            .collect()
    }

    fn render(format: EntryFormat) -> String {
        let reg = Registry::embedded();
        let mut buf = Vec::new();
        write_entries(&mut buf, &items(reg), format, false).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn entries_in_each_format() {
        assert_eq!(
            render(EntryFormat::Table),
            "PORT  PROTO  NAME  ALIASES  CATEGORY    SOURCE  DESCRIPTION\n\
             22    tcp    ssh            well-known  iana    The Secure Shell (SSH) Protocol\n"
        );
        let json: serde_json::Value = serde_json::from_str(&render(EntryFormat::Json)).unwrap();
        assert_eq!(json["query"], "22/tcp");
        assert_eq!(json["sources"], serde_json::json!(["iana"]));
        let csv = render(EntryFormat::Csv);
        assert!(
            csv.starts_with("query,name,port,last_port,protocol,"),
            "{csv}"
        );
        assert!(csv.contains("\n22/tcp,ssh,22,22,tcp,"), "{csv}");
    }

    #[test]
    fn etc_services_expands_ranges() {
        let reg = Registry::embedded();
        let x11: Vec<_> = reg
            .by_name("x11")
            .into_iter()
            .filter(|e| e.protocol == "tcp")
            .collect();
        let mut buf = Vec::new();
        write_etc_services(&mut buf, &x11, Which::Iana, None).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.starts_with("# Network services, Internet style."),
            "{text}"
        );
        assert_eq!(text.lines().filter(|l| l.starts_with("x11")).count(), 64);
    }

    #[test]
    fn long_text_wraps_at_78_columns() {
        let mut buf = Vec::new();
        write_wrapped(&mut buf, &"word ".repeat(60)).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.lines().all(|l| l.len() <= 78 && l.starts_with("  ")));
        assert_eq!(text.split_whitespace().count(), 60);
    }
}
