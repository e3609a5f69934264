//! Report fixtures built from the model: a realistic host, a hostile peer, and many
//! listeners.
#![allow(dead_code)]

use std::borrow::Cow;
use std::net::IpAddr;
use std::time::Duration;

use portolan_model::{
    AuditReport, AuditSummary, Change, ChangeKind, Counts, Coverage, Detection, Diff, Evidence,
    FieldChange, Finding, HostResult, HostState, Listener, PortRange, PortResult, PortState,
    Process, Proto, Reach, Reason, Remediation, Rule, RunInfo, ScanMode, ScanReport, ScanSummary,
    ScannedPort, Severity, Subject, TlsInfo,
};
use portolan_report::html::{PolicyInfo, ReportInput};

pub const TARGET: &str = "198.18.0.2";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn process(pid: u32, name: &str, exe: &str, cmdline: &str, unit: &str) -> Process {
    Process {
        pid,
        name: name.into(),
        exe: Some(exe.into()),
        cmdline: cmdline.into(),
        uid: Some(0),
        user: Some("root".into()),
        unit: Some(unit.into()),
        cgroup: None,
        container: None,
    }
}

fn listener(
    proto: Proto,
    addr: &str,
    port: u16,
    service: Option<&'static str>,
    p: Option<Process>,
) -> Listener {
    let mut l = Listener::new(proto, ip(addr), port);
    l.service = service.map(Cow::Borrowed);
    if l.family == portolan_model::Family::V6 {
        l.v6only = Some(true);
    }
    if let Some(p) = p {
        l.user = p.user.as_deref().map(Into::into);
        l = l.with_process(p);
    }
    l
}

/// The processes of the sample host, which own its listeners and its findings.
pub struct Owners {
    pub sshd: Process,
    pub nginx: Process,
    pub inetd: Process,
    pub redis: Process,
    pub pg: Process,
    pub resolved: Process,
    pub py: Process,
    pub node: Process,
    pub mystery: Process,
    pub avahi: Process,
    pub chrony: Process,
}

pub fn owners() -> Owners {
    Owners {
        sshd: process(
            812,
            "sshd",
            "/usr/sbin/sshd",
            "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups",
            "ssh.service",
        ),
        nginx: process(
            1200,
            "nginx",
            "/usr/sbin/nginx",
            "nginx: master process /usr/sbin/nginx -g daemon on; master_process on;",
            "nginx.service",
        ),
        inetd: process(
            640,
            "inetd",
            "/usr/sbin/inetutils-inetd",
            "/usr/sbin/inetutils-inetd",
            "inetutils-inetd.service",
        ),
        redis: process(
            901,
            "redis-server",
            "/usr/bin/redis-server",
            "/usr/bin/redis-server 0.0.0.0:6379",
            "redis-server.service",
        ),
        pg: process(
            1001,
            "postgres",
            "/usr/lib/postgresql/15/bin/postgres",
            "/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main",
            "postgresql@15-main.service",
        ),
        resolved: process(
            455,
            "systemd-resolve",
            "/usr/lib/systemd/systemd-resolved",
            "/lib/systemd/systemd-resolved",
            "systemd-resolved.service",
        ),
        py: process(
            4242,
            "python3",
            "/usr/bin/python3.11",
            "python3 -m http.server --bind 198.18.0.2 8000",
            "session-3.scope",
        ),
        node: process(
            5150,
            "node",
            "/tmp/.cache/node",
            "/tmp/.cache/node server.js",
            "session-3.scope",
        ),
        mystery: process(
            6066,
            "svc",
            "/opt/svc/bin/svc",
            "/opt/svc/bin/svc --port 31337",
            "svc.service",
        ),
        avahi: process(
            520,
            "avahi-daemon",
            "/usr/sbin/avahi-daemon",
            "avahi-daemon: running [host.local]",
            "avahi-daemon.service",
        ),
        chrony: process(
            530,
            "chronyd",
            "/usr/sbin/chronyd",
            "/usr/sbin/chronyd -F 1",
            "chrony.service",
        ),
    }
}

pub fn listeners() -> Vec<Listener> {
    let Owners {
        sshd,
        nginx,
        inetd,
        redis,
        pg,
        resolved,
        py,
        node,
        mystery,
        avahi,
        chrony,
    } = owners();
    let mut v = vec![
        listener(Proto::Tcp, "0.0.0.0", 22, Some("ssh"), Some(sshd.clone())),
        listener(Proto::Tcp, "::", 22, Some("ssh"), Some(sshd)),
        listener(Proto::Tcp, "0.0.0.0", 23, Some("telnet"), Some(inetd)),
        listener(Proto::Tcp, "0.0.0.0", 80, Some("http"), Some(nginx.clone())),
        listener(Proto::Tcp, "0.0.0.0", 443, Some("https"), Some(nginx)),
        listener(Proto::Tcp, "127.0.0.1", 5432, Some("postgresql"), Some(pg)),
        listener(Proto::Tcp, "0.0.0.0", 6379, Some("redis"), Some(redis)),
        listener(Proto::Tcp, TARGET, 8000, Some("irdmi"), Some(py)),
        listener(Proto::Tcp, "0.0.0.0", 31337, None, Some(mystery)),
        listener(Proto::Tcp, "0.0.0.0", 40123, None, Some(node)),
        listener(
            Proto::Udp,
            "127.0.0.53",
            53,
            Some("domain"),
            Some(resolved.clone()),
        ),
        listener(Proto::Tcp, "127.0.0.53", 53, Some("domain"), Some(resolved)),
        listener(Proto::Udp, "0.0.0.0", 5353, Some("mdns"), Some(avahi)),
        listener(Proto::Udp, "127.0.0.1", 323, None, Some(chrony)),
    ];
    let mut cups = listener(Proto::Tcp, "127.0.0.1", 631, Some("ipp"), None);
    cups.owner_unknown = true;
    v.push(cups);
    v
}

fn finding(
    rule: Rule,
    sev: Severity,
    at: Option<(u16, Proto)>,
    service: Option<&str>,
    process: Option<Process>,
    message: &str,
    fix: &str,
) -> Finding {
    let mut f = Finding::new(rule, message, Remediation::new(fix));
    f.severity = sev;
    let port = at.map(|(p, _)| p);
    if let Some((port, proto)) = at {
        f.port = Some(port);
        f.protocol = Some(proto);
        f.address = Some("0.0.0.0".into());
        f.addresses = vec![ip("0.0.0.0")];
    }
    f.service = service.map(Into::into);
    if let Some(p) = process {
        f.process = Some(p.name.clone());
        f.evidence.push(Evidence {
            process: p.into(),
            package: None,
        });
    }
    f.set_reach(port.map(|_| Reach::Reachable));
    f.seal()
}

pub fn audit(findings: Vec<Finding>, listeners: usize, exposed: usize) -> AuditReport {
    let mut c = Counts::default();
    for f in &findings {
        c.add(f.severity);
    }
    AuditReport {
        summary: AuditSummary {
            policy: "web-server".into(),
            listeners: Some(listeners),
            exposed: Some(exposed),
            reachable: Some(8),
            unreachable: None,
            not_checked: None,
            findings: findings.len(),
            severities: c,
            suppressed: 1,
            next_step: "Fix the critical finding first, then run `portolan audit --policy /etc/portolan/web.toml` again.".into(),
        },
        findings,
        suppressed: vec![portolan_model::Suppressed {
            rule: Rule::NotAllowed,
            protocol: Some(Proto::Udp),
            port: Some(5353),
            reason: "mDNS is accepted on this network until 2027-01-01".into(),
            finding: None,
        }],
    }
}

pub fn findings() -> Vec<Finding> {
    let Owners {
        inetd,
        redis,
        py,
        node,
        mystery,
        ..
    } = owners();
    let mut v = vec![
        finding(
            Rule::CleartextExposed,
            Severity::Critical,
            Some((23, Proto::Tcp)),
            Some("telnet"),
            Some(inetd),
            "telnet 23/tcp on 0.0.0.0 (inetd pid 640) is remote access without encryption, and a scan reached it",
            "Stop it and use ssh: `systemctl disable --now inetutils-inetd.service`, then `apt purge inetutils-telnetd`.",
        ),
        finding(
            Rule::LocalServiceExposed,
            Severity::High,
            Some((6379, Proto::Tcp)),
            Some("redis"),
            Some(redis),
            "redis 6379/tcp listens on every address; a cache normally stays on the host",
            "Bind it to loopback: set `bind 127.0.0.1 ::1` in /etc/redis/redis.conf, then `systemctl restart redis-server`.",
        ),
        finding(
            Rule::NotAllowed,
            Severity::High,
            Some((8000, Proto::Tcp)),
            Some("irdmi"),
            Some(py.clone()),
            "8000/tcp (python3 pid 4242) listens on 198.18.0.2; the policy web-server does not allow it",
            "Stop the process (`kill 4242`) or allow the port in the policy.",
        ),
        finding(
            Rule::UnknownServiceExposed,
            Severity::Medium,
            Some((31337, Proto::Tcp)),
            None,
            Some(mystery),
            "31337/tcp (svc pid 6066) listens on every address on a port no registry knows",
            "Find out what it is: `ss -tlnp 'sport = :31337'`.",
        ),
        finding(
            Rule::EphemeralPort,
            Severity::Low,
            Some((40123, Proto::Tcp)),
            None,
            Some(node),
            "node listens on 40123/tcp, inside the ephemeral range 32768-60999, from a writable path",
            "Give it a fixed port outside 32768-60999.",
        ),
        finding(
            Rule::ExceptionExpired,
            Severity::Info,
            None,
            None,
            None,
            "The exception for 5353/udp expires on 2027-01-01",
            "Renew or remove the exception in the policy.",
        ),
    ];
    v.sort_by_key(|f| std::cmp::Reverse(f.severity));
    v
}

fn port(
    p: u16,
    proto: Proto,
    state: PortState,
    service: Option<&str>,
    det: Option<Detection>,
) -> ScannedPort {
    ScannedPort {
        result: PortResult {
            host: ip(TARGET),
            port: p,
            proto,
            state,
            reason: match state {
                PortState::Open => Reason::SynAck,
                PortState::Closed => Reason::Reset,
                _ => Reason::NoResponse,
            },
            rtt: Some(Duration::from_micros(180)),
            ttl: Some(64),
        },
        service: service.map(Into::into),
        detected: det,
    }
}

fn det(
    protocol: &str,
    product: Option<&str>,
    version: Option<&str>,
    cleartext: bool,
    evidence: &str,
) -> Detection {
    Detection {
        protocol: Some(protocol.into()),
        product: product.map(Into::into),
        version: version.map(Into::into),
        tls: None,
        cleartext,
        starttls: false,
        evidence: evidence.into(),
        unauthenticated: None,
    }
}

pub fn scan(ports: Vec<ScannedPort>) -> ScanReport {
    let mut cov = Coverage::default();
    let list: Vec<u16> = ports.iter().map(|p| p.result.port).collect();
    cov.add_ports(ip(TARGET), Proto::Tcp, &list);
    let mut summary = ScanSummary {
        mode: Some(ScanMode::Syn),
        udp: true,
        hosts_total: 1,
        hosts_up: 1,
        elapsed: Duration::from_millis(2350),
        ..ScanSummary::default()
    };
    for p in &ports {
        summary.count(p.result.state);
    }
    for _ in 0..990 {
        summary.count(PortState::Closed);
    }
    ScanReport {
        targets: vec![TARGET.into()],
        coverage: cov,
        hosts: vec![HostResult {
            host: ip(TARGET),
            state: HostState::Up,
            reason: Reason::EchoReply,
            rtt: Some(Duration::from_micros(150)),
            ports,
            not_shown: vec![(PortState::Closed, 990)],
            ..HostResult::new(ip(TARGET), HostState::Up, Reason::EchoReply)
        }],
        summary,
        ..ScanReport::default()
    }
}

pub fn scanned_ports() -> Vec<ScannedPort> {
    let mut https = det(
        "http",
        Some("nginx"),
        Some("1.22.1"),
        false,
        "HTTP/1.1 200 OK; Server: nginx/1.22.1",
    );
    https.tls = Some(TlsInfo {
        version: Some("TLSv1.3".into()),
        cipher: Some("TLS13_AES_256_GCM_SHA384".into()),
        subject: Some("CN=www.example.test".into()),
        issuer: Some("CN=Example Test CA".into()),
        not_after: Some("2027-03-01T00:00:00Z".into()),
        alpn: Some("h2".into()),
    });
    let mut redis = det(
        "redis",
        Some("Redis key-value store"),
        Some("7.0.15"),
        true,
        "+PONG",
    );
    redis.unauthenticated = Some(true);
    vec![
        port(
            22,
            Proto::Tcp,
            PortState::Open,
            Some("ssh"),
            Some(det(
                "ssh",
                Some("OpenSSH"),
                Some("9.2p1 Debian-2+deb12u3"),
                false,
                "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3",
            )),
        ),
        port(
            23,
            Proto::Tcp,
            PortState::Open,
            Some("telnet"),
            Some(det(
                "telnet",
                None,
                None,
                true,
                "\\xff\\xfd\\x18 Debian GNU/Linux 12 login:",
            )),
        ),
        port(25, Proto::Tcp, PortState::Closed, Some("smtp"), None),
        port(
            80,
            Proto::Tcp,
            PortState::Open,
            Some("http"),
            Some(det(
                "http",
                Some("nginx"),
                Some("1.22.1"),
                true,
                "HTTP/1.1 301 Moved Permanently; Server: nginx/1.22.1",
            )),
        ),
        port(443, Proto::Tcp, PortState::Open, Some("https"), Some(https)),
        port(
            6379,
            Proto::Tcp,
            PortState::Open,
            Some("redis"),
            Some(redis),
        ),
        port(
            8000,
            Proto::Tcp,
            PortState::Open,
            Some("irdmi"),
            Some(det(
                "http",
                Some("SimpleHTTP"),
                Some("0.6 Python/3.11.2"),
                true,
                "HTTP/1.0 200 OK; Server: SimpleHTTP/0.6 Python/3.11.2",
            )),
        ),
        port(
            31337,
            Proto::Tcp,
            PortState::Open,
            None,
            Some(Detection::nothing(
                "no greeting within 2 s; no answer to the HTTP, TLS and generic probes",
            )),
        ),
        port(
            5353,
            Proto::Udp,
            PortState::OpenFiltered,
            Some("mdns"),
            None,
        ),
    ]
}

fn key(proto: Proto, addr: &str, port: u16) -> portolan_model::ListenerKey {
    listener(proto, addr, port, None, None).key()
}

pub fn diff() -> Diff {
    let ch = |change, proto, addr: &str, port, fields: Vec<FieldChange>, noise| Change {
        change,
        subject: Subject::Listener(key(proto, addr, port)),
        protocol: Some(proto),
        port: Some(port),
        fields,
        listener: None,
        at: Some("2026-12-01T06:10:00Z".into()),
        noise,
    };
    let fc = |field: &str, a: &str, b: &str| FieldChange {
        field: field.into(),
        before: Some(a.into()),
        after: Some(b.into()),
    };
    let mut added = ch(ChangeKind::Added, Proto::Tcp, TARGET, 8000, vec![], false);
    added.listener = Some(listeners()[7].clone());
    Diff {
        from: "run 41 (2026-11-30T19:40:00Z)".into(),
        to: "run 42 (2026-12-01T19:40:00Z)".into(),
        changes: vec![
            added,
            ch(
                ChangeKind::Removed,
                Proto::Tcp,
                "127.0.0.1",
                3306,
                vec![],
                false,
            ),
            ch(
                ChangeKind::Changed,
                Proto::Tcp,
                "0.0.0.0",
                80,
                vec![
                    fc("exe", "/usr/sbin/apache2", "/usr/sbin/nginx"),
                    fc("unit", "apache2.service", "nginx.service"),
                ],
                false,
            ),
            ch(
                ChangeKind::Restarted,
                Proto::Tcp,
                "0.0.0.0",
                22,
                vec![fc("pid", "790", "812")],
                false,
            ),
            ch(
                ChangeKind::Reopened,
                Proto::Tcp,
                "0.0.0.0",
                6379,
                vec![],
                false,
            ),
            ch(
                ChangeKind::Added,
                Proto::Tcp,
                "0.0.0.0",
                40123,
                vec![],
                true,
            ),
        ],
    }
}

pub const POLICY: &str = "# /etc/portolan/web.toml\nname = \"web-server\"\n\n[[allow]]\nservice = \"ssh\"\nfrom = \"198.18.0.0/15\"\n\n[[allow]]\nservice = [\"http\", \"https\"]\n\n[[exception]]\nport = \"5353/udp\"\nreason = \"mDNS is accepted on this network\"\nexpires = 2027-01-01\n";

pub const RULESET: &str = "table inet portolan {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\tct state established,related accept\n\t\tiif \"lo\" accept\n\t\tip saddr 198.18.0.0/15 tcp dport 22 accept\n\t\ttcp dport { 80, 443 } accept\n\t}\n}\n";

pub fn run() -> RunInfo {
    RunInfo {
        started: "2026-12-01T19:40:00Z".into(),
        host: "web1.example.test".into(),
        command: "portolan report --policy /etc/portolan/web.toml --scan 198.18.0.2 --detect --since 1d -o report.html".into(),
        version: "0.1.0".into(),
    }
}

/// A realistic host with every section filled.
pub fn sample() -> ReportInput {
    let ls = listeners();
    let exposed = ls
        .iter()
        .filter(|l| l.exposure != portolan_model::Exposure::Loopback)
        .count();
    ReportInput {
        run: run(),
        policy: PolicyInfo {
            name: "web-server".into(),
            text: Some(POLICY.into()),
        },
        ruleset: Some(RULESET.into()),
        audit: Some(audit(findings(), ls.len(), exposed)),
        listeners: Some(ls),
        scans: vec![scan(scanned_ports())],
        diff: Some(diff()),
        ephemeral: Some(PortRange {
            first: 32768,
            last: 60999,
        }),
        warnings: vec![
            "2 processes' descriptors were unreadable; their sockets show the owner as unknown"
                .into(),
        ],
        history: None,
    }
}

/// What a hostile peer and a hostile local process put in front of the report.
pub const PAYLOADS: [&str; 6] = [
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "'><svg onload=alert(1)>",
    "</title><script>alert(1)</script>",
    "<!--</script><script>alert(1)</script>",
    "javascript:alert(1)//<iframe src=javascript:alert(1)>",
];

/// A report where every string a peer or a process controls carries markup.
pub fn hostile() -> ReportInput {
    let mut input = sample();
    let all = PAYLOADS.join(" ");
    let evil = process(
        6666,
        PAYLOADS[0],
        "/tmp/\"><img src=x onerror=alert(1)>",
        &all,
        PAYLOADS[1],
    );
    let mut l = listener(Proto::Tcp, "0.0.0.0", 4444, None, Some(evil.clone()));
    l.user = Some(PAYLOADS[2].into());
    input.listeners.as_mut().unwrap().push(l);
    let d = Detection {
        protocol: Some("http".into()),
        product: Some(PAYLOADS[0].into()),
        version: Some(PAYLOADS[1].into()),
        tls: Some(TlsInfo {
            version: Some("TLSv1.3".into()),
            cipher: None,
            subject: Some(format!("CN={}", PAYLOADS[1])),
            issuer: Some(format!("O={}", PAYLOADS[4])),
            not_after: None,
            alpn: Some(PAYLOADS[3].into()),
        }),
        cleartext: false,
        starttls: false,
        evidence: format!(
            "HTTP/1.1 200 OK; Server: {}; X-Evil: {}",
            PAYLOADS[0], PAYLOADS[1]
        ),
        unauthenticated: None,
    };
    input.scans[0].hosts[0].ports.push(port(
        4444,
        Proto::Tcp,
        PortState::Open,
        Some(PAYLOADS[5]),
        Some(d),
    ));
    let mut f = finding(
        Rule::UnknownServiceExposed,
        Severity::High,
        Some((4444, Proto::Tcp)),
        Some(PAYLOADS[3]),
        Some(evil),
        &format!("{} listens on 4444/tcp", PAYLOADS[0]),
        &format!("Stop it: `kill 6666 {}`", PAYLOADS[1]),
    );
    f.product = Some(PAYLOADS[0].into());
    let audit = input.audit.as_mut().unwrap();
    audit.findings.insert(1, f);
    audit.summary.findings += 1;
    input.warnings.push(PAYLOADS[4].into());
    input.diff.as_mut().unwrap().changes[2].fields[0].after = Some(PAYLOADS[1].into());
    input
}

/// `n` listeners on consecutive ports of one address, held by one process.
pub fn many(n: usize) -> ReportInput {
    let p = process(
        7000,
        "python3",
        "/usr/bin/python3.11",
        "python3 /opt/bench/fill.py --count 10000 --first 20000",
        "bench.service",
    );
    let ls: Vec<Listener> = (0..n)
        .map(|i| {
            let port = 20000 + (i % 45000) as u16;
            let mut l = listener(Proto::Tcp, TARGET, port, None, Some(p.clone()));
            l.inode = 1_000_000 + i as u64;
            l
        })
        .collect();
    ReportInput {
        run: run(),
        policy: PolicyInfo {
            name: "baseline".into(),
            text: None,
        },
        listeners: Some(ls),
        ephemeral: Some(PortRange {
            first: 32768,
            last: 60999,
        }),
        ..ReportInput::default()
    }
}

/// The number of findings of each severity in `input`, worst first.
pub fn severity_counts(input: &ReportInput) -> Vec<(Severity, usize)> {
    Severity::ALL
        .into_iter()
        .map(|s| {
            (
                s,
                input
                    .audit
                    .iter()
                    .flat_map(|a| &a.findings)
                    .filter(|f| f.severity == s)
                    .count(),
            )
        })
        .collect()
}
