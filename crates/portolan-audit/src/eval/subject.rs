//! The subjects of an evaluation: one per port, with the listening sockets on it merged
//! over addresses, and what the scan saw of it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Deref;
use std::path::Path;

use portolan_model::{Detection, Exposure, Listener, PortState, Process, ScannedPort};
use portolan_registry::Proto;

use crate::catalog;
use crate::input::{Context, Inputs, Scan};
use crate::knowledge;

/// One owner of a subject's sockets, with what its socket says about it: a socket that
/// systemd holds for socket activation is stopped through its `.socket` unit, so the
/// owner carries that unit; systemd itself carries none.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner<'a> {
    pub process: &'a Process,
    pub exe: Option<&'a Path>,
    pub command: Option<&'a str>,
    pub user: Option<&'a str>,
    pub unit: Option<&'a str>,
    pub socket_activated: bool,
}

impl<'a> Owner<'a> {
    fn of(l: &'a Listener, p: &'a Process) -> Owner<'a> {
        let unit = crate::input::owner_unit(l, p);
        Owner {
            process: p,
            exe: p.exe.as_deref().map(Path::new),
            command: p.command(),
            user: p.user.as_deref().or(l.user.as_deref()),
            unit,
            socket_activated: l.socket_activated,
        }
    }

    /// The process as evidence shows it: with the unit and user its socket gives it.
    pub fn evidence_process(&self) -> Process {
        Process {
            user: self.user.map(str::to_string),
            unit: self.unit.map(str::to_string),
            ..self.process.clone()
        }
    }
}

impl Deref for Owner<'_> {
    type Target = Process;
    fn deref(&self) -> &Process {
        self.process
    }
}

/// One port as the audit sees it: the listening sockets on it (merged over addresses),
/// and what the scan saw.
#[derive(Debug)]
pub(crate) struct Subject<'a> {
    pub protocol: Proto,
    pub port: u16,
    pub addresses: Vec<IpAddr>,
    /// Every socket's address and the interface it is bound to, if any.
    pub sockets: Vec<(IpAddr, Option<&'a str>)>,
    pub exposure: Exposure,
    pub processes: Vec<Owner<'a>>,
    /// True when no owner was found and some processes' descriptors were unreadable.
    pub owner_unknown: bool,
    pub service: Option<String>,
    /// The namespace label of the sockets (`host` for the host's).
    pub netns_label: &'a str,
    /// The namespace, when it is not the one the audit is about.
    pub netns: Option<&'a str>,
    /// Some(true) reachable, Some(false) scanned and not reachable, None unknown.
    pub reachable: Option<bool>,
    /// What detection recognised (a detection that recognised nothing is left out).
    pub detected: Option<&'a Detection>,
    /// False for a port only the scan saw.
    pub listening: bool,
    /// The scanned host, for ports only the scan saw.
    pub host: Option<IpAddr>,
}

impl Subject<'_> {
    pub fn exposed(&self) -> bool {
        self.exposure != Exposure::Loopback
    }

    pub fn address_label(&self) -> Option<String> {
        if self.addresses.is_empty() {
            return self.host.map(|h| h.to_string());
        }
        let list: Vec<String> = self.addresses.iter().map(ToString::to_string).collect();
        Some(list.join(", "))
    }

    /// The addresses as data: the sockets', or the scanned host's.
    pub fn address_list(&self) -> Vec<IpAddr> {
        if self.addresses.is_empty() {
            self.host.into_iter().collect()
        } else {
            self.addresses.clone()
        }
    }

    pub fn process_label(&self) -> Option<String> {
        let mut names: Vec<&str> = self.processes.iter().map(|p| p.name.as_str()).collect();
        names.dedup();
        (!names.is_empty()).then(|| names.join(", "))
    }

    /// `6379/tcp on 0.0.0.0, ::` or `6379/tcp on mail.example.org`.
    pub fn socket_label(&self) -> String {
        let mut s = format!("{}/{}", self.port, self.protocol);
        if let Some(a) = self.address_label() {
            s.push_str(" on ");
            s.push_str(&a);
        }
        if let Some(ns) = self.netns {
            s.push_str(&format!(" (netns {ns})"));
        }
        s
    }

    /// What the socket is, for messages: `redis 6379/tcp on 0.0.0.0 (redis-server pid
    /// 812)`.
    pub fn describe(&self) -> String {
        let socket = self.socket_label();
        let head = match &self.service {
            Some(name) => format!("{name} {socket}"),
            None => socket,
        };
        let mut details: Vec<String> = self
            .processes
            .iter()
            .map(|p| format!("{} pid {}", p.name, p.pid))
            .collect();
        if details.is_empty() {
            details.push(
                if self.listening {
                    "owner unknown"
                } else {
                    "seen by the scan"
                }
                .into(),
            );
        }
        if let Some(d) = self.detected.and_then(|d| d.product.as_deref()) {
            details.push(format!("detected as {d}"));
        }
        format!("{head} ({})", details.join(", "))
    }
}

type Key<'a> = (Option<&'a str>, Proto, u16);

/// The subjects of the inputs, sorted by protocol, port and namespace.
pub(crate) fn subjects<'a>(inputs: &'a Inputs, ctx: &Context<'_>) -> Vec<Subject<'a>> {
    let (mut out, index) = inside(inputs);
    if let Some(scan) = &inputs.scan {
        outside(&mut out, &index, scan, inputs.listeners.is_some());
    }
    for s in &mut out {
        name(s, ctx);
    }
    out.sort_by(|a, b| (a.protocol, a.port, a.netns).cmp(&(b.protocol, b.port, b.netns)));
    out
}

/// The inside view: one subject per (namespace, protocol, port), and where each is.
fn inside<'a>(inputs: &'a Inputs) -> (Vec<Subject<'a>>, HashMap<Key<'a>, usize>) {
    let home = inputs.home_netns();
    let mut out: Vec<Subject<'a>> = Vec::new();
    let mut index: HashMap<Key<'a>, usize> = HashMap::new();
    for l in inputs.listeners.iter().flatten() {
        let netns = (&*l.netns != home).then_some(&*l.netns);
        let key = (netns, l.protocol, l.port);
        let i = *index.entry(key).or_insert_with(|| {
            out.push(Subject {
                protocol: l.protocol,
                port: l.port,
                addresses: Vec::new(),
                sockets: Vec::new(),
                exposure: Exposure::Loopback,
                processes: Vec::new(),
                owner_unknown: false,
                service: None,
                netns_label: &l.netns,
                netns,
                reachable: None,
                detected: None,
                listening: true,
                host: None,
            });
            out.len() - 1
        });
        let s = &mut out[i];
        if !s.addresses.contains(&l.address) {
            s.addresses.push(l.address);
        }
        s.sockets.push((l.address, l.interface.as_deref()));
        s.owner_unknown |= l.owner_unknown;
        s.exposure = s.exposure.max(l.exposure);
        for p in l.processes.iter() {
            if !s.processes.iter().any(|q| q.pid == p.pid) {
                s.processes.push(Owner::of(l, p));
            }
        }
        if s.service.is_none() {
            s.service = l.service.as_deref().map(str::to_string);
        }
    }
    (out, index)
}

/// What a scan saw of a port, when it recognised something.
fn recognised(r: &ScannedPort) -> Option<&Detection> {
    r.detected.as_ref().filter(|d| d.is_identified())
}

/// The outside view: what the scan saw of the listening subjects (when it scanned this
/// host), and a subject for each open port nothing here listens on.
fn outside<'a>(
    out: &mut Vec<Subject<'a>>,
    index: &HashMap<Key<'a>, usize>,
    scan: &'a Scan,
    inside_view: bool,
) {
    let combine = scan.local && inside_view;
    let mut results: HashMap<(Proto, u16), &'a ScannedPort> = HashMap::new();
    for r in scan.results() {
        results.insert((r.result.proto, r.result.port), r);
    }
    if combine {
        for s in out.iter_mut().filter(|s| s.netns.is_none() && s.exposed()) {
            if !scan.covers(s.protocol, s.port) {
                continue;
            }
            match results.get(&(s.protocol, s.port)) {
                Some(r) if r.result.state == PortState::Open => {
                    s.detected = recognised(r);
                    if !scan.from_itself {
                        s.reachable = Some(true);
                    }
                }
                Some(r) if r.result.state == PortState::OpenFiltered => {}
                _ if scan.from_itself => {}
                _ => s.reachable = Some(false),
            }
        }
    }
    for r in scan.results().filter(|r| r.result.state == PortState::Open) {
        let seen = combine && index.contains_key(&(None, r.result.proto, r.result.port));
        if seen || (combine && scan.from_itself) {
            continue;
        }
        out.push(Subject {
            protocol: r.result.proto,
            port: r.result.port,
            addresses: Vec::new(),
            sockets: Vec::new(),
            exposure: Exposure::All,
            processes: Vec::new(),
            owner_unknown: false,
            service: None,
            netns_label: "host",
            netns: None,
            reachable: Some(true),
            detected: recognised(r),
            listening: false,
            host: Some(r.result.host),
        });
    }
}

/// The name to show: what detection heard (as the audit names it), else the audit's own
/// name for the port, else the inventory's, else the registry's.
fn name(s: &mut Subject<'_>, ctx: &Context<'_>) {
    let known = knowledge::by_port(s.port, s.protocol).map(|k| k.name.to_string());
    let heard = s.detected.and_then(|d| {
        let p = d.protocol.as_deref()?;
        let name = knowledge::by_name(p).map_or(p, |k| k.name);
        // Detection names the protocol inside TLS (http on 443): say so.
        Some(match (d.tls.is_some(), &known) {
            (true, Some(k)) if k.starts_with(name) => k.clone(),
            (true, _) => format!("{name} over TLS"),
            (false, _) => name.to_string(),
        })
    });
    s.service = heard
        .or(known)
        .or(s.service.take())
        .or_else(|| catalog::name_for(ctx.catalog, s.port, s.protocol));
}
