//! End-to-end tests of `portolan scan` against test hosts in network namespaces: a
//! scanner namespace runs the binary, a target namespace has listeners and nftables rules.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use portolan_testkit::{Netns, Pair, require_root, require_tool};

const BIN: &str = env!("CARGO_BIN_EXE_portolan");

/// Listeners for the target: TCP ports given on the command line (dual-stack), a UDP port
/// that answers (53), one that stays silent (161).
const LISTENERS: &str = r#"
import socket, sys, select
socks = []
for p in [int(a) for a in sys.argv[1:]]:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", p)); s.listen(1024); socks.append(s)
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
u.bind(("::", 53))
q = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
q.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
q.bind(("::", 161))
print("ready", flush=True)
while True:
    r, _, _ = select.select(socks + [u, q], [], [])
    for s in r:
        if s is u:
            data, addr = u.recvfrom(4096)
            try:
                u.sendto(b"answer:" + data[:16], addr)
            except OSError:
                pass  # dropped by the loss rule (EPERM)
        elif s is q:
            q.recvfrom(4096)
        else:
            try:
                c, _ = s.accept(); c.close()
            except OSError:
                pass
"#;

/// Ports of the standard target.
const OPEN: [u16; 4] = [22, 80, 443, 8080];
const CLOSED: [u16; 2] = [23, 25];
const DROPPED: u16 = 135;
const REJECTED: u16 = 445;

fn ok(test: &str) -> bool {
    require_root(test)
        && require_tool(test, "ip")
        && require_tool(test, "nft")
        && require_tool(test, "python3")
}

/// Starts listeners on `ports` and waits until they listen.
fn listen(ns: &mut Netns, ports: &[u16]) {
    let mut args = vec!["-c".to_string(), LISTENERS.to_string()];
    args.extend(ports.iter().map(u16::to_string));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ns.spawn("python3", &args).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = ns.exec("ss", &["-Hltn"]).unwrap_or_default();
        let udp = ns.exec("ss", &["-Hlun"]).unwrap_or_default();
        if out.lines().count() >= ports.len() && udp.lines().count() >= 2 {
            return;
        }
        assert!(Instant::now() < deadline, "listeners did not start: {out}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The standard firewall of the target: drop one port, reject another with
/// admin-prohibited, drop UDP 137; and optionally random loss both ways.
fn firewall(ns: &Netns, loss: Option<u32>) {
    let loss_rule = loss.map_or(String::new(), |n| {
        format!("numgen random mod 100 < {n} drop")
    });
    ns.nft(&format!(
        "table inet t {{
  chain input {{
    type filter hook input priority 0; policy accept;
    {loss_rule}
    tcp dport {DROPPED} drop
    tcp dport {REJECTED} reject with icmpx type admin-prohibited
    udp dport 137 drop
    udp dport 138 reject with icmpx type admin-prohibited
  }}
  chain output {{
    type filter hook output priority 0; policy accept;
    {loss_rule}
  }}
}}"
    ))
    .unwrap();
}

fn target(prefix: &str, open: &[u16], loss: Option<u32>) -> Pair {
    let mut pair = Pair::new(prefix).unwrap();
    listen(&mut pair.target, open);
    firewall(&pair.target, loss);
    pair
}

fn scan(pair: &Pair, args: &[&str]) -> Output {
    pair.scanner
        .command(BIN)
        .arg("scan")
        .args(args)
        .output()
        .unwrap()
}

/// Port results of a `--json --all` run: (port, protocol) -> (state, reason).
fn results(out: &Output) -> BTreeMap<(u16, String), (String, String)> {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().last().unwrap_or("").contains("\"summary\""),
        "no summary line; stderr: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["type"] == "port" {
            let key = (
                v["port"].as_u64().unwrap() as u16,
                v["protocol"].as_str().unwrap().to_string(),
            );
            let val = (
                v["state"].as_str().unwrap().to_string(),
                v["reason"].as_str().unwrap().to_string(),
            );
            assert!(m.insert(key, val).is_none(), "port reported twice: {line}");
        }
    }
    m
}

fn open_set(out: &Output) -> BTreeSet<u16> {
    results(out)
        .into_iter()
        .filter(|(_, (s, _))| s == "open")
        .map(|((p, _), _)| p)
        .collect()
}

fn check_states(r: &BTreeMap<(u16, String), (String, String)>, closed_reason: &str) {
    let get = |p: u16| r.get(&(p, "tcp".to_string())).cloned().unwrap();
    for p in OPEN {
        assert_eq!(get(p), ("open".into(), "syn-ack".into()), "port {p}");
    }
    for p in CLOSED {
        assert_eq!(get(p), ("closed".into(), closed_reason.into()), "port {p}");
    }
    assert_eq!(get(DROPPED), ("filtered".into(), "no-response".into()));
    assert_eq!(
        get(REJECTED),
        ("filtered".into(), "admin-prohibited".into())
    );
}

const PORTS: &str = "22,23,25,80,135,443,445,8080";

#[test]
fn every_tcp_state_syn_and_connect_v4_and_v6() {
    if !ok("every_tcp_state") {
        return;
    }
    let pair = target("ps", &OPEN, None);
    for host in [Pair::TARGET_V4, Pair::TARGET_V6] {
        let out = scan(&pair, &["-sS", "--json", "--all", "-Pn", "-p", PORTS, host]);
        assert!(out.status.success(), "{out:?}");
        check_states(&results(&out), "reset");
        let out = scan(&pair, &["-sT", "--json", "--all", "-Pn", "-p", PORTS, host]);
        assert!(out.status.success(), "{out:?}");
        check_states(&results(&out), "conn-refused");
    }
}

#[test]
fn udp_states() {
    if !ok("udp_states") {
        return;
    }
    let pair = target("ps", &OPEN, None);
    for host in [Pair::TARGET_V4, Pair::TARGET_V6] {
        let out = scan(
            &pair,
            &[
                "-sU",
                "--json",
                "--all",
                "-Pn",
                "-p",
                "53,69,137,138,161",
                host,
            ],
        );
        let r = results(&out);
        let get = |p: u16| r.get(&(p, "udp".to_string())).cloned().unwrap();
        assert_eq!(get(53), ("open".into(), "udp-response".into()), "{host}");
        assert_eq!(get(69), ("closed".into(), "port-unreach".into()), "{host}");
        assert_eq!(get(137), ("open|filtered".into(), "no-response".into()));
        assert_eq!(get(138), ("filtered".into(), "admin-prohibited".into()));
        assert_eq!(get(161), ("open|filtered".into(), "no-response".into()));
        assert!(out.status.success());
    }
}

#[test]
fn discovery_finds_up_and_down_hosts() {
    if !ok("discovery") {
        return;
    }
    let pair = target("ps", &OPEN, None);
    for mode in ["-sS", "-sT"] {
        let out = scan(&pair, &[mode, "--json", "-p", "22", "198.18.0.2-3"]);
        let text = String::from_utf8_lossy(&out.stdout);
        let hosts: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|v: &serde_json::Value| v["type"] == "host")
            .collect();
        let state = |h: &str| {
            hosts
                .iter()
                .find(|v| v["host"] == h)
                .map(|v| v["state"].as_str().unwrap().to_string())
        };
        assert_eq!(state("198.18.0.2").as_deref(), Some("up"), "{mode}: {text}");
        assert_eq!(
            state("198.18.0.3").as_deref(),
            Some("down"),
            "{mode}: {text}"
        );
        assert_eq!(open_set(&out), BTreeSet::from([22]));
    }
}

/// 100 listeners spread over 1-5000.
fn many_ports() -> Vec<u16> {
    (0..100).map(|i| 7 + i * 47).collect()
}

fn lossy(loss: u32) {
    let test = format!("loss_{loss}");
    if !ok(&test) {
        return;
    }
    let open = many_ports();
    let pair = target("ps", &open, Some(loss));
    let want: BTreeSet<u16> = open.iter().copied().collect();
    for mode in ["-sS", "-sT"] {
        let t = Instant::now();
        let out = scan(
            &pair,
            &[mode, "--json", "-Pn", "-p", "1-5000", Pair::TARGET_V4],
        );
        assert_eq!(open_set(&out), want, "{mode} under {loss}% loss");
        eprintln!("{mode} with {loss}% loss both ways: {:?}", t.elapsed());
    }
    // UDP: the answering port is found, the closed one is not taken for open.
    let out = scan(
        &pair,
        &[
            "-sU",
            "--json",
            "--all",
            "-Pn",
            "-p",
            "53,69,161",
            Pair::TARGET_V4,
        ],
    );
    let r = results(&out);
    assert_eq!(r[&(53, "udp".into())].0, "open");
    assert_ne!(r[&(69, "udp".into())].0, "open");
    assert_eq!(r[&(161, "udp".into())].0, "open|filtered");
}

#[test]
fn exact_under_5_percent_loss_both_ways() {
    lossy(5);
}

#[test]
fn exact_under_10_percent_loss_both_ways() {
    lossy(10);
}

#[test]
fn full_connect_scan_with_256_descriptors() {
    if !ok("ulimit_256") {
        return;
    }
    let open = many_ports();
    let pair = target("ps", &open, None);
    let cmd = format!(
        "ulimit -n 256 && exec {BIN} scan -sT --json -Pn -p- {}",
        Pair::TARGET_V4
    );
    let out = pair
        .scanner
        .command("sh")
        .args(["-c", &cmd])
        .output()
        .unwrap();
    assert_eq!(open_set(&out), open.iter().copied().collect(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"closed\":65433,") && text.contains("\"filtered\":2,"),
        "{}",
        text.lines().last().unwrap()
    );
}

#[test]
fn loopback_self_connects_are_not_open() {
    if !ok("self_connect") {
        return;
    }
    // A narrow ephemeral range makes the kernel pick source port == destination port
    // often; nothing listens there, so nothing may come out open.
    let mut ns = Netns::new("ps").unwrap();
    ns.exec(
        "sysctl",
        &["-qw", "net.ipv4.ip_local_port_range=40000 40019"],
    )
    .unwrap();
    listen(&mut ns, &[5000]);
    let mut selfs = 0;
    for _ in 0..5 {
        let out = ns
            .command(BIN)
            .args([
                "scan",
                "-sT",
                "--json",
                "-Pn",
                "-p",
                "5000,40000-40019",
                "127.0.0.1",
            ])
            .output()
            .unwrap();
        assert_eq!(open_set(&out), BTreeSet::from([5000]), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let summary: serde_json::Value =
            serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(summary["closed"], 20, "{text}");
        selfs += summary["self_connects"].as_u64().unwrap();
    }
    // The trap was really there, and was stepped around.
    assert!(
        selfs > 0,
        "no self-connect happened; the test proves nothing"
    );
}

#[test]
fn xml_validates_and_ndiff_reads_it() {
    if !ok("xml") || !require_tool("xml", "xmllint") || !require_tool("xml", "ndiff") {
        return;
    }
    let pair = target("ps", &OPEN, None);
    let dir = std::env::temp_dir().join(format!("portolan-xml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ours = dir.join("ours.xml");
    let nmap = dir.join("nmap.xml");
    let out = scan(
        &pair,
        &[
            "-sS",
            "-p",
            PORTS,
            "-oX",
            ours.to_str().unwrap(),
            Pair::TARGET_V4,
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let v = Command::new("xmllint")
        .args(["--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd"])
        .arg(&ours)
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    if require_tool("xml", "nmap") {
        let n = pair
            .scanner
            .command("nmap")
            .args([
                "-sS",
                "-n",
                "-p",
                PORTS,
                "-oX",
                nmap.to_str().unwrap(),
                Pair::TARGET_V4,
            ])
            .output()
            .unwrap();
        assert!(n.status.success());
        // ndiff reads both and finds the same ports in the same states (service names
        // differ: nmap names them from its own table, portolan from IANA's).
        let d = Command::new("ndiff")
            .arg(&nmap)
            .arg(&ours)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&d.stdout);
        let ports = |sign: char| -> BTreeSet<(String, String)> {
            text.lines()
                .filter(|l| l.starts_with(sign) && l.contains("/tcp"))
                .map(|l| {
                    let f: Vec<&str> = l[1..].split_whitespace().collect();
                    (f[0].to_string(), f[1].to_string())
                })
                .collect()
        };
        assert_eq!(ports('-'), ports('+'), "ndiff: {text}");
        assert!(
            text.contains("198.18.0.2"),
            "ndiff did not read the hosts: {text}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_exits_2_and_names_the_token() {
    for (args, token) in [
        (vec!["-p", "22,80-70", "127.0.0.1"], "80-70"),
        (vec!["-p", "nosuchservice", "127.0.0.1"], "nosuchservice"),
        (vec!["-p", "70000", "127.0.0.1"], "70000"),
        (vec!["-p", "22", "198.18.0.1/33"], "198.18.0.1/33"),
        (vec!["-p", "22", "10.0.0.0/4"], "more than the limit"),
        (vec!["-p", "22", "bad_host!"], "bad_host!"),
        (vec!["-n", "-p", "22", "example.invalid"], "example.invalid"),
        (
            vec!["-p", "22", "no-such-host.invalid"],
            "no-such-host.invalid",
        ),
        (
            vec!["-p", "22", "--timeout", "5parsecs", "127.0.0.1"],
            "5parsecs",
        ),
        (vec!["-p", "22"], "no targets"),
        (
            vec!["-p", "22", "-iL", "/nonexistent/targets.txt"],
            "/nonexistent/targets.txt",
        ),
        (
            vec!["-p", "22", "-sT", "-sS", "127.0.0.1"],
            "choose one TCP scan mode",
        ),
    ] {
        let out = Command::new(BIN).arg("scan").args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(token), "{args:?}: {err}");
    }
}

#[test]
fn udp_waits_out_the_icmp_rate_limit() {
    if !ok("udp_icmp_rate_limit") {
        return;
    }
    // Linux answers a burst of 6 port-unreachables, then one a second: 12 closed ports
    // are only all seen as closed if the scan paces itself down to that.
    let pair = target("ps", &OPEN, None);
    let t = Instant::now();
    let out = scan(
        &pair,
        &[
            "-sU",
            "--json",
            "--all",
            "-Pn",
            "-p",
            "2000-2011,53",
            Pair::TARGET_V4,
        ],
    );
    let r = results(&out);
    for p in 2000..=2011 {
        assert_eq!(
            r[&(p, "udp".to_string())],
            ("closed".into(), "port-unreach".into()),
            "{p}"
        );
    }
    assert_eq!(r[&(53, "udp".to_string())].0, "open");
    eprintln!(
        "12 closed UDP ports behind the ICMP limit: {:?}",
        t.elapsed()
    );
}

#[test]
fn without_privileges_connect_is_the_default_and_syn_is_refused() {
    if !ok("unprivileged") || !require_tool("unprivileged", "setpriv") {
        return;
    }
    let pair = target("ps", &OPEN, None);
    let nobody = |args: &[&str]| {
        pair.scanner
            .command("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(BIN)
            .arg("scan")
            .args(args)
            .output()
            .unwrap()
    };
    let out = nobody(&["--json", "-p", PORTS, Pair::TARGET_V4]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"mode\":\"connect\""), "{text}");
    check_states(&results(&out), "conn-refused");
    let out = nobody(&["-sS", "-p", "22", Pair::TARGET_V4]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CAP_NET_RAW"));
}

#[test]
fn rate_cap_names_and_retry_limit() {
    if !ok("rate_names") {
        return;
    }
    let pair = target("ps", &OPEN, None);
    // --rate: 600 probes at 2000/s take at least a quarter second, in either mode.
    for mode in ["-sS", "-sT"] {
        let t = Instant::now();
        let out = scan(
            &pair,
            &[
                mode,
                "--json",
                "-Pn",
                "--rate",
                "2000",
                "-p",
                "1-600",
                Pair::TARGET_V4,
            ],
        );
        assert_eq!(open_set(&out), BTreeSet::from([22, 80, 443]), "{mode}");
        assert!(
            t.elapsed() >= Duration::from_millis(250),
            "{mode}: {:?}",
            t.elapsed()
        );
    }
    // --max-retries 0: a dropped port is given up after one try, still filtered.
    let out = scan(
        &pair,
        &[
            "-sS",
            "--json",
            "--all",
            "-Pn",
            "--max-retries",
            "0",
            "-p",
            "135",
            Pair::TARGET_V4,
        ],
    );
    assert_eq!(results(&out)[&(135, "tcp".into())].0, "filtered");
    // Host names resolve (here through /etc/hosts) and are kept for the XML report.
    let dir = std::env::temp_dir().join(format!("portolan-names-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let xml = dir.join("n.xml");
    let out = pair
        .scanner
        .command(BIN)
        .args([
            "scan",
            "-sT",
            "--json",
            "-p",
            "9",
            "localhost",
            "-oX",
            xml.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"host\":\"127.0.0.1\""),
        "{out:?}"
    );
    let text = std::fs::read_to_string(&xml).unwrap();
    assert!(
        text.contains("<hostname name=\"localhost\" type=\"user\"/>"),
        "{text}"
    );
    // -iL reads targets from a file, comments and all; --exclude takes one back out.
    let list = dir.join("targets.txt");
    std::fs::write(&list, "# lab\n198.18.0.2  # the target\n198.18.0.1\n").unwrap();
    let out = scan(
        &pair,
        &[
            "-sS",
            "--json",
            "-Pn",
            "-p",
            "22",
            "-iL",
            list.to_str().unwrap(),
            "--exclude",
            "198.18.0.1",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"hosts_total\":1"), "{text}");
    assert_eq!(open_set(&out), BTreeSet::from([22]));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn syn_backs_off_under_congestion_and_stays_exact() {
    if !ok("congestion") {
        return;
    }
    // The target takes at most 5,000 SYNs a second and drops the rest: loss that grows
    // with the send rate. Sending on at full speed would lose most probes every round.
    let open = many_ports();
    let pair = target("ps", &open, None);
    pair.target
        .nft(
            "table inet c {
  chain i {
    type filter hook input priority 0;
    tcp flags syn limit rate over 5000/second burst 500 packets drop
  }
}",
        )
        .unwrap();
    let t = Instant::now();
    let out = scan(
        &pair,
        &["-sS", "--json", "-Pn", "-p", "1-5000", Pair::TARGET_V4],
    );
    assert_eq!(open_set(&out), open.iter().copied().collect());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"closed\":4898,"),
        "{}",
        text.lines().last().unwrap()
    );
    eprintln!("5000 ports through a 5000 SYN/s limit: {:?}", t.elapsed());
}

#[test]
fn conflicting_output_flags_are_a_usage_error() {
    for (args, names) in [
        (vec!["--json", "--format", "csv"], ["--json", "--format"]),
        (vec!["-oX", "-", "--json"], ["-oX", "--json"]),
        (vec!["-oX", "-", "--format", "csv"], ["-oX", "--format"]),
    ] {
        let out = Command::new(BIN)
            .arg("scan")
            .args(&args)
            .args(["-p", "1", "127.0.0.1"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        for n in names {
            assert!(err.contains(n), "{args:?} must name {n}: {err}");
        }
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn udp_only_scan_reports_no_tcp_mode() {
    if !ok("udp_only_mode") {
        return;
    }
    let pair = target("ps", &OPEN, None);
    let out = scan(
        &pair,
        &["-sU", "--json", "-Pn", "-p", "53", Pair::TARGET_V4],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["type"] == "summary")
        .unwrap();
    assert!(summary["mode"].is_null(), "{text}");
    assert_eq!(summary["udp"], true, "{text}");
    let out = scan(&pair, &["-sU", "-Pn", "-p", "53", Pair::TARGET_V4]);
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap();
    assert!(last.ends_with("(udp scan)"), "{text}");
    assert!(!text.contains("syn"), "{text}");
}

/// User and system CPU time of a child, read from /proc/PID/stat once it has exited (a
/// zombie keeps its times until it is reaped); the child is then reaped.
fn child_cpu(mut child: std::process::Child) -> Duration {
    let tick = 100.0; // USER_HZ on Linux
    let path = format!("/proc/{}/stat", child.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    let cpu = loop {
        let stat = std::fs::read_to_string(&path).unwrap();
        // The fields after the command name, which is in parentheses.
        let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks = |i: usize| rest[i].parse::<f64>().unwrap();
        if rest[0] == "Z" {
            break Duration::from_secs_f64((ticks(11) + ticks(12)) / tick);
        }
        assert!(Instant::now() < deadline, "the scan did not end");
        std::thread::sleep(Duration::from_millis(50));
    };
    child.wait().unwrap();
    cpu
}

#[test]
fn rate_limited_connect_scan_sleeps_instead_of_spinning() {
    // `-sT --rate 2 -p 1-10` took 5.7 s of CPU in 4 s: a stale deadline made the wait
    // zero between two tokens.
    let t = Instant::now();
    let child = Command::new(BIN)
        .args([
            "scan",
            "-sT",
            "-Pn",
            "--rate",
            "2",
            "-p",
            "1-10",
            "127.0.0.1",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let cpu = child_cpu(child);
    let wall = t.elapsed();
    assert!(
        wall >= Duration::from_secs(3),
        "the rate was not honoured: {wall:?}"
    );
    assert!(
        cpu < Duration::from_millis(500),
        "{cpu:?} of CPU in {wall:?}"
    );
}

/// A DNS server on UDP 5300 that ignores the scan's empty datagram and answers only
/// queries (the reply echoes the question with QR set): silent to the scan, heard by
/// detection.
const DNS_ONLY: &str = r#"
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", 5300))
print("ready", flush=True)
while True:
    data, addr = u.recvfrom(4096)
    if len(data) >= 12 and data[2] & 0x80 == 0 and data[4:6] == b"\x00\x01":
        r = bytearray(data); r[2] |= 0x80
        u.sendto(bytes(r), addr)
"#;

#[test]
fn udp_port_that_answers_detection_is_open() {
    if !ok("udp_detect_open") {
        return;
    }
    let mut pair = target("ps", &OPEN, None);
    pair.target.spawn("python3", &["-c", DNS_ONLY]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pair
        .target
        .exec("ss", &["-Hlun", "sport = :5300"])
        .unwrap_or_default()
        .contains("5300")
    {
        assert!(Instant::now() < deadline, "the DNS responder did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let base = ["-sU", "-Pn", "-p", "161,5300", "--timeout", "1"];
    // Without detection the port is silent: open|filtered.
    let out = scan(
        &pair,
        &[&base[..], &["--json", "--all", Pair::TARGET_V4]].concat(),
    );
    let r = results(&out);
    assert_eq!(r[&(5300, "udp".into())].0, "open|filtered");
    // With it, the answer makes it open; the silent 161 stays open|filtered.
    let dir = std::env::temp_dir().join(format!("portolan-udpd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let xml = dir.join("scan.xml");
    let detect = [&base[..], &["--detect", "--all"]].concat();
    let out = scan(
        &pair,
        &[
            &detect[..],
            &["--json", "-oX", xml.to_str().unwrap(), Pair::TARGET_V4],
        ]
        .concat(),
    );
    let r = results(&out);
    assert_eq!(
        r[&(5300, "udp".into())],
        ("open".into(), "udp-response".into())
    );
    assert_eq!(r[&(161, "udp".into())].0, "open|filtered");
    let text = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["type"] == "summary")
        .unwrap();
    assert_eq!(summary["open"], 1, "{text}");
    assert_eq!(summary["open_filtered"], 1, "{text}");
    assert!(out.status.success(), "an open port was found: exit 0");
    let x = std::fs::read_to_string(&xml).unwrap();
    assert!(
        x.contains(
            r#"<port protocol="udp" portid="5300"><state state="open" reason="udp-response""#
        ),
        "{x}"
    );
    // The table and CSV say the same.
    let out = scan(&pair, &[&detect[..], &[Pair::TARGET_V4]].concat());
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text.lines().find(|l| l.contains("5300/udp")).unwrap();
    assert!(
        row.contains(" open ") && row.contains("udp-response"),
        "{text}"
    );
    assert!(text.contains("1 open port"), "{text}");
    let out = scan(
        &pair,
        &[&detect[..], &["--format", "csv", Pair::TARGET_V4]].concat(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("198.18.0.2,5300,udp,open,udp-response,"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn down_hosts_are_counted_not_listed_and_no_route_says_what_was_measured() {
    if !ok("down_hosts") {
        return;
    }
    // A /24 printed 253 "down" lines before the table, and a host without a route was
    // "a broadcast address?".
    let pair = target("ps", &OPEN, None);
    // 198.19.0.1 has no route from the scanner: nothing is sent to it.
    let args = ["-sS", "-p", "22", "198.18.0.0/28", "198.19.0.1"];
    let out = scan(&pair, &args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains(": down"), "{text}");
    assert!(!text.contains("broadcast address?"), "{text}");
    let down = text.lines().find(|l| l.contains("hosts down")).unwrap();
    assert!(down.starts_with("15 hosts down ("), "{text}");
    assert!(down.contains("1 no route to it: net-unreach"), "{text}");
    assert!(text.contains("198.18.0.2  22/tcp"), "{text}");
    let out = scan(&pair, &[&args[..], &["--show-down"]].concat());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("198.19.0.1: down (no route to it: net-unreach)"),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.contains(": down (")).count(),
        15,
        "{text}"
    );
    assert!(!text.contains("hosts down"), "{text}");
}

/// The target's link-local address on its veth, once duplicate address detection is
/// done (a tentative address cannot be used).
fn link_local(ns: &Netns) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = ns
            .exec(
                "ip",
                &["-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"],
            )
            .unwrap_or_default();
        if let Some(l) = out.lines().find(|l| !l.contains("tentative")) {
            let f: Vec<&str> = l.split_whitespace().collect();
            let i = f.iter().position(|w| *w == "inet6").unwrap();
            return f[i + 1].split('/').next().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no link-local address: {out}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn scoped_link_local_targets_are_scanned() {
    if !ok("scoped_link_local") {
        return;
    }
    // `scan fe80::1%eth0` was refused, although `detect` takes it.
    let pair = target("ps", &OPEN, None);
    let addr = link_local(&pair.target);
    // The scanner sends from its own link-local address: wait until it has left DAD's
    // tentative state too, or the first probes go nowhere.
    link_local(&pair.scanner);
    for scoped in [format!("{addr}%eth0"), format!("[{addr}%eth0]")] {
        for mode in ["-sT", "-sS"] {
            let out = scan(&pair, &[mode, "--json", "--all", "-p", "22,23", &scoped]);
            let r = results(&out);
            assert_eq!(r[&(22, "tcp".into())].0, "open", "{mode} {scoped}: {out:?}");
            assert_eq!(r[&(23, "tcp".into())].0, "closed", "{mode} {scoped}");
        }
    }
    let out = scan(
        &pair,
        &[
            "-sU",
            "--json",
            "--all",
            "-Pn",
            "-p",
            "53,69",
            &format!("{addr}%eth0"),
        ],
    );
    let r = results(&out);
    assert_eq!(
        r[&(53, "udp".into())],
        ("open".into(), "udp-response".into())
    );
    assert_eq!(r[&(69, "udp".into())].0, "closed");
    // By interface index too, and a bad scope is a usage error.
    let index = pair
        .scanner
        .exec("cat", &["/sys/class/net/eth0/ifindex"])
        .unwrap();
    let out = scan(
        &pair,
        &[
            "-sT",
            "--json",
            "-p",
            "22",
            &format!("{addr}%{}", index.trim()),
        ],
    );
    assert_eq!(open_set(&out), BTreeSet::from([22]));
    for bad in [format!("{addr}%nosuch0"), "2001:2::2%eth0".to_string()] {
        let out = scan(&pair, &["-sT", "-p", "22", &bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(&bad), "{bad}");
    }
}

/// UDP listeners that answer whatever comes (an empty datagram too), on the ports given.
const UDP_ECHO: &str = r#"
import socket, sys, select
socks = []
for p in [int(a) for a in sys.argv[1:]]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", p)); socks.append(s)
print("ready", flush=True)
while True:
    r, _, _ = select.select(socks, [], [])
    for s in r:
        data, addr = s.recvfrom(4096)
        s.sendto(data or b"hello", addr)
"#;

/// Ports `first..first+n`, every 11th open: (all, open).
fn udp_bed(first: u16, n: u16) -> (Vec<u16>, Vec<u16>) {
    let all: Vec<u16> = (first..first + n).collect();
    let open = all
        .iter()
        .copied()
        .filter(|p| (p - first) % 11 == 0)
        .collect();
    (all, open)
}

/// States of a `-oX` file from nmap or portolan, for `ports`: the listed ones, and the
/// others in the state of `<extraports>`.
fn xml_states(path: &std::path::Path, ports: &[u16]) -> BTreeMap<u16, String> {
    let x = std::fs::read_to_string(path).unwrap();
    let mut out = BTreeMap::new();
    let extra = x.find("<extraports state=\"").map(|i| {
        let s = &x[i + 19..];
        s[..s.find('"').unwrap()].to_string()
    });
    for part in x.split("<port protocol=\"udp\" portid=\"").skip(1) {
        let port: u16 = part[..part.find('"').unwrap()].parse().unwrap();
        let st = &part[part.find("<state state=\"").unwrap() + 14..];
        out.insert(port, st[..st.find('"').unwrap()].to_string());
    }
    for p in ports {
        if let Some(e) = &extra {
            out.entry(*p).or_insert_with(|| e.clone());
        }
    }
    out
}

#[test]
fn udp_closed_ports_at_the_icmp_rate_limit_floor() {
    if !ok("udp_floor") {
        return;
    }
    // 200 UDP ports with 182 closed took 249 s, where nmap -sU -T4 took 178 s; both are
    // bound by the target's ICMP limit (a burst of 6, then one error a second), which is
    // the floor. PORTOLAN_UDP_BED=200 runs the full bed (about 6 minutes with nmap).
    let n: u16 = std::env::var("PORTOLAN_UDP_BED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let (all, open) = udp_bed(3000, n);
    let mut pair = Pair::new("pf").unwrap();
    let mut args = vec!["-c".to_string(), UDP_ECHO.to_string()];
    args.extend(open.iter().map(u16::to_string));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    pair.target.spawn("python3", &args).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pair
        .target
        .exec("ss", &["-Hlun"])
        .unwrap_or_default()
        .lines()
        .count()
        < open.len()
    {
        assert!(Instant::now() < deadline, "the UDP listeners did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let spec = format!("{}-{}", all[0], all[all.len() - 1]);
    let dir = std::env::temp_dir().join(format!("portolan-udpfloor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ours = dir.join("ours.xml");
    let t = Instant::now();
    let out = scan(
        &pair,
        &[
            "-sU",
            "-Pn",
            "-p",
            &spec,
            "-oX",
            ours.to_str().unwrap(),
            Pair::TARGET_V4,
        ],
    );
    let took = t.elapsed();
    assert!(out.status.success(), "{out:?}");
    let got = xml_states(&ours, &all);
    let closed = all.len() - open.len();
    for p in &all {
        let want = if open.contains(p) { "open" } else { "closed" };
        assert_eq!(got[p], want, "{p}");
    }
    // The floor: the burst answers at once, then one closed port a second.
    let floor = Duration::from_secs(closed.saturating_sub(6) as u64);
    eprintln!("portolan: {n} UDP ports, {closed} closed: {took:?} (floor {floor:?})");
    assert!(
        took < floor + floor / 10 + Duration::from_secs(4),
        "{took:?} against a floor of {floor:?}"
    );
    if require_tool("udp_floor", "nmap") {
        let theirs = dir.join("nmap.xml");
        // Let the target's bucket fill again, as it was for portolan.
        std::thread::sleep(Duration::from_secs(7));
        let t = Instant::now();
        let o = pair
            .scanner
            .command("nmap")
            .args(["-sU", "-T4", "-n", "-Pn", "-p", &spec, "-oX"])
            .arg(&theirs)
            .arg(Pair::TARGET_V4)
            .output()
            .unwrap();
        assert!(o.status.success());
        let nm = xml_states(&theirs, &all);
        let exact = all.iter().filter(|p| nm[p] == got[p]).count();
        eprintln!(
            "nmap -sU -T4: {:?}, {exact} of {} ports in the true state",
            t.elapsed(),
            all.len()
        );
        // Where nmap is sure (open or closed), it agrees; it may give up on closed
        // ports behind the limit and call them open|filtered.
        for p in &all {
            if nm[p] != "open|filtered" {
                assert_eq!(got[p], nm[p], "port {p}: portolan and nmap differ");
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
