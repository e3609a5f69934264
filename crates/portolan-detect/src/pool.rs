//! `detect_many`: one runtime, one concurrency limit, and the same timeouts and SNI for
//! every caller (`detect`, `scan --detect`, `audit --detect`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use portolan_model::{Detection, Proto};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::{Detector, Options};

/// One port to ask: where, over which transport, and the name to send in TLS SNI and
/// HTTP Host (when the target was given by name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Probe {
    pub addr: SocketAddr,
    pub proto: Proto,
    pub server_name: Option<String>,
}

impl Probe {
    pub fn tcp(addr: SocketAddr) -> Probe {
        Probe {
            addr,
            proto: Proto::Tcp,
            server_name: None,
        }
    }

    pub fn udp(addr: SocketAddr) -> Probe {
        Probe {
            addr,
            proto: Proto::Udp,
            server_name: None,
        }
    }
}

/// Detection of many ports at once. Ports can be started as a scan finds them and
/// collected later, so the scan never waits for detection.
pub struct Pool {
    rt: tokio::runtime::Runtime,
    det: Arc<Detector>,
    opts: Options,
    limit: Arc<Semaphore>,
    pending: HashMap<(SocketAddr, Proto), JoinHandle<Detection>>,
    done: HashMap<(SocketAddr, Proto), Detection>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("opts", &self.opts)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// Each TCP detection may hold several sockets: 64 ports at a time stays far below
    /// the open-file limit the scanner sizes itself to.
    pub const CONCURRENCY: usize = 64;

    pub fn new(detector: Detector, opts: Options) -> std::io::Result<Pool> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("portolan-detect")
            .enable_all()
            .build()?;
        Ok(Pool {
            rt,
            det: Arc::new(detector),
            opts,
            limit: Arc::new(Semaphore::new(Self::CONCURRENCY)),
            pending: HashMap::new(),
            done: HashMap::new(),
        })
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Starts detecting `probe` in the background (once per address and transport).
    pub fn start(&mut self, probe: &Probe) {
        let key = (probe.addr, probe.proto);
        if self.pending.contains_key(&key) || self.done.contains_key(&key) {
            return;
        }
        let (det, limit) = (Arc::clone(&self.det), Arc::clone(&self.limit));
        let mut opts = self.opts.clone();
        if probe.server_name.is_some() {
            opts.server_name = probe.server_name.clone();
        }
        let (addr, udp) = (probe.addr, probe.proto == Proto::Udp);
        let task = self.rt.spawn(async move {
            let _permit = limit.acquire_owned().await;
            if udp {
                det.detect_udp(addr, &opts).await
            } else {
                det.detect_tcp(addr, &opts).await
            }
        });
        self.pending.insert(key, task);
    }

    /// The detection of `addr` over `proto`, waiting for it if it is still running;
    /// `None` when it was never started.
    pub fn get(&mut self, addr: SocketAddr, proto: Proto) -> Option<&Detection> {
        let key = (addr, proto);
        if let Some(task) = self.pending.remove(&key) {
            let d = self
                .rt
                .block_on(task)
                .unwrap_or_else(|e| Detection::nothing(format!("detection failed: {e}")));
            self.done.insert(key, d);
        }
        self.done.get(&key)
    }

    /// Detects every probe, in order.
    pub fn detect_many(&mut self, probes: &[Probe]) -> Vec<Detection> {
        for p in probes {
            self.start(p);
        }
        probes
            .iter()
            .map(|p| self.get(p.addr, p.proto).cloned().unwrap_or_default())
            .collect()
    }
}

/// Detects every probe with the given detector and options: the one entry point for a
/// list of ports.
pub fn detect_many(
    detector: Detector,
    opts: Options,
    probes: &[Probe],
) -> std::io::Result<Vec<Detection>> {
    Ok(Pool::new(detector, opts)?.detect_many(probes))
}
