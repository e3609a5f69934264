//! `portolan scan`: flags to a request, one call to `portolan_app::scan`, and the events
//! rendered as they come.

use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use portolan_app::input::{read_text, read_text_file};
use portolan_app::scan::{HeldOutput, Ports, ScanEvent, ScanRequest, held};
use portolan_model::PortSpec;
use portolan_registry::Registry;
use portolan_report::scan::{Format as ScanFormat, Stream};
use portolan_report::xml;
use portolan_scan::Target;

use crate::cli::{ScanArgs, ScanMode};
use crate::out::{self, Format};

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

fn parse_targets(args: &ScanArgs) -> anyhow::Result<(Vec<Target>, Vec<Target>)> {
    let mut targets = args
        .targets
        .iter()
        .map(|t| Target::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(path) = &args.input_list {
        let (name, text) = if path.as_os_str() == "-" {
            let text = read_text(io::stdin(), "target list stdin", MAX_LIST_BYTES)?;
            ("stdin".to_string(), text)
        } else {
            let text = read_text_file(path, "target list", MAX_LIST_BYTES)?;
            (path.display().to_string(), text)
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
    Ok((targets, exclude))
}

fn xml_to_stdout(args: &ScanArgs) -> bool {
    args.xml_out.as_ref().is_some_and(|p| p.as_os_str() == "-")
}

/// The flags as a request.
fn request(args: &ScanArgs) -> anyhow::Result<ScanRequest> {
    if xml_to_stdout(args) {
        if args.json {
            bail!(
                "--xml-out - (-oX -) writes XML to standard output: it cannot be used with --json"
            );
        }
        if let Some(f) = args.format {
            bail!(
                "--xml-out - (-oX -) writes XML to standard output: it cannot be used with --format {}",
                format!("{f:?}").to_lowercase()
            );
        }
    }
    if let Some(resume) = &args.resume {
        let resume = resume.display();
        // Both are written when the scan ends: an interrupted run leaves nothing, and the
        // run that resumes it would hold only its own hosts.
        if args.xml_out.is_some() {
            bail!(
                "--resume {resume} cannot be used with --xml-out (-oX): the XML report is \
                 written when the scan ends, so the run that resumes an interrupted one would \
                 hold only its own hosts (use --json, whose records append)"
            );
        }
        if args.history.record {
            bail!(
                "--resume {resume} cannot be used with --record: the run is recorded when the \
                 scan ends, so the run that resumes an interrupted one would record only its \
                 own hosts"
            );
        }
    }
    if args.mode.contains(&ScanMode::Connect) && args.mode.contains(&ScanMode::Syn) {
        bail!("choose one TCP scan mode: connect (-sT) or syn (-sS)");
    }
    let tcp_mode = args.mode.iter().rev().find(|m| **m != ScanMode::Udp);
    let udp = args.mode.contains(&ScanMode::Udp);
    let ports = match (&args.ports, args.top) {
        (Some(p), _) => Ports::Spec(PortSpec::parse_with(p, Registry::embedded())?),
        (None, Some(n)) => Ports::Top(n),
        (None, None) => Ports::Top(1000),
    };
    let (targets, exclude) = parse_targets(args)?;
    Ok(ScanRequest {
        targets,
        exclude,
        resolve: !args.no_resolve,
        ports,
        tcp: tcp_mode.is_some() || !udp,
        mode: match tcp_mode {
            Some(ScanMode::Syn) => Some(portolan_model::ScanMode::Syn),
            Some(ScanMode::Connect) => Some(portolan_model::ScanMode::Connect),
            _ => None,
        },
        udp,
        discovery: !args.no_ping,
        timeout: args.timeout,
        max_retries: args.max_retries,
        rate: args.rate,
        concurrency: args.concurrency.map(|c| c as usize),
        detect: args.detect,
        all: args.all,
        seed: args.seed,
        shard: args.shard.map_or_else(Default::default, |(index, count)| {
            portolan_app::scan::Shard { index, count }
        }),
        resume: args.resume.clone(),
        output: None,
        // Only the XML and the store need every host at the end; the streams do not.
        keep_hosts: args.xml_out.is_some() || args.history.record,
    })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Renders one event; the progress bar is hidden while a line is written.
fn render(
    s: &mut Stream<'_>,
    pb: Option<&indicatif::ProgressBar>,
    e: ScanEvent<'_>,
) -> io::Result<()> {
    let quiet = matches!(e, ScanEvent::Progress { .. } | ScanEvent::InBlock(_));
    let mut write = || match e {
        ScanEvent::Progress { done, total } => {
            if let Some(pb) = pb {
                pb.set_length(total);
                pb.set_position(done);
            }
            Ok(())
        }
        ScanEvent::Host {
            addr,
            up,
            reason,
            rtt,
        } => s.host(addr, up, reason, rtt),
        ScanEvent::Port(p) => s.port(p),
        ScanEvent::HostDone(h) => s.host_done(h),
        // The held output takes the blocks (`scan_to`).
        ScanEvent::InBlock(_) | ScanEvent::BlockDone { .. } | ScanEvent::Checkpoint { .. } => {
            Ok(())
        }
        ScanEvent::Notice(n) => {
            eprintln!("portolan: warning: {n}");
            Ok(())
        }
    };
    match pb {
        Some(pb) if !quiet => pb.suspend(write),
        _ => write(),
    }
}

pub fn run(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let mut req = request(args)?;
    // `-oX -` is standard output (as in nmap), and then the only thing written there.
    let xml_stdout = xml_to_stdout(args);
    let inner: Box<dyn Write> = if xml_stdout {
        Box::new(io::sink())
    } else {
        Box::new(io::BufWriter::new(io::stdout()))
    };
    let file = req.resume.as_ref().and_then(|_| held::stdout_file());
    let output = HeldOutput::new(inner, file);
    req.output = output.file();
    // Checked before anything is written, so that bad input leaves no partial output.
    portolan_app::scan::config(&req)?;
    let format = match if args.json {
        Format::Json
    } else {
        args.format.unwrap_or(Format::Table)
    } {
        Format::Json => ScanFormat::Json,
        Format::Csv => ScanFormat::Csv,
        Format::Table => ScanFormat::Table,
    };
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
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} probes, {per_sec}, ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let start = now_secs();
    let appended = req.output.is_some_and(|o| o.size > 0);
    let mut out = output.writer();
    let mut stream = Stream::new(format, out::use_color(), args.detect, &mut out);
    stream.show_down = args.show_down || args.all;
    if req.resume.is_some() {
        // The blocks' records come in any order: the header goes first (once, in an
        // output appended to).
        stream.csv_header(!appended)?;
    }
    let mut io_err: Option<io::Error> = None;
    let report = portolan_app::scan::scan_to(&req, &output, &mut |e| {
        if io_err.is_none()
            && let Err(err) = render(&mut stream, progress.as_ref(), e)
        {
            io_err = Some(err);
        }
    })?;
    if let Some(pb) = &progress {
        pb.finish_and_clear();
    }
    if let Some(e) = io_err {
        return Err(e.into());
    }
    stream.summary(&report.summary)?;
    drop(stream);
    output.flush()?;
    if let Some(file) = xml_file {
        let meta = xml::RunMeta {
            args: crate::cmd::command_line(),
            version: format!("portolan {}", env!("CARGO_PKG_VERSION")),
            start,
            end: now_secs(),
        };
        let mut w = io::BufWriter::new(file);
        xml::write(&mut w, &report, &meta).context("writing the XML report")?;
        w.flush().context("writing the XML report")?;
    }
    if args.history.record {
        crate::cmd::record::scan(args.history.db.as_deref(), &report)?;
    }
    Ok(if report.summary.open > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::time::Duration;

    use portolan_app::scan::Aggregator;
    use portolan_model::{
        Detection, HostResult, HostTiming, PortResult, PortState, Proto, Reason, ScanMode,
        ScanReport, ScanSummary,
    };
    use portolan_report::scan::detected_cell;
    use portolan_scan::{Event, TargetSet};

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
            tls: Some(portolan_model::TlsInfo::default()),
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

    /// Feeds engine events through the aggregation and the renderer: the text and the
    /// finished hosts.
    fn render_events(format: ScanFormat, events: Vec<Event>) -> (String, Vec<HostResult>) {
        let names = TargetSet::default();
        let mut agg = Aggregator::new(&names, false);
        let mut buf = Vec::new();
        let mut s = Stream::new(format, false, false, &mut buf);
        for e in events {
            agg.event(e, &mut |e| render(&mut s, None, e).unwrap());
        }
        drop(s);
        (String::from_utf8(buf).unwrap(), agg.into_hosts())
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
    fn feed() -> Vec<Event> {
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
        events
    }

    #[test]
    fn renders_every_format() {
        for format in [ScanFormat::Table, ScanFormat::Json, ScanFormat::Csv] {
            let (text, _) = render_events(format, feed());
            insta::assert_snapshot!(format!("scan_{format:?}").to_lowercase(), text);
        }
    }

    #[test]
    fn renders_nmap_xml() {
        let (_, mut hosts) = render_events(ScanFormat::Json, feed());
        for h in &mut hosts {
            h.started = Some(1_700_000_000);
            h.ended = Some(1_700_000_001);
        }
        let report = ScanReport {
            hosts,
            summary: ScanSummary {
                mode: Some(ScanMode::Syn),
                hosts_up: 1,
                hosts_total: 1,
                elapsed: Duration::from_millis(1234),
                ..ScanSummary::default()
            },
            tcp_ports: [22, 135, 443]
                .into_iter()
                .map(portolan_model::PortRange::single)
                .collect(),
            ..ScanReport::default()
        };
        let meta = xml::RunMeta {
            args: "portolan scan -sS -p 22,135,443,1000-1029 198.18.0.2".into(),
            version: "portolan 0.1.0".into(),
            start: 1_700_000_000,
            end: 1_700_000_001,
        };
        let mut out = Vec::new();
        xml::write(&mut out, &report, &meta).unwrap();
        insta::assert_snapshot!("scan_xml", String::from_utf8(out).unwrap());
    }

    #[test]
    fn services_resolve_through_the_registry() {
        let s = PortSpec::parse_with("https", Registry::embedded()).unwrap();
        assert!(s.ports(Proto::Tcp).contains(&443));
        assert!(PortSpec::parse_with("no-such-service-x", Registry::embedded()).is_err());
    }

    #[test]
    fn closed_ports_are_listed_in_port_order() {
        // The engines answer in any order (retries, UDP after TCP): the listed closed
        // ports must still read top to bottom, as nmap lists them.
        let host: IpAddr = "198.18.0.2".parse().unwrap();
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
        let (text, _) = render_events(ScanFormat::Table, events);
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
        let mut r = port(
            8080,
            Proto::Tcp,
            PortState::Filtered,
            Reason::AdminProhibited,
        );
        if let Event::Port(pr) = &mut r {
            pr.rtt = Some(Duration::from_micros(190));
        }
        let events = vec![
            r,
            Event::HostDone {
                addr: host,
                timing: None,
            },
        ];
        let (text, _) = render_events(ScanFormat::Table, events);
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
