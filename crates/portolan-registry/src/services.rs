//! A reader for `/etc/services` with glibc's semantics.
//!
//! Each line is `NAME PORT/PROTOCOL [ALIAS...]`. As in glibc's `nss_files`:
//!
//! - `#` starts a comment anywhere on a line; leading whitespace is allowed, and fields
//!   are separated by any run of blanks (space, tab, vertical tab, form feed, CR);
//! - names, aliases and protocols are case-sensitive, and the protocol is any word
//!   (Debian lists `ddp` entries);
//! - the first matching line wins, by port and by name; with no protocol given, the first
//!   line in file order wins.
//!
//! A line that is not a valid entry (a range such as `6000-6063/tcp`, a port above
//! 65535, no protocol) is skipped with a [`Warning`] that names its line: never a panic.

use std::fmt;
use std::path::Path;

/// One valid line of a services file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLine {
    /// The line number, from 1.
    pub line: usize,
    pub name: String,
    pub port: u16,
    pub protocol: String,
    /// The aliases, separated by single spaces (empty when there are none).
    aliases: String,
}

impl ServiceLine {
    pub fn new(line: usize, name: &str, port: u16, protocol: &str, aliases: &[&str]) -> Self {
        ServiceLine {
            line,
            name: name.to_string(),
            port,
            protocol: protocol.to_string(),
            aliases: aliases.join(" "),
        }
    }

    /// The same line with another line number.
    pub fn with_line(self, line: usize) -> Self {
        ServiceLine { line, ..self }
    }

    pub fn aliases(&self) -> impl Iterator<Item = &str> + Clone {
        self.aliases.split(' ').filter(|a| !a.is_empty())
    }

    pub(crate) fn aliases_text(&self) -> &str {
        &self.aliases
    }

    pub(crate) fn answers_to_ignore_case(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name) || self.aliases().any(|a| a.eq_ignore_ascii_case(name))
    }

    /// Whether `name` is this line's name or one of its aliases (case-sensitive).
    pub fn answers_to(&self, name: &str) -> bool {
        self.name == name || self.aliases().any(|a| a == name)
    }
}

/// A line that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The line number, from 1.
    pub line: usize,
    pub message: String,
}

impl Warning {
    /// The warning as `FILE:LINE: message`.
    pub fn at(&self, file: &Path) -> String {
        format!("{}:{}: {}", file.display(), self.line, self.message)
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A parsed services file: its valid lines in file order, and the skipped lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServicesFile {
    pub lines: Vec<ServiceLine>,
    pub warnings: Vec<Warning>,
    /// Line indices sorted by (port, file order).
    by_port: Vec<u32>,
    /// (name or alias, line index), sorted by name, then file order.
    by_name: Vec<(String, u32)>,
}

/// glibc's `isspace` in the C locale.
fn blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Parses a services file. Never fails: invalid lines become warnings.
///
/// ```
/// use portolan_registry::services::parse_services;
/// let f = parse_services(b"http 80/tcp www # WorldWideWeb\nx11 6000-6063/tcp\n");
/// assert_eq!(f.lines.len(), 1);
/// assert_eq!(f.by_name("www", Some("tcp")).unwrap().port, 80);
/// assert_eq!(f.warnings[0].line, 2);
/// ```
pub fn parse_services(bytes: &[u8]) -> ServicesFile {
    let mut file = ServicesFile::default();
    for (n, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = n + 1;
        let data = match raw.iter().position(|&b| b == b'#') {
            Some(i) => &raw[..i],
            None => raw,
        };
        let mut warn = |message: String| file.warnings.push(Warning { line, message });
        if data.iter().all(|&b| blank(b)) {
            continue;
        }
        let Ok(data) = std::str::from_utf8(data) else {
            warn("not valid UTF-8; skipped".into());
            continue;
        };
        if data.contains('\0') {
            warn("holds a NUL byte; skipped".into());
            continue;
        }
        let mut fields = data
            .split(|c: char| c.is_ascii() && blank(c as u8))
            .filter(|f| !f.is_empty());
        let Some(name) = fields.next() else { continue };
        let Some(pp) = fields.next() else {
            warn(format!("'{name}' has no port/protocol; skipped"));
            continue;
        };
        let Some((port, protocol)) = pp.split_once('/') else {
            warn(format!("'{pp}' is not PORT/PROTOCOL; skipped"));
            continue;
        };
        let digits = port.strip_prefix('+').unwrap_or(port);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            let what = if is_range(port) {
                "a port range is not a valid services entry"
            } else {
                "not a port number"
            };
            warn(format!("'{pp}': {what}; skipped"));
            continue;
        }
        let Ok(port) = digits.parse::<u16>() else {
            warn(format!("'{pp}': port out of range (0-65535); skipped"));
            continue;
        };
        if protocol.is_empty() {
            warn(format!("'{pp}' names no protocol; skipped"));
            continue;
        }
        file.lines.push(ServiceLine {
            line,
            name: name.to_string(),
            port,
            protocol: protocol.to_string(),
            aliases: fields.collect::<Vec<_>>().join(" "),
        });
    }
    file.index();
    file
}

fn is_range(s: &str) -> bool {
    s.split_once('-').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
    })
}

impl ServicesFile {
    /// Builds a services file from lines (their order is the file order).
    pub fn from_lines(lines: Vec<ServiceLine>) -> Self {
        let mut f = ServicesFile {
            lines,
            ..ServicesFile::default()
        };
        f.index();
        f
    }

    fn index(&mut self) {
        let n = u32::try_from(self.lines.len()).unwrap_or(u32::MAX);
        self.by_port = (0..n).collect();
        self.by_port.sort_by_key(|&i| self.lines[i as usize].port);
        self.by_name.clear();
        for (i, l) in self.lines.iter().enumerate().take(n as usize) {
            self.by_name.push((l.name.clone(), i as u32));
            for a in l.aliases() {
                self.by_name.push((a.to_string(), i as u32));
            }
        }
        self.by_name.sort();
        self.by_name.dedup();
    }

    /// The lines with this port, in file order.
    pub fn at_port(&self, port: u16) -> impl Iterator<Item = &ServiceLine> + Clone {
        let lo = self
            .by_port
            .partition_point(|&i| self.lines[i as usize].port < port);
        let hi = lo + self.by_port[lo..].partition_point(|&i| self.lines[i as usize].port == port);
        self.by_port[lo..hi]
            .iter()
            .map(|&i| &self.lines[i as usize])
    }

    /// The lines whose name or alias is `name` (case-sensitive), in file order.
    pub fn named<'s>(&'s self, name: &str) -> impl Iterator<Item = &'s ServiceLine> + Clone {
        let lo = self.by_name.partition_point(|(n, _)| n.as_str() < name);
        let hi = lo + self.by_name[lo..].partition_point(|(n, _)| n == name);
        self.by_name[lo..hi]
            .iter()
            .map(|&(_, i)| &self.lines[i as usize])
    }

    /// `getservbyport(port, proto)`: the first line with this port (and protocol).
    pub fn by_port(&self, port: u16, proto: Option<&str>) -> Option<&ServiceLine> {
        self.at_port(port)
            .find(|l| proto.is_none_or(|p| p == l.protocol))
    }

    /// `getservbyname(name, proto)`: the first line with this name or alias (and
    /// protocol).
    pub fn by_name(&self, name: &str, proto: Option<&str>) -> Option<&ServiceLine> {
        self.named(name)
            .find(|l| proto.is_none_or(|p| p == l.protocol))
    }

    /// For each protocol, in file order, the line `getservbyport(port, that protocol)`
    /// returns.
    pub fn first_per_protocol_at(&self, port: u16) -> Vec<&ServiceLine> {
        first_per_protocol(self.at_port(port))
    }

    /// For each protocol, in file order, the line `getservbyname(name, that protocol)`
    /// returns.
    pub fn first_per_protocol_named(&self, name: &str) -> Vec<&ServiceLine> {
        first_per_protocol(self.named(name))
    }
}

fn first_per_protocol<'s>(lines: impl Iterator<Item = &'s ServiceLine>) -> Vec<&'s ServiceLine> {
    let mut out: Vec<&ServiceLine> = Vec::new();
    for l in lines {
        if !out.iter().any(|o| o.protocol == l.protocol) {
            out.push(l);
        }
    }
    out
}

/// Writes entries in the services format, one line each: `name port/proto aliases`.
/// Lines are padded the way distributions lay the file out.
pub fn format_line(name: &str, port: u16, protocol: &str, aliases: &str, comment: &str) -> String {
    let mut s = format!("{name:<15} {port}/{protocol}");
    if !aliases.is_empty() {
        let width: usize = 16 + 15;
        let pad = width.saturating_sub(s.chars().count()).max(1);
        s.extend(std::iter::repeat_n(' ', pad));
        s.push_str(aliases);
    }
    let comment: String = comment
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let comment = comment.trim();
    if !comment.is_empty() {
        s.push_str("\t# ");
        s.push_str(comment);
    }
    s.trim_end().to_string()
}

/// Whether `word` can be a name or alias in a services file: not empty, no blanks, no
/// `#`, no control characters.
pub fn is_valid_word(word: &str) -> bool {
    !word.is_empty()
        && !word
            .chars()
            .any(|c| c == '#' || c.is_whitespace() || c.is_control())
}

/// Registry entries turned into services-file lines, the way distributions build their
/// `/etc/services` from IANA's registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcServices {
    /// The lines, each with its comment (the description).
    pub lines: Vec<(ServiceLine, String)>,
    /// Names that cannot be written (they hold blanks), each once.
    pub skipped: Vec<String>,
}

impl EtcServices {
    /// Lines for every assigned entry with a port: one per port of a range (a services
    /// file has no ranges), and a tcp and a udp line when IANA names no protocol.
    /// Reserved and unassigned rows, and names without a port, have no line. With
    /// `sort`, lines are sorted by port (stably); without, they keep the entries' order,
    /// which preserves a services file's first-match answers.
    pub fn from_entries(entries: &[crate::Entry<'_>], sort: bool) -> Self {
        let mut out = EtcServices::default();
        for e in entries {
            let Some(ports) = e.ports else { continue };
            if e.status != crate::Status::Assigned || e.name.is_empty() {
                continue;
            }
            if !is_valid_word(e.name) || !is_valid_word(e.protocol) && !e.protocol.is_empty() {
                if !out.skipped.iter().any(|s| s == e.name) {
                    out.skipped.push(e.name.to_string());
                }
                continue;
            }
            let aliases: Vec<&str> = e
                .aliases()
                .filter(|a| is_valid_word(a) && *a != e.name)
                .collect();
            let protos: &[&str] = if e.protocol.is_empty() {
                &["tcp", "udp"]
            } else {
                std::slice::from_ref(&e.protocol)
            };
            for port in ports.iter() {
                for proto in protos {
                    out.lines.push((
                        ServiceLine::new(0, e.name, port, proto, &aliases),
                        e.description.to_string(),
                    ));
                }
            }
        }
        if sort {
            out.lines.sort_by_key(|(l, _)| l.port);
        }
        out
    }

    /// The file's text: `header` as comment lines, then one line per entry.
    pub fn render(&self, header: &str) -> String {
        let mut s = String::new();
        for h in header.lines() {
            s.push_str("# ");
            s.push_str(h);
            s.push('\n');
        }
        if !header.is_empty() {
            s.push('\n');
        }
        for (l, comment) in &self.lines {
            s.push_str(&format_line(
                &l.name,
                l.port,
                &l.protocol,
                &l.aliases,
                comment,
            ));
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_whitespace_and_aliases() {
        let f = parse_services(
            b"# header\n  \t ssh\t22/tcp # SSH\nsmtp 25/tcp mail#no space\nhttp\x0b80/tcp www\r\n",
        );
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
        assert_eq!(f.lines.len(), 3);
        assert_eq!(f.lines[0].name, "ssh");
        assert_eq!(f.lines[0].line, 2);
        assert_eq!(f.lines[1].aliases().collect::<Vec<_>>(), ["mail"]);
        assert_eq!(f.by_name("www", None).unwrap().name, "http");
        assert_eq!(f.by_port(80, Some("tcp")).unwrap().name, "http");
    }

    #[test]
    fn first_match_wins() {
        let f = parse_services(b"a 7/udp\nb 7/tcp\nc 7/tcp\nb 9/tcp\n");
        assert_eq!(f.by_port(7, None).unwrap().name, "a");
        assert_eq!(f.by_port(7, Some("tcp")).unwrap().name, "b");
        assert_eq!(f.by_name("b", None).unwrap().port, 7);
        assert_eq!(f.by_name("c", Some("udp")), None);
        let names: Vec<_> = f.first_per_protocol_at(7).iter().map(|l| &l.name).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn case_sensitive() {
        let f = parse_services(b"ssh 22/tcp SSH2\n");
        assert!(f.by_name("SSH", None).is_none());
        assert!(f.by_name("SSH2", None).is_some());
        assert!(f.by_port(22, Some("TCP")).is_none());
    }

    #[test]
    fn invalid_lines_warn_with_their_line() {
        let f = parse_services(
            b"x11 6000-6063/tcp\nbig 70000/tcp\nlone\nnoproto 5/\nnoslash 5\nword abc/tcp\nok 1/ddp\n\xff 2/tcp\n",
        );
        assert_eq!(f.lines.len(), 1);
        assert_eq!(f.lines[0].protocol, "ddp");
        let lines: Vec<_> = f.warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5, 6, 8]);
        assert!(f.warnings[0].message.contains("range"));
        assert!(f.warnings[1].message.contains("out of range"));
        assert_eq!(
            f.warnings[0].at(Path::new("/etc/services")),
            "/etc/services:1: '6000-6063/tcp': a port range is not a valid services entry; skipped"
        );
    }

    #[test]
    fn non_utf8_comment_is_fine() {
        let f = parse_services(b"ftp 21/tcp # caf\xe9\n");
        assert!(f.warnings.is_empty());
        assert_eq!(f.lines.len(), 1);
    }

    #[test]
    fn format_line_reads_back() {
        let l = format_line("http", 80, "tcp", "www", "World Wide Web\nHTTP");
        let f = parse_services(l.as_bytes());
        assert_eq!(f.lines, [ServiceLine::new(1, "http", 80, "tcp", &["www"])]);
        assert!(!l.contains('\n'));
    }

    #[test]
    fn etc_services_from_iana_reads_back() {
        let reg = crate::Registry::embedded();
        let entries = reg.entries(crate::Which::Iana);
        let etc = EtcServices::from_entries(&entries, true);
        assert!(etc.skipped.iter().any(|s| s.contains(' ')));
        // x11 6000-6063 is expanded; flex-lm (no protocol) gets tcp and udp lines.
        let x11 = etc.lines.iter().filter(|(l, _)| l.name == "x11").count();
        assert_eq!(x11, 64 * 2);
        assert!(
            etc.lines
                .iter()
                .any(|(l, _)| l.name == "flex-lm" && l.port == 27009 && l.protocol == "udp")
        );
        let text = etc.render("generated");
        let back = parse_services(text.as_bytes());
        assert!(back.warnings.is_empty(), "{:?}", &back.warnings[..1]);
        let strip = |l: &ServiceLine| ServiceLine {
            line: 0,
            ..l.clone()
        };
        let back: Vec<_> = back.lines.iter().map(strip).collect();
        let want: Vec<_> = etc.lines.iter().map(|(l, _)| l.clone()).collect();
        assert_eq!(back, want);
        let whois = back.iter().find(|l| l.name == "whoispp").unwrap();
        assert_eq!(whois.aliases().collect::<Vec<_>>(), ["whois++"]);
    }
}
