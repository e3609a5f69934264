//! `portolan scan` output as it streams: a table per host, JSON Lines (typed `host`,
//! `port` and `summary` records, as docs/json.md documents) or CSV.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use portolan_model::{Detection, HostResult, Reason, ScanSummary, ScannedPort};
use serde::Serialize;

use crate::table::Table;
use crate::text::terminal;

/// The output format of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// Writes a scan's events as they come.
pub struct Stream<'w> {
    pub format: Format,
    pub color: bool,
    /// Detection ran: JSON port records carry `detected` (null where nothing was asked).
    pub detect: bool,
    /// Tables list each down host; otherwise they are counted in one line before the
    /// summary (as nmap does).
    pub show_down: bool,
    out: &'w mut dyn io::Write,
    /// Down hosts not listed, by reason.
    down: std::collections::BTreeMap<Reason, u64>,
    /// Each host's rows, drawn at its end.
    rows: std::collections::HashMap<IpAddr, Table>,
    csv_header: bool,
    /// When the stream was last written out.
    flushed: std::time::Instant,
}

/// JSON Lines and CSV records are written out when the last write is this old (and at a
/// checkpoint and the summary): a stream of thousands of records a second then costs no
/// syscall each, and no record waits for its host's end.
const FLUSH_EVERY: Duration = Duration::from_millis(20);

fn ms(d: Option<Duration>) -> Option<f64> {
    d.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3)
}

#[derive(Serialize)]
struct HostRecord {
    host: IpAddr,
    state: &'static str,
    reason: Reason,
    rtt_ms: Option<f64>,
}

#[derive(Serialize)]
struct PortRecord<'a> {
    host: IpAddr,
    port: u16,
    protocol: &'static str,
    state: &'static str,
    reason: Reason,
    service: Option<&'a str>,
    rtt_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detected: Option<Option<&'a Detection>>,
}

/// `ssh OpenSSH 9.2p1`, `http nginx 1.22.1 (tls)`: a detection in one table cell, made
/// safe for a terminal (the words came from the network).
pub fn detected_cell(d: &Detection) -> Option<String> {
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
    Some(terminal(&s).into_owned())
}

const HEADERS: [&str; 6] = ["HOST", "PORT", "STATE", "SERVICE", "REASON", "RTT"];

const CSV_HEADERS: [&str; 7] = [
    "host", "port", "protocol", "state", "reason", "service", "rtt_ms",
];

impl<'w> Stream<'w> {
    pub fn new(format: Format, color: bool, detect: bool, out: &'w mut dyn io::Write) -> Self {
        Stream {
            format,
            color,
            detect,
            show_down: false,
            out,
            down: std::collections::BTreeMap::new(),
            rows: std::collections::HashMap::new(),
            csv_header: false,
            flushed: std::time::Instant::now(),
        }
    }

    /// Writes the CSV header now (`write`), or takes it as written (an output appended
    /// to). Otherwise it comes with the first record.
    pub fn csv_header(&mut self, write: bool) -> io::Result<()> {
        if self.format == Format::Csv && write && !self.csv_header {
            let mut w = crate::csv::Writer::new(self.out);
            w.record(CSV_HEADERS)?;
            w.flush()?;
        }
        self.csv_header = true;
        Ok(())
    }

    /// Writes out what is buffered if it has waited long enough.
    fn due_flush(&mut self) -> io::Result<()> {
        if self.flushed.elapsed() >= FLUSH_EVERY {
            self.flushed = std::time::Instant::now();
            self.out.flush()?;
        }
        Ok(())
    }

    /// A host found up or down.
    pub fn host(
        &mut self,
        addr: IpAddr,
        up: bool,
        reason: Reason,
        rtt: Option<Duration>,
    ) -> io::Result<()> {
        match self.format {
            Format::Json => {
                let rec = HostRecord {
                    host: addr,
                    state: if up { "up" } else { "down" },
                    reason,
                    rtt_ms: ms(rtt),
                };
                crate::json::tagged(self.out, "host", &rec)?;
            }
            Format::Table if !up => {
                if !self.show_down {
                    *self.down.entry(reason).or_default() += 1;
                    return Ok(());
                }
                writeln!(self.out, "{addr}: down ({})", down_why(reason))?;
            }
            _ => return Ok(()),
        }
        self.due_flush()
    }

    /// A port to show. Tables gather a host's rows and draw them at its end, so that the
    /// columns line up (and a host's table holds only its rows).
    pub fn port(&mut self, p: &ScannedPort) -> io::Result<()> {
        let r = &p.result;
        match self.format {
            Format::Json => {
                let rec = PortRecord {
                    host: r.host,
                    port: r.port,
                    protocol: r.proto.as_str(),
                    state: r.state.as_str(),
                    reason: r.reason,
                    service: p.service.as_deref(),
                    rtt_ms: ms(r.rtt),
                    detected: self.detect.then_some(p.detected.as_ref()),
                };
                crate::json::tagged(self.out, "port", &rec)?;
            }
            Format::Csv => {
                let mut w = crate::csv::Writer::new(self.out);
                if !self.csv_header {
                    self.csv_header = true;
                    w.record(CSV_HEADERS)?;
                }
                w.record([
                    r.host.to_string(),
                    r.port.to_string(),
                    r.proto.to_string(),
                    r.state.to_string(),
                    r.reason.to_string(),
                    p.service.clone().unwrap_or_default(),
                    ms(r.rtt).map_or(String::new(), |v| format!("{v}")),
                ])?;
                w.flush()?;
            }
            Format::Table => {
                let service = p
                    .detected
                    .as_ref()
                    .and_then(detected_cell)
                    .unwrap_or_else(|| p.service.clone().unwrap_or_else(|| "-".into()));
                let rtt = ms(r.rtt).map_or(String::from("-"), |v| format!("{v:.2}ms"));
                self.rows
                    .entry(r.host)
                    .or_insert_with(|| Table::new(HEADERS))
                    .row([
                        r.host.to_string(),
                        format!("{}/{}", r.port, r.proto),
                        r.state.as_str().to_string(),
                        service,
                        r.reason.as_str().to_string(),
                        rtt,
                    ]);
                return Ok(());
            }
        }
        self.due_flush()
    }

    /// A host is done: its table, and in a table what was not shown.
    pub fn host_done(&mut self, h: &HostResult) -> io::Result<()> {
        if self.format != Format::Table {
            return Ok(());
        }
        if let Some(t) = self.rows.remove(&h.host) {
            t.write(self.out, self.color)?;
        }
        let hidden: Vec<String> = h
            .not_shown
            .iter()
            .map(|(s, n)| {
                let reasons: Vec<String> = h
                    .not_shown_reasons
                    .iter()
                    .filter(|c| c.state == *s)
                    .map(|c| format!("{} {} {}", c.count, c.protocol, c.reason))
                    .collect();
                format!("{n} {s} ({})", reasons.join(", "))
            })
            .collect();
        if !hidden.is_empty() {
            writeln!(self.out, "{}: not shown: {}", h.host, hidden.join("; "))?;
        }
        self.out.flush()
    }

    /// Writes out everything so far.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The last line.
    pub fn summary(&mut self, s: &ScanSummary) -> io::Result<()> {
        match self.format {
            Format::Json => crate::json::tagged(self.out, "summary", s)?,
            Format::Table => {
                if !self.down.is_empty() {
                    let n: u64 = self.down.values().sum();
                    let whys: Vec<String> = self
                        .down
                        .iter()
                        .map(|(r, k)| format!("{k} {}", down_why(*r)))
                        .collect();
                    writeln!(
                        self.out,
                        "{n} host{} down ({}); --show-down lists them",
                        if n == 1 { "" } else { "s" },
                        whys.join(", ")
                    )?;
                }
                writeln!(self.out, "{}", summary_line(s))?
            }
            Format::Csv => {}
        }
        self.out.flush()
    }
}

/// Why a host is down, as it was measured.
fn down_why(reason: Reason) -> &'static str {
    match reason {
        Reason::NetUnreach => "no route to it: net-unreach",
        Reason::HostUnreach => "no route to it: host-unreach",
        Reason::AdminProhibited => {
            "the kernel refused to send to it (permission denied: a broadcast address)"
        }
        Reason::NoResponse => "no answer to discovery probes",
        _ => reason.as_str(),
    }
}

/// `1 host up of 1, 2 open ports in 0.52s (syn scan + udp)`.
pub fn summary_line(s: &ScanSummary) -> String {
    let kind = match (s.mode, s.udp) {
        (Some(m), true) => format!("{} scan + udp", m.as_str()),
        (Some(m), false) => format!("{} scan", m.as_str()),
        (None, _) => "udp scan".to_string(),
    };
    format!(
        "{} host{} up of {}, {} open port{} in {:.2}s ({kind})",
        s.hosts_up,
        if s.hosts_up == 1 { "" } else { "s" },
        s.hosts_total,
        s.open,
        if s.open == 1 { "" } else { "s" },
        s.elapsed.as_secs_f64(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_model::{HostState, PortResult, PortState, Proto, ReasonCount, ScanMode};

    fn port(host: &str, port: u16, state: PortState, detected: Option<Detection>) -> ScannedPort {
        ScannedPort {
            result: PortResult {
                host: host.parse().unwrap(),
                port,
                proto: Proto::Tcp,
                state,
                reason: Reason::SynAck,
                rtt: Some(Duration::from_micros(1500)),
                ttl: None,
            },
            service: Some("ssh".into()),
            detected,
        }
    }

    fn host(addr: &str) -> HostResult {
        HostResult {
            host: addr.parse().unwrap(),
            state: HostState::Up,
            reason: Reason::UserSet,
            rtt: None,
            ports: Vec::new(),
            not_shown: vec![(PortState::Closed, 30)],
            not_shown_reasons: vec![ReasonCount {
                state: PortState::Closed,
                reason: Reason::Reset,
                protocol: Proto::Tcp,
                count: 30,
            }],
            name: None,
            started: None,
            ended: None,
            timing: None,
        }
    }

    #[test]
    fn ipv6_and_detection_cells_line_up_and_are_escaped() {
        let mut out = Vec::new();
        let mut s = Stream::new(Format::Table, false, true, &mut out);
        let d = Detection {
            protocol: Some("ssh".into()),
            product: Some("Evil\x1b[2J".into()),
            version: Some("9.2p1 Debian 2+deb12u3".into()),
            ..Detection::default()
        };
        let h = "2001:db8:ffff:ffff:ffff:ffff:ffff:fffe";
        s.port(&port(h, 22, PortState::Open, Some(d))).unwrap();
        s.port(&port(h, 8080, PortState::Open, None)).unwrap();
        s.host_done(&host(h)).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\x1b'), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        let col = lines[0].find("REASON").unwrap();
        assert_eq!(lines[1].find("syn-ack"), Some(col), "{text}");
        assert_eq!(lines[2].find("syn-ack"), Some(col), "{text}");
        assert!(lines[3].ends_with("not shown: 30 closed (30 tcp reset)"));
    }

    #[test]
    fn json_records_are_typed() {
        let mut out = Vec::new();
        let mut s = Stream::new(Format::Json, false, false, &mut out);
        s.host("::1".parse().unwrap(), true, Reason::UserSet, None)
            .unwrap();
        s.port(&port("::1", 22, PortState::Open, None)).unwrap();
        s.summary(&ScanSummary {
            mode: None,
            udp: true,
            ..ScanSummary::default()
        })
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let types: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["type"].to_string())
            .collect();
        assert_eq!(types, ["\"host\"", "\"port\"", "\"summary\""]);
        assert!(!text.contains("detected"));
        assert!(text.contains("\"mode\":null"));
        assert_eq!(
            summary_line(&ScanSummary {
                mode: Some(ScanMode::Syn),
                udp: true,
                hosts_up: 1,
                hosts_total: 1,
                open: 2,
                ..ScanSummary::default()
            }),
            "1 host up of 1, 2 open ports in 0.00s (syn scan + udp)"
        );
    }
}
