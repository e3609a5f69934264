//! `portolan serve`: the Prometheus exporter; and the metrics of `ls`/`audit --format
//! prometheus` (standard output, or a textfile for node_exporter).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use portolan_app::collect::{CollectOptions, Collected, collect};
use portolan_app::inventory::{NetnsChoice, Request};
use portolan_app::policy;
use portolan_exporter::{CollectResult, ServeConfig, Server, WebConfig, shutdown_signal};
use portolan_report::metrics;

use crate::cli::ServeArgs;
use crate::cmd::command_line;

pub fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let web = match &args.web_config {
        Some(path) => WebConfig::load(path)?,
        None => WebConfig::default(),
    };
    let loaded = policy::load(&super::audit::policy_source(&args.source))?;
    let netns = if args.all_netns {
        NetnsChoice::All
    } else if let Some(n) = &args.netns {
        NetnsChoice::Named(n.clone())
    } else {
        NetnsChoice::Current
    };
    // A namespace that does not exist is a usage error now, not a collector that is
    // down on every scrape.
    if matches!(netns, NetnsChoice::Named(_)) {
        portolan_inventory::netns::resolve(&netns)?;
    }
    let opts = CollectOptions {
        request: Request {
            netns,
            ..Request::default()
        },
        policy: loaded,
        audit: false,
        today: None,
        command: command_line(),
    };
    let config = ServeConfig {
        listen: args.listen,
        min_interval: args.min_interval,
        web,
        ..ServeConfig::default()
    };
    let collector = Arc::new(move || {
        let done = collect(&opts);
        CollectResult {
            snapshot: done.snapshot,
            collectors: done.collectors,
            unexpected: done.unexpected,
        }
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(async move {
        if let Some(w) = config.exposure_warning() {
            eprintln!("portolan serve: warning: {w}");
        }
        let tls = config.web.tls.is_some();
        let server = Server::bind(config, collector).await?;
        let scheme = if tls { "https" } else { "http" };
        eprintln!(
            "portolan serve: listening on {scheme}://{}/metrics",
            server.local_addr()
        );
        server.run(shutdown_signal()).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Writes a collection's metrics in the text format, to standard output or, with
/// `output`, to a textfile (temporary file, then renamed over it). When no source
/// answered the metrics are still written (their `portolan_collector_up` is 0, which
/// alerts can see) and the reason is the error.
pub fn write_metrics(done: &Collected, output: Option<&Path>) -> anyhow::Result<()> {
    for w in &done.snapshot.warnings {
        eprintln!(
            "portolan: warning: {}",
            crate::out::terminal_lines(&w.to_string())
        );
    }
    let m = done.metrics();
    match output {
        Some(path) => metrics::write_textfile(path, &m)?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(metrics::encode_text(&m).as_bytes())?;
            out.flush()?;
        }
    }
    for c in done.collectors.iter().filter(|c| !c.up) {
        let why = c.error.as_deref().unwrap_or("no reason given");
        if done.nothing_collected() {
            anyhow::bail!("collector {} is down: {why}", c.name);
        }
        eprintln!("portolan: warning: collector {} is down: {why}", c.name);
    }
    Ok(())
}

/// `-o FILE` belongs to `--format prometheus`.
pub fn output_only_for_prometheus(output: Option<&Path>) -> anyhow::Result<()> {
    match output {
        Some(p) => anyhow::bail!(
            "-o {} is for --format prometheus (other formats go to standard output)",
            p.display()
        ),
        None => Ok(()),
    }
}
