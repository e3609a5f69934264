//! A real Prometheus (and the plain HTTP polling that talking to it takes) for the tests
//! that scrape portolan's exporter: all on loopback, every wait bounded.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use crate::Daemon;

/// A loopback port that was free a moment ago (for daemons that take no port 0), and
/// that this process has not handed out before: the kernel may give a port it just
/// released to the next bind, so two daemons of one test binary could get the same one.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0")
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
    panic!("no loopback port that this process has not handed out in 1000 binds");
}

/// GET `path` over plain HTTP/1.1: the status and the body, or `None` when there is no
/// complete answer within 10 s.
pub fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// Polls `path` until `ok` accepts a 200's body, for at most `limit`; panics with the
/// last answer when it never does.
pub fn wait_for(
    addr: SocketAddr,
    path: &str,
    limit: Duration,
    ok: impl Fn(&str) -> bool,
) -> String {
    let start = Instant::now();
    let mut last = String::from("(no answer)");
    while start.elapsed() < limit {
        if let Some((status, body)) = get(addr, path) {
            if status == 200 && ok(&body) {
                return body;
            }
            last = format!("{status} {body}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{path} on {addr} not as expected within {limit:?}; last answer: {last}");
}

/// `prometheus` on a free loopback port, scraping one target every 5 s, its data and
/// log in a directory of the test's; killed on drop.
#[derive(Debug)]
pub struct Prometheus {
    _daemon: Daemon,
    pub addr: SocketAddr,
}

/// `promtool check metrics` of an exposition: `Err` with what promtool said when it
/// fails or finds anything to say (a lint warning included).
pub fn promtool_check(exposition: &[u8]) -> Result<(), String> {
    let out = crate::output_with_input(
        Command::new("promtool").args(["check", "metrics"]),
        exposition,
    )
    .map_err(|e| format!("running promtool: {e}"))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {said}", out.status))
    }
}

/// Starts `prometheus-node-exporter` on a free loopback port with only its textfile
/// collector, reading `dir`: the daemon (stopped on drop) and its address.
pub fn node_exporter(dir: &Path) -> io::Result<(Daemon, SocketAddr)> {
    let port = free_port();
    let daemon = Daemon(
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--collector.textfile.directory={}", dir.display()))
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    Ok((daemon, SocketAddr::from(([127, 0, 0, 1], port))))
}

impl Prometheus {
    /// Writes `dir/prometheus.yml` (job `portolan`, the one `target`, scraped every 5 s
    /// with a 5 s timeout: a 1 s interval also capped the timeout at 1 s, and a debug
    /// build's collection on a loaded machine takes longer, so no scrape ever landed),
    /// starts
    /// Prometheus and waits (at most 60 s) until it says it is ready.
    pub fn start(dir: &Path, target: SocketAddr) -> io::Result<Prometheus> {
        let conf = dir.join("prometheus.yml");
        std::fs::write(
            &conf,
            format!(
                "global:\n  scrape_interval: 5s\n  scrape_timeout: 5s\n  evaluation_interval: 5s\nscrape_configs:\n  - job_name: portolan\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )?;
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log"))?;
        let daemon = Daemon(
            Command::new("prometheus")
                .arg(format!("--config.file={}", conf.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()?,
        );
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // Prometheus's own answer, not some other daemon's 200 on that port.
        wait_for(addr, "/-/ready", Duration::from_secs(60), |b| {
            b.contains("Prometheus")
        });
        Ok(Prometheus {
            _daemon: daemon,
            addr,
        })
    }

    /// Polls the instant query `promql` (URL-encoded) until `ok` accepts the answer's
    /// body, for at most `limit`.
    pub fn query_until(&self, promql: &str, limit: Duration, ok: impl Fn(&str) -> bool) -> String {
        wait_for(
            self.addr,
            &format!("/api/v1/query?query={promql}"),
            limit,
            ok,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_gives_no_port_twice_so_two_daemons_cannot_share_one() {
        let ports: Vec<u16> = (0..2000).map(|_| free_port()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len());
    }
}
