//! One module per command; each turns parsed arguments into output and an exit code.

mod audit;
mod baseline;
mod diff;
mod firewall;
mod history;
mod ls;
mod policy;
mod record;
mod report;
mod watch;

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{Cli, Command};

mod detect;
mod entries;
mod explain;
mod lookup;
pub mod scan;
mod search;
mod serve;
mod services;

/// The arguments this process was started with, joined by spaces, as a run, a metric
/// and the XML keep it. Lossy: an argument that is not UTF-8 (a file name) must not
/// panic, as `std::env::args` does.
pub fn command_line() -> String {
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Audit(args) => audit::run(args),
        Command::Policy { command } => policy::run(command),
        Command::Firewall(args) => firewall::run(args),
        Command::Report(args) => report::run(&args),
        Command::Lookup {
            queries,
            registry,
            output,
        } => lookup::run(&queries, &registry, &output),
        Command::Search {
            text,
            limit,
            registry,
            output,
        } => search::run(&text, limit, &registry, &output),
        Command::Services {
            source,
            format,
            json,
            registry,
        } => {
            let format = if json {
                crate::cli::ServicesFormat::Json
            } else {
                format
            };
            services::run(source, format, &registry)
        }
        Command::Explain {
            query,
            registry,
            json,
        } => explain::run(&query, &registry, json),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            // clap_complete panics when its writer fails (a broken pipe): render into
            // memory, then write with the usual error handling.
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "portolan", &mut buf);
            let mut out = std::io::stdout().lock();
            out.write_all(&buf)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Detect(args) => detect::run(&args),
        Command::Man { command } => {
            // Built first, so that each subcommand knows its full name (portolan-audit).
            let mut page = Cli::command().disable_help_subcommand(true);
            page.build();
            for word in &command {
                page = match page.find_subcommand(word) {
                    Some(sub) => sub.clone(),
                    None => anyhow::bail!(
                        "no command '{word}' in `portolan {}` (see `portolan --help`)",
                        command.join(" ")
                    ),
                };
            }
            let mut buf = Vec::new();
            clap_mangen::Man::new(page)
                .source(concat!("portolan ", env!("CARGO_PKG_VERSION")))
                .render(&mut buf)?;
            let mut out = std::io::stdout().lock();
            out.write_all(&buf)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Scan(args) => scan::run(&args),
        Command::Ls(args) => ls::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Record(args) => record::run(&args),
        Command::History(args) => history::run(&args),
        Command::Diff(args) => diff::run(&args),
        Command::Watch(args) => watch::run(&args),
        Command::Baseline { command } => baseline::run(&command),
    }
}
