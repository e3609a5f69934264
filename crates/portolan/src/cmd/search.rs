//! `portolan search TEXT`: ranked full-text search.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use crate::cli::{OutputArgs, RegistryArgs};
use crate::cmd::entries::{self, Item};

pub fn run(
    text: &[String],
    limit: usize,
    registry: &RegistryArgs,
    output: &OutputArgs,
) -> anyhow::Result<ExitCode> {
    let reg = entries::open(registry)?;
    let text = text.join(" ");
    if !text.chars().any(char::is_alphanumeric) {
        anyhow::bail!("nothing to search for in '{text}'");
    }
    let mut hits = reg.search(&text);
    if limit > 0 {
        hits.truncate(limit);
    }
    if hits.is_empty() {
        eprintln!("portolan: nothing found for '{text}'");
        return Ok(ExitCode::from(1));
    }
    let items: Vec<Item<'_>> = hits
        .into_iter()
        .map(|h| Item {
            entry: h.entry,
            query: None,
            score: Some(h.score),
        })
        .collect();
    let stdout = std::io::stdout();
    let mut w = BufWriter::new(stdout.lock());
    entries::write(&mut w, &items, output.format())?;
    w.flush()?;
    Ok(ExitCode::SUCCESS)
}
