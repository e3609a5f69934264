//! SARIF 2.1.0 of an audit, for code-scanning dashboards. Each rule is a
//! reportingDescriptor; each finding a result located logically at its socket
//! (`tcp/25@0.0.0.0`), with its stable fingerprint. It is JSON, so `serde_json` escapes
//! every string from a peer or a process.

use serde_json::{Value, json};

use portolan_model::{AuditReport, Rule, Severity};

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
                "helpUri": format!("https://example.invalid/portolan/docs/rules.md#{}", r.id()),
                "defaultConfiguration": { "level": level(r.default_severity()) },
                "properties": {
                    "tags": ["security", "network"],
                    "security-severity": score(r.default_severity()),
                },
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let index = Rule::ALL.iter().position(|r| *r == f.rule).unwrap_or(0);
            let socket = match (f.protocol, f.port) {
                (Some(p), Some(n)) => format!(
                    "{p}/{n}@{}",
                    f.address.as_deref().unwrap_or("*").replace(", ", ",")
                ),
                _ => "policy".to_string(),
            };
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
                "ruleIndex": index,
                "level": level(f.severity),
                "message": { "text": format!("{} Remediation: {}", f.message, f.remediation) },
                "locations": [{
                    "logicalLocations": [{
                        "name": socket,
                        "fullyQualifiedName": socket,
                        "kind": "resource",
                    }],
                }],
                "partialFingerprints": {
                    "portolanFinding/v1": format!("{}:{socket}", f.rule.id()),
                    "portolanFinding/v2": f.fingerprint,
                },
                "properties": props,
            })
        })
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "portolan",
                    "version": version,
                    "semanticVersion": version,
                    "informationUri": "https://example.invalid/portolan",
                    "rules": rules,
                },
            },
            "automationDetails": { "id": format!("portolan-audit/{}/", report.summary.policy) },
            "results": results,
            "properties": { "summary": report.summary },
        }],
    })
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
