//! `portolan search TEXT`: ranked full-text search.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use portolan_report::registry::{Item, write_entries};

use crate::cli::{OutputArgs, RegistryArgs};
use crate::cmd::entries;
use crate::out;

pub fn run(
    text: &[String],
    limit: usize,
    registry: &RegistryArgs,
    output: &OutputArgs,
) -> anyhow::Result<ExitCode> {
    let reg = entries::open(registry)?;
    let text = text.join(" ");
    let hits = portolan_app::registry::search(&reg, &text, limit)?;
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
    write_entries(
        &mut w,
        &items,
        entries::format(output.format()),
        out::use_color(),
    )?;
    w.flush()?;
    Ok(ExitCode::SUCCESS)
}
