//! The operations a user runs, as library calls that return portolan's model: take an
//! inventory, scan, detect, audit (the inside view, the outside view, the host's facts
//! and the evaluation) and plan a firewall. The binary parses flags, calls one of these
//! and renders the result with `portolan-report`; the store, the exporter and the HTML
//! report call the same functions.
#![forbid(unsafe_code)]

pub mod audit;
pub mod collect;
pub mod detect;
pub mod firewall;
pub mod history;
pub mod host;
pub mod input;
pub mod inventory;
pub mod policy;
pub mod registry;
pub mod report;
pub mod scan;
