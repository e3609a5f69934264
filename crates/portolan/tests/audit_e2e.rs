//! The closed loop on a namespace test bed: a target with mail ports and others open,
//! audited from inside with the baseline and the mail-server profile (exact finding sets),
//! then enforced with the generated nftables ruleset and probed from a scanner namespace:
//! only the mail ports and SSH stay reachable.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use portolan_testkit::{Netns, Pair, Seen, Testbed, require_root, require_tool};

const MAIL: &[u16] = &[22, 25, 465, 587, 993, 995, 4190];
const OTHERS: &[u16] = &[21, 23, 53, 80, 110, 6379];

/// Plain python listeners (from /usr/bin, so no writable-path finding) on every port,
/// dual-stack; returns once they listen.
fn serve(pair: &mut Pair, ports: &[u16]) {
    pair.target.listen_tcp("/usr/bin/python3", ports).unwrap();
}

fn audit(pair: &Pair, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let (code, v, _) = audit_in(&pair.target, args);
    (code, v)
}

/// `portolan audit ARGS --json` run in `ns`: the exit code, the report and stderr.
fn audit_in(ns: &Netns, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let out = ns
        .command(env!("CARGO_BIN_EXE_portolan"))
        .arg("audit")
        .args(args)
        .args(["--json", "--today", "2026-11-27"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{err}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), v, err)
}

fn findings(v: &serde_json::Value) -> BTreeSet<(String, String, u64)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_string(),
                f["rule"].as_str().unwrap().to_string(),
                f["port"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn set(items: &[(&str, &str, u64)]) -> BTreeSet<(String, String, u64)> {
    items
        .iter()
        .map(|&(s, r, p)| (s.to_string(), r.to_string(), p))
        .collect()
}

/// TCP connects from the scanner namespace: which ports answer.
/// The findings of the mail-server profile on the mail test host (rule, port), in the
/// order of [`mail_findings`]' argument.
const MAIL_FINDINGS: [(&str, u64); 6] = [
    ("cleartext-forbidden", 23),
    ("cleartext-forbidden", 21),
    ("cleartext-forbidden", 110),
    ("bind-mismatch", 53),
    ("not-allowed", 80),
    ("not-allowed", 6379),
];

/// [`MAIL_FINDINGS`] with these severities, as [`findings`] gives them.
fn mail_findings(severities: [&str; 6]) -> BTreeSet<(String, String, u64)> {
    let items: Vec<(&str, &str, u64)> = MAIL_FINDINGS
        .iter()
        .zip(severities)
        .map(|(&(rule, port), sev)| (sev, rule, port))
        .collect();
    set(&items)
}

fn reachable(pair: &Pair, addr: &str, ports: &[u16]) -> BTreeSet<u16> {
    pair.scanner
        .probe_tcp(addr, ports)
        .unwrap()
        .into_iter()
        .filter(|&(_, seen)| seen == Seen::Open)
        .map(|(p, _)| p)
        .collect()
}

#[test]
fn audit_and_enforce_a_mail_server() {
    if !require_root("audit_and_enforce_a_mail_server")
        || !require_tool("nft", "nft")
        || !require_tool("python3", "python3")
    {
        return;
    }
    let mut pair = Pair::new("pa").unwrap();
    let all: Vec<u16> = MAIL.iter().chain(OTHERS).copied().collect();
    serve(&mut pair, &all);

    // The baseline needs no configuration.
    let (code, v) = audit(&pair, &[]);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(
        findings(&v),
        set(&[
            ("critical", "cleartext-exposed", 23),
            ("high", "local-service-exposed", 6379),
            ("medium", "cleartext-exposed", 21),
            ("medium", "cleartext-exposed", 110),
        ]),
        "{v:#}"
    );
    assert_eq!(v["summary"]["policy"], "baseline");
    assert!(
        v["summary"]["next_step"]
            .as_str()
            .unwrap()
            .contains("portolan policy init")
    );
    let telnet = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["port"] == 23)
        .unwrap();
    assert_eq!(telnet["process"], "python3");
    assert!(
        telnet["remediation"]["text"]
            .as_str()
            .unwrap()
            .contains("kill"),
        "{telnet:#}"
    );
    // The commands are data too, so a renderer can show them as code.
    assert!(
        telnet["remediation"]["commands"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().starts_with("kill ")),
        "{telnet:#}"
    );
    assert_eq!(telnet["fingerprint"].as_str().unwrap().len(), 16);
    assert_eq!(telnet["evidence"][0]["name"], "python3");
    // The namespace the listener is in is kept as data (not in the message: it is the
    // one the audit is about).
    assert_eq!(telnet["netns"], pair.target.name(), "{telnet:#}");

    // The mail-server profile: everything but the mail ports and SSH is a finding.
    let (code, v) = audit(&pair, &["--profile", "mail-server"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        findings(&v),
        // The one severity model (docs/rules.md): the same as under the baseline.
        mail_findings(["critical", "medium", "medium", "medium", "medium", "high"]),
        "{v:#}"
    );
    let (code, _) = audit(
        &pair,
        &["--profile", "mail-server", "--fail-on", "critical"],
    );
    assert_eq!(code, Some(1));
    let (code, _) = audit(&pair, &["--profile", "mail-server", "--fail-on", "never"]);
    assert_eq!(code, Some(0));

    // Enforce it: the generated ruleset, applied for real in the target.
    let state = std::env::temp_dir().join(format!("pa-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&state).unwrap();
    let out = pair
        .target
        .command(env!("CARGO_BIN_EXE_portolan"))
        .args([
            "firewall",
            "--profile",
            "mail-server",
            "--apply",
            "--yes",
            "--confirm-timeout",
            "0",
        ])
        .env("PORTOLAN_STATE_DIR", &state)
        .env_remove("SSH_CONNECTION")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // And the proof from outside: only the mail ports and SSH answer, on both families.
    let want: BTreeSet<u16> = MAIL.iter().copied().collect();
    assert_eq!(reachable(&pair, Pair::TARGET_V4, &all), want);
    assert_eq!(reachable(&pair, Pair::TARGET_V6, &all), want);
    // Inside, nothing changed: the same sockets listen.
    let (_, v) = audit(&pair, &["--profile", "mail-server"]);
    assert_eq!(findings(&v).len(), 6);

    // Both views at once: the inventory of the target namespace, and a scan of both its
    // addresses (taken from the namespace: a bare --scan) from the scanner namespace.
    // What the firewall holds back on every address is one step milder.
    let (_, v, _) = audit_from_scanner(
        &pair,
        &[
            "--netns",
            pair.target.name(),
            "--scan",
            "--profile",
            "mail-server",
        ],
    );
    assert_eq!(
        findings(&v),
        mail_findings(["high", "low", "low", "low", "low", "medium"]),
        "{v:#}"
    );
    for f in v["findings"].as_array().unwrap() {
        assert_eq!(f["reachable"], false, "{f:#}");
        assert!(
            f["message"]
                .as_str()
                .unwrap()
                .contains("the firewall holds"),
            "{f:#}"
        );
    }
    // Open ports, over both addresses; every other listener was probed on both.
    assert_eq!(
        v["summary"]["reachable"],
        MAIL.len() * 2,
        "{:#}",
        v["summary"]
    );
    assert_eq!(
        v["summary"]["unreachable"],
        OTHERS.len(),
        "{:#}",
        v["summary"]
    );
    assert_eq!(v["summary"]["not_checked"], 0, "{:#}", v["summary"]);
    let _ = std::fs::remove_dir_all(state);
}

#[test]
fn policy_init_round_trip() {
    if !require_root("policy_init_round_trip") || !require_tool("python3", "python3") {
        return;
    }
    let mut pair = Pair::new("pa").unwrap();
    serve(&mut pair, &[22, 23, 443, 6379]);
    let dir = std::env::temp_dir().join(format!("pa-init-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.toml");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_portolan"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let ns = pair.target.name().to_string();
    let ok = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let init = [
        "policy",
        "init",
        "--netns",
        &ns,
        "-o",
        file.to_str().unwrap(),
    ];
    ok(run(&init));
    // It refuses to overwrite.
    assert_eq!(run(&init).status.code(), Some(2));
    ok(run(&["policy", "check", file.to_str().unwrap()]));
    // Audited against its own starting policy, the host is clean but for telnet, which
    // init leaves out because the policy forbids cleartext.
    let out = run(&[
        "audit",
        "--netns",
        &ns,
        "--policy",
        file.to_str().unwrap(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        findings(&v),
        set(&[("critical", "cleartext-forbidden", 23)]),
        "{v:#}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn real_daemons_inside_and_outside_with_detection() {
    if !require_root("real_daemons_inside_and_outside_with_detection")
        || !require_tool("testbed", "dovecot")
        || !require_tool("testbed", "postfix")
    {
        return;
    }
    let tb = Testbed::start("testbed");
    let (sns, tns, ip) = (
        tb.env("SCANNER_NS"),
        tb.env("TARGET_NS"),
        tb.env("TARGET_IP"),
    );
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &sns, env!("CARGO_BIN_EXE_portolan")])
        .args(["audit", "--netns", &tns, "--scan", &ip, "--detect"])
        .args([
            "--profile",
            "mail-server",
            "--json",
            "--today",
            "2026-11-27",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let all = v["findings"].as_array().unwrap();
    let at = |port: u64, proto: &str| -> Vec<&serde_json::Value> {
        all.iter()
            .filter(|f| f["port"] == port && f["protocol"] == proto)
            .collect()
    };
    // The mail server's own ports pass.
    for p in [22, 25, 465, 993, 995] {
        assert!(at(p, "tcp").is_empty(), "{p}: {:#?}", at(p, "tcp"));
    }
    // Telnet is telnet on its own port and on a moved one, and it is reachable.
    for p in [23, 2323] {
        let f = at(p, "tcp");
        assert_eq!(f.len(), 1, "{p}: {f:#?}");
        assert_eq!(f[0]["rule"], "cleartext-forbidden");
        assert_eq!(f[0]["severity"], "critical");
        assert_eq!(f[0]["service"], "telnet");
        assert!(
            f[0]["product"].as_str().unwrap().contains("telnetd"),
            "{:#}",
            f[0]
        );
    }
    // Dovecot offers STARTTLS on 143: not cleartext, but IMAP is not in the profile.
    let imap = at(143, "tcp");
    assert_eq!(imap.len(), 1);
    assert_eq!(imap[0]["rule"], "not-allowed");
    assert_eq!(imap[0]["product"], "Dovecot imapd");
    // DNS may only listen on loopback; dnsmasq listens on the network, and is reached.
    assert_eq!(at(53, "tcp")[0]["rule"], "bind-mismatch");
    // DNS is of the "other" risk class: medium, confirmed by the reach.
    assert_eq!(at(53, "tcp")[0]["severity"], "medium");
    // Everything the scan reached over TCP says so.
    for f in all.iter().filter(|f| f["protocol"] == "tcp") {
        assert_eq!(f["reachable"], true, "{f:#}");
    }
    assert!(
        v["summary"]["listeners"].as_u64().unwrap() >= 40,
        "{:#}",
        v["summary"]
    );
}

/// Real UDP daemons (dnsmasq for DNS, snmpd with community `public`) and small python
/// responders (TFTP, NTP: they answer any datagram), with TCP services, every one on
/// both families, in the target namespace.
fn serve_udp_host(pair: &mut Pair, dir: &std::path::Path) {
    let snmpd = dir.join("snmpd.conf");
    std::fs::write(
        &snmpd,
        "rocommunity public\nrocommunity6 public\nagentaddress udp:161,udp6:161\nsmuxsocket 127.0.0.1\n",
    )
    .unwrap();
    pair.target
        .spawn(
            "/usr/sbin/snmpd",
            &[
                "-f",
                "-Ln",
                "-C",
                "-c",
                snmpd.to_str().unwrap(),
                "-p",
                dir.join("snmpd.pid").to_str().unwrap(),
            ],
        )
        .unwrap();
    pair.target
        .spawn(
            "/usr/sbin/dnsmasq",
            &[
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--address=/example.test/198.18.0.9",
                &format!("--pid-file={}", dir.join("dnsmasq.pid").display()),
            ],
        )
        .unwrap();
    let script = "import socket, selectors, time\n\
         sel = selectors.DefaultSelector()\n\
         keep = []\n\
         for p in [69, 123]:\n\
         \x20   s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n\
         \x20   s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n\
         \x20   s.bind(('::', p)); sel.register(s, selectors.EVENT_READ)\n\
         for p in [25, 3306, 6379]:\n\
         \x20   s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)\n\
         \x20   s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n\
         \x20   s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         \x20   s.bind(('::', p)); s.listen(16); keep.append(s)\n\
         end = time.time() + 300\n\
         while time.time() < end:\n\
         \x20   for k, _ in sel.select(1):\n\
         \x20       data, peer = k.fileobj.recvfrom(2048)\n\
         \x20       k.fileobj.sendto(b'\\x00\\x05\\x00\\x00reply' if k.fileobj.getsockname()[1] == 69 else b'\\x1c' + bytes(47), peer)\n";
    pair.target
        .spawn("/usr/bin/python3", &["-c", script])
        .unwrap();
    // Ready when every socket is bound (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ss = pair.target.exec("ss", &["-Hlnu"]).unwrap_or_default()
            + &pair.target.exec("ss", &["-Hlnt"]).unwrap_or_default();
        let bound = |port: &str| ss.lines().any(|l| l.contains(&format!(":{port} ")));
        if ["53", "69", "123", "161", "25", "3306", "6379"]
            .iter()
            .all(|p| bound(p))
        {
            return;
        }
        assert!(Instant::now() < deadline, "daemons did not start:\n{ss}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `portolan audit ARGS --json` run in the scanner namespace; its exit code, JSON and
/// stderr.
fn audit_from_scanner(pair: &Pair, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    audit_in(&pair.scanner, args)
}

/// (rule, port, protocol, reach) of every finding.
fn reaches(v: &serde_json::Value) -> BTreeSet<(String, u64, String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["port"].as_u64().unwrap_or(0),
                f["protocol"].as_str().unwrap_or("").to_string(),
                f["reach"].as_str().unwrap_or("none").to_string(),
            )
        })
        .collect()
}

/// The findings of the mail-server profile on the UDP host (rule, port, protocol), in
/// the order of [`udp_host_reaches`]' argument.
const UDP_HOST_FINDINGS: [(&str, u64, &str); 8] = [
    ("bind-mismatch", 53, "tcp"),
    ("bind-mismatch", 53, "udp"),
    ("cleartext-forbidden", 69, "udp"),
    ("not-allowed", 123, "udp"),
    ("cleartext-forbidden", 161, "udp"),
    ("not-allowed", 3306, "tcp"),
    ("not-allowed", 6379, "tcp"),
    // snmpd's SMUX, on loopback only.
    ("not-allowed", 199, "tcp"),
];

/// [`UDP_HOST_FINDINGS`], each with its reach (`none` for no `reach`), as [`reaches`]
/// gives them.
fn udp_host_reaches(reach: [&str; 8]) -> BTreeSet<(String, u64, String, String)> {
    UDP_HOST_FINDINGS
        .iter()
        .zip(reach)
        .map(|(&(r, p, proto), reach)| (r.to_string(), p, proto.to_string(), reach.to_string()))
        .collect()
}

/// The first finding `pred` picks.
fn finding_where(
    v: &serde_json::Value,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| pred(f))
        .cloned()
        .unwrap_or_else(|| panic!("no such finding in {v:#}"))
}

/// Issue 10, items 1-4 and the proof: a dual-stack host serving TCP and UDP, audited
/// against mail-server from another namespace. UDP services are probed and named, DNS
/// (loopback-only in the profile) seen from outside is a bind violation, and what the
/// scan did not probe is "not checked", never "the firewall holds".
#[test]
fn udp_and_ipv6_closed_loop() {
    if !require_root("udp_and_ipv6_closed_loop")
        || !require_tool("nft", "nft")
        || !require_tool("python3", "python3")
        || !require_tool("dnsmasq", "dnsmasq")
        || !require_tool("snmpd", "snmpd")
    {
        return;
    }
    let mut pair = Pair::new("pu").unwrap();
    let dir = std::env::temp_dir().join(format!("pu-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    serve_udp_host(&mut pair, &dir);
    // The firewall: redis dropped on both families, mysql on IPv4 only.
    pair.target
        .nft(&format!(
            "table inet pu {{\n chain input {{\n type filter hook input priority 0;\n \
             tcp dport 6379 drop\n ip daddr {} tcp dport 3306 drop\n }}\n}}\n",
            Pair::TARGET_V4
        ))
        .unwrap();
    let ns = pair.target.name().to_string();

    // Both addresses, taken from the namespace itself (a bare --scan).
    let started = Instant::now();
    let (code, v, err) = audit_from_scanner(
        &pair,
        &["--netns", &ns, "--scan", "--profile", "mail-server"],
    );
    let udp_time = started.elapsed();
    assert_eq!(code, Some(1), "{v:#}\n{err}");
    // SMUX (199/tcp), on loopback only and not reached: nothing to say about reach.
    let r = "reachable";
    assert_eq!(
        reaches(&v),
        udp_host_reaches([r, r, r, r, r, r, "unreachable", "none"]),
        "{v:#}"
    );
    let by =
        |port: u64, proto: &str| finding_where(&v, |f| f["port"] == port && f["protocol"] == proto);
    assert_eq!(by(161, "udp")["service"], "snmp");
    assert_eq!(by(69, "udp")["service"], "tftp");
    assert_eq!(by(123, "udp")["service"], "ntp");
    let mysql = by(3306, "tcp");
    let msg = mysql["message"].as_str().unwrap();
    assert!(
        msg.contains("filtered at 198.18.0.2") && msg.contains("reachable at 2001:2::2"),
        "{msg}"
    );
    let redis = by(6379, "tcp")["message"].as_str().unwrap().to_string();
    assert!(
        redis.contains("filtered at 198.18.0.2, 2001:2::2") && redis.contains("the firewall holds"),
        "{redis}"
    );
    assert_eq!(v["summary"]["unreachable"], 1, "{:#}", v["summary"]);
    assert_eq!(v["summary"]["not_checked"], 0, "{:#}", v["summary"]);
    eprintln!("audit of 2 addresses with UDP: {udp_time:?}");

    // Only the IPv4 address, and only some ports: everything else is not checked, and no
    // severity is lowered for it.
    let (_, v4, _) = audit_from_scanner(
        &pair,
        &[
            "--netns",
            &ns,
            "--scan",
            Pair::TARGET_V4,
            "--scan-ports",
            "T:3306,6379,U:161",
            "--profile",
            "mail-server",
        ],
    );
    let nc = "not-checked";
    assert_eq!(
        reaches(&v4),
        udp_host_reaches([nc, nc, nc, nc, "reachable", nc, nc, "none"]),
        "{v4:#}"
    );
    let (_, inside) = audit(&pair, &["--profile", "mail-server"]);
    let severity = |v: &serde_json::Value, port: u64| {
        finding_where(v, |f| f["port"] == port && f["rule"] == "not-allowed")["severity"].clone()
    };
    for f in v4["findings"].as_array().unwrap() {
        if f["reach"] == "not-checked" {
            assert_eq!(f["reachable"], serde_json::Value::Null, "{f:#}");
            assert!(
                !f["message"].as_str().unwrap().contains("firewall holds"),
                "{f:#}"
            );
        }
    }
    assert_eq!(severity(&v4, 6379), severity(&inside, 6379));
    assert_eq!(severity(&v4, 3306), severity(&inside, 3306));
    // Of the 8 ports listening beyond loopback (25 has no finding), only 161/udp was
    // measured.
    assert_eq!(v4["summary"]["not_checked"], 7, "{:#}", v4["summary"]);

    // The scan alone, from the scanner (no inside view): DNS, which the profile keeps on
    // loopback, answers from outside on both addresses.
    let targets = format!("{},{}", Pair::TARGET_V4, Pair::TARGET_V6);
    let (_, remote, _) =
        audit_from_scanner(&pair, &["--scan", &targets, "--profile", "mail-server"]);
    for proto in ["tcp", "udp"] {
        let f: Vec<&serde_json::Value> = remote["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["port"] == 53 && f["protocol"] == proto)
            .collect();
        assert_eq!(f.len(), 1, "{remote:#}");
        assert_eq!(f[0]["rule"], "bind-mismatch");
        assert!(
            f[0]["message"]
                .as_str()
                .unwrap()
                .contains("reached from outside at 198.18.0.2, 2001:2::2"),
            "{:#}",
            f[0]
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 10 item 5: a policy allowing 60000-61000/udp does not make the audit scan a
/// thousand UDP ports (a quarter of an hour at the ICMP rate limit): it probes a few of
/// them, says what it left out, and still probes what listens there.
#[test]
fn item5_a_large_policy_range_is_bounded_and_the_rest_not_checked() {
    if !require_root("item5_a_large_policy_range_is_bounded_and_the_rest_not_checked")
        || !require_tool("python3", "python3")
    {
        return;
    }
    let mut pair = Pair::new("pr").unwrap();
    let script = "import socket, time\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.bind(('0.0.0.0', 60500))\n\
         end = time.time() + 120\n\
         s.settimeout(1)\n\
         while time.time() < end:\n\
         \x20   try:\n\
         \x20       d, p = s.recvfrom(2048); s.sendto(b'ok', p)\n\
         \x20   except OSError: pass\n";
    pair.target
        .spawn("/usr/bin/python3", &["-c", script])
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pair
        .target
        .exec("ss", &["-Hlnu"])
        .unwrap_or_default()
        .contains(":60500 ")
    {
        assert!(Instant::now() < deadline, "listener did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let policy = std::env::temp_dir().join(format!("pr-policy-{}.toml", std::process::id()));
    std::fs::write(
        &policy,
        "name = \"range\"\n[[allow]]\nservice = \"60000-61000/udp\"\n",
    )
    .unwrap();
    let started = Instant::now();
    let (_, v, err) = audit_from_scanner(
        &pair,
        &[
            "--netns",
            pair.target.name(),
            "--scan",
            Pair::TARGET_V4,
            "--policy",
            policy.to_str().unwrap(),
        ],
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(90), "{took:?}");
    assert!(
        err.contains("60016-61000/udp") && err.contains("not checked"),
        "{err}"
    );
    assert!(err.contains("about"), "an estimate before the scan: {err}");
    // What listens in the range is probed all the same: it answered.
    assert_eq!(v["summary"]["not_checked"], 0, "{v:#}");
    assert_eq!(v["summary"]["unreachable"], 0, "{v:#}");
    let _ = std::fs::remove_file(policy);
}

/// A python3 process listening on 4444, started as `python3 evil.py` from a
/// world-writable directory; killed (and the directory removed) when dropped.
struct Evil {
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl Drop for Evil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Issue 10, item 8, for real: `/usr/bin/python3 evil.py`, run from a world-writable
/// directory and listening on 4444, is a `writable-executable` finding that names the
/// script (resolved against the process's working directory) and why.
#[test]
fn item8_a_real_python_script_in_a_world_writable_directory() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    if !require_root("item8_a_real_python_script_in_a_world_writable_directory")
        || !require_tool("python3", "python3")
    {
        return;
    }
    let ns = Netns::new("pa8").unwrap();
    let dir = std::env::temp_dir().join(format!("pa-item8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("evil.py"),
        "import socket, time\n\
         s = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('0.0.0.0', 4444)); s.listen(4)\n\
         print('ready', flush=True)\n\
         time.sleep(120)\n",
    )
    .unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let child = ns
        .command("/usr/bin/python3")
        .arg("evil.py")
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut evil = Evil {
        child,
        dir: dir.clone(),
    };
    let mut line = String::new();
    std::io::BufReader::new(evil.child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");

    let out = ns
        .command(env!("CARGO_BIN_EXE_portolan"))
        .args(["audit", "--json", "--today", "2026-11-27"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let found: Vec<&serde_json::Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["port"] == 4444 && f["rule"] == "writable-executable")
        .collect();
    assert_eq!(found.len(), 1, "{v:#}");
    let f = found[0];
    let msg = f["message"].as_str().unwrap();
    let d = dir.display();
    assert!(
        msg.contains(&format!(
            "running python on the script {d}/evil.py: {d} is world-writable"
        )),
        "{msg}"
    );
    assert_eq!(f["severity"], "high", "{f:#}");
    // The interpreter is the executable; the script is what was judged.
    assert!(
        f["evidence"][0]["exe"]
            .as_str()
            .unwrap()
            .starts_with("/usr/bin/python3"),
        "{f:#}"
    );
    drop(evil);
    assert!(!dir.exists());
}
