//! `portolan record`, and the `--record` of `ls`, `scan` and `audit`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use portolan_app::history::{self, RecordRequest};
use portolan_model::{AuditReport, Listener, ScanReport, Snapshot};

use crate::cli::RecordArgs;
use crate::cmd::audit::policy_source;
use crate::cmd::command_line;

pub fn run(args: &RecordArgs) -> anyhow::Result<ExitCode> {
    let snap = match &args.import {
        Some(path) => history::import(path)?,
        None => history::snapshot(&RecordRequest {
            command: command_line(),
            netns: args.netns.clone(),
            policy: policy_source(&args.source),
            scan: args.scan.clone(),
            detect: args.detect,
        })?,
    };
    for w in &snap.warnings {
        eprintln!(
            "portolan: warning: {}",
            crate::out::terminal_lines(&w.to_string())
        );
    }
    let id = store(args.db.as_deref(), &snap)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let v = serde_json::json!({
            "run": id,
            "started": snap.run.started,
            "host": snap.run.host,
            "listeners": snap.listeners.len(),
            "findings": snap.audit.as_ref().map(|a| a.findings.len()),
            "scan": snap.scan.is_some(),
        });
        portolan_report::json::line(&mut out, &v)?;
    } else {
        writeln!(out, "{id}")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn store(db: Option<&Path>, snap: &Snapshot) -> anyhow::Result<i64> {
    Ok(history::record(db, snap)?)
}

/// `ls --record`: stores the listeners; the run id goes to stderr.
pub fn listeners(
    db: Option<&Path>,
    listeners: &[Listener],
    warnings: &[String],
) -> anyhow::Result<()> {
    let id = store(
        db,
        &history::of_listeners(&command_line(), listeners, warnings),
    )?;
    eprintln!("portolan: recorded run {id}");
    Ok(())
}

/// `scan --record`: stores the scan report.
pub fn scan(db: Option<&Path>, report: &ScanReport) -> anyhow::Result<()> {
    let id = store(db, &history::of_scan(&command_line(), report))?;
    eprintln!("portolan: recorded run {id}");
    Ok(())
}

/// `audit --record`: stores the report with the inside view it judged (taken again).
pub fn audit(db: Option<&Path>, netns: Option<&str>, report: &AuditReport) -> anyhow::Result<()> {
    if report.summary.listeners.is_none() {
        // Stored without listeners, it would read as "every listener gone".
        anyhow::bail!(
            "audit --record: this audit of another host has no inside view; record it with `portolan record --scan TARGET` on that host"
        );
    }
    let listeners = portolan_app::audit::inside_view(netns)?.0;
    let snap = history::of_audit(&command_line(), listeners, report);
    let id = store(db, &snap)?;
    eprintln!("portolan: recorded run {id}");
    Ok(())
}
