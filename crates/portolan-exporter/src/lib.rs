//! portolan's Prometheus exporter (`portolan serve`).
//!
//! It serves the metrics of `portolan_report::metrics` on `/metrics`, collected at scrape
//! time through a [`Collector`] and cached for [`ServeConfig::min_interval`]: concurrent
//! scrapes share one collection. It never scans what a request names. TLS, basic
//! authentication and headers come from an exporter-toolkit web config
//! ([`WebConfig`]). Hostile clients are bounded: a header read timeout, a cap on
//! connections, a cap on the request size, and nothing buffered without bound.
//!
//! ```no_run
//! # async fn run(collector: std::sync::Arc<dyn portolan_exporter::Collector>) {
//! use portolan_exporter::{ServeConfig, serve, shutdown_signal};
//! serve(ServeConfig::default(), collector, shutdown_signal()).await.unwrap();
//! # }
//! ```
#![deny(unsafe_code)]

mod auth;
mod server;
#[allow(unsafe_code)]
mod sys;
mod web_config;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use portolan_model::Snapshot;
pub use portolan_report::metrics::CollectorStatus;
pub use server::{Server, serve, shutdown_signal};
pub use web_config::{WebConfig, WebConfigError};

/// The default port: the first free one we found past the part of Prometheus's
/// default-port allocations that is full (docs/metrics.md says why).
pub const DEFAULT_PORT: u16 = 10191;

/// What one collection gave: the snapshot, and which sources answered.
#[derive(Debug, Clone, Default)]
pub struct CollectResult {
    pub snapshot: Snapshot,
    /// One entry per source (`inventory`, `audit`, ...). When every entry is down, the
    /// scrape is answered with a 503.
    pub collectors: Vec<CollectorStatus>,
    /// The listeners the policy or profile does not allow, when the collector knows
    /// (it ran an audit against one); `None` takes it from the snapshot's audit.
    pub unexpected: Option<usize>,
}

impl CollectResult {
    /// True when at least one source was named and none answered.
    pub fn nothing_collected(&self) -> bool {
        !self.collectors.is_empty() && self.collectors.iter().all(|c| !c.up)
    }
}

/// The seam between the exporter and what it exports. `collect` runs on a blocking
/// thread, at most once per minimum interval, never with input from a request.
pub trait Collector: Send + Sync + 'static {
    fn collect(&self) -> CollectResult;
}

impl<F> Collector for F
where
    F: Fn() -> CollectResult + Send + Sync + 'static,
{
    fn collect(&self) -> CollectResult {
        self()
    }
}

/// How `portolan serve` runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where to listen (`--listen`); `127.0.0.1:10191` by default.
    pub listen: SocketAddr,
    /// Scrapes within this time of the last collection get its cached result.
    pub min_interval: Duration,
    /// TLS, basic auth and headers (`--web-config`).
    pub web: WebConfig,
    /// A client must send a whole request head within this time (slowloris, idle
    /// keep-alive connections and TLS handshakes alike).
    pub header_timeout: Duration,
    /// Connections served at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// The largest request head, in bytes (431 beyond).
    pub max_header_bytes: usize,
    /// The largest request body, in bytes (413 beyond; the body is never read).
    pub max_body_bytes: u64,
    /// How long a graceful shutdown waits for open connections.
    pub shutdown_grace: Duration,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_PORT),
            min_interval: Duration::from_secs(5),
            web: WebConfig::default(),
            header_timeout: Duration::from_secs(5),
            max_connections: 512,
            max_header_bytes: 8192,
            max_body_bytes: 1024,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl ServeConfig {
    /// The warning to print when the exporter listens beyond loopback with neither TLS
    /// nor authentication; `None` otherwise.
    pub fn exposure_warning(&self) -> Option<String> {
        let ip = self.listen.ip();
        let loopback = match ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
            IpAddr::V4(v4) => v4.is_loopback(),
        };
        if loopback || self.web.tls.is_some() || self.web.has_auth() {
            return None;
        }
        Some(format!(
            "listening on {} beyond loopback without TLS or authentication: anyone who reaches \
             it can read this host's listeners and findings (see --web-config)",
            self.listen
        ))
    }
}

/// A failure of the exporter, naming what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot accept connections on {addr}: {source}")]
    Accept {
        addr: SocketAddr,
        source: std::io::Error,
    },
}
