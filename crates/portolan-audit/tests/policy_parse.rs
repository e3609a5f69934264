//! The policy parser: error snapshots (file, line, column, key, message, snippet), and
//! property tests that it never panics and accepts what it should.

use portolan_audit::policy::Policy;
use portolan_registry::Registry;
use proptest::prelude::*;

fn err(text: &str) -> String {
    match Policy::parse(text, "policy.toml", Registry::embedded()) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn parser_errors() {
    let cases: &[(&str, &str)] = &[
        ("syntax", "[[allow]\nservice = \"smtp\"\n"),
        ("unterminated_string", "[[allow]]\nservice = \"smtp\n"),
        ("unknown_service", "[[allow]]\nservice = \"smpt\"\n"),
        (
            "unknown_service_in_list",
            "[[allow]]\nservice = [\"ssh\", \"imapss\"]\n",
        ),
        ("unknown_top_key", "nmae = \"x\"\n"),
        (
            "unknown_allow_key",
            "[[allow]]\nservice = \"ssh\"\nsource = [\"192.0.2.0/24\"]\n",
        ),
        ("missing_service", "[[allow]]\nbind = \"any\"\n"),
        ("port_without_protocol", "[[allow]]\nservice = \"8080\"\n"),
        ("bad_protocol", "[[allow]]\nservice = \"8080/tpc\"\n"),
        ("reversed_range", "[[allow]]\nservice = \"9000-8000/tcp\"\n"),
        ("bad_bind", "[[allow]]\nservice = \"ssh\"\nbind = \"lo\"\n"),
        (
            "wildcard_bind",
            "[[allow]]\nservice = \"ssh\"\nbind = \"0.0.0.0\"\n",
        ),
        (
            "bad_from",
            "[[allow]]\nservice = \"ssh\"\nfrom = [\"192.0.2.0/33\"]\n",
        ),
        ("wrong_type", "[[allow]]\nservice = 22\n"),
        ("allow_not_array", "[allow]\nservice = \"ssh\"\n"),
        (
            "required_not_allowed",
            "require = [\"smtp\"]\n[[allow]]\nservice = \"ssh\"\n",
        ),
        (
            "cleartext_conflict",
            "forbid-cleartext = \"all\"\n[[allow]]\nservice = \"telnet\"\n",
        ),
        (
            "exception_without_reason",
            "[[exception]]\nservice = \"8080/tcp\"\n",
        ),
        (
            "exception_bad_rule",
            "[[exception]]\nrule = \"not-alowed\"\nreason = \"x\"\n",
        ),
        (
            "exception_bad_date",
            "[[exception]]\nservice = \"ssh\"\nreason = \"x\"\nexpires = \"2026-12-31\"\n",
        ),
        (
            "exception_datetime",
            "[[exception]]\nservice = \"ssh\"\nreason = \"x\"\nexpires = 2026-12-31T10:00:00Z\n",
        ),
        (
            "exception_matches_everything",
            "[[exception]]\nreason = \"x\"\n",
        ),
        (
            "several_errors",
            "[[allow]]\nservice = \"smpt\"\n[[allow]]\nservice = \"ssh\"\nbind = \"nowhere\"\n",
        ),
        ("allow_loopback_type", "allow-loopback = \"yes\"\n"),
    ];
    for (name, text) in cases {
        insta::assert_snapshot!(*name, err(text), text);
    }
}

fn ident() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,12}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any text: an error or a policy, never a panic.
    #[test]
    fn never_panics(text in "\\PC{0,200}") {
        let _ = Policy::parse(&text, "p.toml", Registry::embedded());
    }

    /// TOML-shaped text with random keys and values: never a panic, and every error
    /// points inside the text.
    #[test]
    fn errors_point_inside(
        key in ident(),
        value in prop_oneof![ident().prop_map(|s| format!("\"{s}\"")), any::<i64>().prop_map(|n| n.to_string()), Just("[]".to_string())],
        table in prop_oneof![Just("[[allow]]"), Just("[[exception]]"), Just("")],
    ) {
        let text = format!("{table}\n{key} = {value}\n");
        if let Err(e) = Policy::parse(&text, "p.toml", Registry::embedded()) {
            for e in &e.0 {
                prop_assert!(e.line >= 1 && e.line <= text.lines().count() + 1, "{e}");
                prop_assert!(!e.message.is_empty());
            }
        }
    }

    /// Any port or range with a protocol is accepted and covers exactly its ports.
    #[test]
    fn port_specs(a in 0u16.., b in 0u16.., udp in any::<bool>()) {
        let (lo, hi) = (a.min(b), a.max(b));
        let proto = if udp { "udp" } else { "tcp" };
        let text = format!("[[allow]]\nservice = \"{lo}-{hi}/{proto}\"\n");
        let p = Policy::parse(&text, "p.toml", Registry::embedded()).unwrap();
        let proto = proto.parse().unwrap();
        prop_assert!(p.allows(proto, lo).next().is_some());
        prop_assert!(p.allows(proto, hi).next().is_some());
        if lo > 0 {
            prop_assert!(p.allows(proto, lo - 1).next().is_none());
        }
    }
}

/// Every ```toml example in docs/policy.md parses.
#[test]
fn documented_examples_parse() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/policy.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```toml") => current = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                current = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(blocks.len() >= 5, "found {} examples", blocks.len());
    for (i, b) in blocks.iter().enumerate() {
        let p = Policy::parse(
            b,
            &format!("docs/policy.md example {}", i + 1),
            Registry::embedded(),
        )
        .unwrap_or_else(|e| panic!("{e}\n{b}"));
        assert!(!p.allow.is_empty(), "example {} allows nothing", i + 1);
    }
    // The error shown in the docs is the one the parser gives.
    let shown = doc
        .split("```text\n")
        .nth(1)
        .and_then(|s| s.split("\n```").next())
        .unwrap();
    let got = Policy::parse(
        "[[allow]]\nservice = \"smpt\"\n",
        "policy.toml",
        Registry::embedded(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(got, shown);
}

/// Issue 10 item 11: within one `[[allow]]`, a bad `bind` must not hide a bad `from`.
#[test]
fn policy_check_reports_every_error_in_an_entry() {
    let text = "[[allow]]\nservice = \"ssh\"\nbind = \"nowhere\"\nfrom = [\"192.0.2.0/33\"]\n";
    let e = Policy::parse(text, "policy.toml", Registry::embedded()).unwrap_err();
    let keys: Vec<&str> = e.0.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["allow[1].bind", "allow[1].from"], "{e}");
}

/// Issue 10 item 11: an error on a 200 KB line shows a bounded stretch of it.
#[test]
fn policy_check_bounds_the_snippet_of_a_long_line() {
    let long = format!(
        "[[allow]]\nservice = [{}\"smpt\"]\n",
        "\"ssh\", ".repeat(30_000)
    );
    let e = Policy::parse(&long, "policy.toml", Registry::embedded()).unwrap_err();
    let first = &e.0[0];
    assert!(
        first.message.contains("unknown service 'smpt'"),
        "{}",
        first.message
    );
    assert!(
        first.snippet.chars().count() < 400,
        "{}",
        first.snippet.len()
    );
    let mut lines = first.snippet.lines();
    let src = lines.next().unwrap();
    let caret = lines.next().unwrap();
    // The caret still points at the bad name.
    let at = caret.find('^').unwrap();
    assert_eq!(
        &src[src
            .char_indices()
            .nth(caret[..at].chars().count())
            .unwrap()
            .0..][..5],
        "\"smpt"
    );
    assert!(src.contains('…'));
}

/// CPU time of this thread in nanoseconds (`/proc/thread-self/schedstat`): time spent
/// waiting for a CPU on a loaded machine is not counted.
fn cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    s.split_whitespace().next().unwrap().parse().unwrap()
}

/// A valid policy of `n` `[[allow]]` entries, with a require and forbid-cleartext that
/// are checked against every entry, and an exception now and then.
fn big_policy(n: usize) -> String {
    let mut t = String::from(
        "name = \"big\"\nforbid-cleartext = [\"telnet\", \"ftp\", \"x11\"]\nrequire = [\"ssh\", \"20000-30000/tcp\"]\n[[allow]]\nservice = [\"ssh\", \"20000-30000/tcp\"]\n",
    );
    for i in 0..n {
        let port = 10_000 + i % 50_000;
        let svc = if i % 4 == 0 {
            "smtp".to_string()
        } else {
            format!("{port}/tcp")
        };
        t.push_str(&format!(
            "[[allow]]\nservice = \"{svc}\"\nbind = \"any\"\nfrom = [\"192.0.2.0/24\"]\n"
        ));
        if i % 100 == 0 {
            t.push_str(&format!(
                "[[exception]]\nservice = \"{port}/tcp\"\nreason = \"r\"\n"
            ));
        }
    }
    t
}

/// The least CPU time of three parses of `text`.
fn parse_cpu(text: &str) -> u64 {
    (0..3)
        .map(|_| {
            let start = cpu_ns();
            let p = Policy::parse(text, "big.toml", Registry::embedded());
            let p = p.map_err(|e| e.0.len()).expect("a valid policy");
            let took = cpu_ns() - start;
            assert!(p.allow.len() > 1000);
            took
        })
        .min()
        .unwrap()
}

#[test]
fn policy_check_time_is_linear_in_the_entries() {
    // Four times the entries may cost at most eight times the CPU time (a quadratic
    // step costs sixteen): per entry, the large file may cost twice the small one.
    let (small, large) = (big_policy(10_000), big_policy(40_000));
    let (a, b) = (parse_cpu(&small), parse_cpu(&large));
    let ratio = b as f64 / a as f64;
    eprintln!("10k entries {a} ns, 40k entries {b} ns: ratio {ratio:.2}");
    assert!(ratio < 8.0, "ratio {ratio:.2} for 4x the entries");
}
