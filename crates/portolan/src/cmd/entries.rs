//! Shared by `lookup`, `search`, `services` and `explain`: opening the registry, with the
//! skipped lines of its services file on stderr, the output format, and printing entries.

use std::io::{BufWriter, Write};

use portolan_registry::Registry;
use portolan_report::registry::{EntryFormat, Item, write_entries};

use crate::cli::RegistryArgs;
use crate::out::Format;

/// The registry the commands answer from: IANA merged with `--services FILE`, else with
/// `/etc/services`. Lines of the file that were skipped are reported on stderr.
pub fn open(args: &RegistryArgs) -> anyhow::Result<Registry> {
    let reg = portolan_app::registry::open(args.services.as_deref())?;
    // A file of junk would otherwise bury the output in warnings.
    const SHOWN: usize = 20;
    let warnings = reg.warnings();
    for w in warnings.iter().take(SHOWN) {
        eprintln!(
            "portolan: warning: {}",
            crate::out::terminal_lines(&w.to_string())
        );
    }
    if warnings.len() > SHOWN {
        eprintln!(
            "portolan: warning: ... and {} more skipped lines",
            warnings.len() - SHOWN
        );
    }
    Ok(reg)
}

/// The entry renderer's format for `--format`.
pub fn format(f: Format) -> EntryFormat {
    match f {
        Format::Table => EntryFormat::Table,
        Format::Json => EntryFormat::Json,
        Format::Csv => EntryFormat::Csv,
    }
}

/// Writes `items` to stdout in `format` (coloured when stdout is a terminal that wants it).
pub fn print(items: &[Item<'_>], format: EntryFormat) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut w = BufWriter::new(stdout.lock());
    write_entries(&mut w, items, format, crate::out::use_color())?;
    w.flush()?;
    Ok(())
}
