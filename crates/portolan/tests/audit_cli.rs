//! `portolan policy`, `portolan firewall` and `portolan audit` from the outside: exit
//! codes, messages, and `firewall --apply` for real inside a network namespace.

use std::process::{Command, Output, Stdio};

use portolan_testkit::{Netns, output_with_input, require_root, require_tool};

fn portolan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portolan"))
}

fn run(args: &[&str]) -> Output {
    portolan().args(args).stdin(Stdio::null()).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn tmp(name: &str, content: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("pa-cli-{}-{name}", std::process::id()));
    std::fs::write(&p, content).unwrap();
    p
}

#[test]
fn policy_show_lists_and_prints_profiles() {
    let out = run(&["policy", "show"]);
    assert!(out.status.success());
    let s = text(&out.stdout);
    for p in [
        "mail-server",
        "web-server",
        "dns-server",
        "file-server",
        "database",
        "ssh-only",
        "workstation",
        "bastion",
    ] {
        assert!(s.contains(p), "{p} missing:\n{s}");
    }
    let out = run(&["policy", "show", "bastion"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with("# portolan policy: ssh-only"));
    let out = run(&["policy", "show", "mail-server", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "mail-server");
    let out = run(&["policy", "show", "mailserver"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("did you mean 'mail-server'"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn policy_check_reports_file_line_and_key() {
    let good = tmp("good.toml", "[[allow]]\nservice = \"ssh\"\n");
    let out = run(&["policy", "check", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(": ok: policy"));
    let bad = tmp(
        "bad.toml",
        "[[allow]]\nservice = \"ssh\"\n\n[[allow]]\nservice = \"imapss\"\n",
    );
    let out = run(&["policy", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:5:11: allow[2].service: unknown service 'imapss'",
            bad.display()
        )),
        "{err}"
    );
    let out = run(&["policy", "check", "--json", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["errors"][0]["line"], 5);
    let out = run(&["policy", "check", "/nonexistent/policy.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read policy /nonexistent/policy.toml"));
    let _ = std::fs::remove_file(good);
    let _ = std::fs::remove_file(bad);
}

#[test]
fn firewall_prints_rulesets() {
    let out = run(&["firewall", "--profile", "mail-server"]);
    assert!(out.status.success());
    let s = text(&out.stdout);
    assert!(
        s.contains("policy drop;") && s.contains("tcp dport 25 accept"),
        "{s}"
    );
    let out = run(&["firewall", "--profile", "web", "--format", "ufw"]);
    assert!(text(&out.stdout).contains("ufw allow proto tcp from any to any port 443"));
    let out = run(&["firewall", "--profile", "dns", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["policy"], "dns-server");
    let out = run(&["firewall"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--policy FILE or --profile NAME"));
    let out = run(&[
        "firewall",
        "--profile",
        "web",
        "--format",
        "ufw",
        "--apply",
        "--yes",
    ]);
    assert_eq!(out.status.code(), Some(2));
    // The SSH session that runs it is kept, and a policy without SSH is warned about.
    let out = portolan()
        .args(["firewall", "--profile", "workstation"])
        .env("SSH_CONNECTION", "198.18.9.9 50000 198.18.0.2 22")
        .output()
        .unwrap();
    assert!(text(&out.stdout).contains("ip saddr 198.18.9.9 tcp dport 22 accept"));
    assert!(text(&out.stderr).contains("does not allow SSH on port 22"));
}

fn apply_in(ns: &Netns, state: &std::path::Path, extra: &[&str], stdin: &str) -> Output {
    output_with_input(
        ns.command(env!("CARGO_BIN_EXE_portolan"))
            .args(["firewall", "--profile", "ssh-only", "--apply"])
            .args(extra)
            .env("SSH_CONNECTION", "198.18.7.7 40000 198.18.0.2 2222")
            .env("PORTOLAN_STATE_DIR", state),
        stdin.as_bytes(),
    )
    .unwrap()
}

#[test]
fn firewall_apply_in_a_namespace() {
    if !require_root("firewall_apply_in_a_namespace") || !require_tool("nft", "nft") {
        return;
    }
    let ns = Netns::new("pa").unwrap();
    let list = || ns.exec("nft", &["list", "ruleset"]).unwrap();
    let before = list();
    let state = std::env::temp_dir().join(format!("pa-state-{}", std::process::id()));
    std::fs::create_dir_all(&state).unwrap();
    let saved = || std::fs::read_dir(&state).unwrap().count();

    // Not confirmed on a pipe without --yes: a dry run that changes nothing.
    let out = apply_in(&ns, &state, &[], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("dry run"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(list(), before);

    // Applied, then not confirmed (end of input): rolled back, exit 1.
    let out = apply_in(&ns, &state, &["--yes", "--confirm-timeout", "20"], "");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("rolled back"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(list(), before);
    assert_eq!(saved(), 0, "a rollback leaves no saved copies");

    // Applied and confirmed: kept, with the SSH session's own rule.
    let out = apply_in(&ns, &state, &["--yes", "--confirm-timeout", "20"], "yes\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let now = list();
    assert!(now.contains("table inet portolan"), "{now}");
    assert!(
        now.contains("ip saddr 198.18.7.7 tcp dport 2222 accept"),
        "{now}"
    );
    assert!(now.contains("tcp dport 22 accept"), "{now}");
    // The previous ruleset is kept for the user, and restores the namespace as it was.
    assert_eq!(saved(), 2);
    let rollback = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("rollback"))
        .unwrap();
    ns.exec("nft", &["-f", rollback.to_str().unwrap()]).unwrap();
    assert_eq!(list(), before);
    let _ = std::fs::remove_dir_all(&state);
}

/// Issue 10 item 11: `policy check a.toml b.toml` checks every file and reports every
/// error of each, and exits 2 when any is bad.
#[test]
fn policy_check_reports_every_error_in_every_file() {
    let a = tmp("every-a.toml", "[[allow]]\nservice = \"smpt\"\n");
    let b = tmp(
        "every-b.toml",
        "[[allow]]\nservice = \"ssh\"\nbind = \"nowhere\"\nfrom = [\"192.0.2.0/33\"]\n",
    );
    let good = tmp("every-good.toml", "[[allow]]\nservice = \"ssh\"\n");
    let files = [
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        good.to_str().unwrap(),
    ];
    let out = run(&[&["policy", "check"][..], &files].concat());
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("unknown service 'smpt'"), "{err}");
    assert!(
        err.contains("allow[1].bind") && err.contains("allow[1].from"),
        "{err}"
    );
    assert!(
        text(&out.stdout).contains(": ok: policy"),
        "{}",
        text(&out.stdout)
    );
    let out = run(&[&["policy", "check", "--json"][..], &files].concat());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stdout).lines().count(),
        3,
        "{}",
        text(&out.stdout)
    );
    for p in [a, b, good] {
        let _ = std::fs::remove_file(p);
    }
}

/// Issue 10 items 4 and 5: `--scan` takes several targets or none (with --netns), and its
/// bounds are checked before anything is scanned.
#[test]
fn audit_scan_arguments_are_checked() {
    let out = run(&["audit", "--scan"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--netns"),
        "{}",
        text(&out.stderr)
    );
    // More than one host's addresses.
    let out = run(&["audit", "--scan", "198.18.0.0/24"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("addresses of one host"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["audit", "--scan", "198.18.0.2,no-such-host.invalid"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = run(&[
        "audit",
        "--scan",
        "127.0.0.1",
        "--scan-ports",
        "T:nosuchservice",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--scan-ports T:nosuchservice"),
        "{}",
        text(&out.stderr)
    );
    for bad in [
        &["audit", "--scan-ports", "22"][..],
        &["audit", "--rate", "10"],
        &["audit", "--scan", "127.0.0.1", "--rate", "0"],
        &["audit", "--scan", "127.0.0.1", "--timeout", "soon"],
    ] {
        let out = run(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out.stderr));
    }
}
