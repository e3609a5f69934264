//! `portolan firewall`: a ruleset from a policy, printed or applied with a rollback.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use portolan_app::firewall as app;
use portolan_firewall::Format;
use portolan_firewall::apply::{Nft, Outcome};

use crate::cli::{FirewallArgs, FirewallFormat};

pub fn run(args: FirewallArgs) -> anyhow::Result<ExitCode> {
    let source = super::audit::policy_source(&args.source);
    let Some(loaded) = portolan_app::policy::load(&source)? else {
        bail!(
            "name the policy to enforce: --policy FILE or --profile NAME (see `portolan policy show`)"
        );
    };
    let policy = loaded.policy;
    let ssh = std::env::var("SSH_CONNECTION").ok();
    let plan = app::plan(&policy, ssh.as_deref(), env!("CARGO_PKG_VERSION"));
    if let Some(warning) = app::ssh_warning(&policy, &plan) {
        eprintln!(
            "portolan: warning: {}",
            crate::out::terminal_lines(&warning.to_string())
        );
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
    let nft = Nft::default();
    let ruleset =
        app::ruleset_to_apply(plan, &nft).context("the ruleset does not pass `nft -c`")?;
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
    let (outcome, saved) = app::apply_with_rollback(&nft, &ruleset, timeout, &mut confirm)?;
    match outcome {
        Outcome::Kept => {
            eprintln!(
                "portolan: kept. The previous table inet portolan is saved in {}; restore it with `nft -f {}`.",
                saved.previous.display(),
                saved.rollback.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Outcome::RolledBack => {
            eprintln!(
                "portolan: not confirmed: {}; no other table was touched.",
                match (saved.had_table, saved.exact) {
                    (true, true) => "table inet portolan is back as it was",
                    (false, _) => "table inet portolan is removed, as before",
                    (true, false) =>
                        "table inet portolan is removed (its previous copy would not load back)",
                }
            );
            Ok(ExitCode::from(1))
        }
    }
}
