//! End to end, the second test bed (tests/testbed2/run.sh): other implementations of the
//! first bed's protocols, and the databases, caches, brokers, RPC, desktops and proxies
//! the audit judges. `portolan detect` must name, port by port, the protocol, every
//! product and version the wire reveals, and whether the service served an anonymous
//! client.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use portolan_testkit::{require_root, require_tool};
use serde_json::Value;

const UNPACKED: &str = "/opt/portolan-testbed2/root/usr/sbin";

struct Testbed {
    dir: PathBuf,
    script: PathBuf,
}

impl Testbed {
    fn start() -> Testbed {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let script = root.join("tests/testbed2/run.sh");
        let dir = std::env::temp_dir().join(format!("portolan-testbed2-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let tb = Testbed { dir, script };
        let out = Command::new("bash")
            .arg(&tb.script)
            .arg("start")
            .arg(&tb.dir)
            .output()
            .expect("run the test bed script");
        assert!(
            out.status.success(),
            "test bed 2 failed to start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tb
    }

    fn env(&self, key: &str) -> String {
        let text = std::fs::read_to_string(self.dir.join("env")).expect("test bed env");
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} missing from the test bed env"))
            .to_string()
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What must be found on one port.
struct Want {
    /// `PORT`, `PORT/udp`, or `2:PORT` for the bed's second address.
    target: &'static str,
    protocol: &'static str,
    /// `Some(p)`: exactly p; `None`: the wire names none, so none may be claimed.
    product: Option<&'static str>,
    /// `Some("")`: any version; `Some(v)`: exactly v; `None`: none may be claimed.
    version: Option<String>,
    unauthenticated: Option<bool>,
}

fn want(target: &'static str, protocol: &'static str, product: Option<&'static str>) -> Want {
    Want {
        target,
        protocol,
        product,
        version: None,
        unauthenticated: None,
    }
}

impl Want {
    fn version(mut self, v: impl Into<String>) -> Want {
        self.version = Some(v.into());
        self
    }
    fn anonymous(mut self, served: bool) -> Want {
        self.unauthenticated = Some(served);
        self
    }
}

/// The version a program prints about itself: the text after `prefix`, made of letters,
/// digits and dots.
fn self_reported(program: &str, args: &[&str], prefix: &str) -> String {
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

    let tb = Testbed::start();
    let exim = self_reported(
        &format!("{UNPACKED}/exim4"),
        &["-C", tb.dir.join("exim.conf").to_str().unwrap(), "-bV"],
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

    let ns = tb.env("SCANNER_NS");
    let ip = tb.env("TARGET_IP");
    let ip2 = tb.env("TARGET2_IP");
    let targets: Vec<String> = wants
        .iter()
        .map(|w| match w.target.strip_prefix("2:") {
            Some(t) => format!("{ip2}:{t}"),
            None => format!("{ip}:{}", w.target),
        })
        .collect();
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
        "test bed 2, not identified as expected:\n{}",
        failures.join("\n")
    );
}
