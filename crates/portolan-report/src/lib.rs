//! Every renderer over portolan's model, in one place: one module per format or view.
//! Renderers take the model and a writer; they never run an operation.
//!
//! Text that came from the network or from another process (banners, certificate
//! subjects, process names and command lines) goes through [`text::terminal`] before it
//! reaches a terminal, and through each format's own escaping elsewhere.
#![forbid(unsafe_code)]

pub mod csv;
pub mod json;
pub mod registry;
pub mod table;
pub mod text;
