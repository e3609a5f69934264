//! `portolan search TEXT`: ranked full-text search.

use std::process::ExitCode;

use portolan_report::registry::Item;

use crate::cli::{OutputArgs, RegistryArgs};
use crate::cmd::entries;

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
    entries::print(&items, entries::format(output.format()))?;
    Ok(ExitCode::SUCCESS)
}
