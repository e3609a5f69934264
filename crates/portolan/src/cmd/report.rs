//! `portolan report`: flags to [`portolan_app::report::build`], the page through
//! `portolan_report::html`, written to standard output or, through a temporary file, to
//! `-o FILE`; the exit code from `--fail-on`. `--run` and `--since` read the history
//! database (`--db`).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use portolan_app::audit::AuditOptions;
use portolan_app::report::{HistoryChoice, ReportOptions, build};
use portolan_report::html;

use portolan_app::policy::parse_date;

use super::audit::{policy_source, threshold};
use crate::cli::ReportArgs;

pub fn run(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let today = args.today.as_deref().map(parse_date).transpose()?;
    let opts = ReportOptions {
        audit: AuditOptions {
            policy: policy_source(&args.source),
            netns: args.netns.clone(),
            scan: (!args.scan.is_empty()).then(|| args.scan.clone()),
            detect: args.detect,
            today,
            ..AuditOptions::default()
        },
        from: args.from.clone(),
        history: match (&args.run, &args.since) {
            (Some(id), _) => Some(HistoryChoice::Run(id.clone())),
            (None, Some(point)) => Some(HistoryChoice::Since(point.clone())),
            (None, None) => None,
        },
        db: args.db.clone(),
        command: crate::cmd::command_line(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        ssh_connection: std::env::var("SSH_CONNECTION").ok(),
    };
    let input = build(&opts)?;
    for w in &input.warnings {
        eprintln!("portolan: {w}");
    }
    let page = html::to_string(&input)?;
    match &args.output {
        Some(path) => portolan_report::metrics::write_atomic(path, page.as_bytes())
            .with_context(|| format!("writing the report to {}", path.display()))?,
        None => {
            let mut w = std::io::stdout().lock();
            w.write_all(page.as_bytes())?;
            w.flush()?;
        }
    }
    let fails = match (threshold(args.fail_on), &input.audit) {
        (Some(t), Some(a)) => a.fails(t),
        _ => false,
    };
    Ok(if fails {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
