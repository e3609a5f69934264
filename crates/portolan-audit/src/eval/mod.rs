//! Evaluation: listeners and scan results against a policy (or the built-in baseline),
//! into findings with evidence and a concrete remediation.
//!
//! [`evaluate`] runs five steps, one function each: gather the [subjects] (the inside and
//! the outside view, port by port), [`judge`] each one, apply the policy's
//! [`exceptions`] (and report the [`expired`] ones), [`sort`], and [`summarize`].

mod checks;
mod severity;
mod subject;

use portolan_model::{
    AuditReport, AuditSummary, Counts, Exposure, Finding, PortState, Reach, Remediation, Rule,
    Severity, Suppressed,
};
use portolan_registry::{Date, Proto};

use crate::input::{Context, Inputs};
use crate::policy::Policy;

use checks::Evaluator;
pub use checks::exe_risk;
use subject::{Subject, subjects};

/// Judges the inputs against a policy.
pub fn evaluate(policy: &Policy, inputs: &Inputs, ctx: &Context<'_>) -> AuditReport {
    let subjects = subjects(inputs, ctx);
    let mut findings = judge(policy, &subjects, inputs, ctx);
    let (unreachable, not_checked) = reach_counts(&subjects, inputs);
    // Gone before the sort needs its buffer.
    drop(subjects);
    let suppressed = exceptions(policy, &mut findings, ctx.today);
    findings.extend(expired(policy, ctx.today));
    sort(&mut findings);
    let mut summary = summarize(policy, inputs, ctx, &findings, suppressed.len());
    (summary.unreachable, summary.not_checked) = (unreachable, not_checked);
    AuditReport {
        summary,
        findings,
        suppressed,
    }
}

/// Every check on every subject, then the policy's required services.
fn judge(
    policy: &Policy,
    subjects: &[Subject<'_>],
    inputs: &Inputs,
    ctx: &Context<'_>,
) -> Vec<Finding> {
    let mut ev = Evaluator::new(policy, ctx, subjects);
    for s in subjects {
        // An unnamed UDP socket on an ephemeral port is a client's (a resolver, DHCP,
        // NTP), given its port by the kernel: not a service to judge.
        let client = s.listening
            && s.protocol == Proto::Udp
            && s.service.is_none()
            && ctx.ephemeral.contains(s.port);
        if !client {
            if policy.baseline {
                let before = ev.findings.len();
                ev.baseline(s);
                if ev.findings.len() == before {
                    ev.unknown_owner(s);
                }
            } else {
                ev.policy(s, inputs);
            }
        }
        ev.hygiene(s, inputs);
    }
    if !policy.baseline {
        ev.required(subjects, inputs);
    }
    ev.findings
}

/// Holds back the findings an exception of the policy covers; a finding whose exception
/// expired stays, and says so.
fn exceptions(policy: &Policy, findings: &mut Vec<Finding>, today: Date) -> Vec<Suppressed> {
    let mut suppressed = Vec::new();
    findings.retain_mut(|f| {
        for e in &policy.exceptions {
            let matches = e.service.as_ref().is_none_or(
                |s| matches!((f.protocol, f.port), (Some(p), Some(n)) if s.covers(p, n)),
            ) && e.rule.is_none_or(|r| r == f.rule)
                && e.process
                    .as_ref()
                    .is_none_or(|name| f.evidence.iter().any(|ev| &ev.process.name == name));
            if !matches {
                continue;
            }
            match e.expires {
                Some(d) if d < today => {
                    f.message.push_str(&format!(
                        " The exception on line {} expired on {d}.",
                        e.line
                    ));
                }
                _ => {
                    suppressed.push(Suppressed {
                        rule: f.rule,
                        protocol: f.protocol,
                        port: f.port,
                        reason: e.reason.clone(),
                        finding: Some(Box::new(f.clone())),
                    });
                    return false;
                }
            }
        }
        true
    });
    suppressed
}

/// A finding for each exception past its expiry date.
fn expired(policy: &Policy, today: Date) -> Vec<Finding> {
    let mut out = Vec::new();
    for e in &policy.exceptions {
        let Some(d) = e.expires.filter(|d| *d < today) else {
            continue;
        };
        let what = e
            .service
            .as_ref()
            .map(|s| s.label.clone())
            .or(e.rule.map(|r| r.id().to_string()))
            .or(e.process.clone())
            .unwrap_or_default();
        let mut f = Finding::new(
            Rule::ExceptionExpired,
            format!(
                "The exception for {what} (line {}, \"{}\") expired on {d}.",
                e.line, e.reason
            ),
            Remediation::new(format!(
                "Fix what it covers and delete the [[exception]] on line {}, or give it a new `expires` date with a reason that still holds.",
                e.line
            )),
        );
        f.severity = Severity::Low;
        f.service = e.service.as_ref().map(|s| s.label.clone());
        f.process = e.process.clone();
        out.push(f.seal());
    }
    out
}

/// Worst first, then by port, protocol, rule and address.
fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.port.cmp(&b.port))
            .then(a.protocol.cmp(&b.protocol))
            .then(a.rule.cmp(&b.rule))
            .then(a.address.cmp(&b.address))
    });
}

/// The counts, and the next step to take.
fn summarize(
    policy: &Policy,
    inputs: &Inputs,
    ctx: &Context<'_>,
    findings: &[Finding],
    suppressed: usize,
) -> AuditSummary {
    let mut severities = Counts::default();
    for f in findings {
        severities.add(f.severity);
    }
    let listeners = inputs.listeners.as_ref().map(Vec::len);
    let exposed = inputs.listeners.as_ref().map(|l| {
        l.iter()
            .filter(|l| l.exposure != Exposure::Loopback)
            .count()
    });
    let reachable = inputs.scan.as_ref().filter(|s| !s.from_itself).map(|s| {
        s.results()
            .filter(|r| r.result.state == PortState::Open)
            .count()
    });
    AuditSummary {
        policy: policy.name.clone(),
        listeners,
        exposed,
        reachable,
        unreachable: None,
        not_checked: None,
        findings: findings.len(),
        severities,
        suppressed,
        next_step: next_step(policy, ctx, &severities),
    }
}

/// Of the listeners beyond loopback, how many the scan found not reachable and how many
/// it did not check; `None` when no scan met the inside view.
fn reach_counts(subjects: &[Subject<'_>], inputs: &Inputs) -> (Option<usize>, Option<usize>) {
    let met = inputs.listeners.is_some() && inputs.scan.as_ref().is_some_and(|s| s.local);
    if !met {
        return (None, None);
    }
    let mine = || {
        subjects
            .iter()
            .filter(|s| s.listening && s.netns.is_none() && s.exposed())
    };
    let count = |r: Reach| mine().filter(|s| s.reach == Some(r)).count();
    (
        Some(count(Reach::Unreachable)),
        Some(count(Reach::NotChecked)),
    )
}

fn next_step(policy: &Policy, ctx: &Context<'_>, severities: &Counts) -> String {
    let arg = ctx.policy_arg.as_deref().unwrap_or("--policy FILE");
    let serious = severities.critical + severities.high + severities.medium > 0;
    if policy.baseline {
        "Write a policy for this host: `portolan policy init > policy.toml`, trim it to what the host must serve, then run `portolan audit --policy policy.toml`.".to_string()
    } else if serious {
        format!(
            "Fix the findings above (each names its remediation) or record an [[exception]] with a reason; then enforce the policy: `portolan firewall {arg} --apply`."
        )
    } else {
        format!(
            "Enforce the policy: `portolan firewall {arg} --apply` (a dry run until confirmed), then check it from outside with `portolan audit {arg} --scan HOST`."
        )
    }
}
