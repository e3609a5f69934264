//! `portolan services --format etc-services` writes a file glibc reads: bind-mounted over
//! `/etc/services` in a private mount namespace, `getent services` answers from it
//! exactly as portolan's own parser of that file says (first match wins). Root only.

use std::io::Write;
use std::process::Command;

use portolan_registry::services::{ServiceLine, ServicesFile, parse_services};

/// One answer: name, port/proto, aliases.
fn show(l: &ServiceLine) -> String {
    let mut s = format!("{} {}/{}", l.name, l.port, l.protocol);
    for a in l.aliases() {
        s.push(' ');
        s.push_str(a);
    }
    s
}

fn generate(source: &str) -> (tempfile_path::TempPath, ServicesFile) {
    let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .args(["services", "--source", source, "--format", "etc-services"])
        .output()
        .expect("run portolan");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = tempfile_path::TempPath::new(&format!("etc-services-{source}"));
    std::fs::File::create(&path.0)
        .and_then(|mut f| f.write_all(&out.stdout))
        .expect("write the generated file");
    let parsed = parse_services(&out.stdout);
    assert!(parsed.warnings.is_empty(), "{:?}", &parsed.warnings[..1]);
    (path, parsed)
}

/// Runs `getent services KEYS...` with `file` bind-mounted over /etc/services, in a mount
/// namespace of its own (the host's /etc/services is never touched).
fn getent_with(file: &std::path::Path, keys: &[String]) -> Vec<String> {
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(r#"mount --bind "$1" /etc/services && shift && exec getent services "$@""#)
        .arg("sh")
        .arg(file)
        .args(keys)
        .output()
        .expect("run unshare");
    assert!(
        out.status.success() || out.status.code() == Some(2),
        "unshare/getent failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn check(source: &str) {
    let (path, file) = generate(source);
    assert!(file.lines.len() > 1000, "{} lines", file.lines.len());
    // A sample across the file, plus the odd names; every key names an existing entry,
    // so getent prints one line per key.
    let step = (file.lines.len() / 250).max(1);
    let mut sample: Vec<&ServiceLine> = file.lines.iter().step_by(step).collect();
    sample.extend(file.lines.iter().filter(|l| {
        [
            "whoispp", "sql-net", "x11", "flex-lm", "https", "http", "914c-g",
        ]
        .contains(&l.name.as_str())
            && l.port != 6001
    }));
    let mut keys = Vec::new();
    let mut want = Vec::new();
    for l in sample.into_iter().filter(|l| !l.name.contains('/')) {
        let answers = [
            (
                format!("{}/{}", l.name, l.protocol),
                file.by_name(&l.name, Some(&l.protocol)),
            ),
            (l.name.clone(), file.by_name(&l.name, None)),
            (
                format!("{}/{}", l.port, l.protocol),
                file.by_port(l.port, Some(&l.protocol)),
            ),
            (l.port.to_string(), file.by_port(l.port, None)),
        ];
        for (k, a) in answers {
            keys.push(k);
            want.push(show(a.expect("the line answers for itself")));
        }
        // getent's own command line splits a key at its first '/', so a name holding one
        // (IANA's historic `914c/g`) cannot be asked for through it.
        for a in l.aliases().filter(|a| !a.contains('/')) {
            keys.push(format!("{a}/{}", l.protocol));
            want.push(show(file.by_name(a, Some(&l.protocol)).expect("its alias")));
        }
    }
    let got = getent_with(&path.0, &keys);
    assert_eq!(
        got.len(),
        keys.len(),
        "getent answered {} of {} keys",
        got.len(),
        keys.len()
    );
    let bad: Vec<String> = keys
        .iter()
        .zip(want.iter().zip(&got))
        .filter(|(_, (w, g))| w != g)
        .map(|(k, (w, g))| format!("{k}: portolan '{w}', glibc '{g}'"))
        .collect();
    assert!(
        bad.is_empty(),
        "{} disagreements:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn glibc_reads_the_iana_file_back() {
    if !portolan_testkit::require_root("glibc_reads_the_iana_file_back")
        || !portolan_testkit::require_tool("glibc_reads_the_iana_file_back", "unshare")
    {
        return;
    }
    check("iana");
}

#[test]
fn glibc_reads_the_merged_file_back() {
    if !portolan_testkit::require_root("glibc_reads_the_merged_file_back")
        || !portolan_testkit::require_tool("glibc_reads_the_merged_file_back", "unshare")
    {
        return;
    }
    check("all");
}

/// A file in the temporary directory, removed on drop.
mod tempfile_path {
    pub struct TempPath(pub std::path::PathBuf);

    impl TempPath {
        pub fn new(stem: &str) -> Self {
            TempPath(std::env::temp_dir().join(format!("portolan-{stem}-{}", std::process::id())))
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}
