//! The schema and its migrations. `PRAGMA user_version` is the schema version; each
//! entry of [`MIGRATIONS`] takes the database from version `i` to `i + 1`. A migration
//! is only ever appended, never edited.

/// The schema version this portolan writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: runs, deduplicated run data, intervals of identities, settings.
    "
    CREATE TABLE blobs (
        id INTEGER PRIMARY KEY,
        hash INTEGER NOT NULL,
        json TEXT NOT NULL
    );
    CREATE INDEX blobs_hash ON blobs(hash);
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started_ms INTEGER NOT NULL,
        started TEXT,
        info INTEGER NOT NULL,
        observed INTEGER NOT NULL,
        scan INTEGER,
        audit INTEGER,
        warnings INTEGER
    );
    CREATE TABLE intervals (
        id INTEGER PRIMARY KEY,
        kind INTEGER NOT NULL,
        ident TEXT NOT NULL,
        port INTEGER,
        hash INTEGER NOT NULL,
        attrs TEXT NOT NULL,
        first_run INTEGER NOT NULL,
        last_run INTEGER,
        end_run INTEGER,
        closed INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX intervals_ident ON intervals(kind, ident, first_run);
    CREATE INDEX intervals_first ON intervals(first_run);
    CREATE INDEX intervals_end ON intervals(end_run) WHERE end_run IS NOT NULL;
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    ",
];
