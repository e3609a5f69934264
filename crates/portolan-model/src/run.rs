//! What every stored or rendered run carries about itself.

use serde::{Deserialize, Serialize};

/// When, where and how a run was made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Start time, RFC 3339 in UTC (`2026-12-01T19:40:00Z`).
    pub started: String,
    /// The host name of the machine that ran it.
    pub host: String,
    /// The command line, arguments joined by spaces.
    pub command: String,
    /// portolan's version.
    pub version: String,
}
