//! `portolan policy show|init|check`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use portolan_app::policy::{self as app, PolicyError};
use portolan_audit::{Date, profiles};
use portolan_registry::Registry;
use portolan_report::policy as render;

use crate::cli::PolicyCommand;
use crate::out;

pub fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    let mut w = std::io::stdout().lock();
    match cmd {
        PolicyCommand::Show { name: None, json } => {
            let list = app::profile_list();
            if json {
                serde_json::to_writer_pretty(&mut w, &list)?;
                writeln!(w)?;
            } else {
                let rows: Vec<render::ProfileRow<'_>> = list
                    .iter()
                    .map(|p| render::ProfileRow {
                        name: p.name,
                        aliases: p.aliases,
                        description: p.description.as_deref(),
                    })
                    .collect();
                render::write_profiles(&mut w, &rows, out::use_color())?;
            }
        }
        PolicyCommand::Show {
            name: Some(name),
            json,
        } => {
            let policy = profiles::load(&name, Registry::embedded())?;
            if json {
                serde_json::to_writer_pretty(&mut w, &policy)?;
                writeln!(w)?;
            } else {
                let p = profiles::find(&name).context("profile vanished")?;
                w.write_all(p.text.as_bytes())?;
            }
        }
        PolicyCommand::Init { output, netns } => {
            let (listeners, warnings) = portolan_app::audit::inside_view(netns.as_deref())?;
            for w in &warnings {
                eprintln!("portolan: {w}");
            }
            let text = app::init(&listeners, &app::host_name(), Date::today_utc());
            // `-o -` is standard output.
            match output.filter(|p| p.as_os_str() != "-") {
                Some(path) => {
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    f.write_all(text.as_bytes())
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!(
                        "wrote {}: trim it, then `portolan policy check {}`",
                        path.display(),
                        path.display()
                    );
                }
                None => w.write_all(text.as_bytes())?,
            }
        }
        PolicyCommand::Check { files, json } => {
            for path in files {
                let (label, text) = app::read_policy_file(&path)?;
                let policy = match app::parse(&text, &label) {
                    Ok(p) => p,
                    Err(PolicyError::Invalid(e)) if json => {
                        serde_json::to_writer(
                            &mut w,
                            &serde_json::json!({"file": label, "ok": false, "errors": e.0}),
                        )?;
                        writeln!(w)?;
                        w.flush()?;
                        return Ok(ExitCode::from(2));
                    }
                    Err(e) => return Err(e.into()),
                };
                let summary = app::summarize(&label, &policy, Date::today_utc());
                if json {
                    serde_json::to_writer(&mut w, &summary)?;
                    writeln!(w)?;
                } else {
                    render::write_check(
                        &mut w,
                        &render::CheckRow {
                            file: &summary.file,
                            name: &summary.name,
                            allowed: summary.allowed,
                            required: summary.required,
                            forbidden_cleartext: summary.forbidden_cleartext,
                            exceptions: summary.exceptions,
                            expired_exceptions: summary.expired_exceptions,
                        },
                    )?;
                }
            }
        }
    }
    w.flush()?;
    Ok(ExitCode::SUCCESS)
}
