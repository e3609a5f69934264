//! Output conventions shared by every command: colour, terminals, tables, JSON Lines and
//! the quiet exit on a broken pipe.

use std::io::{self, IsTerminal, Read};
use std::path::Path;

use anyhow::{Context, bail};

/// True when the error chain holds a broken pipe (the reader went away, as with `| head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            // serde_json wraps the io error of its writer in its own type.
            || e.downcast_ref::<serde_json::Error>()
                .is_some_and(|e| e.io_error_kind() == Some(io::ErrorKind::BrokenPipe))
    })
}

/// Reads a whole input (a file, a FIFO, stdin) of at most `limit` bytes as text; `label`
/// names it in errors (`policy p.toml is larger than ... bytes`, `policy p.toml:3: not
/// valid UTF-8`). Bounded, so that a FIFO
/// or device that never ends costs no more than `limit`.
pub fn read_text(r: impl Read, label: &str, limit: u64) -> anyhow::Result<String> {
    let mut buf = Vec::new();
    r.take(limit + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("cannot read {label}"))?;
    if buf.len() as u64 > limit {
        bail!("{label} is larger than {limit} bytes");
    }
    String::from_utf8(buf).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        anyhow::anyhow!("{label}:{line}: not valid UTF-8")
    })
}

/// [`read_text`] of a file: `what` says what it is (`policy`, `target list`).
pub fn read_text_file(path: &Path, what: &str, limit: u64) -> anyhow::Result<String> {
    let label = format!("{what} {}", path.display());
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {label}"))?;
    read_text(file, &label, limit)
}

/// Whether to colour stdout: only on a terminal, and never when `NO_COLOR` is set.
#[allow(dead_code)]
pub fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && io::stdout().is_terminal()
}

/// The output formats most commands offer with `--format`; `--json` is the same as
/// `--format json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// A message for stderr that may quote input (a file's bytes, a peer's banner): each line
/// with its control characters escaped and cut at 2000 characters, so junk cannot drive
/// the terminal or flood it. Line breaks between lines stay.
pub fn terminal_lines(msg: &str) -> String {
    msg.split('\n')
        .map(|l| portolan_report::text::terminal_bounded(l, 2000))
        .collect::<Vec<_>>()
        .join("\n")
}
