//! nmap XML import.

/// An nmap XML file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("read nmap XML {source_name}: {detail}")]
pub struct NmapError {
    pub source_name: String,
    pub detail: String,
}
