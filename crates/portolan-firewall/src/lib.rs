//! Firewall rulesets from a policy: inbound default-drop, then loopback, replies, the
//! ICMP that must pass, and only the policy's services from their allowed sources.
//! [`Plan`] is the ruleset as data; [`Plan::render`] writes it for nftables, iptables,
//! ip6tables or ufw; [`apply`] loads an nftables ruleset with `nft`, with an automatic
//! rollback of portolan's own table unless the user confirms it.
#![deny(unsafe_code)]

pub mod apply;
mod iptables;
mod nft;
#[allow(unsafe_code)]
mod sys;
mod ufw;

use std::net::IpAddr;

use portolan_registry::{PortRange, Proto};
use serde::Serialize;

use portolan_audit::net::IpNet;
use portolan_audit::policy::{Bind, Policy};

pub use iptables::{to_ip6tables, to_iptables};
pub use nft::{TABLE, to_nftables};
pub use ufw::to_ufw;

/// The ruleset formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Nftables,
    Iptables,
    Ip6tables,
    Ufw,
}

/// One inbound allowance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Allowance {
    pub proto: Proto,
    pub ports: PortRange,
    /// IPv4 sources; `None` means any. An empty list means no IPv4 source at all.
    pub v4_from: Option<Vec<IpNet>>,
    /// IPv6 sources, as for IPv4.
    pub v6_from: Option<Vec<IpNet>>,
    /// Local addresses the service is bound to (from the policy's `bind`); empty means
    /// any.
    pub to: Vec<IpAddr>,
    pub comment: String,
}

impl Allowance {
    pub fn v4(&self) -> bool {
        self.v4_from.as_ref().is_none_or(|l| !l.is_empty())
            && (self.to.is_empty() || self.to.iter().any(IpAddr::is_ipv4))
    }
    pub fn v6(&self) -> bool {
        self.v6_from.as_ref().is_none_or(|l| !l.is_empty())
            && (self.to.is_empty() || self.to.iter().any(IpAddr::is_ipv6))
    }
    /// The ports as iptables and ufw write them: `22`, or `6000:6010`.
    pub fn colon_ports(&self) -> String {
        if self.ports.is_single() {
            self.ports.first.to_string()
        } else {
            format!("{}:{}", self.ports.first, self.ports.last)
        }
    }
}

/// The SSH session that applies the ruleset, kept open whatever the policy says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KeepSsh {
    pub client: IpAddr,
    pub port: u16,
}

impl KeepSsh {
    /// Reads `SSH_CONNECTION` ("client_ip client_port server_ip server_port").
    pub fn from_ssh_connection(value: &str) -> Option<KeepSsh> {
        let f: Vec<&str> = value.split_whitespace().collect();
        if f.len() != 4 {
            return None;
        }
        Some(KeepSsh {
            client: f[0].parse::<IpAddr>().ok()?.to_canonical(),
            port: f[3].parse().ok()?,
        })
    }
}

/// What a ruleset is built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub policy: String,
    pub allow: Vec<Allowance>,
    /// Services the policy binds to loopback: nothing to open.
    pub loopback_only: Vec<String>,
    pub keep_ssh: Option<KeepSsh>,
    /// Extra TCP ports always let in (the SSH daemon's own ports).
    pub keep_tcp: Vec<u16>,
    pub version: String,
}

impl Plan {
    /// The plan for a policy.
    pub fn new(policy: &Policy, keep_ssh: Option<KeepSsh>, version: &str) -> Plan {
        let mut allow = Vec::new();
        let mut loopback_only = Vec::new();
        for a in &policy.allow {
            let names: Vec<&str> = a.services.iter().map(|s| s.label.as_str()).collect();
            let comment = names.join(", ");
            let to = match &a.bind {
                Bind::Loopback => {
                    loopback_only.push(comment);
                    continue;
                }
                Bind::Any => Vec::new(),
                Bind::Addresses(list) => list.clone(),
            };
            let (v4_from, v6_from) = if a.from_anywhere() {
                (None, None)
            } else {
                (
                    Some(a.from.iter().copied().filter(IpNet::is_v4).collect()),
                    Some(a.from.iter().copied().filter(|n| !n.is_v4()).collect()),
                )
            };
            for s in &a.services {
                for &(proto, ports) in &s.ports {
                    let item = Allowance {
                        proto,
                        ports,
                        v4_from: v4_from.clone(),
                        v6_from: v6_from.clone(),
                        to: to.clone(),
                        comment: s.label.clone(),
                    };
                    if !allow.contains(&item) {
                        allow.push(item);
                    }
                }
            }
        }
        Plan {
            policy: policy.name.clone(),
            allow,
            loopback_only,
            keep_ssh,
            keep_tcp: Vec::new(),
            version: version.to_string(),
        }
    }

    /// True when the plan lets new connections in on a TCP port from anywhere a client
    /// could be (used to warn before cutting SSH off).
    pub fn opens_tcp(&self, port: u16) -> bool {
        self.keep_tcp.contains(&port)
            || self
                .allow
                .iter()
                .any(|a| a.proto == Proto::Tcp && a.ports.contains(port))
    }

    /// The ruleset in a format.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Nftables => to_nftables(self),
            Format::Iptables => to_iptables(self),
            Format::Ip6tables => to_ip6tables(self),
            Format::Ufw => to_ufw(self),
        }
    }
}

/// A comment safe inside the quotes of every format (no quotes, no control characters,
/// at most 100 characters).
fn clean_comment(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '\'' | '\\' | '`' | '$'))
        .take(100)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_connection() {
        let k = KeepSsh::from_ssh_connection("203.0.113.9 51234 192.0.2.1 2222").unwrap();
        assert_eq!(k.client, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!(k.port, 2222);
        let k = KeepSsh::from_ssh_connection("::ffff:203.0.113.9 1 ::1 22").unwrap();
        assert!(k.client.is_ipv4());
        assert!(KeepSsh::from_ssh_connection("").is_none());
        assert!(KeepSsh::from_ssh_connection("a b c d").is_none());
    }

    #[test]
    fn comments_are_cleaned() {
        assert_eq!(clean_comment("a\"b'c\n$(x)"), "abc(x)");
    }
}
