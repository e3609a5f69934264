//! portolan's vocabulary, from the kernel to the report.
//!
//! Every other crate speaks these words: an [`Endpoint`] and its [`Exposure`], a
//! [`Process`] and the [`Listener`] it holds, a scan's [`PortResult`] with its
//! [`PortState`] and [`Reason`] and the [`Coverage`] that says what was probed, a
//! [`Detection`], and an audit's [`Finding`] with its [`Severity`] and stable
//! [`Finding::fingerprint`]. All of it is owned data that serializes and reads back.
//!
//! ```
//! use portolan_model::{Exposure, Listener, Proto};
//! let l = Listener::new(Proto::Tcp, "0.0.0.0".parse().unwrap(), 22);
//! assert_eq!(l.exposure, Exposure::All);
//! let json = serde_json::to_string(&l).unwrap();
//! assert_eq!(serde_json::from_str::<Listener>(&json).unwrap(), l);
//! ```
#![forbid(unsafe_code)]

mod coverage;
mod detection;
mod drift;
mod finding;
mod history;
mod listener;
mod net;
mod process;
mod run;
mod scan;
pub mod spec;
mod state;

pub use coverage::{AddrRange, Coverage, Probed};
pub use detection::{Detection, TlsInfo};
pub use drift::{Change, ChangeKind, Diff, FieldChange, Snapshot, Subject};
pub use finding::{
    AuditReport, AuditSummary, Counts, Evidence, Finding, Reach, Remediation, Rule, Severity,
    Suppressed,
};
pub use history::{RunId, RunSummary, Span, SpanState};
pub use listener::{Listener, ListenerKey, Owners, SocketState, owner_set};
pub use net::{Endpoint, Exposure, Family, canonical, fmt_endpoint};
pub use portolan_registry::{Category, PortRange, Proto};
pub use process::Process;
pub use run::RunInfo;
pub use scan::{
    HostResult, HostState, HostTiming, PortResult, ReasonCount, ScanMode, ScanReport, ScanSummary,
    ScannedPort,
};
pub use spec::{PortSpec, PortSpecError};
pub use state::{PortState, Reason};
