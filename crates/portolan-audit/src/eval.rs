//! Evaluation: listeners and scan results against a policy (or the built-in baseline),
//! into findings with evidence and a concrete remediation.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use portolan_registry::Proto;

use crate::catalog;
use crate::finding::{Counts, Evidence, Finding, Report, Rule, Severity, Summary, Suppressed};
use crate::input::{Context, Detected, Exposure, Inputs, PortState, Process};
use crate::knowledge::{self, Kind, Known};
use crate::policy::Policy;

/// One port as the audit sees it: the listening sockets on it (merged over addresses),
/// and what the scan saw.
#[derive(Debug)]
struct Subject<'a> {
    protocol: Proto,
    port: u16,
    addresses: Vec<IpAddr>,
    exposure: Exposure,
    processes: Vec<&'a Process>,
    service: Option<String>,
    netns: Option<&'a str>,
    /// Some(true) reachable, Some(false) scanned and not reachable, None unknown.
    reachable: Option<bool>,
    detected: Option<&'a Detected>,
    /// False for a port only the scan saw.
    listening: bool,
    /// The scanned host, for ports only the scan saw.
    host: Option<&'a str>,
}

impl Subject<'_> {
    fn exposed(&self) -> bool {
        self.exposure != Exposure::Loopback
    }

    fn address_label(&self) -> Option<String> {
        if self.addresses.is_empty() {
            return self.host.map(str::to_string);
        }
        let list: Vec<String> = self.addresses.iter().map(ToString::to_string).collect();
        Some(list.join(", "))
    }

    fn process_label(&self) -> Option<String> {
        let mut names: Vec<&str> = self.processes.iter().map(|p| p.name.as_str()).collect();
        names.dedup();
        (!names.is_empty()).then(|| names.join(", "))
    }

    /// `6379/tcp on 0.0.0.0, ::` or `6379/tcp on mail.example.org`.
    fn socket_label(&self) -> String {
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
    fn describe(&self) -> String {
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

/// Judges the inputs against a policy.
pub fn evaluate(policy: &Policy, inputs: &Inputs, ctx: &Context<'_>) -> Report {
    let subjects = subjects(inputs, ctx);
    let mut ev = Evaluator {
        policy,
        ctx,
        findings: Vec::new(),
    };
    for s in &subjects {
        // An unnamed UDP socket on an ephemeral port is a client's (a resolver, DHCP,
        // NTP), given its port by the kernel: not a service to judge.
        let client = s.listening
            && s.protocol == Proto::Udp
            && s.service.is_none()
            && ctx.ephemeral.contains(s.port);
        if client {
            ev.hygiene(s, inputs);
            continue;
        }
        if policy.baseline {
            ev.baseline(s);
        } else {
            ev.policy(s, inputs);
        }
        ev.hygiene(s, inputs);
    }
    if !policy.baseline {
        ev.required(&subjects, inputs);
    }
    let Evaluator { mut findings, .. } = ev;

    // Exceptions.
    let mut suppressed = Vec::new();
    findings.retain_mut(|f| {
        for e in &policy.exceptions {
            let matches = e.service.as_ref().is_none_or(
                |s| matches!((f.protocol, f.port), (Some(p), Some(n)) if s.covers(p, n)),
            ) && e.rule.is_none_or(|r| r == f.rule)
                && e.process
                    .as_ref()
                    .is_none_or(|name| f.evidence.iter().any(|ev| &ev.name == name));
            if !matches {
                continue;
            }
            match e.expires {
                Some(d) if d < ctx.today => {
                    f.message.push_str(&format!(
                        " The exception on line {} expired on {d}.",
                        e.line
                    ));
                }
                _ => {
                    suppressed.push(Suppressed {
                        rule: f.rule,
                        protocol: f.protocol,
                        port: f.port,
                        reason: e.reason.clone(),
                    });
                    return false;
                }
            }
        }
        true
    });
    for e in &policy.exceptions {
        if let Some(d) = e.expires.filter(|d| *d < ctx.today) {
            let what = e
                .service
                .as_ref()
                .map(|s| s.label.clone())
                .or(e.rule.map(|r| r.id().to_string()))
                .or(e.process.clone())
                .unwrap_or_default();
            findings.push(Finding {
                severity: Severity::Low,
                rule: Rule::ExceptionExpired,
                protocol: None,
                port: None,
                address: None,
                service: e.service.as_ref().map(|s| s.label.clone()),
                process: e.process.clone(),
                reachable: None,
                product: None,
                message: format!(
                    "The exception for {what} (line {}, \"{}\") expired on {d}.",
                    e.line, e.reason
                ),
                remediation: format!(
                    "Fix what it covers and delete the [[exception]] on line {}, or give it a new `expires` date with a reason that still holds.",
                    e.line
                ),
                evidence: Vec::new(),
            });
        }
    }

    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.port.cmp(&b.port))
            .then(a.protocol.cmp(&b.protocol))
            .then(a.rule.cmp(&b.rule))
            .then(a.address.cmp(&b.address))
    });

    let mut severities = Counts::default();
    for f in &findings {
        severities.add(f.severity);
    }
    let listeners = inputs.listeners.as_ref().map(Vec::len);
    let exposed = inputs.listeners.as_ref().map(|l| {
        l.iter()
            .filter(|l| l.exposure != Exposure::Loopback)
            .count()
    });
    let reachable = inputs.scan.as_ref().filter(|s| !s.from_itself).map(|s| {
        s.results
            .iter()
            .filter(|r| r.state == PortState::Open)
            .count()
    });
    let arg = ctx
        .policy_arg
        .clone()
        .unwrap_or_else(|| "--policy FILE".into());
    let serious = severities.critical + severities.high + severities.medium > 0;
    let next_step = if policy.baseline {
        "Write a policy for this host: `portolan policy init > policy.toml`, trim it to what the host must serve, then run `portolan audit --policy policy.toml`.".to_string()
    } else if serious {
        format!(
            "Fix the findings above (each names its remediation) or record an [[exception]] with a reason; then enforce the policy: `portolan firewall {arg} --apply`."
        )
    } else {
        format!(
            "Enforce the policy: `portolan firewall {arg} --apply` (a dry run until confirmed), then check it from outside with `portolan audit {arg} --scan HOST`."
        )
    };
    Report {
        summary: Summary {
            policy: policy.name.clone(),
            listeners,
            exposed,
            reachable,
            findings: findings.len(),
            severities,
            suppressed: suppressed.len(),
            next_step,
        },
        findings,
        suppressed,
    }
}

fn subjects<'a>(inputs: &'a Inputs, ctx: &Context<'_>) -> Vec<Subject<'a>> {
    let mut out: Vec<Subject<'a>> = Vec::new();
    let mut index: HashMap<(Option<&'a str>, Proto, u16), usize> = HashMap::new();
    for l in inputs.listeners.iter().flatten() {
        let key = (l.netns.as_deref(), l.protocol, l.port);
        let i = *index.entry(key).or_insert_with(|| {
            out.push(Subject {
                protocol: l.protocol,
                port: l.port,
                addresses: Vec::new(),
                exposure: Exposure::Loopback,
                processes: Vec::new(),
                service: None,
                netns: l.netns.as_deref(),
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
        s.exposure = s.exposure.max(l.exposure);
        for p in &l.processes {
            if !s.processes.iter().any(|q| q.pid == p.pid) {
                s.processes.push(p);
            }
        }
        if s.service.is_none() {
            s.service.clone_from(&l.service);
        }
    }
    if let Some(scan) = &inputs.scan {
        let combine = scan.local && inputs.listeners.is_some();
        let mut results: HashMap<(Proto, u16), &'a crate::input::Reachable> = HashMap::new();
        for r in &scan.results {
            results.insert((r.protocol, r.port), r);
        }
        if combine {
            for s in out.iter_mut().filter(|s| s.netns.is_none() && s.exposed()) {
                if !scan.covers(s.protocol, s.port) {
                    continue;
                }
                match results.get(&(s.protocol, s.port)) {
                    Some(r) if r.state == PortState::Open => {
                        s.detected = r.detected.as_ref();
                        if !scan.from_itself {
                            s.reachable = Some(true);
                        }
                    }
                    Some(r) if r.state == PortState::OpenFiltered => {}
                    _ if scan.from_itself => {}
                    _ => s.reachable = Some(false),
                }
            }
        }
        for r in scan.results.iter().filter(|r| r.state == PortState::Open) {
            let seen = combine && index.contains_key(&(None, r.protocol, r.port));
            if seen || (combine && scan.from_itself) {
                continue;
            }
            out.push(Subject {
                protocol: r.protocol,
                port: r.port,
                addresses: Vec::new(),
                exposure: Exposure::All,
                processes: Vec::new(),
                service: None,
                netns: None,
                reachable: Some(true),
                detected: r.detected.as_ref(),
                listening: false,
                host: Some(r.host.as_str()),
            });
        }
    }
    // The name to show: what detection heard (as the audit names it), else the audit's
    // own name for the port, else the inventory's, else the registry's.
    for s in &mut out {
        let known = knowledge::by_port(s.port, s.protocol).map(|k| k.name.to_string());
        let heard = s.detected.and_then(|d| {
            let p = d.protocol.as_deref()?;
            let name = knowledge::by_name(p).map_or(p, |k| k.name);
            // Detection names the protocol inside TLS (http on 443): say so.
            Some(match (d.tls, &known) {
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
    out.sort_by(|a, b| (a.protocol, a.port, a.netns).cmp(&(b.protocol, b.port, b.netns)));
    out
}

struct Evaluator<'p, 'c> {
    policy: &'p Policy,
    ctx: &'p Context<'c>,
    findings: Vec<Finding>,
}

/// The audit's knowledge of a subject: by what detection saw it speak, else by port.
fn known(s: &Subject<'_>) -> Option<&'static Known> {
    s.detected
        .and_then(|d| d.protocol.as_deref())
        .and_then(knowledge::by_name)
        .or_else(|| knowledge::by_port(s.port, s.protocol))
}

/// Raises or lowers a severity by what the scan saw.
fn by_reach(sev: Severity, s: &Subject<'_>) -> Severity {
    match s.reachable {
        Some(true) => sev.raise(),
        Some(false) => sev.lower(),
        None => sev,
    }
}

/// Where an exposed subject listens, in words.
fn bound_to(s: &Subject<'_>) -> &'static str {
    if s.exposure == Exposure::All {
        "all interfaces"
    } else {
        "a network address"
    }
}

fn reach_note(s: &Subject<'_>) -> &'static str {
    match (s.reachable, s.listening) {
        (Some(true), true) => " It is reachable from the scan: nothing holds it back.",
        (Some(true), false) => "",
        (Some(false), _) => " It is listening but not reachable from the scan: the firewall holds.",
        (None, _) => "",
    }
}

fn secure_by_detection(s: &Subject<'_>, k: Option<&Known>) -> bool {
    s.detected
        .is_some_and(|d| d.tls || (d.starttls && k.is_none_or(|k| k.starttls)))
}

impl Evaluator<'_, '_> {
    fn push(
        &mut self,
        s: &Subject<'_>,
        rule: Rule,
        severity: Severity,
        message: String,
        remediation: String,
    ) {
        let evidence = s
            .processes
            .iter()
            .map(|p| Evidence {
                pid: p.pid,
                name: p.name.clone(),
                exe: p.exe.as_ref().map(|e| e.display().to_string()),
                command: p.command.clone(),
                user: p.user.clone(),
                unit: p.unit.clone(),
                package: p.exe.as_deref().and_then(|e| self.ctx.host.package_of(e)),
            })
            .collect();
        self.findings.push(Finding {
            severity,
            rule,
            protocol: Some(s.protocol),
            port: Some(s.port),
            address: s.address_label(),
            service: s.service.clone(),
            process: s.process_label(),
            reachable: s.reachable,
            product: s.detected.and_then(|d| d.product.clone()),
            message,
            remediation,
            evidence,
        });
    }

    /// The built-in checks of `portolan audit` with no policy.
    fn baseline(&mut self, s: &Subject<'_>) {
        if !s.exposed() {
            return;
        }
        let k = known(s);
        let detected_cleartext = s
            .detected
            .is_some_and(|d| d.cleartext && !d.tls && !d.starttls);
        match k {
            Some(k) if k.is_insecure() && !secure_by_detection(s, Some(k)) => {
                let base = match k.kind {
                    Kind::RemoteShell => Severity::Critical,
                    Kind::Cleartext if k.starttls => Severity::Medium,
                    _ => Severity::High,
                };
                let what = match k.kind {
                    Kind::RemoteShell => {
                        "is remote access without encryption: passwords and keystrokes cross the network in clear"
                    }
                    Kind::Obsolete => {
                        "is an obsolete inetd service, useful to nobody but attackers (reflection and amplification)"
                    }
                    _ if k.starttls => {
                        "speaks cleartext unless every client upgrades with STARTTLS"
                    }
                    _ => {
                        "is a cleartext protocol: what it carries, passwords included, can be read on the wire"
                    }
                };
                let msg = format!(
                    "{} {what}, and it is open to the network.{}",
                    s.describe(),
                    reach_note(s)
                );
                let mut fix = self.stop(s);
                if let Some(i) = k.instead.filter(|i| !i.is_empty()) {
                    fix = format!("Use {i} instead. {fix}");
                }
                fix.push_str(&self.firewall_fix(s));
                self.push(s, Rule::CleartextExposed, by_reach(base, s), msg, fix);
            }
            Some(k) if k.kind == Kind::LocalOnly => {
                let base = if k.name == "docker" {
                    Severity::Critical
                } else {
                    Severity::High
                };
                let msg = format!(
                    "{} normally stays on the host, but it listens on {}.{}",
                    s.describe(),
                    bound_to(s),
                    reach_note(s)
                );
                let mut fix = if s.processes.is_empty() {
                    format!("Find its owner: {}. ", ss_command(s))
                } else {
                    String::new()
                };
                fix += &match k.bind_hint {
                    Some(h) => format!(
                        "Bind it to loopback: {h}, then restart it{}.",
                        self.restart_hint(s)
                    ),
                    None => "Bind it to 127.0.0.1 and ::1 only.".into(),
                };
                fix.push_str(" If other hosts must reach it, allow only them at the firewall (a policy with `from = [...]`, then `portolan firewall`).");
                self.push(s, Rule::LocalServiceExposed, by_reach(base, s), msg, fix);
            }
            Some(_) => {}
            None if detected_cleartext => {
                let msg = format!(
                    "{} speaks a cleartext protocol, and it is open to the network.{}",
                    s.describe(),
                    reach_note(s)
                );
                let fix = self.stop(s) + &self.firewall_fix(s);
                self.push(
                    s,
                    Rule::CleartextExposed,
                    by_reach(Severity::High, s),
                    msg,
                    fix,
                );
            }
            None if s.service.is_none() => {
                let msg = format!(
                    "{} listens on {} on a port no registry knows: find out what it is.{}",
                    s.describe(),
                    bound_to(s),
                    reach_note(s)
                );
                let mut fix = String::new();
                fix.push_str("If it is needed only on this host, bind it to 127.0.0.1. ");
                fix.push_str(&self.stop(s));
                fix.push_str(&self.firewall_fix(s));
                self.push(
                    s,
                    Rule::UnknownServiceExposed,
                    by_reach(Severity::Medium, s),
                    msg,
                    fix,
                );
            }
            None => {}
        }
    }

    /// Judgement against a policy.
    fn policy(&mut self, s: &Subject<'_>, inputs: &Inputs) {
        let policy = self.policy;
        let k = known(s);
        let allowed: Vec<_> = policy.allows(s.protocol, s.port).collect();

        // Forbidden cleartext, by port or by what detection heard.
        let heard = s.detected.and_then(|d| d.protocol.as_deref());
        let forbid = policy.forbid_cleartext.iter().find(|f| {
            f.spec.covers(s.protocol, s.port)
                || heard.is_some_and(|h| {
                    knowledge::by_name(h).is_some_and(|hk| f.spec.label == hk.name)
                })
        });
        if let Some(f) = forbid.filter(|_| s.exposed()) {
            let secure = secure_by_detection(s, k);
            if f.starttls && !allowed.is_empty() && s.detected.is_none() {
                let msg = format!(
                    "{} is allowed on condition that clients upgrade to TLS, and the policy forbids it in cleartext; without detection the audit cannot see whether STARTTLS is offered.",
                    s.describe()
                );
                let fix = format!(
                    "Check that STARTTLS is offered (`openssl s_client -starttls {} -connect HOST:{}`), and require TLS before authentication in the server's configuration.",
                    starttls_word(k),
                    s.port
                );
                self.push(s, Rule::CleartextForbidden, Severity::Info, msg, fix);
                return;
            }
            if !secure {
                let base = if k.is_some_and(|k| k.kind == Kind::RemoteShell) {
                    Severity::Critical
                } else {
                    Severity::High
                };
                let msg = format!(
                    "{} is {} in cleartext, which the policy forbids.{}",
                    s.describe(),
                    f.spec.label,
                    reach_note(s)
                );
                let mut fix = String::new();
                if let Some(i) = k.and_then(|k| k.instead).filter(|i| !i.is_empty()) {
                    fix.push_str(&format!("Use {i} instead. "));
                }
                if f.starttls && !allowed.is_empty() {
                    fix.push_str("Offer STARTTLS and refuse authentication before it. ");
                } else {
                    fix.push_str(&self.stop(s));
                    fix.push_str(&self.firewall_fix(s));
                }
                self.push(s, Rule::CleartextForbidden, by_reach(base, s), msg, fix);
                return;
            }
        }

        if allowed.is_empty() && !s.exposed() && policy.allow_loopback {
            return;
        }
        if allowed.is_empty() {
            let why = match k.map(|k| k.kind) {
                Some(Kind::LocalOnly) => " It normally stays on the host.",
                Some(Kind::RemoteShell) => " It is remote access without encryption.",
                _ if s.service.is_none() => " No registry knows this port.",
                _ => "",
            };
            let (sev, msg) = if !s.exposed() {
                (
                    Severity::Low,
                    format!(
                        "{} is not in the policy; it listens on loopback only, so only this host can reach it.{why}",
                        s.describe()
                    ),
                )
            } else {
                (
                    by_reach(Severity::High, s),
                    format!(
                        "{} is not in the policy.{why}{}",
                        s.describe(),
                        reach_note(s)
                    ),
                )
            };
            let mut fix = self.stop(s);
            if s.exposed() {
                fix.push_str(&format!(
                    " Until then, drop it at the firewall: `portolan firewall {}` allows only the policy's services.",
                    self.ctx.policy_arg.as_deref().unwrap_or("--policy FILE")
                ));
            }
            fix.push_str(" If the host needs it, add it to the policy with an [[allow]] entry.");
            self.push(s, Rule::NotAllowed, sev, msg, fix);
            return;
        }

        if s.listening {
            let outside: Vec<String> = s
                .addresses
                .iter()
                .filter(|a| !allowed.iter().any(|al| al.bind.permits(**a)))
                .map(ToString::to_string)
                .collect();
            if !outside.is_empty() {
                let binds: Vec<String> = allowed.iter().map(|a| a.bind.to_string()).collect();
                let msg = format!(
                    "{} is allowed to bind {} only, but listens on {}.{}",
                    s.describe(),
                    binds.join(" or "),
                    outside.join(", "),
                    reach_note(s)
                );
                let hint = k
                    .and_then(|k| k.bind_hint)
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                let fix = format!(
                    "Change its listen address to {}{hint} and restart it{}.",
                    binds.join(" or "),
                    self.restart_hint(s)
                );
                let sev = if s.exposed() {
                    by_reach(Severity::High, s)
                } else {
                    Severity::Low
                };
                self.push(s, Rule::BindMismatch, sev, msg, fix);
            }
        }

        if let (Some(true), Some(src)) =
            (s.reachable, inputs.scan.as_ref().and_then(|sc| sc.source))
        {
            let let_in = allowed
                .iter()
                .any(|a| a.from_anywhere() || a.from.iter().any(|n| n.contains(src)));
            if !let_in {
                let from: Vec<String> = allowed
                    .iter()
                    .flat_map(|a| a.from.iter().map(ToString::to_string))
                    .collect();
                let msg = format!(
                    "{} was reached from {src}, but the policy lets in only {}.",
                    s.describe(),
                    from.join(", ")
                );
                let fix = format!(
                    "Enforce the sources at the firewall: `portolan firewall {}` allows {}/{} only from {}.",
                    self.ctx.policy_arg.as_deref().unwrap_or("--policy FILE"),
                    s.port,
                    s.protocol,
                    from.join(", ")
                );
                self.push(s, Rule::SourceNotEnforced, Severity::High, msg, fix);
            }
        }
    }

    /// Checks that apply under any policy: writable executables, ephemeral ports.
    fn hygiene(&mut self, s: &Subject<'_>, inputs: &Inputs) {
        if !s.listening {
            if inputs.scan.as_ref().is_some_and(|sc| sc.local) && inputs.listeners.is_some() {
                let msg = format!(
                    "{} is reachable from outside but nothing on this host listens on it: it is forwarded (DNAT, a container, a VM) or served from another network namespace.",
                    s.describe()
                );
                let fix = "Find the forward: `nft list ruleset | grep -n dport` (or `iptables -t nat -S`), and the containers' published ports (`docker ps`).".to_string();
                self.push(
                    s,
                    Rule::ReachableWithoutListener,
                    Severity::Medium,
                    msg,
                    fix,
                );
            }
            return;
        }
        for p in &s.processes {
            let Some(exe) = p.exe.as_deref() else {
                continue;
            };
            let Some(why) = exe_risk(exe).or_else(|| self.ctx.host.exe_risk(exe)) else {
                continue;
            };
            let msg = format!(
                "{} is held by {} (pid {}) running from {}: {why}. Whoever can write there can replace what answers on this port.",
                s.socket_label(),
                p.name,
                p.pid,
                exe.display()
            );
            let fix = format!(
                "Find out what started it (`systemctl status {}`, `ps -o ppid=,lstart=,args= -p {}`). If it is not yours, treat the host as compromised. If it is, install the program under a root-owned path such as /usr/local/bin and run it from there.",
                p.pid, p.pid
            );
            let sev = if s.exposed() {
                Severity::High
            } else {
                Severity::Medium
            };
            self.push(s, Rule::WritableExecutable, sev, msg, fix);
        }
        let eph = self.ctx.ephemeral;
        let fixed_port = s.protocol == Proto::Tcp || s.service.is_some();
        if eph.contains(s.port) && fixed_port {
            let msg = format!(
                "{} listens inside the kernel's ephemeral port range {eph} (net.ipv4.ip_local_port_range), which outgoing connections draw their source ports from: after a restart, an outgoing connection can hold the port first and the service fails to start. The range overlaps IANA's registered ports (1024-49151), so a registered number gives no protection.",
                s.describe()
            );
            let fix = format!(
                "Move the service below {} or reserve its port: add it to the one comma-separated list in /etc/sysctl.d/90-reserved-ports.conf, keeping the ports already there (`net.ipv4.ip_local_reserved_ports = {}` when it is the only one), then `sysctl --system`.",
                eph.first, s.port
            );
            let sev = if s.protocol == Proto::Tcp {
                Severity::Low
            } else {
                Severity::Info
            };
            self.push(s, Rule::EphemeralPort, sev, msg, fix);
        }
    }

    fn required(&mut self, subjects: &[Subject<'_>], inputs: &Inputs) {
        for spec in &self.policy.require {
            let listening: Vec<&Subject<'_>> = subjects
                .iter()
                .filter(|s| s.listening && s.netns.is_none() && spec.covers(s.protocol, s.port))
                .collect();
            let reachable = subjects
                .iter()
                .any(|s| s.reachable == Some(true) && spec.covers(s.protocol, s.port));
            let (proto, port) = spec.ports[0];
            let mut f = Finding {
                severity: Severity::High,
                rule: Rule::RequiredMissing,
                protocol: Some(proto),
                port: Some(port.first),
                address: None,
                service: Some(spec.label.clone()),
                process: None,
                reachable: None,
                product: None,
                message: String::new(),
                remediation: String::new(),
                evidence: Vec::new(),
            };
            if inputs.listeners.is_some() {
                if listening.is_empty() {
                    f.message = format!(
                        "{} ({}) is required by the policy but nothing listens on it.",
                        spec.label,
                        spec.ports_label()
                    );
                    f.remediation = format!(
                        "Start the service that provides {} and enable it at boot (`systemctl enable --now UNIT`); check its logs (`journalctl -u UNIT`) if it fails to bind.",
                        spec.label
                    );
                    self.findings.push(f);
                } else if !reachable
                    && listening.iter().any(|s| s.exposed())
                    && listening
                        .iter()
                        .filter(|s| s.exposed())
                        .all(|s| s.reachable == Some(false))
                {
                    f.rule = Rule::RequiredUnreachable;
                    f.severity = Severity::Medium;
                    f.address = listening[0].address_label();
                    f.process = listening[0].process_label();
                    f.reachable = Some(false);
                    f.message = format!(
                        "{} ({}) is required and listens, but the scan could not reach it: a firewall drops it.",
                        spec.label,
                        spec.ports_label()
                    );
                    f.remediation = format!(
                        "Allow it at the firewall: `portolan firewall {}` lets it in from the policy's sources.",
                        self.ctx.policy_arg.as_deref().unwrap_or("--policy FILE")
                    );
                    self.findings.push(f);
                }
            } else if let Some(scan) = &inputs.scan {
                let scanned = spec.ports.iter().any(|(p, r)| scan.covers(*p, r.first));
                if scanned && !reachable {
                    f.address = Some(scan.target.clone());
                    f.reachable = Some(false);
                    f.message = format!(
                        "{} ({}) is required by the policy but is not reachable on {}.",
                        spec.label,
                        spec.ports_label(),
                        scan.target
                    );
                    f.remediation = "Check that the service runs on the target and that its firewall lets the policy's sources in.".into();
                    self.findings.push(f);
                }
            }
        }
    }

    /// How to stop the service for good: the systemd unit (or its .socket), the process,
    /// the package.
    fn stop(&self, s: &Subject<'_>) -> String {
        if !s.listening {
            return format!(
                "Stop the service on {} or block {}/{} at its firewall.",
                s.host.unwrap_or("the target"),
                s.port,
                s.protocol
            );
        }
        let mut units: Vec<String> = Vec::new();
        let mut pids: Vec<u32> = Vec::new();
        for p in &s.processes {
            match &p.unit {
                Some(u) => {
                    let u = if p.socket_activated {
                        socket_unit(u)
                    } else {
                        u.clone()
                    };
                    if !units.contains(&u) {
                        units.push(u);
                    }
                }
                None => pids.push(p.pid),
            }
        }
        let mut out = String::new();
        if !units.is_empty() {
            let cmds: Vec<String> = units
                .iter()
                .map(|u| format!("`systemctl disable --now {u}`"))
                .collect();
            out.push_str(&format!(
                "Stop it and keep it from starting again: {}.",
                cmds.join(" and ")
            ));
        }
        if !pids.is_empty() {
            let list: Vec<String> = pids.iter().map(u32::to_string).collect();
            if !out.is_empty() {
                out.push(' ');
            }
            let what: Vec<String> = s
                .processes
                .iter()
                .filter(|p| p.unit.is_none())
                .filter_map(|p| p.command.as_deref())
                .map(|c| format!("`{}`", shorten(c, 80)))
                .collect();
            let runs = if what.is_empty() {
                String::new()
            } else {
                format!(", which runs {},", what.join(" and "))
            };
            out.push_str(&format!(
                "Stop pid {}{runs} (`kill {}`) and remove it from whatever starts it (no systemd unit owns it: look at cron, rc.local, container restart policies).",
                list.join(", "),
                list.join(" ")
            ));
        }
        if s.processes
            .iter()
            .any(|p| p.name == "inetd" || p.name == "xinetd")
        {
            out.push_str(&format!(
                " To stop only this service, delete its line (port {}) from /etc/inetd.conf, or set `disable = yes` in its /etc/xinetd.d/ file, and reload the daemon.",
                s.port
            ));
        }
        if s.processes.is_empty() {
            out.push_str(&format!(
                "Find its owner with {} and stop that service.",
                ss_command(s)
            ));
        }
        let mut pkgs: Vec<(String, String)> = Vec::new();
        for p in &s.processes {
            // The package of an interpreter is not the service: removing python3 would
            // not remove the script, and would break the system.
            if let Some(exe) = p.exe.as_deref().filter(|e| !is_interpreter(e)) {
                if let Some(pkg) = self.ctx.host.package_of(exe) {
                    if !pkgs.iter().any(|(q, _)| *q == pkg) {
                        pkgs.push((pkg, exe.display().to_string()));
                    }
                }
            }
        }
        for (pkg, exe) in pkgs {
            out.push_str(&format!(
                " If nothing needs it, remove the package: `apt-get purge {pkg}` (it owns {exe})."
            ));
        }
        out
    }

    fn restart_hint(&self, s: &Subject<'_>) -> String {
        let units: Vec<&str> = s
            .processes
            .iter()
            .filter_map(|p| p.unit.as_deref())
            .collect();
        match units.first() {
            Some(u) => format!(" (`systemctl restart {u}`)"),
            None => String::new(),
        }
    }

    fn firewall_fix(&self, s: &Subject<'_>) -> String {
        if !s.listening || !s.exposed() {
            return String::new();
        }
        let proto = s.protocol;
        // `add table` and `add chain` are no-ops where they exist (Debian's default
        // ruleset), and create them where they do not; `insert` puts the drop ahead of
        // any accept already in the chain.
        format!(
            " If it must keep running, drop it at the firewall: `nft add table inet filter && nft add chain inet filter input '{{ type filter hook input priority filter; }}' && nft insert rule inet filter input {proto} dport {} drop` (or write a policy and let `portolan firewall` allow only what it names).",
            s.port
        )
    }
}

/// The protocol name `openssl s_client -starttls` takes.
fn starttls_word(k: Option<&Known>) -> &'static str {
    match k.map(|k| k.name) {
        Some("pop3") => "pop3",
        Some("ftp") => "ftp",
        Some("ldap") => "ldap",
        Some("smtp") | Some("submission") => "smtp",
        _ => "imap",
    }
}

/// True for language runtimes and shells, whose package is not the service they run.
fn is_interpreter(exe: &Path) -> bool {
    let name = exe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    matches!(
        stem,
        "python"
            | "perl"
            | "ruby"
            | "node"
            | "nodejs"
            | "java"
            | "php"
            | "php-fpm"
            | "bash"
            | "sh"
            | "dash"
            | "zsh"
            | "busybox"
            | "lua"
            | "luajit"
            | "deno"
            | "bun"
            | "dotnet"
            | "beam.smp"
            | "erl"
    )
}

/// At most `max` characters, with an ellipsis when cut.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// `ss -ltnp 'sport = :8080'`: the command that shows a socket's owner (as root).
fn ss_command(s: &Subject<'_>) -> String {
    let flag = match s.protocol {
        Proto::Udp => "-lunp",
        Proto::Sctp => "-lSnp",
        _ => "-ltnp",
    };
    format!("`ss {flag} 'sport = :{}'` (as root)", s.port)
}

/// The socket unit for a socket-activated service: `telnet@0-1.service` and
/// `telnet.service` come from `telnet.socket`.
fn socket_unit(unit: &str) -> String {
    if unit.ends_with(".socket") {
        return unit.to_string();
    }
    let base = unit.strip_suffix(".service").unwrap_or(unit);
    let base = base.split_once('@').map_or(base, |(b, _)| b);
    format!("{base}.socket")
}

/// Paths no service should run from: temporary, per-user runtime, or deleted.
pub fn exe_risk(exe: &Path) -> Option<String> {
    let s = exe.to_string_lossy();
    if s.ends_with(" (deleted)") {
        return Some("the executable was deleted after it started".into());
    }
    for dir in ["/tmp/", "/var/tmp/", "/dev/shm/", "/run/user/", "/run/shm/"] {
        if s.starts_with(dir) {
            return Some(format!(
                "{} is a temporary, world-writable directory",
                dir.trim_end_matches('/')
            ));
        }
    }
    if s.starts_with("/home/") || s.starts_with("/root/") {
        return Some("a home directory, writable by its user".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_units() {
        assert_eq!(
            socket_unit("telnet@0-10.0.0.1:23-10.0.0.2:5000.service"),
            "telnet.socket"
        );
        assert_eq!(socket_unit("cups.service"), "cups.socket");
        assert_eq!(socket_unit("cups.socket"), "cups.socket");
    }

    #[test]
    fn interpreters() {
        assert!(is_interpreter(Path::new("/usr/bin/python3.11")));
        assert!(is_interpreter(Path::new("/usr/bin/node")));
        assert!(is_interpreter(Path::new("/usr/lib/jvm/java-17/bin/java")));
        assert!(!is_interpreter(Path::new("/usr/sbin/sshd")));
        assert!(!is_interpreter(Path::new("/usr/sbin/postfix")));
        assert_eq!(shorten("abcdef", 4), "abc…");
    }

    #[test]
    fn exe_risks() {
        assert!(exe_risk(Path::new("/tmp/x/miner")).is_some());
        assert!(exe_risk(Path::new("/dev/shm/a")).is_some());
        assert!(exe_risk(Path::new("/usr/sbin/sshd (deleted)")).is_some());
        assert!(exe_risk(Path::new("/home/bob/bin/srv")).is_some());
        assert!(exe_risk(Path::new("/usr/sbin/sshd")).is_none());
        assert!(exe_risk(Path::new("/tmpfoo/x")).is_none());
    }
}
