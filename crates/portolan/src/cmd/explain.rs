//! `portolan explain PORT|NAME`: the human view of a port or service.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use portolan_report::registry::{Explanation, write_explanation, write_explanation_json};

use crate::cli::RegistryArgs;
use crate::cmd::entries;

pub fn run(query: &str, registry: &RegistryArgs, json: bool) -> anyhow::Result<ExitCode> {
    let reg = entries::open(registry)?;
    let x = portolan_app::registry::explain(&reg, query)?;
    let view = Explanation {
        query: &x.query,
        range: x.range,
        protocol: x.protocol.as_deref(),
        category: x.category,
        found: &x.found,
        name: x.name(),
        notes: x.notes,
        advice: &x.advice,
        not_in: x.not_in,
    };
    let stdout = std::io::stdout();
    let mut w = BufWriter::new(stdout.lock());
    if json {
        write_explanation_json(&mut w, &view)?;
    } else {
        write_explanation(&mut w, &view)?;
    }
    w.flush()?;
    if !x.known() {
        eprintln!("portolan: nothing is registered for '{query}'");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
