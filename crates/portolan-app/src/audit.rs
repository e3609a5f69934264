//! `audit`: the inside view (this host's listening sockets and their owners), optionally
//! the outside view (a scan of a target from here, with service detection), the host's
//! facts, and the judgement against a policy or the built-in baseline.

use std::collections::BTreeSet;
use std::net::{IpAddr, UdpSocket};

use portolan_audit::policy::Policy;
use portolan_audit::{AuditReport, Context, Date, Inputs, Listener, Scan, evaluate};
use portolan_model::Exposure;
use portolan_registry::{Proto, Registry};

use crate::host::{LiveHost, ephemeral_range};
use crate::policy::{LoadedPolicy, PolicyError, PolicySource, load};

/// What to audit.
#[derive(Debug, Clone, Default)]
pub struct AuditOptions {
    pub policy: PolicySource,
    /// Audit this named network namespace (`ip netns`) instead of the current one.
    pub netns: Option<String>,
    /// Also scan this target from here (the outside view).
    pub scan: Option<String>,
    /// With a scan, detect the service behind each open port.
    pub detect: bool,
    /// Judge exceptions' expiry as of this day (default: today, UTC).
    pub today: Option<Date>,
}

/// An audit's result, and what the user should know about how it was taken.
#[derive(Debug, Clone)]
pub struct Audited {
    pub report: AuditReport,
    /// One line each: owners the inventory could not read, a scan of the host itself.
    pub warnings: Vec<String>,
}

/// Why an audit could not be done.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("cannot list the listening sockets")]
    Inventory(#[source] portolan_inventory::Error),
    #[error("--scan {target}: {message}")]
    Target { target: String, message: String },
    #[error("--scan takes one host; {target} is {count} addresses")]
    NotOneHost { target: String, count: usize },
    #[error("scanning {target}")]
    Scan {
        target: String,
        #[source]
        source: Box<crate::scan::ScanOpError>,
    },
    #[error("cannot start service detection")]
    Detect(#[source] std::io::Error),
}

/// Runs the audit `opts` asks for.
pub fn audit(opts: &AuditOptions) -> Result<Audited, AuditError> {
    let loaded = load(&opts.policy)?;
    let today = opts.today.unwrap_or_else(Date::today_utc);
    let (inputs, warnings) = gather(opts, loaded.as_ref().map(|l| &l.policy))?;
    let report = judge(&inputs, loaded.as_ref(), today);
    Ok(Audited { report, warnings })
}

/// What the audit `opts` asks for looks at: the inside view, and the outside view when
/// it scans (`policy` adds the ports it allows to the scan), with the warnings of both.
/// A scan of another host is judged alone: this host's sockets say nothing about it.
pub fn gather(
    opts: &AuditOptions,
    policy: Option<&Policy>,
) -> Result<(Inputs, Vec<String>), AuditError> {
    let (listeners, mut warnings) = inside_view(opts.netns.as_deref())?;
    let scan = match &opts.scan {
        Some(target) => {
            let (scan, w) = outside_view(
                target,
                &listeners,
                policy,
                opts.netns.as_deref(),
                opts.detect,
            )?;
            warnings.extend(w);
            Some(scan)
        }
        None => None,
    };
    let listeners = match &scan {
        Some(s) if !s.local => None,
        _ => Some(listeners),
    };
    let netns = listeners
        .as_ref()
        .and_then(|l| l.first())
        .map(|l| l.netns.to_string());
    let inputs = Inputs {
        listeners,
        scan,
        netns,
    };
    Ok((inputs, warnings))
}

/// The judgement of `inputs` on the live host: its packages, writable paths and
/// ephemeral port range.
pub fn judge(inputs: &Inputs, loaded: Option<&LoadedPolicy>, today: Date) -> AuditReport {
    let host = LiveHost::default();
    if let Some(ls) = &inputs.listeners {
        host.prefetch_owners(ls);
    }
    let ctx = Context {
        today,
        ephemeral: ephemeral_range(),
        catalog: Registry::embedded(),
        host: &host,
        policy_arg: loaded.map(|l| l.arg.clone()),
    };
    let baseline = Policy::baseline();
    let policy = loaded.map_or(&baseline, |l| &l.policy);
    evaluate(policy, inputs, &ctx)
}

/// The inside view: the listening sockets of this host (or of a named network
/// namespace) and their owners, with the inventory's warnings (owners it could not
/// read).
pub fn inside_view(netns: Option<&str>) -> Result<(Vec<Listener>, Vec<String>), AuditError> {
    let opts = portolan_inventory::Options {
        netns: match netns {
            Some(n) => portolan_inventory::NetnsChoice::Named(n.to_string()),
            None => portolan_inventory::NetnsChoice::Current,
        },
        ..portolan_inventory::Options::default()
    };
    let inv = crate::inventory::run(&opts, Registry::embedded()).map_err(AuditError::Inventory)?;
    Ok((inv.listeners, inv.warnings))
}

/// The ports the outside view scans: the top 1,000 TCP ports, every port the inside view
/// has beyond loopback, and every port the policy allows (UDP only where something
/// listens or the policy allows it: UDP scans are slow).
pub fn ports_to_scan(listeners: &[Listener], policy: Option<&Policy>) -> (Vec<u16>, Vec<u16>) {
    let mut tcp: BTreeSet<u16> = portolan_scan::top(1000)
        .map(|p| p.ports(Proto::Tcp).into_iter().collect())
        .unwrap_or_default();
    let mut udp: BTreeSet<u16> = BTreeSet::new();
    for l in listeners
        .iter()
        .filter(|l| l.exposure != Exposure::Loopback)
    {
        match l.protocol {
            Proto::Tcp => {
                tcp.insert(l.port);
            }
            Proto::Udp => {
                udp.insert(l.port);
            }
            _ => {}
        }
    }
    for a in policy.into_iter().flat_map(|p| &p.allow) {
        for (proto, r) in a.services.iter().flat_map(|s| &s.ports) {
            if r.len() > 1024 {
                continue;
            }
            let into = match proto {
                Proto::Tcp => &mut tcp,
                Proto::Udp => &mut udp,
                _ => continue,
            };
            into.extend(r.iter());
        }
    }
    (tcp.into_iter().collect(), udp.into_iter().collect())
}

/// The address this host sends from to reach `addr`, if it has a route.
pub fn source_for(addr: IpAddr) -> Option<IpAddr> {
    UdpSocket::bind(if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })
    .and_then(|s| s.connect((addr, 9)).map(|()| s))
    .and_then(|s| s.local_addr())
    .ok()
    .map(|a| a.ip())
}

/// The outside view: a scan of `target` from here (see [`ports_to_scan`]), with service
/// detection of its open ports when `detect` is set.
pub fn outside_view(
    target: &str,
    listeners: &[Listener],
    policy: Option<&Policy>,
    netns: Option<&str>,
    detect: bool,
) -> Result<(Scan, Vec<String>), AuditError> {
    use portolan_model::PortSpec;
    use portolan_scan::{Target, TargetSet};

    let bad = |e: &dyn std::fmt::Display| AuditError::Target {
        target: target.to_string(),
        message: e.to_string(),
    };
    let t = Target::parse(target).map_err(|e| bad(&e))?;
    let set = TargetSet::build(std::slice::from_ref(&t), &[], true).map_err(|e| bad(&e))?;
    let addrs: Vec<IpAddr> = set.iter().collect();
    let [addr] = addrs[..] else {
        return Err(AuditError::NotOneHost {
            target: target.to_string(),
            count: addrs.len(),
        });
    };
    let (tcp, udp) = ports_to_scan(listeners, policy);
    let spec = PortSpec {
        any: Vec::new(),
        tcp: portolan_model::spec::merge(
            tcp.iter()
                .map(|&p| portolan_model::PortRange::single(p))
                .collect(),
        ),
        udp: portolan_model::spec::merge(
            udp.iter()
                .map(|&p| portolan_model::PortRange::single(p))
                .collect(),
        ),
    };
    let req = crate::scan::ScanRequest {
        targets: vec![t],
        ports: crate::scan::Ports::Spec(spec),
        tcp: !tcp.is_empty(),
        udp: !udp.is_empty(),
        discovery: false,
        detect,
        all: true,
        ..crate::scan::ScanRequest::default()
    };
    let report = crate::scan::scan(&req, &mut |_| {}).map_err(|source| AuditError::Scan {
        target: target.to_string(),
        source: Box::new(source),
    })?;
    let mut warnings = Vec::new();
    let from_itself = netns.is_none() && UdpSocket::bind((addr, 0)).is_ok();
    if from_itself {
        warnings.push(format!(
            "{target} is this host: the scan goes through loopback, which firewalls accept, so it cannot tell what the firewall lets in (scan from another host, or audit a namespace with --netns)"
        ));
    }
    let scan = Scan {
        target: target.to_string(),
        local: netns.is_some() || from_itself,
        source: source_for(addr),
        from_itself,
        report,
    };
    Ok((scan, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outside_view_scans_exposed_and_allowed_ports() {
        let ls = vec![
            Listener::new(Proto::Tcp, "0.0.0.0".parse().unwrap(), 47000),
            Listener::new(Proto::Udp, "::".parse().unwrap(), 5353),
            Listener::new(Proto::Tcp, "127.0.0.1".parse().unwrap(), 47001),
        ];
        let mail = portolan_audit::profiles::load("mail-server", Registry::embedded()).unwrap();
        let (tcp, udp) = ports_to_scan(&ls, Some(&mail));
        assert!(tcp.contains(&47000) && !tcp.contains(&47001));
        assert!(tcp.contains(&22) && tcp.contains(&993) && tcp.len() >= 1000);
        // The mail-server profile allows DNS (53/udp) to its resolver clients.
        assert!(udp.contains(&5353) && udp.contains(&53), "{udp:?}");
    }
}
