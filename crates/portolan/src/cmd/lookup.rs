//! `portolan lookup QUERY...`: every entry for ports, ranges and names.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use portolan_registry::Category;

use crate::cli::{OutputArgs, RegistryArgs};
use crate::cmd::entries::{self, Item, Query};

pub fn run(
    queries: &[String],
    registry: &RegistryArgs,
    output: &OutputArgs,
) -> anyhow::Result<ExitCode> {
    let reg = entries::open(registry)?;
    // Read every query before printing anything, so that a bad one is reported alone.
    let parsed = queries
        .iter()
        .map(|q| entries::parse_query(q, &reg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut items = Vec::new();
    let mut missing = false;
    for (q, parsed) in queries.iter().zip(&parsed) {
        let found = entries::find(&reg, parsed);
        if found.is_empty() {
            missing = true;
            eprintln!("portolan: nothing found for '{q}'{}", hint(parsed));
        }
        items.extend(found.into_iter().map(|entry| Item {
            entry,
            query: Some(q.as_str()),
            score: None,
        }));
    }
    let stdout = std::io::stdout();
    let mut w = BufWriter::new(stdout.lock());
    if !items.is_empty() {
        entries::write(&mut w, &items, output.format())?;
    }
    w.flush()?;
    Ok(if missing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// For a port IANA says nothing about (the dynamic range), its category still means
/// something.
fn hint(q: &Query) -> String {
    match q {
        Query::Ports(r, _) if r.is_single() => {
            let c = Category::of(r.first);
            format!(" ({c} port: {})", c.meaning())
        }
        _ => String::new(),
    }
}
