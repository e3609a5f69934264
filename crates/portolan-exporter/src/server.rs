//! The HTTP server: accept loop, limits, routing, and the single-flight cache.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use portolan_report::metrics::{self, Metrics};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Semaphore, watch};
use tokio::task::JoinSet;

use crate::auth::Auth;
use crate::{Collector, ExporterError, ServeConfig};

/// Runs the exporter until `shutdown` resolves, then lets open requests finish (up to
/// [`ServeConfig::shutdown_grace`]). Prints [`ServeConfig::exposure_warning`] on stderr.
pub async fn serve(
    config: ServeConfig,
    collector: Arc<dyn Collector>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ExporterError> {
    if let Some(w) = config.exposure_warning() {
        eprintln!("portolan serve: warning: {w}");
    }
    Server::bind(config, collector).await?.run(shutdown).await
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A bound exporter, not yet serving (so a caller can learn the port first).
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    config: ServeConfig,
    collector: Arc<dyn Collector>,
    auth: Option<Arc<Auth>>,
    cache: Mutex<Option<Entry>>,
}

#[derive(Clone)]
struct Entry {
    at: Instant,
    outcome: Outcome,
}

#[derive(Clone)]
enum Outcome {
    /// The OpenMetrics exposition; the text format is the same bytes without `# EOF`.
    Metrics(Bytes),
    Failed(String),
}

const EOF: &[u8] = b"# EOF\n";

impl Server {
    /// Binds the listening socket. It also fixes glibc's mmap threshold for the whole
    /// process (see the `sys` module): without that, memory freed after a large
    /// collection stays in the process.
    pub async fn bind(
        config: ServeConfig,
        collector: Arc<dyn Collector>,
    ) -> Result<Server, ExporterError> {
        crate::sys::keep_large_blocks_returnable();
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ExporterError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ExporterError::Bind {
                addr: config.listen,
                source,
            })?;
        let auth = Auth::new(config.web.users.clone());
        Ok(Server {
            listener,
            addr,
            shared: Arc::new(Shared {
                config,
                collector,
                auth,
                cache: Mutex::new(None),
            }),
        })
    }

    /// The address it listens on (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ExporterError> {
        let Server {
            listener,
            addr,
            shared,
        } = self;
        let slots = Arc::new(Semaphore::new(shared.config.max_connections.max(1)));
        let tls = shared
            .config
            .web
            .tls
            .clone()
            .map(tokio_rustls::TlsAcceptor::from);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut conns = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                a = listener.accept() => a,
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            };
            let stream = match accepted {
                Ok((s, _)) => s,
                // Out of descriptors or a connection reset before accept: back off, go on.
                Err(e) if is_transient(&e) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(source) => return Err(ExporterError::Accept { addr, source }),
            };
            // Over the cap: close at once rather than queue.
            let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let shared = Arc::clone(&shared);
            let tls = tls.clone();
            let stop = stop_rx.clone();
            conns.spawn(async move {
                let _permit = permit;
                match tls {
                    None => serve_conn(stream, shared, stop).await,
                    Some(acceptor) => {
                        let limit = shared.config.header_timeout;
                        // A handshake gets the same time as a request head.
                        if let Ok(Ok(s)) =
                            tokio::time::timeout(limit, acceptor.accept(stream)).await
                        {
                            serve_conn(s, shared, stop).await;
                        }
                    }
                }
            });
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let grace = shared.config.shutdown_grace;
        let _ =
            tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} }).await;
        conns.abort_all();
        Ok(())
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12))
}

async fn serve_conn<I>(io: I, shared: Arc<Shared>, mut stop: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.header_timeout)
        .max_buf_size(shared.config.max_header_bytes.max(8192))
        .keep_alive(true);
    let svc_shared = Arc::clone(&shared);
    let svc = service_fn(move |req| {
        let shared = Arc::clone(&svc_shared);
        async move { Ok::<_, Infallible>(handle(req, &shared).await) }
    });
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopped => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

type Resp = Response<Full<Bytes>>;

fn response(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

async fn handle(req: Request<Incoming>, shared: &Shared) -> Resp {
    let mut resp = route(&req, shared).await;
    for (name, value) in &shared.config.web.headers {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

async fn route(req: &Request<Incoming>, shared: &Shared) -> Resp {
    // The body is never read: refuse one that is too large, and close.
    let len = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
    if chunked || len.is_some_and(|n| n > shared.config.max_body_bytes) {
        let mut r = response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "text/plain",
            "request too large\n",
        );
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    if let Some(auth) = &shared.auth {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        if !auth.check(given).await {
            let mut r = response(StatusCode::UNAUTHORIZED, "text/plain", Bytes::new());
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"portolan\""),
            );
            return r;
        }
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = response(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match req.uri().path() {
        "/" => response(StatusCode::OK, "text/html; charset=utf-8", INDEX),
        "/metrics" => metrics_response(req, shared).await,
        _ => response(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

const INDEX: &str = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>portolan exporter</title></head>\n<body><h1>portolan exporter</h1>\n<p>What listens on this host, and whether it is allowed: <a href=\"metrics\">metrics</a>.</p>\n</body></html>\n";

fn wants_openmetrics(req: &Request<Incoming>) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

async fn metrics_response(req: &Request<Incoming>, shared: &Shared) -> Resp {
    let entry = collect(shared).await;
    match entry.outcome {
        Outcome::Failed(why) => response(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            format!("nothing could be collected: {why}\n"),
        ),
        Outcome::Metrics(om) => {
            if wants_openmetrics(req) {
                response(StatusCode::OK, metrics::OPENMETRICS_CONTENT_TYPE, om)
            } else {
                let text = om.slice(..om.len() - EOF.len());
                response(StatusCode::OK, metrics::TEXT_CONTENT_TYPE, text)
            }
        }
    }
}

/// The cached result when it is fresh, else one new collection that every concurrent
/// scrape waits for and shares.
async fn collect(shared: &Shared) -> Entry {
    let mut cached = shared.cache.lock().await;
    if let Some(e) = &*cached {
        if e.at.elapsed() < shared.config.min_interval {
            return e.clone();
        }
    }
    // Let the old exposition go before the new one is built.
    *cached = None;
    let collector = Arc::clone(&shared.collector);
    let outcome = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let result = collector.collect();
        let duration = start.elapsed();
        for c in result.collectors.iter().filter(|c| !c.up) {
            eprintln!(
                "portolan serve: collector {} is down: {}",
                c.name,
                c.error.as_deref().unwrap_or("no reason given")
            );
        }
        if result.nothing_collected() {
            let names: Vec<&str> = result.collectors.iter().map(|c| c.name.as_str()).collect();
            return Outcome::Failed(format!("every collector is down ({})", names.join(", ")));
        }
        let mut m = Metrics::new(
            result.snapshot,
            result.collectors,
            SystemTime::now(),
            duration,
        );
        if result.unexpected.is_some() {
            m.unexpected = result.unexpected;
        }
        Outcome::Metrics(Bytes::from(metrics::into_openmetrics(m)))
    })
    .await
    .unwrap_or_else(|e| Outcome::Failed(format!("the collector failed: {e}")));
    let entry = Entry {
        at: Instant::now(),
        outcome,
    };
    *cached = Some(entry.clone());
    entry
}
