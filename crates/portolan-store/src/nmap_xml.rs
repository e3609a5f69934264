//! nmap XML import: an nmap run (`nmap -oX`) as a [`ScanReport`], so nmap's own scans
//! can be recorded and diffed.
//!
//! What maps how: `<scaninfo>` gives the scan mode and, for every host found up, the
//! coverage (nmap probes no port of a host it found down); `<port>` gives the state,
//! reason and TTL; `<service>` the service name, and, when nmap probed it
//! (`method="probed"`), a detection with product, version and TLS (`tunnel="ssl"`);
//! `<extraports>` the counts of ports not shown. nmap's `closed|filtered` is
//! `filtered`; `unfiltered` (ACK scans: reachable, open or closed unknown) is left out,
//! with a warning. Host reasons portolan has no word for (`localhost-response`,
//! `arp-response`) become `user-set`.

use std::io::Read;
use std::net::IpAddr;
use std::time::Duration;

use portolan_model::{
    Detection, HostResult, HostState, PortRange, PortResult, PortState, Proto, Reason, RunInfo,
    ScanMode, ScanReport, ScanSummary, ScannedPort, Snapshot, TlsInfo,
};
use quick_xml::events::{BytesStart, Event};

/// The largest file read (nmap writes about 200 bytes per port shown).
pub const MAX_BYTES: u64 = 256 << 20;

/// An nmap XML file that could not be read: the file, where in it, and what.
#[derive(Debug, thiserror::Error)]
#[error("read nmap XML {name}{}: {detail}", at.map(|(l, c)| format!(" line {l} column {c}")).unwrap_or_default())]
pub struct NmapError {
    pub name: String,
    /// Line and column (from 1), when the problem has a place.
    pub at: Option<(usize, usize)>,
    pub detail: String,
}

/// One nmap run: the report and what nmap said about the run.
#[derive(Debug, Clone, PartialEq)]
pub struct NmapScan {
    pub report: ScanReport,
    /// When nmap started, RFC 3339 in UTC.
    pub started: Option<String>,
    /// nmap's command line.
    pub args: String,
    /// nmap's version.
    pub version: String,
    /// What could not be represented.
    pub warnings: Vec<String>,
}

impl NmapScan {
    /// As a snapshot to record (a scan, no inside view).
    pub fn into_snapshot(self, host: &str) -> Snapshot {
        Snapshot {
            run: RunInfo {
                started: self.started.unwrap_or_default(),
                host: host.to_string(),
                command: self.args,
                version: format!("nmap {}", self.version),
            },
            listeners: Vec::new(),
            audit: None,
            scan: Some(self.report),
            warnings: self.warnings,
        }
    }
}

/// Reads an nmap XML file into a scan report (see [`read_scan`]).
pub fn read(reader: impl Read, name: &str) -> Result<ScanReport, NmapError> {
    read_scan(reader, name).map(|s| s.report)
}

fn line_col(data: &[u8], pos: usize) -> (usize, usize) {
    let pos = pos.min(data.len());
    let before = &data[..pos];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = pos
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
        + 1;
    (line, col)
}

struct Attrs(Vec<(String, String)>);

impl Attrs {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct HostAcc {
    addr: Option<IpAddr>,
    state: Option<HostState>,
    reason: Option<Reason>,
    rtt: Option<Duration>,
    ports: Vec<ScannedPort>,
    extra: Vec<(PortState, u64)>,
    port: Option<ScannedPort>,
    skip_port: bool,
}

/// Reads an nmap XML file, at most [`MAX_BYTES`]. A truncated or malformed file is an
/// error naming the line and column.
pub fn read_scan(reader: impl Read, name: &str) -> Result<NmapScan, NmapError> {
    let err = |at: Option<(usize, usize)>, detail: String| NmapError {
        name: name.to_string(),
        at,
        detail,
    };
    let mut data = Vec::new();
    reader
        .take(MAX_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| err(None, e.to_string()))?;
    if data.len() as u64 > MAX_BYTES {
        return Err(err(None, format!("larger than {} MiB", MAX_BYTES >> 20)));
    }
    let mut r = quick_xml::Reader::from_reader(&data[..]);
    r.config_mut().trim_text(true);
    let mut stack: Vec<String> = Vec::new();
    let mut scan = NmapScan {
        report: ScanReport::default(),
        started: None,
        args: String::new(),
        version: String::new(),
        warnings: Vec::new(),
    };
    let mut seen_root = false;
    let mut infos: Vec<(Proto, Vec<PortRange>)> = Vec::new();
    let mut host: Option<HostAcc> = None;
    let mut summary = ScanSummary::default();
    let mut totals: Option<(u64, u64)> = None;
    loop {
        let pos = r.buffer_position() as usize;
        let ev = r.read_event().map_err(|e| {
            let at = line_col(&data, r.error_position() as usize);
            err(Some(at), e.to_string())
        })?;
        let at = || line_col(&data, pos);
        let (e, empty) = match &ev {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                let Some(closed) = stack.pop() else {
                    return Err(err(Some(at()), "unexpected end tag".into()));
                };
                finish(&closed, &mut host, &mut scan, &infos, &mut summary);
                continue;
            }
            Event::Eof => {
                if let Some(open) = stack.last() {
                    return Err(err(
                        Some(line_col(&data, data.len())),
                        format!("the file ends inside <{open}>: truncated?"),
                    ));
                }
                if !seen_root {
                    return Err(err(
                        None,
                        "no <nmaprun> element: not an nmap XML file".into(),
                    ));
                }
                break;
            }
            _ => continue,
        };
        let tag = String::from_utf8_lossy(e.name().as_ref()).into_owned();
        if stack.is_empty() && tag != "nmaprun" {
            return Err(err(
                Some(at()),
                format!("<{tag}> where <nmaprun> was expected"),
            ));
        }
        let attrs = attrs_of(e).map_err(|d| err(Some(at()), d))?;
        let bad = |what: &str, v: &str| err(Some(at()), format!("invalid {what} '{v}' in <{tag}>"));
        match tag.as_str() {
            "nmaprun" => {
                seen_root = true;
                scan.args = attrs.get("args").unwrap_or("").to_string();
                scan.version = attrs.get("version").unwrap_or("").to_string();
                scan.started = attrs
                    .get("start")
                    .and_then(|s| s.parse::<i64>().ok())
                    .and_then(|s| jiff::Timestamp::from_second(s).ok())
                    .map(|t| t.to_string());
            }
            "scaninfo" => {
                let proto_s = attrs.get("protocol").unwrap_or("");
                let Ok(proto) = proto_s.parse::<Proto>() else {
                    scan.warnings
                        .push(format!("scan of protocol '{proto_s}' left out"));
                    push(&mut stack, tag, empty);
                    continue;
                };
                let services = attrs.get("services").unwrap_or("");
                let ranges = parse_services(services).ok_or_else(|| bad("services", services))?;
                match (proto, attrs.get("type").unwrap_or("")) {
                    (Proto::Tcp, "syn") => summary.mode = Some(ScanMode::Syn),
                    (Proto::Tcp, _) => summary.mode = summary.mode.or(Some(ScanMode::Connect)),
                    (Proto::Udp, _) => summary.udp = true,
                    _ => {}
                }
                infos.push((proto, ranges));
            }
            "host" => host = Some(HostAcc::default()),
            "status" if stack.last().is_some_and(|s| s == "host") => {
                if let Some(h) = host.as_mut() {
                    h.state = Some(match attrs.get("state") {
                        Some("up") => HostState::Up,
                        _ => HostState::Down,
                    });
                    h.reason = attrs.get("reason").and_then(|r| r.parse().ok());
                }
            }
            "address" => {
                if let Some(h) = host.as_mut()
                    && matches!(attrs.get("addrtype"), Some("ipv4" | "ipv6"))
                    && h.addr.is_none()
                {
                    let a = attrs.get("addr").unwrap_or("");
                    h.addr = Some(a.parse().map_err(|_| bad("address", a))?);
                }
            }
            "times" => {
                if let Some(h) = host.as_mut() {
                    h.rtt = attrs
                        .get("srtt")
                        .and_then(|v| v.parse::<u64>().ok())
                        .map(Duration::from_micros);
                }
            }
            "extraports" => {
                if let Some(h) = host.as_mut() {
                    let count = attrs.get("count").unwrap_or("");
                    let n: u64 = count.parse().map_err(|_| bad("count", count))?;
                    match map_state(attrs.get("state").unwrap_or("")) {
                        Some(s) => {
                            h.extra.push((s, n));
                            add_count(&mut summary, s, n);
                        }
                        None => scan.warnings.push(format!(
                            "{n} ports in state '{}' left out",
                            attrs.get("state").unwrap_or("")
                        )),
                    }
                }
            }
            "port" => {
                if let Some(h) = host.as_mut() {
                    let proto_s = attrs.get("protocol").unwrap_or("");
                    let id = attrs.get("portid").unwrap_or("");
                    let port: u16 = id.parse().map_err(|_| bad("portid", id))?;
                    match proto_s.parse::<Proto>() {
                        Ok(proto) => {
                            h.port = Some(ScannedPort {
                                result: PortResult {
                                    host: h.addr.unwrap_or(IpAddr::from([0, 0, 0, 0])),
                                    port,
                                    proto,
                                    state: PortState::Closed,
                                    reason: Reason::Reset,
                                    rtt: None,
                                    ttl: None,
                                },
                                service: None,
                                detected: None,
                            });
                            h.skip_port = false;
                        }
                        Err(_) => {
                            h.skip_port = true;
                            scan.warnings.push(format!("port {id}/{proto_s} left out"));
                        }
                    }
                }
            }
            "state" => {
                if let Some(h) = host.as_mut()
                    && let Some(p) = h.port.as_mut()
                {
                    let s = attrs.get("state").unwrap_or("");
                    match map_state(s) {
                        Some(st) => {
                            p.result.state = st;
                            p.result.reason = attrs
                                .get("reason")
                                .and_then(|r| r.parse().ok())
                                .unwrap_or(match st {
                                    PortState::Open => Reason::SynAck,
                                    PortState::Closed => Reason::Reset,
                                    _ => Reason::NoResponse,
                                });
                            p.result.ttl = attrs
                                .get("reason_ttl")
                                .and_then(|t| t.parse::<u8>().ok())
                                .filter(|&t| t > 0);
                        }
                        None => {
                            h.skip_port = true;
                            scan.warnings.push(format!(
                                "port {}/{} in state '{s}' left out",
                                p.result.port, p.result.proto
                            ));
                        }
                    }
                }
            }
            "service" => {
                if let Some(h) = host.as_mut()
                    && let Some(p) = h.port.as_mut()
                {
                    let name = attrs.get("name").map(str::to_string);
                    p.service = name.clone();
                    if attrs.get("method") == Some("probed") {
                        let tls = attrs.get("tunnel") == Some("ssl");
                        p.detected = Some(Detection {
                            protocol: name.map(|n| match n.as_str() {
                                "domain" => "dns".to_string(),
                                _ => n,
                            }),
                            product: attrs.get("product").map(str::to_string),
                            version: attrs.get("version").map(str::to_string),
                            tls: tls.then(TlsInfo::default),
                            evidence: "nmap service detection".into(),
                            ..Detection::default()
                        });
                    }
                }
            }
            "finished" => {
                let el = attrs.get("elapsed").unwrap_or("0");
                let secs: f64 = el.parse().map_err(|_| bad("elapsed", el))?;
                if secs.is_finite() && (0.0..1e9).contains(&secs) {
                    summary.elapsed = Duration::from_secs_f64(secs);
                }
            }
            "hosts" if stack.last().is_some_and(|s| s == "runstats") => {
                let n = |k| {
                    attrs
                        .get(k)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                totals = Some((n("total"), n("up")));
            }
            _ => {}
        }
        if empty {
            finish(&tag, &mut host, &mut scan, &infos, &mut summary);
        } else {
            stack.push(tag);
        }
    }
    let (total, up) = totals.unwrap_or_else(|| {
        let up = scan
            .report
            .hosts
            .iter()
            .filter(|h| h.state == HostState::Up)
            .count() as u64;
        (scan.report.hosts.len() as u64, up)
    });
    summary.hosts_total = total;
    summary.hosts_up = up;
    scan.report.targets = scan
        .report
        .hosts
        .iter()
        .map(|h| h.host.to_string())
        .collect();
    scan.report.summary = summary;
    Ok(scan)
}

fn push(stack: &mut Vec<String>, tag: String, empty: bool) {
    if !empty {
        stack.push(tag);
    }
}

/// What closing an element completes.
fn finish(
    tag: &str,
    host: &mut Option<HostAcc>,
    scan: &mut NmapScan,
    infos: &[(Proto, Vec<PortRange>)],
    summary: &mut ScanSummary,
) {
    match tag {
        "port" => {
            if let Some(h) = host.as_mut()
                && let Some(p) = h.port.take()
                && !h.skip_port
            {
                summary.count(p.result.state);
                h.ports.push(p);
            }
        }
        "host" => {
            let Some(h) = host.take() else { return };
            let Some(addr) = h.addr else {
                scan.warnings
                    .push("a host with no IP address left out".into());
                return;
            };
            let state = h.state.unwrap_or(HostState::Down);
            if state == HostState::Up {
                let mut cov = std::mem::take(&mut scan.report.coverage);
                for (proto, ranges) in infos {
                    cov.add(addr, *proto, ranges);
                }
                scan.report.coverage = cov;
            }
            let mut ports = h.ports;
            for p in &mut ports {
                p.result.host = addr;
            }
            scan.report.hosts.push(HostResult {
                rtt: h.rtt,
                ports,
                not_shown: h.extra,
                ..HostResult::new(addr, state, h.reason.unwrap_or(Reason::UserSet))
            });
        }
        _ => {}
    }
}

fn add_count(s: &mut ScanSummary, state: PortState, n: u64) {
    s.ports_scanned += n;
    match state {
        PortState::Open => s.open += n,
        PortState::Closed => s.closed += n,
        PortState::Filtered => s.filtered += n,
        PortState::OpenFiltered => s.open_filtered += n,
    }
}

fn map_state(s: &str) -> Option<PortState> {
    match s {
        "closed|filtered" => Some(PortState::Filtered),
        "unfiltered" => None,
        _ => s.parse().ok(),
    }
}

fn attrs_of(e: &BytesStart<'_>) -> Result<Attrs, String> {
    let mut v = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        let k = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let val = a.unescape_value().map_err(|e| e.to_string())?.into_owned();
        v.push((k, val));
    }
    Ok(Attrs(v))
}

/// nmap's `services` list: `1-1024` or `22,80,443,8000-8100`, sorted and merged.
fn parse_services(s: &str) -> Option<Vec<PortRange>> {
    let mut v = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        v.push(PortRange::new(
            a.trim().parse().ok()?,
            b.trim().parse().ok()?,
        )?);
    }
    v.sort();
    let mut out: Vec<PortRange> = Vec::new();
    for r in v {
        match out.last_mut() {
            Some(l) if u32::from(r.first) <= u32::from(l.last) + 1 => l.last = l.last.max(r.last),
            _ => out.push(r),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<nmaprun scanner="nmap" args="nmap -sT -p 22,80 127.0.0.1" start="1764590400" version="7.94" xmloutputversion="1.05">
<scaninfo type="connect" protocol="tcp" numservices="2" services="22,80"/>
<host starttime="1764590400" endtime="1764590400"><status state="up" reason="localhost-response" reason_ttl="0"/>
<address addr="127.0.0.1" addrtype="ipv4"/>
<ports><port protocol="tcp" portid="22"><state state="open" reason="syn-ack" reason_ttl="64"/><service name="ssh" product="OpenSSH" version="9.6" method="probed" conf="10"/></port>
<port protocol="tcp" portid="80"><state state="closed" reason="conn-refused" reason_ttl="0"/><service name="http" method="table" conf="3"/></port>
</ports>
<times srtt="42" rttvar="5000" to="100000"/>
</host>
<runstats><finished time="1764590401" elapsed="0.25" exit="success"/><hosts up="1" down="0" total="1"/></runstats>
</nmaprun>
"#;

    #[test]
    fn reads_a_run() {
        let s = read_scan(SAMPLE.as_bytes(), "sample.xml").unwrap();
        let r = &s.report;
        assert_eq!(s.started.as_deref(), Some("2025-12-01T12:00:00Z"));
        assert_eq!(r.hosts.len(), 1);
        let h = &r.hosts[0];
        assert_eq!(h.ports.len(), 2);
        let ssh = &h.ports[0];
        assert_eq!(ssh.result.state, PortState::Open);
        assert_eq!(ssh.result.ttl, Some(64));
        let d = ssh.detected.as_ref().unwrap();
        assert_eq!(d.product.as_deref(), Some("OpenSSH"));
        assert!(h.ports[1].detected.is_none());
        assert_eq!(h.ports[1].result.reason, Reason::ConnRefused);
        let a = "127.0.0.1".parse().unwrap();
        assert!(r.coverage.covers(a, Proto::Tcp, 80));
        assert!(!r.coverage.covers(a, Proto::Tcp, 81));
        assert_eq!(r.summary.mode, Some(ScanMode::Connect));
        assert_eq!((r.summary.open, r.summary.closed), (1, 1));
    }

    #[test]
    fn truncated_files_name_the_place() {
        for cut in [40, 300, SAMPLE.len() - 12] {
            let e = read(&SAMPLE.as_bytes()[..cut], "t.xml").unwrap_err();
            let m = e.to_string();
            assert!(m.starts_with("read nmap XML t.xml line "), "{m}");
        }
        let e = read(&b"hello"[..], "x.xml").unwrap_err();
        assert!(e.to_string().contains("x.xml"), "{e}");
        let bad = SAMPLE.replace("</ports>", "</port>");
        let e = read(bad.as_bytes(), "m.xml").unwrap_err();
        assert!(e.at.is_some(), "{e}");
    }

    #[test]
    fn services_lists() {
        assert_eq!(
            parse_services("80,1-1024,2000").unwrap(),
            vec![PortRange::new(1, 1024).unwrap(), PortRange::single(2000)]
        );
        assert!(parse_services("9-1").is_none());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_prefix(cut in 0usize..2000) {
            let cut = cut.min(SAMPLE.len());
            let _ = read(&SAMPLE.as_bytes()[..cut], "p.xml");
        }

        #[test]
        fn never_panics_on_noise(s in "\\PC{0,200}") {
            let _ = read(s.as_bytes(), "n.xml");
        }
    }
}
