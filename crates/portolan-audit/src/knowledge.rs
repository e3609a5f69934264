//! How the audit judges common services. The facts (the ports they really use, whether
//! they are cleartext or legacy remote access, whether they normally stay on the host, how
//! to bind them to loopback) are the registry's notes (`portolan_registry::NOTES`); this
//! module adds only the audit's judgement (`Kind`), a few remediation words and the
//! policy's group names.

use portolan_model::Severity;
use portolan_registry::{Notes, PortRange, Proto};

/// How the audit judges a service that is reachable from the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Nothing special.
    Normal,
    /// Remote login or display without encryption (telnet, rsh, rlogin, rexec, X11):
    /// passwords and keystrokes cross the network in clear.
    RemoteShell,
    /// A cleartext protocol (ftp, pop3, imap, snmp v1/v2c, netbios...).
    Cleartext,
    /// An obsolete inetd "small service" (echo, chargen...), used for amplification.
    Obsolete,
    /// A database, cache or admin API that normally listens on loopback only.
    LocalOnly,
}

/// The risk class of a service: what whoever reaches it gets. It sets the base severity
/// of every finding about the service, under the baseline, a policy or a profile alike
/// (see `docs/rules.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Risk {
    /// Anything else: a service offered on purpose (http, smtp, ssh, SMB, NFS), an
    /// unknown port or owner.
    Other,
    /// An obsolete inetd small service (echo, chargen): a reflector for attacks on others.
    Obsolete,
    /// Cleartext that can upgrade to TLS (ftp, pop3, imap, ldap).
    CleartextStarttls,
    /// Cleartext logins or data with no upgrade (snmp v1/v2c, tftp, rsync, vnc, netbios).
    Cleartext,
    /// Data that normally stays on the host: databases, key-value stores, caches, brokers,
    /// cluster stores and admin APIs.
    LocalData,
    /// Remote login or display in cleartext (telnet, rsh, rlogin, rexec, X11).
    RemoteShell,
    /// An API that makes whoever reaches it root on the host (Docker's, without TLS).
    RootApi,
}

impl Risk {
    /// The severity of a finding about a service of this class on all interfaces, before
    /// exposure and reach move it.
    pub fn base(self) -> Severity {
        match self {
            Risk::RemoteShell | Risk::RootApi => Severity::Critical,
            Risk::LocalData | Risk::Cleartext => Severity::High,
            Risk::CleartextStarttls | Risk::Obsolete | Risk::Other => Severity::Medium,
        }
    }

    /// True when a password is what protects it, so detection's seeing it serve an
    /// anonymous client (SNMP answering `public`, redis without a password) makes it worse.
    pub fn guarded_by_credentials(self) -> bool {
        !matches!(self, Risk::Other | Risk::Obsolete)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Other => "other",
            Risk::Obsolete => "obsolete",
            Risk::CleartextStarttls => "cleartext-starttls",
            Risk::Cleartext => "cleartext",
            Risk::LocalData => "local-data",
            Risk::RemoteShell => "remote-shell",
            Risk::RootApi => "root-api",
        }
    }
}

/// One service the audit knows.
#[derive(Debug, Clone, Copy)]
pub struct Known {
    /// IANA's name, or the common one where IANA's belongs to another service.
    pub name: &'static str,
    /// Other names a policy may use (`dns`, `rdp`, `vnc`).
    pub aliases: &'static [&'static str],
    /// The ports it really uses.
    pub ports: &'static [(Proto, u16, u16)],
    pub kind: Kind,
    /// True when the protocol can upgrade to TLS (STARTTLS, AUTH TLS), so a detection that
    /// saw the upgrade offered clears a cleartext finding.
    pub starttls: bool,
    /// The encrypted replacement, for remediation.
    pub instead: Option<&'static str>,
    /// How to make it listen on loopback only.
    pub bind_hint: Option<&'static str>,
    /// A group name (such as `netbios`) that stands for several services; never used to
    /// name a port.
    pub group: bool,
}

use Kind::{Cleartext, LocalOnly, Normal, Obsolete, RemoteShell};

/// The audit's judgement where it differs from what the facts alone suggest.
const JUDGED: &[(&str, Kind)] = &[
    // Cleartext, but expected where they listen: mail between servers, web pages
    // (redirecting to https), traps and logs on a management network.
    ("smtp", Normal),
    ("http", Normal),
    ("http-alt", Normal),
    ("snmptrap", Normal),
    ("syslog", Normal),
    // Best kept local, but servers that offer them to the network do so on purpose.
    ("ms-wbt-server", Normal),
    ("nfs", Normal),
    ("sunrpc", Normal),
    ("microsoft-ds", Normal),
    ("mdns", Normal),
    ("ipp", Normal),
    // Cleartext too, but the fix is to keep them on the host.
    ("redis", LocalOnly),
    ("memcache", LocalOnly),
    ("docker", LocalOnly),
];

/// Remediation where the registry names no replacement.
const INSTEAD: &[(&str, &str)] = &[("finger", "nothing: finger leaks user names")];

/// Names that stand for several services in a policy; never used to name a port.
const GROUPS: &[(&str, &[&str], &str)] = &[(
    "netbios",
    &["netbios-ns", "netbios-dgm", "netbios-ssn"],
    "SMB over 445/tcp only",
)];

fn leak<T>(v: Vec<T>) -> &'static [T] {
    // Built once per process and kept for its lifetime.
    Box::leak(v.into_boxed_slice())
}

/// How the audit judges a service, from the registry's facts and `JUDGED`.
fn judge(n: &Notes) -> Kind {
    if let Some(&(_, kind)) = JUDGED.iter().find(|(name, _)| *name == n.name) {
        return kind;
    }
    if n.legacy_remote {
        RemoteShell
    } else if n.inetd_small {
        Obsolete
    } else if n.cleartext {
        Cleartext
    } else if n.local_only {
        LocalOnly
    } else {
        Normal
    }
}

fn known(n: &'static Notes) -> Known {
    let name = n.common.unwrap_or(n.name);
    let mut aliases: Vec<&'static str> = n.carries.to_vec();
    // IANA's name for the port (wap-wsp) stays IANA's: a policy naming it gets IANA's ports.
    aliases.extend(n.also.iter().copied().filter(|a| *a != name));
    let ports = n
        .used_ranges()
        .into_iter()
        .map(|(p, r)| (p, r.first, r.last))
        .collect();
    Known {
        name,
        aliases: leak(aliases),
        ports: leak(ports),
        kind: judge(n),
        starttls: n.starttls,
        instead: INSTEAD
            .iter()
            .find(|(s, _)| *s == n.name)
            .map(|&(_, i)| i)
            .or(n.secure_alternative),
        bind_hint: n.bind_hint,
        group: false,
    }
}

/// The table: one entry for each service of the registry's notes, then the groups.
fn table() -> &'static [Known] {
    static TABLE: std::sync::OnceLock<Vec<Known>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut out: Vec<Known> = portolan_registry::NOTES.iter().map(known).collect();
        for &(name, members, instead) in GROUPS {
            let mut ports: Vec<(Proto, u16, u16)> = Vec::new();
            for m in members {
                let Some(k) = out.iter().find(|k| k.name == *m) else {
                    continue;
                };
                for &(p, a, b) in k.ports {
                    match ports.last_mut() {
                        Some(last) if last.0 == p && last.2.checked_add(1) == Some(a) => {
                            last.2 = b;
                        }
                        _ => ports.push((p, a, b)),
                    }
                }
            }
            out.push(Known {
                name,
                aliases: &[],
                ports: leak(ports),
                kind: Cleartext,
                starttls: false,
                instead: Some(instead),
                bind_hint: None,
                group: true,
            });
        }
        out
    })
}

fn all() -> impl Iterator<Item = &'static Known> {
    table().iter()
}

/// The entry for a name or alias (case-insensitive).
pub fn by_name(name: &str) -> Option<&'static Known> {
    let name = name.to_ascii_lowercase();
    all().find(|s| s.name == name || s.aliases.iter().any(|a| a.eq_ignore_ascii_case(&name)))
}

/// The (non-group) entry that uses a port.
pub fn by_port(port: u16, proto: Proto) -> Option<&'static Known> {
    // TCP and UDP through an index of every port (one lookup per listener), other
    // protocols through the table.
    let slot = match proto {
        Proto::Tcp => 0,
        Proto::Udp => 1,
        _ => return all().find(|s| !s.group && s.covers(port, proto)),
    };
    static INDEX: std::sync::OnceLock<Vec<u16>> = std::sync::OnceLock::new();
    let index = INDEX.get_or_init(|| {
        // 0: none; else the table's index plus one. The first entry that covers a port
        // wins, as in a scan of the table.
        let mut index = vec![0u16; 2 * 65536];
        for (i, k) in table().iter().enumerate().rev().filter(|(_, k)| !k.group) {
            for &(p, a, b) in k.ports {
                let slot = match p {
                    Proto::Tcp => 0,
                    Proto::Udp => 1,
                    _ => continue,
                };
                for port in a..=b {
                    index[slot * 65536 + port as usize] = i as u16 + 1;
                }
            }
        }
        index
    });
    match index[slot * 65536 + port as usize] {
        0 => None,
        i => table().get(i as usize - 1),
    }
}

/// Every entry, in the registry's order, then the groups.
pub fn entries() -> impl Iterator<Item = &'static Known> {
    all()
}

impl Known {
    /// True when the service uses `port` over `proto`.
    pub fn covers(&self, port: u16, proto: Proto) -> bool {
        self.ports
            .iter()
            .any(|&(p, a, b)| p == proto && a <= port && port <= b)
    }

    /// The ports as ranges.
    pub fn ranges(&self) -> Vec<(Proto, PortRange)> {
        self.ports
            .iter()
            .map(|&(p, a, b)| (p, PortRange { first: a, last: b }))
            .collect()
    }

    /// Every name and alias.
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.name).chain(self.aliases.iter().copied())
    }

    /// The service's risk class, from its judgement.
    pub fn risk(&self) -> Risk {
        match self.kind {
            Kind::RemoteShell => Risk::RemoteShell,
            Kind::LocalOnly if self.name == "docker" => Risk::RootApi,
            Kind::LocalOnly => Risk::LocalData,
            Kind::Cleartext if self.starttls => Risk::CleartextStarttls,
            Kind::Cleartext => Risk::Cleartext,
            Kind::Obsolete => Risk::Obsolete,
            Kind::Normal => Risk::Other,
        }
    }

    /// True for services the baseline reports when they are reachable from the network.
    pub fn is_insecure(&self) -> bool {
        matches!(
            self.kind,
            Kind::RemoteShell | Kind::Cleartext | Kind::Obsolete
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for s in table() {
            for n in s.names() {
                assert!(seen.insert(n), "{n} appears twice");
                assert_eq!(n, n.to_ascii_lowercase());
            }
        }
    }

    #[test]
    fn no_port_has_two_owners() {
        for proto in [Proto::Tcp, Proto::Udp] {
            for port in 0..=u16::MAX {
                let owners: Vec<_> = table()
                    .iter()
                    .filter(|s| !s.group)
                    .filter(|s| {
                        s.ports
                            .iter()
                            .any(|&(p, a, b)| p == proto && a <= port && port <= b)
                    })
                    .map(|s| s.name)
                    .collect();
                assert!(owners.len() <= 1, "{port}/{proto}: {owners:?}");
            }
        }
    }

    #[test]
    fn judged_from_registry_notes() {
        let mssql = by_port(1433, Proto::Tcp).unwrap();
        assert_eq!(mssql.name, "ms-sql-s");
        assert_eq!(mssql.kind, Kind::LocalOnly);
        let nntp = by_name("nntp").unwrap();
        assert_eq!(nntp.kind, Kind::Cleartext);
        // The name people know, where IANA's is another's.
        assert_eq!(by_port(9200, Proto::Tcp).unwrap().name, "elasticsearch");
        assert_eq!(by_name("telnet").unwrap().kind, Kind::RemoteShell);
    }

    #[test]
    fn risk_classes() {
        let risk = |n: &str| by_name(n).unwrap().risk();
        for n in ["telnet", "rsh", "rlogin", "rexec", "x11"] {
            assert_eq!(risk(n), Risk::RemoteShell, "{n}");
        }
        assert_eq!(risk("docker"), Risk::RootApi);
        for n in [
            "redis",
            "memcached",
            "mysql",
            "postgresql",
            "mongodb",
            "etcd",
            "elasticsearch",
            "epmd",
            "ssdp",
            "docker-s",
        ] {
            assert_eq!(risk(n), Risk::LocalData, "{n}");
        }
        for n in ["snmp", "tftp", "rsync", "vnc", "amqp", "mqtt"] {
            assert_eq!(risk(n), Risk::Cleartext, "{n}");
        }
        for n in ["ftp", "pop3", "imap", "ldap"] {
            assert_eq!(risk(n), Risk::CleartextStarttls, "{n}");
        }
        assert_eq!(risk("chargen"), Risk::Obsolete);
        for n in ["http", "smtp", "ssh", "https", "domain"] {
            assert_eq!(risk(n), Risk::Other, "{n}");
        }
        assert_eq!(Risk::RemoteShell.base(), Severity::Critical);
        assert_eq!(Risk::LocalData.base(), Severity::High);
        assert_eq!(Risk::Other.base(), Severity::Medium);
    }

    #[test]
    fn the_port_index_agrees_with_the_table() {
        for proto in [Proto::Tcp, Proto::Udp] {
            for port in 0..=u16::MAX {
                let scan = all().find(|s| !s.group && s.covers(port, proto));
                assert_eq!(
                    by_port(port, proto).map(|k| k.name),
                    scan.map(|k| k.name),
                    "{port}/{proto}"
                );
            }
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(by_name("DNS").unwrap().name, "domain");
        assert_eq!(by_port(993, Proto::Tcp).unwrap().name, "imaps");
        assert_eq!(by_port(138, Proto::Udp).unwrap().name, "netbios-dgm");
        assert!(by_port(993, Proto::Udp).is_none());
        assert_eq!(by_name("netbios").unwrap().ranges().len(), 2);
    }
}
