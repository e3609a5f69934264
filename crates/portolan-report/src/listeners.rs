//! `portolan ls`: the listeners as a table grouped by exposure, as JSON, or as CSV.
//!
//! Process names and command lines are another process's text: the table escapes them
//! for the terminal ([`crate::text::terminal`]); JSON and CSV carry them as they are,
//! escaped by their format.

use std::collections::HashMap;
use std::io::{self, Write};
use std::rc::Rc;
use std::sync::Arc;

use portolan_model::{Exposure, Family, Listener, Process};

use crate::text::terminal;

/// How the table looks.
#[derive(Debug, Clone, Copy, Default)]
pub struct View {
    /// Add the owners' command lines.
    pub wide: bool,
    /// Add the namespace column (it is also shown when rows come from several).
    pub netns: bool,
    /// Colour the exposure of each group and bold the header (the caller decides, from
    /// the terminal and `NO_COLOR`).
    pub color: bool,
}

/// The listeners as a pretty JSON array (the fields of docs/json.md, `portolan ls`).
pub fn json(w: &mut dyn Write, listeners: &[Listener]) -> io::Result<()> {
    crate::json::document(w, listeners)
}

const CSV_HEADER: [&str; 20] = [
    "protocol",
    "family",
    "address",
    "port",
    "v6only",
    "exposure",
    "service",
    "category",
    "state",
    "interface",
    "netns",
    "inode",
    "uid",
    "user",
    "socket_activated",
    "socket_unit",
    "owner_unknown",
    "pids",
    "processes",
    "units",
];

/// One CSV record per listener (owners joined with `;`), after a header line.
pub fn csv(w: &mut dyn Write, listeners: &[Listener]) -> io::Result<()> {
    let mut out = crate::csv::Writer::new(w);
    out.record(CSV_HEADER)?;
    for l in listeners {
        let join = |f: &dyn Fn(&Process) -> String| {
            l.processes
                .iter()
                .map(|o| f(o))
                .collect::<Vec<_>>()
                .join(";")
        };
        out.record([
            l.protocol.as_str().to_string(),
            l.family.as_str().to_string(),
            l.address.to_string(),
            l.port.to_string(),
            l.v6only.map(|b| b.to_string()).unwrap_or_default(),
            l.exposure.as_str().to_string(),
            l.service.as_deref().unwrap_or_default().to_string(),
            l.category.as_str().to_string(),
            l.state.as_str().to_string(),
            l.interface.as_deref().unwrap_or_default().to_string(),
            l.netns.to_string(),
            l.inode.to_string(),
            l.uid.to_string(),
            l.user.as_deref().unwrap_or_default().to_string(),
            l.socket_activated.to_string(),
            l.socket_unit.as_deref().unwrap_or_default().to_string(),
            l.owner_unknown.to_string(),
            join(&|o| o.pid.to_string()),
            join(&|o| o.name.clone()),
            join(&|o| o.unit.clone().unwrap_or_default()),
        ])?;
    }
    out.flush()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Col {
    Exposure,
    Proto,
    Address,
    Port,
    Peer,
    Ip,
    Service,
    Process,
    User,
    Unit,
    Netns,
    Command,
}

impl Col {
    fn header(self) -> &'static str {
        match self {
            Col::Exposure => "EXPOSURE",
            Col::Proto => "PROTO",
            Col::Address => "ADDRESS",
            Col::Port => "PORT",
            Col::Peer => "PEER",
            Col::Ip => "IP",
            Col::Service => "SERVICE",
            Col::Process => "PROCESS",
            Col::User => "USER",
            Col::Unit => "UNIT",
            Col::Netns => "NETNS",
            Col::Command => "COMMAND",
        }
    }
}

/// `4`, `6`, or `4+6` for a dual-stack wildcard (`6?` when `v6only` is unknown).
fn ip_versions(l: &Listener) -> &'static str {
    match (l.family, l.v6only) {
        (Family::V4, _) => "4",
        (Family::V6, Some(false)) if l.address.is_unspecified() => "4+6",
        (Family::V6, None) if l.address.is_unspecified() => "6?",
        (Family::V6, _) => "6",
    }
}

/// `*` for a wildcard address, then `%IFACE` when bound to an interface.
fn address(l: &Listener, s: &mut String) {
    use std::fmt::Write as _;
    if l.address.is_unspecified() {
        s.push('*');
    } else {
        let _ = write!(s, "{}", l.address);
    }
    if let Some(i) = &l.interface {
        s.push('%');
        s.push_str(&terminal(i));
    }
}

/// `nginx[900,901] python3[77]`: owners grouped by name; `?` when unknown, `-` for none.
fn processes(l: &Listener) -> String {
    if l.processes.is_empty() {
        return if l.owner_unknown { "?" } else { "-" }.to_string();
    }
    let mut groups: Vec<(&str, Vec<u32>)> = Vec::new();
    for o in l.processes.iter() {
        match groups.iter_mut().find(|(n, _)| *n == o.name) {
            Some((_, pids)) => pids.push(o.pid),
            None => groups.push((&o.name, vec![o.pid])),
        }
    }
    groups
        .iter()
        .map(|(n, pids)| {
            let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
            format!("{}[{}]", terminal(n), pids.join(","))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn unit(l: &Listener) -> String {
    let mut units: Vec<&str> = Vec::new();
    for o in l.processes.iter().filter(|o| !o.is_systemd()) {
        if let Some(u) = o.unit.as_deref() {
            if !units.contains(&u) {
                units.push(u);
            }
        }
    }
    let mut s = units.join(" ");
    if l.socket_activated {
        let via = l.socket_unit.as_deref().unwrap_or("socket-activated");
        if s.is_empty() {
            s = via.to_string();
        } else {
            s = format!("{s} ({via})");
        }
    }
    s
}

fn user(l: &Listener) -> String {
    let owner = l.processes.iter().find(|o| !o.is_systemd());
    match owner {
        Some(o) => o
            .user
            .clone()
            .or_else(|| o.uid.map(|u| u.to_string()))
            .unwrap_or_default(),
        None => l
            .user
            .as_deref()
            .map_or_else(|| l.uid.to_string(), str::to_string),
    }
}

/// The owner cells (process, user, unit, command) of a row, computed once per distinct
/// owner list: on a host with 100,000 sockets there are only a few.
/// Which owner list (by address), whether unknown, and the socket's uid.
type OwnerKey = (usize, bool, u32);
/// PROCESS, USER, UNIT and COMMAND.
type Cells = Rc<[String; 4]>;

#[derive(Default)]
struct OwnerCells {
    cache: HashMap<OwnerKey, Cells>,
    /// The last row's cells: neighbouring rows usually share their owners.
    last: Option<(OwnerKey, Cells)>,
}

impl OwnerCells {
    fn get(&mut self, l: &Listener) -> Cells {
        // The empty list is not shared between rows, so it is keyed on the uid alone.
        let ptr = if l.processes.is_empty() {
            0
        } else {
            Arc::as_ptr(&l.processes) as *const () as usize
        };
        let key = (ptr, l.owner_unknown, l.uid);
        if let Some((k, cells)) = &self.last {
            if *k == key {
                return Rc::clone(cells);
            }
        }
        let cells = Rc::clone(
            self.cache
                .entry(key)
                .or_insert_with(|| Rc::new([processes(l), user(l), unit(l), command(l)])),
        );
        self.last = Some((key, Rc::clone(&cells)));
        cells
    }
}

fn command(l: &Listener) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for o in l.processes.iter() {
        if !seen.contains(&o.cmdline.as_str()) {
            seen.push(&o.cmdline);
        }
    }
    terminal(&seen.join(" | ")).into_owned()
}

fn cell(l: &Listener, c: Col, first_of_group: bool, owners: &mut OwnerCells, buf: &mut String) {
    buf.clear();
    match c {
        Col::Exposure => {
            if first_of_group {
                buf.push_str(l.exposure.as_str());
            }
        }
        Col::Proto => buf.push_str(l.protocol.as_str()),
        Col::Address => address(l, buf),
        Col::Port => {
            use std::fmt::Write as _;
            let _ = write!(buf, "{}", l.port);
        }
        Col::Ip => buf.push_str(ip_versions(l)),
        Col::Service => buf.push_str(l.service.as_deref().unwrap_or("-")),
        Col::Peer => buf.push_str(l.remote.as_deref().unwrap_or("-")),
        Col::Process => buf.push_str(&owners.get(l)[0]),
        Col::User => buf.push_str(&owners.get(l)[1]),
        Col::Unit => buf.push_str(&owners.get(l)[2]),
        Col::Netns => buf.push_str(&l.netns),
        Col::Command => buf.push_str(&owners.get(l)[3]),
    }
}

fn exposure_color(e: Exposure) -> &'static str {
    match e {
        Exposure::All => "\x1b[31m",
        Exposure::Address => "\x1b[33m",
        Exposure::Loopback => "\x1b[32m",
    }
}

/// The table, grouped by exposure (a blank line between groups, the exposure written on
/// the first row of each); nothing for no listeners. Laid out like
/// [`crate::table::Table`] (columns two spaces apart, padded to the widest cell, no
/// trailing spaces) but streamed: a host with 100,000 sockets drawn through comfy-table
/// took 2.3 times the CPU and 11 times the memory (`bench/ls.sh 50000`: 1001 ms and
/// 312 MiB against 435 ms and 28 MiB), so this view measures and prints in two passes.
pub fn table(w: &mut dyn Write, listeners: &[Listener], view: &View) -> io::Result<()> {
    if listeners.is_empty() {
        return Ok(());
    }
    let several_ns = listeners.iter().any(|l| l.netns != listeners[0].netns);
    let mut cols = vec![
        Col::Exposure,
        Col::Proto,
        Col::Address,
        Col::Port,
        Col::Ip,
        Col::Service,
        Col::Process,
        Col::User,
        Col::Unit,
    ];
    if view.netns || several_ns {
        cols.insert(1, Col::Netns);
    }
    if listeners.iter().any(|l| l.remote.is_some()) {
        let at = cols
            .iter()
            .position(|&c| c == Col::Port)
            .map_or(0, |i| i + 1);
        cols.insert(at, Col::Peer);
    }
    if view.wide {
        cols.push(Col::Command);
    }
    let first = |i: usize| i == 0 || listeners[i - 1].exposure != listeners[i].exposure;
    let mut width: Vec<usize> = cols.iter().map(|c| c.header().len()).collect();
    let mut buf = String::new();
    let mut owners = OwnerCells::default();
    for (i, l) in listeners.iter().enumerate() {
        for (k, &c) in cols.iter().enumerate() {
            cell(l, c, first(i), &mut owners, &mut buf);
            width[k] = width[k].max(buf.chars().count());
        }
    }
    let mut line = String::new();
    let last = cols.len() - 1;
    let push = |line: &mut String, k: usize, text: &str| {
        if k > 0 {
            line.push_str("  ");
        }
        line.push_str(text);
        if k < last {
            let pad = width[k].saturating_sub(text.chars().count());
            line.extend(std::iter::repeat_n(' ', pad));
        }
    };
    for (k, c) in cols.iter().enumerate() {
        push(&mut line, k, c.header());
    }
    if view.color {
        writeln!(w, "\x1b[1m{}\x1b[0m", line.trim_end())?;
    } else {
        writeln!(w, "{}", line.trim_end())?;
    }
    for (i, l) in listeners.iter().enumerate() {
        if i > 0 && first(i) {
            writeln!(w)?;
        }
        line.clear();
        for (k, &c) in cols.iter().enumerate() {
            cell(l, c, first(i), &mut owners, &mut buf);
            push(&mut line, k, &buf);
        }
        let text = line.trim_end();
        if view.color && first(i) {
            let word = l.exposure.as_str();
            let rest = &text[word.len()..];
            writeln!(w, "{}{word}\x1b[0m{rest}", exposure_color(l.exposure))?;
        } else {
            writeln!(w, "{text}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
