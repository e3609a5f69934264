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

/// The largest policy file portolan reads.
pub const MAX_POLICY_BYTES: u64 = 16 << 20;

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

/// [`read_text_file`], where `-` is standard input; returns the name to show (`stdin`).
pub fn read_text_arg(path: &Path, what: &str, limit: u64) -> anyhow::Result<(String, String)> {
    if path.as_os_str() == "-" {
        let text = read_text(io::stdin(), &format!("{what} stdin"), limit)?;
        return Ok(("stdin".to_string(), text));
    }
    let text = read_text_file(path, what, limit)?;
    Ok((path.display().to_string(), text))
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

/// A plain text table: columns padded to their widest cell, two spaces apart.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        Table {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    #[allow(dead_code)]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Writes the table; the header is bold when `color` is set. The last column is not
    /// padded, so long descriptions do not leave trailing spaces.
    pub fn write(&self, w: &mut dyn io::Write, color: bool) -> io::Result<()> {
        let ncol = self
            .headers
            .len()
            .max(self.rows.iter().map(Vec::len).max().unwrap_or(0));
        let mut width = vec![0usize; ncol];
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate() {
                width[i] = width[i].max(cell.chars().count());
            }
        }
        let line = |w: &mut dyn io::Write, row: &[String], bold: bool| -> io::Result<()> {
            let mut text = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                text.push_str(cell);
                if i + 1 < row.len() {
                    let pad = width[i] - cell.chars().count();
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            if bold {
                writeln!(w, "\x1b[1m{}\x1b[0m", text.trim_end())
            } else {
                writeln!(w, "{}", text.trim_end())
            }
        };
        if !self.headers.is_empty() {
            line(w, &self.headers, color)?;
        }
        for row in &self.rows {
            line(w, row, false)?;
        }
        Ok(())
    }
}

/// Quotes one CSV field as RFC 4180 says: only when it holds a comma, quote or line break.
pub fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// Writes one CSV record.
pub fn csv_record<S: AsRef<str>>(
    w: &mut dyn io::Write,
    fields: impl IntoIterator<Item = S>,
) -> io::Result<()> {
    let mut first = true;
    for f in fields {
        if !first {
            w.write_all(b",")?;
        }
        first = false;
        w.write_all(csv_field(f.as_ref()).as_bytes())?;
    }
    w.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(["PORT", "NAME"]);
        t.row(["22", "ssh"]);
        t.row(["443", "https"]);
        let mut buf = Vec::new();
        t.write(&mut buf, false).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "PORT  NAME\n22    ssh\n443   https\n"
        );
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        let mut buf = Vec::new();
        csv_record(&mut buf, ["a", "b,c", "say \"hi\""]).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "a,\"b,c\",\"say \"\"hi\"\"\"\n"
        );
    }
}
