//! SARIF output validated against the official SARIF 2.1.0 schema (OASIS, errata 01,
//! vendored in tests/data), with a small JSON Schema draft-04 validator that implements
//! every keyword that schema uses and refuses any it does not know.

use std::path::PathBuf;

use portolan_audit::policy::Policy;
use portolan_audit::{
    Context, Date, Detection, Inputs, Listener, NoHost, PortState, Process, Scan, ScanReport,
    ScannedPort, evaluate, profiles,
};
use portolan_model::{HostResult, HostState, PortResult, Reason, Rule};
use portolan_registry::{PortRange, Proto, Registry};
use portolan_report::{junit, sarif};
use serde_json::{Map, Value, json};

struct Validator<'a> {
    root: &'a Value,
}

impl Validator<'_> {
    fn resolve<'s>(&'s self, schema: &'s Value) -> &'s Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r
                    .strip_prefix("#/definitions/")
                    .unwrap_or_else(|| panic!("unsupported $ref {r}"));
                let def = &self.root["definitions"][name];
                assert!(!def.is_null(), "missing definition {name}");
                self.resolve(def)
            }
            None => schema,
        }
    }

    fn validate(&self, schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
        let schema = self.resolve(schema);
        let Some(s) = schema.as_object() else {
            return;
        };
        for key in s.keys() {
            assert!(
                [
                    "$ref",
                    "$schema",
                    "additionalProperties",
                    "anyOf",
                    "default",
                    "description",
                    "enum",
                    "format",
                    "id",
                    "items",
                    "maximum",
                    "minItems",
                    "minimum",
                    "oneOf",
                    "pattern",
                    "required",
                    "title",
                    "type",
                    "uniqueItems",
                    "properties",
                    "definitions",
                ]
                .contains(&key.as_str()),
                "the validator does not implement '{key}'"
            );
        }
        if let Some(t) = s.get("type") {
            let types: Vec<&str> = match t {
                Value::String(t) => vec![t.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => panic!("bad type keyword"),
            };
            if !types.iter().any(|t| type_ok(t, v)) {
                errors.push(format!("{path}: expected {types:?}, found {v}"));
                return;
            }
        }
        if let Some(e) = s.get("enum").and_then(Value::as_array) {
            if !e.contains(v) {
                errors.push(format!("{path}: {v} not in {e:?}"));
            }
        }
        if let Some(n) = v.as_f64() {
            if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
                if n < min {
                    errors.push(format!("{path}: {n} < minimum {min}"));
                }
            }
            if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
                if n > max {
                    errors.push(format!("{path}: {n} > maximum {max}"));
                }
            }
        }
        if let Some(text) = v.as_str() {
            if let Some(p) = s.get("pattern").and_then(Value::as_str) {
                if !pattern_ok(p, text) {
                    errors.push(format!("{path}: '{text}' does not match {p}"));
                }
            }
            if let Some(f) = s.get("format").and_then(Value::as_str) {
                if !format_ok(f, text) {
                    errors.push(format!("{path}: '{text}' is not a {f}"));
                }
            }
        }
        if let Some(a) = v.as_array() {
            if let Some(min) = s.get("minItems").and_then(Value::as_u64) {
                if (a.len() as u64) < min {
                    errors.push(format!("{path}: fewer than {min} items"));
                }
            }
            if s.get("uniqueItems") == Some(&Value::Bool(true)) {
                for (i, x) in a.iter().enumerate() {
                    if a[..i].contains(x) {
                        errors.push(format!("{path}[{i}]: duplicate item"));
                    }
                }
            }
            if let Some(items) = s.get("items") {
                for (i, x) in a.iter().enumerate() {
                    self.validate(items, x, &format!("{path}[{i}]"), errors);
                }
            }
        }
        if let Some(o) = v.as_object() {
            let props = s.get("properties").and_then(Value::as_object);
            if let Some(req) = s.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !o.contains_key(r) {
                        errors.push(format!("{path}: missing required '{r}'"));
                    }
                }
            }
            for (k, x) in o {
                let p = format!("{path}.{k}");
                match props.and_then(|m| m.get(k)) {
                    Some(ps) => self.validate(ps, x, &p, errors),
                    None => match s.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            errors.push(format!("{p}: property not allowed"))
                        }
                        Some(extra @ Value::Object(_)) => self.validate(extra, x, &p, errors),
                        _ => {}
                    },
                }
            }
        }
        for (key, exactly_one) in [("anyOf", false), ("oneOf", true)] {
            if let Some(options) = s.get(key).and_then(Value::as_array) {
                let passing = options
                    .iter()
                    .filter(|o| {
                        let mut e = Vec::new();
                        self.validate(o, v, path, &mut e);
                        e.is_empty()
                    })
                    .count();
                let ok = if exactly_one {
                    passing == 1
                } else {
                    passing >= 1
                };
                if !ok {
                    errors.push(format!("{path}: {passing} of the {key} alternatives match"));
                }
            }
        }
    }
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "null" => v.is_null(),
        other => panic!("unknown type {other}"),
    }
}

/// The four patterns the SARIF schema uses, written out (no regex engine here).
fn pattern_ok(p: &str, s: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    match p {
        "[0-9]+(\\.[0-9]+){3}" => contains_dotted_quad(s),
        "[^/]+/.+" => s
            .split_once('/')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty()),
        "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-5][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$" =>
        {
            let g: Vec<&str> = s.split('-').collect();
            g.len() == 5
                && hex(g[0], 8)
                && hex(g[1], 4)
                && hex(g[2], 4)
                && (b'1'..=b'5').contains(&g[2].as_bytes()[0])
                && hex(g[3], 4)
                && b"89abAB".contains(&g[3].as_bytes()[0])
                && hex(g[4], 12)
        }
        "^[a-zA-Z]{2}(-[a-zA-Z]{2})?$" => {
            let alpha2 = |x: &str| x.len() == 2 && x.bytes().all(|b| b.is_ascii_alphabetic());
            match s.split_once('-') {
                Some((a, b)) => alpha2(a) && alpha2(b),
                None => alpha2(s),
            }
        }
        other => panic!("the validator does not know the pattern {other}"),
    }
}

fn contains_dotted_quad(s: &str) -> bool {
    // Unanchored: somewhere in s, four dot-separated runs of digits.
    let b = s.as_bytes();
    (0..b.len()).any(|start| {
        let mut i = start;
        for part in 0..4 {
            let from = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == from {
                return false;
            }
            if part < 3 {
                if i >= b.len() || b[i] != b'.' {
                    return false;
                }
                i += 1;
            }
        }
        true
    })
}

fn format_ok(f: &str, s: &str) -> bool {
    match f {
        "uri" => {
            s.split_once(':').is_some_and(|(scheme, _)| {
                !scheme.is_empty()
                    && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            }) && !s.contains(char::is_whitespace)
        }
        "uri-reference" => !s.contains(char::is_whitespace),
        "date-time" => s.len() >= 20 && s.as_bytes()[10] == b'T',
        other => panic!("unknown format {other}"),
    }
}

fn schema() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/sarif-schema-2.1.0.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn check(v: &Value) -> Vec<String> {
    let root = schema();
    let mut errors = Vec::new();
    Validator { root: &root }.validate(&root, v, "$", &mut errors);
    errors
}

fn report() -> portolan_audit::AuditReport {
    report_under(&profiles::load("mail-server", Registry::embedded()).unwrap())
}

const WITH_EXCEPTION: &str = r#"
name = "with-exception"
[[allow]]
service = "smtp"
[[exception]]
service = "21/tcp"
reason = "legacy \"ftp\" for <partners> (TICKET-7)"
"#;

fn report_under(policy: &Policy) -> portolan_audit::AuditReport {
    let mut vsftpd = Process::new(10, "vsftpd");
    vsftpd.exe = Some("/usr/sbin/vsftpd".into());
    vsftpd.user = Some("root".into());
    vsftpd.unit = Some("vsftpd.service".into());
    let ftp = Listener::new(Proto::Tcp, "0.0.0.0".parse().unwrap(), 21).with_process(vsftpd);
    let host = "127.0.0.1".parse().unwrap();
    let mut report = ScanReport {
        targets: vec!["localhost".into()],
        ..ScanReport::default()
    };
    report.coverage.add(host, Proto::Tcp, &[PortRange::ALL]);
    report.hosts.push(HostResult {
        host,
        state: HostState::Up,
        reason: Reason::UserSet,
        rtt: None,
        ports: vec![ScannedPort {
            result: PortResult {
                host,
                port: 80,
                proto: Proto::Tcp,
                state: PortState::Open,
                reason: Reason::SynAck,
                rtt: None,
                ttl: None,
            },
            service: Some("http".into()),
            detected: Some(Detection {
                protocol: Some("http".into()),
                product: Some("nginx <1.25> & \"friends\"".into()),
                ..Detection::default()
            }),
        }],
        ..HostResult::new(host, HostState::Up, Reason::UserSet)
    });
    let inputs = Inputs {
        listeners: Some(vec![
            ftp,
            Listener::new(Proto::Tcp, "::".parse().unwrap(), 80),
            Listener::new(Proto::Tcp, "127.0.0.1".parse().unwrap(), 40000),
        ]),
        scan: Some(Scan {
            target: "localhost".into(),
            local: true,
            source: None,
            from_itself: false,
            host_addresses: Vec::new(),
            report,
        }),
        netns: None,
    };
    let ctx = Context {
        policy_arg: Some("--profile mail-server".into()),
        ..Context::new(
            Date::new(2026, 11, 27).unwrap(),
            Registry::embedded(),
            &NoHost,
        )
    };
    evaluate(policy, &inputs, &ctx)
}

fn report_with_exception() -> portolan_audit::AuditReport {
    let policy =
        Policy::parse(WITH_EXCEPTION, "with-exception.toml", Registry::embedded()).unwrap();
    let r = report_under(&policy);
    assert!(
        !r.suppressed.is_empty(),
        "the exception holds the ftp findings back"
    );
    r
}

/// Issue 10, item 19: the rules' helpUri and the driver's informationUri pointed at
/// example.invalid. SARIF wants absolute URIs there and portolan has none to give, so
/// there are none; each rule's help names docs/rules.md.
#[test]
fn sarif_help_uri_is_not_example_invalid() {
    let log = sarif::to_sarif(&report(), "0.1.0");
    let text = log.to_string();
    assert!(!text.contains("example.invalid"), "{log:#}");
    assert!(!text.contains("helpUri"), "{log:#}");
    let driver = &log["runs"][0]["tool"]["driver"];
    assert!(driver.get("informationUri").is_none());
    for rule in driver["rules"].as_array().unwrap() {
        let help = rule["help"]["text"].as_str().unwrap();
        let id = rule["id"].as_str().unwrap();
        assert!(
            help.contains("docs/rules.md") && help.contains(id),
            "{help}"
        );
    }
    // Every rule the SARIF names is in docs/rules.md, which is where help sends readers.
    let doc = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/rules.md"),
    )
    .unwrap();
    for rule in Rule::ALL {
        assert!(
            doc.contains(&format!("`{}`", rule.id())),
            "{} not in docs/rules.md",
            rule.id()
        );
    }
}

/// Issue 10, item 19: findings held back by an exception were dropped from SARIF. They
/// are results with an external suppression that carries the exception's reason.
#[test]
fn sarif_suppressed_findings_are_suppressed_results() {
    let r = report_with_exception();
    let log = sarif::to_sarif(&r, "0.1.0");
    let errors = check(&log);
    assert!(errors.is_empty(), "{errors:#?}\n{log:#}");
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), r.findings.len() + r.suppressed.len());
    let held: Vec<&Value> = results
        .iter()
        .filter(|x| x.get("suppressions").is_some())
        .collect();
    assert_eq!(held.len(), r.suppressed.len());
    for (x, s) in held.iter().zip(&r.suppressed) {
        assert_eq!(x["ruleId"], s.rule.id());
        let f = s
            .finding
            .as_ref()
            .expect("the audit keeps the held-back finding");
        assert_eq!(
            x["partialFingerprints"]["portolanFinding/v2"],
            f.fingerprint.as_str()
        );
        assert_eq!(
            x["locations"][0]["logicalLocations"][0]["name"]
                .as_str()
                .unwrap(),
            format!("tcp/21@{}", f.address.as_deref().unwrap())
        );
        assert_eq!(
            x["suppressions"],
            json!([{
                "kind": "external",
                "status": "accepted",
                "justification": "legacy \"ftp\" for <partners> (TICKET-7)",
            }])
        );
    }
    // The findings that are not held back carry no suppression.
    assert_eq!(
        results
            .iter()
            .filter(|x| x.get("suppressions").is_none())
            .count(),
        r.findings.len()
    );
}

/// Issue 10, item 19: JUnit's classname was `portolan.RULE`, docs/rules.md says the bare
/// rule id. It is the bare id, for findings and for held-back findings alike.
#[test]
fn junit_classname_is_the_bare_rule_id() {
    let r = report_with_exception();
    let xml = junit::to_junit(&r, Some(portolan_audit::Severity::High));
    assert!(!xml.contains("classname=\"portolan."), "{xml}");
    for f in &r.findings {
        assert!(
            xml.contains(&format!("classname=\"{}\"", f.rule.id())),
            "{xml}"
        );
    }
    for s in &r.suppressed {
        assert!(
            xml.contains(&format!(
                "<testcase classname=\"{}\" name=\"21/tcp\">",
                s.rule.id()
            )),
            "{xml}"
        );
    }
}

#[test]
fn sarif_is_valid() {
    let r = report();
    assert!(r.findings.len() >= 3);
    let log = sarif::to_sarif(&r, "0.1.0");
    let errors = check(&log);
    assert!(errors.is_empty(), "{errors:#?}\n{log:#}");
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), r.findings.len());
    assert_eq!(results[0]["ruleId"], r.findings[0].rule.id());
    let rules = log["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    let i = results[0]["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(rules[i]["id"], results[0]["ruleId"]);
    // An empty report is valid too.
    let empty = evaluate(
        &Policy::baseline(),
        &Inputs::default(),
        &Context::new(
            Date::new(2026, 1, 1).unwrap(),
            Registry::embedded(),
            &NoHost,
        ),
    );
    assert!(check(&sarif::to_sarif(&empty, "0.1.0")).is_empty());
}

#[test]
fn the_validator_catches_invalid_logs() {
    let good = sarif::to_sarif(&report(), "0.1.0");
    let mut bad = good.clone();
    bad["version"] = json!("2.0.0");
    assert!(!check(&bad).is_empty());
    let mut bad = good.clone();
    bad["runs"][0]["results"][0]["level"] = json!("fatal");
    assert!(!check(&bad).is_empty());
    let mut bad = good.clone();
    bad["runs"][0]["results"][0]["message"] = json!({});
    assert!(!check(&bad).is_empty(), "message needs text or id");
    let mut bad = good.clone();
    bad["runs"][0]["tool"]["driver"]
        .as_object_mut()
        .unwrap()
        .remove("name");
    assert!(!check(&bad).is_empty());
    let mut bad = good;
    bad["runs"][0]["unexpected"] = Value::Object(Map::new());
    assert!(!check(&bad).is_empty());
}

/// With `--fail-on never` the exit code is 0, so the JUnit report must not fail either:
/// it marked critical findings as failures.
#[test]
fn junit_with_fail_on_never_has_no_failures() {
    let mut r = report();
    // A critical finding (the severity model ranks this fixture's http as medium).
    r.findings[0].severity = portolan_audit::Severity::Critical;
    let xml = junit::to_junit(&r, None);
    assert_eq!(xml.matches("<failure ").count(), 0, "{xml}");
    assert!(xml.contains("failures=\"0\""), "{xml}");
    assert_eq!(
        xml.matches("<system-out>").count(),
        r.findings.len(),
        "{xml}"
    );
}

#[test]
fn junit_is_well_formed() {
    let r = report();
    let xml = junit::to_junit(&r, Some(portolan_audit::Severity::High));
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    let failures = r
        .findings
        .iter()
        .filter(|f| f.severity >= portolan_audit::Severity::High)
        .count();
    assert_eq!(xml.matches("<failure ").count(), failures);
    assert!(xml.contains(&format!("tests=\"{}\"", r.findings.len())));
    assert!(xml.contains("nginx &lt;1.25&gt; &amp; &quot;friends&quot;") || !xml.contains("nginx"));
    if portolan_testkit::which("xmllint").is_some() {
        let dir = std::env::temp_dir().join(format!("pa-junit-{}.xml", std::process::id()));
        std::fs::write(&dir, &xml).unwrap();
        let out = std::process::Command::new("xmllint")
            .args(["--noout"])
            .arg(&dir)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&dir);
        assert!(
            out.status.success(),
            "{}\n{xml}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        assert!(
            !portolan_testkit::on_ci(),
            "CI installs libxml2-utils for xmllint"
        );
    }
}
