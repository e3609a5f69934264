//! nftables: one table of its own (`inet portolan`), replaced atomically, so the rest of
//! the host's ruleset is left alone. A drop in any base chain is final, so this table
//! enforces the policy whatever other tables accept.

use std::fmt::Write;

use super::{Allowance, Plan, clean_comment};
use portolan_audit::net::IpNet;

/// The table portolan owns.
pub const TABLE: &str = "inet portolan";

fn set(nets: &[IpNet]) -> String {
    let list: Vec<String> = nets.iter().map(ToString::to_string).collect();
    if list.len() == 1 {
        list[0].clone()
    } else {
        format!("{{ {} }}", list.join(", "))
    }
}

fn ports(a: &Allowance) -> String {
    format!("{} dport {}", a.proto, a.ports)
}

/// The ruleset as `nft -f` reads it.
pub fn to_nftables(plan: &Plan) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "#!/usr/sbin/nft -f");
    let _ = writeln!(
        r,
        "# portolan {} firewall for policy \"{}\": inbound is dropped unless allowed below.",
        plan.version,
        clean_comment(&plan.policy)
    );
    r.push_str(
        "# Only the input hook is filtered; forwarded and outgoing traffic are left alone.\n",
    );
    r.push_str("# Loading it replaces the table inet portolan and nothing else.\n");
    r.push_str("table inet portolan\ndelete table inet portolan\n\n");
    r.push_str("table inet portolan {\n");
    r.push_str("\tchain input {\n");
    r.push_str("\t\ttype filter hook input priority filter; policy drop;\n\n");
    r.push_str("\t\tiif \"lo\" accept comment \"loopback\"\n");
    r.push_str(
        "\t\tct state established,related accept comment \"replies, and ICMP errors about them\"\n",
    );
    r.push_str("\t\tct state invalid drop\n\n");
    r.push_str("\t\t# ICMP that must pass: errors (PMTU discovery needs fragmentation-needed), and ping.\n");
    r.push_str("\t\tmeta l4proto icmp icmp type { destination-unreachable, time-exceeded, parameter-problem } accept\n");
    r.push_str("\t\tmeta l4proto icmp icmp type echo-request limit rate 20/second burst 50 packets accept\n");
    r.push_str(
        "\t\t# ICMPv6 (RFC 4890): errors, packet-too-big, and neighbour discovery from the link.\n",
    );
    r.push_str("\t\tmeta l4proto ipv6-icmp icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } accept\n");
    r.push_str("\t\tmeta l4proto ipv6-icmp icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect } ip6 hoplimit 255 accept\n");
    r.push_str("\t\tmeta l4proto ipv6-icmp icmpv6 type { mld-listener-query, mld-listener-report, mld2-listener-report } ip6 saddr fe80::/10 accept\n");
    r.push_str("\t\tmeta l4proto ipv6-icmp icmpv6 type echo-request limit rate 20/second burst 50 packets accept\n");

    if plan.keep_ssh.is_some() || !plan.keep_tcp.is_empty() {
        r.push('\n');
    }
    if let Some(k) = plan.keep_ssh {
        let fam = if k.client.is_ipv4() { "ip" } else { "ip6" };
        let _ = writeln!(
            r,
            "\t\t{fam} saddr {} tcp dport {} accept comment \"the SSH session that applied this ruleset\"",
            k.client, k.port
        );
    }
    for p in &plan.keep_tcp {
        let _ = writeln!(
            r,
            "\t\ttcp dport {p} accept comment \"the SSH daemon's port\""
        );
    }

    r.push('\n');
    let _ = writeln!(
        r,
        "\t\t# The services policy \"{}\" allows.",
        clean_comment(&plan.policy)
    );
    if plan.allow.is_empty() {
        r.push_str("\t\t# (none)\n");
    }
    for a in &plan.allow {
        let comment = format!(" comment \"{}\"", clean_comment(&a.comment));
        let to4: Vec<String> =
            a.to.iter()
                .filter(|t| t.is_ipv4())
                .map(ToString::to_string)
                .collect();
        let to6: Vec<String> =
            a.to.iter()
                .filter(|t| t.is_ipv6())
                .map(ToString::to_string)
                .collect();
        let dst = |fam: &str, list: &[String]| -> String {
            match list.len() {
                0 => String::new(),
                1 => format!("{fam} daddr {} ", list[0]),
                _ => format!("{fam} daddr {{ {} }} ", list.join(", ")),
            }
        };
        match (&a.v4_from, &a.v6_from, a.to.is_empty()) {
            (None, None, true) => {
                let _ = writeln!(r, "\t\t{} accept{comment}", ports(a));
            }
            _ => {
                if a.v4() {
                    let src = match &a.v4_from {
                        Some(l) => format!("ip saddr {} ", set(l)),
                        None if to4.is_empty() => "meta nfproto ipv4 ".into(),
                        None => String::new(),
                    };
                    let _ = writeln!(
                        r,
                        "\t\t{src}{}{} accept{comment}",
                        dst("ip", &to4),
                        ports(a)
                    );
                }
                if a.v6() {
                    let src = match &a.v6_from {
                        Some(l) => format!("ip6 saddr {} ", set(l)),
                        None if to6.is_empty() => "meta nfproto ipv6 ".into(),
                        None => String::new(),
                    };
                    let _ = writeln!(
                        r,
                        "\t\t{src}{}{} accept{comment}",
                        dst("ip6", &to6),
                        ports(a)
                    );
                }
            }
        }
    }
    for name in &plan.loopback_only {
        let _ = writeln!(
            r,
            "\t\t# {}: loopback only, nothing to open",
            clean_comment(name)
        );
    }
    r.push_str("\t}\n}\n");
    r
}
