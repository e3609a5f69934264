//! A reader for IANA's `service-names-port-numbers.csv`.
//!
//! The build script compiles the vendored copy into static tables with this same code, so
//! it uses nothing but `std`. It is public so that a newer CSV can be checked (and fuzzed)
//! with exactly the rules the build applies.
//!
//! The file is RFC 4180 CSV: records end in CRLF (a bare LF is accepted too), quoted
//! fields may hold commas, doubled quotes and line breaks.

use std::fmt;

/// The header IANA's file starts with, column by column.
pub const HEADER: [&str; 12] = [
    "Service Name",
    "Port Number",
    "Transport Protocol",
    "Description",
    "Assignee",
    "Contact",
    "Registration Date",
    "Modification Date",
    "Reference",
    "Service Code",
    "Unauthorized Use Reported",
    "Assignment Notes",
];

/// What is wrong with a CSV file, and on which line (1-based) the record starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvError {
    /// A quoted field is never closed.
    Unterminated { line: usize },
    /// A quote appears in the middle of an unquoted field, or text follows a closing quote.
    StrayQuote { line: usize },
    /// The first record is not IANA's header.
    Header { found: String },
    /// A record has the wrong number of fields.
    Columns { line: usize, found: usize },
    /// The port field is not a port or a range of ports.
    Port { line: usize, token: String },
    /// The protocol is not tcp, udp, sctp, dccp or empty.
    Protocol { line: usize, token: String },
    /// A row with no name and no port says nothing.
    Empty { line: usize },
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CsvError::Unterminated { line } => {
                write!(f, "line {line}: a quoted field is never closed")
            }
            CsvError::StrayQuote { line } => write!(f, "line {line}: misplaced '\"'"),
            CsvError::Header { found } => {
                write!(f, "line 1: not IANA's header (found '{found}')")
            }
            CsvError::Columns { line, found } => {
                write!(f, "line {line}: {found} fields, expected 12")
            }
            CsvError::Port { line, token } => write!(f, "line {line}: invalid port '{token}'"),
            CsvError::Protocol { line, token } => {
                write!(f, "line {line}: unknown protocol '{token}'")
            }
            CsvError::Empty { line } => write!(f, "line {line}: a record with no name and no port"),
        }
    }
}

impl std::error::Error for CsvError {}

/// Splits CSV text into records of fields, each with the line it starts on. Line breaks
/// inside quoted fields become `\n`. A final line break is optional; blank lines are
/// skipped.
pub fn records(text: &str) -> Result<Vec<(usize, Vec<String>)>, CsvError> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        let start = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false; // inside quotes now
        let mut was_quoted = false; // this field began with a quote
        loop {
            let Some((_, c)) = chars.next() else {
                if quoted {
                    return Err(CsvError::Unterminated { line: start });
                }
                fields.push(field);
                break;
            };
            if quoted {
                match c {
                    '"' if chars.peek().is_some_and(|&(_, n)| n == '"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => quoted = false,
                    '\r' if chars.peek().is_some_and(|&(_, n)| n == '\n') => {}
                    '\n' => {
                        line += 1;
                        field.push('\n');
                    }
                    c => field.push(c),
                }
                continue;
            }
            match c {
                ',' => {
                    fields.push(std::mem::take(&mut field));
                    was_quoted = false;
                }
                '"' if field.is_empty() && !was_quoted => {
                    quoted = true;
                    was_quoted = true;
                }
                '"' => return Err(CsvError::StrayQuote { line }),
                '\r' if chars.peek().is_some_and(|&(_, n)| n == '\n') => {}
                '\n' => {
                    line += 1;
                    fields.push(field);
                    break;
                }
                _ if was_quoted => return Err(CsvError::StrayQuote { line }),
                c => field.push(c),
            }
        }
        if !(fields.len() == 1 && fields[0].is_empty()) {
            out.push((start, fields));
        }
    }
    Ok(out)
}

/// One row of the registry, checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row {
    /// The line of the file the row starts on.
    pub line: usize,
    /// The service name; empty for Reserved and Unassigned rows.
    pub name: String,
    /// First and last port; `None` for a name registered without a port.
    pub ports: Option<(u16, u16)>,
    /// `tcp`, `udp`, `sctp`, `dccp`, or empty when the row names no protocol.
    pub protocol: String,
    pub description: String,
    pub assignee: String,
    pub contact: String,
    pub registered: String,
    pub modified: String,
    pub reference: String,
    pub service_code: String,
    pub unauthorized_use: String,
    pub notes: String,
    /// For a historic alias row (`whois++`), the canonical name it stands for (`whoispp`).
    pub alias_of: Option<String>,
}

/// Parses the whole file: the header, then one [`Row`] per record.
pub fn parse(text: &str) -> Result<Vec<Row>, CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut recs = records(text)?.into_iter();
    match recs.next() {
        Some((_, h)) if h.len() == 12 && h.iter().zip(HEADER).all(|(a, b)| a.trim() == b) => {}
        Some((_, h)) => {
            return Err(CsvError::Header { found: h.join(",") });
        }
        None => {
            return Err(CsvError::Header {
                found: String::new(),
            });
        }
    }
    recs.map(|(line, f)| row(line, f)).collect()
}

fn row(line: usize, fields: Vec<String>) -> Result<Row, CsvError> {
    let found = fields.len();
    let Ok::<[String; 12], _>(
        [
            name,
            port,
            protocol,
            description,
            assignee,
            contact,
            registered,
            modified,
            reference,
            service_code,
            unauthorized_use,
            notes,
        ],
    ) = fields.try_into()
    else {
        return Err(CsvError::Columns { line, found });
    };
    let name = name.trim().to_string();
    let ports = parse_ports(port.trim()).ok_or_else(|| CsvError::Port {
        line,
        token: port.clone(),
    })?;
    let protocol = protocol.trim().to_ascii_lowercase();
    if !matches!(protocol.as_str(), "" | "tcp" | "udp" | "sctp" | "dccp") {
        return Err(CsvError::Protocol {
            line,
            token: protocol,
        });
    }
    if name.is_empty() && ports.is_none() {
        return Err(CsvError::Empty { line });
    }
    let alias_of = alias_target(&notes);
    Ok(Row {
        line,
        name,
        ports,
        protocol,
        description: description.trim().to_string(),
        assignee: assignee.trim().to_string(),
        contact: contact.trim().to_string(),
        registered: registered.trim().to_string(),
        modified: modified.trim().to_string(),
        reference: reference.trim().to_string(),
        service_code: service_code.trim().to_string(),
        unauthorized_use: unauthorized_use.trim().to_string(),
        notes: notes.trim().to_string(),
        alias_of,
    })
}

/// `""` is no port, `443` one, `6000-6063` a range. Anything else is an error (`None` in
/// the outer option).
fn parse_ports(s: &str) -> Option<Option<(u16, u16)>> {
    let num = |t: &str| -> Option<u16> {
        let t = t.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    if s.is_empty() {
        return Some(None);
    }
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let p = num(s)?;
            (p, p)
        }
    };
    (a <= b).then_some(Some((a, b)))
}

/// IANA marks historic names with the note `This entry is an alias to "NAME".`
fn alias_target(notes: &str) -> Option<String> {
    const MARK: &str = "This entry is an alias to \"";
    let rest = &notes[notes.find(MARK)? + MARK.len()..];
    let name = &rest[..rest.find('"')?];
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "Service Name,Port Number,Transport Protocol,Description,Assignee,Contact,\
Registration Date,Modification Date,Reference,Service Code,Unauthorized Use Reported,\
Assignment Notes\r\n";

    #[test]
    fn quoted_multiline_fields_and_crlf() {
        let text = format!(
            "{HEAD}whois++,63,tcp,whois++,[A],[A],,,,,,\"This entry is an alias to \"\"whoispp\"\".\r\nThis entry is now historic.\"\r\n"
        );
        let rows = parse(&text).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].alias_of.as_deref(), Some("whoispp"));
        assert_eq!(
            rows[0].notes,
            "This entry is an alias to \"whoispp\".\nThis entry is now historic."
        );
    }

    #[test]
    fn ranges_and_empty_protocol() {
        let text = format!("{HEAD},6000-6063,,Unassigned,,,,,,,,\nx,,,named only,,,,,,,,\n");
        let rows = parse(&text).unwrap();
        assert_eq!(rows[0].ports, Some((6000, 6063)));
        assert_eq!(rows[0].protocol, "");
        assert_eq!(rows[1].ports, None);
        assert_eq!(rows[1].line, 3);
    }

    #[test]
    fn errors_name_the_line_and_token() {
        let bad = |body: &str| parse(&format!("{HEAD}{body}")).unwrap_err();
        assert_eq!(
            bad("a,70000,tcp,,,,,,,,,\n"),
            CsvError::Port {
                line: 2,
                token: "70000".into()
            }
        );
        assert_eq!(
            bad("a,9-8,tcp,,,,,,,,,\n"),
            CsvError::Port {
                line: 2,
                token: "9-8".into()
            }
        );
        assert_eq!(
            bad("a,9,icmp,,,,,,,,,\n"),
            CsvError::Protocol {
                line: 2,
                token: "icmp".into()
            }
        );
        assert_eq!(bad("a,9,tcp\n"), CsvError::Columns { line: 2, found: 3 });
        assert_eq!(bad("a,9,tcp,\"open\n"), CsvError::Unterminated { line: 2 });
        assert_eq!(
            bad("a,9,t\"cp,,,,,,,,,\n"),
            CsvError::StrayQuote { line: 2 }
        );
        assert_eq!(bad(",,tcp,,,,,,,,,\n"), CsvError::Empty { line: 2 });
        assert!(matches!(parse("a,b\n"), Err(CsvError::Header { .. })));
    }
}
