//! Shared helpers: a fake collector, a server on a free loopback port, a raw HTTP client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use portolan_exporter::{CollectResult, Collector, CollectorStatus, ServeConfig, Server};
use portolan_model::{Listener, Process, Proto, Snapshot};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Reports a fixed set of listeners and counts its collections.
pub struct Fake {
    pub calls: AtomicUsize,
    pub listeners: Vec<Listener>,
    pub collectors: Vec<CollectorStatus>,
    pub delay: Duration,
}

impl Fake {
    pub fn new(n: usize) -> Fake {
        let mut listeners = vec![fixed_listener()];
        for i in 0..n.saturating_sub(1) {
            let mut l = Listener::new(Proto::Tcp, "127.0.0.1".parse().unwrap(), 20000 + i as u16)
                .with_process(Process::new(1000 + i as u32, format!("svc{i}")));
            l.netns = "host".into();
            listeners.push(l);
        }
        Fake {
            calls: AtomicUsize::new(0),
            listeners,
            collectors: vec![CollectorStatus::up("inventory")],
            delay: Duration::ZERO,
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// The listener every fake reports: `sshd` on 0.0.0.0:2222.
pub fn fixed_listener() -> Listener {
    let mut p = Process::new(812, "sshd");
    p.unit = Some("ssh.service".into());
    let mut l = Listener::new(Proto::Tcp, "0.0.0.0".parse().unwrap(), 2222).with_process(p);
    l.service = Some("ssh-alt".into());
    l
}

impl Collector for Fake {
    fn collect(&self) -> CollectResult {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        let mut snapshot = Snapshot {
            listeners: self.listeners.clone(),
            ..Snapshot::default()
        };
        snapshot.run.version = "0.1.0".into();
        CollectResult {
            snapshot,
            collectors: self.collectors.clone(),
            unexpected: None,
        }
    }
}

/// A running exporter; stopped (gracefully) on drop.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .expect("the server stops within 10 s")
                .unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub fn config() -> ServeConfig {
    ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ServeConfig::default()
    }
}

pub async fn start(config: ServeConfig, collector: Arc<dyn Collector>) -> Running {
    let server = Server::bind(config, collector).await.unwrap();
    let addr = server.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .run(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    Running {
        addr,
        stop: Some(tx),
        task: Some(task),
    }
}

/// A response: status, head (lower-cased header lines), body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        let want = format!("{}:", name.to_ascii_lowercase());
        self.head.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with(&want)
                .then(|| l[want.len()..].trim())
        })
    }
}

pub fn parse_reply(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Reply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// Sends `request` as is and reads the reply to the end (bounded by 10 s).
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Reply {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        parse_reply(&buf)
    })
    .await
    .expect("a reply within 10 s")
}

/// `METHOD path` with extra header lines, `Connection: close`.
pub async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[&str]) -> Reply {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    raw(addr, req.as_bytes()).await
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[]).await
}

/// The resident set size of this process, in KiB.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}
