//! `portolan services`: the whole registry, in any format, including a valid
//! `/etc/services`.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use portolan_registry::Which;
use portolan_report::registry::{EntryFormat, Item, write_etc_services};

use crate::cli::{RegistryArgs, ServicesFormat, SourceArg};
use crate::cmd::entries;

pub fn run(
    source: SourceArg,
    format: ServicesFormat,
    registry: &RegistryArgs,
) -> anyhow::Result<ExitCode> {
    let reg = entries::open(registry)?;
    let which = match source {
        SourceArg::Iana => Which::Iana,
        SourceArg::System => Which::System,
        SourceArg::All => Which::All,
    };
    let list = portolan_app::registry::services(&reg, which);
    if list.is_empty() {
        eprintln!("portolan: no entries");
        return Ok(ExitCode::from(1));
    }
    let format = match format {
        ServicesFormat::Table => EntryFormat::Table,
        ServicesFormat::Json => EntryFormat::Json,
        ServicesFormat::Csv => EntryFormat::Csv,
        ServicesFormat::EtcServices => {
            let stdout = std::io::stdout();
            let mut w = BufWriter::new(stdout.lock());
            let skipped = write_etc_services(&mut w, &list, which, reg.services_path())?;
            w.flush()?;
            if !skipped.is_empty() {
                eprintln!(
                    "portolan: left out {} name(s) that a services file cannot hold: {}",
                    skipped.len(),
                    skipped.join(", ")
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let items: Vec<Item<'_>> = list
        .into_iter()
        .map(|entry| Item {
            entry,
            query: None,
            score: None,
        })
        .collect();
    entries::print(&items, format)?;
    Ok(ExitCode::SUCCESS)
}
