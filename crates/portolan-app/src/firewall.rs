//! `firewall`: the plan (ruleset as data) for a policy, the SSH session and daemon it must
//! keep reachable, the ruleset to apply on this host, and applying it with its rollback
//! (the previous ruleset saved in the state directory).

use std::path::PathBuf;
use std::time::Duration;

use portolan_audit::policy::Policy;
use portolan_firewall::apply::{self, ApplyError, Nft, Outcome, Saved};
use portolan_firewall::{Format, KeepSsh, Plan};

/// The plan for `policy`, keeping the SSH session named by `ssh_connection` (the value of
/// `$SSH_CONNECTION`) reachable.
pub fn plan(policy: &Policy, ssh_connection: Option<&str>, version: &str) -> Plan {
    let keep = ssh_connection.and_then(KeepSsh::from_ssh_connection);
    Plan::new(policy, keep, version)
}

/// The warning to give when the policy does not let the current SSH session's port in.
pub fn ssh_warning(policy: &Policy, plan: &Plan) -> Option<String> {
    let k = plan.keep_ssh?;
    (!plan.opens_tcp(k.port)).then(|| {
        format!(
            "policy \"{}\" does not allow SSH on port {}; the ruleset keeps this session's client ({}) in, but nobody else can connect",
            policy.name, k.port, k.client
        )
    })
}

/// The plan to apply on this host: whatever the policy says, the SSH daemon's own ports
/// stay open.
pub fn for_this_host(mut plan: Plan) -> Plan {
    plan.keep_tcp = sshd_ports();
    plan
}

/// The nftables ruleset to apply on this host: the plan [`for_this_host`], rendered, and
/// accepted by `nft -c`.
pub fn ruleset_to_apply(plan: Plan, nft: &Nft) -> Result<String, ApplyError> {
    let ruleset = for_this_host(plan).render(Format::Nftables);
    nft.check(&ruleset)?;
    Ok(ruleset)
}

/// Applies `ruleset` with its rollback ([`apply::apply`]), saving portolan's previous
/// table in [`state_dir`]. `confirm` gets the time left and returns true to keep it. When
/// the ruleset was rolled back the saved copies are removed (the table is as it was), and
/// the returned paths no longer exist.
pub fn apply_with_rollback(
    nft: &Nft,
    ruleset: &str,
    timeout: Duration,
    confirm: &mut dyn FnMut(Duration) -> bool,
) -> Result<(Outcome, Saved), ApplyError> {
    let (outcome, saved) = apply::apply(nft, ruleset, &state_dir(), timeout, confirm)?;
    if outcome == Outcome::RolledBack {
        let _ = std::fs::remove_file(&saved.previous);
        let _ = std::fs::remove_file(&saved.rollback);
    }
    Ok((outcome, saved))
}

/// The TCP ports sshd listens on beyond loopback (empty when the inventory cannot tell).
pub fn sshd_ports() -> Vec<u16> {
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
pub fn state_dir() -> PathBuf {
    let dir = std::env::var_os("PORTOLAN_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/portolan"));
    if std::fs::create_dir_all(&dir).is_ok() {
        dir
    } else {
        std::env::temp_dir()
    }
}
