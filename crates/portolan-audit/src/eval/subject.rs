//! The subjects of an evaluation: one per port, with the listening sockets on it merged
//! over addresses, and what the scan saw of it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use portolan_model::{Detection, Exposure, Listener, PortState, Process, Reach, ScannedPort};
use portolan_registry::Proto;

use crate::catalog;
use crate::input::{Context, Inputs, Scan};
use crate::knowledge;

/// One owner of a subject's sockets, with what its socket says about it: a socket that
/// systemd holds for socket activation is stopped through its `.socket` unit, so the
/// owner carries that unit; systemd itself carries none.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner<'a> {
    pub process: &'a Arc<Process>,
    pub exe: Option<&'a Path>,
    pub command: Option<&'a str>,
    pub user: Option<&'a str>,
    pub unit: Option<&'a str>,
    pub socket_activated: bool,
}

impl<'a> Owner<'a> {
    fn of(l: &'a Listener, p: &'a Arc<Process>) -> Owner<'a> {
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

    /// The process as evidence shows it: with the unit and user its socket gives it. The
    /// inventory's record itself when they are its own, so that findings share it.
    pub fn evidence_process(&self) -> Arc<Process> {
        if self.user == self.process.user.as_deref() && self.unit == self.process.unit.as_deref() {
            return Arc::clone(self.process);
        }
        Arc::new(Process {
            user: self.user.map(str::to_string),
            unit: self.unit.map(str::to_string),
            ..Process::clone(self.process)
        })
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
    /// Some(true) reachable, Some(false) scanned and not reachable, None unknown
    /// (`reach` as a boolean).
    pub reachable: Option<bool>,
    /// What the outside view measured; `None` when no scan met this subject.
    pub reach: Option<Reach>,
    /// What was measured address by address (`filtered at 198.18.0.2; not probed at
    /// 2001:2::2`), for messages.
    pub reach_detail: Option<String>,
    /// The addresses the scan reached it at.
    pub reached: Vec<std::net::IpAddr>,
    /// A `[::]` socket of it also serves IPv4 (no IPV6_V6ONLY).
    pub dual_stack: bool,
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
                reach: None,
                reach_detail: None,
                reached: Vec::new(),
                dual_stack: false,
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
        // Unknown IPV6_V6ONLY is Linux's default (net.ipv6.bindv6only = 0): both families.
        s.dual_stack |= l.address.is_unspecified() && l.address.is_ipv6() && l.v6only != Some(true);
        for p in l.processes.iter() {
            if !s.processes.iter().any(|q| q.pid == p.pid) {
                s.processes.push(Owner::of(l, p));
            }
        }
        if s.service.is_none() {
            s.service = l.service.as_deref().map(str::to_string);
        }
    }
    // Most ports have one socket and one owner: room for four of each, in tens of
    // thousands of subjects, is most of their memory.
    for s in &mut out {
        s.addresses.shrink_to_fit();
        s.sockets.shrink_to_fit();
        s.processes.shrink_to_fit();
    }
    out.shrink_to_fit();
    (out, index)
}

/// True when the port answered: open, or a UDP port that stayed `open|filtered` to the
/// scanner's payload but answered detection's probes (as nmap promotes it).
fn answered(r: &ScannedPort) -> bool {
    r.result.state == PortState::Open
        || (r.result.proto == Proto::Udp
            && r.result.state == PortState::OpenFiltered
            && recognised(r).is_some())
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
    if combine {
        for s in out.iter_mut().filter(|s| s.netns.is_none()) {
            measure(s, scan);
        }
    }
    let mut seen_only: HashMap<(Proto, u16), usize> = HashMap::new();
    for r in scan.results().filter(|r| answered(r)) {
        let seen = combine && index.contains_key(&(None, r.result.proto, r.result.port));
        if seen || (combine && scan.from_itself) {
            continue;
        }
        let host = r.result.host;
        if let Some(&i) = seen_only.get(&(r.result.proto, r.result.port)) {
            let s = &mut out[i];
            if !s.addresses.contains(&host) {
                s.addresses.push(host);
                s.reached.push(host);
            }
            if s.detected.is_none() {
                s.detected = recognised(r);
            }
            continue;
        }
        seen_only.insert((r.result.proto, r.result.port), out.len());
        out.push(Subject {
            protocol: r.result.proto,
            port: r.result.port,
            addresses: vec![host],
            sockets: Vec::new(),
            exposure: Exposure::All,
            processes: Vec::new(),
            owner_unknown: false,
            service: None,
            netns_label: "host",
            netns: None,
            reachable: Some(true),
            reach: Some(Reach::Reachable),
            reach_detail: Some(format!("reachable at {host}")),
            reached: vec![host],
            dual_stack: false,
            detected: recognised(r),
            listening: false,
            host: Some(host),
        });
    }
}

/// The addresses a listening subject serves from outside: its own, or for a wildcard
/// socket the host's addresses of that family (both with a dual-stack `[::]`); the host's
/// addresses are the scan's probed ones when the audit does not know them. A loopback-only
/// subject serves none, but is looked for on every address of the host, so that reaching
/// it from outside is seen.
pub(crate) fn served(s: &Subject<'_>, scan: &Scan) -> Vec<IpAddr> {
    let host: Vec<IpAddr> = if scan.host_addresses.is_empty() {
        scan.report.coverage.addresses()
    } else {
        scan.host_addresses.clone()
    };
    let host: Vec<IpAddr> = host.into_iter().map(|a| a.to_canonical()).collect();
    if !s.exposed() {
        return host;
    }
    let mut out: Vec<IpAddr> = Vec::new();
    for a in &s.addresses {
        let a = a.to_canonical();
        let add: Vec<IpAddr> = if a.is_unspecified() {
            host.iter()
                .copied()
                .filter(|h| h.is_ipv4() == a.is_ipv4() || (s.dual_stack && h.is_ipv4()))
                .collect()
        } else if a.is_loopback() {
            Vec::new()
        } else {
            vec![a]
        };
        for h in add {
            if !out.contains(&h) {
                out.push(h);
            }
        }
    }
    out
}

/// What the scan measured of a listening subject, address by address: reachable where
/// any probe was answered open; not reachable only where every address it serves was
/// probed on this protocol and port and found closed or filtered; else not checked.
fn measure<'a>(s: &mut Subject<'a>, scan: &'a Scan) {
    if scan.from_itself {
        // Through loopback the firewall is never crossed: keep only what detection heard.
        if let Some(r) = scan
            .results()
            .find(|r| r.result.proto == s.protocol && r.result.port == s.port)
            .filter(|r| answered(r))
        {
            s.detected = recognised(r);
        }
        if s.exposed() && scan.covers(s.protocol, s.port) {
            s.reach = Some(Reach::NotChecked);
            s.reach_detail = Some("the scan ran on this host itself, through loopback".into());
        }
        return;
    }
    let served = served(s, scan);
    let mut parts: Vec<(String, Vec<IpAddr>)> = Vec::new();
    let mut note = |what: &str, a: IpAddr| match parts.iter_mut().find(|(w, _)| w == what) {
        Some((_, v)) => v.push(a),
        None => parts.push((what.to_string(), vec![a])),
    };
    let (mut open, mut unknown) = (false, false);
    for &a in &served {
        if !scan.report.coverage.covers(a, s.protocol, s.port) {
            if s.exposed() {
                unknown = true;
                note("not probed at", a);
            }
            continue;
        }
        match scan.report.port(a, s.protocol, s.port) {
            Some(r) if answered(r) => {
                open = true;
                s.reached.push(a);
                if s.detected.is_none() {
                    s.detected = recognised(r);
                }
                note("reachable at", a);
            }
            Some(r) if r.result.state == PortState::OpenFiltered => {
                unknown = true;
                note("no answer (open|filtered) at", a);
            }
            Some(r) if r.result.state == PortState::Closed => note("closed at", a),
            Some(_) => note("filtered at", a),
            None => note("not open at", a),
        }
    }
    if !s.exposed() && !open {
        // Loopback only and not reached: what the scan saw says nothing new.
        return;
    }
    let reach = if open {
        Reach::Reachable
    } else if unknown || served.is_empty() {
        Reach::NotChecked
    } else {
        Reach::Unreachable
    };
    s.reach = Some(reach);
    s.reachable = reach.as_bool();
    s.reach_detail = Some(if parts.is_empty() {
        "no address it serves was probed".to_string()
    } else {
        parts
            .iter()
            .map(|(w, v)| {
                let list: Vec<String> = v.iter().map(ToString::to_string).collect();
                format!("{w} {}", list.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    });
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
