//! Errors, each naming the operation and the file.

use std::path::PathBuf;

/// What went wrong, and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system operation on the database or its directory failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not an SQLite database, or fails `PRAGMA quick_check`. It was not
    /// changed.
    #[error(
        "{} is not a usable portolan history database ({detail}); it was left untouched",
        path.display()
    )]
    Corrupt { path: PathBuf, detail: String },
    /// The database was written by a newer portolan. It was not changed.
    #[error(
        "{} has schema version {found}, newer than this portolan understands ({supported}); it was left untouched: use a newer portolan",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// An SQLite call failed.
    #[error("{op} in {}: {source}", path.display())]
    Sql {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// A stored value could not be read back.
    #[error("{op} in {}: stored data is damaged: {detail}", path.display())]
    Damaged {
        op: &'static str,
        path: PathBuf,
        detail: String,
    },
    /// A point of history that does not exist.
    #[error("{0}")]
    NoSuchPoint(String),
    /// Text that does not parse (a point, a duration, an ignore pattern).
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// An nmap XML file that could not be read.
    #[error(transparent)]
    Nmap(#[from] crate::nmap_xml::NmapError),
}

/// Text from the user that does not parse: what it was, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} '{text}': {expected}")]
pub struct ParseError {
    pub what: &'static str,
    pub text: String,
    pub expected: String,
}

impl ParseError {
    pub(crate) fn new(what: &'static str, text: &str, expected: impl Into<String>) -> ParseError {
        let text: String = text.chars().take(200).collect();
        ParseError {
            what,
            text,
            expected: expected.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
