//! The history as the store lists it: its runs, and the intervals a subject held.

use serde::{Deserialize, Serialize};

use crate::drift::Subject;
use crate::finding::Finding;
use crate::listener::Listener;
use crate::scan::ScannedPort;

/// A run's id: its rank in recording order.
pub type RunId = i64;

/// One run, as `history` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    pub id: RunId,
    /// RFC 3339 in UTC.
    pub started: String,
    pub host: String,
    pub command: String,
    pub version: String,
    /// What the run observed: the inside view, a scan, an audit.
    pub listeners: bool,
    pub scan: bool,
    pub audit: bool,
    pub baseline: bool,
}

/// A subject's state while it held, as a timeline shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum SpanState {
    Listeners(Vec<Listener>),
    Port(ScannedPort),
    Finding(Finding),
}

/// One interval: a subject with one set of attributes, from its first to its last run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub subject: Subject,
    pub first_seen: RunSummary,
    /// The last run that saw it with these attributes; the latest run while it holds.
    pub last_seen: Option<RunSummary>,
    /// The run at which it stopped holding, when it did.
    pub ended: Option<RunId>,
    /// True when it stopped because the subject was gone (not because its attributes
    /// changed).
    pub closed: bool,
    pub state: SpanState,
}
