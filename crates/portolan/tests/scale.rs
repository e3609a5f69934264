//! End-to-end tests of `portolan scan` across many hosts: a target namespace answers for a
//! whole block of addresses (198.19.0.0/16, a local route on its loopback), with 22 and 80
//! open on every address and every other port closed.

use std::collections::BTreeSet;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use portolan_testkit::{Block, require_root, require_tool};

const BIN: &str = env!("CARGO_BIN_EXE_portolan");

fn ok(test: &str) -> bool {
    require_root(test)
        && require_tool(test, "ip")
        && require_tool(test, "nft")
        && require_tool(test, "python3")
}

fn bed(prefix: &str, cidr: &str) -> Block {
    Block::new(prefix, cidr, &[22, 80]).unwrap()
}

fn scan(b: &Block, args: &[&str]) -> Output {
    b.pair
        .scanner
        .command(BIN)
        .arg("scan")
        .args(args)
        .output()
        .unwrap()
}

/// (host, port, state) of every port record of a `--json` run.
fn ports(stdout: &[u8]) -> BTreeSet<(String, u16, String)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "port")
        .map(|v| {
            (
                v["host"].as_str().unwrap_or_default().to_string(),
                v["port"].as_u64().unwrap_or_default() as u16,
                v["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Every (host, port) of `cidr` (a /16 or longer of IPv4) with 22 and 80 open.
fn truth(first: u32, count: u32, ports_list: &[u16]) -> BTreeSet<(String, u16, String)> {
    let mut t = BTreeSet::new();
    for n in first..first + count {
        let host = std::net::Ipv4Addr::from(n).to_string();
        for &p in ports_list {
            let state = if p == 22 || p == 80 { "open" } else { "closed" };
            t.insert((host.clone(), p, state.to_string()));
        }
    }
    t
}

const BLOCK16: u32 = 198 << 24 | 19 << 16;

#[test]
fn a_16_with_five_ports_is_exact() {
    if !ok("a_16_with_five_ports_is_exact") {
        return;
    }
    let b = bed("sc3x", Block::CIDR16);
    let out = scan(
        &b,
        &[
            "-sS",
            "--all",
            "--json",
            "-p",
            "22,23,80,443,8080",
            Block::CIDR16,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = ports(&out.stdout);
    let want = truth(BLOCK16, 1 << 16, &[22, 23, 80, 443, 8080]);
    assert_eq!(got.len(), want.len());
    assert!(got == want, "results differ from the truth");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains(r#""hosts_up":65536"#),
        "{}",
        summary.lines().last().unwrap_or("")
    );
}

/// An nftables counter of the SYNs the target receives, and of the repeats among them
/// (a (address, port) seen before).
fn count_syns(b: &Block) {
    b.pair
        .target
        .nft(
            "table ip probes {
  counter syns {}
  counter repeats {}
  set seen { type ipv4_addr . inet_service; size 262144; flags dynamic; }
  chain input {
    type filter hook input priority -10; policy accept;
    tcp flags & (syn | ack) == syn ip daddr . tcp dport @seen counter name repeats
    tcp flags & (syn | ack) == syn counter name syns add @seen { ip daddr . tcp dport }
  }
}",
        )
        .unwrap();
}

fn counter(b: &Block, name: &str) -> u64 {
    let out = b
        .pair
        .target
        .exec("nft", &["list", "counter", "ip", "probes", name])
        .unwrap();
    let words: Vec<&str> = out.split_whitespace().collect();
    let i = words.iter().position(|w| *w == "packets").unwrap();
    words[i + 1].parse().unwrap()
}

fn reset(b: &Block) {
    b.pair
        .target
        .exec("nft", &["flush", "set", "ip", "probes", "seen"])
        .unwrap();
    for c in ["syns", "repeats"] {
        b.pair
            .target
            .exec("nft", &["reset", "counter", "ip", "probes", c])
            .unwrap();
    }
}

#[test]
fn shards_together_equal_the_whole_scan_each_probe_once() {
    if !ok("shards_together_equal_the_whole_scan_each_probe_once") {
        return;
    }
    let cidr = "198.19.0.0/20";
    let b = bed("sc3s", cidr);
    count_syns(&b);
    // One try per probe, so that the counter counts probes.
    let args = [
        "-sS",
        "-Pn",
        "--all",
        "--json",
        "--max-retries",
        "0",
        "-p",
        "22,23",
    ];
    let mut whole_args = args.to_vec();
    whole_args.push(cidr);
    let whole = scan(&b, &whole_args);
    assert!(
        whole.status.success(),
        "{}",
        String::from_utf8_lossy(&whole.stderr)
    );
    let whole = ports(&whole.stdout);
    assert_eq!(whole, truth(BLOCK16, 4096, &[22, 23]));
    reset(&b);
    let mut union = BTreeSet::new();
    let mut records = 0;
    for i in 1..=3 {
        let shard = format!("{i}/3");
        let mut a = args.to_vec();
        a.extend(["--shard", &shard, cidr]);
        let out = scan(&b, &a);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = ports(&out.stdout);
        assert!(got.len() > 2000, "shard {shard} took {} probes", got.len());
        records += got.len();
        union.extend(got);
    }
    assert_eq!(records, union.len(), "the shards overlap");
    assert!(union == whole, "the shards do not add up to the whole scan");
    assert_eq!(
        counter(&b, "syns"),
        4096 * 2,
        "probes sent by the three shards"
    );
    assert_eq!(counter(&b, "repeats"), 0, "a probe was sent twice");
}

#[test]
fn a_killed_scan_resumed_gives_the_same_result() {
    if !ok("a_killed_scan_resumed_gives_the_same_result") {
        return;
    }
    let cidr = "198.19.0.0/18";
    let b = bed("sc3r", cidr);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("scan.resume");
    let state_s = state.to_str().unwrap();
    let args = [
        "-sS", "-Pn", "--all", "--json", "--rate", "20000", "-p", "22,23", cidr,
    ];
    let whole = ports(&scan(&b, &args).stdout);
    assert_eq!(whole, truth(BLOCK16, 1 << 14, &[22, 23]));
    // Killed (SIGKILL) once the file records some but not all of the blocks.
    let first_out = dir.path().join("first.jsonl");
    let mut child = b
        .pair
        .scanner
        .command(BIN)
        .arg("scan")
        .args(args)
        .args(["--resume", state_s])
        .stdout(std::fs::File::create(&first_out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let text = std::fs::read_to_string(&state).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let done = v["blocks_done"].as_u64().unwrap_or(0);
        if done >= 1 {
            break done;
        }
        assert!(Instant::now() < deadline, "no checkpoint within 60 s");
        std::thread::sleep(Duration::from_millis(5));
    };
    // ip netns exec runs the binary directly (it execs), so this is the scanner.
    child.kill().unwrap();
    child.wait().unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let blocks = v["blocks"].as_u64().unwrap();
    assert!(done < blocks, "the scan ended before it could be killed");
    let first = ports(&std::fs::read(&first_out).unwrap());
    let mut a = args.to_vec();
    a.extend(["--resume", state_s]);
    let second = scan(&b, &a);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let second = ports(&second.stdout);
    assert!(
        second.len() < whole.len(),
        "the resumed run started over ({} records)",
        second.len()
    );
    let mut both = first;
    both.extend(second);
    assert!(
        both == whole,
        "killed and resumed differs from the whole scan"
    );
    // Done: running it again scans nothing more.
    let again = scan(&b, &a);
    assert!(ports(&again.stdout).is_empty());
}

#[test]
fn a_bad_or_foreign_resume_file_exits_2_naming_it() {
    if !ok("a_bad_or_foreign_resume_file_exits_2_naming_it") {
        return;
    }
    let b = bed("sc3b", "198.19.0.0/24");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state");
    let path = file.to_str().unwrap();
    std::fs::write(&file, "{ not json").unwrap();
    let out = scan(
        &b,
        &["-sS", "-Pn", "-p", "22", "--resume", path, "198.19.0.0/24"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(path) && err.contains("not a portolan resume file"),
        "{err}"
    );
    std::fs::remove_file(&file).unwrap();
    let out = scan(
        &b,
        &["-sS", "-Pn", "-p", "22", "--resume", path, "198.19.0.0/24"],
    );
    assert!(out.status.success());
    for (args, why) in [
        (["-p", "23", "198.19.0.0/24"], "other ports"),
        (["-p", "22", "198.19.0.0/25"], "other targets"),
    ] {
        let mut a = vec!["-sS", "-Pn", "--resume", path];
        a.extend(args);
        let out = scan(&b, &a);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(path) && err.contains(why), "{err}");
    }
}

#[test]
fn rate_5000_holds_within_5_percent_each_second() {
    if !ok("rate_5000_holds_within_5_percent_each_second") {
        return;
    }
    let b = bed("sc3p", Block::CIDR16);
    count_syns(&b);
    // 65,536 probes at 5000/s: 13 s, of which 10 are measured. A closed port: its
    // results are short records, so the output costs the scanner little.
    let mut child = b
        .pair
        .scanner
        .command(BIN)
        .args(["scan", "-sS", "-Pn", "--json", "--rate", "5000", "-p", "23"])
        .arg(Block::CIDR16)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Samples of (time, count), each time the middle of the counter's read.
    let sample = |b: &Block| {
        let t0 = Instant::now();
        let n = counter(b, "syns");
        let t1 = Instant::now();
        (t0 + (t1 - t0) / 2, n, t1 - t0)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while counter(&b, "syns") == 0 {
        assert!(Instant::now() < deadline, "no probe within 30 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut samples = vec![sample(&b)];
    for k in 1..=10u32 {
        let at = samples[0].0 + Duration::from_secs(u64::from(k));
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        samples.push(sample(&b));
    }
    let _ = child.kill();
    let _ = child.wait();
    let rate = |a: &(Instant, u64, Duration), b: &(Instant, u64, Duration)| {
        (b.1 - a.1) as f64 / (b.0 - a.0).as_secs_f64()
    };
    let all = rate(&samples[0], &samples[10]);
    assert!((all - 5000.0).abs() <= 250.0, "{all:.0} probes/s over 10 s");
    for w in samples.windows(2) {
        // A read that took long says little about when the count was taken.
        if w[0].2 + w[1].2 > Duration::from_millis(20) {
            continue;
        }
        let r = rate(&w[0], &w[1]);
        assert!((r - 5000.0).abs() <= 250.0, "{r:.0} probes/s in one second");
    }
}
