//! `portolan diff`: two points of history, as a table, JSON or JSON Lines; exit codes as
//! ndiff's (0 no difference, 1 a difference, 2 an error).

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use portolan_app::history::{self, DiffOptions, DiffRequest, Ignore};
use portolan_report::drift;

use crate::cli::{DiffArgs, NoiseArgs};
use crate::out;

/// The noise flags as diff options, with this host's ephemeral range.
pub fn options(n: &NoiseArgs) -> anyhow::Result<DiffOptions> {
    Ok(DiffOptions {
        show_noise: n.show_noise,
        min_age: n.min_age,
        ignore: Ignore::parse_all(&n.ignore)?,
        ..history::diff_options()
    })
}

pub fn run(args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let req = DiffRequest {
        from: args.from.clone(),
        to: args.to.clone(),
        db: args.db.clone(),
        opts: options(&args.noise)?,
    };
    let diff = history::diff(&req)?;
    let mut w = BufWriter::new(std::io::stdout().lock());
    if args.jsonl {
        drift::diff_jsonl(&mut w, &diff)?;
    } else if args.json {
        drift::diff_json(&mut w, &diff)?;
    } else {
        drift::diff_table(&mut w, &diff, out::use_color())?;
    }
    w.flush()?;
    Ok(if diff.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
