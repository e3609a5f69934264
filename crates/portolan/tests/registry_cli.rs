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
    run_plain(&[args, &["--services", "etc-services"]].concat())
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

/// Runs portolan in the fixtures directory with exactly `args`.
fn run_plain(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .args(args)
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

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("JSON Lines"))
        .collect()
}

/// `lookup 49152 --json` printed nothing and exited 1: IANA lists no row for the dynamic
/// range, while `lookup 4/tcp` gives an unassigned entry with its category.
#[test]
fn lookup_dynamic_port_gives_an_entry() {
    for port in ["49152", "50000", "65535"] {
        let (code, stdout, stderr) = run(&["lookup", "--json", port]);
        assert_eq!(code, 0, "{port}: {stderr}");
        let entries = json_lines(&stdout);
        let protos: Vec<&str> = entries
            .iter()
            .map(|e| e["protocol"].as_str().unwrap())
            .collect();
        assert_eq!(protos, ["tcp", "udp"], "{port}");
        for e in &entries {
            assert_eq!(e["category"], "dynamic");
            assert_eq!(e["category_iana"], "dynamic/private");
            assert_eq!(e["status"], "never-assigned");
            assert_eq!(e["name"], serde_json::Value::Null);
            assert_eq!(
                (e["port"].as_u64(), e["last_port"].as_u64()),
                (Some(49152), Some(65535))
            );
        }
    }
    // A protocol narrows it; a range of dynamic ports answers once per protocol.
    let (code, stdout, _) = run(&["lookup", "--json", "50000/udp"]);
    assert_eq!(code, 0);
    assert_eq!(json_lines(&stdout).len(), 1);
    let (code, stdout, _) = run(&["lookup", "--json", "60000-60100"]);
    assert_eq!(code, 0);
    assert_eq!(json_lines(&stdout).len(), 2);
    // The last registered port keeps IANA's own row.
    let (_, stdout, _) = run(&["lookup", "--json", "49151"]);
    assert_eq!(json_lines(&stdout)[0]["status"], "reserved");
}

/// Merged with a services file that lists x11 at 6000/tcp alone, `lookup x11` showed tcp
/// 6000 only: IANA's 6000-6063 range was dropped.
#[test]
fn lookup_x11_keeps_the_iana_range() {
    let (code, stdout, stderr) =
        run_plain(&["lookup", "--json", "x11/tcp", "--services", "x11-services"]);
    assert_eq!(code, 0, "{stderr}");
    let got: Vec<(u64, u64, String)> = json_lines(&stdout)
        .iter()
        .map(|e| {
            (
                e["port"].as_u64().unwrap(),
                e["last_port"].as_u64().unwrap(),
                e["source"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (6000, 6000, "x11-services".to_string()),
            (6001, 6063, "iana".to_string())
        ]
    );
}

/// `services --format etc-services` over IANA and a services file that lists x11 at 6000
/// alone wrote no 6008-6063/tcp lines, so glibc found nothing for `6010/tcp`. Checked
/// with glibc itself: the output bind-mounted over /etc/services in a mount namespace of
/// its own.
#[test]
fn etc_services_output_has_every_x11_port() {
    let name = "etc_services_output_has_every_x11_port";
    if !portolan_testkit::require_root(name) || !portolan_testkit::require_tool(name, "unshare") {
        return;
    }
    let (code, stdout, stderr) = run_plain(&[
        "services",
        "--format",
        "etc-services",
        "--services",
        "x11-services",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let path = std::env::temp_dir().join(format!("portolan-x11-services-{}", std::process::id()));
    std::fs::write(&path, &stdout).expect("write the generated file");
    let keys: Vec<String> = (6000..=6063).map(|p| format!("{p}/tcp")).collect();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(r#"mount --bind "$1" /etc/services && shift && exec getent services "$@""#)
        .arg("sh")
        .arg(&path)
        .args(&keys)
        .output()
        .expect("run unshare");
    let _ = std::fs::remove_file(&path);
    let got: Vec<String> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(got.len(), keys.len(), "glibc answered {got:?}");
    // The file's own lines win where it has them (first match, as glibc), IANA's x11
    // answers for the rest.
    assert_eq!(got[0], "x11 6000/tcp x11-0");
    assert_eq!(got[1], "x11-1 6001/tcp");
    assert_eq!(got[10], "x11 6010/tcp");
    assert_eq!(got[63], "x11 6063/tcp");
}

/// `explain NOSUCH` printed a page of advice about a service that does not exist.
#[test]
fn explain_unknown_name_is_an_error_with_suggestions() {
    let (code, stdout, stderr) = run(&["explain", "telnt"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("no port or service is named 'telnt'") && stderr.contains("telnet"),
        "{stderr}"
    );
    let (code, stdout, stderr) = run(&["explain", "--json", "nosuchservicexyz"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
}

/// `explain 50000` sent the user to `ss -tulpn`; portolan's own `ls -p` is the answer.
#[test]
fn explain_port_points_at_portolan_ls() {
    let (code, stdout, stderr) = run(&["explain", "--json", "50000"]);
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let advice = json["advice"].as_str().unwrap();
    assert!(advice.contains("`portolan ls -p 50000`"), "{advice}");
    assert!(!advice.contains("ss -tulpn"), "{advice}");
    assert_eq!(json["category"], "dynamic");
}
