//! `detect_many`: one runtime, one concurrency limit, and the same timeouts and SNI for
//! every caller (`detect`, `scan --detect`, `audit --detect`).
//!
//! The defaults every caller gets unless it passes its own [`Options`]: 3 s for each
//! connect and each reply, 15 s for the whole detection of one port (five times the
//! timeout with [`Options::with_timeout`]), 64 KiB read from one connection, and
//! [`Pool::CONCURRENCY`] (64) ports at a time. A probe's own `server_name` goes into TLS
//! SNI and HTTP Host.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;

use portolan_model::{Detection, Proto};
use tokio::sync::Semaphore;

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

    /// The same probe, sending `name` in TLS SNI and HTTP Host.
    pub fn with_server_name(mut self, name: impl Into<String>) -> Probe {
        self.server_name = Some(name.into());
        self
    }
}

/// Detection of many ports at once. Ports can be started as a scan finds them and
/// collected later, so the scan never waits for detection.
///
/// The pool runs its own runtime on its own threads and waits for results with a plain
/// channel, so it may be created, used and dropped anywhere, also from inside a tokio
/// runtime (where [`Pool::get`] blocks the calling thread: in async code, call it from
/// `spawn_blocking`, or use [`Detector::detect_tcp`] directly).
pub struct Pool {
    rt: Option<tokio::runtime::Runtime>,
    det: Arc<Detector>,
    opts: Options,
    limit: Arc<Semaphore>,
    pending: HashMap<Key, mpsc::Receiver<Detection>>,
    done: HashMap<Key, Detection>,
}

/// A probe's identity: the same port asked under two names is two detections (the
/// names may lead to different virtual hosts and certificates).
type Key = (SocketAddr, Proto, Option<String>);

fn key(p: &Probe) -> Key {
    (p.addr, p.proto, p.server_name.clone())
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
    /// Each TCP detection may hold several sockets (its probes run in parallel): 64
    /// ports at a time stays far below the usual 1024 descriptors and the open-file
    /// limit the scanner sizes itself to.
    pub const CONCURRENCY: usize = 64;

    /// A pool with its own two-thread runtime. Fails only when the runtime cannot start
    /// (no threads or descriptors left).
    pub fn new(detector: Detector, opts: Options) -> std::io::Result<Pool> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("portolan-detect")
            .enable_all()
            .build()?;
        Ok(Pool {
            rt: Some(rt),
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

    pub fn detector(&self) -> &Detector {
        &self.det
    }

    /// Starts detecting `probe` in the background (once per address, transport and
    /// server name).
    pub fn start(&mut self, probe: &Probe) {
        let key = key(probe);
        if self.pending.contains_key(&key) || self.done.contains_key(&key) {
            return;
        }
        let Some(rt) = &self.rt else { return };
        let (det, limit) = (Arc::clone(&self.det), Arc::clone(&self.limit));
        let mut opts = self.opts.clone();
        if probe.server_name.is_some() {
            opts.server_name = probe.server_name.clone();
        }
        let (addr, proto) = (probe.addr, probe.proto);
        let (tx, rx) = mpsc::sync_channel(1);
        rt.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let d = det.detect(addr, proto, &opts).await;
            // The pool may be gone: nobody wants the result then.
            let _ = tx.send(d);
        });
        self.pending.insert(key, rx);
    }

    /// The detection of `addr` over `proto`, waiting for it if it is still running;
    /// `None` when it was never started. When the port was asked under several server
    /// names, the one without a name wins, then any.
    pub fn get(&mut self, addr: SocketAddr, proto: Proto) -> Option<&Detection> {
        let plain = (addr, proto, None);
        let key = if self.pending.contains_key(&plain) || self.done.contains_key(&plain) {
            plain
        } else {
            self.pending
                .keys()
                .chain(self.done.keys())
                .find(|k| k.0 == addr && k.1 == proto)?
                .clone()
        };
        self.wait(key)
    }

    /// The detection of `probe` (with its server name), waiting for it if it is still
    /// running; `None` when it was never started.
    pub fn get_probe(&mut self, probe: &Probe) -> Option<&Detection> {
        self.wait(key(probe))
    }

    fn wait(&mut self, key: Key) -> Option<&Detection> {
        if let Some(rx) = self.pending.remove(&key) {
            // Detection bounds itself (`Options::total`), so this wait ends; a task that
            // panicked drops its sender and ends it at once.
            let d = rx
                .recv()
                .unwrap_or_else(|_| Detection::nothing("detection failed: the task ended early"));
            self.done.insert(key.clone(), d);
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
            .map(|p| self.get_probe(p).cloned().unwrap_or_default())
            .collect()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime: let its
        // threads end on their own instead.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
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
