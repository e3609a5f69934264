//! Findings are the model's: this module names them where the audit's users look.

pub use portolan_model::{
    AuditReport, AuditSummary, Counts, Evidence, Finding, Reach, Remediation, Rule, Severity,
    Suppressed,
};
