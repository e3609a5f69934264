//! What the test beds' tests share: the expectations port by port, the `portolan detect`
//! run and its check (protocol, product, version, anonymous access, and where a want names
//! it, TLS, STARTTLS, cleartext and the certificate), the `portolan scan --detect` run that
//! must name the same in JSON lines and in nmap's XML, and the versions the installed
//! programs report.

// Each test file uses a part of it.
#![allow(dead_code)]
use std::collections::{BTreeMap, HashMap};
use std::process::Command;

use portolan_testkit::Testbed;
use serde_json::Value;

/// What must be found on one port.
pub struct Want {
    /// `PORT`, `PORT/udp`, or `N:PORT` for the bed's address `TARGETN_IP`.
    pub target: &'static str,
    pub protocol: &'static str,
    /// `Some(p)`: exactly p; `None`: the wire names none, so none may be claimed.
    pub product: Option<&'static str>,
    /// `Some("")`: any version; `Some(v)`: exactly v; `None`: none may be claimed.
    pub version: Option<String>,
    pub unauthenticated: Option<bool>,
    /// `None`: not checked; else how the service carries its bytes.
    pub transport: Option<Transport>,
    /// Text the evidence must contain.
    pub evidence: Option<&'static str>,
}

/// How a service carries its bytes, as `tls`, `starttls` and `cleartext` must say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// In the clear, no upgrade offered: no `tls`, `cleartext` true.
    Cleartext,
    /// In the clear, with an upgrade (STARTTLS, STLS, AUTH TLS) taken for its
    /// certificate, whose subject contains the text: `tls`, `starttls`, `cleartext` true.
    StartTls(&'static str),
    /// TLS from the first byte, the certificate's subject containing the text: `tls`, no
    /// `starttls`, `cleartext` false.
    Tls(&'static str),
    /// Encrypted by the protocol itself (SSH): no `tls`, `cleartext` false.
    Encrypted,
}

pub fn want(target: &'static str, protocol: &'static str, product: Option<&'static str>) -> Want {
    Want {
        target,
        protocol,
        product,
        version: None,
        unauthenticated: None,
        transport: None,
        evidence: None,
    }
}

impl Want {
    pub fn version(mut self, v: impl Into<String>) -> Want {
        self.version = Some(v.into());
        self
    }
    pub fn anonymous(mut self, served: bool) -> Want {
        self.unauthenticated = Some(served);
        self
    }
    /// The evidence must contain `text` (what the verdict was made from).
    pub fn evidence(mut self, text: &'static str) -> Want {
        self.evidence = Some(text);
        self
    }
    /// In the clear, no upgrade offered.
    pub fn cleartext(mut self) -> Want {
        self.transport = Some(Transport::Cleartext);
        self
    }
    /// An upgrade to TLS offered, the certificate's subject containing `subject`.
    pub fn starttls(mut self, subject: &'static str) -> Want {
        self.transport = Some(Transport::StartTls(subject));
        self
    }
    /// TLS from the first byte, the certificate's subject containing `subject`.
    pub fn tls(mut self, subject: &'static str) -> Want {
        self.transport = Some(Transport::Tls(subject));
        self
    }
    /// Encrypted by the protocol itself, not by TLS.
    pub fn encrypted(mut self) -> Want {
        self.transport = Some(Transport::Encrypted);
        self
    }
}

/// What is wrong with a detection's `tls`, `starttls` and `cleartext` for `want`.
fn transport_faults(want: Transport, d: &Value) -> Vec<String> {
    let (tls, subject, starttls, cleartext) = match want {
        Transport::Cleartext => (false, None, false, true),
        Transport::StartTls(s) => (true, Some(s), true, true),
        Transport::Tls(s) => (true, Some(s), false, false),
        Transport::Encrypted => (false, None, false, false),
    };
    let mut bad = Vec::new();
    if d["tls"].is_null() == tls {
        bad.push(format!(
            "tls {}, want {}",
            d["tls"],
            if tls { "some" } else { "none" }
        ));
    }
    if let Some(want) = subject {
        let got = d["tls"]["subject"].as_str().unwrap_or("");
        if !got.contains(want) {
            bad.push(format!(
                "certificate subject {got:?}, want one naming {want}"
            ));
        }
    }
    if d["starttls"].as_bool() != Some(starttls) {
        bad.push(format!("starttls {}, want {starttls}", d["starttls"]));
    }
    if d["cleartext"].as_bool() != Some(cleartext) {
        bad.push(format!("cleartext {}, want {cleartext}", d["cleartext"]));
    }
    bad
}

/// The version a program prints about itself: the text after `prefix`, made of letters,
/// digits and dots.
pub fn self_reported(program: &str, args: &[&str], prefix: &str) -> String {
    let out = Command::new(program).args(args).output().expect(program);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v = text.find(prefix).map(|i| {
        text[i + prefix.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
            .collect::<String>()
    });
    v.map(|v| v.trim_end_matches('.').to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("no version in `{program}` output: {text}"))
}

/// The upstream version of an installed Debian package, as `dpkg-query -W` reports it
/// (`1:9.18.49-1~deb12u3` gives `9.18.49`).
pub fn package_version(package: &str) -> String {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", package])
        .output()
        .expect("dpkg-query");
    let full = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!full.is_empty(), "dpkg-query -W {package}: not installed");
    upstream(&full)
}

/// The upstream version of a package that a bed's install.sh unpacked into `dir`: its
/// control file's `Version`, which install.sh keeps in `dir/.PACKAGE`.
pub fn unpacked_version(dir: &str, package: &str) -> String {
    let path = format!("{dir}/.{package}");
    let full = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(!full.trim().is_empty(), "{path}: no version recorded");
    upstream(full.trim())
}

/// `1:9.18.49-1~deb12u3` -> `9.18.49`: no epoch, no Debian revision.
pub fn upstream(full: &str) -> String {
    let v = full.split_once(':').map_or(full, |(_, v)| v);
    let v = v.rsplit_once('-').map_or(v, |(v, _)| v);
    v.split(['+', '~']).next().unwrap_or(v).to_string()
}

/// The address and port text of a want: `TARGET_IP:PORT`, or `TARGETN_IP:PORT`.
fn address(tb: &Testbed, target: &str) -> (String, String) {
    match target.split_once(':') {
        Some((n, t)) => (tb.env(&format!("TARGET{n}_IP")), t.to_string()),
        None => (tb.env("TARGET_IP"), target.to_string()),
    }
}

/// Runs `portolan ARGS` in the bed's scanner namespace; it must succeed. Returns its
/// stdout.
pub fn in_scanner(tb: &Testbed, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", &tb.env("SCANNER_NS")])
        .arg(env!("CARGO_BIN_EXE_portolan"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run portolan {}: {e}", args.join(" ")));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "portolan {} failed: {}{stdout}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn detections(stdout: &str) -> HashMap<String, Value> {
    stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a JSON line");
            (
                v["target"].as_str().unwrap().to_string(),
                v["detected"].clone(),
            )
        })
        .collect()
}

/// Runs `portolan detect` over every want's port from the bed's scanner namespace and
/// checks protocol, product, version and `unauthenticated`, port by port. Returns the
/// detections by want target.
pub fn check_detect(bed: &str, tb: &Testbed, wants: &[Want]) -> HashMap<String, Value> {
    let targets: Vec<String> = wants
        .iter()
        .map(|w| {
            let (ip, t) = address(tb, w.target);
            format!("{ip}:{t}")
        })
        .collect();
    let mut args = vec!["detect", "--json", "--timeout", "2s"];
    args.extend(targets.iter().map(String::as_str));
    let stdout = in_scanner(tb, &args);
    let found = detections(&stdout);
    let mut failures = Vec::new();
    let mut by_want = HashMap::new();
    for (w, t) in wants.iter().zip(&targets) {
        let Some(d) = found.get(t) else {
            failures.push(format!("{t}: no result"));
            continue;
        };
        by_want.insert(w.target.to_string(), d.clone());
        let s = |k: &str| d[k].as_str().map(str::to_string);
        let mut bad = Vec::new();
        if s("protocol").as_deref() != Some(w.protocol) {
            bad.push(format!("protocol {:?}, want {}", s("protocol"), w.protocol));
        }
        if s("product").as_deref() != w.product {
            bad.push(format!("product {:?}, want {:?}", s("product"), w.product));
        }
        match (&w.version, s("version")) {
            (Some(v), Some(got)) if !v.is_empty() && *v != got => {
                bad.push(format!("version {got}, want {v}"));
            }
            (Some(_), None) => bad.push("no version".into()),
            (None, Some(got)) => bad.push(format!("version {got}, but the wire names none")),
            _ => {}
        }
        if d["unauthenticated"].as_bool() != w.unauthenticated {
            bad.push(format!(
                "unauthenticated {}, want {:?}",
                d["unauthenticated"], w.unauthenticated
            ));
        }
        if let Some(t) = w.transport {
            bad.extend(transport_faults(t, d));
        }
        if let Some(e) = w.evidence {
            if !d["evidence"].as_str().unwrap_or("").contains(e) {
                bad.push(format!("evidence without {e:?}"));
            }
        }
        if !bad.is_empty() {
            failures.push(format!(
                "{t} ({}): {} (evidence: {})",
                w.protocol,
                bad.join("; "),
                d["evidence"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{bed}, not identified as expected:\n{}",
        failures.join("\n")
    );
    by_want
}

/// The attributes of the `<service>` element of one port in nmap's XML, unescaped;
/// `None` when the XML lists no such port.
pub fn xml_service(xml: &str, protocol: &str, port: &str) -> Option<BTreeMap<String, String>> {
    let start = format!("<port protocol=\"{protocol}\" portid=\"{port}\">");
    let rest = &xml[xml.find(&start)? + start.len()..];
    let rest = &rest[..rest.find("</port>")?];
    let mut attrs = BTreeMap::new();
    let Some(i) = rest.find("<service ") else {
        return Some(attrs);
    };
    let mut el = &rest[i + "<service ".len()..];
    el = &el[..el.find("/>").unwrap_or(el.len())];
    while let Some((k, v)) = el.split_once("=\"") {
        let Some((v, tail)) = v.split_once('"') else {
            break;
        };
        let v = v
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&");
        attrs.insert(k.trim().to_string(), v);
        el = tail;
    }
    Some(attrs)
}

/// What is wrong with a port's `<service>` in nmap's XML, for `want` and what detect
/// named (`detected`): it must be a probed service, with exactly the product and the
/// version detect named, and `tunnel="ssl"` exactly when TLS comes first.
fn xml_faults(want: &Want, detected: &Value, service: &BTreeMap<String, String>) -> Vec<String> {
    let mut bad = Vec::new();
    let attr = |k: &str| service.get(k).map(String::as_str);
    if attr("method") != Some("probed") {
        bad.push(format!("method {:?}, want probed", attr("method")));
    }
    if attr("name").is_none() {
        bad.push("no service name".into());
    }
    if attr("product") != want.product {
        bad.push(format!(
            "product {:?}, want {:?}",
            attr("product"),
            want.product
        ));
    }
    if attr("version") != detected["version"].as_str() {
        bad.push(format!(
            "version {:?}, detect named {}",
            attr("version"),
            detected["version"]
        ));
    }
    let tunnel = !detected["tls"].is_null() && detected["starttls"] != true;
    if (attr("tunnel") == Some("ssl")) != tunnel {
        bad.push(format!(
            "tunnel {:?}, want {}",
            attr("tunnel"),
            if tunnel { "ssl" } else { "none" }
        ));
    }
    bad
}

/// Runs `portolan scan -sT -sU --detect` over the same ports, one scan per address, and
/// checks that every port is open and named as `portolan detect` named it: in the JSON
/// lines (protocol, product, version, `unauthenticated`, and where the want names its
/// transport, `tls`, `starttls` and `cleartext`) and in the nmap XML (`--xml-out`).
pub fn check_scan(bed: &str, tb: &Testbed, wants: &[Want], detected: &HashMap<String, Value>) {
    // address -> (TCP ports, UDP ports), each with its want
    type Ports<'a> = Vec<(String, &'a Want)>;
    let mut hosts: BTreeMap<String, (Ports<'_>, Ports<'_>)> = BTreeMap::new();
    for w in wants {
        let (ip, t) = address(tb, w.target);
        let e = hosts.entry(ip).or_default();
        match t.strip_suffix("/udp") {
            Some(p) => e.1.push((p.to_string(), w)),
            None => e.0.push((t, w)),
        }
    }
    let mut failures = Vec::new();
    for (ip, (tcp, udp)) in &hosts {
        let list = |v: &Ports<'_>| {
            v.iter()
                .map(|(p, _)| p.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut spec = Vec::new();
        if !tcp.is_empty() {
            spec.push(format!("T:{}", list(tcp)));
        }
        if !udp.is_empty() {
            spec.push(format!("U:{}", list(udp)));
        }
        let spec = spec.join(",");
        let xml_path = tb.dir().join(format!("scan-{ip}.xml"));
        let xml_arg = xml_path.to_str().expect("a UTF-8 temporary directory");
        let mut args = vec!["scan", "-Pn", "-sT"];
        if !udp.is_empty() {
            args.push("-sU");
        }
        args.extend(["--detect", "--json", "--timeout", "2s", "-p", &spec]);
        args.extend(["--xml-out", xml_arg, ip]);
        let stdout = in_scanner(tb, &args);
        let xml = std::fs::read_to_string(&xml_path)
            .unwrap_or_else(|e| panic!("{}: {e}", xml_path.display()));
        let mut scanned: HashMap<String, Value> = HashMap::new();
        for l in stdout.lines() {
            let v: Value = serde_json::from_str(l).expect("a JSON line");
            if v["type"] == "port" {
                let key = match v["protocol"].as_str() {
                    Some("udp") => format!("{}/udp", v["port"]),
                    _ => v["port"].to_string(),
                };
                scanned.insert(key, v);
            }
        }
        for (port, w) in tcp.iter().chain(udp) {
            let udp = w.target.ends_with("/udp");
            let key = if udp {
                format!("{port}/udp")
            } else {
                port.clone()
            };
            let t = format!("{ip}:{key}");
            let want = &detected[w.target];
            match xml_service(&xml, if udp { "udp" } else { "tcp" }, port) {
                None => failures.push(format!("XML {t}: no <port>")),
                Some(service) => {
                    let bad = xml_faults(w, want, &service);
                    if !bad.is_empty() {
                        failures.push(format!("XML {t}: {} ({service:?})", bad.join("; ")));
                    }
                }
            }
            let Some(v) = scanned.get(&key) else {
                failures.push(format!("scan {t}: no port record"));
                continue;
            };
            if v["state"] != "open" {
                failures.push(format!("scan {t}: state {}, want open", v["state"]));
            }
            let got = &v["detected"];
            let mut fields = vec!["protocol", "product", "version", "unauthenticated"];
            if w.transport.is_some() {
                fields.extend(["tls", "starttls", "cleartext"]);
            }
            for field in fields {
                if got[field] != want[field] {
                    failures.push(format!(
                        "scan {t}: {field} {}, detect named {}",
                        got[field], want[field]
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{bed}, scan --detect named otherwise than detect:\n{}",
        failures.join("\n")
    );
}

#[test]
fn testbed_check_xml_names_each_wrong_field() {
    let xml = "<ports><port protocol=\"tcp\" portid=\"443\"><state state=\"open\"/>\
        <service name=\"http\" product=\"A &amp; B\" version=\"1.2\" tunnel=\"ssl\" \
        method=\"probed\" conf=\"10\"/></port>\n\
        <port protocol=\"udp\" portid=\"53\"><state state=\"open\"/>\
        <service name=\"domain\" method=\"table\" conf=\"3\"/></port></ports>";
    let s = xml_service(xml, "tcp", "443").expect("port 443");
    assert_eq!(s["product"], "A & B");
    assert_eq!(s["tunnel"], "ssl");
    assert!(xml_service(xml, "tcp", "53").is_none());
    let tls = serde_json::json!({"version": "1.2", "tls": {"subject": "CN=x"}, "starttls": false});
    let w = want("443", "http", Some("A & B")).tls("x");
    assert!(xml_faults(&w, &tls, &s).is_empty());
    // The same port, named otherwise than detect named it.
    let w = want("443", "http", Some("C"));
    let plain = serde_json::json!({"version": "1.3", "tls": null, "starttls": false});
    let bad = xml_faults(&w, &plain, &s).join("; ");
    for field in ["product", "version", "tunnel"] {
        assert!(bad.contains(field), "{field} not named: {bad}");
    }
    let udp = xml_service(xml, "udp", "53").expect("port 53/udp");
    let bad = xml_faults(&want("53/udp", "dns", None), &plain, &udp).join("; ");
    assert!(bad.contains("method"), "{bad}");
}
