//! `portolan audit`: the inside view (inventory), optionally the outside view (scan),
//! judged against the baseline or a policy.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context as _, bail};
use portolan_audit::finding::{Finding, Report, Severity};
use portolan_audit::policy::Policy;
use portolan_audit::{
    Context, Date, Exposure, Host, Inputs, Listener, Process, evaluate, junit, profiles, sarif,
};
use portolan_registry::{PortRange, Proto, Registry};

use crate::cli::{AuditArgs, AuditFormat, PolicySource, SeverityArg};
use crate::out;

/// Loads the policy a command names: a file, a profile, or none.
pub fn load_policy(src: &PolicySource) -> anyhow::Result<Option<(Policy, String)>> {
    if let Some(path) = &src.policy {
        let (label, text) = out::read_text_arg(path, "policy", out::MAX_POLICY_BYTES)?;
        let policy = Policy::parse(&text, &label, Registry::embedded())
            .map_err(|e| anyhow::anyhow!("invalid policy\n{e}"))?;
        return Ok(Some((policy, format!("--policy {label}"))));
    }
    if let Some(name) = &src.profile {
        let policy = profiles::load(name, Registry::embedded())?;
        let arg = format!("--profile {}", policy.name);
        return Ok(Some((policy, arg)));
    }
    Ok(None)
}

/// The kernel's ephemeral port range, or Linux's default when it cannot be read.
pub fn ephemeral_range() -> PortRange {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| portolan_audit::input::parse_port_range_sysctl(&t))
        .unwrap_or(Context::DEFAULT_EPHEMERAL)
}

/// The live host: file permissions and the Debian package database.
#[derive(Default)]
pub struct LiveHost {
    packages: Mutex<HashMap<PathBuf, Option<String>>>,
}

impl Host for LiveHost {
    fn exe_risk(&self, exe: &Path) -> Option<String> {
        let meta = std::fs::metadata(exe).ok()?;
        let mode = meta.permissions().mode();
        if mode & 0o002 != 0 {
            return Some(format!("{} is world-writable", exe.display()));
        }
        let mut dir = exe.parent();
        while let Some(d) = dir {
            if let Ok(m) = std::fs::metadata(d) {
                let mode = m.permissions().mode();
                // World-writable without the sticky bit: anyone can replace the file.
                if mode & 0o002 != 0 && mode & 0o1000 == 0 {
                    return Some(format!("{} is world-writable", d.display()));
                }
            }
            dir = d.parent();
        }
        None
    }

    fn package_of(&self, exe: &Path) -> Option<String> {
        let mut cache = self.packages.lock().ok()?;
        if let Some(hit) = cache.get(exe) {
            return hit.clone();
        }
        let found = dpkg_owner(exe);
        cache.insert(exe.to_path_buf(), found.clone());
        found
    }
}

impl LiveHost {
    /// Looks up the packages of many executables with one `dpkg -S` (which reads the
    /// package database once, the slow part), so later lookups hit the cache.
    pub fn prefetch(&self, exes: &[&Path]) {
        let Ok(mut cache) = self.packages.lock() else {
            return;
        };
        let mut want: Vec<(PathBuf, Vec<String>)> = Vec::new();
        for exe in exes {
            if cache.contains_key(*exe) || want.iter().any(|(e, _)| e == exe) {
                continue;
            }
            if let Some(s) = exe.to_str() {
                want.push((exe.to_path_buf(), candidates(s)));
            }
        }
        if want.is_empty() {
            return;
        }
        let args: Vec<&str> = want
            .iter()
            .flat_map(|(_, c)| c.iter().map(String::as_str))
            .collect();
        let owners = dpkg_search(&args);
        for (exe, cands) in want {
            let pkg = cands.iter().find_map(|c| owners.get(c).cloned());
            cache.insert(exe, pkg);
        }
    }
}

/// The path, and the same path with or without /usr (merged-/usr systems record either).
fn candidates(s: &str) -> Vec<String> {
    let other = match s.strip_prefix("/usr") {
        Some(rest) => rest.to_string(),
        None => format!("/usr{s}"),
    };
    vec![s.to_string(), other]
}

/// `dpkg -S PATH...`: the owning package of each path it knows.
fn dpkg_search(paths: &[&str]) -> HashMap<String, String> {
    let mut owners = HashMap::new();
    let Ok(out) = std::process::Command::new("dpkg")
        .arg("-S")
        .args(paths)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
    else {
        return owners;
    };
    // "openssh-server: /usr/sbin/sshd"; diversions start with "diversion by". Paths
    // dpkg does not know only produce errors (and exit status 1).
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if line.starts_with("diversion") {
            continue;
        }
        let Some((pkgs, path)) = line.split_once(": ") else {
            continue;
        };
        let pkg = pkgs
            .split(", ")
            .next()
            .and_then(|p| p.split(':').next())
            .map(str::trim)
            .unwrap_or_default();
        if !pkg.is_empty() {
            owners
                .entry(path.trim().to_string())
                .or_insert_with(|| pkg.to_string());
        }
    }
    owners
}

/// The owning package of one executable.
fn dpkg_owner(exe: &Path) -> Option<String> {
    let s = exe.to_str()?;
    let cands = candidates(s);
    let args: Vec<&str> = cands.iter().map(String::as_str).collect();
    let owners = dpkg_search(&args);
    cands.iter().find_map(|c| owners.get(c).cloned())
}

fn threshold(a: SeverityArg) -> Option<Severity> {
    match a {
        SeverityArg::Critical => Some(Severity::Critical),
        SeverityArg::High => Some(Severity::High),
        SeverityArg::Medium => Some(Severity::Medium),
        SeverityArg::Low => Some(Severity::Low),
        SeverityArg::Info => Some(Severity::Info),
        SeverityArg::Never => None,
    }
}

pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let loaded = load_policy(&args.source)?;
    let today = match &args.today {
        Some(t) => parse_date(t)?,
        None => Date::today_utc(),
    };
    let listeners = inside_view(args.netns.as_deref())?;
    let policy_ref = loaded.as_ref().map(|(p, _)| p);
    let scan = match &args.scan {
        Some(target) => Some(outside_view(
            target,
            Some(&listeners),
            policy_ref,
            args.netns.as_deref(),
            args.detect,
        )?),
        None => None,
    };
    // A scan of another host is judged alone: this host's sockets say nothing about it.
    let listeners = match &scan {
        Some(s) if !s.local => None,
        _ => Some(listeners),
    };
    let inputs = Inputs { listeners, scan };
    let host = LiveHost::default();
    if let Some(ls) = &inputs.listeners {
        let mut exes: Vec<&Path> = ls
            .iter()
            .flat_map(|l| l.processes.iter().filter_map(|p| p.exe.as_deref()))
            .collect();
        exes.sort_unstable();
        exes.dedup();
        host.prefetch(&exes);
    }
    let ctx = Context {
        today,
        ephemeral: ephemeral_range(),
        catalog: Registry::embedded(),
        host: &host,
        policy_arg: loaded.as_ref().map(|(_, a)| a.clone()),
    };
    let baseline = Policy::baseline();
    let policy = loaded.as_ref().map_or(&baseline, |(p, _)| p);
    let report = evaluate(policy, &inputs, &ctx);
    let format = if args.json {
        AuditFormat::Json
    } else {
        args.format
    };
    let fail_on = threshold(args.fail_on);
    let mut w = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        AuditFormat::Table => write_table(&mut w, &report, out::use_color())?,
        AuditFormat::Json => {
            serde_json::to_writer_pretty(&mut w, &report)?;
            writeln!(w)?;
        }
        AuditFormat::Sarif => {
            serde_json::to_writer_pretty(
                &mut w,
                &sarif::to_sarif(&report, env!("CARGO_PKG_VERSION")),
            )?;
            writeln!(w)?;
        }
        AuditFormat::Junit => {
            w.write_all(junit::to_junit(&report, fail_on).as_bytes())?;
        }
    }
    w.flush()?;
    Ok(match fail_on {
        Some(t) if report.fails(t) => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}

fn parse_date(t: &str) -> anyhow::Result<Date> {
    let parts: Vec<&str> = t.split('-').collect();
    let bad = || anyhow::anyhow!("invalid date '{t}' (expected YYYY-MM-DD)");
    if parts.len() != 3 {
        return Err(bad());
    }
    let y = parts[0].parse().map_err(|_| bad())?;
    let m = parts[1].parse().map_err(|_| bad())?;
    let d = parts[2].parse().map_err(|_| bad())?;
    Date::new(y, m, d).ok_or_else(bad)
}

/// The inside view: the listening sockets of this host (or of a named network
/// namespace) and their owners. The inventory's warnings (owners it could not read) go
/// to stderr.
pub fn inside_view(netns: Option<&str>) -> anyhow::Result<Vec<Listener>> {
    let opts = portolan_inventory::Options {
        netns: match netns {
            Some(n) => portolan_inventory::NetnsChoice::Named(n.to_string()),
            None => portolan_inventory::NetnsChoice::Current,
        },
        ..portolan_inventory::Options::default()
    };
    let inv = portolan_inventory::Inventory::collect(&opts)
        .context("cannot list the listening sockets")?;
    for w in &inv.warnings {
        eprintln!("portolan: {w}");
    }
    Ok(inv.listeners.iter().map(to_audit).collect())
}

/// An inventory row as the audit's plain data. A socket that systemd holds for socket
/// activation is stopped through its `.socket` unit, so every owner carries that unit.
pub fn to_audit(l: &portolan_inventory::Listener) -> Listener {
    use portolan_inventory::Exposure as E;
    let processes = l
        .processes
        .iter()
        .map(|o| {
            let unit = match (&l.socket_unit, l.socket_activated) {
                (Some(u), true) => Some(u.to_string()),
                _ if o.is_systemd() => None,
                _ => o.unit.clone(),
            };
            Process {
                pid: o.pid,
                name: o.name.clone(),
                exe: o.exe.as_ref().map(PathBuf::from),
                command: (!o.cmdline.is_empty()).then(|| o.cmdline.clone()),
                user: o
                    .user
                    .clone()
                    .or_else(|| l.user.as_deref().map(str::to_string)),
                unit,
                socket_activated: l.socket_activated,
            }
        })
        .collect();
    Listener {
        protocol: l.protocol,
        address: l.address,
        port: l.port,
        v6only: l.v6only,
        exposure: match l.exposure {
            E::Loopback => Exposure::Loopback,
            E::Address => Exposure::Address,
            E::All => Exposure::All,
        },
        service: l.service.map(str::to_string),
        processes,
        netns: None,
    }
}

/// The outside view: a scan of `target` from here. It covers the top 1,000 TCP ports,
/// every port the inside view has beyond loopback, and every port the policy names (UDP
/// only where something listens or the policy allows it: UDP scans are slow).
fn outside_view(
    target: &str,
    listeners: Option<&[Listener]>,
    policy: Option<&Policy>,
    netns: Option<&str>,
    detect: bool,
) -> anyhow::Result<portolan_audit::Scan> {
    use portolan_scan::{Event, ScanConfig, Scanner, Target, TargetSet};
    use std::collections::BTreeSet;

    let t = Target::parse(target).map_err(|e| anyhow::anyhow!("--scan {target}: {e}"))?;
    let set =
        TargetSet::build(&[t], &[], true).map_err(|e| anyhow::anyhow!("--scan {target}: {e}"))?;
    let addrs: Vec<std::net::IpAddr> = set.iter().collect();
    let [addr] = addrs[..] else {
        bail!(
            "--scan takes one host; {target} is {} addresses",
            addrs.len()
        );
    };
    let mut tcp: BTreeSet<u16> = portolan_scan::top(1000)
        .map(|p| p.ports(Proto::Tcp).into_iter().collect())
        .unwrap_or_default();
    let mut udp: BTreeSet<u16> = BTreeSet::new();
    for l in listeners
        .into_iter()
        .flatten()
        .filter(|l| l.exposure != Exposure::Loopback)
    {
        match l.protocol {
            Proto::Tcp => {
                tcp.insert(l.port);
            }
            Proto::Udp => {
                udp.insert(l.port);
            }
            _ => {}
        }
    }
    for a in policy.into_iter().flat_map(|p| &p.allow) {
        for (proto, r) in a.services.iter().flat_map(|s| &s.ports) {
            if r.len() > 1024 {
                continue;
            }
            let into = match proto {
                Proto::Tcp => &mut tcp,
                Proto::Udp => &mut udp,
                _ => continue,
            };
            into.extend(r.iter());
        }
    }
    let config = ScanConfig {
        mode: portolan_scan::best_mode(),
        tcp_ports: tcp.iter().copied().collect(),
        udp_ports: udp.iter().copied().collect(),
        discovery: false,
        ..ScanConfig::default()
    };
    let mut results = Vec::new();
    Scanner::new(config)
        .run(&set, &mut |ev| {
            if let Event::Port(r) = ev {
                results.push(r);
            }
        })
        .with_context(|| format!("scanning {target}"))?;
    let from_itself = netns.is_none() && std::net::UdpSocket::bind((addr, 0)).is_ok();
    if from_itself {
        eprintln!(
            "portolan: {target} is this host: the scan goes through loopback, which firewalls accept, so it cannot tell what the firewall lets in (scan from another host, or audit a namespace with --netns)"
        );
    }
    let source = std::net::UdpSocket::bind(if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })
    .and_then(|s| s.connect((addr, 9)).map(|()| s))
    .and_then(|s| s.local_addr())
    .ok()
    .map(|a| a.ip());
    let mut scanned: Vec<(Proto, PortRange)> = tcp
        .iter()
        .map(|&p| (Proto::Tcp, PortRange::single(p)))
        .collect();
    scanned.extend(udp.iter().map(|&p| (Proto::Udp, PortRange::single(p))));
    let mut scan = portolan_audit::Scan {
        target: target.to_string(),
        local: netns.is_some() || from_itself,
        source,
        scanned,
        results: results
            .into_iter()
            .map(|r| portolan_audit::Reachable {
                host: r.host.to_string(),
                protocol: r.proto,
                port: r.port,
                state: match r.state {
                    portolan_scan::PortState::Open => portolan_audit::PortState::Open,
                    portolan_scan::PortState::Closed => portolan_audit::PortState::Closed,
                    portolan_scan::PortState::Filtered => portolan_audit::PortState::Filtered,
                    portolan_scan::PortState::OpenFiltered => {
                        portolan_audit::PortState::OpenFiltered
                    }
                },
                detected: None,
            })
            .collect(),
        from_itself,
    };
    if detect {
        detect_open(&mut scan, addr)?;
    }
    Ok(scan)
}

/// Service detection of every open port of a scan, 64 at a time.
fn detect_open(scan: &mut portolan_audit::Scan, addr: std::net::IpAddr) -> anyhow::Result<()> {
    use portolan_detect::{Detection, Detector, Options};
    use std::sync::Arc;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start service detection")?;
    let det = Arc::new(Detector::default());
    let opts = Options::with_timeout(std::time::Duration::from_secs(3));
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for (i, r) in scan.results.iter().enumerate() {
        if r.state != portolan_audit::PortState::Open {
            continue;
        }
        let (det, opts, limit) = (det.clone(), opts.clone(), limit.clone());
        let sa = std::net::SocketAddr::new(addr, r.port);
        let udp = r.protocol == Proto::Udp;
        tasks.push((
            i,
            rt.spawn(async move {
                let _permit = limit.acquire_owned().await;
                if udp {
                    det.detect_udp(sa, &opts).await
                } else {
                    det.detect_tcp(sa, &opts).await
                }
            }),
        ));
    }
    for (i, task) in tasks {
        let d: Detection = match rt.block_on(task) {
            Ok(d) => d,
            Err(_) => continue,
        };
        if d.is_identified() {
            scan.results[i].detected = Some(portolan_audit::Detected {
                protocol: d.protocol.clone(),
                product: d.product.clone(),
                version: d.version.clone(),
                cleartext: d.cleartext,
                starttls: d.starttls,
                tls: d.tls.is_some(),
            });
        }
    }
    Ok(())
}

const SEVERITY_COLOR: [(Severity, &str); 5] = [
    (Severity::Critical, "\x1b[1;31m"),
    (Severity::High, "\x1b[31m"),
    (Severity::Medium, "\x1b[33m"),
    (Severity::Low, "\x1b[36m"),
    (Severity::Info, "\x1b[2m"),
];

/// Findings grouped by severity, each with its evidence and remediation, then the summary
/// and the next step.
pub fn write_table(w: &mut dyn Write, r: &Report, color: bool) -> std::io::Result<()> {
    let paint = |s: Severity, text: &str| -> String {
        if !color {
            return text.to_string();
        }
        let code = SEVERITY_COLOR
            .iter()
            .find(|(v, _)| *v == s)
            .map_or("", |(_, c)| c);
        format!("{code}{text}\x1b[0m")
    };
    for sev in Severity::ALL {
        let group: Vec<&Finding> = r.findings.iter().filter(|f| f.severity == sev).collect();
        if group.is_empty() {
            continue;
        }
        writeln!(
            w,
            "{}",
            paint(
                sev,
                &format!("{} ({})", sev.as_str().to_uppercase(), group.len())
            )
        )?;
        let mut t = out::Table::new(["  PORT", "SERVICE", "ADDRESS", "PROCESS", "REACH", "RULE"]);
        for f in &group {
            let reach = match f.reachable {
                Some(true) => "reachable",
                Some(false) => "filtered",
                None => "",
            };
            let pid = f
                .evidence
                .first()
                .map(|e| format!(" ({})", e.pid))
                .unwrap_or_default();
            t.row([
                format!("  {}", f.port_label()),
                f.service.clone().unwrap_or_default(),
                f.address.clone().unwrap_or_default(),
                f.process.clone().map(|p| p + &pid).unwrap_or_default(),
                reach.to_string(),
                f.rule.id().to_string(),
            ]);
        }
        // One table row, then the finding's text under it.
        let mut buf = Vec::new();
        t.write(&mut buf, false)?;
        let text = String::from_utf8_lossy(&buf);
        let mut lines = text.lines();
        if let Some(h) = lines.next() {
            writeln!(
                w,
                "{}",
                if color {
                    format!("\x1b[1m{h}\x1b[0m")
                } else {
                    h.to_string()
                }
            )?;
        }
        for (line, f) in lines.zip(&group) {
            writeln!(w, "{line}")?;
            writeln!(w, "      {}", f.message)?;
            writeln!(w, "      fix: {}", f.remediation)?;
        }
        writeln!(w)?;
    }
    let s = &r.summary;
    let mut head = format!("portolan audit ({})", s.policy);
    let mut parts = Vec::new();
    if let (Some(n), Some(e)) = (s.listeners, s.exposed) {
        parts.push(format!(
            "{n} listening socket{}, {e} beyond loopback",
            if n == 1 { "" } else { "s" }
        ));
    }
    if let Some(n) = s.reachable {
        parts.push(format!(
            "{n} port{} reachable from the scan",
            if n == 1 { "" } else { "s" }
        ));
    }
    if !parts.is_empty() {
        head.push_str(": ");
        head.push_str(&parts.join("; "));
    }
    writeln!(w, "{head}.")?;
    if s.findings == 0 {
        writeln!(w, "No findings.")?;
    } else {
        let counts: Vec<String> = Severity::ALL
            .iter()
            .filter(|v| s.severities.get(**v) > 0)
            .map(|v| format!("{} {}", s.severities.get(*v), v.as_str()))
            .collect();
        writeln!(
            w,
            "{} finding{}: {}.",
            s.findings,
            if s.findings == 1 { "" } else { "s" },
            counts.join(", ")
        )?;
    }
    if s.suppressed > 0 {
        writeln!(w, "{} held back by the policy's exceptions.", s.suppressed)?;
    }
    writeln!(w, "Next: {}", s.next_step)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_audit::NoHost;
    use portolan_registry::Proto;

    /// A fixed day and the embedded registry, on no real host.
    fn ctx() -> Context<'static> {
        Context {
            today: Date::new(2026, 11, 27).unwrap(),
            ephemeral: PortRange::new(32768, 60999).unwrap(),
            catalog: Registry::embedded(),
            host: &NoHost,
            policy_arg: None,
        }
    }

    fn report() -> Report {
        let mut telnet = Listener::new(Proto::Tcp, "0.0.0.0".parse().unwrap(), 23);
        telnet.processes.push(Process {
            pid: 812,
            name: "inetd".into(),
            exe: Some("/usr/sbin/inetd".into()),
            command: None,
            user: Some("root".into()),
            unit: Some("inetd.service".into()),
            socket_activated: false,
        });
        let redis = Listener::new(Proto::Tcp, "::".parse().unwrap(), 6379);
        let mut local = Listener::new(Proto::Tcp, "127.0.0.1".parse().unwrap(), 40001);
        local.exposure = Exposure::Loopback;
        let inputs = Inputs {
            listeners: Some(vec![telnet, redis, local]),
            scan: None,
        };
        let ctx = ctx();
        evaluate(&Policy::baseline(), &inputs, &ctx)
    }

    #[test]
    fn table_groups_by_severity() {
        let mut buf = Vec::new();
        write_table(&mut buf, &report(), false).unwrap();
        insta::assert_snapshot!(String::from_utf8(buf).unwrap());
    }

    #[test]
    fn empty_report_says_so() {
        let ctx = ctx();
        let r = evaluate(
            &Policy::baseline(),
            &Inputs {
                listeners: Some(vec![]),
                scan: None,
            },
            &ctx,
        );
        let mut buf = Vec::new();
        write_table(&mut buf, &r, false).unwrap();
        let s = String::from_utf8(buf).unwrap();
        assert!(s.contains("0 listening sockets, 0 beyond loopback"), "{s}");
        assert!(s.contains("No findings."), "{s}");
        assert!(s.contains("Next: Write a policy"), "{s}");
    }

    #[test]
    fn live_host_packages_and_writable_paths() {
        let host = LiveHost::default();
        if Path::new("/usr/bin/dpkg").exists() {
            host.prefetch(&[Path::new("/usr/bin/dpkg"), Path::new("/nonexistent/x")]);
            assert_eq!(
                host.package_of(Path::new("/usr/bin/dpkg")).as_deref(),
                Some("dpkg")
            );
            assert_eq!(host.package_of(Path::new("/nonexistent/x")), None);
        }
        let dir = std::env::temp_dir().join(format!("pa-ww-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("daemon");
        std::fs::write(&exe, b"").unwrap();
        assert_eq!(host.exe_risk(&exe), None);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(host.exe_risk(&exe).unwrap().contains("is world-writable"));
        // The sticky bit (as on /tmp) keeps others from replacing the file.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(host.exe_risk(&exe), None);
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(host.exe_risk(&exe).is_some());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("2026-02-28").unwrap(),
            Date::new(2026, 2, 28).unwrap()
        );
        assert!(parse_date("2026-02-30").is_err());
        assert!(parse_date("tomorrow").is_err());
    }
}
