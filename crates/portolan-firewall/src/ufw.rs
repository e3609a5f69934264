//! ufw: a shell script of ufw commands. ufw's own before.rules already accept loopback,
//! established and related traffic, and the ICMP and ICMPv6 that must pass.

use std::fmt::Write;

use super::{Plan, clean_comment};

/// The script.
pub fn to_ufw(plan: &Plan) -> String {
    let mut r = String::from("#!/bin/sh\n");
    let _ = writeln!(
        r,
        "# portolan {} firewall for policy \"{}\", as ufw commands.",
        plan.version,
        clean_comment(&plan.policy)
    );
    r.push_str("# ufw's before.rules already let in loopback, replies and the ICMP/ICMPv6 that must pass.\n");
    r.push_str(
        "# The reset removes every earlier ufw rule, so only the policy's services stay open.\n",
    );
    r.push_str(
        "set -e\nufw --force reset\nufw default deny incoming\nufw default allow outgoing\n",
    );
    if let Some(k) = plan.keep_ssh {
        let _ = writeln!(
            r,
            "ufw allow proto tcp from {} to any port {} comment 'the SSH session that applied this ruleset'",
            k.client, k.port
        );
    }
    for p in &plan.keep_tcp {
        let _ = writeln!(
            r,
            "ufw allow proto tcp to any port {p} comment 'the SSH daemon port'"
        );
    }
    for a in &plan.allow {
        let port = a.colon_ports();
        let comment = clean_comment(&a.comment);
        let sources: Vec<String> = match (&a.v4_from, &a.v6_from) {
            (None, None) => vec!["any".into()],
            (v4, v6) => v4
                .iter()
                .flatten()
                .chain(v6.iter().flatten())
                .map(ToString::to_string)
                .collect(),
        };
        let dests: Vec<String> = if a.to.is_empty() {
            vec!["any".into()]
        } else {
            a.to.iter().map(ToString::to_string).collect()
        };
        for s in &sources {
            for d in &dests {
                let _ = writeln!(
                    r,
                    "ufw allow proto {} from {s} to {d} port {port} comment '{comment}'",
                    a.proto
                );
            }
        }
    }
    r.push_str("ufw --force enable\n");
    r
}
