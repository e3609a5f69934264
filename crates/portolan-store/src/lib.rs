//! portolan's history: snapshots of a host stored in SQLite as intervals of identities,
//! diffs between any two points, baselines, retention, and nmap XML import.
//!
//! A listener's identity is [`portolan_model::ListenerKey`]; a scanned port's is (target
//! address, protocol, port); a finding's is its fingerprint. Each identity is stored as
//! intervals (first run, last run, end), so an unchanged snapshot adds one run row and
//! nothing else. See docs/store.md.
//!
//! ```
//! use portolan_model::{Listener, Proto, Snapshot};
//! use portolan_store::{DiffOptions, Point, Store};
//! let dir = tempfile::tempdir().unwrap();
//! let mut store = Store::open(dir.path().join("history.db")).unwrap();
//! let mut snap = Snapshot::default();
//! snap.run.started = "2026-12-01T10:00:00Z".into();
//! store.record(&snap).unwrap();
//! snap.listeners.push(Listener::new(Proto::Tcp, "0.0.0.0".parse().unwrap(), 8080));
//! snap.run.started = "2026-12-01T11:00:00Z".into();
//! store.record(&snap).unwrap();
//! let diff = store.diff(&Point::Run(1), &Point::Last, &DiffOptions::default()).unwrap();
//! assert_eq!(diff.changes.len(), 1);
//! assert_eq!(diff.changes[0].change.as_str(), "added");
//! ```
#![forbid(unsafe_code)]

mod compare;
mod db;
mod error;
pub mod nmap_xml;
mod noise;
mod path;
mod point;
mod schema;

pub use compare::diff_snapshots;
pub use db::{BUSY_TIMEOUT, Pruned, RunId, RunSummary, Span, SpanState, Store, TimelineQuery};
pub use error::{Error, ParseError, Result};
pub use noise::{DiffOptions, Ignore};
pub use path::{SYSTEM_DB, db_path, default_db_path};
pub use point::{Point, parse_duration};
pub use schema::SCHEMA_VERSION;
