//! Policies for the ports of a host, and the judgement of a host against them.
//!
//! A [`Policy`] (parsed from TOML, or one of the built-in [`profiles`]) says which
//! services may listen, where, and for whom. [`evaluate`] judges the inside view (the
//! model's [`Listener`]s with their owners) and the outside view (a [`Scan`]: a model
//! [`ScanReport`] and where it ran from) against it, or against the built-in baseline,
//! into an [`AuditReport`] of [`Finding`]s. The inputs are plain model data: the
//! application layer gathers them, and tests build them by hand. Turning a policy into a
//! firewall is the `portolan-firewall` crate's job.
#![forbid(unsafe_code)]

pub mod catalog;
mod eval;
pub mod finding;
pub mod init;
pub mod input;
pub mod knowledge;
pub mod net;
pub mod policy;
pub mod profiles;
pub mod script;
mod suggest;

pub use catalog::Catalog;
pub use eval::{evaluate, exe_risk};
pub use finding::{
    AuditReport, AuditSummary, Counts, Evidence, Finding, Reach, Remediation, Rule, Severity,
    Suppressed,
};
pub use input::{Context, Host, Inputs, NoHost, Scan};
pub use net::IpNet;
pub use policy::{Policy, PolicyError, PolicyErrors};
pub use portolan_model::{
    Coverage, Detection, Exposure, Listener, PortState, Process, ScanReport, ScannedPort,
};
pub use portolan_registry::{Date, date};
pub use suggest::nearest;
