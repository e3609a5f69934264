//! The checks: the baseline's, a policy's, the hygiene checks that apply under any
//! policy, and the remediations they write.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use portolan_model::{Evidence, Exposure, Finding, Reach, Remediation, Rule, Severity};
use portolan_registry::Proto;

use super::severity::{known, risk, severity};
use super::subject::{Owner, Subject};
use crate::input::{Context, Inputs};
use crate::knowledge::{self, Kind, Known};
use crate::policy::Policy;
use crate::script;

pub(super) struct Evaluator<'p, 'c> {
    policy: &'p Policy,
    ctx: &'p Context<'c>,
    /// What each owner serves that the policy allows, for remediations that stop it: the
    /// ports of each pid and of each systemd unit (a unit's stop stops all its processes).
    by_pid: HashMap<u32, Vec<(Proto, u16)>>,
    by_unit: HashMap<String, Vec<(Proto, u16)>>,
    pub findings: Vec<Finding>,
}

/// Where an exposed subject listens, in words.
fn bound_to(s: &Subject<'_>) -> &'static str {
    if s.exposure == Exposure::All {
        "all interfaces"
    } else {
        "a network address"
    }
}

/// What the outside view measured, as a sentence for a message: reachable (and where),
/// not reachable (probed on every address it serves: closed or filtered, as measured), or
/// not checked (and what was not probed). Nothing without a scan.
fn reach_note(s: &Subject<'_>) -> String {
    let detail = s.reach_detail.as_deref().unwrap_or_default();
    match (s.reach, s.listening) {
        (Some(Reach::Reachable), true) => {
            format!(" It is reachable from the scan ({detail}): nothing holds it back.")
        }
        (Some(Reach::Reachable), false) => String::new(),
        (Some(Reach::Unreachable), _) => format!(
            " It is listening but not reachable from the scan ({detail}): the firewall holds."
        ),
        (Some(Reach::NotChecked), _) => {
            format!(" Whether it is reachable was not checked ({detail}).")
        }
        (None, _) => String::new(),
    }
}

fn secure_by_detection(s: &Subject<'_>, k: Option<&Known>) -> bool {
    s.detected
        .is_some_and(|d| d.tls.is_some() || (d.starttls && k.is_none_or(|k| k.starttls)))
}

/// The namespace a finding names: the listener's, unless it is the host's.
fn netns_of(s: &Subject<'_>) -> Option<String> {
    (s.listening && s.netns_label != "host").then(|| s.netns_label.to_string())
}

impl<'p, 'c> Evaluator<'p, 'c> {
    pub fn new(policy: &'p Policy, ctx: &'p Context<'c>, subjects: &[Subject<'_>]) -> Self {
        let mut by_pid: HashMap<u32, Vec<(Proto, u16)>> = HashMap::new();
        let mut by_unit: HashMap<String, Vec<(Proto, u16)>> = HashMap::new();
        let allowed = |s: &&Subject<'_>| {
            !policy.baseline && s.listening && policy.allows(s.protocol, s.port).next().is_some()
        };
        for s in subjects.iter().filter(allowed) {
            let key = (s.protocol, s.port);
            // systemd holds socket-activated sockets for others: stopping one socket unit
            // stops nothing else, so systemd serves nothing here.
            for p in s
                .processes
                .iter()
                .filter(|p| !p.socket_activated && !p.is_systemd())
            {
                by_pid.entry(p.pid).or_default().push(key);
                if let Some(u) = p.unit {
                    by_unit.entry(u.to_string()).or_default().push(key);
                }
            }
        }
        for ports in by_pid.values_mut().chain(by_unit.values_mut()) {
            ports.sort_unstable();
            ports.dedup();
        }
        Evaluator {
            policy,
            ctx,
            by_pid,
            by_unit,
            findings: Vec::new(),
        }
    }

    /// When stopping the subject's owners would stop ports the policy allows: the
    /// sentence that says so (`pid 123 (nginx) also serves 443/tcp, which the policy
    /// allows: stopping it stops that too.`). `None` under the baseline, or when nothing
    /// allowed would go down with it.
    fn also_serves(&self, s: &Subject<'_>) -> Option<String> {
        if self.policy.baseline || !s.listening {
            return None;
        }
        let mut parts: Vec<String> = Vec::new();
        for p in s
            .processes
            .iter()
            .filter(|p| !p.socket_activated && !p.is_systemd())
        {
            let unit = p.unit.and_then(|u| self.by_unit.get(u));
            let mut ports: Vec<(Proto, u16)> = self
                .by_pid
                .get(&p.pid)
                .into_iter()
                .chain(unit)
                .flatten()
                .copied()
                .filter(|&k| k != (s.protocol, s.port))
                .collect();
            ports.sort_unstable();
            ports.dedup();
            if ports.is_empty() {
                continue;
            }
            const SHOWN: usize = 5;
            let mut list: Vec<String> = ports
                .iter()
                .take(SHOWN)
                .map(|(pr, po)| format!("{po}/{pr}"))
                .collect();
            if ports.len() > SHOWN {
                list.push(format!("{} more", ports.len() - SHOWN));
            }
            let who = format!("pid {} ({})", p.pid, p.name);
            let that = if list.len() == 1 { "that" } else { "those" };
            parts.push(format!(
                "{who} also serves {}, which the policy allows: stopping it stops {that} too.",
                and_list(&list)
            ));
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    /// The remediation for a service the policy does not want on this port, when its
    /// owner also serves what the policy allows: stop listening on this port (the bind
    /// fix), or drop it at the firewall, and stop the owner only last.
    fn keep_the_rest(&self, s: &Subject<'_>, shared: &str) -> String {
        let arg = self.ctx.policy_arg.as_deref().unwrap_or("--policy FILE");
        let hint = known(s)
            .and_then(|k| k.bind_hint)
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        let mut out = format!(
            "{shared} So first make it stop listening on {}/{}: remove that listen directive (or port) from its configuration, or bind it to the addresses the allowed services need{hint}, then restart it{}.",
            s.port,
            s.protocol,
            self.restart_hint(s)
        );
        if s.exposed() {
            out.push_str(&format!(
                " Or drop {}/{} at the firewall: `portolan firewall {arg}` allows only the policy's services.",
                s.port, s.protocol
            ));
        }
        // Not the package: removing it removes the allowed services too.
        out.push_str(" Last resort, once nothing else needs it: ");
        out.push_str(&self.stop_with(s, false));
        out
    }

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
                process: p.evidence_process(),
                package: p.exe.and_then(|e| self.ctx.host.package_of(e)),
            })
            .collect();
        let mut f = Finding::new(rule, message, Remediation::new(remediation));
        f.severity = severity;
        f.protocol = Some(s.protocol);
        f.port = Some(s.port);
        f.address = s.address_label();
        f.addresses = s.address_list();
        f.netns = netns_of(s);
        f.service.clone_from(&s.service);
        f.process = s.process_label();
        f.set_reach(s.reach);
        f.product = s.detected.and_then(|d| d.product.clone());
        f.evidence = evidence;
        self.findings.push(f.seal());
    }

    /// The built-in checks of `portolan audit` with no policy.
    pub fn baseline(&mut self, s: &Subject<'_>) {
        if !s.exposed() {
            return;
        }
        let k = known(s);
        let detected_cleartext = s
            .detected
            .is_some_and(|d| d.cleartext && d.tls.is_none() && !d.starttls);
        match k {
            Some(k) if k.is_insecure() && !secure_by_detection(s, Some(k)) => {
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
                self.push(s, Rule::CleartextExposed, severity(s, risk(s)), msg, fix);
            }
            Some(k) if k.kind == Kind::LocalOnly => {
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
                self.push(s, Rule::LocalServiceExposed, severity(s, risk(s)), msg, fix);
            }
            Some(_) => {}
            None if detected_cleartext => {
                let msg = format!(
                    "{} speaks a cleartext protocol, and it is open to the network.{}",
                    s.describe(),
                    reach_note(s)
                );
                let fix = self.stop(s) + &self.firewall_fix(s);
                self.push(s, Rule::CleartextExposed, severity(s, risk(s)), msg, fix);
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
                    severity(s, risk(s)),
                    msg,
                    fix,
                );
            }
            None => {}
        }
    }

    /// An exposed listener whose owner the inventory could not see: an unexplained
    /// service on the network is what an auditor wants to hear about.
    pub fn unknown_owner(&mut self, s: &Subject<'_>) {
        if !s.listening || !s.exposed() || !s.processes.is_empty() {
            return;
        }
        let why = if s.owner_unknown {
            "its owner is unknown: some processes' descriptors (/proc/PID/fd) could not be read, so one of them may hold it (run the audit as root to see it)"
        } else {
            "no process on this host holds it: the kernel holds it (an NFS or RPC service in the kernel, a socket of a container or VM bridge) or its owner lives in another PID namespace (a container sharing this network namespace)"
        };
        let msg = format!(
            "{} listens on {}, and {why}.{}",
            s.describe(),
            bound_to(s),
            reach_note(s)
        );
        let fix = format!(
            "Find its owner: {}, `lsns -t pid` and `nsenter` into the containers that share this network namespace, or `rpcinfo -p` for kernel services. If nothing should listen there, stop what does; until then, drop it at the firewall.{}",
            ss_command(s),
            self.firewall_fix(s)
        );
        self.push(s, Rule::UnknownOwnerExposed, severity(s, risk(s)), msg, fix);
    }

    /// Judgement against a policy.
    pub fn policy(&mut self, s: &Subject<'_>, inputs: &Inputs) {
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
                } else if let Some(shared) = self.also_serves(s) {
                    fix.push_str(&self.keep_the_rest(s, &shared));
                } else {
                    fix.push_str(&self.stop(s));
                    fix.push_str(&self.firewall_fix(s));
                }
                self.push(s, Rule::CleartextForbidden, severity(s, risk(s)), msg, fix);
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
            let msg = if !s.exposed() {
                format!(
                    "{} is not in the policy; it listens on loopback only, so only this host can reach it.{why}",
                    s.describe()
                )
            } else {
                format!(
                    "{} is not in the policy.{why}{}",
                    s.describe(),
                    reach_note(s)
                )
            };
            let mut fix = match self.also_serves(s) {
                Some(shared) => self.keep_the_rest(s, &shared),
                None => {
                    let mut fix = self.stop(s);
                    if s.exposed() {
                        fix.push_str(&format!(
                            " Until then, drop it at the firewall: `portolan firewall {}` allows only the policy's services.",
                            self.ctx.policy_arg.as_deref().unwrap_or("--policy FILE")
                        ));
                    }
                    fix
                }
            };
            fix.push_str(" If the host needs it, add it to the policy with an [[allow]] entry.");
            self.push(s, Rule::NotAllowed, severity(s, risk(s)), msg, fix);
            return;
        }

        if s.listening {
            let outside: Vec<String> = s
                .addresses
                .iter()
                .filter(|a| {
                    s.sockets
                        .iter()
                        .filter(|(b, _)| b == *a)
                        .any(|(b, i)| !allowed.iter().any(|al| al.bind.permits_socket(*b, *i)))
                })
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
                self.push(s, Rule::BindMismatch, severity(s, risk(s)), msg, fix);
            }
        }
        self.reached_beyond_bind(s, &allowed);

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
                self.push(s, Rule::SourceNotEnforced, severity(s, risk(s)), msg, fix);
            }
        }
    }

    /// A service the policy binds to loopback (or to some addresses) that the scan reached
    /// from outside at an address the bind does not permit: a bind violation seen from
    /// outside, whatever its socket says (a remote scan has no socket to look at; a
    /// loopback socket can be forwarded to). A socket already reported for its own
    /// addresses is not reported twice.
    fn reached_beyond_bind(&mut self, s: &Subject<'_>, allowed: &[&crate::policy::Allow]) {
        if s.reach != Some(Reach::Reachable) || allowed.is_empty() {
            return;
        }
        let permitted = |a: IpAddr| allowed.iter().any(|al| al.bind.permits(a));
        if s.listening && s.addresses.iter().any(|a| !permitted(*a)) {
            return;
        }
        let beyond: Vec<String> = s
            .reached
            .iter()
            .filter(|a| !permitted(**a))
            .map(ToString::to_string)
            .collect();
        if beyond.is_empty() {
            return;
        }
        let binds: Vec<String> = allowed.iter().map(|a| a.bind.to_string()).collect();
        let msg = format!(
            "{} is allowed to bind {} only, but it was reached from outside at {}.",
            s.describe(),
            binds.join(" or "),
            beyond.join(", ")
        );
        let hint = known(s)
            .and_then(|k| k.bind_hint)
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        let fix = if s.listening {
            format!(
                "Find what forwards it (`nft list ruleset | grep -w {}`, `sysctl net.ipv4.conf.all.route_localnet`) and remove it; keep the service on {}.",
                s.port,
                binds.join(" or ")
            )
        } else {
            format!(
                "On {}, change its listen address to {}{hint} and restart it, or drop {}/{} at its firewall.",
                s.host
                    .map_or_else(|| "the target".to_string(), |h| h.to_string()),
                binds.join(" or "),
                s.port,
                s.protocol
            )
        };
        self.push(s, Rule::BindMismatch, severity(s, risk(s)), msg, fix);
    }

    /// Checks that apply under any policy: writable executables, ephemeral ports.
    pub fn hygiene(&mut self, s: &Subject<'_>, inputs: &Inputs) {
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
            let found = p
                .exe
                .and_then(|exe| {
                    let why = self.ctx.host.exe_risk(exe).or_else(|| exe_risk(exe))?;
                    Some(Writable {
                        what: format!("running from {}: {why}", exe.display()),
                        fix: "install the program under a root-owned path such as /usr/local/bin and run it from there".into(),
                    })
                })
                .or_else(|| self.interpreted(p));
            let Some(w) = found else {
                continue;
            };
            let msg = format!(
                "{} is held by {} (pid {}) {}. Whoever can write there can replace what answers on this port.",
                s.socket_label(),
                p.name,
                p.pid,
                w.what
            );
            let fix = format!(
                "Find out what started it (`systemctl status {}`, `ps -o ppid=,lstart=,args= -p {}`). If it is not yours, treat the host as compromised. If it is, {}.",
                p.pid, p.pid, w.fix
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

    /// The code an interpreter runs, when others can change it: the script, archive,
    /// classpath or document root on its command line (and every directory above it),
    /// or, for python, the directory it imports modules from first.
    fn interpreted(&self, p: &Owner<'_>) -> Option<Writable> {
        let host = self.ctx.host;
        let exe = p.exe.and_then(Path::to_str);
        script::interpreter(exe, p.cmdline.split(' ').next())?;
        let read = host.argv(p.pid);
        let unread = read.is_none();
        let (argv, live) = match read {
            Some(a) if same_command(&a, &p.cmdline) => (a, true),
            _ => (p.cmdline.split(' ').map(str::to_string).collect(), false),
        };
        let launch = script::launch(exe, &argv)?;
        // The working directory is the process's only while its command line is the one
        // the inventory saw (a fake host has no command line to compare).
        let cwd = host.cwd(p.pid).filter(|_| live || unread);
        let resolve = |f: &str| -> Option<PathBuf> {
            let path = Path::new(f);
            if path.is_absolute() {
                Some(normalize(path))
            } else {
                cwd.as_deref().map(|c| normalize(&c.join(path)))
            }
        };
        let name = launch.interpreter.name();
        let mut scripts: Vec<PathBuf> = Vec::new();
        for (role, f) in &launch.files {
            let Some(path) = resolve(f).filter(|p| host.exists(p)) else {
                continue;
            };
            if let Some(why) = host.exe_risk(&path).or_else(|| exe_risk(&path)) {
                let what = role.as_str();
                return Some(Writable {
                    what: format!("running {name} on {what} {}: {why}", path.display()),
                    fix: format!(
                        "install {what} under a root-owned path that others cannot write (such as /usr/local/lib or /opt) and run it from there"
                    ),
                });
            }
            if *role == script::Role::Script {
                scripts.push(path);
            }
        }
        let (dir, which) = if launch.imports_from_script_dir {
            let dir = scripts.first()?.parent()?.to_path_buf();
            (dir, "the script's directory".to_string())
        } else if launch.imports_from_cwd {
            let why = launch.no_file.as_deref().unwrap_or("runs no script");
            (cwd?, format!("its working directory, as it {why}"))
        } else {
            return None;
        };
        if !host.others_can_create_in(&dir) {
            return None;
        }
        Some(Writable {
            what: format!(
                "running python, which imports modules first from {} ({which}): {} is world-writable, and the sticky bit does not keep others from adding a module there",
                dir.display(),
                dir.display()
            ),
            fix: "run it from a directory others cannot write (systemd's `WorkingDirectory=`), or start python with -I (or -P) so that it does not import from there".into(),
        })
    }

    pub fn required(&mut self, subjects: &[Subject<'_>], inputs: &Inputs) {
        for spec in &self.policy.require {
            let listening: Vec<&Subject<'_>> = subjects
                .iter()
                .filter(|s| s.listening && s.netns.is_none() && spec.covers(s.protocol, s.port))
                .collect();
            let reachable = subjects
                .iter()
                .any(|s| s.reachable == Some(true) && spec.covers(s.protocol, s.port));
            let (proto, port) = spec.ports[0];
            let mut f = Finding::new(Rule::RequiredMissing, String::new(), Remediation::default());
            f.severity = Severity::High;
            f.protocol = Some(proto);
            f.port = Some(port.first);
            f.service = Some(spec.label.clone());
            if inputs.listeners.is_some() {
                if listening.is_empty() {
                    f.message = format!(
                        "{} ({}) is required by the policy but nothing listens on it.",
                        spec.label,
                        spec.ports_label()
                    );
                    f.remediation = Remediation::new(format!(
                        "Start the service that provides {} and enable it at boot (`systemctl enable --now UNIT`); check its logs (`journalctl -u UNIT`) if it fails to bind.",
                        spec.label
                    ));
                    self.findings.push(f.seal());
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
                    f.addresses = listening[0].address_list();
                    f.process = listening[0].process_label();
                    f.set_reach(Some(Reach::Unreachable));
                    f.message = format!(
                        "{} ({}) is required and listens, but the scan could not reach it: a firewall drops it.",
                        spec.label,
                        spec.ports_label()
                    );
                    f.remediation = Remediation::new(format!(
                        "Allow it at the firewall: `portolan firewall {}` lets it in from the policy's sources.",
                        self.ctx.policy_arg.as_deref().unwrap_or("--policy FILE")
                    ));
                    self.findings.push(f.seal());
                }
            } else if let Some(scan) = &inputs.scan {
                let scanned = spec.ports.iter().any(|(p, r)| scan.covers(*p, r.first));
                if scanned && !reachable {
                    f.address = Some(scan.target.clone());
                    f.addresses = scan.report.hosts.iter().map(|h| h.host).collect();
                    f.set_reach(Some(Reach::Unreachable));
                    f.message = format!(
                        "{} ({}) is required by the policy but is not reachable on {}.",
                        spec.label,
                        spec.ports_label(),
                        scan.target
                    );
                    f.remediation = Remediation::new(
                        "Check that the service runs on the target and that its firewall lets the policy's sources in.",
                    );
                    self.findings.push(f.seal());
                }
            }
        }
    }

    /// How to stop the service for good: the systemd unit (or its .socket), the process,
    /// the package.
    fn stop(&self, s: &Subject<'_>) -> String {
        self.stop_with(s, true)
    }

    /// [`stop`](Self::stop), with or without removing the package (which would remove
    /// whatever else the package serves).
    fn stop_with(&self, s: &Subject<'_>, packages: bool) -> String {
        if !s.listening {
            return format!(
                "Stop the service on {} or block {}/{} at its firewall.",
                s.host
                    .map_or_else(|| "the target".to_string(), |h| h.to_string()),
                s.port,
                s.protocol
            );
        }
        let mut units: Vec<String> = Vec::new();
        let mut pids: Vec<u32> = Vec::new();
        for p in &s.processes {
            match p.unit {
                Some(u) => {
                    let u = if p.socket_activated {
                        socket_unit(u)
                    } else {
                        u.to_string()
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
                .filter_map(|p| p.command)
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
        for p in s.processes.iter().filter(|_| packages) {
            // The package of an interpreter is not the service: removing python3 would
            // not remove the script, and would break the system.
            if let Some(exe) = p.exe.filter(|e| !is_interpreter(e)) {
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
        let units: Vec<&str> = s.processes.iter().filter_map(|p| p.unit).collect();
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

/// Why an owner's code can be changed by others, and the fix.
struct Writable {
    what: String,
    fix: String,
}

/// True when a process's arguments are the command line the inventory saw (which keeps
/// only the first 4096 bytes).
fn same_command(argv: &[String], cmdline: &str) -> bool {
    let joined = argv.join(" ");
    joined == cmdline || (cmdline.len() >= 4000 && joined.starts_with(cmdline))
}

/// A path without `.` and with `..` applied, as written (no file system access).
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
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
