//! The registry: IANA's table, optionally merged with a services file, and its answers.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::iana::{self, Record, Status};
use crate::services::{ServiceLine, ServicesFile, Warning, parse_services};
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
    fn from_record<'x>(r: Record) -> Entry<'x> {
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

    /// IANA's answer for a port of the dynamic range that no row covers: the range itself,
    /// never assigned (RFC 6335, section 6).
    fn dynamic<'x>(proto: Proto) -> Entry<'x> {
        Entry {
            name: "",
            ports: Some(Category::Dynamic.range()),
            proto: Some(proto),
            protocol: proto.as_str(),
            description: DYNAMIC_DESCRIPTION,
            status: Status::NeverAssigned,
            source: Source::Iana,
            iana: None,
            aliases: "",
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

    /// portolan's notes about the service: by its name, its IANA name, or an alias
    /// (Debian calls imap `imap2`).
    pub fn notes(&self) -> Option<&'static crate::Notes> {
        if self.name.is_empty() {
            return None;
        }
        crate::notes(self.name)
            .or_else(|| self.iana.and_then(|r| crate::notes(r.name())))
            .or_else(|| self.aliases().find_map(crate::notes))
    }

    /// True when the name or an alias equals `name`, ignoring ASCII case.
    pub fn answers_to(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name) || self.aliases().any(|a| a.eq_ignore_ascii_case(name))
    }
}

/// Where a registry's services file came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `/etc/services`.
    System,
    /// A file the user named.
    File(PathBuf),
}

/// What can go wrong building a registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading services file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("services file {path} is larger than {limit} bytes")]
    TooLarge { path: PathBuf, limit: u64 },
}

/// The description of the dynamic range's entries.
const DYNAMIC_DESCRIPTION: &str = "Dynamic and/or Private Ports";

/// The protocols a dynamic port answers for when IANA lists no row (IANA's Unassigned
/// rows name tcp and udp).
const DYNAMIC_PROTOS: [Proto; 2] = [Proto::Tcp, Proto::Udp];

/// The parts of `range` that `taken` (ports inside it) leaves.
fn rest_of(range: PortRange, taken: &[u16]) -> Vec<PortRange> {
    let mut taken: Vec<u16> = taken
        .iter()
        .copied()
        .filter(|&p| range.contains(p))
        .collect();
    taken.sort_unstable();
    taken.dedup();
    let mut out = Vec::new();
    let mut next = u32::from(range.first);
    for &t in &taken {
        if u32::from(t) > next {
            out.extend(PortRange::new(next as u16, t - 1));
        }
        next = u32::from(t) + 1;
    }
    if next <= u32::from(range.last) {
        out.extend(PortRange::new(next as u16, range.last));
    }
    out
}

/// The system's services file.
pub const SYSTEM_SERVICES: &str = "/etc/services";

/// A services file is a few hundred kilobytes at most; refuse anything absurd.
const MAX_SERVICES_BYTES: u64 = 64 << 20;

#[derive(Debug)]
struct Local {
    file: ServicesFile,
    origin: Origin,
    path: PathBuf,
}

/// The registry of ports and services.
///
/// [`Registry::embedded`] is IANA's table alone, compiled in. [`Registry::system`] merges
/// it with `/etc/services`, and [`Registry::with_services_file`] with a file of the
/// user's: each answer says where it comes from ([`Entry::source`]). A services-file line
/// comes first and is what [`Registry::name_for`] shows, as glibc would; where IANA agrees
/// (same name or alias, port and protocol) the two are one entry carrying IANA's details,
/// and where they disagree both are answers.
#[derive(Debug)]
pub struct Registry {
    local: Option<Local>,
}

static EMBEDDED: Registry = Registry { local: None };

fn proto_matches(rec: Option<Proto>, want: Proto) -> bool {
    rec.is_none_or(|p| p == want)
}

/// Whether an IANA row and a services-file line name the same service: same port and
/// protocol, and the line's name or an alias is the row's name or historic alias.
fn agrees(r: Record, l: &ServiceLine) -> bool {
    r.status() == Status::Assigned
        && r.ports().is_some_and(|p| p.contains(l.port))
        && r.proto().is_none_or(|p| p.as_str() == l.protocol)
        && (l.answers_to_ignore_case(r.name())
            || r.aliases()
                .split(' ')
                .any(|a| !a.is_empty() && l.answers_to_ignore_case(a)))
}

/// The row among `rows` that agrees with `l`, preferring one with the line's own name
/// (`submissions` rather than its alias `urd`, both IANA rows at 465/tcp).
fn agreeing(rows: impl Iterator<Item = Record> + Clone, l: &ServiceLine) -> Option<Record> {
    rows.clone()
        .find(|&r| agrees(r, l) && r.name().eq_ignore_ascii_case(&l.name))
        .or_else(|| rows.into_iter().find(|&r| agrees(r, l)))
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

    /// IANA's registry merged with `/etc/services`. A missing `/etc/services` leaves
    /// IANA alone, with a warning; an unreadable one is an error.
    pub fn system() -> Result<Registry, Error> {
        let path = Path::new(SYSTEM_SERVICES);
        match read_capped(path) {
            Ok(bytes) => Ok(Registry::with_services(
                parse_services(&bytes),
                Origin::System,
            )),
            Err(Error::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                let mut file = ServicesFile::default();
                file.warnings.push(Warning {
                    line: 0,
                    message: "not found; using IANA's registry alone".into(),
                });
                Ok(Registry::with_services(file, Origin::System))
            }
            Err(e) => Err(e),
        }
    }

    /// IANA's registry merged with a services file of the user's (`--services FILE`).
    pub fn with_services_file(path: impl AsRef<Path>) -> Result<Registry, Error> {
        let path = path.as_ref();
        let bytes = read_capped(path)?;
        Ok(Registry::with_services(
            parse_services(&bytes),
            Origin::File(path.to_path_buf()),
        ))
    }

    /// IANA's registry merged with an already parsed services file.
    pub fn with_services(file: ServicesFile, origin: Origin) -> Registry {
        let path = match &origin {
            Origin::System => PathBuf::from(SYSTEM_SERVICES),
            Origin::File(p) => p.clone(),
        };
        Registry {
            local: Some(Local { file, origin, path }),
        }
    }

    /// The services file merged in, if any.
    pub fn services_file(&self) -> Option<&ServicesFile> {
        self.local.as_ref().map(|l| &l.file)
    }

    /// The path of the services file merged in, if any.
    pub fn services_path(&self) -> Option<&Path> {
        self.local.as_ref().map(|l| l.path.as_path())
    }

    /// The lines of the services file that were skipped, as `FILE:LINE: why`.
    pub fn warnings(&self) -> Vec<String> {
        let Some(l) = &self.local else {
            return Vec::new();
        };
        l.file
            .warnings
            .iter()
            .map(|w| {
                if w.line == 0 {
                    format!("{}: {}", l.path.display(), w.message)
                } else {
                    w.at(&l.path)
                }
            })
            .collect()
    }

    /// The source label of the services file merged in: `system` or its path.
    pub fn local_source(&self) -> Option<Source<'_>> {
        self.local.as_ref().map(|l| match &l.origin {
            Origin::System => Source::System,
            Origin::File(p) => Source::File(p),
        })
    }

    fn local_entry<'a>(&'a self, l: &'a ServiceLine, iana: Option<Record>) -> Entry<'a> {
        let proto: Option<Proto> = l
            .protocol
            .parse()
            .ok()
            .filter(|p: &Proto| p.as_str() == l.protocol);
        Entry {
            name: &l.name,
            ports: Some(PortRange::single(l.port)),
            proto,
            protocol: &l.protocol,
            description: iana.map_or("", Record::description),
            status: Status::Assigned,
            source: self.local_source().unwrap_or(Source::Iana),
            iana,
            aliases: l.aliases_text(),
        }
    }

    /// Merges services-file lines with IANA rows: each line (linked to the IANA row that
    /// agrees with it), then the IANA rows no line agrees with. With `rest`, a range row
    /// that lines agree with for some of its ports still answers for the others (IANA's
    /// x11 is 6000-6063; a services file lists x11 at 6000 alone).
    fn merge<'a>(
        &'a self,
        lines: Vec<&'a ServiceLine>,
        rows: impl Iterator<Item = Record>,
        rest: bool,
    ) -> Vec<Entry<'a>> {
        let rows: Vec<Record> = rows.collect();
        let mut taken: Vec<Vec<u16>> = vec![Vec::new(); rows.len()];
        let mut out = Vec::with_capacity(lines.len() + rows.len());
        for l in lines {
            let hit =
                agreeing(rows.iter().copied(), l).and_then(|r| rows.iter().position(|&x| x == r));
            if let Some(i) = hit {
                taken[i].push(l.port);
            }
            out.push(self.local_entry(l, hit.map(|i| rows[i])));
        }
        for (&r, taken) in rows.iter().zip(taken) {
            if taken.is_empty() {
                out.push(Entry::from_record(r));
            } else if rest && let Some(range) = r.ports() {
                out.extend(rest_of(range, &taken).into_iter().map(|ports| Entry {
                    ports: Some(ports),
                    ..Entry::from_record(r)
                }));
            }
        }
        out
    }

    /// Every entry for `port` and `proto`: the services file's answer first (the first
    /// matching line, as glibc), then IANA's rows in file order: assigned services, and
    /// the Reserved or Unassigned row when the port has no service. Ranges (`x11`,
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
        let rows = iana::covering(port).filter(move |r| proto_matches(r.proto(), proto));
        let mut out = match &self.local {
            None => rows.clone().map(Entry::from_record).collect(),
            Some(l) => self.merge(
                l.file
                    .by_port(port, Some(proto.as_str()))
                    .into_iter()
                    .collect(),
                rows.clone(),
                false,
            ),
        };
        if rows.clone().next().is_none() && Category::of(port) == Category::Dynamic {
            out.push(Entry::dynamic(proto));
        }
        out
    }

    /// Every entry for `port`, all protocols: for each protocol the services file's
    /// answer, then IANA's rows.
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
        let rows = iana::covering(port);
        let mut out = match &self.local {
            None => rows.clone().map(Entry::from_record).collect(),
            Some(l) => self.merge(l.file.first_per_protocol_at(port), rows.clone(), false),
        };
        if rows.clone().next().is_none() && Category::of(port) == Category::Dynamic {
            out.extend(DYNAMIC_PROTOS.map(Entry::dynamic));
        }
        out
    }

    /// Every entry whose name or alias is `name`: for each protocol the services file's
    /// answer (case-sensitive, as glibc), then IANA's (whose names ignore case). A
    /// historic IANA alias answers with its canonical service, which lists it among its
    /// aliases.
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
        let mut rows: Vec<Record> = Vec::new();
        for r in iana::named(name) {
            let r = r.alias_of().unwrap_or(r);
            if !rows.contains(&r) {
                rows.push(r);
            }
        }
        rows.sort_by_key(|r| r.index());
        match &self.local {
            None => rows.into_iter().map(Entry::from_record).collect(),
            Some(l) => self.merge(
                l.file.first_per_protocol_named(name),
                rows.into_iter(),
                true,
            ),
        }
    }

    /// The name to show for a socket or a port: the services file's (the first matching
    /// line, as glibc), else IANA's first assigned name for that port and protocol. Never
    /// "Reserved" or "Unassigned": `None` when nothing is assigned.
    ///
    /// ```
    /// use portolan_registry::{Proto, Registry};
    /// let reg = Registry::embedded();
    /// assert_eq!(reg.name_for(22, Proto::Tcp), Some("ssh"));
    /// assert_eq!(reg.name_for(53, Proto::Udp), Some("domain"));
    /// assert_eq!(reg.name_for(4, Proto::Tcp), None);
    /// ```
    pub fn name_for(&self, port: u16, proto: Proto) -> Option<&str> {
        if let Some(l) = self
            .local
            .as_ref()
            .and_then(|l| l.file.by_port(port, Some(proto.as_str())))
        {
            return Some(&l.name);
        }
        iana::covering(port)
            .find(|r| r.status() == Status::Assigned && proto_matches(r.proto(), proto))
            .map(Record::name)
    }

    /// Every IANA row in file order, alias rows included.
    pub fn iana_records(&self) -> impl ExactSizeIterator<Item = Record> + Clone {
        Record::all()
    }

    /// The whole registry as entries: IANA's rows (no alias rows: they are the aliases of
    /// their canonical rows), the services file's lines, or both merged. The file's
    /// lines alone keep their order; otherwise entries are sorted by port, then protocol,
    /// with names that have no port last.
    pub fn entries(&self, which: Which) -> Vec<Entry<'_>> {
        let iana = || Record::all().filter(|r| !r.is_alias());
        let mut out: Vec<Entry<'_>> = match (which, &self.local) {
            (Which::Iana, _) | (Which::All, None) => iana().map(Entry::from_record).collect(),
            (Which::System, None) => Vec::new(),
            (Which::System, Some(l)) => l
                .file
                .lines
                .iter()
                .map(|line| {
                    let r = agreeing(iana::covering(line.port), line);
                    self.local_entry(line, r)
                })
                .collect(),
            (Which::All, Some(l)) => {
                let mut taken: Vec<Vec<u16>> = vec![Vec::new(); Record::all().len()];
                let mut out = Vec::new();
                for line in &l.file.lines {
                    let r = agreeing(iana::covering(line.port), line);
                    if let Some(r) = r {
                        taken[r.index()].push(line.port);
                    }
                    out.push(self.local_entry(line, r));
                }
                for r in iana() {
                    let taken = &taken[r.index()];
                    if taken.is_empty() {
                        out.push(Entry::from_record(r));
                    } else if let Some(range) = r.ports() {
                        // A range keeps the ports no line took (x11 beyond 6000).
                        out.extend(rest_of(range, taken).into_iter().map(|ports| Entry {
                            ports: Some(ports),
                            ..Entry::from_record(r)
                        }));
                    }
                }
                out
            }
        };
        if which == Which::System {
            // The file's own order decides glibc's answers: keep it.
            return out;
        }
        out.sort_by_key(|e| {
            (
                e.ports.is_none(),
                e.ports.map(|p| p.first),
                proto_rank(e),
                e.source == Source::Iana,
            )
        });
        out
    }
}

/// Sorts tcp, udp, sctp, dccp, then other protocols (`ddp`), then rows with none.
fn proto_rank(e: &Entry<'_>) -> u8 {
    match e.proto {
        Some(p) => p as u8,
        None if e.protocol.is_empty() => 5,
        None => 4,
    }
}

/// Which part of the registry [`Registry::entries`] lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Iana,
    System,
    All,
}

fn read_capped(path: &Path) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let read = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(read)?;
    // A regular file says its size: refuse a huge one before reading any of it.
    if f.metadata()
        .is_ok_and(|m| m.is_file() && m.len() > MAX_SERVICES_BYTES)
    {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_SERVICES_BYTES,
        });
    }
    let mut bytes = Vec::new();
    f.take(MAX_SERVICES_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() as u64 > MAX_SERVICES_BYTES {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_SERVICES_BYTES,
        });
    }
    Ok(bytes)
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
                let fast: Vec<_> = reg()
                    .by_port(port, proto)
                    .iter()
                    .filter(|e| e.status != Status::NeverAssigned)
                    .map(|e| e.iana)
                    .collect();
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

    fn merged(text: &str) -> Registry {
        Registry::with_services(parse_services(text.as_bytes()), Origin::System)
    }

    #[test]
    fn system_only_entries_appear() {
        let reg = merged("webmin 10000/tcp\n");
        let e = reg.by_port(10000, Proto::Tcp);
        assert_eq!(e[0].name, "webmin");
        assert_eq!(e[0].source, Source::System);
        assert_eq!(e[0].iana, None);
        assert_eq!(reg.name_for(10000, Proto::Tcp), Some("webmin"));
        assert_eq!(
            reg.by_name("webmin")[0].ports,
            Some(PortRange::single(10000))
        );
        // IANA's own answer for the port is still there, after the file's.
        assert!(e[1..].iter().all(|e| e.source == Source::Iana));
        assert_eq!(
            Registry::embedded().name_for(10000, Proto::Tcp),
            Some("ndmp")
        );
    }

    #[test]
    fn agreement_is_one_entry_with_ianas_details() {
        let reg = merged("http 80/tcp www # WorldWideWeb HTTP\n");
        let e = reg.by_port(80, Proto::Tcp);
        assert_eq!(e.len(), Registry::embedded().by_port(80, Proto::Tcp).len());
        assert_eq!(e[0].source, Source::System);
        assert_eq!(e[0].iana.unwrap().name(), "http");
        assert_eq!(e[0].description, "World Wide Web HTTP");
        assert_eq!(e[0].aliases().collect::<Vec<_>>(), ["www"]);
        assert_eq!(reg.by_name("www")[0].name, "http");
        // IANA's own "www" row (also port 80) agrees with the alias.
        let www = reg.by_name("www");
        assert_eq!((www[0].name, www[0].source), ("http", Source::System));
        assert!(www.iter().all(|e| e.answers_to("www")));
    }

    #[test]
    fn disagreement_shows_both() {
        let reg = merged("myapp 443/tcp\n");
        let e = reg.by_port(443, Proto::Tcp);
        let got: Vec<_> = e.iter().map(|e| (e.name, e.source)).collect();
        assert_eq!(got, [("myapp", Source::System), ("https", Source::Iana)]);
        assert_eq!(reg.name_for(443, Proto::Tcp), Some("myapp"));
        assert_eq!(reg.name_for(443, Proto::Udp), Some("https"));
    }

    #[test]
    fn glibc_first_line_wins_in_the_merge() {
        let reg = merged("a 7000/tcp\nb 7000/tcp\nc 7000/udp\n");
        let at: Vec<_> = reg
            .at_port(7000)
            .iter()
            .filter(|e| e.source == Source::System)
            .map(|e| e.name)
            .collect();
        assert_eq!(at, ["a", "c"]);
        assert_eq!(reg.name_for(7000, Proto::Tcp), Some("a"));
    }

    #[test]
    fn user_file_source_is_its_path() {
        let reg = Registry::with_services(
            parse_services(b"x 1/tcp\nbad 2-3/tcp\n"),
            Origin::File("my.services".into()),
        );
        let e = &reg.by_name("x")[0];
        assert_eq!(e.source.label(), "my.services");
        assert_eq!(reg.warnings().len(), 1);
        assert!(reg.warnings()[0].starts_with("my.services:2: "));
    }

    #[test]
    fn entries_merge_without_duplicates() {
        let reg = merged("ssh 22/tcp\nwebmin 10000/tcp\nrtmp 1/ddp\n");
        let all = reg.entries(Which::All);
        let ssh: Vec<_> = all.iter().filter(|e| e.name == "ssh").collect();
        assert_eq!(ssh.len(), Registry::embedded().by_name("ssh").len());
        assert!(
            ssh.iter()
                .any(|e| e.source == Source::System && e.iana.is_some())
        );
        assert!(all.iter().any(|e| e.name == "webmin"));
        assert!(all.iter().any(|e| e.protocol == "ddp" && e.proto.is_none()));
        assert_eq!(reg.entries(Which::System).len(), 3);
        let iana = reg.entries(Which::Iana);
        assert_eq!(iana.len(), Record::all().filter(|r| !r.is_alias()).count());
        assert!(iana.windows(2).all(|w| w[0].ports.map(|p| p.first)
            <= w[1].ports.map(|p| p.first)
            || w[1].ports.is_none()));
        assert!(Registry::embedded().entries(Which::System).is_empty());
    }

    #[test]
    fn the_line_s_own_name_wins_over_an_alias() {
        // IANA lists urd and submissions at 465/tcp; Debian's line names both.
        let reg = merged("submissions 465/tcp ssmtp smtps urd\n");
        let e = &reg.by_port(465, Proto::Tcp)[0];
        assert_eq!(e.iana.unwrap().name(), "submissions");
        assert_eq!(e.description, "Message Submission over TLS protocol");
        assert!(reg.by_port(465, Proto::Tcp).iter().any(|e| e.name == "urd"));
    }

    #[test]
    fn notes_through_the_iana_name() {
        let reg = merged("imap2 143/tcp imap\n");
        let e = &reg.by_port(143, Proto::Tcp)[0];
        assert_eq!(e.name, "imap2");
        assert_eq!(e.notes().unwrap().name, "imap");
    }

    #[test]
    fn name_index_finds_every_name() {
        for r in Record::all().filter(|r| !r.name().is_empty()) {
            let found: Vec<Record> = iana::named(&r.name().to_ascii_uppercase()).collect();
            assert!(found.contains(&r), "{}", r.name());
            assert!(
                found
                    .iter()
                    .all(|f| f.name().eq_ignore_ascii_case(r.name()))
            );
            assert!(found.windows(2).all(|w| w[0].index() < w[1].index()));
        }
        let long = "x".repeat(200);
        assert_eq!(iana::named(&long).count(), 0);
    }

    #[test]
    fn a_range_keeps_its_other_ports_when_a_line_takes_one() {
        let reg = merged("x11 6000/tcp x11-0\nx11 6010/tcp\n");
        let tcp: Vec<_> = reg
            .by_name("x11")
            .into_iter()
            .filter(|e| e.protocol == "tcp")
            .map(|e| (e.ports.unwrap().to_string(), e.source))
            .collect();
        assert_eq!(
            tcp,
            [
                ("6000".to_string(), Source::System),
                ("6001-6063".to_string(), Source::Iana),
            ]
        );
        let all = reg.entries(Which::All);
        let rest: Vec<_> = all
            .iter()
            .filter(|e| e.name == "x11" && e.protocol == "tcp" && e.source == Source::Iana)
            .map(|e| e.ports.unwrap().to_string())
            .collect();
        assert_eq!(rest, ["6001-6009", "6011-6063"]);
        for p in [6001, 6009, 6011, 6063] {
            assert!(
                all.iter().any(|e| e.name == "x11"
                    && e.protocol == "tcp"
                    && e.ports.unwrap().contains(p)),
                "{p}"
            );
        }
        // A port query still answers with the line alone.
        assert_eq!(reg.by_port(6000, Proto::Tcp).len(), 1);
        assert_eq!(rest_of(PortRange::single(5), &[5]), []);
    }

    #[test]
    fn dynamic_ports_answer_with_the_range() {
        let e = reg().by_port(50000, Proto::Udp);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].status, Status::NeverAssigned);
        assert_eq!(e[0].category(), Some(Category::Dynamic));
        assert_eq!(e[0].ports, PortRange::new(49152, 65535));
        assert_eq!(reg().at_port(65535).len(), 2);
        assert_eq!(reg().name_for(50000, Proto::Tcp), None);
        let m = merged("mine 50000/tcp\n");
        let got: Vec<_> = m
            .by_port(50000, Proto::Tcp)
            .iter()
            .map(|e| e.status)
            .collect();
        assert_eq!(got, [Status::Assigned, Status::NeverAssigned]);
    }

    #[test]
    fn multiline_notes_survive() {
        let r = Record::all().find(|r| r.name() == "whois++").unwrap();
        assert!(r.notes().contains('\n'));
        assert!(!r.notes().contains('\r'));
    }
}
