//! Evaluation with plain data: exact finding sets for the baseline, a profile, scans,
//! exceptions and detection.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use portolan_audit::finding::Severity::{self, *};
use portolan_audit::policy::Policy;
use portolan_audit::{
    AuditReport as Report, Context, Date, Detection as Detected, Host, Inputs, Listener, PortState,
    Process, Rule, Scan, ScanReport, ScannedPort, evaluate, profiles,
};
use portolan_model::{HostResult, HostState, PortResult, Reason};
use portolan_registry::{PortRange, Proto, Registry};

struct FakeHost {
    packages: HashMap<PathBuf, String>,
}

impl Host for FakeHost {
    fn exe_risk(&self, exe: &Path) -> Option<String> {
        (exe == Path::new("/opt/shared/bin/agent")).then(|| "/opt/shared is world-writable".into())
    }
    fn package_of(&self, exe: &Path) -> Option<String> {
        self.packages.get(exe).cloned()
    }
}

fn host() -> FakeHost {
    let mut packages = HashMap::new();
    for (exe, pkg) in [
        ("/usr/sbin/inetd", "openbsd-inetd"),
        ("/usr/bin/redis-server", "redis-server"),
        ("/usr/sbin/vsftpd", "vsftpd"),
        ("/usr/sbin/nginx", "nginx-core"),
        ("/usr/sbin/named", "bind9"),
    ] {
        packages.insert(PathBuf::from(exe), pkg.to_string());
    }
    FakeHost { packages }
}

fn ctx<'a>(host: &'a FakeHost, policy_arg: Option<&str>) -> Context<'a> {
    Context {
        policy_arg: policy_arg.map(str::to_string),
        ..Context::new(Date::new(2026, 11, 27).unwrap(), Registry::embedded(), host)
    }
}

/// An owner, and whether systemd holds its socket (socket activation).
#[derive(Clone)]
struct Owner(Process, bool);

fn proc_(pid: u32, name: &str, exe: &str, unit: Option<&str>, socket: bool) -> Owner {
    let mut p = Process::new(pid, name);
    p.exe = Some(exe.into());
    p.user = Some("root".into());
    p.unit = unit.map(str::to_string);
    Owner(p, socket)
}

fn l(proto: Proto, addr: &str, port: u16, p: Option<Owner>) -> Listener {
    let mut l = Listener::new(proto, addr.parse().unwrap(), port);
    if let Some(Owner(p, socket)) = p {
        // A socket-activated owner's unit is what stops it: its socket unit.
        if socket {
            l.socket_activated = true;
            l.socket_unit = p.unit.as_deref().map(Into::into);
        }
        l = l.with_process(p);
    }
    l
}

fn tcp(addr: &str, port: u16, p: Option<Owner>) -> Listener {
    l(Proto::Tcp, addr, port, p)
}

/// The findings as (rule, port/proto, severity), in report order.
fn set(r: &Report) -> Vec<(Rule, String, Severity)> {
    r.findings
        .iter()
        .map(|f| (f.rule, f.port_label(), f.severity))
        .collect()
}

fn sshd() -> Option<Owner> {
    Some(proc_(
        700,
        "sshd",
        "/usr/sbin/sshd",
        Some("ssh.service"),
        false,
    ))
}

fn messy_host() -> Vec<Listener> {
    let inetd = proc_(
        812,
        "inetd",
        "/usr/sbin/inetd",
        Some("inetd.service"),
        false,
    );
    let redis = proc_(
        901,
        "redis-server",
        "/usr/bin/redis-server",
        Some("redis-server.service"),
        false,
    );
    vec![
        tcp("0.0.0.0", 22, sshd()),
        tcp("::", 22, sshd()),
        tcp("0.0.0.0", 23, Some(inetd.clone())),
        tcp("0.0.0.0", 6379, Some(redis.clone())),
        tcp("::", 6379, Some(redis)),
        tcp(
            "127.0.0.1",
            5432,
            Some(proc_(
                950,
                "postgres",
                "/usr/lib/postgresql/15/bin/postgres",
                Some("postgresql@15-main.service"),
                false,
            )),
        ),
        tcp(
            "0.0.0.0",
            47123,
            Some(proc_(1337, "kworkerd", "/tmp/.x/kworkerd", None, false)),
        ),
        tcp(
            "0.0.0.0",
            143,
            Some(proc_(
                990,
                "dovecot",
                "/usr/sbin/dovecot",
                Some("dovecot.service"),
                false,
            )),
        ),
        l(
            Proto::Udp,
            "0.0.0.0",
            41234,
            Some(proc_(600, "dhclient", "/usr/sbin/dhclient", None, false)),
        ),
        l(Proto::Udp, "127.0.0.53", 53, None),
        tcp("0.0.0.0", 7, Some(inetd)),
        tcp(
            "127.0.0.1",
            8125,
            Some(proc_(
                1400,
                "agent",
                "/opt/shared/bin/agent",
                Some("agent.service"),
                false,
            )),
        ),
    ]
}

#[test]
fn baseline_on_a_messy_host() {
    let h = host();
    let inputs = Inputs::inside(messy_host());
    let r = evaluate(&Policy::baseline(), &inputs, &ctx(&h, None));
    assert_eq!(
        set(&r),
        vec![
            (Rule::CleartextExposed, "23/tcp".into(), Critical),
            (Rule::LocalServiceExposed, "6379/tcp".into(), High),
            (Rule::WritableExecutable, "47123/tcp".into(), High),
            // An obsolete inetd service is a reflector for attacks on others: medium.
            (Rule::CleartextExposed, "7/tcp".into(), Medium),
            (Rule::CleartextExposed, "143/tcp".into(), Medium),
            (Rule::WritableExecutable, "8125/tcp".into(), Medium),
            (Rule::UnknownServiceExposed, "47123/tcp".into(), Medium),
            (Rule::EphemeralPort, "47123/tcp".into(), Low),
        ]
    );
    let telnet = &r.findings[0];
    assert_eq!(telnet.service.as_deref(), Some("telnet"));
    assert_eq!(telnet.process.as_deref(), Some("inetd"));
    assert!(
        telnet.remediation.text.contains("Use ssh instead"),
        "{}",
        telnet.remediation
    );
    assert!(
        telnet
            .remediation
            .text
            .contains("`systemctl disable --now inetd.service`")
    );
    assert!(
        telnet
            .remediation
            .text
            .contains("`apt-get purge openbsd-inetd`")
    );
    assert_eq!(telnet.evidence[0].package.as_deref(), Some("openbsd-inetd"));
    let redis = &r.findings[1];
    assert_eq!(redis.address.as_deref(), Some("0.0.0.0, ::"));
    assert!(
        redis.remediation.text.contains("bind 127.0.0.1 -::1"),
        "{}",
        redis.remediation
    );
    assert!(
        redis
            .remediation
            .text
            .contains("systemctl restart redis-server.service")
    );
    let eph = r
        .findings
        .iter()
        .find(|f| f.rule == Rule::EphemeralPort)
        .unwrap();
    assert!(eph.message.contains("32768-60999"), "{}", eph.message);
    assert!(
        eph.message.contains("overlaps IANA's registered ports"),
        "{}",
        eph.message
    );
    assert!(
        eph.remediation
            .text
            .contains("ip_local_reserved_ports = 47123")
    );
    // Following two such fixes must not leave only the last port reserved.
    assert!(
        !eph.remediation.text.contains("> /etc/sysctl.d")
            && eph
                .remediation
                .text
                .contains("keeping the ports already there"),
        "{}",
        eph.remediation
    );
    assert_eq!(r.summary.listeners, Some(12));
    assert_eq!(r.summary.exposed, Some(9));
    assert_eq!(r.summary.severities.critical, 1);
    assert!(r.summary.next_step.contains("portolan policy init"));
    assert!(r.fails(High));
    assert!(!r.fails(Critical.max(High)) || r.fails(Critical));
}

#[test]
fn baseline_report_snapshot() {
    let h = host();
    let inputs = Inputs::inside(messy_host());
    let r = evaluate(&Policy::baseline(), &inputs, &ctx(&h, None));
    insta::assert_json_snapshot!("baseline_messy_host", r);
}

#[test]
fn socket_activated_units_are_stopped_by_their_socket() {
    let h = host();
    let telnetd = proc_(
        3000,
        "in.telnetd",
        "/usr/sbin/in.telnetd",
        Some("telnet@0-198.18.0.2:23-198.18.0.1:40000.service"),
        true,
    );
    let inputs = Inputs::inside(vec![tcp("::", 23, Some(telnetd))]);
    let r = evaluate(&Policy::baseline(), &inputs, &ctx(&h, None));
    assert_eq!(
        set(&r),
        vec![(Rule::CleartextExposed, "23/tcp".into(), Critical)]
    );
    assert!(
        r.findings[0]
            .remediation
            .text
            .contains("`systemctl disable --now telnet.socket`")
    );
}

fn mail_host() -> Vec<Listener> {
    let postfix = || {
        Some(proc_(
            1000,
            "master",
            "/usr/lib/postfix/sbin/master",
            Some("postfix@-.service"),
            false,
        ))
    };
    let dovecot = || {
        Some(proc_(
            1100,
            "dovecot",
            "/usr/sbin/dovecot",
            Some("dovecot.service"),
            false,
        ))
    };
    let named = || {
        Some(proc_(
            1200,
            "named",
            "/usr/sbin/named",
            Some("named.service"),
            false,
        ))
    };
    vec![
        tcp("0.0.0.0", 22, sshd()),
        tcp("0.0.0.0", 25, postfix()),
        tcp("0.0.0.0", 465, postfix()),
        tcp("0.0.0.0", 587, postfix()),
        tcp("0.0.0.0", 993, dovecot()),
        tcp("0.0.0.0", 995, dovecot()),
        tcp(
            "0.0.0.0",
            21,
            Some(proc_(
                1300,
                "vsftpd",
                "/usr/sbin/vsftpd",
                Some("vsftpd.service"),
                false,
            )),
        ),
        tcp(
            "0.0.0.0",
            80,
            Some(proc_(
                1400,
                "nginx",
                "/usr/sbin/nginx",
                Some("nginx.service"),
                false,
            )),
        ),
        tcp("0.0.0.0", 53, named()),
        l(Proto::Udp, "0.0.0.0", 53, named()),
        l(
            Proto::Udp,
            "127.0.0.53",
            53,
            Some(proc_(
                500,
                "systemd-resolve",
                "/usr/lib/systemd/systemd-resolved",
                Some("systemd-resolved.service"),
                false,
            )),
        ),
        tcp(
            "127.0.0.1",
            8891,
            Some(proc_(
                1500,
                "opendkim",
                "/usr/sbin/opendkim",
                Some("opendkim.service"),
                false,
            )),
        ),
    ]
}

/// Judges `listeners` and `scan` against the mail-server profile on the test host,
/// with `policy_arg` for remediations.
fn mail_audit(
    listeners: Option<Vec<Listener>>,
    scan: Option<Scan>,
    policy_arg: Option<&str>,
) -> Report {
    let h = host();
    let policy = profiles::load("mail-server", Registry::embedded()).unwrap();
    let inputs = Inputs {
        listeners,
        scan,
        netns: None,
    };
    evaluate(&policy, &inputs, &ctx(&h, policy_arg))
}

#[test]
fn mail_server_profile_inside_view() {
    let r = mail_audit(Some(mail_host()), None, Some("--profile mail-server"));
    assert_eq!(
        set(&r),
        vec![
            // The severity model: ftp can upgrade to TLS, dns and http are "other" (medium
            // on all interfaces, no scan).
            (Rule::CleartextForbidden, "21/tcp".into(), Medium),
            (Rule::BindMismatch, "53/tcp".into(), Medium),
            (Rule::BindMismatch, "53/udp".into(), Medium),
            (Rule::NotAllowed, "80/tcp".into(), Medium),
            (Rule::NotAllowed, "8891/tcp".into(), Low),
        ]
    );
    let ftp = &r.findings[0];
    assert!(
        ftp.remediation
            .text
            .contains("`systemctl disable --now vsftpd.service`")
    );
    assert!(ftp.remediation.text.contains("`apt-get purge vsftpd`"));
    let dns = &r.findings[1];
    assert!(
        dns.message.contains("allowed to bind loopback only"),
        "{}",
        dns.message
    );
    let http = &r.findings[3];
    assert!(
        http.remediation
            .text
            .contains("`portolan firewall --profile mail-server`"),
        "{}",
        http.remediation
    );
    assert!(
        r.summary
            .next_step
            .contains("portolan firewall --profile mail-server --apply")
    );
}

/// The address a test target stands for.
fn addr_of(target: &str) -> std::net::IpAddr {
    target.parse().unwrap_or("198.18.0.1".parse().unwrap())
}

fn open_port(
    host: std::net::IpAddr,
    proto: Proto,
    port: u16,
    detected: Option<Detected>,
) -> ScannedPort {
    ScannedPort {
        result: PortResult {
            host,
            port,
            proto,
            state: PortState::Open,
            reason: Reason::SynAck,
            rtt: None,
            ttl: None,
        },
        service: None,
        detected,
    }
}

fn scan_of(target: &str, local: bool, open: &[(Proto, u16)], ports: &[(Proto, u16, u16)]) -> Scan {
    let host = addr_of(target);
    let mut report = ScanReport {
        targets: vec![target.into()],
        ..ScanReport::default()
    };
    for &(p, a, b) in ports {
        report
            .coverage
            .add(host, p, &[PortRange::new(a, b).unwrap()]);
    }
    report.hosts.push(HostResult {
        host,
        state: HostState::Up,
        reason: Reason::UserSet,
        rtt: None,
        ports: open
            .iter()
            .map(|&(proto, port)| open_port(host, proto, port, None))
            .collect(),
        ..HostResult::new(host, HostState::Up, Reason::UserSet)
    });
    Scan {
        target: target.into(),
        local,
        source: None,
        from_itself: false,
        host_addresses: Vec::new(),
        report,
    }
}

/// The `i`th port result of a test scan.
fn result(scan: &mut Scan, i: usize) -> &mut ScannedPort {
    &mut scan.report.hosts[0].ports[i]
}

#[test]
fn inside_and_outside_views_combined() {
    // The firewall lets 22, 25, 465, 587, 993, 995 and 53/tcp through; 21 and 80 are
    // filtered; 9999 answers though nothing here listens on it (a DNAT to a container).
    let open = [22, 25, 465, 587, 993, 995, 53, 9999].map(|p| (Proto::Tcp, p));
    let r = mail_audit(
        Some(mail_host()),
        Some(scan_of("this-host", true, &open, &[(Proto::Tcp, 1, 65535)])),
        Some("--profile mail-server"),
    );
    assert_eq!(
        set(&r),
        vec![
            // Reached: "other" services at their base (reach confirms it).
            (Rule::BindMismatch, "53/tcp".into(), Medium),
            // UDP was not scanned: not checked, unchanged.
            (Rule::BindMismatch, "53/udp".into(), Medium),
            (Rule::NotAllowed, "9999/tcp".into(), Medium),
            (Rule::ReachableWithoutListener, "9999/tcp".into(), Medium),
            // Probed and filtered: one step milder.
            (Rule::CleartextForbidden, "21/tcp".into(), Low),
            (Rule::NotAllowed, "80/tcp".into(), Low),
            (Rule::NotAllowed, "8891/tcp".into(), Low),
        ]
    );
    let dns = &r.findings[0];
    assert_eq!(dns.reachable, Some(true));
    assert!(
        dns.message.contains("reachable from the scan"),
        "{}",
        dns.message
    );
    let http = r.findings.iter().find(|f| f.port == Some(80)).unwrap();
    assert_eq!(http.reachable, Some(false));
    assert!(
        http.message.contains("listening but not reachable"),
        "{}",
        http.message
    );
    assert_eq!(r.summary.reachable, Some(8));
}

#[test]
fn remote_scan_alone() {
    let open = [(Proto::Tcp, 22), (Proto::Tcp, 23), (Proto::Tcp, 993)];
    let r = mail_audit(
        None,
        Some(scan_of(
            "198.18.0.2",
            false,
            &open,
            &[(Proto::Tcp, 1, 1024)],
        )),
        None,
    );
    assert_eq!(
        set(&r),
        vec![
            (Rule::CleartextForbidden, "23/tcp".into(), Critical),
            (Rule::RequiredMissing, "25/tcp".into(), High),
        ]
    );
    assert_eq!(r.findings[0].address.as_deref(), Some("198.18.0.2"));
    assert!(
        r.findings[1]
            .message
            .contains("not reachable on 198.18.0.2")
    );
    // Port 25 not scanned: nothing can be said about it.
    let scan = scan_of("198.18.0.2", false, &open[..1], &[(Proto::Tcp, 1, 24)]);
    assert!(set(&mail_audit(None, Some(scan), None)).is_empty());
}

const POLICY: &str = r#"
name = "app"
require = ["https", "postgresql"]
forbid-cleartext = ["telnet", "imap"]

[[allow]]
service = "https"

[[allow]]
service = "imap"

[[allow]]
service = "ssh"
from = ["198.18.0.0/24"]

[[allow]]
service = "postgresql"
bind = "loopback"

[[exception]]
service = "8080/tcp"
reason = "legacy admin UI until the migration (TICKET-12)"
expires = 2027-01-31

[[exception]]
rule = "ephemeral-port"
process = "node"
reason = "the node app picks its port"

[[exception]]
service = "9000/tcp"
reason = "old exception"
expires = 2026-01-01
"#;

fn app_policy() -> Policy {
    Policy::parse(POLICY, "app.toml", Registry::embedded()).unwrap()
}

#[test]
fn exceptions_hold_back_until_they_expire() {
    let h = host();
    let node = proc_(2000, "node", "/usr/bin/node", Some("app.service"), false);
    let inputs = Inputs::inside(vec![
        tcp("0.0.0.0", 443, None),
        tcp("0.0.0.0", 8080, Some(node.clone())),
        tcp("127.0.0.1", 40000, Some(node)),
        tcp("0.0.0.0", 9000, None),
        tcp("127.0.0.1", 5432, None),
    ]);
    let r = evaluate(&app_policy(), &inputs, &ctx(&h, None));
    assert_eq!(
        set(&r),
        vec![
            (Rule::NotAllowed, "9000/tcp".into(), Medium),
            (Rule::ExceptionExpired, String::new(), Low),
            (Rule::NotAllowed, "40000/tcp".into(), Low),
        ]
    );
    assert!(
        r.findings[0].message.contains("expired on 2026-01-01"),
        "{}",
        r.findings[0].message
    );
    assert!(
        r.findings[1].remediation.text.contains("line 30"),
        "{}",
        r.findings[1].remediation
    );
    let held: Vec<_> = r.suppressed.iter().map(|s| (s.rule, s.port)).collect();
    assert_eq!(
        held,
        vec![
            (Rule::NotAllowed, Some(8080)),
            (Rule::EphemeralPort, Some(40000))
        ]
    );
    assert_eq!(r.summary.suppressed, 2);
    // After the first exception expires, 8080 is reported again.
    let mut c = ctx(&h, None);
    c.today = Date::new(2027, 2, 1).unwrap();
    let r = evaluate(&app_policy(), &inputs, &c);
    assert!(
        r.findings
            .iter()
            .any(|f| f.port == Some(8080) && f.rule == Rule::NotAllowed)
    );
}

#[test]
fn required_services_and_sources() {
    let h = host();
    let mut scan = scan_of(
        "this-host",
        true,
        &[(Proto::Tcp, 22)],
        &[(Proto::Tcp, 1, 1024)],
    );
    scan.source = Some("203.0.113.50".parse().unwrap());
    let inputs = Inputs {
        listeners: Some(vec![tcp("0.0.0.0", 22, sshd()), tcp("0.0.0.0", 443, None)]),
        scan: Some(scan),
        netns: None,
    };
    let r = evaluate(&app_policy(), &inputs, &ctx(&h, None));
    assert_eq!(
        set(&r),
        vec![
            (Rule::SourceNotEnforced, "22/tcp".into(), Medium),
            (Rule::RequiredMissing, "5432/tcp".into(), High),
            (Rule::ExceptionExpired, String::new(), Low),
            (Rule::RequiredUnreachable, "443/tcp".into(), Medium),
        ]
        .tap_sort()
    );
    let src = r
        .findings
        .iter()
        .find(|f| f.rule == Rule::SourceNotEnforced)
        .unwrap();
    assert!(src.message.contains("203.0.113.50"), "{}", src.message);
    assert!(src.message.contains("198.18.0.0/24"), "{}", src.message);
}

trait TapSort {
    fn tap_sort(self) -> Self;
}

impl TapSort for Vec<(Rule, String, Severity)> {
    /// The report's order: worst first, then port.
    fn tap_sort(mut self) -> Self {
        self.sort_by(|a, b| {
            b.2.cmp(&a.2).then_with(|| {
                let port = |s: &str| s.split('/').next().and_then(|p| p.parse::<u16>().ok());
                port(&a.1).cmp(&port(&b.1))
            })
        });
        self
    }
}

#[test]
fn detection_decides_starttls() {
    let h = host();
    let with = |detected: Option<Detected>| {
        let mut scan = scan_of(
            "this-host",
            true,
            &[(Proto::Tcp, 143)],
            &[(Proto::Tcp, 143, 143)],
        );
        result(&mut scan, 0).detected = detected;
        Inputs {
            listeners: Some(vec![
                tcp("0.0.0.0", 143, None),
                tcp("0.0.0.0", 443, None),
                tcp("127.0.0.1", 5432, None),
            ]),
            scan: Some(scan),
            netns: None,
        }
    };
    let imap = |starttls| Detected {
        protocol: Some("imap".into()),
        product: Some("Dovecot imapd".into()),
        starttls,
        cleartext: !starttls,
        ..Detected::default()
    };
    let only = |r: Report| -> Vec<(Rule, String, Severity)> {
        set(&r)
            .into_iter()
            .filter(|f| f.0 != Rule::ExceptionExpired)
            .collect()
    };
    // STARTTLS offered: imap is allowed and not cleartext.
    assert!(
        only(evaluate(
            &app_policy(),
            &with(Some(imap(true))),
            &ctx(&h, None)
        ))
        .is_empty()
    );
    // No STARTTLS offered: plain cleartext (high); reached, but reach alone never makes
    // a finding critical.
    let r = evaluate(&app_policy(), &with(Some(imap(false))), &ctx(&h, None));
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == Rule::CleartextForbidden)
        .unwrap();
    assert_eq!(f.severity, High);
    assert_eq!(f.product.as_deref(), Some("Dovecot imapd"));
    assert!(f.remediation.text.contains("STARTTLS"), "{}", f.remediation);
    // No detection: an informational note that the audit cannot tell.
    let r = evaluate(&app_policy(), &with(None), &ctx(&h, None));
    assert_eq!(
        only(r),
        vec![(Rule::CleartextForbidden, "143/tcp".into(), Info)]
    );
    // Telnet heard on a non-standard port is still telnet.
    let mut inputs = with(None);
    inputs
        .listeners
        .as_mut()
        .unwrap()
        .push(tcp("0.0.0.0", 2323, None));
    let scan = inputs.scan.as_mut().unwrap();
    let host = addr_of("this-host");
    scan.report
        .coverage
        .add(host, Proto::Tcp, &[PortRange::single(2323)]);
    scan.report.hosts[0].ports.push(open_port(
        host,
        Proto::Tcp,
        2323,
        Some(Detected {
            protocol: Some("telnet".into()),
            cleartext: true,
            ..Detected::default()
        }),
    ));
    let r = evaluate(&app_policy(), &inputs, &ctx(&h, None));
    assert!(r.findings.iter().any(|f| f.rule == Rule::CleartextForbidden
        && f.port == Some(2323)
        && f.severity == Critical));
}

#[test]
fn loopback_and_namespaces() {
    let h = host();
    let ws = profiles::load("workstation", Registry::embedded()).unwrap();
    let mut other_ns = tcp("0.0.0.0", 8080, None);
    other_ns.netns = "container1".into();
    let inputs = Inputs::inside(vec![
        tcp("127.0.0.1", 631, None),
        tcp("::1", 3000, None),
        l(Proto::Udp, "0.0.0.0", 5353, None),
        l(Proto::Udp, "0.0.0.0", 68, None),
        l(Proto::Udp, "0.0.0.0", 51000, None),
        other_ns,
    ]);
    let r = evaluate(&ws, &inputs, &ctx(&h, None));
    assert_eq!(set(&r), vec![(Rule::NotAllowed, "8080/tcp".into(), Medium)]);
    assert!(
        r.findings[0].message.contains("netns container1"),
        "{}",
        r.findings[0].message
    );
}

#[test]
fn a_scan_from_the_host_itself_says_nothing_about_the_firewall() {
    let open = [25, 80].map(|p| (Proto::Tcp, p));
    let mut scan = scan_of("this-host", true, &open, &[(Proto::Tcp, 1, 65535)]);
    scan.from_itself = true;
    result(&mut scan, 0).detected = Some(Detected {
        protocol: Some("smtp".into()),
        product: Some("Postfix smtpd".into()),
        starttls: true,
        ..Detected::default()
    });
    let r = mail_audit(
        Some(vec![
            tcp("0.0.0.0", 25, None),
            tcp("0.0.0.0", 80, None),
            tcp("0.0.0.0", 22, None),
        ]),
        Some(scan),
        None,
    );
    // Through loopback every port answers: no "reachable", no "filtered", no raise.
    assert_eq!(set(&r), vec![(Rule::NotAllowed, "80/tcp".into(), Medium)]);
    assert_eq!(r.findings[0].reachable, None);
    assert_eq!(r.summary.reachable, None);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn listener() -> impl Strategy<Value = Listener> {
        (
            any::<bool>(),
            prop_oneof![
                Just("0.0.0.0"),
                Just("::"),
                Just("127.0.0.1"),
                Just("::1"),
                Just("192.0.2.7")
            ],
            prop_oneof![
                1u16..1024,
                1024u16..65535,
                Just(23u16),
                Just(6379u16),
                Just(25u16)
            ],
            proptest::option::of(prop_oneof![
                Just("/usr/sbin/daemon"),
                Just("/tmp/x"),
                Just("/usr/bin/python3")
            ]),
        )
            .prop_map(|(udp, addr, port, exe)| {
                let proto = if udp { Proto::Udp } else { Proto::Tcp };
                let p = exe.map(|e| proc_(4242, "d", e, None, false));
                l(proto, addr, port, p)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Any listeners, any profile: findings sorted worst first, counts that add up,
        /// every finding about a port some input has, and a remediation for each.
        #[test]
        fn reports_are_consistent(ls in proptest::collection::vec(listener(), 0..40), which in 0usize..8) {
            let h = host();
            let policy = match which {
                0 => Policy::baseline(),
                n => profiles::PROFILES[n - 1].policy(Registry::embedded()).unwrap(),
            };
            let inputs = Inputs::inside(ls.clone());
            let r = evaluate(&policy, &inputs, &ctx(&h, None));
            for w in r.findings.windows(2) {
                prop_assert!(w[0].severity >= w[1].severity);
            }
            let c = r.summary.severities;
            prop_assert_eq!(c.critical + c.high + c.medium + c.low + c.info, r.findings.len());
            for f in &r.findings {
                prop_assert!(!f.message.is_empty() && !f.remediation.text.is_empty());
                if let (Some(p), Some(proto)) = (f.port, f.protocol) {
                    let from_input = ls.iter().any(|l| l.port == p && l.protocol == proto);
                    let required = f.rule == Rule::RequiredMissing;
                    prop_assert!(from_input || required, "{:?}", f);
                }
            }
            // Loopback-only inputs never give anything worse than medium.
            if ls.iter().all(|l| l.address.is_loopback()) {
                prop_assert!(r.findings.iter().all(|f| f.severity <= Medium || f.rule == Rule::RequiredMissing));
            }
        }
    }
}

/// The audit's own `Exposure::of` called a socket bound to `lo` exposed and missed
/// `::ffff:0.0.0.0`; it now uses the model's, which the inventory uses too.
#[test]
fn exposure_of_lo_bound_and_v4_mapped_wildcard() {
    let h = host();
    let bound_to_lo = tcp("0.0.0.0", 6379, None).with_interface("lo");
    let mapped_any = tcp("::ffff:0.0.0.0", 6380, None);
    let inputs = Inputs::inside(vec![bound_to_lo, mapped_any]);
    let r = evaluate(&Policy::baseline(), &inputs, &ctx(&h, None));
    assert_eq!(r.summary.exposed, Some(1));
    assert!(r.findings.iter().all(|f| f.port != Some(6379)), "{r:#?}");
    assert!(r.findings.iter().any(|f| f.port == Some(6380)), "{r:#?}");
}

/// A finding's fingerprint is its identity: the same problem after a restart (another
/// pid) has the same one; another port has another.
#[test]
fn fingerprints_survive_a_restart() {
    let h = host();
    let run = |pid: u32, port: u16| {
        let inputs = Inputs::inside(vec![tcp(
            "0.0.0.0",
            port,
            Some(proc_(
                pid,
                "inetd",
                "/usr/sbin/inetd",
                Some("inetd.service"),
                false,
            )),
        )]);
        evaluate(&Policy::baseline(), &inputs, &ctx(&h, None)).findings
    };
    let (a, b, c) = (run(812, 23), run(4242, 23), run(812, 2323));
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].fingerprint, b[0].fingerprint);
    assert_eq!(a[0].fingerprint.len(), 16);
    assert!(c.iter().all(|f| f.fingerprint != a[0].fingerprint));
    assert_eq!(
        a[0].addresses,
        vec!["0.0.0.0".parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(
        a[0].remediation
            .commands
            .iter()
            .any(|c| c == "systemctl disable --now inetd.service")
    );
}

/// The listener's namespace label is kept: as data in every finding about it, and in
/// the message when it is not the namespace the audit is about.
#[test]
fn namespace_labels_are_kept() {
    let h = host();
    let mut other = tcp("0.0.0.0", 23, None);
    other.netns = "container1".into();
    let mut own = tcp("0.0.0.0", 23, None);
    own.netns = "ns-a".into();
    let inputs = Inputs {
        listeners: Some(vec![own, other]),
        scan: None,
        netns: Some("ns-a".into()),
    };
    let r = evaluate(&Policy::baseline(), &inputs, &ctx(&h, None));
    let labels: Vec<Option<&str>> = r.findings.iter().map(|f| f.netns.as_deref()).collect();
    assert!(labels.contains(&Some("ns-a")) && labels.contains(&Some("container1")));
    for f in &r.findings {
        assert_eq!(
            f.message.contains("(netns container1)"),
            f.netns.as_deref() == Some("container1"),
            "{}",
            f.message
        );
    }
    assert_ne!(r.findings[0].fingerprint, r.findings[1].fingerprint);
}

/// Issue 10 item 10: `policy init` on a socket bound to `lo` (`*%lo`, SO_BINDTODEVICE)
/// writes a policy the audit accepts for it: no bind mismatch.
#[test]
fn policy_init_round_trips_a_socket_bound_to_an_interface() {
    use portolan_audit::init::{InitOptions, starting_policy};
    let ls = vec![
        tcp("0.0.0.0", 8125, sshd()).with_interface("lo"),
        tcp("::", 8125, sshd()).with_interface("lo"),
        tcp("0.0.0.0", 22, sshd()),
    ];
    let text = starting_policy(
        &ls,
        Registry::embedded(),
        InitOptions {
            name: "bed",
            today: Date::new(2026, 11, 27).unwrap(),
            ephemeral: PortRange::new(32768, 60999).unwrap(),
        },
    );
    let policy = Policy::parse(&text, "init.toml", Registry::embedded())
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let h = host();
    let r = evaluate(
        &policy,
        &Inputs::inside(ls),
        &ctx(&h, Some("--policy init.toml")),
    );
    assert!(
        !r.findings.iter().any(|f| f.port == Some(8125)),
        "{text}\n{:#?}",
        set(&r)
    );
}

/// Issue 10 item 7: an exposed listener whose owner can't be seen gets a finding under the
/// baseline, saying why: unreadable descriptors, or no owner at all (the kernel, or
/// another PID namespace). The case is built by hand, not taken from this machine.
#[test]
fn unknown_owner_exposed_is_reported_under_the_baseline() {
    let mut unreadable = tcp("0.0.0.0", 2025, None);
    unreadable.owner_unknown = true;
    let ls = vec![
        unreadable,
        tcp("::", 2026, None),
        tcp("127.0.0.1", 2027, None),
        tcp("0.0.0.0", 22, sshd()),
    ];
    let h = host();
    let r = evaluate(&Policy::baseline(), &Inputs::inside(ls), &ctx(&h, None));
    let found: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.rule == Rule::UnknownOwnerExposed)
        .collect();
    assert_eq!(
        found.iter().map(|f| f.port.unwrap()).collect::<Vec<_>>(),
        [2025, 2026],
        "{:#?}",
        set(&r)
    );
    assert!(
        found[0].message.contains("could not be read"),
        "{}",
        found[0].message
    );
    assert!(
        found[1].message.contains("another PID namespace"),
        "{}",
        found[1].message
    );
    assert!(found.iter().all(|f| f.severity == Medium));
}

/// Issue 10, item 6: one severity model. Telnet on all interfaces is critical whichever
/// rule fires (the baseline's `cleartext-exposed`, an empty policy's `not-allowed`, the
/// mail-server profile's `cleartext-forbidden`), and moves the same way with exposure and
/// with what a scan measured.
#[test]
fn item6_same_severity_under_baseline_policy_and_profile() {
    let h = host();
    let inetd = proc_(
        812,
        "inetd",
        "/usr/sbin/inetd",
        Some("inetd.service"),
        false,
    );
    let empty = Policy::parse("name = \"empty\"\n", "empty.toml", Registry::embedded()).unwrap();
    let mail = profiles::load("mail-server", Registry::embedded()).unwrap();
    let policies = [
        (Policy::baseline(), Rule::CleartextExposed),
        (empty, Rule::NotAllowed),
        (mail, Rule::CleartextForbidden),
    ];
    let ports = [(Proto::Tcp, 1, 65535)];
    let cases: Vec<(&str, &str, Option<Scan>, Severity)> = vec![
        ("all interfaces, no scan", "0.0.0.0", None, Critical),
        (
            "all interfaces, reached",
            "0.0.0.0",
            Some(scan_of("this-host", true, &[(Proto::Tcp, 23)], &ports)),
            Critical,
        ),
        (
            "all interfaces, probed and not reached",
            "0.0.0.0",
            Some(scan_of("this-host", true, &[], &ports)),
            High,
        ),
        (
            "all interfaces, port not probed",
            "0.0.0.0",
            Some(scan_of("this-host", true, &[], &[(Proto::Tcp, 1, 22)])),
            Critical,
        ),
        ("one address, no scan", "198.18.0.1", None, High),
        (
            "one address, reached",
            "198.18.0.1",
            Some(scan_of("this-host", true, &[(Proto::Tcp, 23)], &ports)),
            Critical,
        ),
    ];
    for (what, addr, scan, want) in cases {
        for (policy, rule) in &policies {
            let inputs = Inputs {
                listeners: Some(vec![tcp(addr, 23, Some(inetd.clone()))]),
                scan: scan.clone(),
                netns: None,
            };
            let r = evaluate(policy, &inputs, &ctx(&h, None));
            let telnet: Vec<_> = set(&r).into_iter().filter(|f| f.1 == "23/tcp").collect();
            assert_eq!(
                telnet,
                vec![(*rule, "23/tcp".to_string(), want)],
                "telnet on {what} under {}",
                policy.name
            );
        }
    }
    // Loopback only: low under a policy (the baseline says nothing about loopback).
    for (policy, _) in &policies[1..] {
        let inputs = Inputs::inside(vec![tcp("127.0.0.1", 23, Some(inetd.clone()))]);
        let r = evaluate(policy, &inputs, &ctx(&h, None));
        let sev: Vec<Severity> = r
            .findings
            .iter()
            .filter(|f| f.port == Some(23))
            .map(|f| f.severity)
            .collect();
        assert_eq!(sev, vec![Low], "loopback telnet under {}", policy.name);
    }
    // A database: high under the baseline and an empty policy alike.
    let rules = [Rule::LocalServiceExposed, Rule::NotAllowed];
    for ((policy, _), rule) in policies[..2].iter().zip(rules) {
        let inputs = Inputs::inside(vec![tcp("0.0.0.0", 3306, None)]);
        let r = evaluate(policy, &inputs, &ctx(&h, None));
        assert_eq!(
            set(&r),
            vec![(rule, "3306/tcp".to_string(), High)],
            "{}",
            policy.name
        );
    }
}

/// Issue 10, item 6: ten findings of a mail-server audit, every port reached by the scan,
/// are ranked by the service's risk: telnet on all interfaces above http on a mail
/// server, redis that answered without a password above a database that asks for one.
#[test]
fn item6_findings_are_ranked() {
    let tcp_ports = [23, 21, 80, 3306, 6379, 873, 19, 8080, 9999];
    let mut listeners: Vec<Listener> = tcp_ports.iter().map(|&p| tcp("0.0.0.0", p, None)).collect();
    listeners.push(l(Proto::Udp, "0.0.0.0", 161, None));
    let mut open: Vec<(Proto, u16)> = tcp_ports.iter().map(|&p| (Proto::Tcp, p)).collect();
    open.push((Proto::Udp, 161));
    let mut scan = scan_of(
        "this-host",
        true,
        &open,
        &[(Proto::Tcp, 1, 65535), (Proto::Udp, 161, 161)],
    );
    let redis = tcp_ports.iter().position(|&p| p == 6379).unwrap();
    result(&mut scan, redis).detected = Some(Detected {
        protocol: Some("redis".into()),
        cleartext: true,
        unauthenticated: Some(true),
        ..Detected::default()
    });
    let r = mail_audit(Some(listeners), Some(scan), Some("--profile mail-server"));
    let ranked: Vec<(String, Severity)> = r
        .findings
        .iter()
        .filter(|f| f.rule != Rule::RequiredMissing)
        .map(|f| (f.port_label(), f.severity))
        .collect();
    assert_eq!(
        ranked,
        vec![
            // A cleartext remote shell; a key-value store that served an anonymous client.
            ("23/tcp".to_string(), Critical),
            ("6379/tcp".to_string(), Critical),
            // SNMP v1/v2c and rsync in cleartext, a database.
            ("161/udp".to_string(), High),
            ("873/tcp".to_string(), High),
            ("3306/tcp".to_string(), High),
            // chargen, ftp (can upgrade to TLS), http, a proxy, an unknown port.
            ("19/tcp".to_string(), Medium),
            ("21/tcp".to_string(), Medium),
            ("80/tcp".to_string(), Medium),
            ("8080/tcp".to_string(), Medium),
            ("9999/tcp".to_string(), Medium),
        ]
    );
}

/// Issue 10, item 9: a process the policy wants off one port but that also serves a port
/// the policy allows. The remediation says that stopping it stops the allowed service
/// too, and offers the bind fix and the firewall first, the stop (`systemctl`, `kill`)
/// last.
#[test]
fn item9_stop_is_last_when_the_process_also_serves_allowed_ports() {
    let h = host();
    let nginx = proc_(
        123,
        "nginx",
        "/usr/sbin/nginx",
        Some("nginx.service"),
        false,
    );
    let mut stray = Process::new(124, "python3");
    stray.exe = Some("/usr/bin/python3".into());
    stray.cmdline = "python3 -m http.server 8000".into();
    let stray = Some(Owner(stray, false));
    let mut web = Process::new(125, "web");
    web.exe = Some("/opt/web/bin/web".into());
    let web = Some(Owner(web, false));
    let inputs = Inputs::inside(vec![
        tcp("0.0.0.0", 443, Some(nginx.clone())),
        tcp("0.0.0.0", 8081, Some(nginx)),
        tcp("0.0.0.0", 8000, stray),
        // One process without a unit serving an allowed and a forbidden port.
        tcp("0.0.0.0", 22, web.clone()),
        tcp("0.0.0.0", 23, web),
    ]);
    let r = evaluate(&app_policy(), &inputs, &ctx(&h, Some("--policy app.toml")));
    let at = |port: u16| {
        r.findings
            .iter()
            .find(|f| f.port == Some(port))
            .unwrap_or_else(|| panic!("{port}: {:#?}", r.findings))
    };
    let first_index = |f: &portolan_audit::Finding, prefix: &str| {
        f.remediation
            .commands
            .iter()
            .position(|c| c.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in {:#?}", f.remediation))
    };

    let f = at(8081);
    assert_eq!(f.rule, Rule::NotAllowed);
    let text = &f.remediation.text;
    assert!(
        text.starts_with(
            "pid 123 (nginx) also serves 443/tcp, which the policy allows: stopping it stops that too."
        ),
        "{text}"
    );
    let bind = text.find("stop listening on 8081/tcp").expect(text);
    let stop = text
        .find("systemctl disable --now nginx.service")
        .expect(text);
    assert!(bind < stop, "{text}");
    assert!(
        first_index(f, "portolan firewall") < first_index(f, "systemctl disable"),
        "{:#?}",
        f.remediation
    );
    assert_eq!(
        f.remediation.commands.last().map(String::as_str),
        Some("systemctl disable --now nginx.service"),
        "{:#?}",
        f.remediation
    );

    // Forbidden cleartext from a process without a unit: `kill` comes last.
    let f = at(23);
    assert_eq!(f.rule, Rule::CleartextForbidden);
    let text = &f.remediation.text;
    assert!(
        text.contains(
            "pid 125 (web) also serves 22/tcp, which the policy allows: stopping it stops that too."
        ),
        "{text}"
    );
    assert!(
        first_index(f, "portolan firewall") < first_index(f, "kill 125"),
        "{:#?}",
        f.remediation
    );
    assert!(
        text.find("stop listening on 23/tcp").unwrap() < text.find("`kill 125`").unwrap(),
        "{text}"
    );

    // A process that serves nothing the policy allows: stopping it is the fix.
    let f = at(8000);
    assert!(
        !f.remediation.text.contains("also serves"),
        "{}",
        f.remediation
    );
    assert!(
        first_index(f, "kill 124") < first_index(f, "portolan firewall"),
        "{:#?}",
        f.remediation
    );

    // The allowed port itself is no finding.
    assert!(r.findings.iter().all(|f| f.port != Some(443)));
}

/// A host with world-writable directories (some with the sticky bit), and the command
/// lines and working directories of its processes.
#[derive(Default)]
struct ScriptHost {
    /// (directory, sticky)
    writable: Vec<(&'static str, bool)>,
    argv: HashMap<u32, Vec<String>>,
    cwd: HashMap<u32, PathBuf>,
    missing: Vec<&'static str>,
}

impl Host for ScriptHost {
    fn exe_risk(&self, exe: &Path) -> Option<String> {
        // As the live host: a world-writable directory on the path, without the sticky bit.
        exe.ancestors().skip(1).find_map(|d| {
            self.writable
                .iter()
                .find(|(w, sticky)| Path::new(w) == d && !sticky)
                .map(|(w, _)| format!("{w} is world-writable"))
        })
    }
    fn package_of(&self, _exe: &Path) -> Option<String> {
        None
    }
    fn argv(&self, pid: u32) -> Option<Vec<String>> {
        self.argv.get(&pid).cloned()
    }
    fn cwd(&self, pid: u32) -> Option<PathBuf> {
        self.cwd.get(&pid).cloned()
    }
    fn others_can_create_in(&self, dir: &Path) -> bool {
        self.writable.iter().any(|(w, _)| Path::new(w) == dir)
    }
    fn exists(&self, path: &Path) -> bool {
        !self.missing.iter().any(|m| Path::new(m) == path)
    }
}

/// Issue 10, item 8: `writable-executable` judges the code an interpreter runs, not only
/// the interpreter's binary: the script (resolved against the working directory), a jar,
/// and the directory python imports from first. Code given with `-c` has no file.
#[test]
fn item8_writable_executable_judges_interpreted_code() {
    let mut host = ScriptHost {
        writable: vec![("/srv/drop", false), ("/srv/shared", true)],
        missing: vec!["/srv/drop/worker"],
        ..ScriptHost::default()
    };
    // (pid, exe, cmdline, cwd, live argv when it differs from the cmdline split)
    let cases: &[(u32, &str, &str, &str)] = &[
        (
            10,
            "/usr/bin/python3.11",
            "/usr/bin/python3 /srv/drop/x/evil.py 4444",
            "/",
        ),
        (
            11,
            "/usr/bin/python3.11",
            "python3 -u ./evil.py",
            "/srv/drop",
        ),
        (
            12,
            "/usr/bin/python3.11",
            "python3 -u -m http.server 8000",
            "/srv/drop",
        ),
        (
            13,
            "/usr/bin/python3.11",
            "python3 -c import_this",
            "/srv/drop/..",
        ),
        (
            14,
            "/usr/lib/jvm/java-17/bin/java",
            "java -Xmx1g -jar /srv/drop/app.jar",
            "/",
        ),
        (
            15,
            "/usr/bin/perl",
            "perl -w /usr/share/app/srv.pl",
            "/srv/drop",
        ),
        (16, "/usr/bin/bash", "bash -c exec_nc", "/srv/drop"),
        (17, "/usr/bin/python3.11", "python3 /srv/shared/app.py", "/"),
        (
            18,
            "/usr/bin/python3.11",
            "python3 -I /srv/shared/app.py",
            "/",
        ),
        (19, "/usr/bin/node", "node --inspect srv.js", "/srv/drop"),
        (20, "/usr/bin/python3.11", "python3 srv.py", "/srv/drop"),
        // A process that rewrote its command line: no such file.
        (
            21,
            "/usr/bin/python3.11",
            "gunicorn: worker [app]",
            "/srv/drop",
        ),
    ];
    let mut listeners = Vec::new();
    for (i, &(pid, exe, cmd, cwd)) in cases.iter().enumerate() {
        let mut p = Process::new(pid, "interp");
        p.exe = Some(exe.into());
        p.cmdline = cmd.into();
        host.cwd.insert(pid, cwd.into());
        listeners.push(tcp("0.0.0.0", 4440 + i as u16, Some(Owner(p, false))));
    }
    // pid 20's pid was reused since the inventory: its live command line is another
    // one, so neither it nor its working directory is trusted.
    host.argv
        .insert(20, vec!["python3".into(), "other.py".into()]);
    // pid 11's live arguments agree with the inventory.
    host.argv
        .insert(11, vec!["python3".into(), "-u".into(), "./evil.py".into()]);
    let inputs = Inputs::inside(listeners);
    let c = Context::new(
        Date::new(2026, 11, 27).unwrap(),
        Registry::embedded(),
        &host,
    );
    let r = evaluate(&Policy::baseline(), &inputs, &c);
    let writable: HashMap<u16, &str> = r
        .findings
        .iter()
        .filter(|f| f.rule == Rule::WritableExecutable)
        .map(|f| (f.port.unwrap(), f.message.as_str()))
        .collect();
    let at = |pid: u32| writable.get(&(4440 + (pid - 10) as u16)).copied();
    let want = |pid: u32, parts: &[&str]| {
        let m = at(pid).unwrap_or_else(|| panic!("pid {pid}: no finding in {writable:#?}"));
        for p in parts {
            assert!(m.contains(p), "pid {pid}: {m}");
        }
    };
    want(
        10,
        &[
            "running python on the script /srv/drop/x/evil.py",
            "/srv/drop is world-writable",
        ],
    );
    want(
        11,
        &[
            "the script /srv/drop/evil.py",
            "/srv/drop is world-writable",
        ],
    );
    want(
        12,
        &[
            "imports modules first from /srv/drop",
            "its working directory, as it runs the module http.server (-m)",
        ],
    );
    want(14, &["running java on the archive /srv/drop/app.jar"]);
    want(
        17,
        &[
            "imports modules first from /srv/shared (the script's directory)",
            "the sticky bit does not keep others from adding a module there",
        ],
    );
    // Nothing to judge: -c code run from /srv (its working directory, not writable); a
    // perl script from /usr/share; a shell's -c; python -I, which leaves the script's
    // sticky directory off its path; a process whose pid was reused; a command line that
    // names no file.
    for pid in [13, 15, 16, 18, 20, 21] {
        assert_eq!(at(pid), None, "pid {pid}");
    }
    want(19, &["running node on the script /srv/drop/srv.js"]);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == Rule::WritableExecutable && f.port == Some(4440))
        .unwrap();
    assert_eq!(f.severity, High);
    assert!(
        f.remediation
            .text
            .contains("install the script under a root-owned path"),
        "{}",
        f.remediation
    );
}

/// Issue 10, item 6: SNMP is a cleartext service (high); an agent that answered
/// detection's request with the default community `public` is critical, under the
/// baseline and a profile alike.
#[test]
fn item6_snmp_answering_the_public_community_is_critical() {
    let h = host();
    let mail = profiles::load("mail-server", Registry::embedded()).unwrap();
    for (detected, want) in [
        (None, High),
        (
            Some(Detected {
                protocol: Some("snmp".into()),
                product: Some("Net-SNMP".into()),
                cleartext: true,
                evidence: "sysDescr: Linux".into(),
                ..Detected::default()
            }),
            Critical,
        ),
    ] {
        let mut scan = scan_of(
            "this-host",
            true,
            &[(Proto::Udp, 161)],
            &[(Proto::Udp, 161, 161)],
        );
        result(&mut scan, 0).detected = detected;
        for policy in [&Policy::baseline(), &mail] {
            let inputs = Inputs {
                listeners: Some(vec![l(Proto::Udp, "0.0.0.0", 161, None)]),
                scan: Some(scan.clone()),
                netns: None,
            };
            let r = evaluate(policy, &inputs, &ctx(&h, None));
            let sev: Vec<Severity> = r
                .findings
                .iter()
                .filter(|f| f.port == Some(161))
                .map(|f| f.severity)
                .collect();
            assert_eq!(sev, vec![want], "{}: {:#?}", policy.name, r.findings);
        }
    }
}

/// LDAP's detection says whether the directory served an anonymous search: open, it is
/// one step worse than LDAP that refused or that could not be told (cleartext that can
/// upgrade to TLS: medium).
#[test]
fn ldap_open_to_anonymous_clients_is_one_step_worse() {
    for (served, want) in [(Some(true), High), (Some(false), Medium), (None, Medium)] {
        let listeners = vec![tcp("0.0.0.0", 389, None)];
        let mut scan = scan_of(
            "this-host",
            true,
            &[(Proto::Tcp, 389)],
            &[(Proto::Tcp, 1, 65535)],
        );
        result(&mut scan, 0).detected = Some(Detected {
            protocol: Some("ldap".into()),
            cleartext: true,
            starttls: true,
            unauthenticated: served,
            ..Detected::default()
        });
        let r = mail_audit(Some(listeners), Some(scan), Some("--profile mail-server"));
        let got: Vec<(String, Severity)> = r
            .findings
            .iter()
            .filter(|f| f.rule != Rule::RequiredMissing)
            .map(|f| (f.port_label(), f.severity))
            .collect();
        assert_eq!(got, vec![("389/tcp".to_string(), want)], "{served:?}");
    }
}
