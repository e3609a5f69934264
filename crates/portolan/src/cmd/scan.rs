//! `portolan scan`: what another host really exposes.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use portolan_detect::{Detection, Detector, Options};
use portolan_registry::{Proto, Registry};
use portolan_scan::{
    Event, HostTiming, Mode, PortResult, PortSpec, PortState, Reason, RttBounds, ScanConfig,
    Scanner, Summary, Target, TargetSet, xml,
};

use crate::cli::{ScanArgs, ScanMode};
use crate::out::{self, Format};

/// A state with more ports than this on one host is summarised, not listed (as nmap).
const LIST_LIMIT: u64 = 25;

/// The largest `-iL` file read (a list of 2^24 addresses fits well within it).
const MAX_LIST_BYTES: u64 = 256 << 20;

/// Rewrites nmap's multi-letter single-dash options (`-iL`, `-oX`, `-Pn`) into portolan's
/// long options, for `portolan scan` only.
pub fn nmap_spellings(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let args: Vec<OsString> = args.into_iter().collect();
    let is_scan = args.get(1).is_some_and(|a| a == "scan");
    if !is_scan {
        return args;
    }
    args.into_iter()
        .map(|a| match a.to_str() {
            Some("-iL") => "--input-list".into(),
            Some("-oX") => "--xml-out".into(),
            Some("-Pn") => "--no-ping".into(),
            Some("-sV") => "--detect".into(),
            _ => a,
        })
        .collect()
}

/// Looks a service name up in the registry: every TCP/UDP port it is assigned.
fn resolve_service(name: &str) -> Vec<(u16, Proto)> {
    let mut out = Vec::new();
    for e in Registry::embedded().by_name(name) {
        if let (Some(r), Some(p)) = (e.ports, e.proto)
            && r.len() <= 64
        {
            out.extend(r.iter().map(|port| (port, p)));
        }
    }
    out
}

fn service_name(port: u16, proto: Proto) -> Option<&'static str> {
    Registry::embedded().name_for(port, proto)
}

fn parse_targets(args: &ScanArgs) -> anyhow::Result<TargetSet> {
    let mut targets = args
        .targets
        .iter()
        .map(|t| Target::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(path) = &args.input_list {
        let (name, text) = if path.as_os_str() == "-" {
            let name = "stdin".to_string();
            let text = out::read_text(io::stdin(), "target list stdin", MAX_LIST_BYTES)?;
            (name, text)
        } else {
            let name = path.display().to_string();
            (
                name,
                out::read_text_file(path, "target list", MAX_LIST_BYTES)?,
            )
        };
        // Parsed line by line, so that an error names where it is.
        for (i, line) in text.lines().enumerate() {
            for t in portolan_scan::target::read_list(line) {
                targets.push(
                    Target::parse(&t).with_context(|| format!("target list {name}:{}", i + 1))?,
                );
            }
        }
    }
    let exclude = args
        .exclude
        .iter()
        .flat_map(|e| e.split(','))
        .filter(|e| !e.trim().is_empty())
        .map(Target::parse)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TargetSet::build(&targets, &exclude, !args.no_resolve)?)
}

fn build_config(args: &ScanArgs) -> anyhow::Result<ScanConfig> {
    let tcp_mode = args
        .mode
        .iter()
        .rev()
        .find(|m| **m != ScanMode::Udp)
        .copied();
    if args.mode.contains(&ScanMode::Connect) && args.mode.contains(&ScanMode::Syn) {
        bail!("choose one TCP scan mode: connect (-sT) or syn (-sS)");
    }
    let udp = args.mode.contains(&ScanMode::Udp);
    let tcp = tcp_mode.is_some() || !udp;
    let spec = match (&args.ports, args.top) {
        (Some(p), _) => PortSpec::parse(p, &resolve_service)?,
        (None, Some(n)) => PortSpec::top(n)?,
        (None, None) => PortSpec::top(1000)?,
    };
    let mode = match tcp_mode {
        Some(ScanMode::Syn) => Mode::Syn,
        Some(ScanMode::Connect) => Mode::Connect,
        _ => Mode::best_available(),
    };
    let tcp_ports = if tcp {
        spec.ports(Proto::Tcp)
    } else {
        Vec::new()
    };
    let udp_ports = if udp {
        spec.ports(Proto::Udp)
    } else {
        Vec::new()
    };
    if tcp_ports.is_empty() && udp_ports.is_empty() {
        bail!("the port specification leaves no ports for the chosen scan modes");
    }
    if udp_ports.contains(&0) {
        bail!(
            "UDP port 0 cannot be scanned: the kernel refuses to send to it (leave 0 out, e.g. T:0,U:1-1024)"
        );
    }
    let mut rtt = RttBounds::default();
    if let Some(t) = args.timeout {
        rtt.max = t;
        rtt.initial = rtt.initial.min(t);
        rtt.min = rtt.min.min(t);
    }
    Ok(ScanConfig {
        mode,
        tcp_ports,
        udp_ports,
        discovery: !args.no_ping,
        max_retries: args.max_retries,
        rtt,
        rate: args.rate,
        concurrency: args.concurrency.map(|c| c as usize),
        ..ScanConfig::default()
    })
}

/// Results held back for a host until its end, when it is known whether a state is
/// listed or summarised.
#[derive(Default)]
struct HostState {
    counts: BTreeMap<(PortState, Reason, Proto), u64>,
    held: BTreeMap<PortState, Vec<PortResult>>,
    listed: Vec<PortResult>,
    /// Listed ports waiting for their detection (with `--detect`).
    deferred: Vec<PortResult>,
    start: u64,
    reason: Option<Reason>,
}

/// Service detection for `--detect`: each open port is handed to the detector as soon as
/// the scan finds it, on a runtime of its own; results are collected when the port is
/// printed (at its host's end, so that the scan itself never waits).
struct DetectRun {
    rt: tokio::runtime::Runtime,
    det: std::sync::Arc<Detector>,
    opts: Options,
    limit: std::sync::Arc<tokio::sync::Semaphore>,
    pending: HashMap<(IpAddr, u16, Proto), tokio::task::JoinHandle<Detection>>,
    done: HashMap<(IpAddr, u16, Proto), Detection>,
}

impl DetectRun {
    fn new(timeout: Option<Duration>) -> io::Result<DetectRun> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        Ok(DetectRun {
            rt,
            det: std::sync::Arc::new(Detector::default()),
            opts: Options::with_timeout(timeout.unwrap_or(Duration::from_secs(3))),
            // Each TCP detection may hold seven sockets: 64 at a time stays far below
            // the open-file limit the scanner sizes itself to.
            limit: std::sync::Arc::new(tokio::sync::Semaphore::new(64)),
            pending: HashMap::new(),
            done: HashMap::new(),
        })
    }

    /// Whether a port in this state is worth asking.
    fn wants(r: &PortResult) -> bool {
        r.state == PortState::Open || (r.proto == Proto::Udp && r.state == PortState::OpenFiltered)
    }

    fn start(&mut self, r: &PortResult) {
        let key = (r.host, r.port, r.proto);
        if !Self::wants(r) || self.pending.contains_key(&key) || self.done.contains_key(&key) {
            return;
        }
        let (det, opts, limit) = (self.det.clone(), self.opts.clone(), self.limit.clone());
        let addr = std::net::SocketAddr::new(r.host, r.port);
        let udp = r.proto == Proto::Udp;
        let task = self.rt.spawn(async move {
            let _permit = limit.acquire_owned().await;
            if udp {
                det.detect_udp(addr, &opts).await
            } else {
                det.detect_tcp(addr, &opts).await
            }
        });
        self.pending.insert(key, task);
    }

    /// The detection of a port, waiting for it if it is still running.
    fn get(&mut self, r: &PortResult) -> Option<&Detection> {
        let key = (r.host, r.port, r.proto);
        if let Some(task) = self.pending.remove(&key) {
            let d = self.rt.block_on(task).unwrap_or_else(|e| Detection {
                evidence: format!("detection failed: {e}"),
                ..Detection::default()
            });
            self.done.insert(key, d);
        }
        self.done.get(&key)
    }
}

/// `ssh OpenSSH 9.2p1`, `http nginx 1.22.1 (tls)`: a detection in one table cell.
fn detected_cell(d: &Detection) -> Option<String> {
    let p = d.protocol.as_deref()?;
    let mut s = p.to_string();
    for part in [d.product.as_deref(), d.version.as_deref()]
        .into_iter()
        .flatten()
    {
        s.push(' ');
        s.push_str(part);
    }
    if d.tls.is_some() && !d.starttls {
        s.push_str(" (tls)");
    }
    Some(s)
}

struct Printer {
    detect: Option<DetectRun>,
    format: Format,
    all: bool,
    color: bool,
    out: Box<dyn Write>,
    hosts: BTreeMap<IpAddr, HostState>,
    names: TargetSet,
    xml_hosts: Option<Vec<xml::Host>>,
    header_done: bool,
    progress: Option<indicatif::ProgressBar>,
    open_found: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn ms(d: Option<Duration>) -> Option<f64> {
    d.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3)
}

impl Printer {
    fn with_bar(&mut self, f: impl FnOnce(&mut Self) -> io::Result<()>) -> io::Result<()> {
        match self.progress.clone() {
            Some(pb) => pb.suspend(|| f(self)),
            None => f(self),
        }
    }

    fn emit(&mut self, r: &PortResult) -> io::Result<()> {
        let service = service_name(r.port, r.proto);
        let detected: Option<Detection> = self.detect.as_mut().and_then(|d| d.get(r).cloned());
        let detect_on = self.detect.is_some();
        self.with_bar(|p| {
            match p.format {
                Format::Json => {
                    let mut v = serde_json::json!({
                        "type": "port",
                        "host": r.host.to_string(),
                        "port": r.port,
                        "protocol": r.proto.as_str(),
                        "state": r.state.as_str(),
                        "reason": r.reason.as_str(),
                        "service": service,
                        "rtt_ms": ms(r.rtt),
                    });
                    if detect_on {
                        if let Some(o) = v.as_object_mut() {
                            o.insert("detected".into(), serde_json::json!(detected));
                        }
                    }
                    writeln!(p.out, "{v}")?;
                }
                Format::Csv => {
                    if !p.header_done {
                        p.header_done = true;
                        out::csv_record(
                            &mut p.out,
                            [
                                "host", "port", "protocol", "state", "reason", "service", "rtt_ms",
                            ],
                        )?;
                    }
                    out::csv_record(
                        &mut p.out,
                        [
                            r.host.to_string(),
                            r.port.to_string(),
                            r.proto.to_string(),
                            r.state.to_string(),
                            r.reason.to_string(),
                            service.unwrap_or("").to_string(),
                            ms(r.rtt).map_or(String::new(), |v| format!("{v}")),
                        ],
                    )?;
                }
                Format::Table => {
                    if !p.header_done {
                        p.header_done = true;
                        let h = format!(
                            "{:<15} {:<10} {:<14} {:<17} {:<16} {}",
                            "HOST", "PORT", "STATE", "SERVICE", "REASON", "RTT"
                        );
                        if p.color {
                            writeln!(p.out, "\x1b[1m{}\x1b[0m", h.trim_end())?;
                        } else {
                            writeln!(p.out, "{}", h.trim_end())?;
                        }
                    }
                    let rtt = ms(r.rtt).map_or(String::from("-"), |v| format!("{v:.2}ms"));
                    let line = format!(
                        "{:<15} {:<10} {:<14} {:<17} {:<16} {}",
                        r.host.to_string(),
                        format!("{}/{}", r.port, r.proto),
                        r.state.as_str(),
                        detected
                            .as_ref()
                            .and_then(detected_cell)
                            .unwrap_or_else(|| service.unwrap_or("-").to_string()),
                        r.reason.as_str(),
                        rtt
                    );
                    writeln!(p.out, "{}", line.trim_end())?;
                }
            }
            // Results are the point of a stream: let each reach the reader now.
            p.out.flush()
        })
    }

    fn port(&mut self, r: PortResult) -> io::Result<()> {
        if let Some(d) = self.detect.as_mut() {
            d.start(&r);
        }
        let h = self.hosts.entry(r.host).or_default();
        *h.counts.entry((r.state, r.reason, r.proto)).or_default() += 1;
        if r.state == PortState::Open || self.all {
            if r.state == PortState::Open {
                self.open_found += 1;
            }
            h.listed.push(r);
            if self.detect.is_some() {
                // Printed with its detection at the host's end.
                h.deferred.push(r);
                return Ok(());
            }
            return self.emit(&r);
        }
        let held = h.held.entry(r.state).or_default();
        if (held.len() as u64) < LIST_LIMIT + 1 {
            held.push(r);
        }
        Ok(())
    }

    fn host_done(&mut self, addr: IpAddr, timing: Option<HostTiming>) -> io::Result<()> {
        let Some(mut h) = self.hosts.remove(&addr) else {
            return self.host_xml(addr, HostState::default(), timing);
        };
        // What waited for the host's end is listed in port order, not in the order the
        // answers came.
        let mut deferred = std::mem::take(&mut h.deferred);
        deferred.sort_by_key(|r| (r.proto, r.port));
        for r in deferred {
            self.emit(&r)?;
        }
        let mut per_state: BTreeMap<PortState, u64> = BTreeMap::new();
        for ((s, _, _), n) in &h.counts {
            *per_state.entry(*s).or_default() += n;
        }
        let held = std::mem::take(&mut h.held);
        for (state, mut rs) in held {
            rs.sort_by_key(|r| (r.proto, r.port));
            if per_state.get(&state).copied().unwrap_or(0) <= LIST_LIMIT {
                for r in rs {
                    self.emit(&r)?;
                    h.listed.push(r);
                }
            }
        }
        if self.format == Format::Table && !self.all {
            let hidden: Vec<String> = per_state
                .iter()
                .filter(|(s, n)| **s != PortState::Open && **n > LIST_LIMIT)
                .map(|(s, n)| {
                    let reasons: Vec<String> = h
                        .counts
                        .iter()
                        .filter(|((st, _, _), _)| st == s)
                        .map(|((_, r, p), c)| format!("{c} {p} {r}"))
                        .collect();
                    format!("{n} {s} ({})", reasons.join(", "))
                })
                .collect();
            if !hidden.is_empty() {
                self.with_bar(|p| {
                    writeln!(p.out, "{addr}: not shown: {}", hidden.join("; "))?;
                    p.out.flush()
                })?;
            }
        }
        self.host_xml(addr, h, timing)
    }

    fn host_xml(
        &mut self,
        addr: IpAddr,
        h: HostState,
        timing: Option<HostTiming>,
    ) -> io::Result<()> {
        let Some(xs) = self.xml_hosts.as_mut() else {
            return Ok(());
        };
        let listed: std::collections::HashSet<(u16, Proto)> =
            h.listed.iter().map(|r| (r.port, r.proto)).collect();
        let mut extra: BTreeMap<PortState, xml::Extra> = BTreeMap::new();
        let mut listed_count: BTreeMap<PortState, u64> = BTreeMap::new();
        for r in &h.listed {
            *listed_count.entry(r.state).or_default() += 1;
        }
        for ((s, reason, proto), n) in &h.counts {
            let total_state: u64 = h
                .counts
                .iter()
                .filter(|((st, _, _), _)| st == s)
                .map(|(_, c)| c)
                .sum();
            if listed_count.get(s).copied().unwrap_or(0) >= total_state {
                continue;
            }
            let e = extra.entry(*s).or_insert(xml::Extra {
                state: *s,
                count: 0,
                reasons: Vec::new(),
            });
            e.count += n;
            e.reasons.push((*reason, proto.as_str(), *n));
        }
        let _ = listed;
        let mut ports: Vec<(PortResult, xml::Service)> = Vec::new();
        for r in &h.listed {
            let probed = self
                .detect
                .as_mut()
                .and_then(|d| d.get(r).map(Detection::nmap_service))
                .unwrap_or_default();
            let table = service_name(r.port, r.proto).map(str::to_string);
            ports.push((*r, xml::Service { table, probed }));
        }
        ports.sort_by_key(|(r, _)| (r.proto, r.port));
        xs.push(xml::Host {
            addr,
            name: self.names.name_of(addr).map(str::to_string),
            reason: h.reason.unwrap_or(Reason::UserSet),
            start: h.start,
            end: now_secs(),
            extra: extra.into_values().collect(),
            ports,
            timing,
        });
        Ok(())
    }

    fn event(&mut self, e: Event) -> io::Result<()> {
        match e {
            Event::Host {
                addr,
                up,
                reason,
                rtt,
            } => {
                if up {
                    let h = self.hosts.entry(addr).or_default();
                    h.start = now_secs();
                    h.reason = Some(reason);
                }
                if self.format == Format::Json {
                    self.with_bar(|p| {
                        let v = serde_json::json!({
                            "type": "host",
                            "host": addr.to_string(),
                            "state": if up { "up" } else { "down" },
                            "reason": reason.as_str(),
                            "rtt_ms": ms(rtt),
                        });
                        writeln!(p.out, "{v}")?;
                        p.out.flush()
                    })?;
                } else if !up && self.format == Format::Table {
                    self.with_bar(|p| {
                        let why = if reason == Reason::NetUnreach {
                            "no route or source address: a broadcast address?"
                        } else {
                            "no answer to discovery probes"
                        };
                        writeln!(p.out, "{addr}: down ({why})")?;
                        p.out.flush()
                    })?;
                }
                Ok(())
            }
            Event::Port(r) => self.port(r),
            Event::HostDone { addr, timing } => self.host_done(addr, timing),
            Event::Progress { done, total } => {
                if let Some(pb) = &self.progress {
                    pb.set_length(total);
                    pb.set_position(done);
                }
                Ok(())
            }
        }
    }
}

pub fn run(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let targets = parse_targets(args)?;
    if targets.is_empty() {
        if !args.exclude.is_empty() {
            bail!("--exclude leaves none of the targets to scan");
        }
        bail!("no targets to scan (give addresses, names, or -iL FILE)");
    }
    let cfg = build_config(args)?;
    let format = if args.json { Format::Json } else { args.format };
    // `-oX -` is standard output (as in nmap), and then the only thing written there.
    let xml_stdout = args.xml_out.as_ref().is_some_and(|p| p.as_os_str() == "-");
    let xml_file: Option<Box<dyn Write>> = match &args.xml_out {
        Some(_) if xml_stdout => Some(Box::new(io::stdout())),
        Some(p) => Some(Box::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => None,
    };
    let progress = io::stderr().is_terminal().then(|| {
        let pb = indicatif::ProgressBar::new(1);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} probes, ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let start = now_secs();
    let mut p = Printer {
        format,
        all: args.all,
        color: out::use_color(),
        out: if xml_stdout {
            Box::new(io::sink())
        } else {
            Box::new(io::BufWriter::new(io::stdout()))
        },
        hosts: BTreeMap::new(),
        detect: if args.detect {
            Some(DetectRun::new(args.timeout).context("starting service detection")?)
        } else {
            None
        },
        names: targets.clone(),
        xml_hosts: xml_file.is_some().then(Vec::new),
        header_done: false,
        progress,
        open_found: 0,
    };
    let scanner = Scanner::new(cfg.clone());
    let mut io_err: Option<io::Error> = None;
    let summary: Summary = scanner.run(&targets, &mut |e| {
        if io_err.is_none()
            && let Err(err) = p.event(e)
        {
            io_err = Some(err);
        }
    })?;
    if let Some(pb) = &p.progress {
        pb.finish_and_clear();
    }
    if let Some(e) = io_err {
        return Err(e.into());
    }
    match format {
        Format::Json => {
            let mut v = serde_json::to_value(&summary)?;
            if let Some(o) = v.as_object_mut() {
                o.insert("type".into(), "summary".into());
                o.insert("mode".into(), cfg.mode.as_str().into());
                o.insert("udp".into(), (!cfg.udp_ports.is_empty()).into());
            }
            writeln!(p.out, "{v}")?;
        }
        Format::Table => {
            writeln!(
                p.out,
                "{} host{} up of {}, {} open port{} in {:.2}s ({} scan{})",
                summary.hosts_up,
                if summary.hosts_up == 1 { "" } else { "s" },
                summary.hosts_total,
                summary.open,
                if summary.open == 1 { "" } else { "s" },
                summary.elapsed.as_secs_f64(),
                cfg.mode.as_str(),
                if cfg.udp_ports.is_empty() {
                    ""
                } else {
                    " + udp"
                },
            )?;
        }
        Format::Csv => {}
    }
    p.out.flush()?;
    if let (Some(file), Some(hosts)) = (xml_file, p.xml_hosts.take()) {
        let mut scans = Vec::new();
        if !cfg.tcp_ports.is_empty() {
            scans.push(xml::ScanInfo {
                kind: cfg.mode.as_str(),
                proto: "tcp",
                ports: cfg.tcp_ports.clone(),
            });
        }
        if !cfg.udp_ports.is_empty() {
            scans.push(xml::ScanInfo {
                kind: "udp",
                proto: "udp",
                ports: cfg.udp_ports.clone(),
            });
        }
        let run = xml::Run {
            args: std::env::args().collect::<Vec<_>>().join(" "),
            version: format!("portolan {}", env!("CARGO_PKG_VERSION")),
            start,
            end: now_secs(),
            elapsed: summary.elapsed,
            scans,
            hosts,
            hosts_up: summary.hosts_up,
            hosts_total: summary.hosts_total,
        };
        let mut w = io::BufWriter::new(file);
        xml::write(&mut w, &run).context("writing the XML report")?;
        w.flush().context("writing the XML report")?;
    }
    Ok(if p.open_found > 0 || summary.open > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_spelling_and_table_cell() {
        let a: Vec<OsString> = ["portolan", "scan", "-sV", "h"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(nmap_spellings(a)[2], "--detect");
        let d = Detection {
            protocol: Some("http".into()),
            product: Some("nginx".into()),
            version: Some("1.22.1".into()),
            tls: Some(portolan_detect::TlsInfo::default()),
            ..Detection::default()
        };
        assert_eq!(
            detected_cell(&d).as_deref(),
            Some("http nginx 1.22.1 (tls)")
        );
        assert_eq!(detected_cell(&Detection::default()), None);
    }

    #[test]
    fn nmap_spellings_only_for_scan() {
        let a: Vec<OsString> = ["portolan", "scan", "-Pn", "-iL", "f", "-oX", "x.xml"]
            .iter()
            .map(OsString::from)
            .collect();
        let b = nmap_spellings(a);
        assert_eq!(b[2], "--no-ping");
        assert_eq!(b[3], "--input-list");
        assert_eq!(b[5], "--xml-out");
        let c: Vec<OsString> = ["portolan", "lookup", "-Pn"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(nmap_spellings(c.clone()), c);
    }

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Buf(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn printer(format: Format, buf: &Buf) -> Printer {
        Printer {
            format,
            detect: None,
            all: false,
            color: false,
            out: Box::new(buf.clone()),
            hosts: BTreeMap::new(),
            names: TargetSet::default(),
            xml_hosts: Some(Vec::new()),
            header_done: false,
            progress: None,
            open_found: 0,
        }
    }

    fn port(port: u16, proto: Proto, state: PortState, reason: Reason) -> Event {
        Event::Port(PortResult {
            host: "198.18.0.2".parse().unwrap(),
            port,
            proto,
            state,
            reason,
            rtt: (state == PortState::Open).then_some(Duration::from_micros(1500)),
            ttl: Some(64),
        })
    }

    /// One host: two open ports, 30 closed (summarised), one filtered and one UDP
    /// open|filtered (listed, as they are few).
    fn feed(p: &mut Printer) {
        let host: IpAddr = "198.18.0.2".parse().unwrap();
        let mut events = vec![Event::Host {
            addr: host,
            up: true,
            reason: Reason::SynAck,
            rtt: Some(Duration::from_micros(800)),
        }];
        events.push(port(443, Proto::Tcp, PortState::Open, Reason::SynAck));
        events.push(port(22, Proto::Tcp, PortState::Open, Reason::SynAck));
        for n in 1000..1030 {
            events.push(port(n, Proto::Tcp, PortState::Closed, Reason::Reset));
        }
        events.push(port(
            135,
            Proto::Tcp,
            PortState::Filtered,
            Reason::NoResponse,
        ));
        events.push(port(
            161,
            Proto::Udp,
            PortState::OpenFiltered,
            Reason::NoResponse,
        ));
        events.push(Event::HostDone {
            addr: host,
            timing: Some(HostTiming {
                srtt: Duration::from_micros(900),
                rttvar: Duration::from_micros(300),
                timeout: Duration::from_millis(50),
            }),
        });
        for e in events {
            p.event(e).unwrap();
        }
    }

    #[test]
    fn renders_every_format() {
        for format in [Format::Table, Format::Json, Format::Csv] {
            let buf = Buf::default();
            let mut p = printer(format, &buf);
            feed(&mut p);
            drop(p);
            let text = String::from_utf8(buf.0.borrow().clone()).unwrap();
            insta::assert_snapshot!(format!("scan_{format:?}").to_lowercase(), text);
        }
    }

    #[test]
    fn renders_nmap_xml() {
        let buf = Buf::default();
        let mut p = printer(Format::Json, &buf);
        feed(&mut p);
        let mut hosts = p.xml_hosts.take().unwrap();
        for h in &mut hosts {
            h.start = 1_700_000_000;
            h.end = 1_700_000_001;
        }
        let run = xml::Run {
            args: "portolan scan -sS -p 22,135,443,1000-1029 198.18.0.2".into(),
            version: "portolan 0.1.0".into(),
            start: 1_700_000_000,
            end: 1_700_000_001,
            elapsed: Duration::from_millis(1234),
            scans: vec![xml::ScanInfo {
                kind: "syn",
                proto: "tcp",
                ports: vec![22, 135, 443],
            }],
            hosts,
            hosts_up: 1,
            hosts_total: 1,
        };
        let mut out = Vec::new();
        xml::write(&mut out, &run).unwrap();
        insta::assert_snapshot!("scan_xml", String::from_utf8(out).unwrap());
    }

    #[test]
    fn services_resolve_through_the_registry() {
        assert!(resolve_service("https").contains(&(443, Proto::Tcp)));
        assert!(resolve_service("no-such-service-x").is_empty());
    }

    #[test]
    fn closed_ports_are_listed_in_port_order() {
        // The engines answer in any order (retries, UDP after TCP): the listed closed
        // ports must still read top to bottom, as nmap lists them.
        let host: IpAddr = "198.18.0.2".parse().unwrap();
        let buf = Buf::default();
        let mut p = printer(Format::Table, &buf);
        let mut events = vec![];
        for n in [5432, 161, 22] {
            events.push(port(n, Proto::Tcp, PortState::Closed, Reason::Reset));
        }
        for n in [23, 8080, 6379] {
            events.push(port(n, Proto::Udp, PortState::Closed, Reason::PortUnreach));
        }
        events.push(port(40, Proto::Tcp, PortState::Closed, Reason::Reset));
        events.push(Event::HostDone {
            addr: host,
            timing: None,
        });
        for e in events {
            p.event(e).unwrap();
        }
        drop(p);
        let text = String::from_utf8(buf.0.borrow().clone()).unwrap();
        let listed: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|c| c.contains('/'))
            .collect();
        assert_eq!(
            listed,
            [
                "22/tcp", "40/tcp", "161/tcp", "5432/tcp", "23/udp", "6379/udp", "8080/udp"
            ],
            "{text}"
        );
    }

    #[test]
    fn long_reason_keeps_the_rtt_column_aligned() {
        // admin-prohibited (16 characters) used to push the RTT out of its column.
        let host: IpAddr = "198.18.0.2".parse().unwrap();
        let buf = Buf::default();
        let mut p = printer(Format::Table, &buf);
        let mut r = port(
            8080,
            Proto::Tcp,
            PortState::Filtered,
            Reason::AdminProhibited,
        );
        if let Event::Port(pr) = &mut r {
            pr.rtt = Some(Duration::from_micros(190));
        }
        p.event(r).unwrap();
        p.event(Event::HostDone {
            addr: host,
            timing: None,
        })
        .unwrap();
        drop(p);
        let text = String::from_utf8(buf.0.borrow().clone()).unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        let row = lines.next().unwrap();
        let col = header.find("RTT").unwrap();
        assert_eq!(row.find("0.19ms"), Some(col), "{text}");
        assert_eq!(
            header.find("REASON"),
            row.find("admin-prohibited"),
            "{text}"
        );
    }
}
