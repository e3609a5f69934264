//! Test hosts for portolan's own tests.
//!
//! Privileged tests build network namespaces joined by veth pairs, with addresses from
//! 198.18.0.0/15 (the benchmarking range), and never send traffic anywhere else. Each
//! namespace has a unique name and is deleted on drop, so tests run in parallel.
//!
//! A test that needs root or a tool calls [`require_root`] or [`require_tool`] first. Off
//! CI they skip the test with a note on stderr; on CI (`CI` is set) a missing privilege or
//! tool is a failure, so a privileged test can never pass by not running.
// Test-only crate: its few syscalls (geteuid, kill, flock) are the only unsafe code.

pub mod peer;
pub mod prometheus;

use std::io;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// True on CI, where every privileged test must really run.
pub fn on_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
}

/// Whether the test may go on: true as root. Off CI, without root, it prints why the test
/// is skipped and returns false; on CI it panics.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(!on_ci(), "{test}: needs root, and CI must run it");
        eprintln!("skipping {test}: needs root");
    }
    root
}

/// Whether the test may go on: true when `tool` is on PATH. Off CI it prints why the test
/// is skipped and returns false; on CI it panics.
pub fn require_tool(test: &str, tool: &str) -> bool {
    let found = which(tool).is_some();
    if !found {
        assert!(!on_ci(), "{test}: needs `{tool}`, and CI must install it");
        eprintln!("skipping {test}: `{tool}` is not installed");
    }
    found
}

/// The path of `tool` on PATH.
pub fn which(tool: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Runs a command and returns its output, or an error that names the command and carries
/// its stderr when it fails.
pub fn run(cmd: &mut Command) -> io::Result<Output> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{:?} failed with {}: {}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

/// Runs `cmd` with `input` on its stdin, and returns its output (stdout and stderr
/// captured) whatever its exit status. The input is written by a thread of its own, so a
/// command that answers before it has read it all cannot block on a full pipe.
pub fn output_with_input(cmd: &mut Command, input: &[u8]) -> io::Result<Output> {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    std::thread::scope(|s| {
        let writer = s.spawn(move || stdin.write_all(input));
        let out = child.wait_with_output()?;
        writer.join().expect("the stdin writer")?;
        Ok(out)
    })
}

/// The peak resident set (VmHWM) of process `pid`, or of this process for `None`, in
/// KiB; `None` when it cannot be read (the process is gone).
pub fn peak_rss_kib(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Runs `program args...` and returns its stdout as text.
pub fn sh(program: &str, args: &[&str]) -> io::Result<String> {
    let out = run(Command::new(program).args(args))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A child process killed (and reaped) on drop, so a failed test leaves nothing running.
#[derive(Debug)]
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Daemon {
    /// Starts `cmd` with stdin, stdout and stderr on /dev/null.
    pub fn quiet(cmd: &mut Command) -> io::Result<Daemon> {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Daemon(child))
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Sends SIGTERM and waits (at most `limit`) for the exit; panics when it does not
    /// come.
    pub fn terminate(&mut self, limit: std::time::Duration) -> std::process::ExitStatus {
        let pid = libc::pid_t::try_from(self.0.id()).expect("pids fit pid_t");
        // SAFETY: kill has no memory preconditions; the pid is our own child, not reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let start = std::time::Instant::now();
        loop {
            if let Some(st) = self.0.try_wait().expect("wait for the child") {
                return st;
            }
            assert!(
                start.elapsed() < limit,
                "the child did not stop within {limit:?} of SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A named network namespace (as `ip netns` names them), deleted on drop, with every
/// process spawned into it by [`Netns::spawn`] killed first.
#[derive(Debug)]
pub struct Netns {
    name: String,
    children: Vec<Child>,
}

impl Netns {
    /// Creates `<prefix>-<pid>-<n>` with its loopback up.
    pub fn new(prefix: &str) -> io::Result<Netns> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        sh("ip", &["netns", "add", &name])?;
        let ns = Netns {
            name,
            children: Vec::new(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside this namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs `program args...` inside the namespace; its stdout on success.
    pub fn exec(&self, program: &str, args: &[&str]) -> io::Result<String> {
        let out = run(self.command(program).args(args))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `ip -n <ns> args...`.
    pub fn ip(&self, args: &[&str]) -> io::Result<String> {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        sh("ip", &all)
    }

    /// Loads an nftables ruleset (as `nft -f -` reads it) into the namespace.
    pub fn nft(&self, ruleset: &str) -> io::Result<()> {
        let out = output_with_input(self.command("nft").args(["-f", "-"]), ruleset.as_bytes())?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "nft -f in {} failed: {}\n{ruleset}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// Starts a long-running process inside the namespace; it is killed when the
    /// namespace is dropped.
    pub fn spawn(&mut self, program: &str, args: &[&str]) -> io::Result<u32> {
        let child = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let pid = child.id();
        self.children.push(child);
        Ok(pid)
    }

    /// Starts a long-running process like [`Netns::spawn`], and returns once it has
    /// printed the line `ready` on its stdout (an event, not a wait): an error when it
    /// exits first.
    pub fn spawn_ready(&mut self, program: &str, args: &[&str]) -> io::Result<u32> {
        use std::io::BufRead;
        let mut child = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let pid = child.id();
        let stdout = child.stdout.take().expect("piped stdout");
        self.children.push(child);
        for line in io::BufReader::new(stdout).lines() {
            if line?.trim() == "ready" {
                return Ok(pid);
            }
        }
        Err(io::Error::other(format!(
            "{program} in {} exited before it was ready",
            self.name
        )))
    }

    /// Dual-stack TCP listeners on every one of `ports` (`[::]`, IPv4-mapped too), held
    /// for two minutes by one `python` process (a path, so that a test can pick
    /// `/usr/bin/python3`); returns once all of them listen.
    pub fn listen_tcp(&mut self, python: &str, ports: &[u16]) -> io::Result<u32> {
        let list: Vec<String> = ports.iter().map(u16::to_string).collect();
        let script = format!(
            "import socket, sys, time\n\
             socks = []\n\
             for p in [{}]:\n\
             \x20   s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)\n\
             \x20   s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n\
             \x20   s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             \x20   s.bind(('::', p)); s.listen(16); socks.append(s)\n\
             print('ready', flush=True)\n\
             time.sleep(120)\n",
            list.join(", ")
        );
        self.spawn_ready(python, &["-c", &script])
    }

    /// What TCP connects from this namespace to `addr` see on each of `ports` (with
    /// python3, 0.6 s each, 32 at a time), in the order of `ports`.
    pub fn probe_tcp(&self, addr: &str, ports: &[u16]) -> io::Result<Vec<(u16, Seen)>> {
        let list: Vec<String> = ports.iter().map(u16::to_string).collect();
        let script = format!(
            "import socket, concurrent.futures as cf\n\
             def probe(p):\n\
             \x20   s = socket.socket(socket.AF_INET6 if ':' in '{addr}' else socket.AF_INET)\n\
             \x20   s.settimeout(0.6)\n\
             \x20   try:\n\
             \x20       s.connect(('{addr}', p)); r = 'open'\n\
             \x20   except ConnectionRefusedError: r = 'closed'\n\
             \x20   except (socket.timeout, OSError): r = 'filtered'\n\
             \x20   s.close(); return p, r\n\
             with cf.ThreadPoolExecutor(32) as ex:\n\
             \x20   for p, r in ex.map(probe, [{}]): print(p, r)\n",
            list.join(", ")
        );
        let out = self.exec("python3", &["-c", &script])?;
        out.lines()
            .map(|l| {
                let bad = || io::Error::other(format!("unexpected probe output: {l}"));
                let (p, r) = l.split_once(' ').ok_or_else(bad)?;
                let seen = match r {
                    "open" => Seen::Open,
                    "closed" => Seen::Closed,
                    _ => Seen::Filtered,
                };
                Ok((p.parse().map_err(|_| bad())?, seen))
            })
            .collect()
    }

    /// Waits (at most `limit`) until a TCP connect from this namespace to `addr`:`port`
    /// succeeds: for a link that may still be coming up.
    pub fn wait_tcp_open(&self, addr: &str, port: u16, limit: std::time::Duration) {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if self
                .probe_tcp(addr, &[port])
                .is_ok_and(|r| r.first().map(|x| x.1) == Some(Seen::Open))
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "{addr}:{port} did not open within {limit:?} (from {})",
            self.name
        );
    }

    /// The command that runs `nft` inside this namespace, as a program and its
    /// arguments: `ip netns exec NAME nft`.
    pub fn nft_program(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.name, "nft"]
            .into_iter()
            .map(String::from)
            .collect()
    }

    /// Adds an address (`198.18.0.1/24`, `2001:2::1/64`) to a link in the namespace.
    pub fn addr(&self, dev: &str, cidr: &str) -> io::Result<()> {
        let family = if cidr.contains(':') { "-6" } else { "-4" };
        self.ip(&[family, "addr", "add", cidr, "dev", dev, "nodad"])
            .map(drop)
            .or_else(|_| {
                self.ip(&[family, "addr", "add", cidr, "dev", dev])
                    .map(drop)
            })
    }
}

/// What a TCP connect saw: open, closed (refused) or filtered (no answer in time).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Seen {
    Open,
    Closed,
    Filtered,
}

impl Drop for Netns {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Processes started by other means (daemons that fork) die with the namespace's
        // last reference only if they are gone, so kill whatever still runs inside it.
        if let Ok(pids) = sh("ip", &["netns", "pids", &self.name]) {
            for pid in pids
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = sh("ip", &["netns", "del", &self.name]);
    }
}

/// Joins two namespaces with a veth pair: `a_dev` in `a` with `a_cidr`, `b_dev` in `b`
/// with `b_cidr`, both up. Addresses must come from 198.18.0.0/15 (or, for IPv6, the
/// documentation/benchmarking prefixes) so no test traffic can leave this machine.
pub fn veth(
    a: &Netns,
    a_dev: &str,
    a_cidr: &str,
    b: &Netns,
    b_dev: &str,
    b_cidr: &str,
) -> io::Result<()> {
    for cidr in [a_cidr, b_cidr] {
        assert!(
            cidr.starts_with("198.18.")
                || cidr.starts_with("198.19.")
                || cidr.starts_with("2001:2:"),
            "test address {cidr} is outside 198.18.0.0/15 and 2001:2::/48"
        );
    }
    sh(
        "ip",
        &[
            "link", "add", a_dev, "netns", &a.name, "type", "veth", "peer", b_dev, "netns", &b.name,
        ],
    )?;
    a.addr(a_dev, a_cidr)?;
    b.addr(b_dev, b_cidr)?;
    a.ip(&["link", "set", a_dev, "up"])?;
    b.ip(&["link", "set", b_dev, "up"])?;
    Ok(())
}

/// A scanner namespace and a target namespace joined by one link: the scanner is
/// 198.18.0.1 and 2001:2::1, the target 198.18.0.2 and 2001:2::2.
#[derive(Debug)]
pub struct Pair {
    pub scanner: Netns,
    pub target: Netns,
}

impl Pair {
    pub const SCANNER_V4: &'static str = "198.18.0.1";
    pub const TARGET_V4: &'static str = "198.18.0.2";
    pub const SCANNER_V6: &'static str = "2001:2::1";
    pub const TARGET_V6: &'static str = "2001:2::2";

    pub fn new(prefix: &str) -> io::Result<Pair> {
        let scanner = Netns::new(&format!("{prefix}s"))?;
        let target = Netns::new(&format!("{prefix}t"))?;
        veth(
            &scanner,
            "eth0",
            "198.18.0.1/24",
            &target,
            "eth0",
            "198.18.0.2/24",
        )?;
        scanner.addr("eth0", "2001:2::1/64")?;
        target.addr("eth0", "2001:2::2/64")?;
        Ok(Pair { scanner, target })
    }
}

/// Listeners on 0.0.0.0 for the ports given; they accept and close.
const BLOCK_LISTENERS: &str = r#"
import socket, sys, select
socks = []
for p in [int(a) for a in sys.argv[1:]]:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", p)); s.listen(4096); socks.append(s)
while True:
    for s in select.select(socks, [], [])[0]:
        try:
            c, _ = s.accept(); c.close()
        except OSError:
            pass
"#;

/// A [`Pair`] whose target answers for a whole block of addresses: the block is a local
/// route on the target's loopback (`ip route add local BLOCK dev lo`), the scanner routes
/// it through the veth, and listeners bound to 0.0.0.0 answer on every address of it.
/// Every other port of every address answers with a RST.
#[derive(Debug)]
pub struct Block {
    pub pair: Pair,
    /// The block, as CIDR text.
    pub cidr: String,
}

impl Block {
    /// A /16 that stays clear of the link's own /24.
    pub const CIDR16: &'static str = "198.19.0.0/16";

    /// Builds the bed for `cidr` (inside 198.18.0.0/15) with listeners on `open`; returns
    /// once they listen (bounded wait).
    pub fn new(prefix: &str, cidr: &str, open: &[u16]) -> io::Result<Block> {
        assert!(
            cidr.starts_with("198.18.") || cidr.starts_with("198.19."),
            "test block {cidr} is outside 198.18.0.0/15"
        );
        let mut pair = Pair::new(prefix)?;
        pair.target
            .ip(&["route", "add", "local", cidr, "dev", "lo"])?;
        pair.scanner
            .ip(&["route", "add", cidr, "via", Pair::TARGET_V4])?;
        // Enough room for the handshakes a large scan leaves half-open.
        for (k, v) in [
            ("net.ipv4.tcp_max_syn_backlog", "65536"),
            ("net.core.somaxconn", "65536"),
        ] {
            let _ = pair.target.exec("sysctl", &["-qw", &format!("{k}={v}")]);
        }
        let mut args = vec!["-c".to_string(), BLOCK_LISTENERS.to_string()];
        args.extend(open.iter().map(u16::to_string));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        pair.target.spawn("python3", &args)?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let out = pair.target.exec("ss", &["-Hltn"]).unwrap_or_default();
            if out.lines().count() >= open.len() {
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "block listeners did not start: {out}"
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(Block {
            pair,
            cidr: cidr.to_string(),
        })
    }
}

/// A test bed of real daemons in a namespace, started by `tests/<name>/run.sh start DIR`
/// and stopped (with everything in it) when dropped. Beds share host state (postfix's
/// spool, the TFTP root), so one runs at a time on a machine: the bed holds an exclusive
/// lock on `/run/lock/portolan-<name>.lock` from start to stop, across processes.
pub struct Testbed {
    dir: std::path::PathBuf,
    script: std::path::PathBuf,
    _lock: std::fs::File,
}

impl Testbed {
    /// Starts `tests/NAME/run.sh` (NAME is `testbed` or `testbed2`); waits for the
    /// lock first. Panics with the script's output when it cannot start.
    pub fn start(name: &str) -> Testbed {
        use std::os::fd::AsRawFd;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let _ = std::fs::create_dir_all("/run/lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(format!("/run/lock/portolan-{name}.lock"))
            .expect("open the test bed lock");
        // SAFETY: flock on a descriptor this function owns; it blocks until the lock is free.
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock: {}", io::Error::last_os_error());
        let script = root.join(format!("tests/{name}/run.sh"));
        // Holding the lock, any bed left in the temporary directory belongs to a run that
        // was killed before it could stop its daemons: stop them, or they keep the ports
        // and postfix's spool.
        let prefix = format!("portolan-{name}-");
        if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = Command::new("bash")
                        .arg(&script)
                        .arg("stop")
                        .arg(e.path())
                        .status();
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = std::env::temp_dir().join(format!("portolan-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let tb = Testbed {
            dir,
            script,
            _lock: lock,
        };
        let out = Command::new("bash")
            .arg(&tb.script)
            .arg("start")
            .arg(&tb.dir)
            .output()
            .expect("run the test bed script");
        assert!(
            out.status.success(),
            "test bed {name} failed to start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        tb
    }

    /// A value from the bed's `env` file (`KEY=value` lines written by run.sh).
    pub fn env(&self, key: &str) -> String {
        let text = std::fs::read_to_string(self.dir.join("env")).expect("test bed env");
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} missing from the test bed env"))
            .to_string()
    }

    /// The bed's state directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_is_read_for_this_process_and_none_for_a_gone_one() {
        let kib = peak_rss_kib(None).expect("VmHWM of this process");
        assert!(kib > 100, "{kib} KiB");
        // The peak only grows.
        assert!(peak_rss_kib(Some(std::process::id())).is_some_and(|k| k >= kib));
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(peak_rss_kib(Some(pid)), None);
    }

    #[test]
    fn pair_links_two_namespaces() {
        if !require_root("pair_links_two_namespaces") || !require_tool("pair", "ip") {
            return;
        }
        let pair = Pair::new("tk").unwrap();
        let addrs = pair
            .target
            .ip(&["-br", "addr", "show", "dev", "eth0"])
            .unwrap();
        assert!(addrs.contains("198.18.0.2/24"), "{addrs}");
        assert!(addrs.contains("2001:2::2/64"), "{addrs}");
        let name = pair.scanner.name().to_string();
        drop(pair);
        let list = sh("ip", &["netns", "list"]).unwrap();
        assert!(
            !list.contains(&name),
            "namespace {name} left behind: {list}"
        );
    }
}
