//! portolan: chart the network ports of a host.
#![forbid(unsafe_code)]

mod cli;
mod cmd;
mod out;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse_from(cmd::scan::nmap_spellings(std::env::args_os()));
    match cmd::run(cli) {
        Ok(code) => code,
        Err(err) => report(&err),
    }
}

/// Prints an error and picks the exit code: a broken pipe is a quiet success, anything
/// else is exit 2 (bad input or an operation that could not be done).
fn report(err: &anyhow::Error) -> ExitCode {
    if out::is_broken_pipe(err) {
        return ExitCode::SUCCESS;
    }
    eprintln!("portolan: error: {}", out::terminal_lines(&message(err)));
    ExitCode::from(2)
}

/// The error and its causes, `: `-separated, each said once: many library errors already
/// end with their source's text, which `{:#}` would repeat.
fn message(err: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if msg.ends_with(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg
}
