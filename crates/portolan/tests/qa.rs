//! Regressions found by using portolan as a sysadmin would, each named after its bug.

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Output, Stdio};

fn portolan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portolan"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `cmd` with stdin on /dev/null, asserts that it failed with exit 2 and wrote
/// nothing to stdout, and returns its stderr.
fn error_of(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().expect("run portolan");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{cmd:?}: {err}");
    assert!(out.stdout.is_empty(), "{cmd:?}: {}", text(&out.stdout));
    err
}

/// Runs portolan with stdout a pipe whose reading end is already closed, so that every
/// write fails with EPIPE, as in `portolan ... | head -0`.
fn run_into_closed_pipe(args: &[&str]) -> Output {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: pipe(2) just returned these two descriptors, owned by nobody else.
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(reader);
    portolan()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("run portolan")
}

fn assert_quiet(args: &[&str]) {
    let out = run_into_closed_pipe(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "portolan {}: stderr: {}",
        args.join(" "),
        text(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "portolan {}: stderr: {}",
        args.join(" "),
        text(&out.stderr)
    );
}

#[test]
fn broken_pipe_in_json_output_is_quiet() {
    // serde_json wraps the EPIPE in its own error type.
    assert_quiet(&["audit", "--format", "sarif"]);
    assert_quiet(&["policy", "show", "mail-server", "--json"]);
    assert_quiet(&["explain", "--json", "23"]);
}

#[test]
fn broken_pipe_in_completions_does_not_panic() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        assert_quiet(&["completions", shell]);
    }
}

fn tmp(name: &str, content: &[u8]) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("pq-qa-{}-{name}", std::process::id()));
    std::fs::write(&p, content).expect("write fixture");
    p
}

#[test]
fn unreadable_signature_file_names_the_cause_once() {
    let err = error_of(portolan().args([
        "detect",
        "--signatures",
        "/nonexistent/pq.sigs",
        "127.0.0.1:1",
    ]));
    assert!(err.contains("/nonexistent/pq.sigs"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn bad_line_in_target_list_names_file_and_line() {
    let list = tmp("targets", b"127.0.0.1\n# a comment\n127.0.0.2 300.1.1.1\n");
    let err = error_of(
        portolan()
            .args(["scan", "-sT", "-p", "1", "-iL"])
            .arg(&list),
    );
    assert!(
        err.contains(&format!("{}:3: invalid target '300.1.1.1'", list.display())),
        "{err}"
    );

    let list = tmp("targets-latin1", b"127.0.0.1\nh\xf4te\n");
    let err = error_of(
        portolan()
            .args(["scan", "-sT", "-p", "1", "-iL"])
            .arg(&list),
    );
    assert!(
        err.contains(&format!("{}:2: not valid UTF-8", list.display())),
        "{err}"
    );
}

#[test]
fn man_pages_of_subcommands_exist() {
    // portolan(1) lists portolan-audit(1) and friends under SUBCOMMANDS: each must exist.
    let top = portolan().arg("man").output().expect("run portolan");
    assert!(top.status.success());
    assert!(text(&top.stdout).contains("portolan\\-audit(1)"));
    let out = portolan()
        .args(["man", "audit"])
        .output()
        .expect("run portolan");
    let page = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(page.contains(".TH portolan-audit 1"), "{page}");
    assert!(page.contains("fail\\-on"), "{page}");
    let out = portolan()
        .args(["man", "policy", "check"])
        .output()
        .expect("run portolan");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(".TH portolan-policy-check 1"));
    let out = portolan()
        .args(["man", "nosuch"])
        .output()
        .expect("run portolan");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("'nosuch'"),
        "{}",
        text(&out.stderr)
    );
}

/// portolan with its address space capped (2 GiB), so that reading an endless input
/// fails fast instead of eating the machine's memory.
fn capped(args: &[&str]) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = portolan();
    cmd.args(args);
    // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 2 << 30,
                rlim_max: 2 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

#[test]
fn endless_input_files_are_refused_not_read_into_memory() {
    // /dev/zero stands for a FIFO or `<(yes ...)` that never ends.
    for args in [
        &["policy", "check", "/dev/zero"][..],
        &["audit", "--policy", "/dev/zero"],
        &["firewall", "--policy", "/dev/zero"],
        &["detect", "--signatures", "/dev/zero", "127.0.0.1:1"],
        &["scan", "-sT", "-p", "1", "-iL", "/dev/zero"],
    ] {
        let err = error_of(&mut capped(args));
        assert!(
            err.contains("/dev/zero") && err.contains("larger than"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn non_utf8_policy_file_names_the_line() {
    let policy = tmp(
        "latin1.toml",
        b"[[allow]]\nservice = \"ssh\"\ncomment = \"caf\xe9\"\n",
    );
    let err = error_of(portolan().args(["policy", "check"]).arg(&policy));
    assert!(
        err.contains(&format!("{}:3: not valid UTF-8", policy.display())),
        "{err}"
    );
}

#[test]
fn non_utf8_signature_file_names_the_line() {
    let sigs = tmp("latin1.sigs", b"# mine\nssh \"caf\xe9\" - /x/\n");
    let err = error_of(
        portolan()
            .args(["detect", "--signatures"])
            .arg(&sigs)
            .arg("127.0.0.1:1"),
    );
    assert!(
        err.contains(&format!("{}:2: not valid UTF-8", sigs.display())),
        "{err}"
    );
}

#[test]
fn ls_that_matches_nothing_says_so() {
    // Exit 1 with an empty screen left the user guessing whether it ran at all.
    let out = portolan()
        .args(["ls", "--process", "pq-no-such-process"])
        .output()
        .expect("run portolan");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("no listening socket matches"),
        "{}",
        text(&out.stderr)
    );
    // Machine formats stay as they are: an empty array, a header line.
    let out = portolan()
        .args(["ls", "--process", "pq-no-such-process", "--json"])
        .output()
        .expect("run portolan");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout).trim(), "[]");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn udp_port_zero_is_a_clear_error_not_a_failed_send() {
    // The kernel refuses to send to port 0; the scan died with "send: Invalid argument".
    let err = error_of(portolan().args(["scan", "-sU", "-Pn", "-p", "0,53", "127.0.0.1"]));
    assert!(err.contains("UDP port 0"), "{err}");
    // TCP port 0 can be probed, and still is.
    let out = portolan()
        .args(["scan", "-sT", "-Pn", "-p", "0", "127.0.0.1"])
        .output()
        .expect("run portolan");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("0/tcp"), "{}", text(&out.stdout));
}

#[test]
fn scan_of_a_subnet_with_its_broadcast_address_does_not_abort() {
    // `scan 198.18.0.0/24` covers 198.18.0.255, the link's broadcast address: the SYN and
    // UDP engines died on it ("no route or source address ... Permission denied").
    use portolan_testkit::{Pair, require_root, require_tool};
    let test = "scan_of_a_subnet_with_its_broadcast_address_does_not_abort";
    if !require_root(test) || !require_tool(test, "ip") {
        return;
    }
    let pair = Pair::new("pqb").expect("namespaces");
    for mode in ["-sS", "-sU", "-sT"] {
        for ping in [&["-Pn"][..], &[]] {
            let out = pair
                .scanner
                .command(env!("CARGO_BIN_EXE_portolan"))
                .args(["scan", mode, "-p", "22", "--max-retries", "0"])
                .args(ping)
                .arg("198.18.0.254-255")
                .output()
                .expect("run portolan");
            let err = text(&out.stderr);
            assert_ne!(out.status.code(), Some(2), "{mode} {ping:?}: {err}");
            assert!(err.is_empty(), "{mode} {ping:?}: {err}");
        }
    }
}

#[test]
fn xml_out_dash_writes_xml_to_stdout() {
    // nmap's `-oX -` is standard output; portolan created a file named "-".
    let dir = std::env::temp_dir().join(format!("pq-qa-{}-xmlout", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = portolan()
        .args(["scan", "-sT", "-Pn", "-p", "1", "-oX", "-", "127.0.0.1"])
        .current_dir(&dir)
        .output()
        .expect("run portolan");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(stdout.starts_with("<?xml"), "{stdout}");
    assert!(
        stdout.contains("<port protocol=\"tcp\" portid=\"1\">"),
        "{stdout}"
    );
    assert!(!dir.join("-").exists(), "a file named '-' was created");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn policy_dash_means_standard_input_and_output() {
    // `policy init -o -` wrote a file named "-", and `policy check -` looked for one.
    let dir = std::env::temp_dir().join(format!("pq-qa-{}-policydash", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = portolan()
        .args(["policy", "init", "-o", "-"])
        .current_dir(&dir)
        .output()
        .expect("run portolan");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("forbid-cleartext"));
    assert!(!dir.join("-").exists(), "a file named '-' was created");
    for args in [&["policy", "check", "-"][..], &["audit", "--policy", "-"]] {
        let out = portolan_testkit::output_with_input(
            portolan().args(args).current_dir(&dir),
            b"[[allow]]\nservice = \"smpt\"\n",
        )
        .expect("run portolan");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("stdin:2:11: allow[1].service: unknown service 'smpt'"),
            "{args:?}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn firewall_remediation_command_works_on_a_host_without_a_filter_table() {
    // "drop it at the firewall: `nft add rule inet filter input tcp dport 23 drop`" failed
    // on any host whose ruleset has no `inet filter` table (No such file or directory).
    use portolan_testkit::{Netns, require_root, require_tool};
    let test = "firewall_remediation_command_works_on_a_host_without_a_filter_table";
    if !require_root(test) || !require_tool(test, "nft") || !require_tool(test, "python3") {
        return;
    }
    let mut ns = Netns::new("pqr").expect("namespace");
    ns.spawn(
        "python3",
        &[
            "-c",
            "import socket,time\ns=socket.socket()\ns.bind(('0.0.0.0',23))\ns.listen()\ntime.sleep(60)",
        ],
    )
    .expect("listener");
    let mut remediation = String::new();
    for _ in 0..50 {
        let out = portolan()
            .args(["audit", "--json", "--netns", ns.name()])
            .output()
            .expect("run portolan");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        if let Some(f) = v["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| f["rule"] == "cleartext-exposed" && f["port"] == 23)
        {
            remediation = f["remediation"]["text"]
                .as_str()
                .expect("remediation")
                .to_string();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let cmd = remediation
        .split('`')
        .find(|c| c.starts_with("nft "))
        .unwrap_or_else(|| panic!("no nft command in: {remediation}"));
    let out = ns
        .command("sh")
        .args(["-c", cmd])
        .output()
        .expect("run the remediation");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        text(&out.stderr)
    );
    let rules = ns.exec("nft", &["list", "ruleset"]).expect("nft list");
    assert!(rules.contains("tcp dport 23 drop"), "{rules}");
}

#[test]
fn exclude_that_leaves_nothing_says_so() {
    // It said "no targets to scan (give addresses, names, or -iL FILE)" although one was.
    let err = error_of(portolan().args([
        "scan",
        "-sT",
        "-p",
        "1",
        "127.0.0.1",
        "--exclude",
        "127.0.0.0/8",
    ]));
    assert!(err.contains("--exclude"), "{err}");
}

#[test]
fn broken_pipe_in_json_lines_output_is_quiet() {
    // `report::json::line` wraps serde_json's error in `io::Error::other`, whose
    // `source()` skips it: the EPIPE was reported as an error, exit 2.
    assert_quiet(&["services", "--json"]);
    assert_quiet(&["search", "--json", "web"]);
    assert_quiet(&["lookup", "--json", "22"]);
}

/// Runs portolan with stdout on /dev/full, where every write fails with ENOSPC.
fn run_into_full_device(args: &[&str]) -> Output {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    portolan()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .output()
        .expect("run portolan")
}

#[test]
fn full_stdout_is_an_error_naming_the_output() {
    // `--help` and `--version` exited 0 with nothing written; other commands said only
    // "No space left on device", not what could not be written.
    for args in [
        &["--help"][..],
        &["--version"],
        &["ls", "--help"],
        &["services"],
        &["services", "--json"],
        &["policy", "show", "mail-server"],
    ] {
        let out = run_into_full_device(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with("portolan: error: cannot write the output: ")
                && err.contains("No space left on device")
                && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn control_characters_from_input_files_are_escaped_in_errors() {
    // An nmap XML file of junk was quoted raw in the error: its escape sequences drove
    // the terminal.
    let file = tmp("junk.xml", b"<\x1b[2J\x1b]0;pwned\x07>");
    let db = tmp("junk.db", b"");
    let err = error_of(
        portolan()
            .args(["record", "--import"])
            .arg(&file)
            .arg("--db")
            .arg(&db),
    );
    assert!(err.contains(&*file.to_string_lossy()), "{err}");
    assert!(
        !err.contains('\x1b') && !err.contains('\x07'),
        "raw control characters: {err:?}"
    );
    assert!(err.contains("\\x1b[2J"), "{err}");
    let _ = std::fs::remove_file(file);
    let _ = std::fs::remove_file(db);
}

#[test]
fn serve_with_a_missing_netns_exits_2_at_start() {
    // It started serving, and every scrape said only that the collector was down.
    let mut child = portolan()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--netns",
            "portolan-qa-no-such-namespace",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run portolan");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("portolan serve with a missing --netns is still running after 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
        .expect("read stderr");
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("no network namespace named 'portolan-qa-no-such-namespace'"),
        "{err}"
    );
}

#[test]
fn huge_sparse_input_files_are_refused_by_their_size() {
    // A 1 GiB sparse file: refused with the file named, exit 2, in a capped process.
    let path = std::env::temp_dir().join(format!("pq-qa-{}-huge", std::process::id()));
    let f = std::fs::File::create(&path).expect("create");
    f.set_len(1 << 30).expect("make it sparse");
    drop(f);
    let p = path.to_str().expect("utf-8 temp path");
    for args in [
        &["lookup", "--services", p, "22"][..],
        &["policy", "check", p],
        &["diff", p, p],
    ] {
        let err = error_of(&mut capped(args));
        assert!(
            err.contains(p) && err.contains("larger than"),
            "{args:?}: {err}"
        );
    }
    let _ = std::fs::remove_file(path);
}

#[test]
fn empty_policy_file_is_an_error_not_a_drop_everything_firewall() {
    // `> p.toml` gave a policy "p" that allows nothing; `firewall` wrote a ruleset that
    // drops every inbound connection from it.
    let file = tmp("empty.toml", b"");
    for cmd in ["firewall", "audit"] {
        let err = error_of(portolan().args([cmd, "--policy"]).arg(&file));
        assert!(
            err.contains(&*file.to_string_lossy()) && err.contains("is empty"),
            "{cmd}: {err}"
        );
    }
    let _ = std::fs::remove_file(file);
}

#[test]
fn empty_process_name_is_a_usage_error_not_an_empty_match() {
    // `history --process ''` said "Nothing recorded matches." and exited 1.
    for args in [&["history", "--process", ""][..], &["ls", "--process", ""]] {
        let err = error_of(portolan().args(args));
        assert!(err.contains("--process"), "{args:?}: {err}");
    }
}

#[test]
fn nonsense_in_numeric_flags_names_the_flag_and_what_it_takes() {
    // `scan --rate -1` got clap's "unexpected argument '-1' found" (as if -1 were a flag),
    // and `--rate nan`, `--seed junk` "invalid digit found in string".
    let rate = "want a whole number of packets per second, from 1 to 4294967295";
    let duration = "from 1ms to 1h";
    let shard = "write I/N with 1 <= I <= N <= 1048576";
    let scan = |flag| vec!["scan", flag, "VALUE", "127.0.0.1"];
    // (the command line, VALUE standing for the value; what clap names; what the error
    // must say the flag takes; the values)
    let cases: Vec<(Vec<&str>, &str, &str, &[&str])> = vec![
        (
            scan("--rate"),
            "'--rate <PPS>'",
            rate,
            &["-1", "0", "nan", "inf", "1.5", ""],
        ),
        (
            scan("--max-retries"),
            "'--max-retries <N>'",
            "want a whole number of retransmissions, from 0 to 50",
            &["-1", "51"],
        ),
        (
            scan("--shard"),
            "'--shard <I/N>'",
            shard,
            &["0/0", "3/2", "-1/2"],
        ),
        (
            scan("--seed"),
            "'--seed <N>'",
            "want a whole number, from 0 to 18446744073709551615",
            &["junk", "-1"],
        ),
        (
            scan("--top"),
            "'--top <N>'",
            "want a whole number of ports, from 1 to 65535",
            &["0", "-5"],
        ),
        (
            scan("--concurrency"),
            "'--concurrency <N>'",
            "from 1 to 1000000",
            &["-4"],
        ),
        (
            scan("--timeout"),
            "'--timeout <DURATION>'",
            duration,
            &["-1s", "0", "nan", "inf"],
        ),
        (
            vec!["detect", "--timeout", "VALUE", "127.0.0.1:1"],
            "'--timeout <DURATION>'",
            duration,
            &["-2"],
        ),
        (
            vec!["audit", "--scan", "127.0.0.1", "--rate", "VALUE"],
            "'--rate <N>'",
            rate,
            &["-3"],
        ),
        (
            vec!["audit", "--scan", "127.0.0.1", "--timeout", "VALUE"],
            "'--timeout <DURATION>'",
            duration,
            &["-1"],
        ),
        (
            vec!["watch", "--interval", "VALUE"],
            "'--interval <DURATION>'",
            duration,
            &["-1s"],
        ),
        (
            vec!["serve", "--min-interval", "VALUE"],
            "'--min-interval <DURATION>'",
            duration,
            &["nan"],
        ),
        (
            vec!["firewall", "--apply", "--confirm-timeout", "VALUE"],
            "'--confirm-timeout <DURATION>'",
            "0, or whole seconds up to 1h",
            &["-1"],
        ),
        (
            vec!["history", "prune", "--keep", "VALUE"],
            "'--keep <DURATION>'",
            "expected a number and a unit",
            &["-1d"],
        ),
        (
            vec!["search", "--limit", "VALUE", "mail"],
            "'--limit <N>'",
            "from 0 to",
            &["-1"],
        ),
    ];
    for (line, flag, takes, values) in &cases {
        for value in *values {
            let args: Vec<&str> = line
                .iter()
                .map(|a| if *a == "VALUE" { *value } else { *a })
                .collect();
            let err = error_of(portolan().args(&args));
            assert!(err.contains(flag) && err.contains(takes), "{args:?}: {err}");
        }
    }
}

#[test]
fn non_utf8_argument_does_not_panic_the_xml_or_the_record() {
    // The XML's args, and the command a recorded run keeps, came from std::env::args,
    // which panics on an argument that is not UTF-8 (here a file name).
    use std::os::unix::ffi::OsStrExt;
    let dir = std::env::temp_dir().join(format!("portolan-qa-nonutf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let xml = dir.join(std::ffi::OsStr::from_bytes(b"scan-\xff.xml"));
    let out = portolan()
        .args(["scan", "-sT", "-p", "1", "--xml-out"])
        .arg(&xml)
        .arg("127.0.0.1")
        .output()
        .expect("run portolan");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc = std::fs::read_to_string(&xml).expect("the XML");
    assert!(doc.contains("scan-\u{fffd}.xml"), "{doc}");
    let db = dir.join(std::ffi::OsStr::from_bytes(b"history-\xff.db"));
    let out = portolan()
        .args(["ls", "--record", "--db"])
        .arg(&db)
        .output()
        .expect("run portolan");
    let err = text(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{err}");
    assert!(err.contains("recorded run"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
