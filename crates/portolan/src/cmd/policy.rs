//! `portolan policy show|init|check`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use portolan_audit::init::{InitOptions, starting_policy};
use portolan_audit::policy::Policy;
use portolan_audit::{Date, Severity, profiles};
use portolan_registry::Registry;

use crate::cli::PolicyCommand;
use crate::out;

pub fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    let mut w = std::io::stdout().lock();
    match cmd {
        PolicyCommand::Show { name: None, json } => {
            if json {
                let list: Vec<serde_json::Value> = profiles::PROFILES
                    .iter()
                    .map(|p| {
                        let desc = p.policy(Registry::embedded()).ok().and_then(|p| p.description);
                        serde_json::json!({ "name": p.name, "aliases": p.aliases, "description": desc })
                    })
                    .collect();
                serde_json::to_writer_pretty(&mut w, &list)?;
                writeln!(w)?;
            } else {
                let mut t = out::Table::new(["PROFILE", "ALIASES", "DESCRIPTION"]);
                for p in profiles::PROFILES {
                    let desc = p
                        .policy(Registry::embedded())
                        .ok()
                        .and_then(|p| p.description)
                        .unwrap_or_default();
                    t.row([p.name.to_string(), p.aliases.join(", "), desc]);
                }
                t.write(&mut w, out::use_color())?;
                writeln!(w, "\nShow one with `portolan policy show NAME`.")?;
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
            let listeners = super::audit::inside_view(netns.as_deref())?;
            let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "this-host".into());
            let text = starting_policy(
                &listeners,
                Registry::embedded(),
                InitOptions {
                    name: &name,
                    today: Date::today_utc(),
                    ephemeral: super::audit::ephemeral_range(),
                },
            );
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
                let (label, text) = out::read_text_arg(&path, "policy", out::MAX_POLICY_BYTES)?;
                let policy = match Policy::parse(&text, &label, Registry::embedded()) {
                    Ok(p) => p,
                    Err(e) => {
                        if json {
                            serde_json::to_writer(
                                &mut w,
                                &serde_json::json!({"file": label, "ok": false, "errors": e.0}),
                            )?;
                            writeln!(w)?;
                            w.flush()?;
                            return Ok(ExitCode::from(2));
                        }
                        anyhow::bail!("invalid policy\n{e}");
                    }
                };
                let today = Date::today_utc();
                let expired = policy
                    .exceptions
                    .iter()
                    .filter(|e| e.expires.is_some_and(|d| d < today))
                    .count();
                let services: usize = policy.allow.iter().map(|a| a.services.len()).sum();
                if json {
                    serde_json::to_writer(
                        &mut w,
                        &serde_json::json!({
                            "file": label,
                            "ok": true,
                            "name": policy.name,
                            "allowed": services,
                            "required": policy.require.len(),
                            "forbidden_cleartext": policy.forbid_cleartext.len(),
                            "exceptions": policy.exceptions.len(),
                            "expired_exceptions": expired,
                        }),
                    )?;
                    writeln!(w)?;
                } else {
                    writeln!(
                        w,
                        "{label}: ok: policy \"{}\" allows {services} service{}, requires {}, forbids {} cleartext protocol{}, {} exception{}{}",
                        policy.name,
                        if services == 1 { "" } else { "s" },
                        policy.require.len(),
                        policy.forbid_cleartext.len(),
                        if policy.forbid_cleartext.len() == 1 {
                            ""
                        } else {
                            "s"
                        },
                        policy.exceptions.len(),
                        if policy.exceptions.len() == 1 {
                            ""
                        } else {
                            "s"
                        },
                        if expired > 0 {
                            format!(" ({expired} expired: {} finding)", Severity::Low)
                        } else {
                            String::new()
                        },
                    )?;
                }
            }
        }
    }
    w.flush()?;
    Ok(ExitCode::SUCCESS)
}
