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
            // Every file is checked, and every error in each is reported; exit 2 at the
            // end when any was bad.
            let mut bad = false;
            for path in files {
                let (label, policy) = match app::read_policy_file(&path) {
                    Ok((label, text)) => {
                        let parsed = app::parse(&text, &label);
                        (label, parsed)
                    }
                    Err(e) => (path.display().to_string(), Err(e)),
                };
                let policy = match policy {
                    Ok(p) => p,
                    Err(e) => {
                        bad = true;
                        if json {
                            let errors = match &e {
                                PolicyError::Invalid(list) => serde_json::to_value(&list.0)?,
                                other => {
                                    serde_json::json!([{"file": label, "message": other.to_string()}])
                                }
                            };
                            serde_json::to_writer(
                                &mut w,
                                &serde_json::json!({"file": label, "ok": false, "errors": errors}),
                            )?;
                            writeln!(w)?;
                        } else {
                            w.flush()?;
                            eprintln!(
                                "portolan: error: {}",
                                crate::out::terminal_lines(&portolan_app::error_text(&e))
                            );
                        }
                        continue;
                    }
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
            if bad {
                w.flush()?;
                return Ok(ExitCode::from(2));
            }
        }
    }
    w.flush()?;
    Ok(ExitCode::SUCCESS)
}
