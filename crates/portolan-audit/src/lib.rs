//! Policies for the ports of a host, and their enforcement.
//!
//! A [`Policy`] (parsed from TOML, or one of the built-in [`profiles`]) says which
//! services may listen, where, and for whom. [`evaluate`] judges the inside view
//! ([`Listener`]s with their owners) and the outside view (a [`Scan`]) against it, or
//! against the built-in baseline, into a [`Report`] of [`Finding`]s. [`firewall`] turns a
//! policy into an nftables, iptables or ufw ruleset, and applies nftables with an
//! automatic rollback. The inputs are plain data: the binary maps the inventory and the
//! scanner into them, and tests build them by hand.

pub mod catalog;
mod eval;
pub mod finding;
pub mod firewall;
pub mod init;
pub mod input;
pub mod junit;
pub mod knowledge;
pub mod net;
pub mod policy;
pub mod profiles;
pub mod sarif;
mod suggest;

pub use catalog::Catalog;
pub use eval::{evaluate, exe_risk};
pub use finding::{Finding, Report, Rule, Severity, Summary};
pub use input::{
    Context, Detected, Exposure, Host, Inputs, Listener, NoHost, PortState, Process, Reachable,
    Scan,
};
pub use net::IpNet;
pub use policy::{Policy, PolicyError, PolicyErrors};
pub use portolan_registry::{Date, date};
pub use suggest::nearest;
