//! nmap-compatible XML (`-oX`): valid against nmap's DTD, so tools that read nmap's
//! output (ndiff, importers) read portolan's.

use std::io::{self, Write};

use portolan_model::{HostState, PortRange, Reason, ScanReport, ScannedPort};

/// What the XML says about the run besides the report: the command line, the version and
/// the start and end times (seconds since the Unix epoch).
#[derive(Debug, Clone, Default)]
pub struct RunMeta {
    pub args: String,
    pub version: String,
    pub start: u64,
    pub end: u64,
}

/// A port's `<service>` element: what detection found, as attributes in nmap's order
/// (`name`, `product`, `version`, `tunnel`, `method`, `conf`), else the registry's name
/// (nmap's `method="table"`).
fn service_element(p: &ScannedPort) -> String {
    let probed = p
        .detected
        .as_ref()
        .map(|d| d.nmap_service())
        .unwrap_or_default();
    if !probed.is_empty() {
        let attrs: Vec<String> = probed
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", esc(v)))
            .collect();
        return format!("<service {}/>", attrs.join(" "));
    }
    match &p.service {
        Some(s) => format!("<service name=\"{}\" method=\"table\" conf=\"3\"/>", esc(s)),
        None => String::new(),
    }
}

fn ranges_text(ranges: &[PortRange]) -> (u64, String) {
    let count = ranges.iter().map(|r| u64::from(r.last - r.first) + 1).sum();
    let text: Vec<String> = ranges
        .iter()
        .map(|r| {
            if r.first == r.last {
                r.first.to_string()
            } else {
                format!("{}-{}", r.first, r.last)
            }
        })
        .collect();
    (count, text.join(","))
}

/// Escapes text for an XML attribute value.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' => {}
            c => o.push(c),
        }
    }
    o
}

fn timestr(secs: u64) -> String {
    // UTC, as `date -u` prints it, without a time-zone database.
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let (y, m, d) = civil(days);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let mn = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{wd} {mn} {d:2} {:02}:{:02}:{:02} {y}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Writes the document: every host found up, with its listed ports and the summarised
/// rest (`<extraports>`).
pub fn write(w: &mut dyn Write, report: &ScanReport, run: &RunMeta) -> io::Result<()> {
    writeln!(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    writeln!(w, "<!DOCTYPE nmaprun>")?;
    writeln!(w, "<!-- {} -->", esc(&run.version).replace("--", "- -"))?;
    writeln!(
        w,
        "<nmaprun scanner=\"nmap\" args=\"{}\" start=\"{}\" startstr=\"{}\" version=\"{}\" xmloutputversion=\"1.05\">",
        esc(&run.args),
        run.start,
        timestr(run.start),
        esc(&run.version)
    )?;
    let mut scans = Vec::new();
    if let Some(mode) = report.summary.mode.filter(|_| !report.tcp_ports.is_empty()) {
        scans.push((mode.as_str(), "tcp", &report.tcp_ports));
    }
    if !report.udp_ports.is_empty() {
        scans.push(("udp", "udp", &report.udp_ports));
    }
    for (kind, proto, ports) in scans {
        let (n, text) = ranges_text(ports);
        writeln!(
            w,
            "<scaninfo type=\"{kind}\" protocol=\"{proto}\" numservices=\"{n}\" services=\"{text}\"/>",
        )?;
    }
    writeln!(w, "<verbose level=\"0\"/>\n<debugging level=\"0\"/>")?;
    for h in report.hosts.iter().filter(|h| h.state == HostState::Up) {
        write_host(w, h)?;
    }
    let s = &report.summary;
    let down = s.hosts_total.saturating_sub(s.hosts_up);
    writeln!(
        w,
        "<runstats><finished time=\"{}\" timestr=\"{}\" summary=\"portolan done; {} IP address{} ({} host{} up) scanned in {:.2} seconds\" elapsed=\"{:.2}\" exit=\"success\"/><hosts up=\"{}\" down=\"{down}\" total=\"{}\"/>\n</runstats>",
        run.end,
        timestr(run.end),
        s.hosts_total,
        if s.hosts_total == 1 { "" } else { "es" },
        s.hosts_up,
        if s.hosts_up == 1 { "" } else { "s" },
        s.elapsed.as_secs_f64(),
        s.elapsed.as_secs_f64(),
        s.hosts_up,
        s.hosts_total
    )?;
    writeln!(w, "</nmaprun>")
}

fn write_host(w: &mut dyn Write, h: &portolan_model::HostResult) -> io::Result<()> {
    writeln!(
        w,
        "<host starttime=\"{}\" endtime=\"{}\">",
        h.started.unwrap_or(0),
        h.ended.unwrap_or(0)
    )?;
    writeln!(
        w,
        "<status state=\"up\" reason=\"{}\" reason_ttl=\"0\"/>",
        h.reason
    )?;
    let ty = if h.host.is_ipv4() { "ipv4" } else { "ipv6" };
    writeln!(w, "<address addr=\"{}\" addrtype=\"{ty}\"/>", h.host)?;
    match &h.name {
        Some(n) => writeln!(
            w,
            "<hostnames>\n<hostname name=\"{}\" type=\"user\"/>\n</hostnames>",
            esc(n)
        )?,
        None => writeln!(w, "<hostnames>\n</hostnames>")?,
    }
    writeln!(w, "<ports>")?;
    for (state, count) in &h.not_shown {
        writeln!(w, "<extraports state=\"{state}\" count=\"{count}\">")?;
        for c in h.not_shown_reasons.iter().filter(|c| c.state == *state) {
            writeln!(
                w,
                "<extrareasons reason=\"{}\" count=\"{}\" proto=\"{}\"/>",
                xml_reason(c.reason),
                c.count,
                c.protocol
            )?;
        }
        writeln!(w, "</extraports>")?;
    }
    for p in &h.ports {
        let r = &p.result;
        writeln!(
            w,
            "<port protocol=\"{}\" portid=\"{}\"><state state=\"{}\" reason=\"{}\" reason_ttl=\"{}\"/>{}</port>",
            r.proto,
            r.port,
            r.state,
            r.reason,
            r.ttl.unwrap_or(0),
            service_element(p)
        )?;
    }
    writeln!(w, "</ports>")?;
    if let Some(t) = h.timing {
        writeln!(
            w,
            "<times srtt=\"{}\" rttvar=\"{}\" to=\"{}\"/>",
            t.srtt.as_micros(),
            t.rttvar.as_micros(),
            t.timeout.as_micros()
        )?;
    }
    writeln!(w, "</host>")
}

/// nmap names the reasons of summarised ports in the plural ("resets", "no-responses").
fn xml_reason(r: Reason) -> String {
    match r {
        Reason::Reset => "resets".into(),
        Reason::ConnRefused => "conn-refused".into(),
        Reason::NoResponse => "no-responses".into(),
        Reason::PortUnreach => "port-unreaches".into(),
        Reason::HostUnreach => "host-unreaches".into(),
        Reason::AdminProhibited => "admin-prohibiteds".into(),
        other => other.as_str().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(timestr(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(timestr(1_700_000_000), "Tue Nov 14 22:13:20 2023");
    }

    #[test]
    fn service_element_prefers_what_was_probed() {
        use portolan_model::{Detection, PortResult, PortState, Proto};
        let mut p = ScannedPort {
            result: PortResult {
                host: "198.18.0.2".parse().unwrap(),
                port: 443,
                proto: Proto::Tcp,
                state: PortState::Open,
                reason: Reason::SynAck,
                rtt: None,
                ttl: None,
            },
            service: Some("https".into()),
            detected: None,
        };
        assert_eq!(
            service_element(&p),
            "<service name=\"https\" method=\"table\" conf=\"3\"/>"
        );
        p.detected = Some(Detection {
            protocol: Some("http".into()),
            product: Some("nginx \"x\"".into()),
            ..Detection::default()
        });
        let e = service_element(&p);
        assert!(e.contains("product=\"nginx &quot;x&quot;\""), "{e}");
        p.service = None;
        p.detected = None;
        assert_eq!(service_element(&p), "");
    }

    #[test]
    fn escaping() {
        assert_eq!(esc("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(esc("x\u{1}y"), "xy");
    }
}
