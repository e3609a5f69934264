//! Output conventions shared by every command: colour, terminals, tables, JSON Lines and
//! the quiet exit on a broken pipe.

use std::io::{self, IsTerminal};

/// The kinds of the io errors in the chain, seen through serde_json's wrapping of its
/// writer's error, and through `io::Error::other(json_error)` (whose `source()` skips
/// the wrapped error itself).
fn io_kinds(err: &anyhow::Error) -> impl Iterator<Item = io::ErrorKind> + '_ {
    err.chain().filter_map(|e| {
        let json = |j: &serde_json::Error| j.io_error_kind();
        if let Some(io) = e.downcast_ref::<io::Error>() {
            match io
                .get_ref()
                .and_then(|i| i.downcast_ref::<serde_json::Error>())
            {
                Some(j) => json(j),
                None => Some(io.kind()),
            }
        } else {
            e.downcast_ref::<serde_json::Error>().and_then(json)
        }
    })
}

/// True when the error chain holds a broken pipe (the reader went away, as with `| head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    io_kinds(err).any(|k| k == io::ErrorKind::BrokenPipe)
}

/// True when the error is an io error with no context of its own whose kind only a
/// write has (a full disk, as with `> /dev/full`): the output could not be written.
pub fn is_bare_write_error(err: &anyhow::Error) -> bool {
    err.chain().count() == 1
        && io_kinds(err).any(|k| {
            matches!(
                k,
                io::ErrorKind::StorageFull
                    | io::ErrorKind::WriteZero
                    | io::ErrorKind::QuotaExceeded
            )
        })
}

/// Whether to colour stdout: only on a terminal, never when `NO_COLOR` is set, and not
/// on a terminal that says it is `dumb`.
#[allow(dead_code)]
pub fn use_color() -> bool {
    color_allowed(
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("TERM").as_deref(),
    ) && io::stdout().is_terminal()
}

/// The environment's part of [`use_color`].
fn color_allowed(no_color: Option<&std::ffi::OsStr>, term: Option<&std::ffi::OsStr>) -> bool {
    no_color.is_none_or(|v| v.is_empty()) && term.is_none_or(|t| t != "dumb")
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn term_dumb_gets_no_colour() {
        assert!(color_allowed(None, Some(OsStr::new("xterm-256color"))));
        assert!(color_allowed(Some(OsStr::new("")), None));
        assert!(!color_allowed(None, Some(OsStr::new("dumb"))));
        assert!(!color_allowed(
            Some(OsStr::new("1")),
            Some(OsStr::new("xterm"))
        ));
        // Junk in either is no reason to fail, nor to colour.
        assert!(!color_allowed(Some(OsStr::new("\x1b[31m")), None));
        assert!(color_allowed(None, Some(OsStr::new("\x1b]0;x\x07"))));
    }

    #[test]
    fn errors_quoting_input_escape_control_characters() {
        assert_eq!(terminal_lines("ok\nline two"), "ok\nline two");
        assert_eq!(terminal_lines("bad <\x1b[2J>"), "bad <\\x1b[2J>");
        assert_eq!(terminal_lines(&"x".repeat(5000)).chars().count(), 2001);
    }
}
