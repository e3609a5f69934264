//! `portolan detect`: what answers on each HOST:PORT.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use portolan_detect::{Detection, Detector, Options, Signatures};
use serde::Serialize;

use crate::cli::DetectArgs;
use crate::out::{Table, use_color};

/// One target as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub udp: bool,
}

/// Parses `HOST:PORT`, `[V6]:PORT`, with an optional `/tcp` or `/udp`.
pub fn parse_target(s: &str) -> anyhow::Result<Target> {
    let (hostport, udp) = match s.rsplit_once('/') {
        Some((hp, p)) if p.eq_ignore_ascii_case("udp") => (hp, true),
        Some((hp, p)) if p.eq_ignore_ascii_case("tcp") => (hp, false),
        Some((_, p)) => bail!("target '{s}': unknown protocol '{p}' (expected tcp or udp)"),
        None => (s, false),
    };
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (h, p) = rest
            .split_once("]:")
            .with_context(|| format!("target '{s}': expected [IPV6]:PORT"))?;
        (h, p)
    } else {
        hostport
            .rsplit_once(':')
            .with_context(|| format!("target '{s}': expected HOST:PORT"))?
    };
    if host.is_empty() {
        bail!("target '{s}': the host is empty");
    }
    if host.contains(':') && !hostport.starts_with('[') {
        bail!("target '{s}': put IPv6 addresses in brackets, as [{host}]:{port}");
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .with_context(|| format!("target '{s}': invalid port '{port}' (1-65535)"))?;
    Ok(Target {
        host: host.to_string(),
        port,
        udp,
    })
}

#[derive(Debug, Serialize)]
struct Line<'a> {
    target: &'a str,
    address: Option<String>,
    transport: &'static str,
    detected: &'a Detection,
}

pub fn run(args: &DetectArgs) -> anyhow::Result<ExitCode> {
    let targets = args
        .targets
        .iter()
        .map(|t| parse_target(t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let detector = match &args.signatures {
        Some(path) => Detector::with_user(Signatures::load(path)?),
        None => Detector::default(),
    };
    let opts = Options::with_timeout(args.timeout);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // A name that does not resolve is bad input, as in `scan`: say so before probing.
    let addrs = rt.block_on(async {
        let mut addrs = Vec::with_capacity(targets.len());
        for t in &targets {
            let addr = resolve(&t.host, t.port)
                .await
                .with_context(|| format!("cannot resolve '{}'", t.host))?;
            addrs.push(addr);
        }
        anyhow::Ok(addrs)
    })?;
    let results = rt.block_on(detect_all(
        Arc::new(detector),
        targets.iter().cloned().zip(addrs).collect(),
        opts,
    ));

    let mut out = std::io::stdout().lock();
    let mut identified = 0;
    let mut table = Table::new([
        "TARGET", "SERVICE", "PRODUCT", "VERSION", "TLS", "NOTES", "EVIDENCE",
    ]);
    for ((raw, t), (addr, d)) in args.targets.iter().zip(&targets).zip(&results) {
        if d.is_identified() {
            identified += 1;
        }
        if args.json {
            let line = Line {
                target: raw,
                address: addr.map(|a| a.to_string()),
                transport: if t.udp { "udp" } else { "tcp" },
                detected: d,
            };
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
        } else {
            table.row(row(raw, d));
        }
    }
    if !args.json {
        table.write(&mut out, use_color())?;
    }
    out.flush()?;
    Ok(if identified > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn row(target: &str, d: &Detection) -> Vec<String> {
    let dash = |s: Option<&str>| s.unwrap_or("-").to_string();
    let tls = d
        .tls
        .as_ref()
        .map(|t| t.version.clone().unwrap_or_else(|| "yes".into()))
        .unwrap_or_else(|| "-".into());
    let mut notes = Vec::new();
    if d.is_identified() && d.cleartext {
        notes.push("cleartext");
    }
    if d.starttls {
        notes.push("starttls");
    }
    vec![
        target.to_string(),
        dash(d.protocol.as_deref()),
        dash(d.product.as_deref()),
        dash(d.version.as_deref()),
        tls,
        if notes.is_empty() {
            "-".into()
        } else {
            notes.join(",")
        },
        d.evidence.clone(),
    ]
}

async fn detect_all(
    det: Arc<Detector>,
    targets: Vec<(Target, SocketAddr)>,
    opts: Options,
) -> Vec<(Option<SocketAddr>, Detection)> {
    // Each TCP detection may hold up to seven sockets at once (its probes run in
    // parallel), so 64 targets at a time stay well under the usual 1024 descriptors.
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for (t, addr) in targets {
        let (det, limit) = (det.clone(), limit.clone());
        let mut opts = opts.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await;
            if t.host.parse::<IpAddr>().is_err() {
                opts.server_name = Some(t.host.clone());
            }
            let d = if t.udp {
                det.detect_udp(addr, &opts).await
            } else {
                det.detect_tcp(addr, &opts).await
            };
            (Some(addr), d)
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap_or_else(|e| {
            (
                None,
                Detection {
                    evidence: format!("detection task failed: {e}"),
                    ..Detection::default()
                },
            )
        }));
    }
    out
}

async fn resolve(host: &str, port: u16) -> std::io::Result<SocketAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = parse_target("198.18.0.2:22").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.udp), ("198.18.0.2", 22, false));
        let t = parse_target("[2001:2::2]:53/udp").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.udp), ("2001:2::2", 53, true));
        let t = parse_target("localhost:80/TCP").unwrap();
        assert!(!t.udp);
        for (bad, want) in [
            ("host", "HOST:PORT"),
            ("h:0", "invalid port"),
            ("h:70000", "invalid port"),
            ("h:1/sctp", "unknown protocol"),
            ("::1:22", "brackets"),
            (":22", "empty"),
        ] {
            let e = parse_target(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn table_row_notes() {
        let d = Detection {
            protocol: Some("smtp".into()),
            product: Some("Postfix smtpd".into()),
            cleartext: true,
            starttls: true,
            evidence: "220 h ESMTP Postfix".into(),
            ..Detection::default()
        };
        assert_eq!(
            row("h:25", &d),
            vec![
                "h:25",
                "smtp",
                "Postfix smtpd",
                "-",
                "-",
                "cleartext,starttls",
                "220 h ESMTP Postfix"
            ]
        );
    }
}
