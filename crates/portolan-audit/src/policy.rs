//! Policies: which services may listen, where, for whom; which must run; which cleartext
//! protocols are forbidden; and the exceptions. Parsed from TOML with every error naming
//! the file, line, column and key.

use std::convert::Infallible;
use std::fmt;
use std::net::IpAddr;
use std::ops::Range;

use portolan_registry::{PortRange, Proto};
use serde::Serialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::catalog::{self, Catalog};
use crate::date::Date;
use crate::finding::Rule;
use crate::knowledge::{self, Known};
use crate::net::IpNet;
use crate::suggest;

/// A set of ports named one way in a policy: `smtp`, `domain/udp`, `8080/tcp`,
/// `6000-6010/tcp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spec {
    /// As written in the policy.
    pub label: String,
    pub ports: Vec<(Proto, PortRange)>,
}

impl Spec {
    pub fn covers(&self, proto: Proto, port: u16) -> bool {
        self.ports
            .iter()
            .any(|(p, r)| *p == proto && r.contains(port))
    }

    /// `25/tcp, 465/tcp`.
    pub fn ports_label(&self) -> String {
        self.ports
            .iter()
            .map(|(p, r)| format!("{r}/{p}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The audit's knowledge of the named service, if it has a name it knows.
    pub fn known(&self) -> Option<&'static Known> {
        let name = self.label.split('/').next().unwrap_or_default();
        knowledge::by_name(name)
    }
}

/// Where an allowed service may listen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "addresses")]
pub enum Bind {
    /// Anywhere, including the wildcard address.
    Any,
    /// 127.0.0.0/8 and ::1 only.
    Loopback,
    /// These addresses (and loopback).
    Addresses(Vec<IpAddr>),
}

impl Bind {
    /// Whether a socket on `addr`, bound to `interface` (`SO_BINDTODEVICE`) if set, is
    /// within the bind. A socket bound to `lo` is loopback-only whatever its address
    /// (`*%lo`), as `policy init` writes it.
    pub fn permits_socket(&self, addr: IpAddr, interface: Option<&str>) -> bool {
        if interface == Some("lo") {
            return true;
        }
        self.permits(addr)
    }

    /// Whether a socket on `addr` is within the bind.
    pub fn permits(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        match self {
            Bind::Any => true,
            Bind::Loopback => addr.is_loopback(),
            Bind::Addresses(list) => addr.is_loopback() || list.contains(&addr),
        }
    }
}

impl fmt::Display for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bind::Any => f.write_str("any"),
            Bind::Loopback => f.write_str("loopback"),
            Bind::Addresses(a) => {
                let list: Vec<String> = a.iter().map(ToString::to_string).collect();
                f.write_str(&list.join(", "))
            }
        }
    }
}

/// One `[[allow]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Allow {
    pub services: Vec<Spec>,
    pub bind: Bind,
    /// The sources that may reach it; empty means anywhere.
    pub from: Vec<IpNet>,
    pub comment: Option<String>,
    /// The line of the entry in the policy file.
    pub line: usize,
}

impl Allow {
    pub fn covers(&self, proto: Proto, port: u16) -> bool {
        self.services.iter().any(|s| s.covers(proto, port))
    }

    /// True when it covers a port of `range` (of `proto`).
    pub fn overlaps(&self, proto: Proto, range: PortRange) -> bool {
        self.services
            .iter()
            .flat_map(|s| &s.ports)
            .any(|(p, r)| *p == proto && r.first <= range.last && range.first <= r.last)
    }

    /// True when the sources are not restricted.
    pub fn from_anywhere(&self) -> bool {
        self.from.is_empty() || self.from.iter().any(IpNet::is_any)
    }
}

/// The ports the allow entries cover, as sorted, merged ranges per protocol: whether a
/// required range is allowed is then a binary search, not a search of every entry for
/// every port.
struct Allowed(Vec<(Proto, u16, u16)>);

impl Allowed {
    fn of(allow: &[Allow]) -> Allowed {
        let mut all: Vec<(Proto, u16, u16)> = allow
            .iter()
            .flat_map(|a| &a.services)
            .flat_map(|s| &s.ports)
            .map(|(p, r)| (*p, r.first, r.last))
            .collect();
        all.sort_unstable();
        let mut merged: Vec<(Proto, u16, u16)> = Vec::new();
        for (p, first, last) in all {
            match merged.last_mut() {
                Some((q, _, end)) if *q == p && u32::from(first) <= u32::from(*end) + 1 => {
                    *end = (*end).max(last);
                }
                _ => merged.push((p, first, last)),
            }
        }
        Allowed(merged)
    }

    /// True when one merged range holds all of `range`.
    fn covers_all(&self, proto: Proto, range: PortRange) -> bool {
        let i = self
            .0
            .partition_point(|&(p, first, _)| (p, first) <= (proto, range.first));
        i > 0 && {
            let (p, _, last) = self.0[i - 1];
            p == proto && last >= range.last
        }
    }
}

/// A cleartext protocol the policy forbids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forbid {
    pub spec: Spec,
    /// The protocol can upgrade to TLS, so it is fine where detection saw the upgrade.
    pub starttls: bool,
}

/// One `[[exception]]`: findings it matches are held back, with its reason, until it
/// expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exception {
    pub service: Option<Spec>,
    pub rule: Option<Rule>,
    pub process: Option<String>,
    pub reason: String,
    pub expires: Option<Date>,
    pub line: usize,
}

/// A parsed, resolved policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub name: String,
    pub description: Option<String>,
    pub allow: Vec<Allow>,
    pub require: Vec<Spec>,
    pub forbid_cleartext: Vec<Forbid>,
    pub exceptions: Vec<Exception>,
    /// Services bound to loopback only are allowed without being listed.
    pub allow_loopback: bool,
    /// True for the built-in baseline, which allows nothing in particular and judges by
    /// the kind of service instead.
    pub baseline: bool,
}

impl Policy {
    /// The built-in baseline of `portolan audit` with no policy.
    pub fn baseline() -> Policy {
        Policy {
            name: "baseline".into(),
            description: Some("built-in checks that need no configuration".into()),
            allow: Vec::new(),
            require: Vec::new(),
            forbid_cleartext: Vec::new(),
            exceptions: Vec::new(),
            allow_loopback: false,
            baseline: true,
        }
    }

    /// The allow entries that cover a port.
    pub fn allows(&self, proto: Proto, port: u16) -> impl Iterator<Item = &Allow> {
        self.allow.iter().filter(move |a| a.covers(proto, port))
    }

    /// Parses a policy. `file` names it in errors.
    ///
    /// A file whose tables after the first `[[allow]]` or `[[exception]]` are all
    /// `[[allow]]` and `[[exception]]` (every policy `policy init` writes) is parsed piece
    /// by piece: TOML's value tree of a whole file costs about forty times its size. Any
    /// other file, or a piece with a syntax error, is parsed whole, for TOML's own errors.
    pub fn parse(text: &str, file: &str, catalog: &dyn Catalog) -> Result<Policy, PolicyErrors> {
        let lines = Lines::of(text);
        if let Some(bounds) = pieces(text) {
            let mut p = Parser::new(text, &lines, file, catalog);
            if let Ok(head) = DeTable::parse(&text[..bounds[0]]) {
                let head = head.into_inner();
                let alone = head.get("allow").is_none() && head.get("exception").is_none();
                if alone
                    && let Ok(policy) = p.policy(&head, file, |p, allow, exceptions| {
                        p.rest(text, &bounds, allow, exceptions)
                    })
                {
                    return p.finish(policy.trimmed());
                }
            }
        }
        parse_whole(text, &lines, file, catalog)
    }

    /// The same policy with its lists' spare room given back.
    fn trimmed(mut self) -> Policy {
        self.allow.shrink_to_fit();
        self.exceptions.shrink_to_fit();
        self
    }
}

/// Parses a policy file in one piece.
fn parse_whole(
    text: &str,
    lines: &Lines,
    file: &str,
    catalog: &dyn Catalog,
) -> Result<Policy, PolicyErrors> {
    let mut p = Parser::new(text, lines, file, catalog);
    let root = match DeTable::parse(text) {
        Ok(t) => t,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let key = key_at(text, span.start);
            let message = e.message().trim().to_string();
            p.error(span, &key, message);
            return Err(PolicyErrors(p.errors));
        }
    };
    let Ok(policy) = p.policy(root.get_ref(), file, |_, _, _| Ok::<(), Infallible>(()));
    p.finish(policy.trimmed())
}

/// Where a policy's text splits into pieces that parse alone: the start of the first
/// `[[allow]]` or `[[exception]]` header line (the end of the head: the top-level keys),
/// then of such a line every [`PIECE`] bytes or so, then the end. `None` when the file
/// has none, or after the first a line that may be a table header of another kind: its
/// pieces might not mean alone what they mean together.
///
/// Lines are read as lines, not as TOML: a line inside a multi-line string or array that
/// looks like a header splits there, but then the piece before it does not parse, and
/// the file is read whole.
fn pieces(text: &str) -> Option<Vec<usize>> {
    let mut bounds: Vec<usize> = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let start = at;
        at += line.len();
        let l = line.trim_start();
        if !l.starts_with('[') {
            continue;
        }
        let header = l.split('#').next().unwrap_or_default().trim_end();
        if header == "[[allow]]" || header == "[[exception]]" {
            match bounds.last() {
                Some(&last) if start - last < PIECE => {}
                _ => bounds.push(start),
            }
        } else if !bounds.is_empty() {
            return None;
        }
    }
    if bounds.is_empty() {
        return None;
    }
    bounds.push(text.len());
    Some(bounds)
}

/// About how many bytes of `[[allow]]` and `[[exception]]` tables are parsed at once.
const PIECE: usize = 64 << 10;

/// One thing wrong with a policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The key path (`allow[2].service`, entries counted from 1); empty when the error is
    /// not about a key.
    pub key: String,
    pub message: String,
    /// The offending line, and a caret under the column.
    #[serde(skip)]
    pub snippet: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}", self.message)?;
        if !self.snippet.is_empty() {
            write!(f, "\n{}", self.snippet)?;
        }
        Ok(())
    }
}

/// Every error found in a policy file (at least one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

type Val<'i> = Spanned<DeValue<'i>>;

struct Parser<'a> {
    text: &'a str,
    lines: &'a Lines,
    file: &'a str,
    catalog: &'a dyn Catalog,
    errors: Vec<PolicyError>,
    names: Names,
    /// Where the piece being read starts in the text: its spans are from there.
    base: usize,
    /// The `[[allow]]` and `[[exception]]` tables read so far, for their key paths.
    allows_seen: usize,
    exceptions_seen: usize,
}

/// A piece of a policy's text that does not parse alone: the file is read whole instead.
struct NotAlone;

/// The names "did you mean" searches, gathered once per file, and how many more
/// suggestions a file gets: a policy of thousands of unknown names is checked in linear
/// time rather than one search of the whole registry per error.
#[derive(Default)]
struct Names {
    all: Option<Vec<String>>,
    searched: usize,
}

/// Unknown service names that get a suggestion; later ones get the plain error.
const SUGGESTIONS: usize = 100;

impl Names {
    fn nearest(&mut self, catalog: &dyn Catalog, what: &str) -> Option<Vec<String>> {
        if self.searched >= SUGGESTIONS {
            return None;
        }
        self.searched += 1;
        let all = self.all.get_or_insert_with(|| catalog::all_names(catalog));
        Some(suggest::nearest(what, all.iter().map(String::as_str), 3))
    }
}

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "allow-loopback",
    "require",
    "forbid-cleartext",
    "allow",
    "exception",
];
const ALLOW_KEYS: &[&str] = &["service", "bind", "from", "comment"];
const EXCEPTION_KEYS: &[&str] = &["service", "rule", "process", "reason", "expires"];

impl<'a> Parser<'a> {
    fn new(text: &'a str, lines: &'a Lines, file: &'a str, catalog: &'a dyn Catalog) -> Self {
        Parser {
            text,
            lines,
            file,
            catalog,
            errors: Vec::new(),
            names: Names::default(),
            base: 0,
            allows_seen: 0,
            exceptions_seen: 0,
        }
    }

    fn finish(self, policy: Policy) -> Result<Policy, PolicyErrors> {
        if self.errors.is_empty() {
            Ok(policy)
        } else {
            Err(PolicyErrors(self.errors))
        }
    }

    /// Reads the pieces of `text` between `bounds` (after the head) one at a time.
    fn rest(
        &mut self,
        text: &str,
        bounds: &[usize],
        allow: &mut Vec<Allow>,
        exceptions: &mut Vec<Exception>,
    ) -> Result<(), NotAlone> {
        for w in bounds.windows(2) {
            let piece = DeTable::parse(&text[w[0]..w[1]])
                .map_err(|_| NotAlone)?
                .into_inner();
            self.base = w[0];
            if piece
                .keys()
                .any(|k| !matches!(k.get_ref().as_ref(), "allow" | "exception"))
            {
                return Err(NotAlone);
            }
            self.entries(&piece, allow, exceptions);
        }
        self.base = 0;
        Ok(())
    }

    /// The `allow` and `exception` tables of a table (the whole file's root, or a piece).
    fn entries(
        &mut self,
        root: &DeTable<'_>,
        allow: &mut Vec<Allow>,
        exceptions: &mut Vec<Exception>,
    ) {
        if let Some(v) = root.get("allow") {
            for (i, t) in self.tables(v, "allow") {
                let key = format!("allow[{}]", i + 1);
                if let Some(a) = self.allow(t.get_ref(), t.span(), &key) {
                    allow.push(a);
                }
            }
        }
        if let Some(v) = root.get("exception") {
            for (i, t) in self.tables(v, "exception") {
                let key = format!("exception[{}]", i + 1);
                if let Some(e) = self.exception(t.get_ref(), t.span(), &key) {
                    exceptions.push(e);
                }
            }
        }
    }

    fn error(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let span = span.start + self.base..span.end + self.base;
        let (line, column, snippet) = locate(self.text, self.lines, span);
        self.errors.push(PolicyError {
            file: self.file.to_string(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
            snippet,
        });
    }

    fn line_of(&self, offset: usize) -> usize {
        self.lines.find((offset + self.base).min(self.text.len())).0 + 1
    }

    /// Reports keys a table may not have, with the nearest allowed key.
    fn check_keys(&mut self, table: &DeTable<'_>, allowed: &[&str], path: &str) {
        let mut keys: Vec<_> = table.iter().map(|(k, _)| k).collect();
        keys.sort_by_key(|k| k.span().start);
        for k in keys {
            let name = k.get_ref().as_ref();
            if !allowed.contains(&name) {
                let near = suggest::nearest(name, allowed.iter().copied(), 1);
                let hint = match near.first() {
                    Some(n) => format!(" (did you mean '{n}'?)"),
                    None => format!(" (expected one of: {})", allowed.join(", ")),
                };
                let key = join(path, name);
                self.error(k.span(), &key, format!("unknown key '{name}'{hint}"));
            }
        }
    }

    /// Reports a value of the wrong type: `what` says what was expected.
    fn expected(&mut self, v: &Val<'_>, key: &str, what: &str) {
        let found = v.get_ref().type_str();
        self.error(v.span(), key, format!("expected {what}, found {found}"));
    }

    fn string(&mut self, v: &Val<'_>, key: &str) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                self.expected(v, key, "a string");
                None
            }
        }
    }

    /// A string or an array of strings, each with its span.
    fn strings(&mut self, v: &Val<'_>, key: &str) -> Vec<(String, Range<usize>)> {
        match v.get_ref() {
            DeValue::String(s) => vec![(s.to_string(), v.span())],
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let k = format!("{key}[{}]", i + 1);
                    if let Some(s) = self.string(item, &k) {
                        out.push((s, item.span()));
                    }
                }
                out
            }
            _ => {
                self.expected(v, key, "a string or an array of strings");
                Vec::new()
            }
        }
    }

    fn spec(&mut self, text: &str, span: Range<usize>, key: &str) -> Option<Spec> {
        match resolve_in(text, self.catalog, &mut self.names) {
            Ok(spec) => Some(spec),
            Err(msg) => {
                self.error(span, key, msg);
                None
            }
        }
    }

    /// The policy of a file's root table, and of the pieces `rest` reads after it; `rest`'s
    /// error when it fails (a whole file's `rest` reads nothing and cannot). Errors come in
    /// the order of a whole file's reading: the head, the allow entries, require and
    /// forbid-cleartext, then the exceptions.
    fn policy<E>(
        &mut self,
        root: &DeTable<'_>,
        file: &str,
        rest: impl FnOnce(&mut Self, &mut Vec<Allow>, &mut Vec<Exception>) -> Result<(), E>,
    ) -> Result<Policy, E> {
        self.check_keys(root, TOP_KEYS, "");
        let get = |k: &str| root.get(k);
        let name = match get("name") {
            Some(v) => self.string(v, "name").unwrap_or_default(),
            None => std::path::Path::new(file)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "policy".into()),
        };
        let description = get("description").and_then(|v| self.string(v, "description"));
        let allow_loopback = match get("allow-loopback") {
            None => false,
            Some(v) => match v.get_ref() {
                DeValue::Boolean(b) => *b,
                _ => {
                    self.expected(v, "allow-loopback", "true or false");
                    false
                }
            },
        };

        let mut allow = Vec::new();
        let mut exceptions = Vec::new();
        let head_errors = self.errors.len();
        self.entries(root, &mut allow, &mut exceptions);
        rest(self, &mut allow, &mut exceptions)?;
        // The exceptions' errors go last.
        let (errors, others): (Vec<_>, Vec<_>) = self
            .errors
            .split_off(head_errors)
            .into_iter()
            .partition(|e| e.key.starts_with("exception"));
        self.errors.extend(others);

        let mut require = Vec::new();
        if let Some(v) = get("require") {
            let allowed = Allowed::of(&allow);
            for (s, span) in self.strings(v, "require") {
                if let Some(spec) = self.spec(&s, span.clone(), "require") {
                    let uncovered: Vec<String> = spec
                        .ports
                        .iter()
                        .filter(|(p, r)| !allowed.covers_all(*p, *r))
                        .map(|(p, r)| format!("{r}/{p}"))
                        .collect();
                    if !uncovered.is_empty() {
                        self.error(
                            span,
                            "require",
                            format!(
                                "'{s}' is required but not allowed ({} not covered by any [[allow]])",
                                uncovered.join(", ")
                            ),
                        );
                    }
                    require.push(spec);
                }
            }
        }

        let mut forbid_cleartext = Vec::new();
        if let Some(v) = get("forbid-cleartext") {
            let all = matches!(v.get_ref(), DeValue::String(s) if s == "all");
            if all {
                for k in knowledge::entries().filter(|k| k.is_insecure() && !k.group) {
                    forbid_cleartext.push(Forbid {
                        spec: Spec {
                            label: k.name.to_string(),
                            ports: k.ranges(),
                        },
                        starttls: k.starttls,
                    });
                }
            } else {
                for (s, span) in self.strings(v, "forbid-cleartext") {
                    if let Some(spec) = self.spec(&s, span.clone(), "forbid-cleartext") {
                        let starttls = spec.known().is_some_and(|k| k.starttls);
                        forbid_cleartext.push(Forbid { spec, starttls });
                    }
                }
            }
            // A protocol that cannot upgrade to TLS cannot be both allowed and forbidden.
            for f in forbid_cleartext.iter().filter(|f| !f.starttls) {
                for a in &allow {
                    if let Some((p, r)) = f.spec.ports.iter().find(|(p, r)| a.overlaps(*p, *r)) {
                        let msg = format!(
                            "'{}' ({r}/{p}) is forbidden as cleartext but allowed by the [[allow]] on line {}",
                            f.spec.label, a.line
                        );
                        self.error(v.span(), "forbid-cleartext", msg);
                    }
                }
            }
        }

        self.errors.extend(errors);

        Ok(Policy {
            name,
            description,
            allow,
            require,
            forbid_cleartext,
            exceptions,
            allow_loopback,
            baseline: false,
        })
    }

    /// The tables of an array of tables (`[[allow]]`), numbered from the ones of the
    /// pieces before.
    fn tables<'v, 'i>(
        &mut self,
        v: &'v Val<'i>,
        key: &str,
    ) -> Vec<(usize, Spanned<&'v DeTable<'i>>)> {
        match v.get_ref() {
            DeValue::Array(items) => {
                let seen = if key == "allow" {
                    &mut self.allows_seen
                } else {
                    &mut self.exceptions_seen
                };
                let first = *seen;
                *seen += items.len();
                let mut out = Vec::new();
                for (i, item) in (first..).zip(items.iter()) {
                    match item.get_ref() {
                        DeValue::Table(t) => out.push((i, Spanned::new(item.span(), t))),
                        _ => self.expected(item, &format!("{key}[{}]", i + 1), "a table"),
                    }
                }
                out
            }
            _ => {
                self.expected(v, key, &format!("an array of tables ([[{key}]])"));
                Vec::new()
            }
        }
    }

    fn allow(&mut self, t: &DeTable<'_>, span: Range<usize>, key: &str) -> Option<Allow> {
        self.check_keys(t, ALLOW_KEYS, key);
        let line = self.line_of(span.start);
        let Some(service) = t.get("service") else {
            self.error(
                span,
                key,
                "missing key 'service' (a name such as 'smtp', or '8080/tcp')",
            );
            return None;
        };
        let skey = format!("{key}.service");
        let mut services = Vec::new();
        for (s, sp) in self.strings(service, &skey) {
            services.extend(self.spec(&s, sp, &skey));
        }
        // Every key is checked, so that a bad `bind` does not hide a bad `from`.
        let bind = match t.get("bind") {
            None => Some(Bind::Any),
            Some(v) => {
                let bkey = format!("{key}.bind");
                let words = self.strings(v, &bkey);
                self.bind(words, &bkey)
            }
        };
        let before_from = self.errors.len();
        let mut from = Vec::new();
        if let Some(v) = t.get("from") {
            let fkey = format!("{key}.from");
            for (s, sp) in self.strings(v, &fkey) {
                if s == "any" {
                    from.push(IpNet::ANY_V4);
                    from.push(IpNet::ANY_V6);
                    continue;
                }
                match s.parse::<IpNet>() {
                    Ok(n) => from.push(n),
                    Err(e) => self.error(sp, &fkey, format!("{e}, or 'any'")),
                }
            }
            if from.is_empty() && self.errors.len() == before_from {
                self.error(v.span(), &fkey, "an empty 'from' lets nobody in; leave it out to allow any source, or remove the entry");
            }
        }
        let comment = t
            .get("comment")
            .and_then(|v| self.string(v, &format!("{key}.comment")));
        let bind = bind?;
        if services.is_empty() {
            return None;
        }
        // A policy may hold hundreds of thousands of entries: no room to spare in each.
        services.shrink_to_fit();
        from.shrink_to_fit();
        Some(Allow {
            services,
            bind,
            from,
            comment,
            line,
        })
    }

    fn bind(&mut self, words: Vec<(String, Range<usize>)>, key: &str) -> Option<Bind> {
        let mut addrs = Vec::new();
        let mut special = None;
        let n = words.len();
        for (w, sp) in words {
            match w.as_str() {
                "any" | "loopback" | "localhost" if n > 1 => {
                    self.error(
                        sp,
                        key,
                        format!("'{w}' cannot be combined with other addresses"),
                    );
                    return None;
                }
                "any" => special = Some(Bind::Any),
                "loopback" | "localhost" => special = Some(Bind::Loopback),
                _ => {
                    match w.parse::<IpAddr>() {
                        Ok(a) if a.is_unspecified() => {
                            self.error(
                                sp,
                                key,
                                format!("'{w}' is the wildcard address: write 'any'"),
                            );
                            return None;
                        }
                        Ok(a) => addrs.push(a.to_canonical()),
                        Err(_) => {
                            self.error(
                            sp,
                            key,
                            format!("invalid bind '{w}' (expected 'loopback', 'any', or an IP address)"),
                        );
                            return None;
                        }
                    }
                }
            }
        }
        match special {
            Some(b) => Some(b),
            None if addrs.is_empty() => {
                self.error(0..0, key, "bind needs 'loopback', 'any', or addresses");
                None
            }
            None => Some(Bind::Addresses(addrs)),
        }
    }

    fn exception(&mut self, t: &DeTable<'_>, span: Range<usize>, key: &str) -> Option<Exception> {
        self.check_keys(t, EXCEPTION_KEYS, key);
        let line = self.line_of(span.start);
        let before = self.errors.len();
        let service = t.get("service").and_then(|v| {
            let k = format!("{key}.service");
            let s = self.string(v, &k)?;
            self.spec(&s, v.span(), &k)
        });
        let rule = t.get("rule").and_then(|v| {
            let k = format!("{key}.rule");
            let s = self.string(v, &k)?;
            match s.parse::<Rule>() {
                Ok(r) => Some(r),
                Err(_) => {
                    let ids = Rule::ALL.map(Rule::id);
                    let near = suggest::nearest(&s, ids.iter().copied(), 3);
                    let hint = if near.is_empty() {
                        format!("rules are: {}", ids.join(", "))
                    } else {
                        format!("did you mean {}?", quote_list(&near))
                    };
                    self.error(v.span(), &k, format!("unknown rule '{s}' ({hint})"));
                    None
                }
            }
        });
        let process = t
            .get("process")
            .and_then(|v| self.string(v, &format!("{key}.process")));
        let reason = match t.get("reason") {
            Some(v) => {
                let k = format!("{key}.reason");
                let r = self.string(v, &k).unwrap_or_default();
                if r.trim().is_empty() && self.errors.len() == before {
                    self.error(
                        v.span(),
                        &k,
                        "the reason is empty: say why this exception exists",
                    );
                }
                r
            }
            None => {
                self.error(
                    span.clone(),
                    key,
                    "missing key 'reason': every exception says why it exists",
                );
                String::new()
            }
        };
        let expires = t.get("expires").and_then(|v| {
            let k = format!("{key}.expires");
            match v.get_ref() {
                DeValue::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => {
                    let d = dt.date?;
                    Date::new(i32::from(d.year), d.month, d.day)
                }
                _ => {
                    self.expected(v, &k, "a date such as 2026-12-31 (no quotes, no time)");
                    None
                }
            }
        });
        if service.is_none() && rule.is_none() && process.is_none() && self.errors.len() == before {
            self.error(
                span,
                key,
                "an exception needs at least one of 'service', 'rule' or 'process' (it would hold back every finding)",
            );
        }
        if self.errors.len() > before {
            return None;
        }
        Some(Exception {
            service,
            rule,
            process,
            reason,
            expires,
            line,
        })
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn quote_list(names: &[String]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    match q.len() {
        0 => String::new(),
        1 => q[0].clone(),
        _ => format!("{} or {}", q[..q.len() - 1].join(", "), q[q.len() - 1]),
    }
}

/// Resolves a service as written in a policy into ports.
pub fn resolve(text: &str, catalog: &dyn Catalog) -> Result<Spec, String> {
    resolve_in(text, catalog, &mut Names::default())
}

fn resolve_in(text: &str, catalog: &dyn Catalog, names: &mut Names) -> Result<Spec, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty service name".into());
    }
    let (what, proto) = match t.rsplit_once('/') {
        Some((w, p)) => match p.parse::<Proto>() {
            Ok(p) => (w, Some(p)),
            Err(_) => {
                return Err(format!(
                    "unknown protocol '{p}' in '{t}' (expected tcp, udp, sctp or dccp)"
                ));
            }
        },
        None => (t, None),
    };
    let numeric = what.starts_with(|c: char| c.is_ascii_digit());
    if numeric {
        let range: PortRange = what.parse().map_err(|e| format!("{e} in '{t}'"))?;
        let Some(proto) = proto else {
            return Err(format!(
                "'{t}' needs a protocol: write '{what}/tcp' or '{what}/udp'"
            ));
        };
        return Ok(Spec {
            label: t.to_string(),
            ports: vec![(proto, range)],
        });
    }
    let mut ports = match knowledge::by_name(what) {
        Some(k) => k.ranges(),
        None => catalog.ports(&what.to_ascii_lowercase()),
    };
    if ports.is_empty() {
        let hint = match names.nearest(catalog, what) {
            Some(near) if !near.is_empty() => format!(" (did you mean {}?)", quote_list(&near)),
            _ => " (give it as port/protocol, such as '8080/tcp')".to_string(),
        };
        return Err(format!("unknown service '{what}'{hint}"));
    }
    if let Some(proto) = proto {
        let all = ports.clone();
        ports.retain(|(p, _)| *p == proto);
        if ports.is_empty() {
            let have: Vec<String> = all.iter().map(|(p, r)| format!("{r}/{p}")).collect();
            return Err(format!(
                "'{what}' has no {proto} port (it uses {})",
                have.join(", ")
            ));
        }
    }
    Ok(Spec {
        label: t.to_ascii_lowercase(),
        ports,
    })
}

/// The byte offset where each line starts, so finding a line is a binary search rather
/// than a count of the newlines before it (which made parsing quadratic in the entries).
struct Lines(Vec<usize>);

impl Lines {
    fn of(text: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(starts_after_newlines(text));
        Lines(starts)
    }

    /// The line (from 0) holding byte `offset`, and where it starts.
    fn find(&self, offset: usize) -> (usize, usize) {
        let i = self.0.partition_point(|&s| s <= offset).saturating_sub(1);
        (i, self.0[i])
    }
}

fn starts_after_newlines(text: &str) -> impl Iterator<Item = usize> + '_ {
    text.bytes()
        .enumerate()
        .filter(|&(_, b)| b == b'\n')
        .map(|(i, _)| i + 1)
}

/// The widest stretch of a line a snippet shows, in characters.
const SNIPPET_WIDTH: usize = 120;

/// Line (from 1), column (from 1, in characters) and a snippet with a caret. A long line
/// is cut to [`SNIPPET_WIDTH`] characters around the column, with `…` where it was cut.
fn locate(text: &str, lines: &Lines, span: Range<usize>) -> (usize, usize, String) {
    let start = floor_char(text, span.start.min(text.len()));
    let (line_idx, line_start) = lines.find(start);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line_no = line_idx + 1;
    let col = text[line_start..start].chars().count() + 1;
    let src = text[line_start..line_end].trim_end_matches('\r');
    let end = floor_char(text, span.end.clamp(start, line_end));
    let width = text[start..end].chars().count().max(1);
    let total = src.chars().count();
    // The window of characters shown: all of a short line, else SNIPPET_WIDTH around the
    // column.
    let (from, to) = if total <= SNIPPET_WIDTH {
        (0, total)
    } else {
        let from = (col - 1).saturating_sub(SNIPPET_WIDTH / 2);
        let to = (from + SNIPPET_WIDTH).min(total);
        (to.saturating_sub(SNIPPET_WIDTH), to)
    };
    let mut shown = String::new();
    if from > 0 {
        shown.push('…');
    }
    shown.extend(src.chars().skip(from).take(to - from));
    if to < total {
        shown.push('…');
    }
    let lead = usize::from(from > 0);
    let caret_col = col - 1 - from + lead;
    let carets = width.min(to.saturating_sub(col - 1).max(1));
    let gutter = format!("{line_no} | ");
    let snippet = format!(
        "{gutter}{shown}\n{}{}",
        " ".repeat(gutter.len() + caret_col),
        "^".repeat(carets)
    );
    (line_no, col, snippet)
}

fn floor_char(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The key path at a byte offset, read from the text around it (for syntax errors,
/// which come without one): the last table header before it and the key on its line.
fn key_at(text: &str, offset: usize) -> String {
    let offset = floor_char(text, offset.min(text.len()));
    let mut header = String::new();
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    for line in text[..line_start].lines() {
        let l = line.trim();
        if let Some(h) = l.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let h = h.trim().to_string();
            let n = counts.entry(h.clone()).or_default();
            *n += 1;
            header = format!("{h}[{n}]");
        } else if let Some(h) = l.strip_prefix('[').and_then(|r| r.split(']').next()) {
            header = h.trim().to_string();
        }
    }
    let line = &text[line_start..];
    let line = line.split('\n').next().unwrap_or_default();
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('#') && !k.starts_with('['))
        .unwrap_or_default();
    match (header.is_empty(), key.is_empty()) {
        (_, true) => header,
        (true, false) => key,
        (false, false) => format!("{header}.{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::KnownOnly;

    fn parse(text: &str) -> Result<Policy, PolicyErrors> {
        Policy::parse(text, "test.toml", &KnownOnly)
    }

    /// A catalog that counts how often its whole name list is asked for.
    struct Counting(std::cell::Cell<usize>, crate::catalog::Table);

    impl Catalog for Counting {
        fn ports(&self, name: &str) -> Vec<(Proto, PortRange)> {
            self.1.ports(name)
        }
        fn name_for(&self, port: u16, proto: Proto) -> Option<String> {
            self.1.name_for(port, proto)
        }
        fn names(&self) -> Vec<String> {
            self.0.set(self.0.get() + 1);
            self.1.names()
        }
    }

    #[test]
    fn policy_check_of_thousands_of_unknown_names_searches_the_names_once() {
        let catalog = Counting(
            std::cell::Cell::new(0),
            crate::catalog::Table(vec![("gopher".into(), Proto::Tcp, PortRange::single(70))]),
        );
        let mut text = String::new();
        for i in 0..5000 {
            text.push_str(&format!("[[allow]]\nservice = \"gophr{i}\"\n"));
        }
        let e = Policy::parse(&text, "big.toml", &catalog).unwrap_err();
        // Every error is reported, the names are gathered once, and only the first
        // SUGGESTIONS errors search them.
        assert_eq!(e.0.len(), 5000);
        assert_eq!(catalog.0.get(), 1);
        assert!(
            e.0[0].message.contains("did you mean 'gopher'"),
            "{}",
            e.0[0]
        );
        let hinted =
            e.0.iter()
                .filter(|e| e.message.contains("did you mean"))
                .count();
        assert!(hinted <= SUGGESTIONS, "{hinted}");
        assert!(
            e.0[4999].message.contains("give it as port/protocol"),
            "{}",
            e.0[4999]
        );
    }

    fn whole(text: &str) -> Result<Policy, PolicyErrors> {
        parse_whole(text, &Lines::of(text), "test.toml", &KnownOnly)
    }

    /// A policy of `n` entries over many pieces, with an error in some allow entries
    /// and exceptions when `bad`.
    fn many(n: usize, bad: bool) -> String {
        let mut t =
            String::from("name = \"many\"\nrequire = [\"ssh\"]\nforbid-cleartext = [\"telnet\"]\n");
        t.push_str("[[allow]]\nservice = \"ssh\"\n");
        for i in 0..n {
            let port = 1024 + i % 60000;
            let bind = if bad && i % 997 == 5 { "lo" } else { "any" };
            t.push_str(&format!(
                "[[allow]] # entry {i}\nservice = [\"{port}/tcp\", \"smtp\"]\nbind = \"{bind}\"\nfrom = [\"192.0.2.0/24\"]\ncomment = \"a \\\"quoted\\\" [[allow]]\"\n"
            ));
            if i % 1000 == 7 {
                let reason = if bad { "" } else { "migration" };
                t.push_str(&format!(
                    "\n[[exception]]\nservice = \"{port}/tcp\"\nreason = \"{reason}\"\nexpires = 2030-01-01\n"
                ));
            }
        }
        t
    }

    #[test]
    fn a_policy_read_in_pieces_is_the_policy_read_whole() {
        let text = many(5000, false);
        let bounds = pieces(&text).expect("only [[allow]] and [[exception]] tables");
        assert!(bounds.len() > 4, "{} pieces", bounds.len() - 1);
        let p = parse(&text).unwrap();
        assert_eq!(p, whole(&text).unwrap());
        assert_eq!((p.allow.len(), p.exceptions.len()), (5001, 5));
        assert_eq!(p.allow[5000].line, text.lines().count() - 4);
        // Errors too: the same lines, columns, keys (counted over the whole file) and
        // order (allow entries, then require and forbid-cleartext, then exceptions).
        let text = many(5000, true).replace(
            "forbid-cleartext = [\"telnet\"]",
            "forbid-cleartext = [\"telnet\", \"smtp\"]",
        );
        let e = parse(&text).unwrap_err();
        assert_eq!(e, whole(&text).unwrap_err());
        assert!(e.0.iter().any(|e| e.key == "allow[4992].bind"), "{e}");
        assert!(e.0.iter().any(|e| e.key == "exception[5].reason"), "{e}");
        assert!(e.0.last().unwrap().key.starts_with("exception"));
    }

    #[test]
    fn files_that_do_not_split_are_read_whole() {
        // What only the whole file can tell: tables of other kinds after the first
        // [[allow]], the head defining `allow` itself, a syntax error in a piece.
        let tail = "\n[[allow]]\nservice = \"ssh\"\n".repeat(4000);
        for (text, want) in [
            (format!("allow = [{{service = \"smtp\"}}]\n{tail}"), ""),
            (format!("[allow]\nservice = \"smtp\"\n{tail}"), ""),
            (format!("{tail}[allow.bind]\nx = 1\n{tail}"), ""),
            (
                format!("{tail}[[exception]]\nrule = \"x\"\n[allow.x]\n{tail}"),
                "",
            ),
            (
                format!("{tail}[[allow]]\nservice = \"ssh\n{tail}"),
                "allow[4001].service",
            ),
        ] {
            let e = parse(&text).unwrap_err();
            assert_eq!(e, whole(&text).unwrap_err(), "{text:.80}");
            if !want.is_empty() {
                assert!(e.0.iter().any(|e| e.key == want), "{e:.300}");
            }
        }
        assert!(pieces("[[allow]]\nservice = \"ssh\"\n[x]\n").is_none());
        assert!(pieces("name = \"x\"\n").is_none());
        // A line that looks like a header inside a multi-line string: the file is read
        // whole after it, or the piece before it fails and the file is read whole.
        let text = "require = [\n[\"ssh\"],\n]\n[[allow]]\nservice = '''\n[[x]]\n'''\n";
        assert_eq!(pieces(text), None);
        let text = format!("{tail}[[allow]]\ncomment = '''\n{tail}'''\nservice = \"ssh\"\n");
        assert!(pieces(&text).unwrap().len() > 2);
        let p = parse(&text).unwrap();
        assert_eq!(p, whole(&text).unwrap());
        assert_eq!(p.allow.len(), 4001);
    }

    #[test]
    fn resolves_names_ports_and_ranges() {
        let s = resolve("smtp", &KnownOnly).unwrap();
        assert_eq!(s.ports, vec![(Proto::Tcp, PortRange::single(25))]);
        let s = resolve("dns/udp", &KnownOnly).unwrap();
        assert_eq!(s.ports, vec![(Proto::Udp, PortRange::single(53))]);
        let s = resolve("6000-6010/tcp", &KnownOnly).unwrap();
        assert_eq!(
            s.ports,
            vec![(Proto::Tcp, PortRange::new(6000, 6010).unwrap())]
        );
        assert!(
            resolve("53", &KnownOnly)
                .unwrap_err()
                .contains("needs a protocol")
        );
        assert!(
            resolve("ssh/udp", &KnownOnly)
                .unwrap_err()
                .contains("no udp port")
        );
        assert!(
            resolve("25/icmp", &KnownOnly)
                .unwrap_err()
                .contains("unknown protocol")
        );
        assert!(resolve("70000/tcp", &KnownOnly).is_err());
        let e = resolve("smpt", &KnownOnly).unwrap_err();
        assert!(e.contains("did you mean 'smtp'"), "{e}");
    }

    #[test]
    fn registry_names_resolve_through_the_catalog() {
        let cat = crate::catalog::Table(vec![("gopher".into(), Proto::Tcp, PortRange::single(70))]);
        let p = Policy::parse("[[allow]]\nservice = \"gopher\"\n", "t.toml", &cat).unwrap();
        assert!(p.allow[0].covers(Proto::Tcp, 70));
        let e = Policy::parse("[[allow]]\nservice = \"gophr\"\n", "t.toml", &cat).unwrap_err();
        assert!(e.to_string().contains("did you mean 'gopher'"), "{e}");
    }

    #[test]
    fn full_policy() {
        let p = parse(
            r#"
name = "mail"
require = ["smtp"]
forbid-cleartext = "all"

[[allow]]
service = ["smtp", "submission"]

[[allow]]
service = "ssh"
from = ["192.0.2.0/24", "2001:db8::/32"]

[[allow]]
service = "imap"
bind = "loopback"

[[exception]]
service = "8080/tcp"
reason = "migration"
expires = 2026-12-31
"#,
        )
        .unwrap();
        assert_eq!(p.name, "mail");
        assert_eq!(p.allow.len(), 3);
        assert_eq!(p.allow[1].from.len(), 2);
        assert!(!p.allow[1].from_anywhere());
        assert_eq!(p.allow[2].bind, Bind::Loopback);
        assert_eq!(p.require.len(), 1);
        assert!(p.forbid_cleartext.iter().any(|f| f.spec.label == "telnet"));
        assert_eq!(p.exceptions[0].expires, Date::new(2026, 12, 31));
        assert_eq!(p.exceptions[0].line, 17);
        assert_eq!(p.allow[1].line, 9);
    }

    #[test]
    fn errors_name_line_and_key() {
        let e = parse("[[allow]]\nservice = \"smtp\"\nbnd = \"any\"\n").unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!((e.0[0].line, e.0[0].column), (3, 1));
        assert_eq!(e.0[0].key, "allow[1].bnd");
        assert!(e.0[0].message.contains("did you mean 'bind'"));
    }

    #[test]
    fn cleartext_conflict() {
        let e = parse("forbid-cleartext = [\"telnet\"]\n[[allow]]\nservice = \"telnet\"\n")
            .unwrap_err();
        assert!(
            e.to_string().contains("forbidden as cleartext but allowed"),
            "{e}"
        );
        // imap can upgrade with STARTTLS: allowing it and forbidding cleartext imap is fine.
        parse("forbid-cleartext = [\"imap\"]\n[[allow]]\nservice = \"imap\"\n").unwrap();
    }

    #[test]
    fn bind_permits() {
        let b = Bind::Addresses(vec!["192.0.2.1".parse().unwrap()]);
        assert!(b.permits("192.0.2.1".parse().unwrap()));
        assert!(b.permits("127.0.0.1".parse().unwrap()));
        assert!(!b.permits("0.0.0.0".parse().unwrap()));
        assert!(Bind::Loopback.permits("::1".parse().unwrap()));
        assert!(!Bind::Loopback.permits("::".parse().unwrap()));
    }

    #[test]
    fn key_at_finds_headers() {
        let t = "a = 1\n[[allow]]\nx = 1\n[[allow]]\nservice = \"\n";
        assert_eq!(key_at(t, t.len() - 3), "allow[2].service");
    }
}
