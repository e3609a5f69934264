//! iptables-restore and ip6tables-restore: the whole filter table, with INPUT dropping by
//! default. FORWARD and OUTPUT are declared open; edit them if this host routes.

use std::fmt::Write;

use super::{Plan, clean_comment};

fn header(plan: &Plan, tool: &str) -> String {
    let mut r = String::new();
    let _ = writeln!(
        r,
        "# portolan {} firewall for policy \"{}\", for {tool}.",
        plan.version,
        clean_comment(&plan.policy)
    );
    let _ = writeln!(
        r,
        "# It replaces the filter table: load it with `{tool} < FILE` (or save it as the"
    );
    r.push_str("# distribution's rules file). Inbound is dropped unless allowed below.\n");
    r.push_str("*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    r.push_str("-A INPUT -i lo -j ACCEPT\n");
    r.push_str("-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n");
    r.push_str("-A INPUT -m conntrack --ctstate INVALID -j DROP\n");
    r
}

fn rules(plan: &Plan, r: &mut String, v6: bool) {
    if let Some(k) = plan.keep_ssh.filter(|k| k.client.is_ipv6() == v6) {
        let _ = writeln!(
            r,
            "-A INPUT -s {} -p tcp -m tcp --dport {} -m comment --comment \"the SSH session that applied this ruleset\" -j ACCEPT",
            k.client, k.port
        );
    }
    for p in &plan.keep_tcp {
        let _ = writeln!(
            r,
            "-A INPUT -p tcp -m tcp --dport {p} -m comment --comment \"the SSH daemon's port\" -j ACCEPT"
        );
    }
    for a in &plan.allow {
        if (v6 && !a.v6()) || (!v6 && !a.v4()) {
            continue;
        }
        let from = if v6 { &a.v6_from } else { &a.v4_from };
        let sources: Vec<String> = match from {
            None => vec![String::new()],
            Some(l) => l.iter().map(|n| format!("-s {n} ")).collect(),
        };
        let dests: Vec<String> = {
            let d: Vec<String> =
                a.to.iter()
                    .filter(|t| t.is_ipv6() == v6)
                    .map(|t| format!("-d {t} "))
                    .collect();
            if d.is_empty() { vec![String::new()] } else { d }
        };
        let proto = a.proto.as_str();
        for s in &sources {
            for d in &dests {
                let _ = writeln!(
                    r,
                    "-A INPUT {s}{d}-p {proto} -m {proto} --dport {} -m comment --comment \"{}\" -j ACCEPT",
                    a.colon_ports(),
                    clean_comment(&a.comment)
                );
            }
        }
    }
    r.push_str("COMMIT\n");
}

/// IPv4, for `iptables-restore`.
pub fn to_iptables(plan: &Plan) -> String {
    let mut r = header(plan, "iptables-restore");
    for t in [
        "destination-unreachable",
        "time-exceeded",
        "parameter-problem",
    ] {
        let _ = writeln!(r, "-A INPUT -p icmp -m icmp --icmp-type {t} -j ACCEPT");
    }
    r.push_str("-A INPUT -p icmp -m icmp --icmp-type echo-request -m limit --limit 20/second --limit-burst 50 -j ACCEPT\n");
    rules(plan, &mut r, false);
    r
}

/// IPv6, for `ip6tables-restore`.
pub fn to_ip6tables(plan: &Plan) -> String {
    let mut r = header(plan, "ip6tables-restore");
    for t in [
        "destination-unreachable",
        "packet-too-big",
        "time-exceeded",
        "parameter-problem",
    ] {
        let _ = writeln!(
            r,
            "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type {t} -j ACCEPT"
        );
    }
    for t in [
        "router-advertisement",
        "neighbour-solicitation",
        "neighbour-advertisement",
        "redirect",
    ] {
        let _ = writeln!(
            r,
            "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type {t} -m hl --hl-eq 255 -j ACCEPT"
        );
    }
    for t in ["130", "131", "143"] {
        let _ = writeln!(
            r,
            "-A INPUT -s fe80::/10 -p ipv6-icmp -m icmp6 --icmpv6-type {t} -j ACCEPT"
        );
    }
    r.push_str("-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type echo-request -m limit --limit 20/second --limit-burst 50 -j ACCEPT\n");
    rules(plan, &mut r, true);
    r
}
