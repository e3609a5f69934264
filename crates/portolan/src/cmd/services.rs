//! `portolan services`: the whole registry, in any format, including a valid
//! `/etc/services`.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use portolan_registry::Which;
use portolan_registry::services::EtcServices;

use crate::cli::{RegistryArgs, ServicesFormat, SourceArg};
use crate::cmd::entries::{self, Item};
use crate::out::Format;

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
    let list = reg.entries(which);
    if list.is_empty() {
        eprintln!("portolan: no entries");
        return Ok(ExitCode::from(1));
    }
    let stdout = std::io::stdout();
    let mut w = BufWriter::new(stdout.lock());
    let format = match format {
        ServicesFormat::Table => Format::Table,
        ServicesFormat::Json => Format::Json,
        ServicesFormat::Csv => Format::Csv,
        ServicesFormat::EtcServices => {
            let etc = EtcServices::from_entries(&list, which != Which::System);
            let from = match (which, reg.services_path()) {
                (Which::Iana, _) | (_, None) => "IANA's registry".to_string(),
                (Which::System, Some(p)) => p.display().to_string(),
                (Which::All, Some(p)) => format!("IANA's registry and {}", p.display()),
            };
            let header = format!(
                "Network services, Internet style.\n\
                 Written by portolan {} from {from}.\n\
                 Port ranges are written one line per port; names holding blanks are left out.",
                env!("CARGO_PKG_VERSION")
            );
            w.write_all(etc.render(&header).as_bytes())?;
            w.flush()?;
            if !etc.skipped.is_empty() {
                eprintln!(
                    "portolan: left out {} name(s) that a services file cannot hold: {}",
                    etc.skipped.len(),
                    etc.skipped.join(", ")
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
    entries::write(&mut w, &items, format)?;
    w.flush()?;
    Ok(ExitCode::SUCCESS)
}
