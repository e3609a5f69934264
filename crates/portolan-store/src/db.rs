//! The history database: open, record, read back, diff, baseline, timeline, prune.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{DirBuilder, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use portolan_model::{
    AuditReport, AuditSummary, Diff, Finding, Listener, ListenerKey, Proto, RunInfo, ScanReport,
    ScannedPort, Snapshot, Subject, Suppressed,
};
pub use portolan_model::{RunId, RunSummary, Span, SpanState};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::compare::{self, Context, PortKey, Side, port_key};
use crate::error::{Error, Result};
use crate::noise::{DiffOptions, glob_match};
use crate::point::Point;
use crate::schema::{MIGRATIONS, SCHEMA_VERSION};

/// How long a writer waits for another one before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

const LISTENERS: i64 = 0;
const PORTS: i64 = 1;
const FINDINGS: i64 = 2;

/// The `observed` bit of each kind.
fn bit(kind: i64) -> i64 {
    1 << kind
}

/// What a timeline asks for: a port (and protocol), or a process name (`*` globs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimelineQuery {
    pub port: Option<u16>,
    pub protocol: Option<Proto>,
    pub process: Option<String>,
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pruned {
    pub runs: usize,
    pub intervals: usize,
}

/// The scan of a run without its ports' stable attributes (those live in intervals).
#[derive(Serialize, Deserialize)]
struct ScanShell {
    report: ScanReport,
    /// Per host, the ports in report order, with what changes on every scan.
    ports: Vec<Vec<PortRef>>,
}

#[derive(Serialize, Deserialize)]
struct PortRef {
    proto: Proto,
    port: u16,
    rtt_ns: Option<u64>,
    ttl: Option<u8>,
}

#[derive(Serialize, Deserialize)]
struct AuditShell {
    summary: AuditSummary,
    suppressed: Vec<Suppressed>,
    /// Finding fingerprints in report order.
    order: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Info {
    host: String,
    command: String,
    version: String,
}

/// The history database. Every write is one `BEGIN IMMEDIATE` transaction, so writers
/// in several processes take turns (each waits up to [`BUSY_TIMEOUT`]).
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// The first 64 bits of SHA-256: stable across builds, and no one can make two
/// attribute sets collide on purpose to hide a change.
fn fnv(data: &[u8]) -> i64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(data);
    i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// The digest of a kind's open set: every (identity, attributes hash), in order.
fn set_digest(rows: &BTreeMap<String, Row>) -> i64 {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for (ident, row) in rows {
        h.update(ident.as_bytes());
        h.update([0]);
        h.update(row.hash.to_be_bytes());
    }
    i64::from_be_bytes(h.finalize()[..8].try_into().expect("8 bytes"))
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("model types serialize")
}

fn listener_ident(k: &ListenerKey) -> String {
    format!(
        "{}|{}|{}|{}|{}|{}",
        k.netns,
        k.protocol,
        k.family,
        k.address,
        k.port,
        k.interface.as_deref().unwrap_or("")
    )
}

fn port_ident(k: &PortKey) -> String {
    format!("{}|{}|{}", k.0, k.1, k.2)
}

fn ms_of(ts: Timestamp) -> i64 {
    ts.as_millisecond()
}

fn rfc3339(ms: i64) -> String {
    Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

/// A run: its summary, observed bits, and its scan, audit and warnings blobs.
type RunRow = (RunSummary, i64, Option<i64>, Option<i64>, Option<i64>);
/// kind, attrs, first, last, end, closed.
type TimelineRow = (i64, String, RunId, Option<RunId>, Option<RunId>, bool);
/// id, kind, first, last, end.
type PruneRow = (i64, i64, RunId, Option<RunId>, Option<RunId>);

/// One identity's row to store.
struct Row {
    port: Option<u16>,
    hash: i64,
    attrs: String,
}

impl Store {
    /// Opens the database at `path`, creating it (0600, in a 0700 directory) when it
    /// does not exist, and migrating it to [`SCHEMA_VERSION`]. A file that is not an
    /// SQLite database, fails `PRAGMA quick_check`, or has a newer schema is an error
    /// and is left untouched.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let io = |op: &'static str, p: &Path| {
            let p = p.to_path_buf();
            move |source| Error::Io {
                op,
                path: p,
                source,
            }
        };
        let fresh = match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => {
                return Err(Error::Io {
                    op: "open history database",
                    path,
                    source: std::io::Error::other("is a directory"),
                });
            }
            Ok(m) => {
                if m.len() > 0 {
                    let mut head = [0u8; 16];
                    let n = std::fs::File::open(&path)
                        .and_then(|mut f| f.read(&mut head))
                        .map_err(io("read history database", &path))?;
                    if n < 16 || &head != b"SQLite format 3\0" {
                        return Err(Error::Corrupt {
                            path,
                            detail: "not an SQLite file".into(),
                        });
                    }
                }
                m.len() == 0
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(dir)
                        .map_err(io("create directory", dir))?;
                }
                match OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io("create history database", &path)(e)),
                }
                true
            }
            Err(e) => return Err(io("open history database", &path)(e)),
        };
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| Error::Sql {
            op: "open history database",
            path: path.clone(),
            source,
        })?;
        let corrupt = |detail: String| Error::Corrupt {
            path: path.clone(),
            detail,
        };
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| corrupt(e.to_string()))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| corrupt(e.to_string()))?;
        if version < 0 {
            return Err(corrupt(format!("schema version {version} is negative")));
        }
        if version > SCHEMA_VERSION {
            return Err(Error::NewerSchema {
                path,
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if !fresh {
            let check: String = conn
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(|e| corrupt(e.to_string()))?;
            if check != "ok" {
                return Err(corrupt(format!("quick_check: {check}")));
            }
            if version == 0 {
                let tables: i64 = conn
                    .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
                    .map_err(|e| corrupt(e.to_string()))?;
                if tables > 0 {
                    return Err(corrupt("an SQLite database of another program".into()));
                }
            }
        }
        let store = Store { conn, path };
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(store.sql("set WAL mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Damaged {
                op: "set WAL mode",
                path: store.path.clone(),
                detail: format!("journal mode stays {mode}"),
            });
        }
        store
            .conn
            .execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;")
            .map_err(store.sql("set pragmas"))?;
        store.migrate()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self, op: &'static str) -> impl FnOnce(rusqlite::Error) -> Error + use<> {
        let path = self.path.clone();
        move |source| Error::Sql { op, path, source }
    }

    fn damaged(&self, op: &'static str, detail: impl ToString) -> Error {
        Error::Damaged {
            op,
            path: self.path.clone(),
            detail: detail.to_string(),
        }
    }

    fn migrate(&self) -> Result<()> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(self.sql("migrate schema"))?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.sql("migrate schema"))?;
        if version > SCHEMA_VERSION {
            return Err(Error::NewerSchema {
                path: self.path.clone(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(m).map_err(self.sql("migrate schema"))?;
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(self.sql("migrate schema"))?;
        }
        tx.commit().map_err(self.sql("migrate schema"))
    }

    /// Runs `PRAGMA integrity_check`: `ok`, or what is wrong.
    pub fn integrity_check(&self) -> Result<String> {
        self.conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(self.sql("check integrity"))
    }

    fn blob(tx: &Connection, json: &str) -> rusqlite::Result<i64> {
        let hash = fnv(json.as_bytes());
        let found: Option<i64> = tx
            .prepare_cached("SELECT id FROM blobs WHERE hash = ?1 AND json = ?2")?
            .query_row(params![hash, json], |r| r.get(0))
            .optional()?;
        match found {
            Some(id) => Ok(id),
            None => {
                tx.prepare_cached("INSERT INTO blobs (hash, json) VALUES (?1, ?2)")?
                    .execute(params![hash, json])?;
                Ok(tx.last_insert_rowid())
            }
        }
    }

    fn read_blob<T: for<'de> Deserialize<'de>>(&self, id: i64) -> Result<T> {
        let json: String = self
            .conn
            .prepare_cached("SELECT json FROM blobs WHERE id = ?1")
            .and_then(|mut s| s.query_row([id], |r| r.get(0)))
            .map_err(self.sql("read run data"))?;
        serde_json::from_str(&json).map_err(|e| self.damaged("read run data", e))
    }

    /// Stores a snapshot as a new run and returns its id. Only what changed since the
    /// previous run of the same kind is written: an unchanged snapshot adds one run row.
    pub fn record(&mut self, snap: &Snapshot) -> Result<RunId> {
        let op = "record run";
        let started_ts = snap.run.started.parse::<Timestamp>().ok();
        let started_ms = ms_of(started_ts.unwrap_or_else(Timestamp::now));
        let started_text = match started_ts {
            Some(t) if t.to_string() == snap.run.started => None,
            _ => Some(snap.run.started.clone()),
        };
        let info = to_json(&Info {
            host: snap.run.host.clone(),
            command: snap.run.command.clone(),
            version: snap.run.version.clone(),
        });
        let inside = compare::has_inside_view(snap);
        let mut observed = 0;
        let mut groups: [BTreeMap<String, Row>; 3] = Default::default();
        if inside {
            observed |= bit(LISTENERS);
            let mut by_key: BTreeMap<ListenerKey, Vec<&Listener>> = BTreeMap::new();
            for l in &snap.listeners {
                by_key.entry(l.key()).or_default().push(l);
            }
            for (k, v) in by_key {
                let attrs = to_json(&v);
                groups[0].insert(
                    listener_ident(&k),
                    Row {
                        port: Some(k.port),
                        hash: fnv(attrs.as_bytes()),
                        attrs,
                    },
                );
            }
        }
        let mut scan_shell = None;
        if let Some(scan) = &snap.scan {
            observed |= bit(PORTS);
            let mut report = scan.clone();
            let mut refs = Vec::new();
            for h in &mut report.hosts {
                let ports = std::mem::take(&mut h.ports);
                refs.push(
                    ports
                        .iter()
                        .map(|p| PortRef {
                            proto: p.result.proto,
                            port: p.result.port,
                            rtt_ns: p.result.rtt.map(|d| d.as_nanos() as u64),
                            ttl: p.result.ttl,
                        })
                        .collect::<Vec<_>>(),
                );
                for mut p in ports {
                    p.result.rtt = None;
                    p.result.ttl = None;
                    let k = port_key(&p);
                    let attrs = to_json(&p);
                    groups[1].entry(port_ident(&k)).or_insert(Row {
                        port: Some(k.2),
                        hash: fnv(attrs.as_bytes()),
                        attrs,
                    });
                }
            }
            scan_shell = Some(to_json(&ScanShell {
                report,
                ports: refs,
            }));
        }
        let mut audit_shell = None;
        if let Some(audit) = &snap.audit {
            observed |= bit(FINDINGS);
            for f in &audit.findings {
                let attrs = to_json(f);
                groups[2].entry(f.fingerprint.clone()).or_insert(Row {
                    port: f.port,
                    hash: fnv(attrs.as_bytes()),
                    attrs,
                });
            }
            audit_shell = Some(to_json(&AuditShell {
                summary: audit.summary.clone(),
                suppressed: audit.suppressed.clone(),
                order: audit
                    .findings
                    .iter()
                    .map(|f| f.fingerprint.clone())
                    .collect(),
            }));
        }
        let warnings = (!snap.warnings.is_empty()).then(|| to_json(&snap.warnings));
        let coverage = snap.scan.as_ref().map(|s| &s.coverage);

        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(self.sql(op))?;
        let run = (|| -> rusqlite::Result<RunId> {
            let info = Self::blob(&tx, &info)?;
            let scan = scan_shell
                .as_deref()
                .map(|j| Self::blob(&tx, j))
                .transpose()?;
            let audit = audit_shell
                .as_deref()
                .map(|j| Self::blob(&tx, j))
                .transpose()?;
            let warnings = warnings
                .as_deref()
                .map(|j| Self::blob(&tx, j))
                .transpose()?;
            tx.execute(
                "INSERT INTO runs (started_ms, started, info, observed, scan, audit, warnings)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    started_ms,
                    started_text,
                    info,
                    observed,
                    scan,
                    audit,
                    warnings
                ],
            )?;
            let run = tx.last_insert_rowid();
            for (kind, rows) in groups.iter().enumerate() {
                let kind = kind as i64;
                if observed & bit(kind) == 0 {
                    continue;
                }
                // Listeners and findings: the open set is exactly the last run's, so an
                // unchanged one is recognised by its digest without reading it.
                let digest = set_digest(rows);
                let key = format!("digest{kind}");
                if kind != PORTS {
                    let old: Option<i64> = tx
                        .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
                        .query_row([&key], |r| r.get(0))
                        .optional()?;
                    if old == Some(digest) {
                        continue;
                    }
                }
                let prev: Option<RunId> = tx.query_row(
                    "SELECT max(id) FROM runs WHERE id < ?1 AND observed & ?2 != 0",
                    params![run, bit(kind)],
                    |r| r.get(0),
                )?;
                let mut open: HashMap<String, (i64, i64)> = HashMap::new();
                {
                    let mut s = tx.prepare_cached(
                        "SELECT id, ident, hash FROM intervals WHERE kind = ?1 AND end_run IS NULL",
                    )?;
                    let mut q = s.query([kind])?;
                    while let Some(r) = q.next()? {
                        open.insert(r.get(1)?, (r.get(0)?, r.get(2)?));
                    }
                }
                let mut end = tx.prepare_cached(
                    "UPDATE intervals SET end_run = ?2, last_run = ?3, closed = ?4 WHERE id = ?1",
                )?;
                let mut ins = tx.prepare_cached(
                    "INSERT INTO intervals (kind, ident, port, hash, attrs, first_run)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for (ident, &(id, _)) in &open {
                    if rows.contains_key(ident) {
                        continue;
                    }
                    if kind == PORTS {
                        // A port this scan did not probe is not checked: it stays open.
                        let covered = parse_port_ident(ident)
                            .is_some_and(|(h, p, n)| coverage.is_some_and(|c| c.covers(h, p, n)));
                        if !covered {
                            continue;
                        }
                    }
                    end.execute(params![id, run, prev, 1])?;
                }
                for (ident, row) in rows {
                    match open.get(ident) {
                        Some(&(_, hash)) if hash == row.hash => continue,
                        Some(&(id, _)) => {
                            end.execute(params![id, run, prev, 0])?;
                        }
                        None => {}
                    }
                    ins.execute(params![kind, ident, row.port, row.hash, row.attrs, run])?;
                }
                if kind != PORTS {
                    tx.prepare_cached(
                        "INSERT INTO settings (key, value) VALUES (?1, ?2)
                         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    )?
                    .execute(params![key, digest])?;
                }
            }
            Ok(run)
        })()
        .map_err(self.sql(op))?;
        tx.commit().map_err(self.sql(op))?;
        Ok(run)
    }

    fn run_row(&self, id: RunId) -> Result<Option<RunRow>> {
        let baseline = self.baseline_id()?;
        let row = self
            .conn
            .prepare_cached(
                "SELECT started_ms, started, info, observed, scan, audit, warnings FROM runs WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                        r.get::<_, Option<i64>>(5)?,
                        r.get::<_, Option<i64>>(6)?,
                    ))
                })
                .optional()
            })
            .map_err(self.sql("read run"))?;
        let Some((ms, text, info, observed, scan, audit, warnings)) = row else {
            return Ok(None);
        };
        let info: Info = self.read_blob(info)?;
        Ok(Some((
            RunSummary {
                id,
                started: text.unwrap_or_else(|| rfc3339(ms)),
                host: info.host,
                command: info.command,
                version: info.version,
                listeners: observed & bit(LISTENERS) != 0,
                scan: observed & bit(PORTS) != 0,
                audit: observed & bit(FINDINGS) != 0,
                baseline: baseline == Some(id),
            },
            observed,
            scan,
            audit,
            warnings,
        )))
    }

    /// One run's summary.
    pub fn run(&self, id: RunId) -> Result<RunSummary> {
        self.run_row(id)?.map(|r| r.0).ok_or_else(|| {
            Error::NoSuchPoint(format!("run {id} is not in {}", self.path.display()))
        })
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> Result<Vec<RunSummary>> {
        let ids: Vec<RunId> = self
            .conn
            .prepare("SELECT id FROM runs ORDER BY id")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(self.sql("list runs"))?;
        ids.into_iter().map(|id| self.run(id)).collect()
    }

    /// The rows of `kind` present at `run`, as (ident, attrs).
    fn present(&self, kind: i64, run: RunId) -> Result<Vec<(String, String)>> {
        self.conn
            .prepare_cached(
                "SELECT ident, attrs FROM intervals WHERE kind = ?1 AND first_run <= ?2
                 AND (end_run IS NULL OR end_run > ?2)",
            )
            .and_then(|mut s| {
                s.query_map(params![kind, run], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .map_err(self.sql("read run"))
    }

    /// A stored run, read back as the snapshot that was recorded. Listeners come in
    /// `portolan ls` order.
    pub fn snapshot(&self, id: RunId) -> Result<Snapshot> {
        let op = "read run";
        let (summary, observed, scan, audit, warnings) = self.run_row(id)?.ok_or_else(|| {
            Error::NoSuchPoint(format!("run {id} is not in {}", self.path.display()))
        })?;
        let mut snap = Snapshot {
            run: RunInfo {
                started: summary.started,
                host: summary.host,
                command: summary.command,
                version: summary.version,
            },
            ..Snapshot::default()
        };
        if observed & bit(LISTENERS) != 0 {
            for (_, attrs) in self.present(LISTENERS, id)? {
                let v: Vec<Listener> =
                    serde_json::from_str(&attrs).map_err(|e| self.damaged(op, e))?;
                snap.listeners.extend(v);
            }
            snap.listeners.sort_by(Listener::list_order);
        }
        if let Some(scan) = scan {
            let shell: ScanShell = self.read_blob(scan)?;
            let mut ports: HashMap<String, String> = self.present(PORTS, id)?.into_iter().collect();
            let mut report = shell.report;
            for (h, refs) in report.hosts.iter_mut().zip(shell.ports) {
                let host = portolan_model::canonical(h.host);
                for r in refs {
                    let ident = port_ident(&(host, r.proto, r.port));
                    let attrs = ports
                        .remove(&ident)
                        .ok_or_else(|| self.damaged(op, format!("no interval for port {ident}")))?;
                    let mut p: ScannedPort =
                        serde_json::from_str(&attrs).map_err(|e| self.damaged(op, e))?;
                    p.result.rtt = r.rtt_ns.map(Duration::from_nanos);
                    p.result.ttl = r.ttl;
                    h.ports.push(p);
                }
            }
            snap.scan = Some(report);
        }
        if let Some(audit) = audit {
            let shell: AuditShell = self.read_blob(audit)?;
            let mut found: HashMap<String, String> =
                self.present(FINDINGS, id)?.into_iter().collect();
            let mut findings = Vec::new();
            for fp in shell.order {
                let attrs = found
                    .remove(&fp)
                    .ok_or_else(|| self.damaged(op, format!("no interval for finding {fp}")))?;
                findings.push(serde_json::from_str(&attrs).map_err(|e| self.damaged(op, e))?);
            }
            snap.audit = Some(AuditReport {
                findings,
                suppressed: shell.suppressed,
                summary: shell.summary,
            });
        }
        if let Some(w) = warnings {
            snap.warnings = self.read_blob(w)?;
        }
        Ok(snap)
    }

    fn baseline_id(&self) -> Result<Option<RunId>> {
        self.conn
            .prepare_cached("SELECT value FROM settings WHERE key = 'baseline'")
            .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
            .map_err(self.sql("read baseline"))
    }

    fn latest(&self) -> Result<Option<RunId>> {
        self.conn
            .query_row("SELECT max(id) FROM runs", [], |r| r.get(0))
            .map_err(self.sql("find last run"))
    }

    /// The run a point names. Times resolve to the last run started at or before them.
    pub fn resolve(&self, point: &Point) -> Result<RunId> {
        let db = self.path.display();
        match point {
            Point::Last => self
                .latest()?
                .ok_or_else(|| Error::NoSuchPoint(format!("no run recorded yet in {db}"))),
            Point::Baseline => self.baseline_id()?.ok_or_else(|| {
                Error::NoSuchPoint(format!(
                    "no baseline in {db}: accept one with `portolan baseline accept`"
                ))
            }),
            Point::Run(id) => {
                let exists: Option<i64> = self
                    .conn
                    .query_row("SELECT id FROM runs WHERE id = ?1", [id], |r| r.get(0))
                    .optional()
                    .map_err(self.sql("find run"))?;
                exists.ok_or_else(|| {
                    Error::NoSuchPoint(format!("run {id} is not in {db} (see `portolan history`)"))
                })
            }
            Point::Time(t) => {
                let found: Option<i64> = self
                    .conn
                    .query_row(
                        "SELECT max(id) FROM runs WHERE started_ms <= ?1",
                        [ms_of(*t)],
                        |r| r.get(0),
                    )
                    .map_err(self.sql("find run"))?;
                found.ok_or_else(|| Error::NoSuchPoint(format!("no run at or before {t} in {db}")))
            }
            Point::File(f) => Err(Error::NoSuchPoint(format!(
                "{} is a file, not a point of the history in {db}",
                f.display()
            ))),
        }
    }

    /// The latest run at or before `run` that observed `kind`.
    fn observed_at(&self, kind: i64, run: RunId) -> Result<Option<RunId>> {
        self.conn
            .prepare_cached("SELECT max(id) FROM runs WHERE id <= ?1 AND observed & ?2 != 0")
            .and_then(|mut s| s.query_row(params![run, bit(kind)], |r| r.get(0)))
            .map_err(self.sql("find run"))
    }

    fn label(&self, point: &Point, id: RunId) -> Result<String> {
        let r = self.run(id)?;
        let name = match point {
            Point::Last => "last: ",
            Point::Baseline => "baseline: ",
            _ => "",
        };
        Ok(format!("{name}run {id} ({})", r.started))
    }

    /// The changes between two points of the history.
    pub fn diff(&self, from: &Point, to: &Point, opts: &DiffOptions) -> Result<Diff> {
        let f = self.resolve(from)?;
        let t = self.resolve(to)?;
        let mut diff = self.diff_runs(f, t, opts)?;
        diff.from = self.label(from, f)?;
        diff.to = self.label(to, t)?;
        Ok(diff)
    }

    /// The changes between two runs. The work is proportional to what changed.
    pub fn diff_runs(&self, from: RunId, to: RunId, opts: &DiffOptions) -> Result<Diff> {
        let op = "diff runs";
        let mut a = Side::default();
        let mut b = Side::default();
        let mut ctx = Context::default();
        let mut times: HashMap<RunId, Option<String>> = HashMap::new();
        let to_ms: Option<i64> = self
            .conn
            .query_row("SELECT started_ms FROM runs WHERE id = ?1", [to], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.sql(op))?;
        let mut time_of = |run: RunId| -> Result<Option<String>> {
            if let Some(t) = times.get(&run) {
                return Ok(t.clone());
            }
            let t: Option<i64> = self
                .conn
                .prepare_cached("SELECT started_ms FROM runs WHERE id = ?1")
                .and_then(|mut s| s.query_row([run], |r| r.get(0)).optional())
                .map_err(self.sql(op))?;
            let t = t.map(rfc3339);
            times.insert(run, t.clone());
            Ok(t)
        };
        let mut young: HashSet<Subject> = HashSet::new();
        let min_age_cut = opts
            .min_age
            .zip(to_ms)
            .map(|(d, ms)| ms.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
        for kind in [LISTENERS, PORTS, FINDINGS] {
            let (Some(fk), Some(tk)) = (self.observed_at(kind, from)?, self.observed_at(kind, to)?)
            else {
                continue;
            };
            if fk == tk {
                continue;
            }
            let (lo, hi) = (fk.min(tk), fk.max(tk));
            let rows: Vec<(String, String, RunId, Option<RunId>)> = self
                .conn
                .prepare_cached(
                    "SELECT ident, attrs, first_run, end_run FROM intervals
                     WHERE kind = ?1 AND ((first_run > ?2 AND first_run <= ?3)
                                          OR (end_run > ?2 AND end_run <= ?3))",
                )
                .and_then(|mut s| {
                    s.query_map(params![kind, lo, hi], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })?
                    .collect()
                })
                .map_err(self.sql(op))?;
            let at = |x: RunId, first: RunId, end: Option<RunId>| {
                first <= x && end.is_none_or(|e| e > x)
            };
            let mut appeared: Vec<(String, Subject)> = Vec::new();
            for (ident, attrs, first, end) in rows {
                let (in_a, in_b) = (at(fk, first, end), at(tk, first, end));
                if in_a == in_b {
                    continue;
                }
                // When the state at `to` began (or, for a removal, ended).
                let since = if in_b { first } else { end.unwrap_or(first) };
                let since_t = time_of(since)?;
                let bad = |e: serde_json::Error| self.damaged(op, e);
                let subject = match kind {
                    LISTENERS => {
                        let v: Vec<Listener> = serde_json::from_str(&attrs).map_err(bad)?;
                        let Some(k) = v.first().map(Listener::key) else {
                            continue;
                        };
                        let s = Subject::Listener(k.clone());
                        if in_a {
                            a.listeners.insert(k, v);
                        } else {
                            b.listeners.insert(k, v);
                        }
                        s
                    }
                    PORTS => {
                        let p: ScannedPort = serde_json::from_str(&attrs).map_err(bad)?;
                        let k = port_key(&p);
                        let s = Subject::Port {
                            host: k.0,
                            protocol: k.1,
                            port: k.2,
                        };
                        if in_a {
                            a.ports.insert(k, p);
                        } else {
                            b.ports.insert(k, p);
                        }
                        s
                    }
                    _ => {
                        let f: Finding = serde_json::from_str(&attrs).map_err(bad)?;
                        let s = Subject::Finding {
                            fingerprint: f.fingerprint.clone(),
                            rule: f.rule,
                        };
                        if in_a {
                            a.findings.insert(f.fingerprint.clone(), f);
                        } else {
                            b.findings.insert(f.fingerprint.clone(), f);
                        }
                        s
                    }
                };
                if in_b && fk < tk {
                    appeared.push((ident, subject.clone()));
                }
                if let (Some(cut), Some(ms)) = (min_age_cut, self.started_ms(since)?)
                    && ms > cut
                {
                    young.insert(subject.clone());
                }
                if let Some(t) = since_t {
                    // A change's time is when the new state began; keep the later one.
                    let e = ctx.at.entry(subject).or_insert_with(|| t.clone());
                    if *e < t {
                        *e = t;
                    }
                }
            }
            for (ident, subject) in appeared {
                let before: Option<i64> = self
                    .conn
                    .prepare_cached(
                        "SELECT 1 FROM intervals WHERE kind = ?1 AND ident = ?2 AND first_run < ?3 LIMIT 1",
                    )
                    .and_then(|mut s| s.query_row(params![kind, ident, fk], |r| r.get(0)).optional())
                    .map_err(self.sql(op))?;
                if before.is_some() {
                    ctx.seen_before.insert(subject);
                }
            }
        }
        let mut changes = compare::compare(&a, &b, opts, &ctx);
        changes.retain(|c| !young.contains(&c.subject));
        Ok(Diff {
            from: format!("run {from}"),
            to: format!("run {to}"),
            changes,
        })
    }

    fn started_ms(&self, run: RunId) -> Result<Option<i64>> {
        self.conn
            .prepare_cached("SELECT started_ms FROM runs WHERE id = ?1")
            .and_then(|mut s| s.query_row([run], |r| r.get(0)).optional())
            .map_err(self.sql("read run"))
    }

    /// Marks the run a point names (a run id or `last`, or a time) as the baseline.
    pub fn baseline_accept(&mut self, point: &Point) -> Result<RunId> {
        let id = self.resolve(point)?;
        self.conn
            .execute(
                "INSERT INTO settings (key, value) VALUES ('baseline', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [id],
            )
            .map_err(self.sql("accept baseline"))?;
        Ok(id)
    }

    /// The baseline run, if one was accepted.
    pub fn baseline(&self) -> Result<Option<RunSummary>> {
        self.baseline_id()?.map(|id| self.run(id)).transpose()
    }

    /// The listener identities of the baseline (its inside view, or the last one
    /// before it).
    pub fn baseline_keys(&self) -> Result<HashSet<ListenerKey>> {
        let id = self.resolve(&Point::Baseline)?;
        let Some(run) = self.observed_at(LISTENERS, id)? else {
            return Ok(HashSet::new());
        };
        let mut keys = HashSet::new();
        for (_, attrs) in self.present(LISTENERS, run)? {
            let v: Vec<Listener> =
                serde_json::from_str(&attrs).map_err(|e| self.damaged("read baseline", e))?;
            keys.extend(v.first().map(Listener::key));
        }
        Ok(keys)
    }

    /// The listeners whose identity is not in the baseline (the audit's
    /// `new-since-baseline`). An error when no baseline was accepted.
    pub fn not_in_baseline<'a>(&self, listeners: &'a [Listener]) -> Result<Vec<&'a Listener>> {
        let keys = self.baseline_keys()?;
        Ok(listeners
            .iter()
            .filter(|l| !keys.contains(&l.key()))
            .collect())
    }

    /// The intervals of one port or process, oldest first.
    pub fn timeline(&self, q: &TimelineQuery) -> Result<Vec<Span>> {
        let op = "read timeline";
        let rows: Vec<TimelineRow> = self
            .conn
            .prepare(
                "SELECT kind, attrs, first_run, last_run, end_run, closed FROM intervals
                 WHERE kind IN (0, 1) AND (?1 IS NULL OR port = ?1) ORDER BY first_run, id",
            )
            .and_then(|mut s| {
                s.query_map([q.port], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })?
                .collect()
            })
            .map_err(self.sql(op))?;
        let latest = [
            self.observed_at(LISTENERS, i64::MAX)?,
            self.observed_at(PORTS, i64::MAX)?,
        ];
        let mut out = Vec::new();
        for (kind, attrs, first, last, end, closed) in rows {
            let bad = |e: serde_json::Error| self.damaged(op, e);
            let (subject, state) = if kind == LISTENERS {
                let v: Vec<Listener> = serde_json::from_str(&attrs).map_err(bad)?;
                let Some(l) = v.first() else { continue };
                if q.protocol.is_some_and(|p| p != l.protocol) {
                    continue;
                }
                if let Some(g) = &q.process {
                    let hit = v.iter().flat_map(|l| l.processes.iter()).any(|p| {
                        glob_match(g, &p.name)
                            || p.exe
                                .as_deref()
                                .and_then(|e| e.rsplit('/').next())
                                .is_some_and(|b| glob_match(g, b))
                    });
                    if !hit {
                        continue;
                    }
                }
                (Subject::Listener(l.key()), SpanState::Listeners(v))
            } else {
                if q.process.is_some() {
                    continue;
                }
                let p: ScannedPort = serde_json::from_str(&attrs).map_err(bad)?;
                if q.protocol.is_some_and(|x| x != p.result.proto) {
                    continue;
                }
                let k = port_key(&p);
                (
                    Subject::Port {
                        host: k.0,
                        protocol: k.1,
                        port: k.2,
                    },
                    SpanState::Port(p),
                )
            };
            let last = if end.is_none() {
                latest[kind as usize]
            } else {
                last
            };
            out.push(Span {
                subject,
                first_seen: self.run(first)?,
                last_seen: last.and_then(|l| self.run(l).ok()),
                ended: end,
                closed,
                state,
            });
        }
        Ok(out)
    }

    /// Deletes the runs started more than `keep` before `now`, except the baseline and
    /// the latest run, and the intervals no remaining run holds. Every remaining run
    /// reads back as before.
    pub fn prune(&mut self, keep: Duration, now: Timestamp) -> Result<Pruned> {
        let op = "prune history";
        let cut = ms_of(now) - keep.as_millis().min(i64::MAX as u128) as i64;
        let baseline = self.baseline_id()?.unwrap_or(0);
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(self.sql(op))?;
        let result = (|| -> rusqlite::Result<Pruned> {
            let runs = tx.execute(
                "DELETE FROM runs WHERE started_ms < ?1 AND id != ?2
                 AND id != (SELECT max(id) FROM runs)",
                params![cut, baseline],
            )?;
            if runs == 0 {
                return Ok(Pruned::default());
            }
            let kept: Vec<(RunId, i64)> = tx
                .prepare("SELECT id, observed FROM runs ORDER BY id")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let all: Vec<RunId> = kept.iter().map(|k| k.0).collect();
            let of_kind: [Vec<RunId>; 3] = [0, 1, 2].map(|k| {
                kept.iter()
                    .filter(|r| r.1 & bit(k) != 0)
                    .map(|r| r.0)
                    .collect()
            });
            let rows: Vec<PruneRow> = tx
                .prepare("SELECT id, kind, first_run, last_run, end_run FROM intervals")?
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut del = tx.prepare("DELETE FROM intervals WHERE id = ?1")?;
            let mut upd = tx.prepare(
                "UPDATE intervals SET first_run = ?2, last_run = ?3, end_run = ?4 WHERE id = ?1",
            )?;
            let mut intervals = 0;
            for (id, kind, first, last, end) in rows {
                let runs = &of_kind[kind.clamp(0, 2) as usize];
                let i = runs.partition_point(|&r| r < first);
                let new_first = runs.get(i).copied().filter(|&r| end.is_none_or(|e| r < e));
                let Some(new_first) = new_first else {
                    del.execute([id])?;
                    intervals += 1;
                    continue;
                };
                let (new_last, new_end) = match end {
                    None => (last, None),
                    Some(e) => {
                        let j = runs.partition_point(|&r| r < e);
                        let nl = j.checked_sub(1).map(|j| runs[j]);
                        let ne = all
                            .get(all.partition_point(|&r| r < e))
                            .copied()
                            .unwrap_or(e);
                        (nl, Some(ne))
                    }
                };
                if (new_first, new_last, new_end) != (first, last, end) {
                    upd.execute(params![id, new_first, new_last, new_end])?;
                }
            }
            tx.execute(
                "DELETE FROM blobs WHERE id NOT IN (SELECT info FROM runs)
                 AND id NOT IN (SELECT scan FROM runs WHERE scan IS NOT NULL)
                 AND id NOT IN (SELECT audit FROM runs WHERE audit IS NOT NULL)
                 AND id NOT IN (SELECT warnings FROM runs WHERE warnings IS NOT NULL)",
                [],
            )?;
            Ok(Pruned { runs, intervals })
        })()
        .map_err(self.sql(op))?;
        tx.commit().map_err(self.sql(op))?;
        Ok(result)
    }

    /// Writes the WAL into the database file and truncates it (for size checks and
    /// backups).
    pub fn checkpoint(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(self.sql("checkpoint"))
    }
}

fn parse_port_ident(s: &str) -> Option<PortKey> {
    let mut it = s.rsplitn(3, '|');
    let port = it.next()?.parse().ok()?;
    let proto = it.next()?.parse().ok()?;
    let host = it.next()?.parse().ok()?;
    Some((host, proto, port))
}
