//! What an administrator should know about common services: whether they speak cleartext,
//! what replaces them, whether they should ever be reachable from outside the host, the
//! risk of leaving them open, the ports they really use and how to bind them to loopback.
//! Written for portolan; `explain` shows it and the audit judges by it (the audit keeps
//! only its judgement: rules, severities, remediation).

use crate::{PortRange, Proto};

/// Knowledge about one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notes {
    /// The IANA service name.
    pub name: &'static str,
    /// Other names people use for it (`rlogin`, `elasticsearch`).
    pub also: &'static [&'static str],
    /// The ports it normally listens on.
    pub ports: &'static [u16],
    /// The protocols it normally uses.
    pub protos: &'static [Proto],
    /// Logins or private data cross the network unencrypted: the protocol has no
    /// encryption, or is normally run without it. (DNS and NTP, public by nature, are not
    /// counted.)
    pub cleartext: bool,
    /// The encrypted service to use instead.
    pub secure_alternative: Option<&'static str>,
    /// A server normally keeps it to localhost or a private network: it should not be
    /// reachable from the internet.
    pub local_only: bool,
    /// What can go wrong when it is exposed.
    pub risk: &'static str,
    /// Words `search` should find it by (`mail` for pop3).
    pub keywords: &'static [&'static str],
    /// The name people know it by when IANA gives its port another name (`elasticsearch`
    /// at wap-wsp's 9200).
    pub common: Option<&'static str>,
    /// Protocols it carries under their own names (`sftp` inside ssh; IANA's `sftp` at 115
    /// is another, long dead protocol).
    pub carries: &'static [&'static str],
    /// The ports it really uses, where they differ from `ports` x `protos` (which follow
    /// IANA): X11 uses 6000-6063, https is tcp only (http3 is the udp side). Empty: the same.
    pub used: &'static [(Proto, u16, u16)],
    /// Remote login or display without encryption (telnet, rsh, rlogin, rexec, X11):
    /// passwords and keystrokes cross the network in clear.
    pub legacy_remote: bool,
    /// An obsolete inetd "small service" (echo, chargen...), useful mostly for reflection
    /// and amplification.
    pub inetd_small: bool,
    /// The protocol can upgrade to TLS on the same connection (STARTTLS, AUTH TLS).
    pub starttls: bool,
    /// How to make the server listen on loopback only.
    pub bind_hint: Option<&'static str>,
    /// IANA has no entry under this name (the service is well known all the same).
    pub unassigned: bool,
}

const T: &[Proto] = &[Proto::Tcp];
const U: &[Proto] = &[Proto::Udp];
const TU: &[Proto] = &[Proto::Tcp, Proto::Udp];
const UT: &[Proto] = &[Proto::Udp, Proto::Tcp];
use Proto::{Tcp, Udp};

const fn n(name: &'static str, ports: &'static [u16], protos: &'static [Proto]) -> Notes {
    Notes {
        name,
        also: &[],
        ports,
        protos,
        cleartext: false,
        secure_alternative: None,
        local_only: false,
        risk: "",
        keywords: &[],
        common: None,
        carries: &[],
        used: &[],
        legacy_remote: false,
        inetd_small: false,
        starttls: false,
        bind_hint: None,
        unassigned: false,
    }
}

impl Notes {
    const fn also(mut self, also: &'static [&'static str]) -> Self {
        self.also = also;
        self
    }
    const fn clear(mut self, alternative: Option<&'static str>) -> Self {
        self.cleartext = true;
        self.secure_alternative = alternative;
        self
    }
    const fn local(mut self) -> Self {
        self.local_only = true;
        self
    }
    const fn risk(mut self, risk: &'static str) -> Self {
        self.risk = risk;
        self
    }
    const fn kw(mut self, keywords: &'static [&'static str]) -> Self {
        self.keywords = keywords;
        self
    }
    const fn common(mut self, name: &'static str) -> Self {
        self.common = Some(name);
        self
    }
    const fn carries(mut self, names: &'static [&'static str]) -> Self {
        self.carries = names;
        self
    }
    const fn used(mut self, used: &'static [(Proto, u16, u16)]) -> Self {
        self.used = used;
        self
    }
    const fn remote(mut self) -> Self {
        self.legacy_remote = true;
        self
    }
    const fn inetd(mut self) -> Self {
        self.inetd_small = true;
        self
    }
    const fn starttls(mut self) -> Self {
        self.starttls = true;
        self
    }
    const fn bind(mut self, hint: &'static str) -> Self {
        self.bind_hint = Some(hint);
        self
    }
    const fn unassigned(mut self) -> Self {
        self.unassigned = true;
        self
    }

    /// The ports it really uses, as ranges: `used`, else `ports` x `protos`.
    pub fn used_ranges(&self) -> Vec<(Proto, PortRange)> {
        if !self.used.is_empty() {
            return self
                .used
                .iter()
                .map(|&(p, first, last)| (p, PortRange { first, last }))
                .collect();
        }
        self.protos
            .iter()
            .flat_map(|&p| {
                self.ports
                    .iter()
                    .map(move |&port| (p, PortRange::single(port)))
            })
            .collect()
    }

    /// True when the service really uses `port` over `proto` (see `used`).
    pub fn uses(&self, port: u16, proto: Proto) -> bool {
        if self.used.is_empty() {
            return self.listens_on(port, proto);
        }
        self.used
            .iter()
            .any(|&(p, a, b)| p == proto && a <= port && port <= b)
    }

    /// True when the service normally uses `port` over `proto`.
    pub fn listens_on(&self, port: u16, proto: Proto) -> bool {
        self.ports.contains(&port) && self.protos.contains(&proto)
    }

    /// True when `name` is the service's name or one of its other names (any case).
    pub fn answers_to(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
            || self.also.iter().any(|a| a.eq_ignore_ascii_case(name))
    }
}

/// Every service portolan has notes about.
pub static NOTES: &[Notes] = &[
    // Remote shells and file transfer.
    n("telnet", &[23], T)
        .clear(Some("ssh"))
        .remote()
        .risk("passwords and the whole session cross the network in cleartext; a favourite target of botnets")
        .kw(&["remote", "login", "shell", "terminal"]),
    n("ftp", &[21], T)
        .clear(Some("sftp (over ssh) or ftps"))
        .starttls()
        .risk("passwords and files cross the network in cleartext; anonymous write access is often left on")
        .kw(&["file", "transfer"]),
    n("ftp-data", &[20], T)
        .clear(Some("sftp (over ssh) or ftps"))
        .risk("FTP's data channel: files cross the network in cleartext")
        .kw(&["file", "transfer"]),
    n("tftp", &[69], U)
        .clear(Some("sftp, or https for boot images"))
        .local()
        .risk("no authentication at all: anyone who can reach it can read (often write) files, such as device configurations")
        .kw(&["file", "transfer", "boot", "pxe"]),
    n("shell", &[514], T)
        .also(&["rsh", "rcmd"])
        .clear(Some("ssh"))
        .remote()
        .risk("rsh: trusts the client's address and user name (.rhosts), no encryption; trivially abused")
        .kw(&["remote", "shell", "rsh"]),
    n("login", &[513], T)
        .also(&["rlogin"])
        .clear(Some("ssh"))
        .remote()
        .risk("rlogin: trusts the client's address (.rhosts), sends everything in cleartext")
        .kw(&["remote", "login", "rlogin"]),
    n("exec", &[512], T)
        .also(&["rexec"])
        .clear(Some("ssh"))
        .remote()
        .risk("rexec: runs commands with a password sent in cleartext")
        .kw(&["remote", "execution", "rexec"]),
    n("ssh", &[22], T)
        .also(&["openssh"])
        .carries(&["sftp"])
        .risk("encrypted, but exposed logins attract password guessing: use keys, disable root and password logins, rate-limit")
        .kw(&["remote", "login", "shell", "secure", "sftp", "scp"]),
    n("telnets", &[992], T).kw(&["remote", "login", "tls"]),
    n("ftps", &[990], T).kw(&["file", "transfer", "tls"]),
    n("rsync", &[873], T)
        .clear(Some("rsync over ssh"))
        .local()
        .risk("the rsync daemon sends data in cleartext and modules are often readable (sometimes writable) without a password")
        .kw(&["file", "sync", "backup"]),
    n("nfs", &[2049], TU)
        .local()
        .risk("file shares trust client addresses and user ids (unless Kerberos is used); never expose to the internet")
        .kw(&["file", "share", "network file system"]),
    n("sunrpc", &[111], TU)
        .also(&["rpcbind", "portmapper"])
        .local()
        .risk("lists the RPC services of the host to anyone; abused for UDP amplification")
        .kw(&["rpc", "portmap", "nfs"]),
    // Mail.
    n("smtp", &[25], T)
        .clear(Some("smtp with STARTTLS (and submissions, 465, for clients)"))
        .risk("mail relays in cleartext unless STARTTLS is offered and used; an open relay sends spam for others")
        .kw(&["mail", "email", "relay", "mta"]),
    n("submission", &[587], T)
        .risk("mail submission: require STARTTLS and authentication")
        .kw(&["mail", "email", "submit"]),
    n("submissions", &[465], T).also(&["smtps"]).kw(&["mail", "email", "submit", "tls"]),
    n("pop3", &[110], T)
        .also(&["pop"])
        .clear(Some("pop3s (995/tcp)"))
        .starttls()
        .risk("mail passwords and messages cross the network in cleartext")
        .kw(&["mail", "email", "mailbox", "post office"]),
    n("pop3s", &[995], T).kw(&["mail", "email", "mailbox", "tls"]),
    n("imap", &[143], T)
        .also(&["imap4"])
        .clear(Some("imaps (993/tcp)"))
        .starttls()
        .risk("mail passwords and messages cross the network in cleartext (unless STARTTLS is enforced)")
        .kw(&["mail", "email", "mailbox"]),
    n("imaps", &[993], T).kw(&["mail", "email", "mailbox", "tls"]),
    n("sieve", &[4190], T).also(&["managesieve"]).kw(&["filter"]),
    n("nntp", &[119], T)
        .clear(Some("nntps"))
        .risk("news reading and posting, passwords included, in cleartext")
        .kw(&["news", "usenet"]),
    n("nntps", &[563], T).kw(&["news", "usenet", "tls"]),
    // Web.
    n("http", &[80], T)
        .also(&["www", "www-http"])
        .clear(Some("https"))
        .risk("pages, cookies and form data (passwords) in cleartext; keep port 80 only to redirect to https")
        .kw(&["web", "www"]),
    n("https", &[443], TU)
        .used(&[(Tcp, 443, 443)])
        .kw(&["web", "www", "tls", "quic"]),
    n("http3", &[], U)
        .also(&["quic"])
        .used(&[(Udp, 443, 443)])
        .unassigned()
        .kw(&["web", "tls", "quic"]),
    n("http-alt", &[8080, 8008], T)
        .used(&[(Tcp, 8080, 8080)])
        .clear(Some("https"))
        .risk("often a proxy, an application server or an admin console, in cleartext")
        .kw(&["web", "proxy"]),
    // Naming, time, management.
    n("domain", &[53], TU)
        .also(&["dns"])
        .risk("an open resolver answers anyone and is abused for amplification attacks; serve only your zones or your clients")
        .kw(&["dns", "name"]),
    n("domain-s", &[853], TU)
        .also(&["dot", "dns-over-tls"])
        .used(&[(Tcp, 853, 853)])
        .kw(&["dns", "tls"]),
    n("llmnr", &[5355], UT).kw(&["dns", "name", "windows"]),
    n("bootps", &[67], U)
        .also(&["dhcp", "dhcpd"])
        .kw(&["dhcp", "address"]),
    n("bootpc", &[68], U)
        .also(&["dhcp-client"])
        .kw(&["dhcp", "address"]),
    n("dhcpv6-client", &[546], U).kw(&["dhcp", "address"]),
    n("dhcpv6-server", &[547], U).kw(&["dhcp", "address"]),
    n("ntp", &[123], U)
        .risk("an NTP server that answers monitoring queries (monlist) is abused for amplification")
        .kw(&["time", "clock"]),
    n("snmp", &[161], U)
        .clear(Some("snmp v3 with authPriv"))
        .local()
        .risk("SNMP v1/v2c: the community string is a cleartext password, often 'public'; leaks the whole device configuration")
        .kw(&["monitoring", "management"]),
    n("snmptrap", &[162], U)
        .clear(Some("snmp v3 with authPriv"))
        .local()
        .risk("SNMP v1/v2c traps in cleartext")
        .kw(&["monitoring", "management"]),
    n("finger", &[79], T)
        .clear(None)
        .risk("tells anyone who is logged in and their user names")
        .kw(&["user", "information"]),
    n("ldap", &[389], TU)
        .clear(Some("ldaps (636/tcp) or ldap with StartTLS"))
        .starttls()
        .used(&[(Tcp, 389, 389)])
        .local()
        .risk("directory data and simple-bind passwords in cleartext; anonymous binds leak the directory")
        .kw(&["directory", "authentication"]),
    n("ldaps", &[636], T).kw(&["directory", "authentication", "tls"]),
    n("kerberos", &[88], TU).also(&["kerberos5", "krb5"]).kw(&["authentication", "kdc"]),
    n("syslog", &[514], U)
        .clear(Some("syslog over TLS (6514)"))
        .local()
        .risk("log messages in cleartext and unauthenticated: anyone can forge log lines")
        .kw(&["log", "logging"]),
    // Windows and file sharing.
    n("netbios-ns", &[137], U)
        .clear(Some("SMB over 445/tcp only"))
        .local()
        .risk("NetBIOS name service: leaks host and user names; spoofed answers steal credentials")
        .kw(&["windows", "smb", "samba", "name"]),
    n("netbios-dgm", &[138], U)
        .clear(Some("SMB over 445/tcp only"))
        .local()
        .risk("NetBIOS datagrams: legacy Windows browsing in cleartext")
        .kw(&["windows", "smb", "samba"]),
    n("netbios-ssn", &[139], T)
        .clear(Some("SMB 3 with encryption over 445, inside a VPN"))
        .local()
        .risk("SMB over NetBIOS: file shares, often old SMB versions without encryption")
        .kw(&["windows", "smb", "samba", "file", "share"]),
    n("microsoft-ds", &[445], T)
        .also(&["smb", "cifs", "samba"])
        .local()
        .risk("SMB file sharing: the target of worms (WannaCry); never expose to the internet")
        .kw(&["windows", "smb", "samba", "file", "share"]),
    n("epmap", &[135], TU)
        .also(&["msrpc"])
        .local()
        .risk("Microsoft RPC endpoint mapper: lists RPC services, a long history of remote exploits")
        .kw(&["windows", "rpc"]),
    n("ms-wbt-server", &[3389], T)
        .also(&["rdp"])
        .used(&[(Tcp, 3389, 3389), (Udp, 3389, 3389)])
        .local()
        .risk("Remote Desktop: password guessing and remote exploits; reach it through a VPN or gateway")
        .kw(&["windows", "remote", "desktop", "rdp"]),
    // Remote desktops.
    n("rfb", &[5900], T)
        .also(&["vnc"])
        .clear(Some("vnc tunnelled over ssh"))
        .local()
        .risk("VNC: weak passwords (8 characters) and often no encryption")
        .kw(&["remote", "desktop", "vnc"]),
    n("x11", &[6000], T)
        .also(&["x"])
        .clear(Some("X11 forwarding over ssh (`ssh -X`)"))
        .remote()
        .used(&[(Tcp, 6000, 6063)])
        .local()
        .risk("an open X server lets anyone read keystrokes and screens")
        .kw(&["display", "x window"]),
    n("xdmcp", &[177], U)
        .clear(Some("ssh -X forwarding"))
        .local()
        .risk("X display manager logins in cleartext")
        .kw(&["display", "login"]),
    // Databases and caches.
    n("postgresql", &[5432], T)
        .also(&["postgres", "pgsql"])
        .local()
        .bind("set `listen_addresses = 'localhost'` in postgresql.conf")
        .risk("a database: keep it on localhost or a private network; exposed servers face password guessing")
        .kw(&["database", "sql"]),
    n("mysql", &[3306], T)
        .also(&["mariadb"])
        .local()
        .bind("set `bind-address = 127.0.0.1` in the [mysqld] section of my.cnf")
        .risk("a database: keep it on localhost or a private network; exposed servers face password guessing")
        .kw(&["database", "sql"]),
    n("ms-sql-s", &[1433], T)
        .also(&["mssql", "sqlserver"])
        .local()
        .risk("a database: keep it on a private network; exposed servers face password guessing")
        .kw(&["database", "sql"]),
    n("ncube-lm", &[1521], T)
        .also(&["oracle"])
        .local()
        .risk("Oracle's database listener: keep it on a private network")
        .kw(&["database", "sql", "oracle"]),
    n("mysqlx", &[33060], T)
        .local()
        .bind("set `mysqlx-bind-address = 127.0.0.1` (or `mysqlx = OFF`) in my.cnf")
        .risk("MySQL's X protocol: a second way into the database; keep it on localhost")
        .kw(&["database", "sql"]),
    n("redis", &[6379], T)
        .clear(Some("redis with TLS"))
        .local()
        .bind("set `bind 127.0.0.1 -::1` and `protected-mode yes` in redis.conf")
        .risk("no password by default and cleartext: an exposed instance gives away its data and often the host")
        .kw(&["database", "cache", "key-value"]),
    n("memcache", &[11211], TU)
        .also(&["memcached"])
        .clear(None)
        .local()
        .bind("start memcached with `-l 127.0.0.1 -U 0` (/etc/memcached.conf)")
        .risk("no authentication: exposes cached data, and UDP is abused for huge amplification attacks")
        .kw(&["cache", "key-value"]),
    n("mongodb", &[27017], T)
        .also(&["mongo"])
        .local()
        .bind("set `net.bindIp: 127.0.0.1` in mongod.conf")
        .risk("a database often left without authentication: exposed instances are wiped and ransomed")
        .kw(&["database", "document"]),
    n("couchdb", &[5984], T)
        .local()
        .bind("set `bind_address = 127.0.0.1` in the [chttpd] section of local.ini")
        .risk("a database with an HTTP API: keep it on localhost or a private network")
        .kw(&["database", "document"]),
    n("wap-wsp", &[9200], T)
        .also(&["elasticsearch", "opensearch"])
        .common("elasticsearch")
        .used(&[(Tcp, 9200, 9200), (Tcp, 9300, 9300)])
        .local()
        .bind("set `network.host: 127.0.0.1` in elasticsearch.yml")
        .risk("Elasticsearch's HTTP API (IANA lists 9200 as wap-wsp): no authentication on old setups, exposed indexes leak data")
        .kw(&["database", "search", "elasticsearch"]),
    n("etcd-client", &[2379], T)
        .also(&["etcd"])
        .local()
        .bind("set `--listen-client-urls https://127.0.0.1:2379`")
        .risk("etcd holds a cluster's secrets: client certificates only, never exposed")
        .kw(&["database", "kubernetes", "key-value"]),
    n("cassandra", &[9042], T)
        .unassigned()
        .local()
        .bind("set `rpc_address: 127.0.0.1` in cassandra.yaml")
        .risk("a database: keep it on localhost or a private network")
        .kw(&["database"]),
    n("d-s-n", &[8086], T)
        .also(&["influxdb"])
        .common("influxdb")
        .local()
        .bind("set `http-bind-address = \"127.0.0.1:8086\"` in the InfluxDB config")
        .risk("InfluxDB's HTTP API (IANA lists 8086 as d-s-n): a database, keep it on localhost or a private network")
        .kw(&["database", "time series"]),
    n("eforward", &[2181], T)
        .also(&["zookeeper"])
        .common("zookeeper")
        .local()
        .bind("set `clientPortAddress=127.0.0.1` in zoo.cfg")
        .risk("ZooKeeper's client port (IANA lists 2181 as eforward): cluster state and often secrets, no authentication by default")
        .kw(&["database", "coordination"]),
    n("epmd", &[4369], T)
        .local()
        .bind("set `ERL_EPMD_ADDRESS=127.0.0.1` in the service environment")
        .risk("Erlang's port mapper: lists the Erlang nodes of the host (RabbitMQ, CouchDB) for anyone to connect to")
        .kw(&["erlang", "rabbitmq"]),
    // Containers, queues, printing.
    n("docker", &[2375], T)
        .clear(Some("docker-s (2376) with client certificates, or the local socket"))
        .local()
        .bind("remove `-H tcp://...` from the dockerd options and use the unix socket")
        .risk("the Docker API without TLS: anyone who reaches it is root on the host")
        .kw(&["container", "api"]),
    n("docker-s", &[2376], T)
        .local()
        .risk("the Docker API: whoever reaches it with a client certificate is root on the host")
        .kw(&["container", "api", "tls"]),
    n("amqp", &[5672], T)
        .clear(Some("amqps (5671)"))
        .local()
        .risk("a message broker: default accounts (guest) and cleartext")
        .kw(&["queue", "message", "rabbitmq"]),
    n("mqtt", &[1883], T)
        .clear(Some("secure-mqtt (8883)"))
        .local()
        .risk("IoT messaging in cleartext, often without authentication")
        .kw(&["queue", "message", "iot"]),
    n("ipp", &[631], T)
        .also(&["cups"])
        .local()
        .risk("printing: keep it to the local network")
        .kw(&["print", "printer", "cups"]),
    n("pdl-datastream", &[9100], T)
        .also(&["jetdirect"])
        .clear(None)
        .local()
        .risk("raw printing: anyone can print, and some printers accept commands on it")
        .kw(&["print", "printer"]),
    n("mdns", &[5353], U)
        .local()
        .risk("multicast DNS: announces the host's services on the local network; should not answer from outside")
        .kw(&["dns", "discovery", "bonjour", "avahi"]),
    n("ssdp", &[1900], U)
        .local()
        .risk("UPnP discovery: abused for amplification and to open ports in routers")
        .kw(&["upnp", "discovery"]),
    // Tunnels.
    n("openvpn", &[1194], UT).kw(&["vpn", "tunnel"]),
    n("wireguard", &[51820], U)
        .unassigned()
        .kw(&["vpn", "tunnel"]),
    n("isakmp", &[500], U).also(&["ike"]).kw(&["vpn", "ipsec"]),
    n("ipsec-nat-t", &[4500], U).kw(&["vpn", "ipsec"]),
    // inetd's small services.
    n("echo", &[7], TU).inetd().risk(SMALL),
    n("discard", &[9], TU).inetd().risk(SMALL),
    n("daytime", &[13], TU).inetd().risk(SMALL),
    n("qotd", &[17], TU).inetd().risk(SMALL),
    n("chargen", &[19], TU).inetd().risk(SMALL),
    n("time", &[37], TU).inetd().risk(SMALL),
];

const SMALL: &str = "an obsolete inetd service: useful to nobody but attackers, who bounce traffic off it (reflection and amplification)";

/// The notes about a service, by its IANA name or another common name (any case).
///
/// ```
/// let telnet = portolan_registry::notes("telnet").unwrap();
/// assert!(telnet.cleartext);
/// assert_eq!(telnet.secure_alternative, Some("ssh"));
/// assert!(portolan_registry::notes("postgresql").unwrap().local_only);
/// assert!(portolan_registry::notes("rlogin").is_some());
/// ```
pub fn notes(name: &str) -> Option<&'static Notes> {
    NOTES.iter().find(|n| n.answers_to(name))
}

/// The notes about the service that normally listens on `port` over `proto`.
///
/// ```
/// use portolan_registry::{Proto, notes_for_port};
/// assert_eq!(notes_for_port(9200, Proto::Tcp).unwrap().also[0], "elasticsearch");
/// assert!(notes_for_port(9200, Proto::Udp).is_none());
/// ```
pub fn notes_for_port(port: u16, proto: Proto) -> Option<&'static Notes> {
    NOTES.iter().find(|n| n.listens_on(port, proto))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Registry;

    #[test]
    fn names_and_ports_agree_with_iana() {
        let reg = Registry::embedded();
        for n in NOTES {
            let entries = reg.by_name(n.name);
            if n.unassigned {
                assert!(entries.is_empty(), "{} is an IANA name", n.name);
                for &p in n.ports {
                    for &proto in n.protos {
                        assert!(
                            reg.by_port(p, proto).iter().all(|e| e.name.is_empty()),
                            "{}: IANA has {p}/{proto}",
                            n.name
                        );
                    }
                }
                continue;
            }
            assert!(!entries.is_empty(), "{} is not an IANA name", n.name);
            for &p in n.ports {
                assert!(
                    entries
                        .iter()
                        .any(|e| e.ports.is_some_and(|r| r.contains(p))),
                    "{} is not at {p} in IANA",
                    n.name
                );
            }
            assert!(!n.protos.is_empty(), "{}", n.name);
            assert!(
                n.cleartext || n.secure_alternative.is_none(),
                "{}: an alternative to a service that is not cleartext",
                n.name
            );
            assert!(
                !(n.cleartext || n.local_only) || !n.risk.is_empty(),
                "{}: say what the risk is",
                n.name
            );
        }
    }

    #[test]
    fn cleartext_protocols_named_by_the_issue() {
        for name in [
            "telnet",
            "ftp",
            "tftp",
            "pop3",
            "imap",
            "nntp",
            "http",
            "snmp",
            "netbios-ns",
            "netbios-ssn",
            "rsh",
            "rlogin",
            "rexec",
            "ldap",
            "smtp",
        ] {
            let n = notes(name).unwrap_or_else(|| panic!("{name}"));
            assert!(n.cleartext, "{name}");
        }
        for name in ["https", "ssh", "imaps", "pop3s"] {
            assert!(!notes(name).unwrap().cleartext, "{name}");
        }
    }

    #[test]
    fn local_services() {
        for name in [
            "postgresql",
            "mysql",
            "redis",
            "memcached",
            "mongodb",
            "elasticsearch",
        ] {
            assert!(notes(name).unwrap().local_only, "{name}");
        }
        assert!(!notes("https").unwrap().local_only);
        assert!(notes("no-such").is_none());
    }

    #[test]
    fn the_ports_really_used() {
        for n in NOTES {
            assert!(!n.used_ranges().is_empty(), "{}: no ports", n.name);
            assert!(n.used.iter().all(|&(_, a, b)| a <= b), "{}", n.name);
            assert!(
                n.common.is_none_or(|c| n.also.contains(&c)),
                "{}: the common name must answer too",
                n.name
            );
        }
        let x11 = notes("x11").unwrap();
        assert!(x11.uses(6063, Proto::Tcp) && !x11.uses(6064, Proto::Tcp));
        assert!(!notes("https").unwrap().uses(443, Proto::Udp));
        assert!(notes("http3").unwrap().uses(443, Proto::Udp));
        assert!(notes("telnet").unwrap().uses(23, Proto::Tcp));
        assert!(notes("rlogin").unwrap().legacy_remote);
        assert!(notes("chargen").unwrap().inetd_small);
        assert!(notes("imap").unwrap().starttls && !notes("imaps").unwrap().starttls);
        assert!(notes("redis").unwrap().bind_hint.is_some());
        assert_eq!(
            notes("elasticsearch").unwrap().common,
            Some("elasticsearch")
        );
        // Local services say how to bind them to loopback.
        for n in NOTES.iter().filter(|n| n.bind_hint.is_some()) {
            assert!(n.local_only, "{}", n.name);
        }
    }

    #[test]
    fn the_ports_really_used_have_one_owner() {
        let mut seen = std::collections::HashMap::new();
        for n in NOTES {
            for (proto, r) in n.used_ranges() {
                for p in r.first..=r.last {
                    if let Some(other) = seen.insert((p, proto), n.name) {
                        panic!("{p}/{proto}: {other} and {}", n.name);
                    }
                }
            }
        }
    }

    #[test]
    fn one_note_per_port_and_protocol() {
        let mut seen = std::collections::HashSet::new();
        for n in NOTES {
            for &p in n.ports {
                for &proto in n.protos {
                    assert!(seen.insert((p, proto)), "{p}/{proto} twice");
                }
            }
        }
    }
}
