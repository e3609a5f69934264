//! History and drift: record a snapshot of this host (inventory and audit, a scan when
//! asked, or an nmap XML file), diff any two points (runs of the database, or files),
//! watch for changes as they happen, the baseline and `audit --since`, and retention.
//! The database itself is `portolan-store`; this module is the operations over it.
//!
//! ```no_run
//! use portolan_app::history::{self, DiffRequest, RecordRequest};
//! let snap = history::snapshot(&RecordRequest::default()).unwrap();
//! let mut store = history::open(None).unwrap();
//! let id = store.record(&snap).unwrap();
//! let diff = history::diff(&DiffRequest::default()).unwrap();
//! println!("run {id}: {} changes", diff.changes.len());
//! ```

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use portolan_audit::{Date, Inputs};
use portolan_model::{
    AuditReport, Change, ChangeKind, Diff, Exposure, Finding, Listener, ListenerKey, Remediation,
    Rule, RunInfo, ScanReport, Severity, Snapshot, Subject,
};
use portolan_registry::Registry;
pub use portolan_store::{
    DiffOptions, Error as StoreError, Ignore, Point, Pruned, RunId, RunSummary, Span, SpanState,
    Store, TimelineQuery, diff_snapshots, nmap_xml, parse_duration,
};

use crate::audit::{AuditError, inside_view, judge, outside_view};
use crate::host::ephemeral_range;
use crate::policy::{PolicySource, load};

/// The largest portolan JSON file a diff reads.
pub const MAX_JSON_BYTES: u64 = 256 << 20;

/// Why a history operation could not be done.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(
        "no place for the history database: give --db FILE or set PORTOLAN_DB (no HOME is set)"
    )]
    NoDbPath,
    #[error("no history database at {} (take a snapshot first: portolan record)", .0.display())]
    NoDb(PathBuf),
    #[error("{} is empty: nothing was recorded in it (take a snapshot first: portolan record)", .0.display())]
    EmptyDb(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("cannot list the listening sockets")]
    Inventory(#[source] portolan_inventory::Error),
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {detail}", path.display())]
    File { path: PathBuf, detail: String },
    #[error("{} holds {runs} run(s); a diff without points needs two (portolan record)", path.display())]
    TooFewRuns { path: PathBuf, runs: usize },
    #[error("--since {point}: the audit had no inside view (a scan of another host)")]
    SinceNeedsInsideView { point: String },
    #[error("invalid --port '{0}' (expected a port such as 8080 or 53/udp)")]
    Port(String),
}

type Result<T, E = HistoryError> = std::result::Result<T, E>;

/// The database `flag` names, or the default place (see `portolan_store::db_path`),
/// opened (and created when missing).
pub fn open(flag: Option<&Path>) -> Result<Store> {
    let path = portolan_store::default_db_path(flag).ok_or(HistoryError::NoDbPath)?;
    Ok(Store::open(&path)?)
}

/// Where the database is: `flag`, else the default place.
pub fn db_path(flag: Option<&Path>) -> Option<PathBuf> {
    portolan_store::default_db_path(flag)
}

/// The port of a timeline query and its protocol, if named: `8080`, `53/udp`.
pub fn parse_port(text: &str) -> Result<(u16, Option<portolan_model::Proto>)> {
    let bad = || HistoryError::Port(text.to_string());
    let (p, proto) = match text.split_once('/') {
        Some((p, proto)) => (p, Some(proto.parse().map_err(|_| bad())?)),
        None => (text, None),
    };
    let port = p.trim().parse::<u16>().map_err(|_| bad())?;
    Ok((port, proto))
}

/// [`open`], but only a database that exists: reading commands create nothing (an
/// empty file, which [`Store::open`] would make a database of, is an error too).
pub fn open_existing(flag: Option<&Path>) -> Result<Store> {
    let path = portolan_store::default_db_path(flag).ok_or(HistoryError::NoDbPath)?;
    match std::fs::metadata(&path) {
        Err(_) => return Err(HistoryError::NoDb(path)),
        Ok(m) if m.is_file() && m.len() == 0 => return Err(HistoryError::EmptyDb(path)),
        Ok(_) => {}
    }
    Ok(Store::open(&path)?)
}

/// This machine's host name (`/proc/sys/kernel/hostname`).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Now, RFC 3339 in UTC, to the millisecond.
pub fn now_text() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Millisecond)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string()
}

/// A run's description: now, this host, `command`, portolan's version.
pub fn run_info(command: &str) -> RunInfo {
    RunInfo {
        started: now_text(),
        host: host_name(),
        command: command.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// What `portolan record` takes.
#[derive(Debug, Clone, Default)]
pub struct RecordRequest {
    /// The command line, as the run keeps it.
    pub command: String,
    /// Take the inside view of this named network namespace.
    pub netns: Option<String>,
    /// The policy the audit judges against (the built-in baseline by default).
    pub policy: PolicySource,
    /// Also scan this target (the outside view).
    pub scan: Option<String>,
    /// With a scan, detect services.
    pub detect: bool,
}

/// A snapshot of this host: the inside view and its audit, and a scan when asked.
pub fn snapshot(req: &RecordRequest) -> Result<Snapshot> {
    let run = run_info(&req.command);
    let loaded = load(&req.policy).map_err(AuditError::from)?;
    let (listeners, mut warnings) = inside_view(req.netns.as_deref())?;
    let scan = match &req.scan {
        Some(target) => {
            let opts = crate::audit::AuditOptions {
                netns: req.netns.clone(),
                detect: req.detect,
                ..crate::audit::AuditOptions::default()
            };
            let (scan, w) = outside_view(
                std::slice::from_ref(target),
                &listeners,
                loaded.as_ref().map(|l| &l.policy),
                &opts,
                &mut |_| {},
            )?;
            warnings.extend(w);
            Some(scan)
        }
        None => None,
    };
    let netns = listeners.first().map(|l| l.netns.to_string());
    let report = judge(
        &Inputs {
            listeners: Some(listeners.clone()),
            scan: scan.clone(),
            netns,
        },
        loaded.as_ref(),
        Date::today_utc(),
    );
    Ok(Snapshot {
        run,
        listeners,
        audit: Some(report),
        scan: scan.map(|s| s.report),
        warnings,
    })
}

/// A snapshot of an nmap XML file (`record --import`).
pub fn import(path: &Path) -> Result<Snapshot> {
    let file = std::fs::File::open(path).map_err(|source| HistoryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let scan = nmap_xml::read_scan(file, &path.display().to_string()).map_err(StoreError::from)?;
    let mut snap = scan.into_snapshot(&host_name());
    if snap.run.started.is_empty() {
        snap.run.started = now_text();
    }
    Ok(snap)
}

/// A snapshot of what `ls` listed (the whole inside view, no filter).
pub fn of_listeners(command: &str, listeners: &[Listener], warnings: &[String]) -> Snapshot {
    Snapshot {
        run: run_info(command),
        listeners: listeners.to_vec(),
        warnings: warnings.to_vec(),
        ..Snapshot::default()
    }
}

/// A snapshot of what `scan` found.
pub fn of_scan(command: &str, report: &ScanReport) -> Snapshot {
    Snapshot {
        run: run_info(command),
        scan: Some(report.clone()),
        ..Snapshot::default()
    }
}

/// A snapshot of an audit: its report with the inside view it judged.
pub fn of_audit(command: &str, listeners: Vec<Listener>, report: &AuditReport) -> Snapshot {
    Snapshot {
        run: run_info(command),
        listeners,
        audit: Some(report.clone()),
        ..Snapshot::default()
    }
}

/// Stores `snap` in the database `db` names.
pub fn record(db: Option<&Path>, snap: &Snapshot) -> Result<RunId> {
    Ok(open(db)?.record(snap)?)
}

/// Reads a file point: nmap XML, or portolan JSON (a snapshot, `ls --json`, `audit
/// --json`, or a scan report).
pub fn read_point_file(path: &Path) -> Result<Snapshot> {
    let file = std::fs::File::open(path).map_err(|source| HistoryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |detail: String| HistoryError::File {
        path: path.to_path_buf(),
        detail,
    };
    // A regular file's size is known: refuse a huge one before reading any of it (a pipe
    // or a device is still bounded by the read below).
    if let Ok(meta) = file.metadata()
        && meta.is_file()
        && meta.len() > MAX_JSON_BYTES
    {
        return Err(bad(format!(
            "larger than {MAX_JSON_BYTES} bytes ({} bytes)",
            meta.len()
        )));
    }
    let mut buf = Vec::new();
    file.take(MAX_JSON_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|source| HistoryError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if buf.len() as u64 > MAX_JSON_BYTES {
        return Err(bad(format!("larger than {MAX_JSON_BYTES} bytes")));
    }
    let first = buf.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let name = path.display().to_string();
    match first {
        Some(b'<') => {
            let scan = nmap_xml::read_scan(&buf[..], &name).map_err(StoreError::from)?;
            Ok(scan.into_snapshot(""))
        }
        Some(b'[') => {
            let listeners: Vec<Listener> = serde_json::from_slice(&buf)
                .map_err(|e| bad(format!("not a portolan ls --json list: {e}")))?;
            Ok(Snapshot {
                listeners,
                ..Snapshot::default()
            })
        }
        Some(b'{') => {
            let value: serde_json::Value =
                serde_json::from_slice(&buf).map_err(|e| bad(format!("not valid JSON: {e}")))?;
            let has = |k: &str| value.get(k).is_some();
            let what = if has("run") {
                "snapshot"
            } else if has("findings") && has("summary") {
                "audit report"
            } else if has("hosts") && has("coverage") {
                "scan report"
            } else {
                return Err(bad(
                    "not portolan JSON (a snapshot, ls --json, audit --json or a scan report)"
                        .to_string(),
                ));
            };
            let wrong = |e: serde_json::Error| bad(format!("not a portolan {what}: {e}"));
            match what {
                "snapshot" => serde_json::from_value(value).map_err(wrong),
                "audit report" => Ok(Snapshot {
                    audit: Some(serde_json::from_value(value).map_err(wrong)?),
                    ..Snapshot::default()
                }),
                _ => Ok(Snapshot {
                    scan: Some(serde_json::from_value(value).map_err(wrong)?),
                    ..Snapshot::default()
                }),
            }
        }
        _ => Err(bad(
            "neither portolan JSON nor nmap XML (empty, or starts with something else)".into(),
        )),
    }
}

fn label_of(path: &Path) -> String {
    path.display().to_string()
}

/// What `portolan diff` compares.
#[derive(Debug, Clone, Default)]
pub struct DiffRequest {
    /// The earlier point (default: the run before `to`).
    pub from: Option<String>,
    /// The later point (default: the latest run).
    pub to: Option<String>,
    /// The database (`--db`); opened only when a point is in it.
    pub db: Option<PathBuf>,
    pub opts: DiffOptions,
}

enum Side {
    Run(Point),
    File(PathBuf, Box<Snapshot>),
}

fn side(text: &str) -> Result<Side> {
    Ok(match Point::parse(text).map_err(StoreError::from)? {
        Point::File(path) => {
            let snap = read_point_file(&path)?;
            Side::File(path, Box::new(snap))
        }
        p => Side::Run(p),
    })
}

/// The changes between two points: runs of the database, or files (then no database is
/// needed).
pub fn diff(req: &DiffRequest) -> Result<Diff> {
    let from = req.from.as_deref().map(side).transpose()?;
    let to = req.to.as_deref().map(side).transpose()?;
    let opts = &req.opts;
    if let (Some(Side::File(pa, a)), Some(Side::File(pb, b))) = (&from, &to) {
        let mut d = diff_snapshots(a, b, opts);
        d.from = label_of(pa);
        d.to = label_of(pb);
        return Ok(d);
    }
    let store = open_existing(req.db.as_deref())?;
    let to = match to {
        Some(s) => s,
        None => Side::Run(Point::Last),
    };
    let from = match from {
        Some(s) => s,
        None => {
            let to_id = match &to {
                Side::Run(p) => store.resolve(p)?,
                Side::File(..) => store.resolve(&Point::Last)?,
            };
            match run_before(&store, to_id)? {
                Some(id) => Side::Run(Point::Run(id)),
                None => {
                    return Err(HistoryError::TooFewRuns {
                        path: store.path().to_path_buf(),
                        runs: store.runs()?.len(),
                    });
                }
            }
        }
    };
    match (from, to) {
        (Side::Run(a), Side::Run(b)) => Ok(store.diff(&a, &b, opts)?),
        (a, b) => {
            let load = |s: Side| -> Result<(String, Snapshot)> {
                match s {
                    Side::File(p, snap) => Ok((label_of(&p), *snap)),
                    Side::Run(p) => {
                        let (id, snap) = point_snapshot(&store, &p)?;
                        Ok((run_label(id, &snap), snap))
                    }
                }
            };
            let (la, a) = load(a)?;
            let (lb, b) = load(b)?;
            let mut d = diff_snapshots(&a, &b, opts);
            d.from = la;
            d.to = lb;
            Ok(d)
        }
    }
}

/// The run recorded just before run `id`, if there is one.
pub fn run_before(store: &Store, id: RunId) -> Result<Option<RunId>> {
    Ok(store.runs()?.iter().rev().map(|r| r.id).find(|&r| r < id))
}

/// The run a point names, and its snapshot.
pub fn point_snapshot(store: &Store, point: &Point) -> Result<(RunId, Snapshot)> {
    let id = store.resolve(point)?;
    Ok((id, store.snapshot(id)?))
}

/// How a diff names a stored run: `run 12 (2026-11-30T12:00:00Z)`.
pub fn run_label(id: RunId, snap: &Snapshot) -> String {
    format!("run {id} ({})", snap.run.started)
}

/// The diff options with this host's ephemeral port range.
pub fn diff_options() -> DiffOptions {
    DiffOptions {
        ephemeral: Some(ephemeral_range()),
        ..DiffOptions::default()
    }
}

/// The findings `audit --since POINT` adds: one `new-since-baseline` per listener
/// identity that is not in the point's inside view (the baseline, or any run).
/// Loopback listeners are low, the others medium.
pub fn new_since(store: &Store, point: &Point, listeners: &[Listener]) -> Result<Vec<Finding>> {
    let new: Vec<&Listener> = match point {
        Point::Baseline => store.not_in_baseline(listeners)?,
        p => {
            let id = store.resolve(p)?;
            let keys: HashSet<ListenerKey> = store
                .snapshot(id)?
                .listeners
                .iter()
                .map(Listener::key)
                .collect();
            listeners
                .iter()
                .filter(|l| !keys.contains(&l.key()))
                .collect()
        }
    };
    let what = match point {
        Point::Baseline => "the accepted baseline".to_string(),
        Point::Run(id) => format!("run {id}"),
        _ => "that point of history".to_string(),
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for l in new {
        if !seen.insert(l.key()) {
            continue;
        }
        out.push(new_since_finding(l, &what));
    }
    Ok(out)
}

fn new_since_finding(l: &Listener, what: &str) -> Finding {
    let names: Vec<&str> = l.processes.iter().map(|p| p.name.as_str()).collect();
    let process = (!names.is_empty()).then(|| names.join(","));
    let addr = match l.address {
        std::net::IpAddr::V6(a) => format!("[{a}]"),
        a => a.to_string(),
    };
    let owner = process
        .as_deref()
        .map(|p| format!(" ({p})"))
        .unwrap_or_default();
    let mut f = Finding::new(
        Rule::NewSinceBaseline,
        format!(
            "{addr}:{}/{}{owner} listens and is not in {what}.",
            l.port, l.protocol
        ),
        Remediation::new(
            "If it is intended, accept the current state (portolan baseline accept); \
             otherwise stop the service or close the port.",
        ),
    );
    f.severity = if l.exposure == Exposure::Loopback {
        Severity::Low
    } else {
        Severity::Medium
    };
    f.protocol = Some(l.protocol);
    f.port = Some(l.port);
    f.address = Some(l.address.to_string());
    f.addresses = vec![l.address];
    f.service = l.service.as_ref().map(|s| s.to_string());
    f.process = process;
    f.seal()
}

/// Adds findings to a report after its judgement: each goes after the ones at least as
/// severe with a port at most its own, and the summary counts them.
pub fn add_findings(report: &mut AuditReport, findings: Vec<Finding>) {
    for f in findings {
        let at = report
            .findings
            .iter()
            .position(|g| g.severity < f.severity || (g.severity == f.severity && g.port > f.port))
            .unwrap_or(report.findings.len());
        report.summary.findings += 1;
        report.summary.severities.add(f.severity);
        report.findings.insert(at, f);
    }
}

/// `audit --since POINT --db FILE`: adds the `new-since-baseline` findings for the
/// listeners of this host (or `netns`) not in the point.
pub fn audit_since(
    report: &mut AuditReport,
    point: &str,
    db: Option<&Path>,
    netns: Option<&str>,
) -> Result<()> {
    if report.summary.listeners.is_none() {
        return Err(HistoryError::SinceNeedsInsideView {
            point: point.to_string(),
        });
    }
    let p = Point::parse(point).map_err(StoreError::from)?;
    let store = open_existing(db)?;
    let (listeners, _) = inside_view(netns)?;
    let found = new_since(&store, &p, &listeners)?;
    add_findings(report, found);
    Ok(())
}

/// What `portolan watch` does.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// A snapshot every interval.
    pub interval: Duration,
    /// Watch this named network namespace.
    pub netns: Option<String>,
    /// A change is reported once it has held this long.
    pub min_age: Option<Duration>,
    /// Noise and ignore patterns (its own `min_age` is not used).
    pub diff: DiffOptions,
    /// Store every snapshot in this database.
    pub record: Option<PathBuf>,
    /// The command line, for recorded runs.
    pub command: String,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            interval: Duration::from_secs(1),
            netns: None,
            min_age: None,
            diff: DiffOptions::default(),
            record: None,
            command: "portolan watch".into(),
        }
    }
}

/// What `watch` tells its caller.
#[derive(Debug)]
pub enum WatchEvent<'a> {
    /// A change, with `at` set to when the inventory that saw it began (with `min_age`,
    /// when it was reported).
    Change(&'a Change),
    /// Something the user should know (each text once).
    Warning(&'a str),
    /// The starting state was taken: changes from now on are reported.
    Started { listeners: usize },
}

/// Takes an inventory every interval and calls `on` once per change (after `min_age`
/// when set) until `stop` receives a message or its sender is dropped. The first
/// inventory is the starting state: it reports nothing.
pub fn watch(
    opts: &WatchOptions,
    stop: &Receiver<()>,
    on: &mut dyn FnMut(WatchEvent<'_>) -> std::io::Result<()>,
) -> Result<()> {
    let mut store = opts.record.as_deref().map(|p| open(Some(p))).transpose()?;
    let req = portolan_inventory::Options {
        netns: match &opts.netns {
            Some(n) => portolan_inventory::NetnsChoice::Named(n.clone()),
            None => portolan_inventory::NetnsChoice::Current,
        },
        ..portolan_inventory::Options::default()
    };
    let mut warned: HashSet<String> = HashSet::new();
    let os = WatchOs::default();
    let mut take = |warned: &mut HashSet<String>,
                    on: &mut dyn FnMut(WatchEvent<'_>) -> std::io::Result<()>|
     -> Result<(Vec<Listener>, String)> {
        os.tick();
        let taken = now_text();
        let inv = crate::inventory::run_with(&os, &req, Registry::embedded())
            .map_err(HistoryError::Inventory)?;
        for w in &inv.warnings {
            if warned.insert(w.clone()) {
                on(WatchEvent::Warning(w)).map_err(io_stop)?;
            }
        }
        if let Some(store) = store.as_mut() {
            let mut snap = of_listeners(&opts.command, &inv.listeners, &[]);
            snap.run.started.clone_from(&taken);
            store.record(&snap)?;
        }
        Ok((inv.listeners, taken))
    };
    let (mut reported, _) = take(&mut warned, on)?;
    on(WatchEvent::Started {
        listeners: reported.len(),
    })
    .map_err(io_stop)?;
    let mut last = reported.clone();
    let mut pending: HashMap<Subject, (Instant, ChangeKind)> = HashMap::new();
    let mut next = Instant::now() + opts.interval;
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        match stop.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return Ok(()),
        }
        next = (next + opts.interval).max(Instant::now());
        let (current, taken) = take(&mut warned, on)?;
        // Nothing moved since the last inventory and nothing waits for --min-age: the
        // diff would say what it said then.
        if current == last && pending.is_empty() {
            continue;
        }
        last.clone_from(&current);
        let now = Instant::now();
        let d = diff_snapshots(&inside(&reported), &inside(&current), &opts.diff);
        let mut held = HashSet::new();
        for mut c in d.changes {
            held.insert(c.subject.clone());
            let due = match opts.min_age {
                None => true,
                Some(age) => {
                    let e = pending.entry(c.subject.clone()).or_insert((now, c.change));
                    if e.1 != c.change {
                        *e = (now, c.change);
                    }
                    now.duration_since(e.0) >= age
                }
            };
            if !due {
                continue;
            }
            pending.remove(&c.subject);
            if let Subject::Listener(key) = &c.subject {
                reported.retain(|l| &l.key() != key);
                reported.extend(current.iter().filter(|l| &l.key() == key).cloned());
            }
            // The inventory that saw it; with --min-age, when it had held that long.
            c.at = Some(match opts.min_age {
                None => taken.clone(),
                Some(_) => now_text(),
            });
            on(WatchEvent::Change(&c)).map_err(io_stop)?;
        }
        pending.retain(|s, _| held.contains(s));
        if opts.min_age.is_none() {
            reported = current;
        }
    }
}

/// How many inventories `watch` takes before it walks `/proc/*/fd` and reads the
/// `.socket` units again although the socket inodes did not change (an owner that
/// forked and exited, a socket-activated service restarted on the same socket).
const REFRESH_TICKS: u32 = 10;

/// Owner walks by (inode set, handles); an inventory may ask more than once per tick.
type OwnerCache = Vec<(
    portolan_inventory::InodeSet,
    bool,
    portolan_inventory::OwnerScan,
)>;

/// The live system for `watch`: one `LiveOs` for the whole run (its user names are read
/// once), the owners walk reused while the set of socket inodes is the same (for up to
/// [`REFRESH_TICKS`] inventories), and the `.socket` units read as often.
#[derive(Default)]
struct WatchOs {
    live: portolan_inventory::LiveOs,
    tick: std::cell::Cell<u32>,
    owners: std::cell::RefCell<OwnerCache>,
    units: std::cell::RefCell<Option<Vec<portolan_inventory::SocketUnitListen>>>,
}

impl WatchOs {
    fn tick(&self) {
        let t = self.tick.get().wrapping_add(1);
        self.tick.set(t);
        if t % REFRESH_TICKS == 0 {
            self.owners.borrow_mut().clear();
            self.units.borrow_mut().take();
        }
    }
}

impl portolan_inventory::Os for WatchOs {
    fn namespaces(
        &self,
        choice: &portolan_inventory::NetnsChoice,
    ) -> Result<Vec<portolan_inventory::NetnsInfo>, portolan_inventory::Error> {
        self.live.namespaces(choice)
    }

    fn sockets(
        &self,
        ns: &portolan_inventory::NetnsInfo,
        query: &portolan_inventory::SocketQuery,
    ) -> Result<portolan_inventory::SocketTable, portolan_inventory::Error> {
        self.live.sockets(ns, query)
    }

    fn owners(
        &self,
        inodes: &portolan_inventory::InodeSet,
        handles: bool,
    ) -> portolan_inventory::OwnerScan {
        if let Some((_, _, scan)) = self
            .owners
            .borrow()
            .iter()
            .find(|(set, h, _)| set == inodes && *h == handles)
        {
            return scan.clone();
        }
        let scan = self.live.owners(inodes, handles);
        let mut cache = self.owners.borrow_mut();
        if cache.len() >= 4 {
            cache.remove(0);
        }
        cache.push((inodes.clone(), handles, scan.clone()));
        scan
    }

    fn socket_units(&self) -> Vec<portolan_inventory::SocketUnitListen> {
        self.units
            .borrow_mut()
            .get_or_insert_with(|| self.live.socket_units())
            .clone()
    }

    fn user_name(&self, uid: u32) -> Option<String> {
        self.live.user_name(uid)
    }

    fn socket_options(
        &self,
        pid: u32,
        fd: i32,
    ) -> Option<(Option<bool>, Option<std::sync::Arc<str>>)> {
        self.live.socket_options(pid, fd)
    }
}

fn inside(listeners: &[Listener]) -> Snapshot {
    Snapshot {
        listeners: listeners.to_vec(),
        ..Snapshot::default()
    }
}

fn io_stop(e: std::io::Error) -> HistoryError {
    HistoryError::Read {
        path: PathBuf::from("standard output"),
        source: e,
    }
}

/// Why a `--exec` command failed (reported, never fatal).
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("--exec {cmd}: cannot start it: {source}")]
    Start {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    #[error("--exec {cmd}: {status}")]
    Failed {
        cmd: String,
        status: std::process::ExitStatus,
    },
    #[error("--exec {cmd}: still running after {}s; killed", timeout.as_secs())]
    Timeout { cmd: String, timeout: Duration },
}

/// Runs `sh -c CMD` with `event` on its stdin and its stdout sent to stderr (stdout
/// carries the events), waits for it at most `timeout` (then kills it). The change
/// class and port are also in `PORTOLAN_CHANGE` and `PORTOLAN_PORT`.
pub fn run_hook(
    cmd: &str,
    event: &[u8],
    change: &Change,
    timeout: Duration,
) -> Result<(), HookError> {
    let start = |source| HookError::Start {
        cmd: cmd.to_string(),
        source,
    };
    let out = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(start)?;
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .env("PORTOLAN_CHANGE", change.change.as_str())
        .env(
            "PORTOLAN_PORT",
            change.port.map(|p| p.to_string()).unwrap_or_default(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out))
        .spawn()
        .map_err(start)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input is not an error.
        let _ = stdin.write_all(event);
    }
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait().map_err(start)? {
            Some(status) if status.success() => return Ok(()),
            Some(status) => {
                return Err(HookError::Failed {
                    cmd: cmd.to_string(),
                    status,
                });
            }
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HookError::Timeout {
                    cmd: cmd.to_string(),
                    timeout,
                });
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_model::Proto;

    fn l(port: u16) -> Listener {
        Listener::new(Proto::Tcp, "0.0.0.0".parse().unwrap(), port)
    }

    #[test]
    fn timeline_ports() {
        assert_eq!(parse_port("8080").unwrap(), (8080, None));
        assert_eq!(parse_port("53/udp").unwrap(), (53, Some(Proto::Udp)));
        for bad in ["", "http", "70000", "53/icmp", "-1", "53/"] {
            let err = parse_port(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("'{bad}'")), "{bad}: {err}");
        }
    }

    #[test]
    fn findings_go_in_order_and_count() {
        let mut report = AuditReport {
            findings: vec![],
            suppressed: vec![],
            summary: portolan_model::AuditSummary {
                policy: "baseline".into(),
                listeners: Some(3),
                exposed: Some(2),
                reachable: None,
                unreachable: None,
                not_checked: None,
                findings: 0,
                severities: Default::default(),
                suppressed: 0,
                next_step: String::new(),
            },
        };
        let mut lo = l(9000);
        lo.exposure = Exposure::Loopback;
        let found = vec![
            new_since_finding(&l(8080), "the accepted baseline"),
            new_since_finding(&lo, "the accepted baseline"),
            new_since_finding(&l(22), "the accepted baseline"),
        ];
        add_findings(&mut report, found);
        let got: Vec<(Severity, Option<u16>)> = report
            .findings
            .iter()
            .map(|f| (f.severity, f.port))
            .collect();
        assert_eq!(
            got,
            vec![
                (Severity::Medium, Some(22)),
                (Severity::Medium, Some(8080)),
                (Severity::Low, Some(9000))
            ]
        );
        assert_eq!(report.summary.findings, 3);
        assert_eq!(report.summary.severities.medium, 2);
        assert_eq!(report.findings[0].rule.id(), "new-since-baseline");
        assert!(!report.findings[0].fingerprint.is_empty());
    }

    #[test]
    fn a_file_point_that_is_not_portolan_json_is_named() {
        let dir = std::env::temp_dir().join(format!("portolan-hist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.json");
        std::fs::write(&p, "{\"hello\": 1}").unwrap();
        let e = read_point_file(&p).unwrap_err().to_string();
        assert!(
            e.contains("x.json") && e.contains("not portolan JSON"),
            "{e}"
        );
        std::fs::write(&p, "[]").unwrap();
        assert!(read_point_file(&p).unwrap().listeners.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hooks_get_the_event_and_failures_are_errors() {
        let c = Change {
            change: ChangeKind::Added,
            subject: Subject::Listener(l(1).key()),
            protocol: Some(Proto::Tcp),
            port: Some(1),
            fields: vec![],
            listener: None,
            at: None,
            noise: false,
        };
        run_hook(
            "read x; test \"$x\" = hi && test $PORTOLAN_CHANGE = added",
            b"hi\n",
            &c,
            Duration::from_secs(10),
        )
        .unwrap();
        let e = run_hook("exit 3", b"", &c, Duration::from_secs(10)).unwrap_err();
        assert!(e.to_string().contains("exit 3"), "{e}");
        let e = run_hook("sleep 5", b"", &c, Duration::from_millis(100)).unwrap_err();
        assert!(matches!(e, HookError::Timeout { .. }), "{e}");
    }
}
