//! `firewall`: the plan (ruleset as data) for a policy, the SSH session and daemon it must
//! keep reachable, and where the previous ruleset is saved when one is applied.

use std::path::PathBuf;

use portolan_audit::policy::Policy;
use portolan_firewall::{KeepSsh, Plan};

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
