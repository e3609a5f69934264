//! End to end: real daemons in a network namespace (tests/testbed/run.sh), and
//! `portolan detect` must identify every one of them, on its standard port and on a
//! moved one: port by port, the protocol, the product and version where the daemon gives
//! them (and none where it gives none), whether it served an anonymous client, and how it
//! carries its bytes (TLS first, an offered STARTTLS, cleartext), with the bed's
//! certificate behind every TLS; `portolan scan --detect` must name the same, in JSON lines
//! and in nmap's XML.

use portolan_testkit::Testbed;
use portolan_testkit::{require_root, require_tool};

mod testbed_check;
use testbed_check::{check_detect, check_scan, self_reported, want};

/// The subject of the bed's certificate, which every TLS service presents.
const CERT: &str = "testbed.portolan.test";

/// What an LDAP directory open to anonymous clients answers its anonymous search with.
const ANON_ENTRY: &str =
    "anonymous search of dc=portolan,dc=test returned entry dc=portolan,dc=test";

#[test]
fn testbed_every_service_is_identified() {
    if !require_root("testbed_every_service_is_identified") {
        return;
    }
    for tool in [
        "ip", "openssl", "sshd", "vsftpd", "inetd", "telnetd", "leafnode", "dnsmasq", "in.tftpd",
        "nginx", "dovecot", "chronyd", "nmbd", "smbd", "snmpd", "slapd", "slapadd",
    ] {
        if !require_tool("testbed_every_service_is_identified", tool) {
            return;
        }
    }
    let nginx = self_reported("nginx", &["-v"], "nginx/");
    let dnsmasq = self_reported("dnsmasq", &["--version"], "Dnsmasq version ");
    let openssh = self_reported("ssh", &["-V"], "OpenSSH_");
    let snmp = self_reported("snmpd", &["-v"], "NET-SNMP version:  ");

    let wants = vec![
        want("21", "ftp", Some("vsftpd")).version("").starttls(CERT),
        want("2121", "ftp", Some("vsftpd"))
            .version("")
            .starttls(CERT),
        want("990", "ftp", Some("vsftpd")).version("").tls(CERT),
        want("22", "ssh", Some("OpenSSH"))
            .version(openssh.clone())
            .encrypted(),
        want("2222", "ssh", Some("OpenSSH"))
            .version(openssh)
            .encrypted(),
        want("23", "telnet", Some("GNU inetutils telnetd")).cleartext(),
        want("2323", "telnet", Some("GNU inetutils telnetd")).cleartext(),
        want("25", "smtp", Some("Postfix smtpd")).starttls(CERT),
        want("2525", "smtp", Some("Postfix smtpd")).starttls(CERT),
        want("465", "smtp", Some("Postfix smtpd")).tls(CERT),
        want("1465", "smtp", Some("Postfix smtpd")).tls(CERT),
        want("53", "dns", Some("dnsmasq"))
            .version(dnsmasq.clone())
            .cleartext(),
        want("53/udp", "dns", Some("dnsmasq"))
            .version(dnsmasq.clone())
            .cleartext(),
        want("5353", "dns", Some("dnsmasq"))
            .version(dnsmasq.clone())
            .cleartext(),
        want("5353/udp", "dns", Some("dnsmasq"))
            .version(dnsmasq)
            .cleartext(),
        want("67/udp", "dhcp", None).cleartext(),
        want("1067/udp", "dhcp", None).cleartext(),
        want("69/udp", "tftp", None).cleartext(),
        want("6969/udp", "tftp", None).cleartext(),
        want("80", "http", Some("nginx"))
            .version(nginx.clone())
            .cleartext(),
        want("8081", "http", Some("nginx"))
            .version(nginx.clone())
            .cleartext(),
        want("443", "http", Some("nginx"))
            .version(nginx.clone())
            .tls(CERT),
        want("4433", "http", Some("nginx")).version(nginx).tls(CERT),
        want("110", "pop3", Some("Dovecot pop3d")).starttls(CERT),
        want("1110", "pop3", Some("Dovecot pop3d")).starttls(CERT),
        want("995", "pop3", Some("Dovecot pop3d")).tls(CERT),
        want("1995", "pop3", Some("Dovecot pop3d")).tls(CERT),
        want("119", "nntp", Some("Leafnode"))
            .version("")
            .cleartext(),
        want("1119", "nntp", Some("Leafnode"))
            .version("")
            .cleartext(),
        want("123/udp", "ntp", None).cleartext(),
        want("1123/udp", "ntp", None).cleartext(),
        want("137/udp", "netbios-ns", Some("Samba nmbd")).cleartext(),
        want("139", "netbios-ssn", None).cleartext(),
        want("445", "smb", None).cleartext(),
        want("1445", "smb", None).cleartext(),
        want("143", "imap", Some("Dovecot imapd")).starttls(CERT),
        want("1143", "imap", Some("Dovecot imapd")).starttls(CERT),
        want("993", "imap", Some("Dovecot imapd")).tls(CERT),
        want("1993", "imap", Some("Dovecot imapd")).tls(CERT),
        want("161/udp", "snmp", Some("Net-SNMP"))
            .version(snmp.clone())
            .cleartext(),
        want("1161/udp", "snmp", Some("Net-SNMP"))
            .version(snmp)
            .cleartext(),
        // LDAP: slapd open to anonymous clients (its default access): an anonymous search
        // of the naming context returns an entry,
        want("389", "ldap", Some("OpenLDAP"))
            .version("2.5 or later")
            .starttls(CERT)
            .anonymous(true)
            .evidence(ANON_ENTRY),
        want("3389", "ldap", Some("OpenLDAP"))
            .version("2.5 or later")
            .starttls(CERT)
            .anonymous(true)
            .evidence(ANON_ENTRY),
        want("636", "ldap", Some("OpenLDAP"))
            .version("2.5 or later")
            .tls(CERT)
            .anonymous(true)
            .evidence(ANON_ENTRY),
        want("1636", "ldap", Some("OpenLDAP"))
            .version("2.5 or later")
            .tls(CERT)
            .anonymous(true)
            .evidence(ANON_ENTRY),
        // slapd whose access rules give anonymous clients only binds: the root DSE names
        // it, the search is refused,
        want("10389", "ldap", Some("OpenLDAP"))
            .version("2.5 or later")
            .starttls(CERT)
            .anonymous(false)
            .evidence("refused (50 insufficientAccessRights)"),
        want("10636", "ldap", Some("OpenLDAP"))
            .version("2.5 or later")
            .tls(CERT)
            .anonymous(false)
            .evidence("refused (50 insufficientAccessRights)"),
        // slapd with `require authc`: even the root DSE is refused, so nothing names it,
        want("12389", "ldap", None)
            .cleartext()
            .anonymous(false)
            .evidence("the root DSE is refused to an anonymous client (53 unwillingToPerform"),
        // and slapd that wants TLS first: refused in cleartext (confidentialityRequired),
        // open inside StartTLS.
        want("11389", "ldap", Some("OpenLDAP"))
            .version("2.5 or later")
            .starttls(CERT)
            .anonymous(true)
            .evidence("returned entry dc=portolan,dc=test inside StartTLS"),
    ];

    let tb = Testbed::start("testbed");
    let detected = check_detect("test bed 1", &tb, &wants);
    check_scan("test bed 1", &tb, &wants, &detected);
}
