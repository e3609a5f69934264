//! `portolan policy init`: a starting policy written from what listens now, one commented
//! entry per service, for the user to trim.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::IpAddr;

use portolan_registry::{PortRange, Proto};

use crate::catalog::{self, Catalog};
use crate::date::Date;
use crate::knowledge::{self, Kind};
use portolan_model::{Exposure, Listener};

/// What the starting policy is written from.
#[derive(Debug, Clone, Copy)]
pub struct InitOptions<'a> {
    /// The policy's name (the host name, usually).
    pub name: &'a str,
    pub today: Date,
    pub ephemeral: PortRange,
}

struct Entry<'a> {
    addrs: Vec<IpAddr>,
    exposure: Exposure,
    owners: Vec<String>,
    listeners: Vec<&'a Listener>,
}

/// Writes the policy text. Sockets in other network namespaces are left out, and so are
/// UDP sockets on ephemeral ports that no registry names (they are clients' sockets).
pub fn starting_policy(
    listeners: &[Listener],
    catalog: &dyn Catalog,
    opt: InitOptions<'_>,
) -> String {
    let mut groups: BTreeMap<(Proto, u16), Entry<'_>> = BTreeMap::new();
    let mut skipped_clients = 0usize;
    // One inventory reads one namespace; a row from another is not this host's.
    let home = listeners.first().map(|l| l.netns.clone());
    for l in listeners.iter().filter(|l| Some(&l.netns) == home.as_ref()) {
        let named = catalog::name_for(catalog, l.port, l.protocol).is_some() || l.service.is_some();
        if l.protocol == Proto::Udp && opt.ephemeral.contains(l.port) && !named {
            skipped_clients += 1;
            continue;
        }
        let e = groups.entry((l.protocol, l.port)).or_insert_with(|| Entry {
            addrs: Vec::new(),
            exposure: Exposure::Loopback,
            owners: Vec::new(),
            listeners: Vec::new(),
        });
        if !e.addrs.contains(&l.address) {
            e.addrs.push(l.address);
        }
        e.exposure = e.exposure.max(l.exposure);
        for p in l.processes.iter() {
            let mut who = format!("{} (pid {}", p.name, p.pid);
            if let Some(u) = crate::input::owner_unit(l, p) {
                let _ = write!(who, ", {u}");
            }
            who.push(')');
            if !e.owners.contains(&who) {
                e.owners.push(who);
            }
        }
        e.listeners.push(l);
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "# portolan policy, written by `portolan policy init` on {} from what listens now.",
        opt.today
    );
    out.push_str(
        "# Trim it to what this host must serve: delete each [[allow]] it does not need (and stop\n\
         # that service), narrow `bind` to loopback or an address and `from` to the networks\n\
         # that need it. Then check it with `portolan policy check FILE` and audit with\n\
         # `portolan audit --policy FILE`. Syntax: docs/policy.md.\n",
    );
    let _ = writeln!(out, "name = {}", toml_string(opt.name));
    out.push_str("forbid-cleartext = \"all\"\n");
    if groups.is_empty() {
        out.push_str("\n# Nothing listens: this policy allows nothing.\n");
    }
    for ((proto, port), e) in &groups {
        let known = knowledge::by_port(*port, *proto);
        let name = e
            .listeners
            .iter()
            .find_map(|l| l.service.as_deref().map(str::to_string))
            .filter(|n| known.is_none_or(|k| k.name == n))
            .or_else(|| catalog::name_for(catalog, *port, *proto));
        // A name the policy parser would resolve to more than this port would widen the
        // allowance; use port/proto unless the name is exactly this port.
        let exact = name.as_deref().and_then(|n| {
            crate::policy::resolve(&format!("{n}/{proto}"), catalog)
                .ok()
                .filter(|s| s.ports == vec![(*proto, PortRange::single(*port))])
                .map(|_| format!("{n}/{proto}"))
        });
        let service = match (&exact, known) {
            (Some(_), Some(k)) if k.ports.len() == 1 => k.name.to_string(),
            (Some(s), _) => s.clone(),
            (None, _) => format!("{port}/{proto}"),
        };
        let where_ = e
            .addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let owners = if e.owners.is_empty() {
            "owner unknown".to_string()
        } else {
            e.owners.join(", ")
        };
        out.push('\n');
        let _ = writeln!(out, "# {port}/{proto} on {where_}: {owners}");
        if let Some(n) = name.as_deref().filter(|_| exact.is_none()) {
            let _ = writeln!(out, "# (the registry calls {port}/{proto} '{n}')");
        }
        if name.is_none() {
            out.push_str(
                "# No registry knows this port: find out what it is before you keep it.\n",
            );
        }
        let insecure = known.is_some_and(|k| k.is_insecure() && !k.starttls);
        let prefix = if insecure && e.exposure != Exposure::Loopback {
            let k = known.map(|k| k.kind);
            let why = match k {
                Some(Kind::RemoteShell) => "remote access without encryption",
                Some(Kind::Obsolete) => "an obsolete inetd service",
                _ => "a cleartext protocol",
            };
            let _ = writeln!(
                out,
                "# Left out: this is {why}, forbidden by forbid-cleartext. Stop the service."
            );
            "# "
        } else {
            if known.is_some_and(|k| k.kind == Kind::LocalOnly) && e.exposure != Exposure::Loopback
            {
                out.push_str("# This normally stays on the host: consider bind = \"loopback\".\n");
            }
            if opt.ephemeral.contains(*port) {
                let _ = writeln!(
                    out,
                    "# In the ephemeral range {}: outgoing connections may take this port first.",
                    opt.ephemeral
                );
            }
            ""
        };
        let _ = writeln!(out, "{prefix}[[allow]]");
        let _ = writeln!(out, "{prefix}service = {}", toml_string(&service));
        let bind = match e.exposure {
            Exposure::Loopback => "\"loopback\"".to_string(),
            Exposure::All => "\"any\"".to_string(),
            Exposure::Address => {
                let list: Vec<String> = e
                    .addrs
                    .iter()
                    .filter(|a| !a.is_loopback())
                    .map(|a| toml_string(&a.to_string()))
                    .collect();
                format!("[{}]", list.join(", "))
            }
        };
        let _ = writeln!(out, "{prefix}bind = {bind}");
        if e.exposure != Exposure::Loopback {
            let _ = writeln!(
                out,
                "{prefix}# from = [\"192.0.2.0/24\"]  # who may reach it; anyone when left out"
            );
        }
    }
    if skipped_clients > 0 {
        let _ = writeln!(
            out,
            "\n# Left out: {skipped_clients} UDP socket(s) on unnamed ephemeral ports (clients, not services)."
        );
    }
    out
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use portolan_model::Process;
    use portolan_registry::Registry;

    fn l(proto: Proto, addr: &str, port: u16, name: &str, pid: u32) -> Listener {
        Listener::new(proto, addr.parse().unwrap(), port).with_process(Process {
            pid,
            name: name.into(),
            unit: Some(format!("{name}.service")),
            ..Process::default()
        })
    }

    #[test]
    fn init_writes_a_policy_that_parses() {
        let ls = vec![
            l(Proto::Tcp, "0.0.0.0", 22, "sshd", 10),
            l(Proto::Tcp, "::", 22, "sshd", 10),
            l(Proto::Tcp, "127.0.0.1", 6379, "redis-server", 11),
            l(Proto::Tcp, "0.0.0.0", 23, "inetd", 12),
            l(Proto::Tcp, "192.0.2.5", 8443, "app", 13),
            l(Proto::Udp, "0.0.0.0", 41234, "dhclient", 14),
            l(Proto::Tcp, "0.0.0.0", 143, "dovecot", 15),
            l(Proto::Tcp, "0.0.0.0", 47123, "mystery", 16),
        ];
        let text = starting_policy(
            &ls,
            Registry::embedded(),
            InitOptions {
                name: "host \"one\"",
                today: Date::new(2026, 11, 27).unwrap(),
                ephemeral: PortRange::new(32768, 60999).unwrap(),
            },
        );
        let p = Policy::parse(&text, "init.toml", Registry::embedded())
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(p.name, "host \"one\"");
        assert!(p.allows(Proto::Tcp, 22).next().is_some());
        assert!(
            p.allows(Proto::Tcp, 23).next().is_none(),
            "telnet must be left out\n{text}"
        );
        assert!(p.allows(Proto::Tcp, 143).next().is_some());
        assert_eq!(
            p.allows(Proto::Tcp, 6379).next().unwrap().bind,
            crate::policy::Bind::Loopback
        );
        assert!(p.allows(Proto::Tcp, 8443).next().is_some());
        assert!(p.allows(Proto::Udp, 41234).next().is_none());
        assert!(text.contains("sshd (pid 10, sshd.service)"), "{text}");
        assert!(text.contains("1 UDP socket(s)"), "{text}");
        assert!(
            text.contains("# In the ephemeral range 32768-60999"),
            "{text}"
        );
    }
}
