//! The port and service vocabulary shared by every part of portolan, and the registry of
//! ports and services.
//!
//! [`Proto`], [`PortRange`] and [`Category`] are the words the inventory, the scanner
//! and the audit all speak. [`Registry::embedded`] is IANA's registry, compiled in:
//!
//! ```
//! use portolan_registry::{Proto, Registry};
//! let reg = Registry::embedded();
//! assert_eq!(reg.name_for(443, Proto::Tcp), Some("https"));
//! assert_eq!(reg.by_name("smtp")[0].ports.unwrap().first, 25);
//! ```

#![forbid(unsafe_code)]

pub mod date;
mod iana;
pub mod iana_csv;
mod notes;
mod registry;
mod search;
pub mod services;
mod types;

pub use date::Date;
pub use iana::{Record, Status};
pub use notes::{NOTES, Notes, notes, notes_for_port};
pub use registry::{Entry, Error, Origin, Registry, SYSTEM_SERVICES, Source, Which};
pub use search::Hit;
pub use types::{Category, ParseError, PortRange, Proto};
