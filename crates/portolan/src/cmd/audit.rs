//! `portolan audit`: flags to [`portolan_app::audit`], the report through
//! `portolan_report`, and the exit code from `--fail-on`.

use std::io::Write;
use std::process::ExitCode;

use std::io::IsTerminal;

use portolan_app::audit::{AuditOptions, AuditProgress, audit_with};
use portolan_app::policy::{PolicySource as Source, parse_date};
use portolan_audit::{Date, Severity};
use portolan_report::{audit as table, junit, sarif};

use crate::cli::{AuditArgs, AuditFormat, PolicySource, SeverityArg};
use crate::out;

/// The policy the flags name.
pub fn policy_source(src: &PolicySource) -> Source {
    match (&src.policy, &src.profile) {
        (Some(path), _) => Source::File(path.clone()),
        (None, Some(name)) => Source::Profile(name.clone()),
        (None, None) => Source::None,
    }
}

pub(crate) fn threshold(a: SeverityArg) -> Option<Severity> {
    match a {
        SeverityArg::Critical => Some(Severity::Critical),
        SeverityArg::High => Some(Severity::High),
        SeverityArg::Medium => Some(Severity::Medium),
        SeverityArg::Low => Some(Severity::Low),
        SeverityArg::Info => Some(Severity::Info),
        SeverityArg::Never => None,
    }
}

pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let today = args.today.as_deref().map(parse_date).transpose()?;
    if args.format == AuditFormat::Prometheus {
        return prometheus(&args, today);
    }
    crate::cmd::serve::output_only_for_prometheus(args.output.as_deref())?;
    let opts = AuditOptions {
        policy: policy_source(&args.source),
        netns: args.netns.clone(),
        scan: args.scan.clone(),
        detect: args.detect,
        scan_ports: args.scan_ports.clone(),
        rate: args.rate,
        timeout: args.timeout,
        today,
    };
    let mut bar: Option<indicatif::ProgressBar> = None;
    let done = audit_with(&opts, &mut |p| progress(&mut bar, p))?;
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    for w in &done.warnings {
        eprintln!("portolan: {w}");
    }
    let mut report = done.report;
    if let Some(point) = &args.since {
        portolan_app::history::audit_since(
            &mut report,
            point,
            args.history.db.as_deref(),
            args.netns.as_deref(),
        )?;
    }
    let format = if args.json {
        AuditFormat::Json
    } else {
        args.format
    };
    let fail_on = threshold(args.fail_on);
    let mut w = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        AuditFormat::Table => table::write_table(&mut w, &report, out::use_color())?,
        AuditFormat::Json => {
            serde_json::to_writer_pretty(&mut w, &report)?;
            writeln!(w)?;
        }
        AuditFormat::Sarif => {
            serde_json::to_writer_pretty(
                &mut w,
                &sarif::to_sarif(&report, env!("CARGO_PKG_VERSION")),
            )?;
            writeln!(w)?;
        }
        AuditFormat::Junit => {
            w.write_all(junit::to_junit(&report, fail_on).as_bytes())?;
        }
        // Written by `prometheus` below, before any audit ran.
        AuditFormat::Prometheus => {}
    }
    w.flush()?;
    if args.history.record {
        crate::cmd::record::audit(args.history.db.as_deref(), args.netns.as_deref(), &report)?;
    }
    Ok(match fail_on {
        Some(t) if report.fails(t) => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}

/// Seconds of estimated scan time from which the estimate is printed.
const LONG_SCAN: f64 = 5.0;

/// The scan's estimate on stderr before long work, and a progress bar on a TTY.
fn progress(bar: &mut Option<indicatif::ProgressBar>, p: AuditProgress) {
    match p {
        AuditProgress::Estimate {
            hosts,
            tcp_ports,
            udp_ports,
            seconds,
        } => {
            if seconds >= LONG_SCAN {
                eprintln!(
                    "portolan: scanning {tcp_ports} TCP and {udp_ports} UDP ports on {hosts} address{}: about {} (UDP goes at the target's ICMP rate limit, about one closed port a second after a burst)",
                    if hosts == 1 { "" } else { "es" },
                    human(seconds)
                );
            }
            if std::io::stderr().is_terminal() {
                let pb = indicatif::ProgressBar::new(1);
                pb.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} probes, ETA {eta}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                *bar = Some(pb);
            }
        }
        AuditProgress::Scan { done, total } => {
            if let Some(pb) = bar {
                pb.set_length(total);
                pb.set_position(done);
            }
        }
    }
}

/// `40s`, `3m 20s`.
fn human(seconds: f64) -> String {
    let s = seconds.ceil() as u64;
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m {}s", s / 60, s % 60)
    }
}

/// `--format prometheus`: the metrics of `portolan serve` with this policy (the
/// inventory and the audit of the inside view), on standard output or in the `-o`
/// textfile; the exit code from `--fail-on`, as for every format.
fn prometheus(args: &AuditArgs, today: Option<Date>) -> anyhow::Result<ExitCode> {
    use portolan_app::collect::{CollectOptions, collect};
    use portolan_app::inventory::{NetnsChoice, Request};
    if args.scan.is_some() {
        anyhow::bail!(
            "--format prometheus exports the inside view only: it cannot be combined with --scan"
        );
    }
    let done = collect(&CollectOptions {
        request: Request {
            netns: args
                .netns
                .clone()
                .map_or(NetnsChoice::Current, NetnsChoice::Named),
            ..Request::default()
        },
        policy: portolan_app::policy::load(&policy_source(&args.source))?,
        audit: true,
        today,
        command: crate::cmd::command_line(),
    });
    crate::cmd::serve::write_metrics(&done, args.output.as_deref())?;
    Ok(match (threshold(args.fail_on), &done.snapshot.audit) {
        (Some(t), Some(report)) if report.fails(t) => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_audit::policy::Policy;
    use portolan_audit::{AuditReport, Context, Inputs, Listener, NoHost, Process, evaluate};
    use portolan_registry::{Proto, Registry};

    /// A fixed day and the embedded registry, on no real host.
    fn ctx() -> Context<'static> {
        Context::new(
            Date::new(2026, 11, 27).unwrap(),
            Registry::embedded(),
            &NoHost,
        )
    }

    fn report() -> AuditReport {
        let mut inetd = Process::new(812, "inetd");
        inetd.exe = Some("/usr/sbin/inetd".into());
        inetd.user = Some("root".into());
        inetd.unit = Some("inetd.service".into());
        let telnet = Listener::new(Proto::Tcp, "0.0.0.0".parse().unwrap(), 23).with_process(inetd);
        let redis = Listener::new(Proto::Tcp, "::".parse().unwrap(), 6379);
        let local = Listener::new(Proto::Tcp, "127.0.0.1".parse().unwrap(), 40001);
        let inputs = Inputs::inside(vec![telnet, redis, local]);
        evaluate(&Policy::baseline(), &inputs, &ctx())
    }

    #[test]
    fn table_groups_by_severity() {
        let mut buf = Vec::new();
        table::write_table(&mut buf, &report(), false).unwrap();
        insta::assert_snapshot!(String::from_utf8(buf).unwrap());
    }

    #[test]
    fn empty_report_says_so() {
        let r = evaluate(&Policy::baseline(), &Inputs::inside(vec![]), &ctx());
        let mut buf = Vec::new();
        table::write_table(&mut buf, &r, false).unwrap();
        let s = String::from_utf8(buf).unwrap();
        assert!(s.contains("0 listening sockets, 0 beyond loopback"), "{s}");
        assert!(s.contains("No findings."), "{s}");
        assert!(s.contains("Next: Write a policy"), "{s}");
    }
}
