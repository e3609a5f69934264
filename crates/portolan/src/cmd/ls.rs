//! `portolan ls`: the listening sockets of this host.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use portolan_app::collect;
use portolan_app::inventory::{self, NetnsChoice, Request};
use portolan_registry::Registry;
use portolan_report::listeners::{self, View};

use crate::cli::{LsArgs, LsFormat, SocketSource};
use crate::out::{self, Format};

pub fn run(args: &LsArgs) -> anyhow::Result<ExitCode> {
    let format = match if args.json {
        LsFormat::Json
    } else {
        args.format
    } {
        LsFormat::Prometheus => return prometheus(args),
        LsFormat::Table => Format::Table,
        LsFormat::Json => Format::Json,
        LsFormat::Csv => Format::Csv,
    };
    super::serve::output_only_for_prometheus(args.output.as_deref())?;
    let inv = inventory::run(&request(args), Registry::embedded())?;
    for w in &inv.warnings {
        eprintln!(
            "portolan: warning: {}",
            crate::out::terminal_lines(&w.to_string())
        );
    }
    let stdout = io::stdout();
    let mut w = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let view = View {
        wide: args.wide,
        netns: args.netns.is_some() || args.all_netns,
        color: format == Format::Table && out::use_color(),
    };
    match format {
        Format::Json => listeners::json(&mut w, &inv.listeners)?,
        Format::Csv => listeners::csv(&mut w, &inv.listeners)?,
        Format::Table => listeners::table(&mut w, &inv.listeners, &view)?,
    }
    w.flush()?;
    if args.record {
        crate::cmd::record::listeners(args.db.as_deref(), &inv.listeners, &inv.warnings)?;
    }
    Ok(if inv.listeners.is_empty() {
        if format == Format::Table {
            eprintln!("portolan: no listening socket matches");
        }
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `--format prometheus`: the inventory's metrics (the same as `portolan serve`'s, with
/// this command's filters), on standard output or in the `-o` textfile.
fn prometheus(args: &LsArgs) -> anyhow::Result<ExitCode> {
    let done = collect::collect(&collect::CollectOptions {
        request: request(args),
        command: super::command_line(),
        ..collect::CollectOptions::default()
    });
    super::serve::write_metrics(&done, args.output.as_deref())?;
    Ok(if done.snapshot.listeners.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The flags as an inventory request; repeated `-p` specs add up.
fn request(args: &LsArgs) -> Request {
    Request {
        tcp: args.tcp,
        udp: args.udp,
        ipv4: args.ipv4,
        ipv6: args.ipv6,
        ports: args.port.iter().cloned().reduce(|mut a, b| {
            a.any.extend(b.any);
            a.tcp.extend(b.tcp);
            a.udp.extend(b.udp);
            a
        }),
        process: args.process.clone(),
        exposed: args.exposed,
        all: args.all,
        source: match args.source {
            SocketSource::Auto => inventory::SocketSource::Auto,
            SocketSource::Netlink => inventory::SocketSource::Netlink,
            SocketSource::Proc => inventory::SocketSource::Proc,
        },
        netns: if args.all_netns {
            NetnsChoice::All
        } else if let Some(n) = &args.netns {
            NetnsChoice::Named(n.clone())
        } else {
            NetnsChoice::Current
        },
    }
}

#[cfg(test)]
mod tests;
