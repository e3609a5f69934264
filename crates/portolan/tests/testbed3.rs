//! End to end, the third test bed (tests/testbed3/run.sh): the implementations that the
//! first two beds lack, from Debian's packages. `portolan detect` must name, port by
//! port, the protocol, the product and the version the wire reveals (compared with the
//! version of the package, as `dpkg-query -W` reports it), and whether the service served
//! an anonymous client; `portolan scan --detect` must name the same.

use portolan_testkit::{Testbed, require_root, require_tool};
use testbed_check::{check_detect, check_scan, package_version, unpacked_version, want};

mod testbed_check;

const UNPACKED: &str = "/opt/portolan-testbed3";

/// What 389 DS open to anonymous clients answers their search of its suffix with.
const DS389_ENTRY: &str =
    "anonymous search of dc=portolan,dc=test returned entry dc=portolan,dc=test";

#[test]
fn testbed3_more_implementations_are_identified() {
    const NAME: &str = "testbed3_more_implementations_are_identified";
    if !require_root(NAME) {
        return;
    }
    for tool in [
        "ip",
        "setpriv",
        "apache2",
        "caddy",
        "named",
        "knotd",
        "pdns_server",
        "dscreate",
        "ns-slapd",
    ] {
        if !require_tool(NAME, tool) {
            return;
        }
    }
    let apache = package_version("apache2-bin");
    let bind = package_version("bind9");
    let knot = package_version("knot");
    let pdns = package_version("pdns-server");
    let squid = package_version("squid");
    let etcd = package_version("etcd-server");
    let rabbitmq = package_version("rabbitmq-server");
    // Unpacked: its version is the package's, but the greeting names none.
    let _ = unpacked_version(UNPACKED, "opensmtpd");
    let inn = unpacked_version(UNPACKED, "inn2");
    let sendmail = unpacked_version(UNPACKED, "sendmail-bin");
    let cyrus = unpacked_version(UNPACKED, "cyrus-imapd");
    // Unpacked too; Courier names itself, never its version.
    let _ = unpacked_version(UNPACKED, "courier-imap");
    let _ = unpacked_version(UNPACKED, "courier-pop");
    let ds389 = package_version("389-ds-base");

    let wants = vec![
        // HTTP
        want("80", "http", Some("Apache httpd")).version(apache.clone()),
        want("8080", "http", Some("Apache httpd")).version(apache),
        // Caddy names itself, without a version; it answers CONNECT with its page, which
        // makes it no proxy.
        want("2:80", "http", Some("Caddy")),
        want("2:8080", "http", Some("Caddy")),
        // DNS
        want("53", "dns", Some("ISC BIND")).version(bind.clone()),
        want("5353", "dns", Some("ISC BIND")).version(bind.clone()),
        want("53/udp", "dns", Some("ISC BIND")).version(bind.clone()),
        want("5353/udp", "dns", Some("ISC BIND")).version(bind),
        want("2:53", "dns", Some("Knot DNS")).version(knot.clone()),
        want("2:5353", "dns", Some("Knot DNS")).version(knot.clone()),
        want("2:53/udp", "dns", Some("Knot DNS")).version(knot.clone()),
        want("2:5353/udp", "dns", Some("Knot DNS")).version(knot),
        want("3:53", "dns", Some("PowerDNS")).version(pdns.clone()),
        want("3:5353", "dns", Some("PowerDNS")).version(pdns.clone()),
        want("3:53/udp", "dns", Some("PowerDNS")).version(pdns.clone()),
        want("3:5353/udp", "dns", Some("PowerDNS")).version(pdns),
        // SMTP: Sendmail names its version; OpenSMTPD names itself, without one.
        want("2:25", "smtp", Some("Sendmail")).version(sendmail.clone()),
        want("2:2525", "smtp", Some("Sendmail")).version(sendmail),
        want("3:25", "smtp", Some("OpenSMTPD")),
        want("3:2525", "smtp", Some("OpenSMTPD")),
        // NNTP: INN's reader daemon names itself and its version in the greeting.
        want("2:119", "nntp", Some("INN")).version(inn.clone()),
        want("2:1119", "nntp", Some("INN")).version(inn),
        // IMAP and POP3: Cyrus names itself and its version in the greeting.
        want("3:143", "imap", Some("Cyrus imapd")).version(cyrus.clone()),
        want("3:1143", "imap", Some("Cyrus imapd")).version(cyrus.clone()),
        want("3:110", "pop3", Some("Cyrus pop3d")).version(cyrus.clone()),
        want("3:1110", "pop3", Some("Cyrus pop3d")).version(cyrus),
        // Courier names itself in its IMAP greeting, and in its POP3 CAPA answer
        // (IMPLEMENTATION), without a version.
        want("2:143", "imap", Some("Courier imapd")),
        want("2:1143", "imap", Some("Courier imapd")),
        want("2:110", "pop3", Some("Courier pop3d")),
        want("2:1110", "pop3", Some("Courier pop3d")),
        // LDAP: 389 Directory Server's root DSE names it (vendorName) and its version
        // (vendorVersion). Its default access rules let an anonymous client read the
        // sample entries,
        want("389", "ldap", Some("389 Directory Server"))
            .version(ds389.clone())
            .anonymous(true)
            .evidence(DS389_ENTRY),
        want("1389", "ldap", Some("389 Directory Server"))
            .version(ds389.clone())
            .anonymous(true)
            .evidence(DS389_ENTRY),
        // and with nsslapd-allow-anonymous-access: rootdse, only the root DSE.
        want("2:389", "ldap", Some("389 Directory Server"))
            .version(ds389)
            .anonymous(false)
            .evidence("refused (48 inappropriateAuthentication: Anonymous access is not allowed.)"),
        // Proxies: Squid, open to the bed's network,
        want("3128", "http-proxy", Some("Squid"))
            .version(squid.clone())
            .anonymous(true),
        want("13128", "http-proxy", Some("Squid"))
            .version(squid.clone())
            .anonymous(true),
        // and Squid that wants a password: CONNECT answers 407.
        want("2:3128", "http-proxy", Some("Squid"))
            .version(squid.clone())
            .anonymous(false),
        want("2:13128", "http-proxy", Some("Squid"))
            .version(squid)
            .anonymous(false),
        // Cluster APIs: etcd's /version.
        want("2379", "etcd", Some("etcd")).version(etcd.clone()),
        want("12379", "etcd", Some("etcd")).version(etcd),
        // Brokers: RabbitMQ offers PLAIN and AMQPLAIN, no ANONYMOUS.
        want("5672", "amqp", Some("RabbitMQ"))
            .version(rabbitmq.clone())
            .anonymous(false),
        want("10672", "amqp", Some("RabbitMQ"))
            .version(rabbitmq)
            .anonymous(false),
        // Remote desktops: xrdp selects TLS, not CredSSP (so no verdict on
        // authentication), and is known by its answer to data sent before a connection.
        want("3389", "rdp", Some("xrdp")),
        want("13389", "rdp", Some("xrdp")),
    ];

    let tb = Testbed::start("testbed3");
    let detected = check_detect("test bed 3", &tb, &wants);
    check_scan("test bed 3", &tb, &wants, &detected);
}
