//! `portolan history`: the runs, the timeline of a port or process, and `prune`.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use portolan_app::history::{self, TimelineQuery};
use portolan_report::drift;

use crate::cli::{HistoryArgs, HistoryCommand};
use crate::out;

pub fn run(args: &HistoryArgs) -> anyhow::Result<ExitCode> {
    if let Some(HistoryCommand::Prune { keep, db, json }) = &args.command {
        let mut store = history::open_existing(db.as_deref())?;
        let pruned = store.prune(*keep, jiff::Timestamp::now())?;
        let mut w = std::io::stdout().lock();
        if *json {
            portolan_report::json::line(&mut w, &pruned)?;
        } else {
            writeln!(
                w,
                "Removed {} run(s) and {} interval(s).",
                pruned.runs, pruned.intervals
            )?;
        }
        w.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let store = history::open_existing(args.db.as_deref())?;
    let mut w = BufWriter::new(std::io::stdout().lock());
    if args.port.is_some() || args.process.is_some() {
        let (port, protocol) = match &args.port {
            Some(p) => {
                let (p, proto) = history::parse_port(p)?;
                (Some(p), proto)
            }
            None => (None, None),
        };
        let spans = store.timeline(&TimelineQuery {
            port,
            protocol,
            process: args.process.clone(),
        })?;
        if args.json {
            drift::timeline_json(&mut w, &spans)?;
        } else {
            drift::timeline_table(&mut w, &spans, out::use_color())?;
        }
        w.flush()?;
        return Ok(if spans.is_empty() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    let runs = store.runs()?;
    if args.json {
        drift::runs_json(&mut w, &runs)?;
    } else {
        drift::runs_table(&mut w, &runs, out::use_color())?;
    }
    w.flush()?;
    Ok(ExitCode::SUCCESS)
}
