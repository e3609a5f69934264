//! The registry commands, run as a user runs them: the built binary, its stdout, stderr
//! and exit code. A fixture services file (`--services etc-services`) keeps the output
//! the same on every machine.

use std::path::PathBuf;
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Runs portolan in the fixtures directory with `--services etc-services`, and returns
/// (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .args(args)
        .args(["--services", "etc-services"])
        .current_dir(fixtures())
        .output()
        .expect("run portolan");
    let text = |b: Vec<u8>| String::from_utf8(b).expect("utf-8 output");
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}

fn snapshot(name: &str, args: &[&str]) {
    let (code, stdout, stderr) = run(args);
    let shown = format!(
        "$ portolan {}\nexit: {code}\n--- stderr\n{stderr}--- stdout\n{stdout}",
        args.join(" ")
    );
    insta::assert_snapshot!(name, shown);
}

#[test]
fn lookup_table() {
    snapshot(
        "lookup_table",
        &[
            "lookup", "443", "53/udp", "whois++", "137-139", "6010/tcp", "4/tcp",
        ],
    );
}

#[test]
fn lookup_merges_and_disagrees() {
    // webmin is only in the file; myapp disagrees with IANA at 8080; imap2 agrees with
    // IANA's imap through its alias.
    snapshot(
        "lookup_merge",
        &["lookup", "webmin", "8080/tcp", "imap", "www", "1/ddp"],
    );
}

#[test]
fn lookup_json() {
    snapshot("lookup_json", &["lookup", "--json", "https/tcp", "ssmtp"]);
}

#[test]
fn lookup_csv() {
    snapshot("lookup_csv", &["lookup", "--format", "csv", "whoispp/tcp"]);
}

#[test]
fn lookup_exit_codes() {
    snapshot(
        "lookup_nothing",
        &["lookup", "22", "no-such-service", "50000"],
    );
    snapshot("lookup_bad_port", &["lookup", "22", "70000"]);
    snapshot("lookup_bad_proto", &["lookup", "53/icmp"]);
    snapshot("lookup_bad_range", &["lookup", "139-137"]);
}

#[test]
fn search() {
    snapshot("search_mail", &["search", "--limit", "12", "mail"]);
    snapshot(
        "search_json",
        &["search", "--json", "--limit", "2", "remote", "login"],
    );
    snapshot("search_nothing", &["search", "qqqzzz"]);
    snapshot("search_bad", &["search", "?!"]);
}

#[test]
fn services_system() {
    snapshot("services_system", &["services", "--source", "system"]);
    snapshot(
        "services_system_etc",
        &["services", "--source", "system", "--format", "etc-services"],
    );
}

#[test]
fn services_iana_sizes() {
    let (code, stdout, _) = run(&["services", "--source", "iana", "--format", "json"]);
    assert_eq!(code, 0);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON Lines"))
        .collect();
    // Every IANA row but the historic aliases (which are the aliases of their rows).
    assert_eq!(lines.len(), 14447 - 184);
    for field in [
        "name",
        "port",
        "last_port",
        "protocol",
        "description",
        "category",
        "source",
        "aliases",
        "reference",
    ] {
        assert!(lines[0].get(field).is_some(), "{field}");
    }
    let x11 = lines
        .iter()
        .find(|v| v["name"] == "x11" && v["protocol"] == "tcp")
        .expect("x11");
    assert_eq!(
        (x11["port"].as_u64(), x11["last_port"].as_u64()),
        (Some(6000), Some(6063))
    );

    let (code, stdout, _) = run(&["services", "--source", "all", "--format", "csv"]);
    assert_eq!(code, 0);
    assert!(
        stdout
            .starts_with("name,port,last_port,protocol,description,category,category_iana,source,")
    );
    assert!(
        stdout.contains("\nwebmin,10000,10000,tcp,,registered,user,etc-services,etc-services,")
    );
}

#[test]
fn explain() {
    snapshot("explain_telnet", &["explain", "23"]);
    snapshot("explain_redis", &["explain", "redis"]);
    snapshot("explain_dynamic", &["explain", "50000"]);
    snapshot("explain_snmp_json", &["explain", "--json", "161/udp"]);
    snapshot("explain_bad", &["explain", "99999"]);
}

/// `explain echo` advised "block 4" when the services file listed echo's AppleTalk
/// (ddp) port before its TCP and UDP ones: the advice must name an IP port.
#[test]
fn explain_name_prefers_ip_ports_over_ddp() {
    let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .args([
            "explain",
            "--json",
            "echo",
            "--services",
            "ddp-first-services",
        ])
        .current_dir(fixtures())
        .output()
        .expect("run portolan");
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["port"], 7, "{json}");
}

#[test]
fn broken_pipe_is_quiet() {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .args(["services", "--source", "iana"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = [0u8; 64];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut first)
        .expect("read");
    // Dropping stdout closes the pipe while portolan is still writing.
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
