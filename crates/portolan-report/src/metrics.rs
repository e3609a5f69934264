//! Prometheus metrics over the model: the families of docs/metrics.md, in the OpenMetrics
//! and the Prometheus text (0.0.4) formats, and the node_exporter textfile writer.
//!
//! Every family is a gauge, so the two formats differ only by OpenMetrics' closing
//! `# EOF` line: [`encode_text`] is [`encode_openmetrics`] without it.
//!
//! Label values come from processes and the network. They are escaped here (the
//! `prometheus-client` encoder writes them as given), control characters are replaced,
//! and each is cut to [`MAX_LABEL_LEN`] bytes. pids and inodes never become labels.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portolan_model::{AuditReport, Exposure, Listener, Proto, Rule, Severity, Snapshot};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, LabelSetEncoder, LabelValueEncoder,
    MetricEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The longest label value, in bytes; longer values are cut at a character boundary.
pub const MAX_LABEL_LEN: usize = 128;

/// The content type of the Prometheus text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The content type of the OpenMetrics text format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether one source of data (`inventory`, `audit`, ...) answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorStatus {
    /// A short fixed name: it becomes the `collector` label.
    pub name: String,
    pub up: bool,
    /// Why it is down; logged, never exported (it may hold text from the system).
    pub error: Option<String>,
}

impl CollectorStatus {
    pub fn up(name: impl Into<String>) -> CollectorStatus {
        CollectorStatus {
            name: name.into(),
            up: true,
            error: None,
        }
    }

    pub fn down(name: impl Into<String>, error: impl Into<String>) -> CollectorStatus {
        CollectorStatus {
            name: name.into(),
            up: false,
            error: Some(error.into()),
        }
    }
}

/// Everything one exposition is made of. Cheap to clone: the snapshot is shared.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// The listeners and, when an audit ran, its report.
    pub snapshot: Arc<Snapshot>,
    pub collectors: Vec<CollectorStatus>,
    /// When the collection finished.
    pub collected_at: SystemTime,
    /// How long the collection took.
    pub duration: Duration,
    /// The number of listeners a policy or profile does not allow; `None` when no
    /// policy or profile was given (then the family is left out).
    pub unexpected: Option<usize>,
}

impl Metrics {
    /// Metrics for a snapshot, with the number of unexpected listeners taken from the
    /// audit when it names a policy or profile.
    pub fn new(
        snapshot: impl Into<Arc<Snapshot>>,
        collectors: Vec<CollectorStatus>,
        collected_at: SystemTime,
        duration: Duration,
    ) -> Metrics {
        let snapshot = snapshot.into();
        let unexpected = unexpected_listeners(&snapshot);
        Metrics {
            snapshot,
            collectors,
            collected_at,
            duration,
            unexpected,
        }
    }
}

/// The listeners the audit's policy does not allow (distinct `not-allowed` findings
/// about a port), or `None` when the snapshot has no audit against a policy or profile
/// (no audit, or the built-in `baseline` alone). A caller that knows better sets
/// [`Metrics::unexpected`] itself.
pub fn unexpected_listeners(snapshot: &Snapshot) -> Option<usize> {
    let audit = snapshot.audit.as_ref()?;
    let policy = audit.summary.policy.trim();
    if policy.is_empty() || policy == "baseline" {
        return None;
    }
    Some(not_allowed_listeners(audit))
}

/// The distinct listeners (namespace, protocol, port, addresses) of an audit's
/// `not-allowed` findings about a port.
pub fn not_allowed_listeners(audit: &AuditReport) -> usize {
    let mut keys: Vec<_> = audit
        .findings
        .iter()
        .filter(|f| f.rule == Rule::NotAllowed && f.port.is_some())
        .map(|f| (&f.netns, f.protocol, f.port, &f.addresses))
        .collect();
    keys.sort();
    keys.dedup();
    keys.len()
}

/// The exposition in OpenMetrics text format, `# EOF` included.
pub fn encode_openmetrics(m: &Metrics) -> String {
    let mut out = encode_text(m);
    out.push_str("# EOF\n");
    out
}

/// The exposition in the Prometheus text format 0.0.4 (what node_exporter's textfile
/// collector reads).
pub fn encode_text(m: &Metrics) -> String {
    encode_with(Box::new(m.clone()), m.snapshot.listeners.len())
}

/// [`encode_openmetrics`] for a caller that is done with the metrics (the exporter):
/// when nothing else shares the snapshot, each listener is let go once its series is
/// written, so the listeners and the exposition are never both held whole (at 100,000
/// listeners they are about 17 and 15 MiB). The bytes are the same.
pub fn into_openmetrics(m: Metrics) -> String {
    let n = m.snapshot.listeners.len();
    let mut out = match Owned::new(m) {
        Ok(owned) => encode_with(Box::new(owned), n),
        Err(m) => encode_text(&m),
    };
    out.push_str("# EOF\n");
    out
}

fn encode_with(collector: Box<dyn Collector>, listeners: usize) -> String {
    let mut registry = Registry::default();
    registry.register_collector(collector);
    // About 200 bytes a listener: one allocation, no doubling of a large buffer (pages
    // not written to are never resident).
    let mut out = String::with_capacity(2048 + listeners * 200);
    // Writing to a String cannot fail, and every encoder below only writes.
    let _ = prometheus_client::encoding::text::encode_registry(&mut out, &registry);
    out
}

/// Metrics whose listeners were taken out of the snapshot, to be consumed as they are
/// written.
#[derive(Debug)]
struct Owned {
    /// Everything but the listeners.
    m: Metrics,
    listeners: std::sync::Mutex<Vec<Listener>>,
}

impl Owned {
    /// `Err` gives the metrics back when the snapshot is shared.
    fn new(mut m: Metrics) -> Result<Owned, Metrics> {
        let Some(snap) = Arc::get_mut(&mut m.snapshot) else {
            return Err(m);
        };
        let listeners = std::mem::take(&mut snap.listeners);
        Ok(Owned {
            m,
            listeners: std::sync::Mutex::new(listeners),
        })
    }
}

impl Collector for Owned {
    fn encode(&self, enc: DescriptorEncoder<'_>) -> fmt::Result {
        // Only this encoder locks it, once.
        let mut listeners = match self.listeners.lock() {
            Ok(mut l) => std::mem::take(&mut *l),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        };
        write_families(&self.m, Source::Owned(&mut listeners), enc)
    }
}

/// Where the listeners come from: borrowed, or owned and let go as they are written.
enum Source<'a> {
    Borrowed(&'a [Listener]),
    Owned(&'a mut Vec<Listener>),
}

/// A failure to write a textfile, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TextfileError {
    #[error("cannot create a temporary file in {dir}: {source}")]
    Create { dir: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot rename the temporary file over {path}: {source}")]
    Rename { path: PathBuf, source: io::Error },
}

/// Writes the text format to `path` the way node_exporter's textfile collector expects:
/// into a temporary file in the same directory, then renamed over `path`, so a scrape
/// never reads half a file.
pub fn write_textfile(path: &Path, m: &Metrics) -> Result<(), TextfileError> {
    write_atomic(path, encode_text(m).as_bytes())
}

/// Writes `bytes` to a temporary file beside `path` and renames it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TextfileError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".portolan-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|source| TextfileError::Create {
            dir: dir.clone(),
            source,
        })?;
    let werr = |source| TextfileError::Write {
        path: tmp_path(path),
        source,
    };
    tmp.write_all(bytes).map_err(werr)?;
    tmp.flush().map_err(werr)?;
    // Readable by the collector whatever our umask made of the temporary file.
    set_mode(tmp.as_file()).map_err(werr)?;
    tmp.persist(path).map_err(|e| TextfileError::Rename {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

fn tmp_path(path: &Path) -> PathBuf {
    path.with_extension("tmp")
}

#[cfg(unix)]
fn set_mode(f: &std::fs::File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn set_mode(_: &std::fs::File) -> io::Result<()> {
    Ok(())
}

/// A label value, escaped for both text formats and bounded.
struct Value<'a>(&'a str);

impl EncodeLabelValue for Value<'_> {
    fn encode(&self, enc: &mut LabelValueEncoder<'_>) -> fmt::Result {
        write_escaped(enc, self.0)
    }
}

fn write_escaped(w: &mut impl fmt::Write, s: &str) -> fmt::Result {
    let mut len = 0;
    for c in s.chars() {
        len += c.len_utf8();
        if len > MAX_LABEL_LEN {
            break;
        }
        match c {
            '\\' => w.write_str("\\\\")?,
            '"' => w.write_str("\\\"")?,
            '\n' => w.write_str("\\n")?,
            c if c.is_control() => w.write_char('?')?,
            c => w.write_char(c)?,
        }
    }
    Ok(())
}

/// A label value written with `Display`, for values that need no escaping and are
/// short by nature (addresses, port numbers).
struct Shown<T>(T);

impl<T: fmt::Display> EncodeLabelValue for Shown<T> {
    fn encode(&self, enc: &mut LabelValueEncoder<'_>) -> fmt::Result {
        write!(enc, "{}", self.0)
    }
}

/// Labels as (name, value) pairs; `encode_label` writes the separators.
struct Labels<'a, const N: usize>([(&'static str, &'a dyn EncodeLabelValue); N]);

impl<const N: usize> EncodeLabelSet for Labels<'_, N> {
    fn encode(&self, enc: &mut LabelSetEncoder<'_>) -> fmt::Result {
        for (name, value) in &self.0 {
            let mut label = enc.encode_label();
            let mut key = label.encode_label_key()?;
            key.write_str(name)?;
            let mut v = key.encode_label_value()?;
            value.encode(&mut v)?;
            v.finish()?;
        }
        Ok(())
    }
}

fn process_label(l: &Listener) -> Cow<'_, str> {
    match &l.processes[..] {
        [] => Cow::Borrowed(""),
        [one] => Cow::Borrowed(one.name.as_str()),
        _ => Cow::Owned(l.process_names().join(",")),
    }
}

fn unit_label(l: &Listener) -> &str {
    l.processes
        .iter()
        .find(|p| !p.is_systemd())
        .and_then(|p| p.unit.as_deref())
        .or(l.socket_unit.as_deref())
        .unwrap_or("")
}

/// One `portolan_listener_info` series, borrowed from its listener (kept small: there
/// is one per listener while the family is written).
struct Info<'a> {
    l: &'a Listener,
    process: Cow<'a, str>,
    unit: &'a str,
}

impl<'a> Info<'a> {
    fn of(l: &'a Listener) -> Info<'a> {
        Info {
            l,
            process: process_label(l),
            unit: unit_label(l),
        }
    }

    fn service(&self) -> &'a str {
        self.l.service.as_deref().unwrap_or("")
    }

    fn cmp(a: &Listener, b: &Listener) -> std::cmp::Ordering {
        let (a, b) = (Info::of(a), Info::of(b));
        a.key().cmp(&b.key())
    }

    fn key(&self) -> impl Ord + '_ {
        let l = self.l;
        (
            &*l.netns,
            l.protocol,
            l.address,
            l.port,
            l.exposure,
            self.service(),
            &*self.process,
            self.unit,
        )
    }
}

impl Collector for Metrics {
    fn encode(&self, enc: DescriptorEncoder<'_>) -> fmt::Result {
        write_families(self, Source::Borrowed(&self.snapshot.listeners), enc)
    }
}

/// Writes one `portolan_listener_info` series.
fn write_info(fam: &mut MetricEncoder<'_>, l: &Listener) -> fmt::Result {
    let i = Info::of(l);
    let port = Shown(i.l.port);
    let address = Shown(i.l.address);
    let labels = Labels([
        ("netns", &Value(&i.l.netns) as &dyn EncodeLabelValue),
        ("protocol", &Value(i.l.protocol.as_str())),
        ("address", &address),
        ("port", &port),
        ("exposure", &Value(i.l.exposure.as_str())),
        ("service", &Value(i.service())),
        ("process", &Value(&i.process)),
        ("unit", &Value(i.unit)),
    ]);
    fam.encode_family(&labels)?.encode_gauge(&1i64)?;
    Ok(())
}

fn info_family<'e>(enc: &'e mut DescriptorEncoder<'_>) -> Result<MetricEncoder<'e>, fmt::Error> {
    enc.encode_descriptor(
        "portolan_listener_info",
        "A listening socket: namespace, protocol, address, port, exposure, service, owners and unit (always 1)",
        None,
        MetricType::Gauge,
    )
}

/// Writes every family, in the order of docs/metrics.md.
fn write_families(m: &Metrics, source: Source<'_>, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
    {
        let gauge = MetricType::Gauge;

        // No listener family when the inventory failed: zero would be a count of what
        // nothing measured.
        let listed = !m.collectors.iter().any(|c| c.name == "inventory" && !c.up);

        // portolan_listeners: every protocol seen (tcp and udp always) by every exposure.
        // Counted first: the owned listeners are gone once their series are written.
        let mut counts = [[0i64; 3]; 4];
        let all: &[Listener] = match &source {
            Source::Borrowed(l) => l,
            Source::Owned(l) => l,
        };
        for l in all {
            counts[proto_index(l.protocol)][exposure_index(l.exposure)] += 1;
        }

        // portolan_listener_info: one series per distinct label set.
        match source {
            // Sorted by reference (8 bytes a listener); the labels are made when compared.
            Source::Borrowed(listeners) => {
                let mut infos: Vec<&Listener> = listeners.iter().collect();
                infos.sort_unstable_by(|a, b| Info::cmp(a, b));
                infos.dedup_by(|a, b| Info::cmp(a, b).is_eq());
                if listed {
                    let mut fam = info_family(&mut enc)?;
                    for l in &infos {
                        write_info(&mut fam, l)?;
                    }
                }
            }
            // Sorted in place, last series first, and written from the end: the vector
            // shrinks as the exposition grows.
            Source::Owned(listeners) => {
                listeners.sort_unstable_by(|a, b| Info::cmp(b, a));
                listeners.dedup_by(|a, b| Info::cmp(a, b).is_eq());
                if listed {
                    let mut fam = info_family(&mut enc)?;
                    let mut written = 0usize;
                    while let Some(l) = listeners.pop() {
                        write_info(&mut fam, &l)?;
                        written += 1;
                        if written % 8192 == 0 {
                            listeners.shrink_to_fit();
                        }
                    }
                }
                *listeners = Vec::new();
            }
        }

        if listed {
            let mut fam = enc.encode_descriptor(
                "portolan_listeners",
                "Listening sockets by protocol and exposure",
                None,
                gauge,
            )?;
            for (pi, proto) in Proto::ALL.into_iter().enumerate() {
                let seen = counts[pi].iter().any(|&c| c > 0);
                if !seen && !matches!(proto, Proto::Tcp | Proto::Udp) {
                    continue;
                }
                for e in [Exposure::All, Exposure::Address, Exposure::Loopback] {
                    let labels = Labels([
                        ("protocol", &Value(proto.as_str()) as &dyn EncodeLabelValue),
                        ("exposure", &Value(e.as_str())),
                    ]);
                    fam.encode_family(&labels)?
                        .encode_gauge(&counts[pi][exposure_index(e)])?;
                }
            }
        }

        // portolan_audit_findings: only when an audit ran; one series per (severity,
        // rule) that has findings.
        if let Some(audit) = &m.snapshot.audit {
            let mut by: Vec<(Severity, Rule, i64)> = Vec::new();
            for f in &audit.findings {
                match by
                    .iter_mut()
                    .find(|(s, r, _)| *s == f.severity && *r == f.rule)
                {
                    Some(e) => e.2 += 1,
                    None => by.push((f.severity, f.rule, 1)),
                }
            }
            by.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.id().cmp(b.1.id())));
            let mut fam = enc.encode_descriptor(
                "portolan_audit_findings",
                "Audit findings by severity and rule",
                None,
                gauge,
            )?;
            for (s, r, n) in &by {
                let labels = Labels([
                    ("severity", &Value(s.as_str()) as &dyn EncodeLabelValue),
                    ("rule", &Value(r.id())),
                ]);
                fam.encode_family(&labels)?.encode_gauge(n)?;
            }
        }

        if let Some(n) = m.unexpected {
            enc.encode_descriptor(
                "portolan_unexpected_listeners",
                "Listeners the policy or profile does not allow",
                None,
                gauge,
            )?
            .encode_gauge(&n)?;
        }

        {
            let mut fam = enc.encode_descriptor(
                "portolan_collector_up",
                "Whether a source of data answered at the last collection (1) or failed (0)",
                None,
                gauge,
            )?;
            let mut cs: Vec<&CollectorStatus> = m.collectors.iter().collect();
            cs.sort_by(|a, b| a.name.cmp(&b.name));
            cs.dedup_by(|a, b| a.name == b.name);
            for c in cs {
                let labels = Labels([("collector", &Value(&c.name) as &dyn EncodeLabelValue)]);
                fam.encode_family(&labels)?.encode_gauge(&i64::from(c.up))?;
            }
        }

        let at = m
            .collected_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        enc.encode_descriptor(
            "portolan_last_collection_timestamp_seconds",
            "When the last collection finished, in seconds since the Unix epoch",
            None,
            gauge,
        )?
        .encode_gauge(&at)?;
        enc.encode_descriptor(
            "portolan_collection_duration_seconds",
            "How long the last collection took",
            None,
            gauge,
        )?
        .encode_gauge(&m.duration.as_secs_f64())?;

        let mut fam = enc.encode_descriptor(
            "portolan_build_info",
            "The portolan version that exports these metrics (always 1)",
            None,
            gauge,
        )?;
        let version = if m.snapshot.run.version.is_empty() {
            env!("CARGO_PKG_VERSION")
        } else {
            m.snapshot.run.version.as_str()
        };
        let labels = Labels([("version", &Value(version) as &dyn EncodeLabelValue)]);
        fam.encode_family(&labels)?.encode_gauge(&1i64)?;
        Ok(())
    }
}

fn proto_index(p: Proto) -> usize {
    match p {
        Proto::Tcp => 0,
        Proto::Udp => 1,
        Proto::Sctp => 2,
        Proto::Dccp => 3,
    }
}

fn exposure_index(e: Exposure) -> usize {
    match e {
        Exposure::All => 0,
        Exposure::Address => 1,
        Exposure::Loopback => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_model::{AuditReport, AuditSummary, Finding, Process, Remediation};
    use std::borrow::Cow;

    fn listener(addr: &str, port: u16, name: &str) -> Listener {
        let mut p = Process::new(4242, name);
        p.unit = Some(format!("{name}.service"));
        let mut l = Listener::new(Proto::Tcp, addr.parse().unwrap(), port).with_process(p);
        l.inode = 99_999;
        l
    }

    fn sample() -> Metrics {
        let mut ssh = listener("0.0.0.0", 22, "sshd");
        ssh.service = Some(Cow::Borrowed("ssh"));
        let hostile = listener("127.0.0.1", 8080, "evil\"\\\nname\u{7}");
        let mut dns = Listener::new(Proto::Udp, "::1".parse().unwrap(), 53);
        dns.netns = "web1".into();
        let mut snap = Snapshot {
            listeners: vec![ssh.clone(), hostile, dns, ssh],
            ..Snapshot::default()
        };
        snap.run.version = "0.1.0".into();
        let mut audit = AuditReport {
            findings: vec![],
            suppressed: vec![],
            summary: AuditSummary {
                policy: "web".into(),
                listeners: Some(4),
                exposed: Some(1),
                reachable: None,
                unreachable: None,
                not_checked: None,
                findings: 2,
                severities: Default::default(),
                suppressed: 0,
                next_step: String::new(),
            },
        };
        let mut f = Finding::new(Rule::NotAllowed, "sshd not allowed", Remediation::new("x"));
        f.port = Some(22);
        f.protocol = Some(Proto::Tcp);
        f.severity = Severity::Critical;
        audit.findings = vec![f.clone(), f];
        snap.audit = Some(audit);
        Metrics::new(
            snap,
            vec![
                CollectorStatus::up("inventory"),
                CollectorStatus::down("audit", "boom"),
            ],
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_250),
            Duration::from_millis(12),
        )
    }

    #[test]
    fn a_down_inventory_reports_no_listener_count() {
        let mut m = sample();
        m.collectors = vec![CollectorStatus::down("inventory", "no such namespace")];
        let text = encode_text(&m);
        assert!(!text.contains("portolan_listeners"), "{text}");
        assert!(!text.contains("portolan_listener_info"), "{text}");
        assert!(
            text.contains("portolan_collector_up{collector=\"inventory\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn exposition_is_stable_escaped_and_has_no_pids() {
        let text = encode_text(&sample());
        insta::assert_snapshot!(text);
        assert!(!text.contains("4242") && !text.contains("99999"));
        assert!(text.contains(r#"process="evil\"\\\nname?""#));
        // The duplicate sshd listener is one series.
        assert_eq!(text.matches(r#"port="22""#).count(), 1);
    }

    #[test]
    fn openmetrics_is_text_plus_eof() {
        let m = sample();
        assert_eq!(
            encode_openmetrics(&m),
            format!("{}# EOF\n", encode_text(&m))
        );
    }

    #[test]
    fn into_openmetrics_writes_the_same_bytes_shared_or_not() {
        let want = encode_openmetrics(&sample());
        // Unique snapshot: the listeners are consumed as they are written.
        assert_eq!(into_openmetrics(sample()), want);
        // Shared snapshot: left as it is.
        let m = sample();
        let keep = Arc::clone(&m.snapshot);
        assert_eq!(into_openmetrics(m), want);
        assert_eq!(keep.listeners.len(), 4);
        // Many listeners, more than one shrink step, some of them duplicates.
        let mut big = (*sample().snapshot).clone();
        big.listeners = (0..20_000u32)
            .map(|i| listener("198.18.0.1", (1024 + i % 15_000) as u16, "d"))
            .collect();
        let m = Metrics::new(
            big,
            vec![CollectorStatus::up("inventory")],
            UNIX_EPOCH,
            Duration::ZERO,
        );
        let want = encode_openmetrics(&m);
        assert_eq!(want.matches("portolan_listener_info{").count(), 15_000);
        assert_eq!(into_openmetrics(m), want);
    }

    #[test]
    fn label_values_are_bounded_on_a_char_boundary() {
        let mut s = String::new();
        write_escaped(&mut s, &"é".repeat(200)).unwrap();
        assert_eq!(s.len(), MAX_LABEL_LEN);
        let mut q = String::new();
        write_escaped(&mut q, &"\"".repeat(200)).unwrap();
        assert_eq!(q.len(), 2 * MAX_LABEL_LEN);
    }

    #[test]
    fn no_policy_no_unexpected_family() {
        let mut snap = (*sample().snapshot).clone();
        snap.audit.as_mut().unwrap().summary.policy = "baseline".into();
        let m = Metrics::new(snap, vec![], UNIX_EPOCH, Duration::ZERO);
        assert_eq!(m.unexpected, None);
        assert!(!encode_text(&m).contains("portolan_unexpected_listeners"));
        assert_eq!(sample().unexpected, Some(1));
    }

    #[test]
    fn textfile_is_renamed_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portolan.prom");
        std::fs::write(&path, "old").unwrap();
        write_textfile(&path, &sample()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            encode_text(&sample())
        );
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
        let err = write_textfile(&dir.path().join("no/such/dir/x.prom"), &sample()).unwrap_err();
        assert!(err.to_string().contains("no/such/dir"), "{err}");
    }

    /// Reverses the text-format escaping of a label value.
    fn unescape(s: &str) -> String {
        let mut out = String::new();
        let mut it = s.chars();
        while let Some(c) = it.next() {
            if c == '\\' {
                match it.next() {
                    Some('n') => out.push('\n'),
                    Some(o) => out.push(o),
                    None => panic!("dangling backslash in {s:?}"),
                }
            } else {
                assert!(c != '"' && c != '\n', "raw {c:?} in {s:?}");
                out.push(c);
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn escaped_values_read_back_as_a_bounded_prefix(s in "\\PC*|[\\\\\"\n\r\t\u{0}a-z]*") {
            let mut e = String::new();
            write_escaped(&mut e, &s).unwrap();
            let back = unescape(&e);
            let want: String = s
                .chars()
                .map(|c| if c.is_control() && c != '\n' { '?' } else { c })
                .collect();
            proptest::prop_assert!(want.starts_with(&back));
            proptest::prop_assert!(back.len() <= MAX_LABEL_LEN);
            proptest::prop_assert!(s.len() > MAX_LABEL_LEN || back == want);
        }
    }
}
