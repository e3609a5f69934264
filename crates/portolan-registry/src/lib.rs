//! The port and service vocabulary shared by every part of portolan.
//!
//! [`Proto`], [`PortRange`] and [`Category`] are the words the inventory, the scanner
//! and the audit all speak.

mod types;

pub use types::{Category, ParseError, PortRange, Proto};
