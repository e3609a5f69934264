//! nmap-compatible XML (`-oX`): valid against nmap's DTD, so tools that read nmap's
//! output (ndiff, importers) read portolan's.

use std::io::{self, Write};
use std::net::IpAddr;
use std::time::Duration;

use crate::{PortResult, PortState, Reason};

/// One scan type and the ports it covered (`<scaninfo>`).
#[derive(Debug, Clone)]
pub struct ScanInfo {
    /// `syn`, `connect` or `udp`.
    pub kind: &'static str,
    /// `tcp` or `udp`.
    pub proto: &'static str,
    pub ports: Vec<u16>,
}

/// States summarised instead of listed (`<extraports>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extra {
    pub state: PortState,
    pub count: u64,
    /// (reason, protocol, count)
    pub reasons: Vec<(Reason, &'static str, u64)>,
}

/// A port's `<service>` element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Service {
    /// The registry's name for the port (nmap's `method="table"`).
    pub table: Option<String>,
    /// What service detection found, as attributes in nmap's order (`name`, `product`,
    /// `version`, `tunnel`, `method`, `conf`); when present it replaces the table name.
    pub probed: Vec<(&'static str, String)>,
}

impl Service {
    fn element(&self) -> String {
        if !self.probed.is_empty() {
            let attrs: Vec<String> = self
                .probed
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", esc(v)))
                .collect();
            return format!("<service {}/>", attrs.join(" "));
        }
        match &self.table {
            Some(s) => format!("<service name=\"{}\" method=\"table\" conf=\"3\"/>", esc(s)),
            None => String::new(),
        }
    }
}

/// One host's results.
#[derive(Debug, Clone)]
pub struct Host {
    pub addr: IpAddr,
    pub name: Option<String>,
    pub reason: Reason,
    pub start: u64,
    pub end: u64,
    pub extra: Vec<Extra>,
    /// Listed ports, with their `<service>` element.
    pub ports: Vec<(PortResult, Service)>,
    pub timing: Option<crate::HostTiming>,
}

/// A whole run.
#[derive(Debug, Clone)]
pub struct Run {
    pub args: String,
    pub version: String,
    pub start: u64,
    pub end: u64,
    pub elapsed: Duration,
    pub scans: Vec<ScanInfo>,
    pub hosts: Vec<Host>,
    pub hosts_up: u64,
    pub hosts_total: u64,
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

/// Writes the document.
pub fn write(w: &mut dyn Write, run: &Run) -> io::Result<()> {
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
    for s in &run.scans {
        writeln!(
            w,
            "<scaninfo type=\"{}\" protocol=\"{}\" numservices=\"{}\" services=\"{}\"/>",
            s.kind,
            s.proto,
            s.ports.len(),
            crate::ports::ranges_to_string(&s.ports)
        )?;
    }
    writeln!(w, "<verbose level=\"0\"/>\n<debugging level=\"0\"/>")?;
    for h in &run.hosts {
        writeln!(w, "<host starttime=\"{}\" endtime=\"{}\">", h.start, h.end)?;
        writeln!(
            w,
            "<status state=\"up\" reason=\"{}\" reason_ttl=\"0\"/>",
            h.reason
        )?;
        let ty = if h.addr.is_ipv4() { "ipv4" } else { "ipv6" };
        writeln!(w, "<address addr=\"{}\" addrtype=\"{ty}\"/>", h.addr)?;
        match &h.name {
            Some(n) => writeln!(
                w,
                "<hostnames>\n<hostname name=\"{}\" type=\"user\"/>\n</hostnames>",
                esc(n)
            )?,
            None => writeln!(w, "<hostnames>\n</hostnames>")?,
        }
        writeln!(w, "<ports>")?;
        for e in &h.extra {
            writeln!(
                w,
                "<extraports state=\"{}\" count=\"{}\">",
                e.state, e.count
            )?;
            for (r, proto, n) in &e.reasons {
                writeln!(
                    w,
                    "<extrareasons reason=\"{}\" count=\"{n}\" proto=\"{proto}\"/>",
                    xml_reason(*r)
                )?;
            }
            writeln!(w, "</extraports>")?;
        }
        for (p, service) in &h.ports {
            writeln!(
                w,
                "<port protocol=\"{}\" portid=\"{}\"><state state=\"{}\" reason=\"{}\" reason_ttl=\"{}\"/>{}</port>",
                p.proto,
                p.port,
                p.state,
                p.reason,
                p.ttl.unwrap_or(0),
                service.element()
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
        writeln!(w, "</host>")?;
    }
    let down = run.hosts_total.saturating_sub(run.hosts_up);
    writeln!(
        w,
        "<runstats><finished time=\"{}\" timestr=\"{}\" summary=\"portolan done; {} IP address{} ({} host{} up) scanned in {:.2} seconds\" elapsed=\"{:.2}\" exit=\"success\"/><hosts up=\"{}\" down=\"{down}\" total=\"{}\"/>\n</runstats>",
        run.end,
        timestr(run.end),
        run.hosts_total,
        if run.hosts_total == 1 { "" } else { "es" },
        run.hosts_up,
        if run.hosts_up == 1 { "" } else { "s" },
        run.elapsed.as_secs_f64(),
        run.elapsed.as_secs_f64(),
        run.hosts_up,
        run.hosts_total
    )?;
    writeln!(w, "</nmaprun>")
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
        let mut s = Service {
            table: Some("https".into()),
            probed: Vec::new(),
        };
        assert_eq!(
            s.element(),
            "<service name=\"https\" method=\"table\" conf=\"3\"/>"
        );
        s.probed = vec![
            ("name", "http".into()),
            ("product", "nginx \"x\"".into()),
            ("tunnel", "ssl".into()),
            ("method", "probed".into()),
            ("conf", "10".into()),
        ];
        assert_eq!(
            s.element(),
            "<service name=\"http\" product=\"nginx &quot;x&quot;\" tunnel=\"ssl\" method=\"probed\" conf=\"10\"/>"
        );
        assert_eq!(Service::default().element(), "");
    }

    #[test]
    fn escaping() {
        assert_eq!(esc("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(esc("x\u{1}y"), "xy");
    }
}
