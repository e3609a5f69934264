//! End-to-end tests of the connect engine (`portolan scan -sT`): the whole port range of a
//! namespace's loopback against the listeners opened there and against `ss`; a block of
//! thousands of hosts (a target namespace answering for 198.19.0.0/16, see
//! `portolan_testkit::Block`) through the pipeline; dropped, refused and rejected ports;
//! and a descriptor limit far below what the scan would like.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use portolan_testkit::{Block, Netns, Pair, require_root, require_tool};

const BIN: &str = env!("CARGO_BIN_EXE_portolan");

fn ok(test: &str) -> bool {
    require_root(test)
        && require_tool(test, "ip")
        && require_tool(test, "nft")
        && require_tool(test, "python3")
        && require_tool(test, "ss")
}

/// `sh -c CMD` in the block bed's scanner namespace.
fn shell_in_scanner(b: &Block, cmd: &str) -> Output {
    b.pair
        .scanner
        .command("sh")
        .args(["-c", cmd])
        .output()
        .unwrap()
}

/// (host, port) -> (state, reason) of every port record of a `--json` run.
fn records(stdout: &[u8]) -> BTreeMap<(String, u16), (String, String)> {
    let mut m = BTreeMap::new();
    for l in String::from_utf8_lossy(stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
            continue;
        };
        if v["type"] != "port" {
            continue;
        }
        let key = (
            v["host"].as_str().unwrap_or_default().to_string(),
            v["port"].as_u64().unwrap_or_default() as u16,
        );
        let val = (
            v["state"].as_str().unwrap_or_default().to_string(),
            v["reason"].as_str().unwrap_or_default().to_string(),
        );
        assert!(m.insert(key, val).is_none(), "a port reported twice: {l}");
    }
    m
}

/// The summary record (the last line) of a `--json` run.
fn summary(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default()).unwrap_or_default()
}

fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The TCP ports `ss` sees listening in `ns`.
fn ss_listening(ns: &Netns) -> BTreeSet<u16> {
    ns.exec("ss", &["-Hltn"])
        .unwrap()
        .lines()
        .filter_map(|l| {
            let local = l.split_whitespace().nth(3)?;
            local.rsplit(':').next()?.parse().ok()
        })
        .collect()
}

#[test]
fn full_range_on_loopback_matches_the_listeners_and_ss() {
    if !ok("full_range_on_loopback_matches_the_listeners_and_ss") {
        return;
    }
    let mut ns = Netns::new("ct4l").unwrap();
    // Low ports, high ports, and ports inside the ephemeral range the scan's own sockets
    // come from.
    let mut open: Vec<u16> = (0..60).map(|i| 1 + i * 1091).collect();
    open.extend([32768, 40000, 60999, 65535]);
    ns.listen_tcp("python3", &open).unwrap();
    let want: BTreeSet<u16> = open.iter().copied().collect();
    assert_eq!(ss_listening(&ns), want, "ss does not see the listeners");
    let out = ns
        .command(BIN)
        .args(["scan", "-sT", "-Pn", "--all", "--json", "-p-", "127.0.0.1"])
        .output()
        .unwrap();
    assert_success(&out);
    let r = records(&out.stdout);
    assert_eq!(r.len(), 65535, "every port once");
    let got: BTreeSet<u16> = r
        .iter()
        .filter(|(_, (s, _))| s == "open")
        .map(|((_, p), _)| *p)
        .collect();
    assert_eq!(got, want, "open ports differ from the listeners");
    // The oracle, asked after the scan: what listens is what was found open.
    assert_eq!(got, ss_listening(&ns), "open ports differ from ss");
    for ((_, port), (state, reason)) in &r {
        if want.contains(port) {
            assert_eq!(reason, "syn-ack", "{port}");
        } else {
            assert_eq!(
                (state.as_str(), reason.as_str()),
                ("closed", "conn-refused"),
                "{port}"
            );
        }
    }
    let s = summary(&out.stdout);
    assert_eq!(s["open"], want.len() as u64, "{s}");
    assert_eq!(s["closed"], 65535 - want.len() as u64, "{s}");
}

/// A target with 22 open, 23 closed, 135 dropped and 445 rejected (admin-prohibited).
fn firewalled(prefix: &str) -> Pair {
    let mut pair = Pair::new(prefix).unwrap();
    pair.target.listen_tcp("python3", &[22]).unwrap();
    pair.target
        .nft(
            "table inet t {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport 135 drop
    tcp dport 445 reject with icmpx type admin-prohibited
  }
}",
        )
        .unwrap();
    pair
}

#[test]
fn dropped_is_filtered_refused_is_closed_rejected_is_admin_prohibited() {
    if !ok("dropped_is_filtered_refused_is_closed_rejected_is_admin_prohibited") {
        return;
    }
    let pair = firewalled("ct4f");
    for host in [Pair::TARGET_V4, Pair::TARGET_V6] {
        let out = pair
            .scanner
            .command(BIN)
            .args(["scan", "-sT", "-Pn", "--all", "--json"])
            .args(["--max-retries", "1", "-p", "22,23,135,445", host])
            .output()
            .unwrap();
        assert_success(&out);
        let r = records(&out.stdout);
        let state = |p: u16| {
            let (s, why) = &r[&(host.to_string(), p)];
            (s.as_str(), why.as_str())
        };
        assert_eq!(state(22), ("open", "syn-ack"), "{host}");
        assert_eq!(state(23), ("closed", "conn-refused"), "{host}");
        assert_eq!(state(135), ("filtered", "no-response"), "{host}");
        assert_eq!(state(445), ("filtered", "admin-prohibited"), "{host}");
    }
}

/// 22 and 80 open on every address of the block, every other port closed.
fn block_truth(first: u32, count: u32, ports: &[u16]) -> BTreeMap<(String, u16), String> {
    let mut t = BTreeMap::new();
    for n in first..first + count {
        let host = std::net::Ipv4Addr::from(n).to_string();
        for &p in ports {
            let state = if p == 22 || p == 80 { "open" } else { "closed" };
            t.insert((host.clone(), p), state.to_string());
        }
    }
    t
}

fn states(r: &BTreeMap<(String, u16), (String, String)>) -> BTreeMap<(String, u16), String> {
    r.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect()
}

const BLOCK16: u32 = 198 << 24 | 19 << 16;

/// The peak RSS of a running child in KiB (VmHWM), read until it exits; then its output.
fn run_measured(mut cmd: std::process::Command) -> (Output, u64) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let path = format!("/proc/{}/status", child.id());
    let pid_done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = pid_done.clone();
    let watcher = std::thread::spawn(move || {
        let mut peak = 0u64;
        let deadline = Instant::now() + Duration::from_secs(600);
        while !flag.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
            if let Ok(s) = std::fs::read_to_string(&path)
                && let Some(kb) = s
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    });
    let out = child.wait_with_output().unwrap();
    pid_done.store(true, std::sync::atomic::Ordering::Relaxed);
    (out, watcher.join().unwrap())
}

#[test]
fn a_16_with_five_ports_by_connect_is_exact_in_bounded_memory() {
    if !ok("a_16_with_five_ports_by_connect_is_exact_in_bounded_memory") {
        return;
    }
    let b = Block::new("ct4b", Block::CIDR16, &[22, 80]).unwrap();
    let ports = [22, 23, 80, 443, 8080];
    let mut cmd = b.pair.scanner.command(BIN);
    cmd.args(["scan", "-sT", "--all", "--json", "-p", "22,23,80,443,8080"])
        .arg(Block::CIDR16);
    let t = Instant::now();
    let (out, peak_kb) = run_measured(cmd);
    eprintln!(
        "connect scan of a /16 x 5 ports: {:?}, peak RSS {} KiB",
        t.elapsed(),
        peak_kb
    );
    assert_success(&out);
    let got = states(&records(&out.stdout));
    let want = block_truth(BLOCK16, 1 << 16, &ports);
    assert_eq!(got.len(), want.len());
    assert!(got == want, "results differ from the truth");
    let s = summary(&out.stdout);
    assert_eq!(s["hosts_up"], 65536, "{s}");
    // Bounded: the hosts in flight, not the 327,680 results, are held (the output is
    // piped here, and stdout is not kept by the scanner).
    assert!(peak_kb < 96 * 1024, "peak RSS {peak_kb} KiB");
}

#[test]
fn a_low_descriptor_limit_slows_the_scan_but_it_stays_exact() {
    if !ok("a_low_descriptor_limit_slows_the_scan_but_it_stays_exact") {
        return;
    }
    let cidr = "198.19.0.0/24";
    let b = Block::new("ct4n", cidr, &[22, 80]).unwrap();
    // One address drops port 135: its socket waits out its timeouts while holding one of
    // the few descriptors.
    b.pair
        .target
        .nft(
            "table ip t {
  chain input {
    type filter hook input priority 0; policy accept;
    ip daddr 198.19.0.7 tcp dport 135 drop
  }
}",
        )
        .unwrap();
    // 48 descriptors, hard limit too: the scan may not raise it, and has about a dozen
    // for its sockets after its own.
    let cmd = format!("ulimit -n 48 && exec {BIN} scan -sT --all --json -p 22,23,80,135 {cidr}");
    let out = shell_in_scanner(&b, &cmd);
    assert_success(&out);
    let r = records(&out.stdout);
    let mut want = block_truth(BLOCK16, 256, &[22, 23, 80, 135]);
    want.insert(("198.19.0.7".into(), 135), "filtered".into());
    assert!(states(&r) == want, "results differ from the truth");
    assert_eq!(r[&("198.19.0.7".into(), 135)].1, "no-response");
    // A soft limit below the hard one is raised, as before: the same scan, exact.
    let cmd = format!(
        "ulimit -Hn 20000 && ulimit -Sn 40 && exec {BIN} scan -sT -Pn --all --json -p 22,23,80,135 {cidr}"
    );
    let out = shell_in_scanner(&b, &cmd);
    assert_success(&out);
    assert!(states(&records(&out.stdout)) == want, "results differ");
}
