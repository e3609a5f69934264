//! The shipped alerting rules pass `promtool check rules` and their unit tests.

use std::path::PathBuf;
use std::process::Command;

use portolan_testkit::require_tool;

fn contrib() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contrib/prometheus")
}

fn promtool(args: &[&str]) {
    let out = Command::new("promtool").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rules_check_and_their_unit_tests_pass() {
    if !require_tool("rules_check_and_their_unit_tests_pass", "promtool") {
        return;
    }
    let dir = contrib();
    let rules = dir.join("portolan.rules.yml");
    promtool(&["check", "rules", rules.to_str().unwrap()]);
    let mut tests: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".test.yml"))
        .collect();
    tests.sort();
    assert!(!tests.is_empty(), "no rule tests in {}", dir.display());
    for t in tests {
        promtool(&["test", "rules", t.to_str().unwrap()]);
    }
}
