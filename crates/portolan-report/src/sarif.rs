//! SARIF 2.1.0 of an audit, for code-scanning dashboards. Each rule is a
//! reportingDescriptor; each finding a result located logically at its socket
//! (`tcp/25@0.0.0.0`), with its stable fingerprint. A finding an exception of the policy
//! holds back is a result too, with an `external` suppression that carries the
//! exception's reason. It is JSON, so `serde_json` escapes every string from a peer or a
//! process.
//!
//! No URI is emitted: SARIF wants `helpUri` and `informationUri` absolute, and portolan
//! has no public address, so each rule's `help` names its entry in docs/rules.md instead.

use serde_json::{Value, json};

use portolan_model::{AuditReport, Finding, Rule, Severity, Suppressed};

/// The schema URI SARIF consumers expect.
pub const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// The CVSS-like score code-scanning services sort by (`security-severity`).
fn score(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// The SARIF log of a report. `version` is portolan's.
pub fn to_sarif(report: &AuditReport, version: &str) -> Value {
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|r| {
            json!({
                "id": r.id(),
                "name": camel(r.id()),
                "shortDescription": { "text": r.summary() },
                "help": {
                    "text": format!("See docs/rules.md, rule `{}`.", r.id()),
                    "markdown": format!("See [`{0}`](docs/rules.md) in docs/rules.md.", r.id()),
                },
                "defaultConfiguration": { "level": level(r.default_severity()) },
                "properties": {
                    "tags": ["security", "network"],
                    "security-severity": score(r.default_severity()),
                },
            })
        })
        .collect();
    let mut results: Vec<Value> = report.findings.iter().map(result).collect();
    results.extend(report.suppressed.iter().map(suppressed));
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "portolan",
                    "version": version,
                    "semanticVersion": version,
                    "rules": rules,
                },
            },
            "automationDetails": { "id": format!("portolan-audit/{}/", report.summary.policy) },
            "results": results,
            "properties": { "summary": report.summary },
        }],
    })
}

/// Where a finding is: its socket (`tcp/25@0.0.0.0`), or the policy.
fn socket(
    protocol: Option<portolan_registry::Proto>,
    port: Option<u16>,
    address: Option<&str>,
) -> String {
    match (protocol, port) {
        (Some(p), Some(n)) => format!("{p}/{n}@{}", address.unwrap_or("*").replace(", ", ",")),
        _ => "policy".to_string(),
    }
}

fn rule_index(rule: Rule) -> usize {
    Rule::ALL.iter().position(|r| *r == rule).unwrap_or(0)
}

fn location(socket: &str) -> Value {
    json!([{
        "logicalLocations": [{
            "name": socket,
            "fullyQualifiedName": socket,
            "kind": "resource",
        }],
    }])
}

/// One finding as a result.
fn result(f: &Finding) -> Value {
    let socket = socket(f.protocol, f.port, f.address.as_deref());
    let mut props = json!({
        "severity": f.severity.as_str(),
        "security-severity": score(f.severity),
        "remediation": f.remediation.text,
        "remediationCommands": f.remediation.commands,
        "fingerprint": f.fingerprint,
    });
    let map = props.as_object_mut().expect("a json object");
    if let Some(p) = f.protocol {
        map.insert("protocol".into(), json!(p.as_str()));
    }
    if let Some(p) = f.port {
        map.insert("port".into(), json!(p));
    }
    for (k, v) in [
        ("address", &f.address),
        ("service", &f.service),
        ("process", &f.process),
        ("product", &f.product),
    ] {
        if let Some(v) = v {
            map.insert(k.into(), json!(v));
        }
    }
    if let Some(r) = f.reachable {
        map.insert("reachable".into(), json!(r));
    }
    json!({
        "ruleId": f.rule.id(),
        "ruleIndex": rule_index(f.rule),
        "level": level(f.severity),
        "message": { "text": format!("{} Remediation: {}", f.message, f.remediation) },
        "locations": location(&socket),
        "partialFingerprints": {
            "portolanFinding/v1": format!("{}:{socket}", f.rule.id()),
            "portolanFinding/v2": f.fingerprint,
        },
        "properties": props,
    })
}

/// A finding held back by an exception: the finding's result (or, when the audit did not
/// keep the finding, one built from what the exception matched), suppressed.
fn suppressed(s: &Suppressed) -> Value {
    let mut v = match &s.finding {
        Some(f) => result(f),
        None => {
            let socket = socket(s.protocol, s.port, None);
            json!({
                "ruleId": s.rule.id(),
                "ruleIndex": rule_index(s.rule),
                "level": level(s.rule.default_severity()),
                "message": { "text": format!("{} (held back by an exception of the policy)", s.rule.summary()) },
                "locations": location(&socket),
                "partialFingerprints": {
                    "portolanFinding/v1": format!("{}:{socket}", s.rule.id()),
                },
            })
        }
    };
    v.as_object_mut().expect("a json object").insert(
        "suppressions".into(),
        json!([{
            "kind": "external",
            "status": "accepted",
            "justification": s.reason,
        }]),
    );
    v
}

/// `cleartext-exposed` → `CleartextExposed`.
fn camel(id: &str) -> String {
    id.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}
