//! `portolan lookup QUERY...`: every entry for ports, ranges and names.

use std::process::ExitCode;

use portolan_report::registry::Item;

use crate::cli::{OutputArgs, RegistryArgs};
use crate::cmd::entries;

pub fn run(
    queries: &[String],
    registry: &RegistryArgs,
    output: &OutputArgs,
) -> anyhow::Result<ExitCode> {
    let reg = entries::open(registry)?;
    let found = portolan_app::registry::lookup(&reg, queries)?;
    let mut missing = false;
    for f in found.iter().filter(|f| f.entries.is_empty()) {
        missing = true;
        let hint = f.hint().map(|h| format!(" ({h})")).unwrap_or_default();
        eprintln!("portolan: nothing found for '{}'{hint}", f.query);
    }
    let items: Vec<Item<'_>> = found
        .iter()
        .flat_map(|f| {
            f.entries.iter().map(|e| Item {
                entry: e.clone(),
                query: Some(f.query.as_str()),
                score: None,
            })
        })
        .collect();
    if !items.is_empty() {
        entries::print(&items, entries::format(output.format()))?;
    }
    Ok(if missing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
