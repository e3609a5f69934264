//! portolan: chart the network ports of a host.
#![forbid(unsafe_code)]

mod cli;
mod cmd;
mod out;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse_from(cmd::scan::nmap_spellings(std::env::args_os())) {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    match cmd::run(cli) {
        Ok(code) => code,
        Err(err) => report(&err),
    }
}

/// What clap's own `exit` does, but a failed write of `--help` or `--version` (stdout
/// is `/dev/full`) is an error and exit 2, and a broken pipe is quiet.
fn clap_exit(e: &clap::Error) -> ExitCode {
    use std::io::Write;
    let code = ExitCode::from(if e.use_stderr() { 2 } else { 0 });
    let written = e.print().and_then(|()| std::io::stdout().flush());
    match written {
        Ok(()) => code,
        Err(io) => report(&anyhow::Error::new(io)),
    }
}

/// Prints an error and picks the exit code: a broken pipe is a quiet success, anything
/// else is exit 2 (bad input or an operation that could not be done).
fn report(err: &anyhow::Error) -> ExitCode {
    if out::is_broken_pipe(err) {
        return ExitCode::SUCCESS;
    }
    let mut msg = portolan_app::error_text(err.as_ref());
    if out::is_bare_write_error(err) {
        msg = format!("cannot write the output: {msg}");
    }
    eprintln!("portolan: error: {}", out::terminal_lines(&msg));
    ExitCode::from(2)
}
