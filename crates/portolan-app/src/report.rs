//! `report`: everything the HTML report shows, as one [`ReportInput`]. Either the audit
//! of this host taken now (as `audit` takes it, with the policy's text and the firewall
//! ruleset it generates), or what other portolan commands wrote (`--from`): the JSON of
//! `ls`, `scan`, `audit` and `diff`. From the history store (`portolan record`), the
//! report of a stored run with the drift from the run before it (`--run`), or the audit
//! now with the drift since a point (`--since`).

use std::collections::BTreeSet;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use portolan_audit::Date;
use portolan_audit::profiles;
use portolan_firewall::Format;
use portolan_model::{
    AuditReport, Coverage, Diff, HostResult, HostState, Listener, Reason, RunInfo, ScanReport,
    ScanSummary, ScannedPort, Snapshot,
};
use portolan_report::html::{HistoryKind, HistoryRef, PolicyInfo, ReportInput};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::audit::{AuditError, AuditOptions, gather, judge};
use crate::history::{self, HistoryError, Point, StoreError};
use crate::policy::{LoadedPolicy, PolicyError, PolicySource, parse, read_policy_file};

/// The largest `--from` file portolan reads.
pub const MAX_FROM_BYTES: u64 = 64 << 20;
/// The most `--from` files one report reads.
pub const MAX_FROM_FILES: usize = 64;
/// The most bytes all `--from` files of one report hold together.
pub const MAX_FROM_TOTAL: u64 = 256 << 20;

/// What a report takes from the history store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryChoice {
    /// `--run POINT`: the stored run a point names (`12`, `last`, `baseline`, a time)
    /// instead of an audit now, with the drift from the run recorded before it.
    Run(String),
    /// `--since POINT`: the drift from the point (a run of the database, or a file) to
    /// what the report holds now.
    Since(String),
}

/// What to report on.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// The audit to take now; ignored when `from` names files or `history` is a run.
    pub audit: AuditOptions,
    /// Build the report from these files instead of auditing this host.
    pub from: Vec<PathBuf>,
    /// A stored run to report on, or a point to show the drift since.
    pub history: Option<HistoryChoice>,
    /// The history database (`--db`; default: `record`'s, see
    /// `portolan_store::default_db_path`). It is only read: a missing one is an error.
    pub db: Option<PathBuf>,
    /// The command line, for the provenance.
    pub command: String,
    /// portolan's version.
    pub version: String,
    /// `$SSH_CONNECTION`, so the ruleset shown is the one `portolan firewall` would write.
    pub ssh_connection: Option<String>,
}

/// Why a report could not be put together.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("--since: the report already holds a diff (from {path})")]
    SinceWithDiff { path: String },
    #[error("--from takes at most {limit} files, not {count}")]
    TooManyFiles { count: usize, limit: usize },
    #[error("the --from files hold more than {limit} bytes together ({path} is past it)")]
    TooMuch { path: String, limit: u64 },
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is larger than {limit} bytes")]
    TooLarge { path: String, limit: u64 },
    #[error("{path}:{line}: not valid UTF-8")]
    NotUtf8 { path: String, line: usize },
    #[error("{path}: empty: expected portolan's JSON of ls, scan, audit or diff")]
    Empty { path: String },
    /// `at` is the line, and the column when the parser knows it (`3`, `1:19`).
    #[error("{path}:{at}: {message}")]
    Parse {
        path: String,
        at: String,
        message: String,
    },
    #[error(
        "{path}:{line}: not portolan's JSON of ls (an array of listeners), scan (JSON Lines of host, port and summary records), audit (an object with findings) or diff (an object with changes)"
    )]
    Unknown { path: String, line: usize },
    #[error("{path}:{line}: {message}")]
    Bad {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{second} is a second {kind}, after {first}: a report holds one")]
    Twice {
        kind: &'static str,
        first: String,
        second: String,
    },
}

impl From<StoreError> for ReportError {
    fn from(e: StoreError) -> Self {
        ReportError::History(HistoryError::Store(e))
    }
}

/// What one `--from` file held.
#[derive(Debug, Clone, PartialEq)]
pub enum FromFile {
    /// `portolan ls --json`.
    Listeners(Vec<Listener>),
    /// `portolan scan --json`, with what the records could not say.
    Scan {
        report: ScanReport,
        warnings: Vec<String>,
    },
    /// `portolan audit --json`.
    Audit(AuditReport),
    /// A diff between two points of history.
    Diff(Diff),
}

/// Puts the report together: from the files `opts.from` names, else by auditing now.
pub fn build(opts: &ReportOptions) -> Result<ReportInput, ReportError> {
    let run = RunInfo {
        started: portolan_registry::date::rfc3339(now_secs()),
        host: crate::policy::host_name(),
        command: opts.command.clone(),
        version: opts.version.clone(),
    };
    match &opts.history {
        Some(HistoryChoice::Run(point)) => stored_run(point, opts.db.as_deref(), run),
        Some(HistoryChoice::Since(point)) => {
            // The point first: a bad point or database fails before the audit runs.
            let then = since_point(point, opts.db.as_deref())?;
            let mut input = if opts.from.is_empty() {
                live(opts, run)?
            } else {
                from_files(&opts.from, run)?
            };
            if let Some(d) = &input.diff {
                return Err(ReportError::SinceWithDiff {
                    path: d.from.clone(),
                });
            }
            add_drift(&mut input, then);
            Ok(input)
        }
        None if opts.from.is_empty() => live(opts, run),
        None => from_files(&opts.from, run),
    }
}

fn parse_point(text: &str) -> Result<Point, HistoryError> {
    Point::parse(text).map_err(|e| HistoryError::Store(StoreError::from(e)))
}

/// The report of the run `point` names, as it was recorded, with the drift from the run
/// recorded before it. `made` is this report's own making; the report's `run` is the
/// stored run's.
pub fn stored_run(
    point: &str,
    db: Option<&Path>,
    made: RunInfo,
) -> Result<ReportInput, ReportError> {
    let p = parse_point(point)?;
    let store = history::open_existing(db)?;
    let (id, snap) = history::point_snapshot(&store, &p)?;
    let summary = store.run(id)?;
    let db_name = store.path().display().to_string();
    let mut warnings = snap.warnings.clone();
    let diff = match history::run_before(&store, id)? {
        Some(prev) => {
            Some(store.diff(&Point::Run(prev), &Point::Run(id), &history::diff_options())?)
        }
        None => {
            warnings.push(format!(
                "run {id} is the first run in {db_name}: there is no earlier run to show the drift from"
            ));
            None
        }
    };
    let Snapshot {
        run,
        listeners,
        audit,
        scan,
        ..
    } = snap;
    let policy = PolicyInfo {
        name: audit
            .as_ref()
            .map_or_else(|| "none".to_string(), |a| a.summary.policy.clone()),
        text: None,
    };
    Ok(ReportInput {
        run,
        policy,
        ruleset: None,
        listeners: summary.listeners.then_some(listeners),
        audit,
        scans: scan.into_iter().collect(),
        diff,
        ephemeral: None,
        warnings,
        history: Some(HistoryRef {
            kind: HistoryKind::Run,
            point: point.to_string(),
            run: Some(id),
            db: Some(db_name),
            made: Some(made),
        }),
    })
}

/// The snapshot a `--since` point names, with how the drift labels it.
#[derive(Debug, Clone)]
pub struct SincePoint {
    /// The point as given.
    pub point: String,
    /// `run 12 (TIME)`, or the file's path.
    pub label: String,
    pub snapshot: Snapshot,
    /// The run and the database, for a point of the database.
    pub run: Option<history::RunId>,
    pub db: Option<String>,
}

/// Reads the snapshot at `point`: a run of the database `db`, or a file of portolan JSON
/// or nmap XML (no database needed).
pub fn since_point(point: &str, db: Option<&Path>) -> Result<SincePoint, ReportError> {
    let p = parse_point(point)?;
    let (label, snapshot, run, db) = match p {
        Point::File(path) => {
            let snap = history::read_point_file(&path)?;
            (path.display().to_string(), snap, None, None)
        }
        p => {
            let store = history::open_existing(db)?;
            let (id, snap) = history::point_snapshot(&store, &p)?;
            let db_name = store.path().display().to_string();
            (history::run_label(id, &snap), snap, Some(id), Some(db_name))
        }
    };
    Ok(SincePoint {
        point: point.to_string(),
        label,
        snapshot,
        run,
        db,
    })
}

/// Adds to `input` the drift from `point` (see [`since_point`]) to what `input` holds.
pub fn since(input: &mut ReportInput, point: &str, db: Option<&Path>) -> Result<(), ReportError> {
    add_drift(input, since_point(point, db)?);
    Ok(())
}

/// Adds to `input` the drift from `then` to what `input` holds: its listeners, its
/// audit and its first scan.
pub fn add_drift(input: &mut ReportInput, then: SincePoint) {
    let SincePoint {
        point,
        label,
        snapshot: then,
        run,
        db,
    } = then;
    let now = Snapshot {
        run: input.run.clone(),
        listeners: input.listeners.clone().unwrap_or_default(),
        audit: input.audit.clone(),
        scan: input.scans.first().cloned(),
        warnings: Vec::new(),
    };
    if input.scans.len() > 1 {
        input.warnings.push(format!(
            "--since {point}: the drift compares the first of the report's {} scans only",
            input.scans.len()
        ));
    }
    let mut diff = history::diff_snapshots(&then, &now, &history::diff_options());
    diff.from = label;
    diff.to = format!("now ({})", input.run.started);
    input.diff = Some(diff);
    input.history = Some(HistoryRef {
        kind: HistoryKind::Since,
        point,
        run,
        db,
        made: None,
    });
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The audit of this host now, with the policy's text and the ruleset it generates.
fn live(opts: &ReportOptions, run: RunInfo) -> Result<ReportInput, ReportError> {
    let (loaded, policy) = load_with_text(&opts.audit.policy)?;
    let today = opts.audit.today.unwrap_or_else(Date::today_utc);
    let (inputs, warnings) = gather(&opts.audit, loaded.as_ref().map(|l| &l.policy), &mut |_| {})?;
    let audit = judge(&inputs, loaded.as_ref(), today);
    let ruleset = loaded.as_ref().map(|l| {
        crate::firewall::plan(&l.policy, opts.ssh_connection.as_deref(), &opts.version)
            .render(Format::Nftables)
    });
    Ok(ReportInput {
        run,
        policy,
        ruleset,
        listeners: inputs.listeners,
        audit: Some(audit),
        scans: inputs.scan.map(|s| s.report).into_iter().collect(),
        diff: None,
        ephemeral: Some(crate::host::ephemeral_range()),
        warnings,
        history: None,
    })
}

/// The policy `src` names, and its name and text for the report.
fn load_with_text(src: &PolicySource) -> Result<(Option<LoadedPolicy>, PolicyInfo), PolicyError> {
    match src {
        PolicySource::None => Ok((
            None,
            PolicyInfo {
                name: "baseline".into(),
                text: None,
            },
        )),
        PolicySource::File(path) => {
            let (label, text) = read_policy_file(path)?;
            let policy = parse(&text, &label)?;
            let info = PolicyInfo {
                name: policy.name.clone(),
                text: Some(text),
            };
            let arg = format!("--policy {label}");
            Ok((Some(LoadedPolicy { policy, arg }), info))
        }
        PolicySource::Profile(name) => {
            let loaded = crate::policy::load(src)?;
            let info = PolicyInfo {
                name: loaded
                    .as_ref()
                    .map_or_else(|| name.clone(), |l| l.policy.name.clone()),
                text: profiles::find(name).map(|p| p.text.to_string()),
            };
            Ok((loaded, info))
        }
    }
}

/// The report of what the files hold: listeners of every `ls`, a scan per `scan`, at
/// most one audit and one diff. Nothing is measured now, so no ephemeral range is given.
pub fn from_files(paths: &[PathBuf], run: RunInfo) -> Result<ReportInput, ReportError> {
    if paths.len() > MAX_FROM_FILES {
        return Err(ReportError::TooManyFiles {
            count: paths.len(),
            limit: MAX_FROM_FILES,
        });
    }
    let mut input = ReportInput {
        run,
        ..ReportInput::default()
    };
    let mut audit_from: Option<String> = None;
    let mut diff_from: Option<String> = None;
    let once = |seen: &mut Option<String>, kind, path: &Path| match seen {
        Some(first) => Err(ReportError::Twice {
            kind,
            first: first.clone(),
            second: path.display().to_string(),
        }),
        None => {
            *seen = Some(path.display().to_string());
            Ok(())
        }
    };
    let mut left = MAX_FROM_TOTAL;
    for path in paths {
        let text = read_text(path, left)?;
        left -= text.len() as u64;
        match parse_from(&text, &path.display().to_string())? {
            FromFile::Listeners(ls) => input.listeners.get_or_insert_with(Vec::new).extend(ls),
            FromFile::Scan { report, warnings } => {
                input.scans.push(report);
                input.warnings.extend(warnings);
            }
            FromFile::Audit(a) => {
                once(&mut audit_from, "audit", path)?;
                input.audit = Some(a);
            }
            FromFile::Diff(d) => {
                once(&mut diff_from, "diff", path)?;
                input.diff = Some(d);
            }
        }
    }
    input.policy = PolicyInfo {
        name: input
            .audit
            .as_ref()
            .map_or_else(|| "none".to_string(), |a| a.summary.policy.clone()),
        text: None,
    };
    Ok(input)
}

/// Reads one `--from` file (at most [`MAX_FROM_BYTES`]) and tells what it holds.
pub fn read_from(path: &Path) -> Result<FromFile, ReportError> {
    let text = read_text(path, MAX_FROM_TOTAL)?;
    parse_from(&text, &path.display().to_string())
}

/// The text of a `--from` file of at most [`MAX_FROM_BYTES`], and at most `left` bytes:
/// what the files before it left of [`MAX_FROM_TOTAL`].
fn read_text(path: &Path, left: u64) -> Result<String, ReportError> {
    let label = path.display().to_string();
    let read_err = |source| ReportError::Read {
        path: label.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut buf = Vec::new();
    let limit = MAX_FROM_BYTES.min(left);
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(read_err)?;
    if buf.len() as u64 > limit {
        return Err(if limit < MAX_FROM_BYTES {
            ReportError::TooMuch {
                path: label,
                limit: MAX_FROM_TOTAL,
            }
        } else {
            ReportError::TooLarge {
                path: label,
                limit: MAX_FROM_BYTES,
            }
        });
    }
    String::from_utf8(buf).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        ReportError::NotUtf8 {
            path: label.clone(),
            line: good.iter().filter(|&&b| b == b'\n').count() + 1,
        }
    })
}

/// The keys that tell portolan's JSON objects apart.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "type")]
    kind: Option<IgnoredAny>,
    findings: Option<IgnoredAny>,
    changes: Option<IgnoredAny>,
}

fn parse_err(path: &str, e: &serde_json::Error) -> ReportError {
    parse_err_at(path, e.line(), e)
}

/// A JSON error at `line`, with serde_json's column where it has one (a record read
/// through a tagged enum has none).
fn parse_err_at(path: &str, line: usize, e: &serde_json::Error) -> ReportError {
    let at = match e.column() {
        0 => line.to_string(),
        c => format!("{line}:{c}"),
    };
    ReportError::Parse {
        path: path.to_string(),
        at,
        message: strip_position(&e.to_string()),
    }
}

/// serde_json's message without its own ` at line L column C`, which the error repeats
/// in front.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Tells which command's JSON `text` is, and reads it; `path` names it in errors.
pub fn parse_from(text: &str, path: &str) -> Result<FromFile, ReportError> {
    let start = text.len() - text.trim_start().len();
    match text[start..].chars().next() {
        None => Err(ReportError::Empty {
            path: path.to_string(),
        }),
        Some('[') => serde_json::from_str::<Vec<Listener>>(text)
            .map(FromFile::Listeners)
            .map_err(|e| parse_err(path, &e)),
        Some('{') => {
            let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Probe>();
            let probe = match stream.next() {
                Some(Ok(p)) => p,
                Some(Err(e)) => return Err(parse_err(path, &e)),
                None => {
                    return Err(ReportError::Empty {
                        path: path.to_string(),
                    });
                }
            };
            if probe.kind.is_some() {
                return parse_scan(text, path);
            }
            let end = stream.byte_offset();
            if !text[end..].trim().is_empty() {
                let at = end + (text[end..].len() - text[end..].trim_start().len());
                return Err(ReportError::Bad {
                    path: path.to_string(),
                    line: line_of(text, at),
                    message: "a second JSON value after the first (only a scan's JSON Lines hold several, each with a \"type\")".into(),
                });
            }
            if probe.findings.is_some() {
                serde_json::from_str::<AuditReport>(text)
                    .map(FromFile::Audit)
                    .map_err(|e| parse_err(path, &e))
            } else if probe.changes.is_some() {
                serde_json::from_str::<Diff>(text)
                    .map(FromFile::Diff)
                    .map_err(|e| parse_err(path, &e))
            } else {
                Err(ReportError::Unknown {
                    path: path.to_string(),
                    line: line_of(text, start),
                })
            }
        }
        Some(_) => Err(ReportError::Unknown {
            path: path.to_string(),
            line: line_of(text, start),
        }),
    }
}

/// A `host` record of `portolan scan --json`.
#[derive(Deserialize)]
struct HostRecord {
    host: IpAddr,
    state: HostState,
    reason: Reason,
    rtt_ms: Option<f64>,
}

/// One line of `portolan scan --json` (docs/json.md).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Record {
    Host(HostRecord),
    Port(Box<ScannedPort>),
    Summary(ScanSummary),
}

/// A scan report from the JSON Lines of `portolan scan --json`. The records list the
/// ports worth showing, not every port probed: only the listed ones count as scanned.
fn parse_scan(text: &str, path: &str) -> Result<FromFile, ReportError> {
    let mut hosts: Vec<HostResult> = Vec::new();
    let mut coverage = Coverage::default();
    let mut summary: Option<ScanSummary> = None;
    let mut listed = 0u64;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let bad = |message: String| ReportError::Bad {
            path: path.to_string(),
            line: n,
            message,
        };
        if line.trim().is_empty() {
            continue;
        }
        if summary.is_some() {
            return Err(bad("a record after the summary, which is the last".into()));
        }
        let rec: Record = serde_json::from_str(line).map_err(|e| parse_err_at(path, n, &e))?;
        match rec {
            Record::Host(h) => {
                let rtt = match h.rtt_ms {
                    None => None,
                    Some(v) if v.is_finite() && (0.0..=1e15).contains(&v) => {
                        Some(std::time::Duration::from_secs_f64(v / 1e3))
                    }
                    Some(v) => return Err(bad(format!("rtt_ms {v} is out of range"))),
                };
                if hosts.iter().any(|x| x.host == h.host) {
                    return Err(bad(format!("a second host record for {}", h.host)));
                }
                hosts.push(HostResult {
                    rtt,
                    ..HostResult::new(h.host, h.state, h.reason)
                });
            }
            Record::Port(p) => {
                let r = p.result;
                let Some(host) = hosts.iter_mut().find(|h| h.host == r.host) else {
                    return Err(bad(format!(
                        "a port record for {} before its host record",
                        r.host
                    )));
                };
                coverage.add_ports(r.host, r.proto, &[r.port]);
                listed += 1;
                host.ports.push(*p);
            }
            Record::Summary(s) => summary = Some(s),
        }
    }
    if hosts.is_empty() && summary.is_none() {
        return Err(ReportError::Unknown {
            path: path.to_string(),
            line: 1,
        });
    }
    let mut warnings = Vec::new();
    let summary = match summary {
        Some(s) => {
            if s.ports_scanned > listed {
                warnings.push(format!(
                    "{path}: the scan probed {} ports and lists {listed}; a scan's JSON Lines do not say which the others were, so only the listed ports count as scanned here",
                    s.ports_scanned
                ));
            }
            s
        }
        None => {
            warnings.push(format!(
                "{path}: no summary record (the scan was cut short?): the totals are those of the ports listed"
            ));
            let mut s = ScanSummary {
                hosts_total: hosts.len() as u64,
                hosts_up: hosts.iter().filter(|h| h.state == HostState::Up).count() as u64,
                ..ScanSummary::default()
            };
            for p in hosts.iter().flat_map(|h| &h.ports) {
                s.count(p.result.state);
            }
            s
        }
    };
    let targets: BTreeSet<String> = hosts.iter().map(|h| h.host.to_string()).collect();
    Ok(FromFile::Scan {
        report: ScanReport {
            targets: targets.into_iter().collect(),
            coverage,
            hosts,
            summary,
            tcp_ports: Vec::new(),
            udp_ports: Vec::new(),
        },
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_model::{PortState, Proto};

    const SCAN: &str = r#"{"type":"host","host":"198.18.0.2","state":"up","reason":"user-set","rtt_ms":null}
{"type":"port","host":"198.18.0.2","port":22,"protocol":"tcp","state":"open","reason":"syn-ack","service":"ssh","rtt_ms":0.1,"detected":{"protocol":"ssh","product":"OpenSSH","version":"9.2p1","tls":null,"cleartext":false,"starttls":false,"evidence":"SSH-2.0-OpenSSH_9.2p1"}}
{"type":"port","host":"198.18.0.2","port":25,"protocol":"tcp","state":"closed","reason":"conn-refused","service":"smtp","rtt_ms":null,"detected":null}
{"type":"summary","mode":"connect","udp":false,"hosts_total":1,"hosts_up":1,"ports_scanned":1000,"open":1,"closed":999,"filtered":0,"open_filtered":0,"self_connects":0,"elapsed_ms":12.5}
"#;

    fn bad(text: &str) -> String {
        parse_from(text, "x.json").unwrap_err().to_string()
    }

    #[test]
    fn a_scan_stream_becomes_a_report_with_what_it_listed_as_coverage() {
        let FromFile::Scan { report, warnings } = parse_from(SCAN, "s.jsonl").unwrap() else {
            panic!("not a scan");
        };
        assert_eq!(report.targets, ["198.18.0.2"]);
        assert_eq!(report.hosts.len(), 1);
        let h = &report.hosts[0];
        assert_eq!(h.ports.len(), 2);
        assert_eq!(
            h.ports[0].detected.as_ref().unwrap().product.as_deref(),
            Some("OpenSSH")
        );
        assert!(h.ports[1].detected.is_none());
        assert_eq!(report.summary.ports_scanned, 1000);
        let a = h.host;
        assert!(report.coverage.covers(a, Proto::Tcp, 22));
        assert!(report.coverage.covers(a, Proto::Tcp, 25));
        assert!(!report.coverage.covers(a, Proto::Tcp, 80));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("probed 1000 ports and lists 2"));
    }

    #[test]
    fn a_scan_cut_short_counts_its_ports() {
        let cut: String = SCAN.lines().take(3).map(|l| format!("{l}\n")).collect();
        let FromFile::Scan { report, warnings } = parse_from(&cut, "s.jsonl").unwrap() else {
            panic!("not a scan");
        };
        assert_eq!(report.summary.open, 1);
        assert_eq!(report.summary.closed, 1);
        assert_eq!(report.summary.hosts_up, 1);
        assert!(warnings[0].contains("no summary record"), "{warnings:?}");
        assert_eq!(report.hosts[0].ports[1].result.state, PortState::Closed);
    }

    #[test]
    fn kinds_are_told_apart() {
        assert!(matches!(
            parse_from(" [] ", "l.json").unwrap(),
            FromFile::Listeners(v) if v.is_empty()
        ));
        let d = r#"{"from":"run 1","to":"run 2","changes":[]}"#;
        assert!(matches!(
            parse_from(d, "d.json").unwrap(),
            FromFile::Diff(_)
        ));
        let a = r#"{"findings":[],"suppressed":[],"summary":{"policy":"baseline","listeners":0,"exposed":0,"reachable":null,"findings":0,"severities":{"critical":0,"high":0,"medium":0,"low":0,"info":0},"suppressed":0,"next_step":"none"}}"#;
        assert!(matches!(
            parse_from(a, "a.json").unwrap(),
            FromFile::Audit(_)
        ));
    }

    #[test]
    fn bad_input_names_the_file_and_line() {
        assert_eq!(
            bad("  \n"),
            "x.json: empty: expected portolan's JSON of ls, scan, audit or diff"
        );
        assert!(bad("\n\nhello").starts_with("x.json:3: not portolan's JSON"));
        assert!(bad(r#"{"name":"x"}"#).starts_with("x.json:1: not portolan's JSON"));
        assert!(bad("[\n{\"protocol\": 7}\n]").starts_with("x.json:2:14: "));
        assert!(bad("{\"findings\": [\n").starts_with("x.json:2:"));
        // Scan records: the line of the bad one.
        let mut s: Vec<&str> = SCAN.lines().collect();
        s.insert(2, r#"{"type":"port","host":"198.18.0.2","port":99999}"#);
        let e = bad(&s.join("\n"));
        assert!(e.starts_with("x.json:3:"), "{e}");
        let e = bad(&SCAN.replace(r#""type":"summary""#, r#""type":"note""#));
        assert!(
            e.starts_with("x.json:4:") && e.contains("unknown variant"),
            "{e}"
        );
        let e = bad(&SCAN.lines().skip(1).collect::<Vec<_>>().join("\n"));
        assert!(
            e.starts_with("x.json:1: a port record for 198.18.0.2 before its host record"),
            "{e}"
        );
        let e = bad(&SCAN.replace(r#""rtt_ms":null}"#, r#""rtt_ms":-5}"#));
        assert!(e.starts_with("x.json:1: rtt_ms -5 is out of range"), "{e}");
        let e = bad("{\"changes\":[],\"from\":\"a\",\"to\":\"b\"}\n{}");
        assert!(e.starts_with("x.json:2: a second JSON value"), "{e}");
    }

    fn store_with_two_runs(name: &str) -> (PathBuf, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("portolan-report-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("h.db");
        let mut store = history::Store::open(&db).unwrap();
        let l = |port| Listener::new(Proto::Tcp, "0.0.0.0".parse().unwrap(), port);
        let mut snap = Snapshot::default();
        snap.run.started = "2026-12-01T10:00:00Z".into();
        snap.run.command = "portolan record".into();
        snap.listeners = vec![l(22), l(8080)];
        store.record(&snap).unwrap();
        snap.run.started = "2026-12-01T11:00:00Z".into();
        snap.listeners = vec![l(22), l(9090)];
        store.record(&snap).unwrap();
        (dir, db)
    }

    fn changes(d: &Diff) -> Vec<(String, u16)> {
        d.changes
            .iter()
            .map(|c| (c.change.to_string(), c.port.unwrap()))
            .collect()
    }

    #[test]
    fn a_stored_run_comes_with_the_drift_from_the_run_before() {
        let (dir, db) = store_with_two_runs("run");
        let made = RunInfo {
            command: "portolan report --run 2".into(),
            ..RunInfo::default()
        };
        let input = stored_run("2", Some(&db), made.clone()).unwrap();
        assert_eq!(input.run.started, "2026-12-01T11:00:00Z");
        let ports: Vec<u16> = input
            .listeners
            .as_ref()
            .unwrap()
            .iter()
            .map(|l| l.port)
            .collect();
        assert_eq!(ports, [22, 9090]);
        let d = input.diff.as_ref().unwrap();
        assert_eq!(
            changes(d),
            [("removed".into(), 8080), ("added".into(), 9090)]
        );
        assert_eq!(d.from, "run 1 (2026-12-01T10:00:00Z)");
        let h = input.history.as_ref().unwrap();
        assert_eq!(
            (h.kind, h.run, h.made.as_ref()),
            (HistoryKind::Run, Some(2), Some(&made))
        );
        assert_eq!(h.db.as_deref(), Some(db.to_str().unwrap()));
        // `last` names the same run; the first run has no drift and says so.
        assert_eq!(
            stored_run("last", Some(&db), made.clone()).unwrap().diff,
            input.diff
        );
        let first = stored_run("1", Some(&db), made.clone()).unwrap();
        assert!(first.diff.is_none());
        assert!(
            first.warnings[0].contains("run 1 is the first run"),
            "{:?}",
            first.warnings
        );
        let e = stored_run("3", Some(&db), made.clone())
            .unwrap_err()
            .to_string();
        assert!(e.contains("run 3 is not in") && e.contains("h.db"), "{e}");
        let e = stored_run("x.json", Some(&db), made.clone())
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.json is a file"), "{e}");
        // A database with no run in it.
        let none = dir.join("none.db");
        drop(history::Store::open(&none).unwrap());
        let e = stored_run("last", Some(&none), made.clone())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no run recorded yet in") && e.contains("none.db"),
            "{e}"
        );
        let e = stored_run("1", Some(&none), made).unwrap_err().to_string();
        assert!(
            e.contains("run 1 is not in") && e.contains("none.db"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn since_compares_a_point_with_what_the_report_holds() {
        let (dir, db) = store_with_two_runs("since");
        let l = |port| Listener::new(Proto::Tcp, "0.0.0.0".parse().unwrap(), port);
        let mut input = ReportInput {
            run: RunInfo {
                started: "2026-12-01T12:00:00Z".into(),
                ..RunInfo::default()
            },
            listeners: Some(vec![l(22), l(9090), l(443)]),
            ..ReportInput::default()
        };
        since(&mut input, "1", Some(&db)).unwrap();
        let d = input.diff.as_ref().unwrap();
        assert_eq!(
            changes(d),
            [
                ("added".into(), 443),
                ("removed".into(), 8080),
                ("added".into(), 9090)
            ]
        );
        assert_eq!(d.to, "now (2026-12-01T12:00:00Z)");
        assert_eq!(input.history.as_ref().unwrap().run, Some(1));
        // A time resolves to the last run at or before it.
        since(&mut input, "2026-12-01T11:30:00Z", Some(&db)).unwrap();
        assert_eq!(
            changes(input.diff.as_ref().unwrap()),
            [("added".into(), 443)]
        );
        // A file point needs no database.
        let f = dir.join("then.json");
        std::fs::write(&f, r#"[]"#).unwrap();
        since(&mut input, f.to_str().unwrap(), Some(&dir.join("none.db"))).unwrap();
        assert_eq!(input.diff.as_ref().unwrap().changes.len(), 3);
        assert_eq!(input.history.as_ref().unwrap().db, None);
        let e = since(&mut input, "1", Some(&dir.join("none.db")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no history database at") && e.contains("none.db"),
            "{e}"
        );
        assert!(!dir.join("none.db").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_report_holds_one_audit() {
        let dir = std::env::temp_dir().join(format!("portolan-from-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.join("d.json");
        std::fs::write(&d, r#"{"from":"a","to":"b","changes":[]}"#).unwrap();
        let e = from_files(&[d.clone(), d.clone()], RunInfo::default()).unwrap_err();
        assert!(e.to_string().contains("is a second diff"), "{e}");
        let big = dir.join("big.json");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_FROM_BYTES + 1).unwrap();
        let e = read_from(&big).unwrap_err();
        assert!(
            e.to_string().ends_with("is larger than 67108864 bytes"),
            "{e}"
        );
        std::fs::write(&big, b"[\n\xff]").unwrap();
        assert!(
            read_from(&big)
                .unwrap_err()
                .to_string()
                .ends_with(":2: not valid UTF-8")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
