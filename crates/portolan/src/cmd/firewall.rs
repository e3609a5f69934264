//! `portolan firewall`: a ruleset from a policy, printed or applied with a rollback.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use portolan_audit::firewall::apply::{self, Nft, Outcome};
use portolan_audit::firewall::{Format, KeepSsh, Plan};

use crate::cli::{FirewallArgs, FirewallFormat};

pub fn run(args: FirewallArgs) -> anyhow::Result<ExitCode> {
    let Some((policy, _arg)) = super::audit::load_policy(&args.source)? else {
        bail!(
            "name the policy to enforce: --policy FILE or --profile NAME (see `portolan policy show`)"
        );
    };
    let keep = std::env::var("SSH_CONNECTION")
        .ok()
        .and_then(|v| KeepSsh::from_ssh_connection(&v));
    let plan = Plan::new(&policy, keep, env!("CARGO_PKG_VERSION"));
    if let Some(k) = keep {
        if !plan.opens_tcp(k.port) {
            eprintln!(
                "portolan: warning: policy \"{}\" does not allow SSH on port {}; the ruleset keeps this session's client ({}) in, but nobody else can connect",
                policy.name, k.port, k.client
            );
        }
    }
    let format = match args.format {
        FirewallFormat::Nftables => Format::Nftables,
        FirewallFormat::Iptables => Format::Iptables,
        FirewallFormat::Ip6tables => Format::Ip6tables,
        FirewallFormat::Ufw => Format::Ufw,
    };
    let mut w = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut w, &plan)?;
        writeln!(w)?;
        return Ok(ExitCode::SUCCESS);
    }
    let ruleset = plan.render(format);
    if !args.apply {
        w.write_all(ruleset.as_bytes())?;
        w.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    if format != Format::Nftables {
        bail!("--apply works with --format nftables only; load other formats with their own tools");
    }
    // Whatever the policy says, the SSH daemon's own ports stay open on the host the
    // ruleset is applied to.
    let mut plan = plan;
    plan.keep_tcp = sshd_ports();
    let ruleset = plan.render(format);
    let nft = Nft::default();
    nft.check(&ruleset)
        .context("the ruleset does not pass `nft -c`")?;
    let interactive = std::io::stdin().is_terminal();
    if !args.yes {
        w.write_all(ruleset.as_bytes())?;
        w.flush()?;
        if !interactive {
            eprintln!(
                "portolan: dry run: the ruleset above passes `nft -c`; add --yes to apply it"
            );
            return Ok(ExitCode::SUCCESS);
        }
        eprint!("Apply this ruleset now? [y/N] ");
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            eprintln!("portolan: not applied");
            return Ok(ExitCode::SUCCESS);
        }
    }
    let dir = state_dir();
    let timeout = args.confirm_timeout;
    let mut confirm = |t: Duration| -> bool {
        eprintln!(
            "portolan: applied. Type 'yes' and Enter within {}s to keep it; otherwise it is rolled back.",
            t.as_secs()
        );
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let ok = std::io::stdin()
                .lock()
                .read_line(&mut line)
                .is_ok_and(|n| n > 0);
            let _ = tx.send(ok && line.trim() == "yes");
        });
        // Leave a margin so the detached timer never races the answer.
        let wait = t
            .saturating_sub(Duration::from_secs(1))
            .max(Duration::from_millis(500));
        rx.recv_timeout(wait).unwrap_or(false)
    };
    let (outcome, saved) = apply::apply(&nft, &ruleset, &dir, timeout, &mut confirm)?;
    match outcome {
        Outcome::Kept => {
            eprintln!(
                "portolan: kept. The previous ruleset is saved in {}; restore it with `nft -f {}`.",
                saved.previous.display(),
                saved.rollback.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Outcome::RolledBack => {
            // Nothing changed: the saved copies are of no further use.
            let _ = std::fs::remove_file(&saved.previous);
            let _ = std::fs::remove_file(&saved.rollback);
            eprintln!(
                "portolan: not confirmed: rolled back to the previous ruleset{}.",
                if saved.full {
                    ""
                } else {
                    " (by removing table inet portolan)"
                }
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// The TCP ports sshd listens on beyond loopback (empty when the inventory cannot tell).
fn sshd_ports() -> Vec<u16> {
    let opts = portolan_inventory::Options {
        tcp: true,
        process: Some("sshd".into()),
        exposed: true,
        ..portolan_inventory::Options::default()
    };
    let mut ports: Vec<u16> =
        portolan_inventory::Inventory::collect(&opts, portolan_registry::Registry::embedded())
            .map(|inv| inv.listeners.iter().map(|l| l.port).collect())
            .unwrap_or_default();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Where the previous ruleset is saved: `$PORTOLAN_STATE_DIR`, else /var/lib/portolan when
/// it can be made, else the temporary directory.
fn state_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("PORTOLAN_STATE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("/var/lib/portolan"));
    if std::fs::create_dir_all(&dir).is_ok() {
        dir
    } else {
        std::env::temp_dir()
    }
}
