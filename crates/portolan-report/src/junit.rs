//! JUnit XML of an audit, for CI systems: one test case per finding, failed when at least as severe
//! as the `--fail-on` threshold; findings held back by an exception are skipped cases.
//! A case's `classname` is the bare rule id (`cleartext-exposed`), as in docs/rules.md;
//! the one case of an audit with no finding has classname `audit`.

use std::fmt::Write;

use portolan_model::{AuditReport, Finding, Severity};

/// Escapes text for XML attributes and content.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The JUnit XML of a report. Findings at or above `fail_on` are failures, the others
/// pass with their text in `<system-out>`; with `None` (`--fail-on never`) nothing fails.
pub fn to_junit(report: &AuditReport, fail_on: Option<Severity>) -> String {
    let fails = |f: &Finding| fail_on.is_some_and(|t| f.severity >= t);
    let failures = report.findings.iter().filter(|f| fails(f)).count();
    let skipped = report.suppressed.len();
    // With no finding at all there is still one passing case, so CI shows the audit ran.
    let passing_case = report.findings.is_empty() && report.suppressed.is_empty();
    let tests = report.findings.len() + skipped + usize::from(passing_case);
    let suite = format!("portolan audit ({})", report.summary.policy);
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">",
        esc(&suite)
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">",
        esc(&suite)
    );
    for f in &report.findings {
        let mut name = f.port_label();
        if let Some(a) = &f.address {
            name.push_str(&format!(" on {a}"));
        }
        if let Some(s) = &f.service {
            name.push_str(&format!(" ({s})"));
        }
        if name.is_empty() {
            name = f.rule.id().to_string();
        }
        let _ = write!(
            x,
            "    <testcase classname=\"{}\" name=\"{}\"",
            f.rule.id(),
            esc(name.trim())
        );
        let body = format!("{}\n\nRemediation: {}", f.message, f.remediation);
        if fails(f) {
            let _ = writeln!(
                x,
                ">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>",
                f.severity,
                esc(&f.message),
                esc(&body)
            );
        } else {
            let _ = writeln!(
                x,
                ">\n      <system-out>[{}] {}</system-out>\n    </testcase>",
                f.severity,
                esc(&body)
            );
        }
    }
    for s in &report.suppressed {
        let name = match (s.port, s.protocol) {
            (Some(p), Some(proto)) => format!("{p}/{proto}"),
            _ => s.rule.id().to_string(),
        };
        let _ = writeln!(
            x,
            "    <testcase classname=\"{}\" name=\"{}\">\n      <skipped message=\"exception: {}\"/>\n    </testcase>",
            s.rule.id(),
            esc(&name),
            esc(&s.reason)
        );
    }
    if passing_case {
        let _ = writeln!(
            x,
            "    <testcase classname=\"audit\" name=\"no findings\"/>"
        );
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(esc("a<b>&\"'\u{1}"), "a&lt;b&gt;&amp;&quot;&apos;\u{FFFD}");
    }
}
