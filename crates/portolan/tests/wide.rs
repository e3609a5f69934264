//! The largest target set, a /8, end to end: in a fresh network namespace every address
//! of 127.0.0.0/8 answers on the loopback (a closed port answers with a RST), so a whole
//! /8 can be scanned with nothing leaving the namespace.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use portolan_testkit::{Netns, require_root, require_tool};

const BIN: &str = env!("CARGO_BIN_EXE_portolan");

/// VmRSS of a process, in KiB (None once it is gone).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Warm-up: the RSS is taken as the baseline once this many hosts are finished (every
/// block in flight and the held output at their largest: 3 blocks of 2,048 hosts, and
/// the finished hosts waiting to be reported).
const WARM_HOSTS: u64 = 16_384;

/// Hosts finished after the baseline before the scan is stopped: 16 times the warm-up.
/// A structure kept per finished host, of 16 bytes or more, would grow by 4 MiB over it.
const MORE_HOSTS: u64 = 262_144;

/// How much the RSS may move after the baseline: allocator noise. Measured (release,
/// 127.0.0.0/8 with one port and ten): the RSS moves by at most 1.3 MiB after the first
/// seconds, and then not at all over millions of hosts.
const MARGIN_KIB: u64 = 3 * 1024;

/// Regression guard (issue 15): memory must not grow with the number of addresses. A
/// scan of 127.0.0.0/8 (2^24 hosts, one port, `-sS -Pn --json`) runs until 262,144 hosts
/// past the warm-up are finished (at most 25 s), then it is stopped with SIGINT: its RSS
/// after the warm-up stays within 3 MiB of the baseline while the hosts finished grow.
/// Asserted on counts and memory, never on speed: a slow machine finishes fewer hosts,
/// and then the test says how many it saw.
#[test]
fn a_slash_8_scan_stays_in_bounded_memory_as_hosts_finish() {
    let test = "a_slash_8_scan_stays_in_bounded_memory_as_hosts_finish";
    if !require_root(test) || !require_tool(test, "ip") {
        return;
    }
    let ns = Netns::new("wide8").unwrap();
    let mut child = ns
        .command(BIN)
        .args(["scan", "-sS", "-Pn", "--json", "-p", "23", "127.0.0.0/8"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // ip netns exec runs the binary directly (it execs), so this is the scanner.
    let pid = child.id();
    let done = Arc::new(AtomicU64::new(0));
    let reader = {
        let done = done.clone();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            // One port: a host's port record comes at its end.
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if line.starts_with(r#"{"type":"port""#) {
                    assert!(line.contains(r#""state":"closed""#), "{line}");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let start = Instant::now();
    let deadline = start + Duration::from_secs(25);
    let mut baseline: Option<(u64, u64)> = None;
    let mut highest = 0;
    let mut samples = Vec::new();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let Some(rss) = rss_kib(pid) else { break };
        let n = done.load(Ordering::Relaxed);
        samples.push((start.elapsed().as_millis(), n, rss));
        match baseline {
            None if n >= WARM_HOSTS => baseline = Some((n, rss)),
            Some((n0, _)) => {
                highest = highest.max(rss);
                if n >= n0 + MORE_HOSTS {
                    break;
                }
            }
            None => {}
        }
    }
    let stopped = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(stopped.success(), "the scan ended before it was stopped");
    // A test run from a background job inherits SIGINT ignored: then it is killed.
    let until = Instant::now() + Duration::from_secs(5);
    while child.try_wait().unwrap().is_none() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let every = samples.len().div_ceil(20).max(1);
    let shown: Vec<_> = samples.iter().step_by(every).collect();
    eprintln!("(ms, hosts finished, VmRSS KiB): {shown:?}; exit {status:?}; {err}");
    let (n0, rss0) = baseline.unwrap_or_else(|| {
        panic!(
            "fewer than {WARM_HOSTS} hosts finished in 25 s: {:?}",
            samples.last()
        )
    });
    let n = done.load(Ordering::Relaxed);
    // The scan went on after the baseline: at least as many hosts as the warm-up (a
    // debug build on 2 loaded cores finishes 10,000 or more a second).
    assert!(
        n >= n0 + WARM_HOSTS,
        "only {} hosts finished after the baseline",
        n - n0
    );
    assert!(n < 1 << 24, "a /8 of 2^24 hosts cannot be done in 25 s");
    assert!(
        highest <= rss0 + MARGIN_KIB,
        "VmRSS grew from {rss0} KiB to {highest} KiB while {} more hosts finished",
        n - n0
    );
}
