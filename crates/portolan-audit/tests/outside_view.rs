//! The outside view with plain data: a listener is "reachable", "not reachable" only where
//! the scan probed every address it serves, else "not checked"; a service the policy binds
//! to loopback and the scan reached is a bind violation. (Issue 10, items 1-3.)

use std::net::IpAddr;

use portolan_audit::policy::Policy;
use portolan_audit::{
    AuditReport, Context, Date, Inputs, Listener, NoHost, PortState, Reach, Rule, Scan, ScanReport,
    ScannedPort, Severity, evaluate, profiles,
};
use portolan_model::{HostResult, HostState, PortResult, Reason};
use portolan_registry::{PortRange, Proto, Registry};

const V4: &str = "198.18.0.2";
const V6: &str = "2001:2::2";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ctx() -> Context<'static> {
    Context {
        policy_arg: Some("--profile mail-server".into()),
        ..Context::new(
            Date::new(2026, 11, 27).unwrap(),
            Registry::embedded(),
            &NoHost,
        )
    }
}

fn mail() -> Policy {
    profiles::load("mail-server", Registry::embedded()).unwrap()
}

/// A scan that probed `probed` (address, protocol, first, last) and saw `seen` (address,
/// protocol, port, state).
fn scan(
    probed: &[(&str, Proto, u16, u16)],
    seen: &[(&str, Proto, u16, PortState)],
    local: bool,
    host_addresses: &[&str],
) -> Scan {
    let mut report = ScanReport::default();
    for &(a, p, first, last) in probed {
        report
            .coverage
            .add(ip(a), p, &[PortRange::new(first, last).unwrap()]);
    }
    for &(a, proto, port, state) in seen {
        let host = ip(a);
        let r = ScannedPort {
            result: PortResult {
                host,
                port,
                proto,
                state,
                reason: Reason::UserSet,
                rtt: None,
                ttl: None,
            },
            service: None,
            detected: None,
        };
        match report.hosts.iter_mut().find(|h| h.host == host) {
            Some(h) => h.ports.push(r),
            None => report.hosts.push(HostResult {
                ports: vec![r],
                ..HostResult::new(host, HostState::Up, Reason::UserSet)
            }),
        }
    }
    Scan {
        target: V4.into(),
        local,
        source: Some(ip("198.18.0.1")),
        from_itself: false,
        host_addresses: host_addresses.iter().map(|a| ip(a)).collect(),
        report,
    }
}

fn run(policy: &Policy, listeners: Option<Vec<Listener>>, scan: Option<Scan>) -> AuditReport {
    let inputs = Inputs {
        listeners,
        scan,
        netns: None,
    };
    evaluate(policy, &inputs, &ctx())
}

fn mysql_dual_stack() -> Listener {
    let mut l = Listener::new(Proto::Tcp, ip("::"), 3306);
    l.v6only = Some(false);
    l
}

fn only(r: &AuditReport, rule: Rule, port: u16) -> &portolan_audit::Finding {
    let f: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.rule == rule && f.port == Some(port))
        .collect();
    assert_eq!(f.len(), 1, "{:#?}", r.findings);
    f[0]
}

/// Issue 10 item 3: the scan probed only the IPv4 address; mysql on `[::]` also serves
/// the IPv6 one. It is "not checked", never "the firewall holds", and its severity is the
/// one without a scan.
#[test]
fn item3_a_listener_on_an_address_the_scan_did_not_probe_is_not_checked() {
    let policy = mail();
    let without = run(&policy, Some(vec![mysql_dual_stack()]), None);
    let before = only(&without, Rule::NotAllowed, 3306).severity;
    let s = scan(
        &[(V4, Proto::Tcp, 1, 65535)],
        &[(V4, Proto::Tcp, 3306, PortState::Filtered)],
        true,
        &[V4, V6],
    );
    let r = run(&policy, Some(vec![mysql_dual_stack()]), Some(s));
    let f = only(&r, Rule::NotAllowed, 3306);
    assert_eq!(f.reach, Some(Reach::NotChecked), "{f:#?}");
    assert_eq!(f.reachable, None);
    assert_eq!(f.severity, before, "never lowered for what was not probed");
    assert!(!f.message.contains("firewall holds"), "{}", f.message);
    assert!(
        f.message.contains("filtered at 198.18.0.2"),
        "{}",
        f.message
    );
    assert!(
        f.message.contains("not probed at 2001:2::2"),
        "{}",
        f.message
    );
    assert_eq!(r.summary.not_checked, Some(1));
    assert_eq!(r.summary.unreachable, Some(0));
    let j = serde_json::to_value(f).unwrap();
    assert_eq!(j["reach"], "not-checked");
}

/// Probed on both addresses, filtered on both: then, and only then, not reachable.
#[test]
fn item3_not_reachable_only_where_every_address_was_probed() {
    let policy = mail();
    let without = run(&policy, Some(vec![mysql_dual_stack()]), None);
    let before = only(&without, Rule::NotAllowed, 3306).severity;
    let s = scan(
        &[(V4, Proto::Tcp, 1, 65535), (V6, Proto::Tcp, 1, 65535)],
        &[
            (V4, Proto::Tcp, 3306, PortState::Filtered),
            (V6, Proto::Tcp, 3306, PortState::Closed),
        ],
        true,
        &[V4, V6],
    );
    let r = run(&policy, Some(vec![mysql_dual_stack()]), Some(s));
    let f = only(&r, Rule::NotAllowed, 3306);
    assert_eq!(f.reach, Some(Reach::Unreachable), "{f:#?}");
    assert!(f.severity < before);
    assert!(
        f.message
            .contains("filtered at 198.18.0.2; closed at 2001:2::2")
            && f.message.contains("the firewall holds"),
        "{}",
        f.message
    );
    assert_eq!(r.summary.unreachable, Some(1));
    assert_eq!(r.summary.not_checked, Some(0));
}

/// Another protocol or port than the one probed is not checked either; a UDP port with no
/// answer (open|filtered) is not "not reachable"; reached on one address is reachable.
#[test]
fn item3_other_protocols_ports_and_silence_are_not_checked() {
    let policy = mail();
    let ls = vec![
        mysql_dual_stack(),
        Listener::new(Proto::Udp, ip("0.0.0.0"), 161),
        Listener::new(Proto::Udp, ip("0.0.0.0"), 69),
        Listener::new(Proto::Tcp, ip(V4), 6379),
    ];
    let s = scan(
        &[
            (V4, Proto::Tcp, 1, 1024),
            (V6, Proto::Tcp, 1, 65535),
            (V4, Proto::Udp, 161, 161),
        ],
        &[
            (V4, Proto::Udp, 161, PortState::OpenFiltered),
            (V6, Proto::Tcp, 3306, PortState::Open),
        ],
        true,
        &[V4, V6],
    );
    let r = run(&policy, Some(ls), Some(s));
    let reach = |port: u16| {
        r.findings
            .iter()
            .find(|f| f.port == Some(port) && f.rule != Rule::EphemeralPort)
            .unwrap_or_else(|| panic!("{port}: {:#?}", r.findings))
            .reach
    };
    assert_eq!(reach(161), Some(Reach::NotChecked));
    assert_eq!(reach(69), Some(Reach::NotChecked));
    assert_eq!(reach(6379), Some(Reach::NotChecked));
    assert_eq!(reach(3306), Some(Reach::Reachable));
    let f = only(&r, Rule::NotAllowed, 3306);
    assert!(
        f.message.contains("reachable at 2001:2::2")
            && f.message.contains("not probed at 198.18.0.2"),
        "{}",
        f.message
    );
}

/// Issue 10 item 2: mail-server allows DNS bound to loopback only. A scan of the host
/// alone that reaches 53/tcp and 53/udp is a bind violation seen from outside.
#[test]
fn item2_a_loopback_only_service_reached_from_outside_is_reported() {
    let s = scan(
        &[(V4, Proto::Tcp, 1, 1024), (V4, Proto::Udp, 53, 53)],
        &[
            (V4, Proto::Tcp, 53, PortState::Open),
            (V4, Proto::Udp, 53, PortState::Open),
            (V4, Proto::Tcp, 25, PortState::Open),
        ],
        false,
        &[],
    );
    let r = run(&mail(), None, Some(s));
    for proto in [Proto::Tcp, Proto::Udp] {
        let f: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.port == Some(53) && f.protocol == Some(proto))
            .collect();
        assert_eq!(f.len(), 1, "{proto}: {:#?}", r.findings);
        assert_eq!(f[0].rule, Rule::BindMismatch);
        assert!(
            f[0].message.contains("reached from outside at 198.18.0.2"),
            "{}",
            f[0].message
        );
        assert_eq!(f[0].reach, Some(Reach::Reachable));
        // DNS is of the "other" risk class: medium, confirmed (not raised) by the reach.
        assert_eq!(f[0].severity, Severity::Medium);
    }
    // SMTP may bind anywhere: no finding.
    assert!(
        r.findings.iter().all(|f| f.port != Some(25)),
        "{:#?}",
        r.findings
    );
}

/// The same with the inside view: DNS listens on loopback only, yet the scan reaches it
/// on the host's address (forwarded to loopback).
#[test]
fn item2_a_loopback_socket_reached_from_outside_is_reported() {
    let ls = vec![Listener::new(Proto::Tcp, ip("127.0.0.1"), 53)];
    let s = scan(
        &[(V4, Proto::Tcp, 1, 1024)],
        &[(V4, Proto::Tcp, 53, PortState::Open)],
        true,
        &[V4],
    );
    let r = run(&mail(), Some(ls.clone()), Some(s));
    let f = only(&r, Rule::BindMismatch, 53);
    assert!(
        f.message.contains("reached from outside at 198.18.0.2"),
        "{}",
        f.message
    );
    // Not reached: no finding, as without a scan.
    let s = scan(&[(V4, Proto::Tcp, 1, 1024)], &[], true, &[V4]);
    let r = run(&mail(), Some(ls), Some(s));
    assert!(
        r.findings.iter().all(|f| f.port != Some(53)),
        "{:#?}",
        r.findings
    );
}

/// Issue 10 item 1: UDP services the scan reached are judged and named.
#[test]
fn item1_udp_services_reached_are_findings() {
    let ls = vec![
        Listener::new(Proto::Udp, ip("0.0.0.0"), 161),
        Listener::new(Proto::Udp, ip("0.0.0.0"), 69),
        Listener::new(Proto::Udp, ip("0.0.0.0"), 123),
    ];
    let s = scan(
        &[(V4, Proto::Udp, 1, 1024)],
        &[
            (V4, Proto::Udp, 161, PortState::Open),
            (V4, Proto::Udp, 69, PortState::Open),
            (V4, Proto::Udp, 123, PortState::Open),
        ],
        true,
        &[V4],
    );
    let r = run(&mail(), Some(ls), Some(s));
    for (port, name) in [(161, "snmp"), (69, "tftp"), (123, "ntp")] {
        let f = r
            .findings
            .iter()
            .find(|f| f.port == Some(port) && f.protocol == Some(Proto::Udp))
            .unwrap_or_else(|| panic!("{port}: {:#?}", r.findings));
        assert_eq!(f.service.as_deref(), Some(name));
        assert_eq!(f.reach, Some(Reach::Reachable));
    }
}

/// Issue 10 item 1: a UDP port silent to the scanner's payload that answered detection is
/// open (as nmap promotes it); silent to both, it stays not checked.
#[test]
fn item1_a_udp_port_that_answered_detection_is_reachable() {
    let ls = vec![
        Listener::new(Proto::Udp, ip("0.0.0.0"), 161),
        Listener::new(Proto::Udp, ip("0.0.0.0"), 162),
    ];
    let mut s = scan(
        &[(V4, Proto::Udp, 161, 162)],
        &[
            (V4, Proto::Udp, 161, PortState::OpenFiltered),
            (V4, Proto::Udp, 162, PortState::OpenFiltered),
        ],
        true,
        &[V4],
    );
    s.report.hosts[0].ports[0].detected = Some(portolan_audit::Detection {
        protocol: Some("snmp".into()),
        ..portolan_audit::Detection::default()
    });
    let r = run(&mail(), Some(ls), Some(s));
    let reach = |port: u16| {
        r.findings
            .iter()
            .find(|f| f.port == Some(port))
            .unwrap_or_else(|| panic!("{port}: {:#?}", r.findings))
            .reach
    };
    assert_eq!(reach(161), Some(Reach::Reachable));
    assert_eq!(reach(162), Some(Reach::NotChecked));
}
