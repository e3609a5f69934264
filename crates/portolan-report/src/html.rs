//! The HTML report: one self-contained file a reader would rather keep than a terminal
//! table.
//!
//! [`render`] writes the summary, the findings with their remediation, the chart of the
//! port space (inline SVG), the listeners and scanned ports, the drift, the policy and its
//! ruleset, and the provenance, with the whole [`ReportInput`] embedded as JSON so that
//! [`read_back`] gives it back. The page asks for nothing outside itself: its one style
//! sheet and one script are inline and allowed by their SHA-256 in a strict
//! Content-Security-Policy, and every table is in the HTML (the script only sorts and
//! filters). docs/report.md describes it.

mod chart;
mod data;
mod escape;
mod page;

use std::io;

use portolan_model::{AuditReport, Diff, Listener, PortRange, RunId, RunInfo, ScanReport};
use serde::{Deserialize, Serialize};

pub use chart::Layout;
pub use data::{DATA_ID, ReportData, read_back};
pub use escape::{bounded, escape};

/// The policy a report judged against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInfo {
    /// `baseline` for the built-in one, else the name the policy gives itself.
    pub name: String,
    /// The policy's text, when it came from a file (or the built-in text).
    #[serde(default)]
    pub text: Option<String>,
}

/// How a report used the history store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HistoryKind {
    /// `--run`: the report shows a stored run, and the drift from the run before it.
    Run,
    /// `--since`: the report shows the audit taken now, and the drift since a point.
    Since,
}

/// Where a report's history came from (`portolan report --run` or `--since`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRef {
    pub kind: HistoryKind,
    /// The point as the user gave it (`12`, `last`, `baseline`, `2h ago`, a file).
    pub point: String,
    /// The run the point resolved to; `None` for a file.
    #[serde(default)]
    pub run: Option<RunId>,
    /// The history database; `None` when the point was a file.
    #[serde(default)]
    pub db: Option<String>,
    /// With `--run`, the report's own making (this command, now): the report's `run`
    /// is then the stored run's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made: Option<RunInfo>,
}

/// Everything one report shows. Every field is optional data: a section with nothing to
/// show says so, and says nothing about what was not measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportInput {
    pub run: RunInfo,
    pub policy: PolicyInfo,
    /// The firewall ruleset the policy generates (nftables text).
    #[serde(default)]
    pub ruleset: Option<String>,
    /// The inside view: the listening sockets. `None` when the report had no inventory.
    #[serde(default)]
    pub listeners: Option<Vec<Listener>>,
    #[serde(default)]
    pub audit: Option<AuditReport>,
    /// The outside view: zero or more scans, with what detection found.
    #[serde(default)]
    pub scans: Vec<ScanReport>,
    /// What changed since an earlier point of history.
    #[serde(default)]
    pub diff: Option<Diff>,
    /// The kernel's ephemeral port range (`net.ipv4.ip_local_port_range`), when read.
    #[serde(default)]
    pub ephemeral: Option<PortRange>,
    /// Things the operation could not do, said in the summary.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Where `diff` came from, when it came from the history store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryRef>,
}

/// Why a report could not be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing the HTML report: {0}")]
    Write(#[from] io::Error),
    #[error("reading back an HTML report: no <script id=\"{DATA_ID}\"> element holds its data")]
    NoData,
    #[error(
        "reading back an HTML report: the embedded data's SHA-256 is {found}, the report says {expected}"
    )]
    Digest { expected: String, found: String },
    #[error("reading back an HTML report: the embedded data is not valid: {0}")]
    Data(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Writes the report for `input` as one HTML document.
pub fn render(input: &ReportInput, w: &mut dyn io::Write) -> Result<()> {
    let html = to_string(input)?;
    w.write_all(html.as_bytes())?;
    Ok(())
}

/// The report for `input` as one HTML document.
pub fn to_string(input: &ReportInput) -> Result<String> {
    let embedded = data::embed(input)?;
    Ok(page::page(input, &embedded))
}

/// The Content-Security-Policy of every report: nothing may load, only the report's own
/// style sheet and script (by hash) apply, images only from `data:`.
pub fn content_security_policy() -> String {
    page::csp()
}
