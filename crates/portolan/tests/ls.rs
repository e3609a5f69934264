//! `portolan ls` against the real kernel, in network namespaces (root only), with `ss` as
//! the oracle.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use portolan_testkit::{Netns, require_root, require_tool};
use serde_json::Value;

const PORTOLAN: &str = env!("CARGO_BIN_EXE_portolan");

fn script() -> String {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../portolan-inventory/tests/sockets.py");
    p.to_string_lossy().into_owned()
}

static N: AtomicU32 = AtomicU32::new(0);

/// Starts `sockets.py` with `specs` inside `ns` and waits until every socket is open.
fn open_sockets(ns: &mut Netns, specs: &[&str]) {
    open_sockets_as(ns, None, specs);
}

/// The same, with the process named `comm`.
fn open_sockets_as(ns: &mut Netns, comm: Option<&str>, specs: &[&str]) {
    let ready = std::env::temp_dir().join(format!(
        "pi-ready-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&ready);
    let ready_s = ready.to_string_lossy().into_owned();
    let script = script();
    let mut args = vec![script.as_str(), "--ready", ready_s.as_str()];
    if let Some(c) = comm {
        args.extend_from_slice(&["--comm", c]);
    }
    args.extend_from_slice(specs);
    ns.spawn("python3", &args).unwrap();
    let start = Instant::now();
    while !ready.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "sockets.py did not get ready in {}",
            ns.name()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_file(&ready);
}

/// One socket as both tools see it: protocol, address, port, owning pids, inode.
type Row = (String, String, u16, Vec<u32>, u64);

/// Parses `ss -H -tulnpe` lines.
fn ss_rows(text: &str) -> BTreeSet<Row> {
    let mut rows = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (addr, port) = f[4].rsplit_once(':').unwrap();
        let addr = addr.split('%').next().unwrap();
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        // ss writes a dual-stack [::] as `*`.
        let addr = if addr == "*" { "::" } else { addr };
        let mut pids: Vec<u32> = line
            .split("pid=")
            .skip(1)
            .map(|p| {
                p.split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        let ino = f
            .iter()
            .find_map(|w| w.strip_prefix("ino:"))
            .unwrap()
            .parse()
            .unwrap();
        rows.insert((
            f[0].to_string(),
            addr.to_string(),
            port.parse().unwrap(),
            pids,
            ino,
        ));
    }
    rows
}

fn portolan_rows(json: &Value) -> BTreeSet<Row> {
    json.as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let mut pids: Vec<u32> = l["processes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["pid"].as_u64().unwrap() as u32)
                .collect();
            pids.sort_unstable();
            (
                l["protocol"].as_str().unwrap().to_string(),
                l["address"].as_str().unwrap().to_string(),
                l["port"].as_u64().unwrap() as u16,
                pids,
                l["inode"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn portolan(cmd: &mut Command) -> Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn find<'a>(json: &'a Value, proto: &str, port: u64) -> Vec<&'a Value> {
    json.as_array()
        .unwrap()
        .iter()
        .filter(|l| l["protocol"] == proto && l["port"] == port)
        .collect()
}

const MIX: [&str; 22] = [
    "tcp:127.0.0.1:7001",
    "tcp:198.18.5.1:7002",
    "tcp:0.0.0.0:7003",
    "tcp6:[::1]:7004",
    "tcp6:[2001:2::5]:7005",
    "tcp6:[::]:7006:dual",
    "tcp6:[::]:7007:v6only",
    "udp:127.0.0.1:7101",
    "udp:198.18.5.1:7102",
    "udp:0.0.0.0:7103",
    "udp6:[::1]:7104",
    "udp6:[::]:7105:dual",
    "udp6:[::]:7106:v6only",
    "tcp:0.0.0.0:7200:reuseport",
    "tcp:0.0.0.0:7200:reuseport",
    "udp6:[::]:7201:reuseport,dual",
    "udp6:[::]:7201:reuseport,dual",
    "tcp:0.0.0.0:7300:share",
    "udp6:[::]:7301:dual,share",
    "tcp:0.0.0.0:7400:dev=d0",
    "tcp6:[::]:7401:dual,dev=lo",
    // A connected UDP client: not a listener.
    "udp:0.0.0.0:7500:connect=127.0.0.1:7101",
];

fn mixed_namespace(prefix: &str) -> Netns {
    let mut ns = Netns::new(prefix).unwrap();
    ns.ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d1"])
        .unwrap();
    ns.ip(&["link", "set", "d1", "up"]).unwrap();
    ns.ip(&["link", "set", "d0", "up"]).unwrap();
    ns.addr("d0", "198.18.5.1/24").unwrap();
    ns.addr("d0", "2001:2::5/64").unwrap();
    open_sockets(&mut ns, &MIX);
    ns
}

/// The oracle: the same (protocol, address, port, owning pids) as `ss`, on the
/// netlink path, the /proc path, by flag and by environment, from outside the namespace
/// (`--netns`) and from inside it (`ip netns exec`).
#[test]
fn ls_matches_ss_on_both_sources() {
    if !require_root("ls_matches_ss") || !require_tool("ls_matches_ss", "ss") {
        return;
    }
    if !require_tool("ls_matches_ss", "python3") {
        return;
    }
    let ns = mixed_namespace("pi");
    let oracle = ss_rows(&ns.exec("ss", &["-H", "-tulnpe"]).unwrap());
    assert_eq!(oracle.len(), 21, "ss sees the mix: {oracle:#?}");
    let variants: Vec<(&str, Command)> = vec![
        ("netlink --netns", {
            let mut c = Command::new(PORTOLAN);
            c.args(["ls", "--json", "--source", "netlink", "--netns", ns.name()]);
            c
        }),
        ("proc --netns", {
            let mut c = Command::new(PORTOLAN);
            c.args(["ls", "--json", "--source", "proc", "--netns", ns.name()]);
            c
        }),
        ("auto, inside", {
            let mut c = ns.command(PORTOLAN);
            c.args(["ls", "--json"]);
            c
        }),
        ("PORTOLAN_INVENTORY=proc, inside", {
            let mut c = ns.command(PORTOLAN);
            c.args(["ls", "--json"]).env("PORTOLAN_INVENTORY", "proc");
            c
        }),
    ];
    let mut first: Option<Value> = None;
    for (what, mut cmd) in variants {
        let json = portolan(&mut cmd);
        assert_eq!(portolan_rows(&json), oracle, "{what}");
        for l in json.as_array().unwrap() {
            assert_eq!(l["netns"], ns.name(), "{what}: {l}");
        }
        // Everything but the namespace inode is the same whichever way it was read.
        match &first {
            None => first = Some(json),
            Some(f) => assert_eq!(&json, f, "{what} differs from the netlink path"),
        }
    }
    let json = first.unwrap();
    let one = |proto, port| {
        let v = find(&json, proto, port);
        assert_eq!(v.len(), 1, "{proto}/{port}: {v:?}");
        v[0].clone()
    };
    assert_eq!(one("tcp", 7001)["exposure"], "loopback");
    assert_eq!(one("tcp", 7002)["exposure"], "address");
    assert_eq!(one("tcp", 7003)["exposure"], "all");
    assert_eq!(one("tcp", 7005)["exposure"], "address");
    assert_eq!(one("tcp", 7006)["v6only"], false);
    assert_eq!(one("tcp", 7006)["exposure"], "all");
    assert_eq!(one("tcp", 7007)["v6only"], true);
    assert_eq!(one("udp", 7104)["exposure"], "loopback");
    assert_eq!(one("tcp", 7400)["interface"], "d0");
    assert_eq!(one("tcp", 7401)["interface"], "lo");
    assert_eq!(one("tcp", 7401)["exposure"], "loopback");
    assert_eq!(find(&json, "tcp", 7200).len(), 2, "SO_REUSEPORT pair");
    assert_eq!(
        one("tcp", 7300)["processes"].as_array().unwrap().len(),
        2,
        "shared"
    );
    assert!(
        find(&json, "udp", 7500).is_empty(),
        "connected UDP is not a listener"
    );
    // Rows are ordered by risk.
    let exposures: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["exposure"].as_str().unwrap())
        .collect();
    let rank = |e: &str| ["all", "address", "loopback"].iter().position(|x| *x == e);
    assert!(
        exposures.windows(2).all(|w| rank(w[0]) <= rank(w[1])),
        "{exposures:?}"
    );

    // --all adds the connected client; the filters narrow.
    let mut c = Command::new(PORTOLAN);
    c.args(["ls", "--json", "--all", "--udp", "--netns", ns.name()]);
    let all = portolan(&mut c);
    let client = find(&all, "udp", 7500);
    assert_eq!(client.len(), 1);
    assert_eq!(client[0]["state"], "connected");
    assert_eq!(client[0]["remote"], "127.0.0.1:7101");
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|l| l["protocol"] == "udp")
    );
    let mut c = Command::new(PORTOLAN);
    c.args([
        "ls",
        "--json",
        "--exposed",
        "-p",
        "7001-7007,7400",
        "--netns",
        ns.name(),
    ]);
    let ports: BTreeSet<u64> = portolan(&mut c)
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, BTreeSet::from([7002, 7003, 7005, 7006, 7007, 7400]));
}

/// Sockets in two namespaces, each listed under its own namespace.
#[test]
fn all_netns_names_each_namespace() {
    if !require_root("all_netns") || !require_tool("all_netns", "python3") {
        return;
    }
    let mut a = Netns::new("pi").unwrap();
    let mut b = Netns::new("pi").unwrap();
    open_sockets(&mut a, &["tcp:0.0.0.0:7600", "udp:127.0.0.1:7601"]);
    open_sockets(&mut b, &["tcp:0.0.0.0:7600", "tcp6:[::]:7602:v6only"]);
    let mut c = Command::new(PORTOLAN);
    c.args(["ls", "--json", "--all-netns", "-p", "7600-7602"]);
    let json = portolan(&mut c);
    let mut seen: BTreeSet<(String, String, u64)> = BTreeSet::new();
    for l in json.as_array().unwrap() {
        let ns = l["netns"].as_str().unwrap().to_string();
        if ns == a.name() || ns == b.name() {
            seen.insert((
                ns,
                l["protocol"].as_str().unwrap().into(),
                l["port"].as_u64().unwrap(),
            ));
        }
    }
    let want = BTreeSet::from([
        (a.name().to_string(), "tcp".to_string(), 7600),
        (a.name().to_string(), "udp".to_string(), 7601),
        (b.name().to_string(), "tcp".to_string(), 7600),
        (b.name().to_string(), "tcp".to_string(), 7602),
    ]);
    assert_eq!(seen, want);
    // --netns reads only the one namespace.
    let mut c = Command::new(PORTOLAN);
    c.args(["ls", "--json", "--netns", b.name()]);
    let only_b = portolan(&mut c);
    let ports: BTreeSet<u64> = only_b
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, BTreeSet::from([7600, 7602]));
    // The table gets a NETNS column.
    let out = Command::new(PORTOLAN)
        .args(["ls", "--all-netns", "-p", "7600-7602"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("EXPOSURE  NETNS"), "{text}");
    assert!(text.contains(a.name()) && text.contains(b.name()), "{text}");
}

/// Without root the sockets are still listed; owners it cannot read are unknown, with
/// one line on stderr saying why.
#[test]
fn unprivileged_marks_owners_unknown() {
    if !require_root("unprivileged") || !require_tool("unprivileged", "setpriv") {
        return;
    }
    let mut ns = Netns::new("pi").unwrap();
    open_sockets(&mut ns, &["tcp:0.0.0.0:7700", "udp:127.0.0.1:7701"]);
    let out = ns
        .command("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", PORTOLAN])
        .args(["ls", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    for l in json.as_array().unwrap() {
        assert_eq!(l["owner_unknown"], true, "{l}");
        assert_eq!(l["user"], "root");
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("owner unknown for 2 sockets") && err.contains("permission denied"),
        "{err}"
    );
}

#[test]
fn missing_namespace_is_an_input_error() {
    let out = Command::new(PORTOLAN)
        .args(["ls", "--netns", "pi-no-such-namespace"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no network namespace named 'pi-no-such-namespace'"),
        "{err}"
    );
    for bad in ["80-22", "nosuchservice", "22,"] {
        let out = Command::new(PORTOLAN)
            .args(["ls", "--port", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--port {bad}");
    }
}

/// A socket held by a process named `systemd` is socket-activated, and its `.socket` unit
/// is found in the unit path.
#[test]
fn socket_activation_names_the_unit() {
    if !require_root("socket_activation") || !require_tool("socket_activation", "python3") {
        return;
    }
    let mut ns = Netns::new("pi").unwrap();
    open_sockets_as(
        &mut ns,
        Some("systemd"),
        &["tcp6:[::]:7800:dual", "udp:0.0.0.0:7801"],
    );
    let units = std::env::temp_dir().join(format!("pi-units-{}", std::process::id()));
    std::fs::create_dir_all(&units).unwrap();
    std::fs::write(
        units.join("pi-demo.socket"),
        "[Unit]\nDescription=demo\n[Socket]\nListenStream=7800\nListenDatagram=0.0.0.0:7801\n",
    )
    .unwrap();
    let mut c = Command::new(PORTOLAN);
    c.args(["ls", "--json", "--netns", ns.name()])
        .env("SYSTEMD_UNIT_PATH", &units);
    let json = portolan(&mut c);
    let _ = std::fs::remove_dir_all(&units);
    assert_eq!(json.as_array().unwrap().len(), 2, "{json}");
    for l in json.as_array().unwrap() {
        assert_eq!(l["socket_activated"], true, "{l}");
        assert_eq!(l["socket_unit"], "pi-demo.socket", "{l}");
        assert_eq!(l["processes"][0]["name"], "systemd", "{l}");
    }
}

/// A namespace no `ip netns` name points at (a container's) is found through its
/// processes and named after the lowest pid in it.
#[test]
fn all_netns_finds_unnamed_namespaces() {
    if !require_root("unnamed_netns")
        || !require_tool("unnamed_netns", "unshare")
        || !require_tool("unnamed_netns", "python3")
    {
        return;
    }
    let ready = std::env::temp_dir().join(format!("pi-ready-unshare-{}", std::process::id()));
    let _ = std::fs::remove_file(&ready);
    let mut child = Command::new("unshare")
        .args(["--net", "--", "python3", &script(), "--ready"])
        .arg(&ready)
        .arg("tcp:0.0.0.0:7650")
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !ready.exists() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_file(&ready);
    let mut c = Command::new(PORTOLAN);
    c.args(["ls", "--json", "--all-netns", "-p", "7650"]);
    let json = portolan(&mut c);
    let _ = child.kill();
    let _ = child.wait();
    let rows = json.as_array().unwrap();
    // `unshare` execs python3, so the child's pid is the namespace's only pid.
    let want = format!("pid:{}", child.id());
    assert!(
        rows.iter()
            .any(|l| l["netns"] == want.as_str() && l["processes"][0]["pid"] == child.id()),
        "{want} in {json}"
    );
}

/// The (protocol, port) pairs `portolan ls --netns NS` lists with `args`.
fn ls_ports(ns: &Netns, args: &[&str]) -> Vec<(String, u64)> {
    let json = portolan(
        Command::new(PORTOLAN)
            .args(["ls", "--json", "--netns", ns.name()])
            .args(args),
    );
    let mut v: Vec<(String, u64)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["protocol"].as_str().unwrap().to_string(),
                l["port"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn dns_namespace(prefix: &str) -> Netns {
    let mut ns = Netns::new(prefix).unwrap();
    open_sockets(
        &mut ns,
        &[
            "tcp:127.0.0.1:53",
            "udp:127.0.0.1:53",
            "tcp:127.0.0.1:143",
            "udp:127.0.0.1:7",
        ],
    );
    ns
}

/// `ls -p dns` failed ("unknown service name 'dns'") while a policy accepted `dns`: `-p`
/// now reads portolan's one spec parser, with the notes' aliases.
#[test]
fn ls_p_dns_names_a_service() {
    if !require_root("ls_p_dns") || !require_tool("ls_p_dns", "python3") {
        return;
    }
    let ns = dns_namespace("pi-dns");
    let both = vec![("tcp".to_string(), 53), ("udp".to_string(), 53)];
    assert_eq!(ls_ports(&ns, &["-p", "dns"]), both);
    assert_eq!(ls_ports(&ns, &["-p", "domain"]), both);
    // The service name is IANA's from portolan's registry, as scan and audit name it.
    let json =
        portolan(Command::new(PORTOLAN).args(["ls", "--json", "-p", "143", "--netns", ns.name()]));
    assert_eq!(json[0]["service"], "imap");
}

/// `ls -p U:53` failed while `scan -p U:53` worked; a prefix or suffix narrows to that
/// protocol.
#[test]
fn ls_p_u53_takes_a_protocol_prefix() {
    if !require_root("ls_p_u53") || !require_tool("ls_p_u53", "python3") {
        return;
    }
    let ns = dns_namespace("pi-u53");
    let udp = vec![("udp".to_string(), 53)];
    assert_eq!(ls_ports(&ns, &["-p", "U:53"]), udp);
    assert_eq!(ls_ports(&ns, &["-p", "53/udp"]), udp);
    assert_eq!(
        ls_ports(&ns, &["-p", "T:53"]),
        vec![("tcp".to_string(), 53)]
    );
    assert_eq!(
        ls_ports(&ns, &["-p", "7,50-60", "-p", "143"]),
        vec![
            ("tcp".to_string(), 53),
            ("tcp".to_string(), 143),
            ("udp".to_string(), 7),
            ("udp".to_string(), 53)
        ]
    );
}
