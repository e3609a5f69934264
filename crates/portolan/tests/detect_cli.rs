//! `portolan detect` as a user runs it: exit codes, errors, JSON lines.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use portolan_testkit::peer::Peer;

fn portolan(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .args(args)
        .output()
        .expect("run portolan");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_target_is_a_usage_error() {
    let (code, _, err) = portolan(&["detect", "nohostport"]);
    assert_eq!(code, 2);
    assert!(err.contains("target 'nohostport'"), "{err}");
    let (code, _, err) = portolan(&["detect", "--timeout", "soon", "127.0.0.1:1"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid duration"), "{err}");
}

/// `detect` on a name that does not resolve exited 1 ("nothing identified") while `scan`
/// exits 2: an unresolvable name is bad input, and nothing is probed.
#[test]
fn unresolvable_name_is_an_input_error() {
    let (code, out, err) = portolan(&["detect", "127.0.0.1:1", "no-such-host.invalid:22"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("cannot resolve 'no-such-host.invalid'"),
        "{err}"
    );
    assert!(out.is_empty(), "{out}");
}

#[test]
fn bad_signature_file_names_file_and_line() {
    let dir = std::env::temp_dir().join(format!("portolan-sigs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.sigs");
    std::fs::write(&file, "# mine\nssh \"X\" - /(/\n").unwrap();
    let (code, _, err) = portolan(&[
        "detect",
        "--signatures",
        file.to_str().unwrap(),
        "127.0.0.1:1",
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 2);
    assert!(err.contains("bad.sigs:2: pattern"), "{err}");
}

#[test]
fn json_line_for_a_greeting_and_exit_1_for_nothing() {
    // Every connection (detection probes several at once) gets the greeting.
    let mut srv = Peer::tcp("127.0.0.1:0", |mut c, _| {
        let _ = c.write_all(b"SSH-2.0-dropbear_2022.83\r\n");
        let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
        let mut b = [0u8; 64];
        let _ = c.read(&mut b);
    })
    .unwrap();
    let target = srv.addr().to_string();
    let (code, out, err) = portolan(&["detect", "--json", "--timeout", "1s", &target]);
    srv.stop();
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["target"], target);
    assert_eq!(v["transport"], "tcp");
    assert_eq!(v["detected"]["protocol"], "ssh");
    assert_eq!(v["detected"]["product"], "Dropbear sshd");
    assert_eq!(v["detected"]["version"], "2022.83");

    // A closed port: nothing identified, exit 1, and the table says why.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = closed.local_addr().unwrap().to_string();
    drop(closed);
    let (code, out, _) = portolan(&["detect", &target]);
    assert_eq!(code, 1);
    assert!(out.starts_with("TARGET"), "{out}");
    assert!(out.contains("connection refused"), "{out}");
}
