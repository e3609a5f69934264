//! `portolan watch`: an inventory every interval, one JSON line per change on stdout,
//! `--exec` per change, a clean stop on SIGINT or SIGTERM.

use std::io::Write;
use std::process::ExitCode;
use std::sync::mpsc;

use anyhow::Context;
use portolan_app::history::{self, WatchEvent, WatchOptions};
use portolan_report::drift;

use crate::cli::WatchArgs;
use crate::cmd::command_line;

pub fn run(args: &WatchArgs) -> anyhow::Result<ExitCode> {
    let mut diff = crate::cmd::diff::options(&args.noise)?;
    diff.min_age = None;
    let record = if args.record {
        Some(
            history::db_path(args.db.as_deref())
                .context("watch --record: no place for the history database")?,
        )
    } else {
        None
    };
    let opts = WatchOptions {
        interval: args.interval,
        netns: args.netns.clone(),
        min_age: args.noise.min_age,
        diff,
        record,
        command: command_line(),
    };
    let stop = stop_on_signals()?;
    let mut out = std::io::stdout().lock();
    history::watch(&opts, &stop, &mut |e| match e {
        WatchEvent::Warning(w) => {
            eprintln!("portolan: warning: {}", crate::out::terminal_lines(w));
            Ok(())
        }
        WatchEvent::Started { listeners } => {
            eprintln!(
                "portolan: watching {listeners} listening sockets every {:?}",
                args.interval
            );
            Ok(())
        }
        WatchEvent::Change(c) => {
            let mut line = Vec::new();
            drift::event(&mut line, c)?;
            out.write_all(&line)?;
            out.flush()?;
            if let Some(cmd) = &args.exec
                && let Err(e) = history::run_hook(cmd, &line, c, args.exec_timeout)
            {
                eprintln!(
                    "portolan: warning: {}",
                    crate::out::terminal_lines(&e.to_string())
                );
            }
            Ok(())
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// A receiver that gets a message on SIGINT or SIGTERM. The handlers are in place when
/// this returns.
fn stop_on_signals() -> anyhow::Result<mpsc::Receiver<()>> {
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel::<std::io::Result<()>>();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            rt.block_on(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let (mut term, mut int) = match (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) {
                    (Ok(t), Ok(i)) => (t, i),
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                let _ = tx.send(());
            });
        })
        .context("starting the signal thread")?;
    ready_rx
        .recv()
        .context("the signal thread ended")?
        .context("installing the SIGINT/SIGTERM handlers")?;
    Ok(rx)
}
