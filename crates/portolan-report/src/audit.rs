//! The audit as a terminal report: findings grouped by severity, each with its evidence,
//! message and remediation (its commands highlighted as code when colour is on), then the
//! summary and the next step. Process names, products and messages (which quote them) are
//! made terminal-safe.

use std::io::{self, Write};

use portolan_model::{AuditReport, Finding, Reach, Remediation, Severity};

use crate::table::Table;
use crate::text::{terminal, terminal_bounded};

/// The longest message or remediation line shown, in characters.
const MAX_TEXT: usize = 4000;

const SEVERITY_COLOR: [(Severity, &str); 5] = [
    (Severity::Critical, "\x1b[1;31m"),
    (Severity::High, "\x1b[31m"),
    (Severity::Medium, "\x1b[33m"),
    (Severity::Low, "\x1b[36m"),
    (Severity::Info, "\x1b[2m"),
];

const CODE_COLOR: &str = "\x1b[36m";
const RESET: &str = "\x1b[0m";

fn paint(color: bool, s: Severity, text: &str) -> String {
    if !color {
        return text.to_string();
    }
    let code = SEVERITY_COLOR
        .iter()
        .find(|(v, _)| *v == s)
        .map_or("", |(_, c)| c);
    format!("{code}{text}{RESET}")
}

/// `reachable`, `not reachable` (probed on every address it serves, closed or filtered),
/// `not checked` (a scan ran but did not measure it), or empty without a scan.
fn reach_cell(f: &Finding) -> &'static str {
    match f.reach {
        Some(Reach::Reachable) => "reachable",
        Some(Reach::Unreachable) => "not reachable",
        Some(Reach::NotChecked) => "not checked",
        None => "",
    }
}

/// The remediation text, terminal-safe, with its commands (the backticked spans) in the
/// code colour when colour is on.
pub fn remediation_text(r: &Remediation, color: bool) -> String {
    let text = terminal_bounded(&r.text, MAX_TEXT);
    if !color || r.commands.is_empty() {
        return text.into_owned();
    }
    let mut out = String::with_capacity(text.len() + 16 * r.commands.len());
    for (i, part) in text.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 && !part.trim().is_empty() {
            out.push_str(CODE_COLOR);
            out.push_str(part);
            out.push_str(RESET);
        } else {
            out.push_str(part);
        }
    }
    out
}

fn group_table(group: &[&Finding]) -> Table {
    let mut t = Table::new(["  PORT", "SERVICE", "ADDRESS", "PROCESS", "REACH", "RULE"]);
    for f in group {
        let pid = f
            .evidence
            .first()
            .map(|e| format!(" ({})", e.process.pid))
            .unwrap_or_default();
        t.row([
            format!("  {}", f.port_label()),
            terminal(f.service.as_deref().unwrap_or_default()).into_owned(),
            f.address.clone().unwrap_or_default(),
            f.process
                .as_deref()
                .map(|p| terminal(p).into_owned() + &pid)
                .unwrap_or_default(),
            reach_cell(f).to_string(),
            f.rule.id().to_string(),
        ]);
    }
    t
}

/// Writes the report.
pub fn write_table(w: &mut dyn Write, r: &AuditReport, color: bool) -> io::Result<()> {
    for sev in Severity::ALL {
        let group: Vec<&Finding> = r.findings.iter().filter(|f| f.severity == sev).collect();
        if group.is_empty() {
            continue;
        }
        writeln!(
            w,
            "{}",
            paint(
                color,
                sev,
                &format!("{} ({})", sev.as_str().to_uppercase(), group.len())
            )
        )?;
        // One table row, then the finding's text under it.
        let text = group_table(&group).render(color);
        let mut lines = text.lines();
        if let Some(h) = lines.next() {
            writeln!(w, "{h}")?;
        }
        for (line, f) in lines.zip(&group) {
            writeln!(w, "{line}")?;
            writeln!(w, "      {}", terminal_bounded(&f.message, MAX_TEXT))?;
            writeln!(w, "      fix: {}", remediation_text(&f.remediation, color))?;
        }
        writeln!(w)?;
    }
    write_summary(w, r)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn write_summary(w: &mut dyn Write, r: &AuditReport) -> io::Result<()> {
    let s = &r.summary;
    let mut head = format!("portolan audit ({})", terminal(&s.policy));
    let mut parts = Vec::new();
    if let (Some(n), Some(e)) = (s.listeners, s.exposed) {
        parts.push(format!(
            "{n} listening socket{}, {e} beyond loopback",
            plural(n)
        ));
    }
    if let Some(n) = s.reachable {
        parts.push(format!("{n} port{} reachable from the scan", plural(n)));
    }
    if let (Some(u), Some(n)) = (s.unreachable, s.not_checked) {
        parts.push(format!(
            "{u} listener{} not reachable, {n} not checked",
            plural(u)
        ));
    }
    if !parts.is_empty() {
        head.push_str(": ");
        head.push_str(&parts.join("; "));
    }
    writeln!(w, "{head}.")?;
    if s.findings == 0 {
        writeln!(w, "No findings.")?;
    } else {
        let counts: Vec<String> = Severity::ALL
            .iter()
            .filter(|v| s.severities.get(**v) > 0)
            .map(|v| format!("{} {}", s.severities.get(*v), v.as_str()))
            .collect();
        writeln!(
            w,
            "{} finding{}: {}.",
            s.findings,
            plural(s.findings),
            counts.join(", ")
        )?;
    }
    if s.suppressed > 0 {
        writeln!(w, "{} held back by the policy's exceptions.", s.suppressed)?;
    }
    writeln!(w, "Next: {}", s.next_step)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_model::{AuditSummary, Counts, Rule};

    fn report(f: Finding) -> AuditReport {
        let mut severities = Counts::default();
        severities.add(f.severity);
        AuditReport {
            findings: vec![f],
            suppressed: vec![],
            summary: AuditSummary {
                policy: "baseline".into(),
                listeners: Some(1),
                exposed: Some(1),
                reachable: None,
                unreachable: None,
                not_checked: None,
                findings: 1,
                severities,
                suppressed: 0,
                next_step: "x".into(),
            },
        }
    }

    #[test]
    fn commands_are_code_in_colour_only() {
        let r = Remediation::new("Stop it: `systemctl stop x`.");
        assert_eq!(remediation_text(&r, false), r.text);
        assert_eq!(
            remediation_text(&r, true),
            "Stop it: `\x1b[36msystemctl stop x\x1b[0m`."
        );
    }

    #[test]
    fn hostile_process_names_are_escaped() {
        let mut f = Finding::new(
            Rule::NotAllowed,
            "x 1/tcp (evil\x1b[2J pid 1)",
            Remediation::new("fix"),
        );
        f.process = Some("evil\x1b[2J".into());
        f.port = Some(1);
        f.protocol = Some(portolan_model::Proto::Tcp);
        let mut buf = Vec::new();
        write_table(&mut buf, &report(f.seal()), false).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(!text.contains('\x1b'), "{text}");
        assert!(text.contains("evil\\x1b[2J"), "{text}");
    }
}
