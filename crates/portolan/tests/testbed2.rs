//! End to end, the second test bed (tests/testbed2/run.sh): other implementations of the
//! first bed's protocols, and the databases, caches, brokers, RPC, desktops and proxies
//! the audit judges. `portolan detect` must name, port by port, the protocol, every
//! product and version the wire reveals, and whether the service served an anonymous
//! client; `portolan scan --detect` must name the same.

use std::path::Path;

use portolan_testkit::{Testbed, require_root, require_tool};
use testbed_check::{check_detect, check_scan, self_reported, want};

mod testbed_check;

const UNPACKED: &str = "/opt/portolan-testbed2/root/usr/sbin";

#[test]
fn testbed2_other_implementations_and_audited_services_are_identified() {
    const NAME: &str = "testbed2_other_implementations_and_audited_services_are_identified";
    if !require_root(NAME) {
        return;
    }
    for tool in [
        "ip",
        "setpriv",
        "dropbear",
        "dropbearkey",
        "unbound",
        "lighttpd",
        "tinyproxy",
        "danted",
        "redis-server",
        "memcached",
        "mariadbd",
        "mariadb-install-db",
        "mosquitto",
        "rpcbind",
        "rsync",
        "Xvnc",
        "dhcpd",
        "snmpd",
    ] {
        if !require_tool(NAME, tool) {
            return;
        }
    }
    for unpacked in ["proftpd", "pure-ftpd", "exim4", "ntpd", "atftpd"] {
        let path = Path::new(UNPACKED).join(unpacked);
        if !path.exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{NAME}: needs {}, and CI must unpack it (tests/testbed2/install.sh)",
                path.display()
            );
            eprintln!("skipping {NAME}: {} is missing", path.display());
            return;
        }
    }
    let dropbear = self_reported("dropbear", &["-V"], "Dropbear v");
    let unbound = self_reported("unbound", &["-V"], "Version ");
    let lighttpd = self_reported("lighttpd", &["-v"], "lighttpd/");
    let tinyproxy = self_reported("tinyproxy", &["-v"], "tinyproxy ");
    let redis = self_reported("redis-server", &["--version"], "v=");
    let memcached = self_reported("memcached", &["-V"], "memcached ");
    let postgres = self_reported(
        "/usr/lib/postgresql/15/bin/postgres",
        &["--version"],
        "(PostgreSQL) ",
    );
    let mariadb = self_reported("mariadbd", &["--version"], "Ver ");
    let mariadb = mariadb.trim_end_matches("-MariaDB").to_string();
    let mosquitto = self_reported("mosquitto", &["-h"], "mosquitto version ");
    let ntpsec = self_reported(&format!("{UNPACKED}/ntpd"), &["--version"], "ntpsec-");
    let python = self_reported("/usr/bin/python3", &["--version"], "Python ");

    let tb = Testbed::start("testbed2");
    let exim = self_reported(
        &format!("{UNPACKED}/exim4"),
        &["-C", tb.dir().join("exim.conf").to_str().unwrap(), "-bV"],
        "Exim version ",
    );

    let wants = vec![
        // Other implementations of the first bed's protocols.
        want("21", "ftp", Some("ProFTPD")),
        want("2121", "ftp", Some("ProFTPD")),
        want("2:21", "ftp", Some("Pure-FTPd")),
        want("2:2100", "ftp", Some("Pure-FTPd")),
        want("22", "ssh", Some("Dropbear sshd")).version(dropbear.clone()),
        want("2222", "ssh", Some("Dropbear sshd")).version(dropbear),
        want("25", "smtp", Some("Exim smtpd")).version(exim.clone()),
        want("2525", "smtp", Some("Exim smtpd")).version(exim),
        want("53", "dns", Some("Unbound")).version(unbound.clone()),
        want("5353", "dns", Some("Unbound")).version(unbound.clone()),
        want("53/udp", "dns", Some("Unbound")).version(unbound.clone()),
        want("5353/udp", "dns", Some("Unbound")).version(unbound),
        want("80", "http", Some("lighttpd")).version(lighttpd.clone()),
        want("8081", "http", Some("lighttpd")).version(lighttpd),
        want("2:8000", "http", Some("Python http.server")).version(python.clone()),
        want("2:18000", "http", Some("Python http.server")).version(python),
        want("123/udp", "ntp", Some("NTPsec")).version(ntpsec),
        want("161/udp", "snmp", Some("Juniper Networks SNMP agent")),
        want("1161/udp", "snmp", Some("Juniper Networks SNMP agent")),
        want("69/udp", "tftp", None),
        want("6969/udp", "tftp", None),
        want("67/udp", "dhcp", None),
        want("1067/udp", "dhcp", None),
        // Proxies.
        want("8888", "http-proxy", Some("tinyproxy"))
            .version(tinyproxy.clone())
            .anonymous(true),
        want("18888", "http-proxy", Some("tinyproxy"))
            .version(tinyproxy)
            .anonymous(true),
        want("1080", "socks", None).anonymous(true),
        want("11080", "socks", None).anonymous(false),
        // Databases and caches.
        want("6379", "redis", Some("Redis"))
            .version(redis)
            .anonymous(true),
        want("16379", "redis", None).anonymous(false),
        want("11211", "memcached", Some("memcached"))
            .version(memcached.clone())
            .anonymous(true),
        want("21211", "memcached", Some("memcached"))
            .version(memcached.clone())
            .anonymous(true),
        want("11211/udp", "memcached", Some("memcached"))
            .version(memcached.clone())
            .anonymous(true),
        want("21211/udp", "memcached", Some("memcached"))
            .version(memcached)
            .anonymous(true),
        want("5432", "postgresql", Some("PostgreSQL"))
            .version(postgres)
            .anonymous(true),
        want("15432", "postgresql", None).anonymous(false),
        want("3306", "mysql", Some("MariaDB")).version(mariadb.clone()),
        want("13306", "mysql", Some("MariaDB")).version(mariadb),
        // Brokers.
        want("1883", "mqtt", Some("Mosquitto"))
            .version(mosquitto)
            .anonymous(true),
        want("11883", "mqtt", None).anonymous(false),
        // RPC and file services.
        want("111", "rpcbind", None).anonymous(true),
        want("111/udp", "rpcbind", None).anonymous(true),
        want("873", "rsync", None).anonymous(true),
        want("10873", "rsync", None).anonymous(true),
        // Remote desktops and X11.
        want("5900", "vnc", None).anonymous(true),
        want("15900", "vnc", None).anonymous(false),
        want("6041", "x11", Some("X.Org X server"))
            .version("")
            .anonymous(true),
        want("6042", "x11", None).anonymous(false),
    ];

    let detected = check_detect("test bed 2", &tb, &wants);
    check_scan("test bed 2", &tb, &wants, &detected);
}
