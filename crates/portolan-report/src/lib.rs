//! Every renderer over portolan's model, in one place: one module per format or view.
//! Renderers take the model and a writer; they never run an operation.
//!
//! Text that came from the network or from another process (banners, certificate
//! subjects, process names and command lines) goes through [`text::terminal`] before it
//! reaches a terminal, and through each format's own escaping elsewhere.
#![forbid(unsafe_code)]

pub mod audit;
pub mod csv;
pub mod detect;
pub mod drift;
pub mod html;
pub mod json;
pub mod junit;
pub mod listeners;
pub mod metrics;
pub mod policy;
pub mod registry;
pub mod sarif;
pub mod scan;
pub mod table;
pub mod text;
pub mod xml;
