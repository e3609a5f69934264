//! Change over time: diffs (table, JSON, JSON Lines), watch events, the runs of the
//! history and the timeline of a port or process.

use std::io::{self, Write};

use portolan_model::{Change, ChangeKind, Diff, Listener, RunSummary, Span, SpanState, Subject};

use crate::json;
use crate::table::Table;
use crate::text::terminal;

/// A diff as one JSON document: `from`, `to`, `changes` (docs/json.md).
pub fn diff_json(w: &mut dyn Write, diff: &Diff) -> io::Result<()> {
    json::document(w, diff)
}

/// A diff as JSON Lines: one change per line, `change` and `port` in each.
pub fn diff_jsonl(w: &mut dyn Write, diff: &Diff) -> io::Result<()> {
    for c in &diff.changes {
        event(w, c)?;
    }
    Ok(())
}

/// One watch event: a change as one JSON line.
pub fn event(w: &mut dyn Write, change: &Change) -> io::Result<()> {
    json::line(w, change)
}

/// The subject of a change in words: `host tcp 0.0.0.0:22`, `198.18.0.2 tcp/80`, a
/// finding's rule and fingerprint.
pub fn subject(s: &Subject) -> String {
    match s {
        Subject::Listener(k) => k.to_string(),
        Subject::Port {
            host,
            protocol,
            port,
        } => format!("{host} {port}/{protocol}"),
        Subject::Finding { fingerprint, rule } => format!("{rule} {fingerprint}"),
    }
}

fn owners(l: &Listener) -> String {
    let mut names: Vec<String> = l
        .processes
        .iter()
        .map(|p| format!("{}[{}]", p.name, p.pid))
        .collect();
    names.dedup();
    names.join(",")
}

/// What a change is, in one cell: the fields that differ (`pid 812 -> 9001`), or the
/// owners of an added or removed listener.
pub fn what(c: &Change) -> String {
    if !c.fields.is_empty() {
        return c
            .fields
            .iter()
            .map(|f| {
                format!(
                    "{} {} -> {}",
                    f.field,
                    f.before.as_deref().unwrap_or("-"),
                    f.after.as_deref().unwrap_or("-")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    c.listener.as_ref().map(owners).unwrap_or_default()
}

/// A diff as a table: one row per change, then a count.
pub fn diff_table(w: &mut dyn Write, diff: &Diff, color: bool) -> io::Result<()> {
    writeln!(w, "From {} to {}", terminal(&diff.from), terminal(&diff.to))?;
    if diff.changes.is_empty() {
        return writeln!(w, "No difference.");
    }
    writeln!(w)?;
    let mut t = Table::new(["CHANGE", "SUBJECT", "WHAT"]);
    for c in &diff.changes {
        let mut label = c.change.as_str().to_string();
        if c.change == ChangeKind::Changed
            && c.fields
                .iter()
                .any(|f| matches!(f.field.as_str(), "exe" | "user" | "unit"))
        {
            label = "owner-changed".into();
        }
        if c.noise {
            label.push_str(" (noise)");
        }
        let mut what_of = subject(&c.subject);
        if let (Subject::Finding { .. }, Some(p), Some(proto)) = (&c.subject, c.port, c.protocol) {
            what_of.push_str(&format!(" {p}/{proto}"));
        }
        t.row([
            label,
            terminal(&what_of).into_owned(),
            terminal(&what(c)).into_owned(),
        ]);
    }
    t.write(w, color)?;
    let n = diff.changes.len();
    writeln!(w, "\n{n} change{}.", if n == 1 { "" } else { "s" })
}

/// The runs of the history as a table, oldest first.
pub fn runs_table(w: &mut dyn Write, runs: &[RunSummary], color: bool) -> io::Result<()> {
    if runs.is_empty() {
        return writeln!(w, "No runs recorded.");
    }
    let mut t = Table::new(["RUN", "STARTED", "HOST", "VIEWS", "COMMAND"]).right(0);
    for r in runs {
        let mut views = Vec::new();
        if r.listeners {
            views.push("inside");
        }
        if r.scan {
            views.push("scan");
        }
        if r.audit {
            views.push("audit");
        }
        if r.baseline {
            views.push("baseline");
        }
        t.row([
            r.id.to_string(),
            terminal(&r.started).into_owned(),
            terminal(&r.host).into_owned(),
            views.join(","),
            terminal(&r.command).into_owned(),
        ]);
    }
    t.write(w, color)
}

/// The runs as one JSON array.
pub fn runs_json(w: &mut dyn Write, runs: &[RunSummary]) -> io::Result<()> {
    json::document(w, runs)
}

/// A timeline as a table: one row per interval, oldest first.
pub fn timeline_table(w: &mut dyn Write, spans: &[Span], color: bool) -> io::Result<()> {
    if spans.is_empty() {
        return writeln!(w, "Nothing recorded matches.");
    }
    let mut t = Table::new(["SUBJECT", "FIRST SEEN", "LAST SEEN", "THEN", "STATE"]);
    for s in spans {
        let then = match (s.ended, s.closed) {
            (None, _) => "holds".to_string(),
            (Some(r), true) => format!("gone at run {r}"),
            (Some(r), false) => format!("changed at run {r}"),
        };
        let state = match &s.state {
            SpanState::Listeners(ls) => ls.iter().map(owners).collect::<Vec<_>>().join(" "),
            SpanState::Port(p) => p.result.state.to_string(),
            SpanState::Finding(f) => format!("{} {}", f.severity, f.message),
        };
        t.row([
            terminal(&subject(&s.subject)).into_owned(),
            format!("run {} ({})", s.first_seen.id, s.first_seen.started),
            s.last_seen
                .as_ref()
                .map(|r| format!("run {} ({})", r.id, r.started))
                .unwrap_or_default(),
            then,
            terminal(&state).into_owned(),
        ]);
    }
    t.write(w, color)
}

/// A timeline as one JSON array.
pub fn timeline_json(w: &mut dyn Write, spans: &[Span]) -> io::Result<()> {
    json::document(w, spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_model::{FieldChange, Process, Proto};

    fn diff() -> Diff {
        let l = Listener::new(Proto::Tcp, "0.0.0.0".parse().unwrap(), 22)
            .with_process(Process::new(9001, "sshd"));
        let key = l.key();
        Diff {
            from: "run 1 (2026-12-01T10:00:00Z)".into(),
            to: "run 2 (2026-12-01T11:00:00Z)".into(),
            changes: vec![
                Change {
                    change: ChangeKind::Restarted,
                    subject: Subject::Listener(key.clone()),
                    protocol: Some(Proto::Tcp),
                    port: Some(22),
                    fields: vec![FieldChange {
                        field: "pid".into(),
                        before: Some("812".into()),
                        after: Some("9001".into()),
                    }],
                    listener: Some(l.clone()),
                    at: None,
                    noise: false,
                },
                Change {
                    change: ChangeKind::Changed,
                    subject: Subject::Listener(key),
                    protocol: Some(Proto::Tcp),
                    port: Some(22),
                    fields: vec![FieldChange {
                        field: "exe".into(),
                        before: Some("/usr/sbin/sshd".into()),
                        after: Some("/tmp/\x1b[31mx".into()),
                    }],
                    listener: Some(l),
                    at: None,
                    noise: false,
                },
            ],
        }
    }

    #[test]
    fn table_names_owner_changes_and_escapes() {
        let mut buf = Vec::new();
        diff_table(&mut buf, &diff(), false).unwrap();
        insta::assert_snapshot!(String::from_utf8(buf).unwrap());
    }

    #[test]
    fn jsonl_is_one_change_per_line() {
        let mut buf = Vec::new();
        diff_jsonl(&mut buf, &diff()).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["change"], "restarted");
        assert_eq!(lines[0]["port"], 22);
        assert_eq!(lines[1]["change"], "changed");
    }

    #[test]
    fn an_empty_diff_says_so() {
        let mut buf = Vec::new();
        diff_table(&mut buf, &Diff::default(), false).unwrap();
        assert!(
            String::from_utf8(buf)
                .unwrap()
                .ends_with("No difference.\n")
        );
    }
}
