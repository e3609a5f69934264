//! What the audit knows about common services: the ports they really use (narrower than
//! IANA's, which lists tcp and udp for nearly everything), whether they are cleartext or
//! legacy remote access, whether they normally stay on the host, and how to bind them to
//! loopback. Names are IANA's where IANA has one, so they agree with the registry.

use portolan_registry::{PortRange, Proto};

use Proto::{Tcp, Udp};

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

/// One service the audit knows.
#[derive(Debug, Clone, Copy)]
pub struct Known {
    /// IANA's name where there is one.
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

const fn k(
    name: &'static str,
    aliases: &'static [&'static str],
    ports: &'static [(Proto, u16, u16)],
    kind: Kind,
) -> Known {
    Known {
        name,
        aliases,
        ports,
        kind,
        starttls: false,
        instead: None,
        bind_hint: None,
        group: false,
    }
}

const fn tls(mut s: Known, instead: &'static str) -> Known {
    s.starttls = true;
    s.instead = Some(instead);
    s
}

const fn instead(mut s: Known, instead: &'static str) -> Known {
    s.instead = Some(instead);
    s
}

const fn bind(mut s: Known, hint: &'static str) -> Known {
    s.bind_hint = Some(hint);
    s
}

const fn group(mut s: Known) -> Known {
    s.group = true;
    s
}

use Kind::{Cleartext, LocalOnly, Normal, Obsolete, RemoteShell};

/// The table, in no particular order; lookups scan it.
pub static KNOWN: &[Known] = &[
    // Remote access.
    k("ssh", &["sftp", "openssh"], &[(Tcp, 22, 22)], Normal),
    instead(k("telnet", &[], &[(Tcp, 23, 23)], RemoteShell), "ssh"),
    instead(
        k("login", &["rlogin"], &[(Tcp, 513, 513)], RemoteShell),
        "ssh",
    ),
    instead(
        k("shell", &["rsh", "rcmd"], &[(Tcp, 514, 514)], RemoteShell),
        "ssh",
    ),
    instead(
        k("exec", &["rexec"], &[(Tcp, 512, 512)], RemoteShell),
        "ssh",
    ),
    instead(
        k("x11", &["x"], &[(Tcp, 6000, 6063)], RemoteShell),
        "X11 forwarding over ssh (`ssh -X`)",
    ),
    k(
        "ms-wbt-server",
        &["rdp"],
        &[(Tcp, 3389, 3389), (Udp, 3389, 3389)],
        Normal,
    ),
    instead(
        k("rfb", &["vnc"], &[(Tcp, 5900, 5900)], Cleartext),
        "VNC tunnelled over ssh",
    ),
    // File transfer.
    tls(
        k("ftp", &[], &[(Tcp, 21, 21)], Cleartext),
        "sftp (part of ssh) or FTPS",
    ),
    instead(
        k("ftp-data", &[], &[(Tcp, 20, 20)], Cleartext),
        "sftp (part of ssh)",
    ),
    k("ftps", &[], &[(Tcp, 990, 990)], Normal),
    instead(
        k("tftp", &[], &[(Udp, 69, 69)], Cleartext),
        "sftp, or HTTPS for boot images",
    ),
    instead(
        k("rsync", &[], &[(Tcp, 873, 873)], Cleartext),
        "rsync over ssh",
    ),
    k("nfs", &[], &[(Tcp, 2049, 2049), (Udp, 2049, 2049)], Normal),
    k(
        "sunrpc",
        &["rpcbind", "portmapper"],
        &[(Tcp, 111, 111), (Udp, 111, 111)],
        Normal,
    ),
    k(
        "microsoft-ds",
        &["smb", "cifs", "samba"],
        &[(Tcp, 445, 445)],
        Normal,
    ),
    instead(
        k("netbios-ns", &[], &[(Udp, 137, 137)], Cleartext),
        "SMB over 445/tcp only",
    ),
    instead(
        k("netbios-dgm", &[], &[(Udp, 138, 138)], Cleartext),
        "SMB over 445/tcp only",
    ),
    instead(
        k("netbios-ssn", &[], &[(Tcp, 139, 139)], Cleartext),
        "SMB over 445/tcp only",
    ),
    group(instead(
        k(
            "netbios",
            &[],
            &[(Udp, 137, 138), (Tcp, 139, 139)],
            Cleartext,
        ),
        "SMB over 445/tcp only",
    )),
    // Mail.
    k("smtp", &[], &[(Tcp, 25, 25)], Normal),
    k("submission", &[], &[(Tcp, 587, 587)], Normal),
    k("submissions", &["smtps"], &[(Tcp, 465, 465)], Normal),
    tls(
        k("pop3", &["pop"], &[(Tcp, 110, 110)], Cleartext),
        "pop3s (995/tcp)",
    ),
    k("pop3s", &[], &[(Tcp, 995, 995)], Normal),
    tls(
        k("imap", &["imap4"], &[(Tcp, 143, 143)], Cleartext),
        "imaps (993/tcp)",
    ),
    k("imaps", &[], &[(Tcp, 993, 993)], Normal),
    k("sieve", &["managesieve"], &[(Tcp, 4190, 4190)], Normal),
    // Web.
    k("http", &["www"], &[(Tcp, 80, 80)], Normal),
    k("https", &[], &[(Tcp, 443, 443)], Normal),
    k("http3", &["quic"], &[(Udp, 443, 443)], Normal),
    k("http-alt", &[], &[(Tcp, 8080, 8080)], Normal),
    // Names, time, directory, network management.
    k("domain", &["dns"], &[(Tcp, 53, 53), (Udp, 53, 53)], Normal),
    k(
        "domain-s",
        &["dot", "dns-over-tls"],
        &[(Tcp, 853, 853)],
        Normal,
    ),
    k("mdns", &[], &[(Udp, 5353, 5353)], Normal),
    k(
        "llmnr",
        &[],
        &[(Udp, 5355, 5355), (Tcp, 5355, 5355)],
        Normal,
    ),
    k("ntp", &[], &[(Udp, 123, 123)], Normal),
    k("bootps", &["dhcp", "dhcpd"], &[(Udp, 67, 67)], Normal),
    k("bootpc", &["dhcp-client"], &[(Udp, 68, 68)], Normal),
    k("dhcpv6-client", &[], &[(Udp, 546, 546)], Normal),
    k("dhcpv6-server", &[], &[(Udp, 547, 547)], Normal),
    tls(
        k("ldap", &[], &[(Tcp, 389, 389)], Cleartext),
        "ldaps (636/tcp)",
    ),
    k("ldaps", &[], &[(Tcp, 636, 636)], Normal),
    k(
        "kerberos",
        &["kerberos5", "krb5"],
        &[(Tcp, 88, 88), (Udp, 88, 88)],
        Normal,
    ),
    instead(
        k("snmp", &[], &[(Udp, 161, 161)], Cleartext),
        "SNMPv3 with authPriv",
    ),
    k("snmptrap", &[], &[(Udp, 162, 162)], Normal),
    k("syslog", &[], &[(Udp, 514, 514)], Normal),
    instead(
        k("finger", &[], &[(Tcp, 79, 79)], Cleartext),
        "nothing: finger leaks user names",
    ),
    k("ipp", &["cups"], &[(Tcp, 631, 631)], Normal),
    k(
        "openvpn",
        &[],
        &[(Udp, 1194, 1194), (Tcp, 1194, 1194)],
        Normal,
    ),
    k("wireguard", &[], &[(Udp, 51820, 51820)], Normal),
    k("isakmp", &["ike"], &[(Udp, 500, 500)], Normal),
    k("ipsec-nat-t", &[], &[(Udp, 4500, 4500)], Normal),
    // inetd small services.
    k("echo", &[], &[(Tcp, 7, 7), (Udp, 7, 7)], Obsolete),
    k("discard", &[], &[(Tcp, 9, 9), (Udp, 9, 9)], Obsolete),
    k("daytime", &[], &[(Tcp, 13, 13), (Udp, 13, 13)], Obsolete),
    k("qotd", &[], &[(Tcp, 17, 17), (Udp, 17, 17)], Obsolete),
    k("chargen", &[], &[(Tcp, 19, 19), (Udp, 19, 19)], Obsolete),
    k("time", &[], &[(Tcp, 37, 37), (Udp, 37, 37)], Obsolete),
    // Databases, caches and admin APIs that belong on loopback.
    bind(
        k(
            "postgresql",
            &["postgres", "pgsql"],
            &[(Tcp, 5432, 5432)],
            LocalOnly,
        ),
        "set `listen_addresses = 'localhost'` in postgresql.conf",
    ),
    bind(
        k("mysql", &["mariadb"], &[(Tcp, 3306, 3306)], LocalOnly),
        "set `bind-address = 127.0.0.1` in the [mysqld] section of my.cnf",
    ),
    bind(
        k("mysqlx", &[], &[(Tcp, 33060, 33060)], LocalOnly),
        "set `mysqlx-bind-address = 127.0.0.1` (or `mysqlx = OFF`) in my.cnf",
    ),
    bind(
        k("redis", &[], &[(Tcp, 6379, 6379)], LocalOnly),
        "set `bind 127.0.0.1 -::1` and `protected-mode yes` in redis.conf",
    ),
    bind(
        k(
            "memcache",
            &["memcached"],
            &[(Tcp, 11211, 11211), (Udp, 11211, 11211)],
            LocalOnly,
        ),
        "start memcached with `-l 127.0.0.1 -U 0` (/etc/memcached.conf)",
    ),
    bind(
        k("mongodb", &["mongo"], &[(Tcp, 27017, 27017)], LocalOnly),
        "set `net.bindIp: 127.0.0.1` in mongod.conf",
    ),
    bind(
        k(
            "elasticsearch",
            &["opensearch"],
            &[(Tcp, 9200, 9200), (Tcp, 9300, 9300)],
            LocalOnly,
        ),
        "set `network.host: 127.0.0.1` in elasticsearch.yml",
    ),
    bind(
        k("couchdb", &[], &[(Tcp, 5984, 5984)], LocalOnly),
        "set `bind_address = 127.0.0.1` in the [chttpd] section of local.ini",
    ),
    bind(
        k("cassandra", &[], &[(Tcp, 9042, 9042)], LocalOnly),
        "set `rpc_address: 127.0.0.1` in cassandra.yaml",
    ),
    bind(
        k("influxdb", &[], &[(Tcp, 8086, 8086)], LocalOnly),
        "set `http-bind-address = \"127.0.0.1:8086\"` in the InfluxDB config",
    ),
    bind(
        k("zookeeper", &[], &[(Tcp, 2181, 2181)], LocalOnly),
        "set `clientPortAddress=127.0.0.1` in zoo.cfg",
    ),
    bind(
        k("etcd-client", &["etcd"], &[(Tcp, 2379, 2379)], LocalOnly),
        "set `--listen-client-urls https://127.0.0.1:2379`",
    ),
    bind(
        k("epmd", &[], &[(Tcp, 4369, 4369)], LocalOnly),
        "set `ERL_EPMD_ADDRESS=127.0.0.1` in the service environment",
    ),
    bind(
        k("docker", &[], &[(Tcp, 2375, 2375)], LocalOnly),
        "remove `-H tcp://...` from the dockerd options and use the unix socket",
    ),
];

/// Services the registry has notes about and this table does not: built once from
/// `portolan_registry::NOTES` (cleartext ones judged as cleartext, local-only ones as
/// staying on the host).
fn extra() -> &'static [Known] {
    static EXTRA: std::sync::OnceLock<Vec<Known>> = std::sync::OnceLock::new();
    EXTRA.get_or_init(|| {
        portolan_registry::NOTES
            .iter()
            .filter(|n| {
                let mine = |name: &str| {
                    KNOWN
                        .iter()
                        .any(|k| k.name == name || k.aliases.contains(&name))
                };
                !mine(n.name) && !n.also.iter().any(|a| mine(a))
            })
            .filter(|n| {
                // Leave out ports this table already judges (9200 is elasticsearch here).
                !n.ports.iter().any(|&p| {
                    n.protos
                        .iter()
                        .any(|&proto| KNOWN.iter().any(|k| k.covers(p, proto)))
                })
            })
            .map(|n| {
                let ports: Vec<(Proto, u16, u16)> = n
                    .protos
                    .iter()
                    .flat_map(|&proto| n.ports.iter().map(move |&p| (proto, p, p)))
                    .collect();
                let kind = if n.cleartext {
                    Kind::Cleartext
                } else if n.local_only {
                    Kind::LocalOnly
                } else {
                    Kind::Normal
                };
                Known {
                    name: n.name,
                    aliases: n.also,
                    // Built once per process and kept for its lifetime.
                    ports: Box::leak(ports.into_boxed_slice()),
                    kind,
                    starttls: false,
                    instead: n.secure_alternative,
                    bind_hint: None,
                    group: false,
                }
            })
            .collect()
    })
}

fn all() -> impl Iterator<Item = &'static Known> {
    KNOWN.iter().chain(extra().iter())
}

/// The entry for a name or alias (case-insensitive).
pub fn by_name(name: &str) -> Option<&'static Known> {
    let name = name.to_ascii_lowercase();
    all().find(|s| s.name == name || s.aliases.iter().any(|a| a.eq_ignore_ascii_case(&name)))
}

/// The (non-group) entry that uses a port.
pub fn by_port(port: u16, proto: Proto) -> Option<&'static Known> {
    all().find(|s| !s.group && s.covers(port, proto))
}

/// Every entry, the audit's own first.
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
        for s in KNOWN {
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
                let owners: Vec<_> = KNOWN
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
    fn registry_notes_fill_the_gaps() {
        // Not in this table, but in the registry's notes.
        let mssql = by_port(1433, Proto::Tcp).unwrap();
        assert_eq!(mssql.name, "ms-sql-s");
        assert_eq!(mssql.kind, Kind::LocalOnly);
        let nntp = by_name("nntp").unwrap();
        assert_eq!(nntp.kind, Kind::Cleartext);
        // This table wins where both speak.
        assert_eq!(by_port(9200, Proto::Tcp).unwrap().name, "elasticsearch");
        assert_eq!(by_name("telnet").unwrap().kind, Kind::RemoteShell);
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
