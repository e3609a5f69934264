//! The oracle: for every entry of this machine's `/etc/services`, lookups by name and by
//! port (with and without a protocol) agree with glibc's `getent services`.

use std::process::Command;

use portolan_registry::services::{ServiceLine, ServicesFile, parse_services};
use portolan_registry::{Proto, Registry, SYSTEM_SERVICES, Source};

/// What getent printed for one key: name, port, protocol, aliases.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    name: String,
    port: u16,
    protocol: String,
    aliases: Vec<String>,
}

fn answer(l: &ServiceLine) -> Answer {
    Answer {
        name: l.name.clone(),
        port: l.port,
        protocol: l.protocol.clone(),
        aliases: l.aliases().map(String::from).collect(),
    }
}

fn parse_getent(line: &str) -> Answer {
    let mut f = line.split_whitespace();
    let name = f.next().expect("a name").to_string();
    let (port, protocol) = f
        .next()
        .expect("port/proto")
        .split_once('/')
        .expect("a slash");
    Answer {
        name,
        port: port.parse().expect("a port"),
        protocol: protocol.to_string(),
        aliases: f.map(String::from).collect(),
    }
}

/// Asks getent for every key at once; every key names an existing entry, so each one
/// prints exactly one line. On a mismatch, asks key by key to say which.
fn getent(keys: &[String]) -> Vec<Option<Answer>> {
    let out = Command::new("getent")
        .arg("services")
        .args(keys)
        .output()
        .expect("run getent");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() == keys.len() {
        return lines.into_iter().map(|l| Some(parse_getent(l))).collect();
    }
    keys.iter()
        .map(|k| {
            let out = Command::new("getent")
                .args(["services", k])
                .output()
                .expect("run getent");
            let text = String::from_utf8(out.stdout).expect("utf-8");
            text.lines().next().map(parse_getent)
        })
        .collect()
}

fn expect_all(keys: Vec<String>, ours: Vec<Option<Answer>>) {
    let theirs = getent(&keys);
    let mut bad = Vec::new();
    for ((k, o), t) in keys.iter().zip(&ours).zip(&theirs) {
        if o != t {
            bad.push(format!("{k}: portolan {o:?}, getent {t:?}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} disagreements:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

fn system_file() -> Option<ServicesFile> {
    if !portolan_testkit::require_tool("glibc_oracle", "getent") {
        return None;
    }
    let bytes = std::fs::read(SYSTEM_SERVICES).expect("CI installs netbase for /etc/services");
    let file = parse_services(&bytes);
    assert!(file.lines.len() > 50, "/etc/services looks empty");
    Some(file)
}

#[test]
fn by_name_agrees_with_getent() {
    let Some(file) = system_file() else { return };
    let mut keys = Vec::new();
    let mut ours = Vec::new();
    for l in &file.lines {
        for name in std::iter::once(l.name.as_str()).chain(l.aliases()) {
            keys.push(format!("{name}/{}", l.protocol));
            ours.push(file.by_name(name, Some(&l.protocol)).map(answer));
            keys.push(name.to_string());
            ours.push(file.by_name(name, None).map(answer));
        }
    }
    expect_all(keys, ours);
}

#[test]
fn by_port_agrees_with_getent() {
    let Some(file) = system_file() else { return };
    let mut keys = Vec::new();
    let mut ours = Vec::new();
    for l in &file.lines {
        keys.push(format!("{}/{}", l.port, l.protocol));
        ours.push(file.by_port(l.port, Some(&l.protocol)).map(answer));
        keys.push(l.port.to_string());
        ours.push(file.by_port(l.port, None).map(answer));
    }
    expect_all(keys, ours);
}

/// The merged view answers with the system's line first, as glibc would.
#[test]
fn merged_registry_agrees_with_getent() {
    let Some(file) = system_file() else { return };
    let reg = Registry::system().expect("read /etc/services");
    let mut keys = Vec::new();
    let mut ours = Vec::new();
    for l in &file.lines {
        let Ok(proto) = l.protocol.parse::<Proto>() else {
            continue;
        };
        let to_answer = |e: &portolan_registry::Entry<'_>| Answer {
            name: e.name.to_string(),
            port: e.ports.expect("a port").first,
            protocol: e.protocol.to_string(),
            aliases: e.aliases().map(String::from).collect(),
        };
        keys.push(format!("{}/{}", l.port, l.protocol));
        let first = reg
            .by_port(l.port, proto)
            .into_iter()
            .next()
            .expect("an entry");
        assert_eq!(first.source, Source::System);
        assert_eq!(reg.name_for(l.port, proto), Some(first.name));
        ours.push(Some(to_answer(&first)));
        keys.push(format!("{}/{}", l.name, l.protocol));
        let first = reg
            .by_name(&l.name)
            .into_iter()
            .find(|e| e.source == Source::System && e.protocol == l.protocol)
            .expect("the system entry");
        ours.push(Some(to_answer(&first)));
    }
    expect_all(keys, ours);
}
