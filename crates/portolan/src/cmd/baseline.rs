//! `portolan baseline accept [RUN]` and `portolan baseline show`.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use portolan_app::history::{self, Point};
use portolan_report::{drift, listeners};

use crate::cli::BaselineCommand;
use crate::out;

pub fn run(cmd: &BaselineCommand) -> anyhow::Result<ExitCode> {
    let mut w = BufWriter::new(std::io::stdout().lock());
    match cmd {
        BaselineCommand::Accept { run, db, json } => {
            let point = match run {
                Some(r) => Point::parse(r)?,
                None => Point::Last,
            };
            let mut store = history::open_existing(db.as_deref())?;
            let id = store.baseline_accept(&point)?;
            if *json {
                portolan_report::json::line(&mut w, &store.run(id)?)?;
            } else {
                writeln!(w, "Run {id} is the baseline.")?;
            }
        }
        BaselineCommand::Show { db, json } => {
            let store = history::open_existing(db.as_deref())?;
            let Some(run) = store.baseline()? else {
                anyhow::bail!(
                    "{}: no baseline accepted yet (portolan baseline accept [RUN])",
                    store.path().display()
                );
            };
            let snap = store.snapshot(run.id)?;
            if *json {
                let v = serde_json::json!({ "run": run, "snapshot": snap });
                portolan_report::json::document(&mut w, &v)?;
            } else {
                drift::runs_table(&mut w, std::slice::from_ref(&run), out::use_color())?;
                writeln!(w)?;
                let view = listeners::View {
                    wide: false,
                    netns: false,
                    color: out::use_color(),
                };
                listeners::table(&mut w, &snap.listeners, &view)?;
            }
        }
    }
    w.flush()?;
    Ok(ExitCode::SUCCESS)
}
