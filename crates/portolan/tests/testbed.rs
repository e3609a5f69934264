//! End to end: real daemons in a network namespace (tests/testbed/run.sh), and
//! `portolan detect` must identify every one of them, on its standard port and on a
//! moved one, with product and version where the daemon gives them.

use std::collections::HashMap;
use std::process::Command;

use portolan_testkit::Testbed;
use portolan_testkit::{require_root, require_tool};
use serde_json::Value;

mod testbed_check;
use testbed_check::self_reported;

/// What must be found on one port.
struct Want {
    target: &'static str,
    protocol: &'static str,
    product: Option<&'static str>,
    /// `Some("")`: any version; `Some(v)`: exactly v.
    version: Option<String>,
    tls: bool,
    starttls: bool,
}

fn want(target: &'static str, protocol: &'static str, product: Option<&'static str>) -> Want {
    Want {
        target,
        protocol,
        product,
        version: None,
        tls: false,
        starttls: false,
    }
}

impl Want {
    fn version(mut self, v: impl Into<String>) -> Want {
        self.version = Some(v.into());
        self
    }
    fn tls(mut self) -> Want {
        self.tls = true;
        self
    }
    fn starttls(mut self) -> Want {
        self.starttls = true;
        self
    }
}

#[test]
fn testbed_every_service_is_identified() {
    if !require_root("testbed_every_service_is_identified") {
        return;
    }
    for tool in [
        "ip", "openssl", "sshd", "vsftpd", "inetd", "telnetd", "leafnode", "dnsmasq", "in.tftpd",
        "nginx", "dovecot", "chronyd", "nmbd", "smbd", "snmpd", "slapd",
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
        want("21", "ftp", Some("vsftpd")).version("").starttls(),
        want("2121", "ftp", Some("vsftpd")).version("").starttls(),
        want("990", "ftp", Some("vsftpd")).version("").tls(),
        want("22", "ssh", Some("OpenSSH")).version(openssh.clone()),
        want("2222", "ssh", Some("OpenSSH")).version(openssh),
        want("23", "telnet", Some("GNU inetutils telnetd")),
        want("2323", "telnet", Some("GNU inetutils telnetd")),
        want("25", "smtp", Some("Postfix smtpd")).starttls(),
        want("2525", "smtp", Some("Postfix smtpd")).starttls(),
        want("465", "smtp", Some("Postfix smtpd")).tls(),
        want("1465", "smtp", Some("Postfix smtpd")).tls(),
        want("53", "dns", Some("dnsmasq")).version(dnsmasq.clone()),
        want("53/udp", "dns", Some("dnsmasq")).version(dnsmasq.clone()),
        want("5353", "dns", Some("dnsmasq")).version(dnsmasq.clone()),
        want("5353/udp", "dns", Some("dnsmasq")).version(dnsmasq),
        want("67/udp", "dhcp", None),
        want("1067/udp", "dhcp", None),
        want("69/udp", "tftp", None),
        want("6969/udp", "tftp", None),
        want("80", "http", Some("nginx")).version(nginx.clone()),
        want("8081", "http", Some("nginx")).version(nginx.clone()),
        want("443", "http", Some("nginx"))
            .version(nginx.clone())
            .tls(),
        want("4433", "http", Some("nginx")).version(nginx).tls(),
        want("110", "pop3", Some("Dovecot pop3d")).starttls(),
        want("1110", "pop3", Some("Dovecot pop3d")).starttls(),
        want("995", "pop3", Some("Dovecot pop3d")).tls(),
        want("1995", "pop3", Some("Dovecot pop3d")).tls(),
        want("119", "nntp", Some("Leafnode")).version(""),
        want("1119", "nntp", Some("Leafnode")).version(""),
        want("123/udp", "ntp", None),
        want("1123/udp", "ntp", None),
        want("137/udp", "netbios-ns", Some("Samba nmbd")),
        want("139", "netbios-ssn", None),
        want("445", "smb", None),
        want("1445", "smb", None),
        want("143", "imap", Some("Dovecot imapd")).starttls(),
        want("1143", "imap", Some("Dovecot imapd")).starttls(),
        want("993", "imap", Some("Dovecot imapd")).tls(),
        want("1993", "imap", Some("Dovecot imapd")).tls(),
        want("161/udp", "snmp", Some("Net-SNMP")).version(snmp.clone()),
        want("1161/udp", "snmp", Some("Net-SNMP")).version(snmp),
        want("389", "ldap", Some("OpenLDAP"))
            .version("2.5 or later")
            .starttls(),
        want("3389", "ldap", Some("OpenLDAP"))
            .version("2.5 or later")
            .starttls(),
        want("636", "ldap", Some("OpenLDAP"))
            .version("2.5 or later")
            .tls(),
        want("1636", "ldap", Some("OpenLDAP"))
            .version("2.5 or later")
            .tls(),
    ];

    let tb = Testbed::start("testbed");
    let ns = tb.env("SCANNER_NS");
    let ip = tb.env("TARGET_IP");
    let targets: Vec<String> = wants.iter().map(|w| format!("{ip}:{}", w.target)).collect();
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            env!("CARGO_BIN_EXE_portolan"),
            "detect",
            "--json",
        ])
        .args(["--timeout", "2s"])
        .args(&targets)
        .output()
        .expect("run portolan detect");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "portolan detect failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: HashMap<String, Value> = stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a JSON line");
            (
                v["target"].as_str().unwrap().to_string(),
                v["detected"].clone(),
            )
        })
        .collect();

    let mut failures = Vec::new();
    for (w, t) in wants.iter().zip(&targets) {
        let Some(d) = found.get(t) else {
            failures.push(format!("{t}: no result"));
            continue;
        };
        let s = |k: &str| d[k].as_str().map(str::to_string);
        let mut bad = Vec::new();
        if s("protocol").as_deref() != Some(w.protocol) {
            bad.push(format!("protocol {:?}, want {}", s("protocol"), w.protocol));
        }
        if let Some(p) = w.product {
            if s("product").as_deref() != Some(p) {
                bad.push(format!("product {:?}, want {p}", s("product")));
            }
        }
        match (&w.version, s("version")) {
            (Some(v), Some(got)) if !v.is_empty() && *v != got => {
                bad.push(format!("version {got}, want {v}"));
            }
            (Some(_), None) => bad.push("no version".into()),
            _ => {}
        }
        // Implicit TLS, or the upgrade a service offers (taken for its certificate).
        let tls = w.tls || w.starttls;
        if d["tls"].is_null() == tls {
            bad.push(format!("tls {}, want {tls}", d["tls"]));
        }
        let subject = d["tls"]["subject"].as_str().unwrap_or("");
        if tls && !subject.contains("testbed.portolan.test") {
            bad.push(format!("certificate subject {subject:?}"));
        }
        if d["starttls"].as_bool() != Some(w.starttls) {
            bad.push(format!("starttls {}, want {}", d["starttls"], w.starttls));
        }
        if d["cleartext"].as_bool() != Some(!w.tls && w.protocol != "ssh") {
            bad.push(format!("cleartext {}", d["cleartext"]));
        }
        if !bad.is_empty() {
            failures.push(format!(
                "{t}: {} (evidence: {})",
                bad.join("; "),
                d["evidence"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "not identified as expected:\n{}",
        failures.join("\n")
    );

    // The same through `scan --detect` (nmap's -sV): JSON lines and nmap XML.
    let tcp: Vec<&Want> = wants.iter().filter(|w| !w.target.contains('/')).collect();
    let udp: Vec<&Want> = wants.iter().filter(|w| w.target.contains("/udp")).collect();
    let spec = format!(
        "T:{},U:{}",
        tcp.iter().map(|w| w.target).collect::<Vec<_>>().join(","),
        udp.iter()
            .map(|w| w.target.trim_end_matches("/udp"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let xml = tb.dir().join("scan.xml");
    let out = Command::new("ip")
        .args(["netns", "exec", &ns, env!("CARGO_BIN_EXE_portolan"), "scan"])
        .args([
            "-Pn",
            "-sT",
            "-sU",
            "--detect",
            "--json",
            "--timeout",
            "2s",
            "-p",
            &spec,
        ])
        .arg("--xml-out")
        .arg(&xml)
        .arg(&ip)
        .output()
        .expect("run portolan scan --detect");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "portolan scan --detect failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut scanned: HashMap<String, Value> = HashMap::new();
    for l in stdout.lines() {
        let v: Value = serde_json::from_str(l).expect("a JSON line");
        if v["type"] == "port" {
            let key = match v["protocol"].as_str() {
                Some("udp") => format!("{}/udp", v["port"]),
                _ => v["port"].to_string(),
            };
            scanned.insert(key, v["detected"].clone());
        }
    }
    let xml = std::fs::read_to_string(&xml).expect("the XML report");
    let mut failures = Vec::new();
    for w in &wants {
        let got = scanned.get(w.target).and_then(|d| d["protocol"].as_str());
        if got != Some(w.protocol) {
            failures.push(format!(
                "scan {}: detected {got:?}, want {}",
                w.target, w.protocol
            ));
        }
        if let Some(product) = w.product {
            let (proto, port) = match w.target.split_once('/') {
                Some((p, _)) => ("udp", p),
                None => ("tcp", w.target),
            };
            let needle = format!("protocol=\"{proto}\" portid=\"{port}\"");
            let line = xml.lines().find(|l| l.contains(&needle)).unwrap_or("");
            if !line.contains(&format!("product=\"{product}\""))
                || !line.contains("method=\"probed\"")
            {
                failures.push(format!("XML for {}: {line}", w.target));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "scan --detect:\n{}",
        failures.join("\n")
    );
}
