//! `audit`: the inside view (this host's listening sockets and their owners), optionally
//! the outside view (a scan of a target from here, with service detection), the host's
//! facts, and the judgement against a policy or the built-in baseline.

use std::collections::BTreeSet;
use std::net::{IpAddr, UdpSocket};
use std::time::Duration;

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
    /// Also scan these targets from here (the outside view): the addresses of one host.
    /// `Some` of an empty list, with `netns`: the namespace's own global addresses.
    pub scan: Option<Vec<String>>,
    /// With a scan, detect the service behind each open port.
    pub detect: bool,
    /// The ports the scan probes instead of the default choice (see [`ports_to_scan`]),
    /// as the one port spec (`T:1-1024,U:53,60000-61000/udp`).
    pub scan_ports: Option<String>,
    /// The scan's packet rate (probes per second).
    pub rate: Option<u32>,
    /// Upper bound on the scan's probe timeout (and detection's).
    pub timeout: Option<Duration>,
    /// Judge exceptions' expiry as of this day (default: today, UTC).
    pub today: Option<Date>,
}

/// What an audit reports while its scan runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AuditProgress {
    /// Before the scan: what it will probe, and about how long it will take.
    Estimate {
        hosts: usize,
        tcp_ports: usize,
        udp_ports: usize,
        seconds: f64,
    },
    /// Probes finished so far, of the total.
    Scan { done: u64, total: u64 },
}

/// An audit's result, and what the user should know about how it was taken.
#[derive(Debug, Clone)]
pub struct Audited {
    pub report: AuditReport,
    /// One line each: owners the inventory could not read, a scan of the host itself,
    /// policy ranges the scan left out.
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
    #[error(
        "--scan takes the addresses of one host (at most {MAX_ADDRESSES}); {target} is {count} addresses"
    )]
    NotOneHost { target: String, count: usize },
    #[error("--scan with no target takes the addresses of --netns NAME; give a target")]
    NoTarget,
    #[error("reading the addresses of network namespace {netns}: {message}")]
    NetnsAddresses { netns: String, message: String },
    #[error("--scan-ports {spec}: {source}")]
    Ports {
        spec: String,
        #[source]
        source: portolan_model::PortSpecError,
    },
    #[error("scanning {target}")]
    Scan {
        target: String,
        #[source]
        source: Box<crate::scan::ScanOpError>,
    },
    #[error("cannot start service detection")]
    Detect(#[source] std::io::Error),
}

/// The most addresses one audit scans: one host's, over its interfaces and families.
pub const MAX_ADDRESSES: usize = 16;

/// Runs the audit `opts` asks for.
pub fn audit(opts: &AuditOptions) -> Result<Audited, AuditError> {
    audit_with(opts, &mut |_| {})
}

/// Runs the audit `opts` asks for, calling `on` with the scan's estimate and progress.
pub fn audit_with(
    opts: &AuditOptions,
    on: &mut dyn FnMut(AuditProgress),
) -> Result<Audited, AuditError> {
    let loaded = load(&opts.policy)?;
    let today = opts.today.unwrap_or_else(Date::today_utc);
    let (inputs, warnings) = gather(opts, loaded.as_ref().map(|l| &l.policy), on)?;
    let report = judge(&inputs, loaded.as_ref(), today);
    Ok(Audited { report, warnings })
}

/// What the audit `opts` asks for looks at: the inside view, and the outside view when
/// it scans (`policy` adds the ports it allows to the scan), with the warnings of both.
/// A scan of another host is judged alone: this host's sockets say nothing about it.
pub fn gather(
    opts: &AuditOptions,
    policy: Option<&Policy>,
    on: &mut dyn FnMut(AuditProgress),
) -> Result<(Inputs, Vec<String>), AuditError> {
    let (listeners, mut warnings) = inside_view(opts.netns.as_deref())?;
    let scan = match &opts.scan {
        Some(targets) => {
            let (scan, w) = outside_view(targets, &listeners, policy, opts, on)?;
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

/// UDP services the outside view always probes, besides the registry's UDP risks: DNS,
/// DHCP, TFTP, NTP, NetBIOS, SNMP, syslog, SSDP, mDNS.
pub const UDP_SERVICES: &[u16] = &[53, 67, 69, 123, 137, 138, 161, 514, 1900, 5353];

/// Of each port range a policy allows, the outside view probes at most this many TCP
/// ports by default.
pub const RANGE_CAP_TCP: usize = 1024;
/// ... and this many UDP ports: a closed UDP port answers at the target's ICMP rate
/// limit, about one a second after a small burst.
pub const RANGE_CAP_UDP: usize = 16;

/// The ports the outside view probes, and what of the policy's ranges it leaves out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortChoice {
    pub tcp: Vec<u16>,
    pub udp: Vec<u16>,
    /// The parts of the policy's ranges past the caps: not probed, so "not checked".
    pub left_out: Vec<(Proto, portolan_model::PortRange)>,
}

/// The UDP ports the registry's notes name a risk for (small port sets only), with
/// [`UDP_SERVICES`].
pub fn udp_risks() -> BTreeSet<u16> {
    let mut out: BTreeSet<u16> = UDP_SERVICES.iter().copied().collect();
    for n in portolan_registry::NOTES
        .iter()
        .filter(|n| !n.risk.is_empty())
    {
        for (proto, r) in n.used_ranges() {
            if proto == Proto::Udp && r.len() <= 4 {
                out.extend(r.iter());
            }
        }
    }
    out
}

/// The ports the outside view scans: the top 1,000 TCP ports, the UDP services that
/// matter ([`udp_risks`]), every port the inside view has beyond loopback, and every
/// port the policy allows, each range capped ([`RANGE_CAP_TCP`], [`RANGE_CAP_UDP`]).
pub fn ports_to_scan(listeners: &[Listener], policy: Option<&Policy>) -> PortChoice {
    let mut tcp: BTreeSet<u16> = portolan_scan::top(1000)
        .map(|p| p.ports(Proto::Tcp).into_iter().collect())
        .unwrap_or_default();
    let mut udp: BTreeSet<u16> = udp_risks();
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
    let mut left_out = Vec::new();
    for a in policy.into_iter().flat_map(|p| &p.allow) {
        for (proto, r) in a.services.iter().flat_map(|s| &s.ports) {
            let (into, cap) = match proto {
                Proto::Tcp => (&mut tcp, RANGE_CAP_TCP),
                Proto::Udp => (&mut udp, RANGE_CAP_UDP),
                _ => continue,
            };
            into.extend(r.iter().take(cap));
            if r.len() as usize > cap {
                let first = r.first.saturating_add(cap as u16);
                if let Some(rest) = portolan_model::PortRange::new(first, r.last)
                    && !left_out.contains(&(*proto, rest))
                {
                    left_out.push((*proto, rest));
                }
            }
        }
    }
    // A port left out of one range may be probed for another reason.
    left_out.retain(|(proto, r)| {
        let probed = if *proto == Proto::Tcp { &tcp } else { &udp };
        r.iter().any(|p| !probed.contains(&p))
    });
    udp.remove(&0);
    PortChoice {
        tcp: tcp.into_iter().collect(),
        udp: udp.into_iter().collect(),
        left_out,
    }
}

/// About how long a scan of these ports takes: TCP at `rate` probes a second (10,000
/// when unset), UDP at the target's ICMP rate limit, one closed port a second per host
/// after a burst of six (hosts are scanned side by side).
pub fn estimate(hosts: usize, tcp: usize, udp: usize, rate: Option<u32>) -> f64 {
    let rate = f64::from(rate.unwrap_or(10_000).max(1));
    let tcp = (tcp * hosts) as f64 / rate;
    let udp_rate = (udp * hosts) as f64 / rate;
    let floor = udp.saturating_sub(6) as f64;
    tcp + udp_rate.max(floor)
}

/// The global addresses of a network namespace (`ip -j -n NAME addr`): no loopback, no
/// link-local.
pub fn netns_addresses(netns: &str) -> Result<Vec<IpAddr>, AuditError> {
    let err = |message: String| AuditError::NetnsAddresses {
        netns: netns.to_string(),
        message,
    };
    let out = std::process::Command::new("ip")
        .args(["-j", "-n", netns, "addr", "show"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| err(format!("running ip: {e}")))?;
    if !out.status.success() {
        return Err(err(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    parse_ip_addr_json(&out.stdout).map_err(err)
}

/// The global addresses in `ip -j addr` output.
pub fn parse_ip_addr_json(json: &[u8]) -> Result<Vec<IpAddr>, String> {
    #[derive(serde::Deserialize)]
    struct Link {
        #[serde(default)]
        addr_info: Vec<Addr>,
    }
    #[derive(serde::Deserialize)]
    struct Addr {
        local: Option<String>,
        scope: Option<String>,
    }
    let links: Vec<Link> =
        serde_json::from_slice(json).map_err(|e| format!("unexpected output of ip -j: {e}"))?;
    let mut out = Vec::new();
    for a in links.iter().flat_map(|l| &l.addr_info) {
        if a.scope.as_deref().is_some_and(|s| s != "global") {
            continue;
        }
        let Some(ip) = a.local.as_deref().and_then(|t| t.parse::<IpAddr>().ok()) else {
            continue;
        };
        let link_local = match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => v6.is_unicast_link_local(),
        };
        if ip.is_loopback() || link_local || ip.is_unspecified() || out.contains(&ip) {
            continue;
        }
        out.push(ip);
    }
    Ok(out)
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

/// The outside view: a scan of `targets` (the addresses of one host; none with a
/// namespace: its own addresses) from here, of [`ports_to_scan`] or `--scan-ports`, with
/// service detection of its open ports when asked.
pub fn outside_view(
    targets: &[String],
    listeners: &[Listener],
    policy: Option<&Policy>,
    opts: &AuditOptions,
    on: &mut dyn FnMut(AuditProgress),
) -> Result<(Scan, Vec<String>), AuditError> {
    use portolan_model::PortSpec;
    use portolan_scan::{Target, TargetSet};

    let netns = opts.netns.as_deref();
    let mut warnings = Vec::new();
    let host_addresses = match netns {
        Some(ns) => netns_addresses(ns)?,
        None => Vec::new(),
    };
    let targets: Vec<String> = if targets.is_empty() {
        if netns.is_none() {
            return Err(AuditError::NoTarget);
        }
        if host_addresses.is_empty() {
            return Err(AuditError::NetnsAddresses {
                netns: netns.unwrap_or_default().to_string(),
                message: "it has no global address to scan".into(),
            });
        }
        host_addresses.iter().map(ToString::to_string).collect()
    } else {
        targets.to_vec()
    };
    let label = targets.join(", ");
    let mut parsed = Vec::new();
    for t in &targets {
        let bad = |e: &dyn std::fmt::Display| AuditError::Target {
            target: t.clone(),
            message: e.to_string(),
        };
        parsed.push(Target::parse(t).map_err(|e| bad(&e))?);
    }
    let set = TargetSet::build(&parsed, &[], true).map_err(|e| AuditError::Target {
        target: label.clone(),
        message: e.to_string(),
    })?;
    let addrs: Vec<IpAddr> = set.iter().take(MAX_ADDRESSES + 1).collect();
    if addrs.is_empty() || addrs.len() > MAX_ADDRESSES {
        return Err(AuditError::NotOneHost {
            target: label,
            count: set.iter().count(),
        });
    }
    let (tcp, udp) = match &opts.scan_ports {
        Some(text) => {
            let spec = PortSpec::parse_with(text, Registry::embedded()).map_err(|source| {
                AuditError::Ports {
                    spec: text.clone(),
                    source,
                }
            })?;
            let mut udp = spec.ports(Proto::Udp);
            udp.retain(|&p| p != 0);
            (spec.ports(Proto::Tcp), udp)
        }
        None => {
            let choice = ports_to_scan(listeners, policy);
            for (proto, r) in &choice.left_out {
                warnings.push(format!(
                    "the policy allows {r}/{proto}: the scan probes only the first {} ports of its ranges, so {} ports are not checked (ask for them with --scan-ports)",
                    if *proto == Proto::Udp { RANGE_CAP_UDP } else { RANGE_CAP_TCP },
                    r.len()
                ));
            }
            (choice.tcp, choice.udp)
        }
    };
    let one = |ports: &[u16]| {
        portolan_model::spec::merge(
            ports
                .iter()
                .map(|&p| portolan_model::PortRange::single(p))
                .collect(),
        )
    };
    let spec = PortSpec {
        any: Vec::new(),
        tcp: one(&tcp),
        udp: one(&udp),
    };
    on(AuditProgress::Estimate {
        hosts: addrs.len(),
        tcp_ports: tcp.len(),
        udp_ports: udp.len(),
        seconds: estimate(addrs.len(), tcp.len(), udp.len(), opts.rate),
    });
    let req = crate::scan::ScanRequest {
        targets: parsed,
        ports: crate::scan::Ports::Spec(spec),
        tcp: !tcp.is_empty(),
        udp: !udp.is_empty(),
        discovery: false,
        detect: opts.detect,
        all: true,
        rate: opts.rate,
        timeout: opts.timeout,
        ..crate::scan::ScanRequest::default()
    };
    let report = crate::scan::scan(&req, &mut |e| {
        if let crate::scan::ScanEvent::Progress { done, total } = e {
            on(AuditProgress::Scan { done, total });
        }
    })
    .map_err(|source| AuditError::Scan {
        target: label.clone(),
        source: Box::new(source),
    })?;
    let from_itself = netns.is_none() && addrs.iter().any(|&a| UdpSocket::bind((a, 0)).is_ok());
    if from_itself {
        warnings.push(format!(
            "{label} is this host: the scan goes through loopback, which firewalls accept, so it cannot tell what the firewall lets in (scan from another host, or audit a namespace with --netns)"
        ));
    }
    let scan = Scan {
        target: label,
        local: netns.is_some() || from_itself,
        source: source_for(addrs[0]),
        from_itself,
        host_addresses,
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
        let PortChoice { tcp, udp, .. } = ports_to_scan(&ls, Some(&mail));
        assert!(tcp.contains(&47000) && !tcp.contains(&47001));
        assert!(tcp.contains(&22) && tcp.contains(&993) && tcp.len() >= 1000);
        // The mail-server profile allows DNS (53/udp) to its resolver clients.
        assert!(udp.contains(&5353) && udp.contains(&53), "{udp:?}");
    }

    /// Issue 10 item 1: the outside view probes the UDP services that matter, the
    /// policy's UDP services and every UDP port listening beyond loopback.
    #[test]
    fn item1_udp_is_probed() {
        let ls = vec![Listener::new(Proto::Udp, "0.0.0.0".parse().unwrap(), 47123)];
        let choice = ports_to_scan(&ls, None);
        for p in [53, 67, 69, 123, 137, 138, 161, 514, 1900, 5353, 47123] {
            assert!(choice.udp.contains(&p), "{p}: {:?}", choice.udp);
        }
        // The registry's UDP risks are in it too (portmapper, memcached's UDP side...).
        assert!(choice.udp.contains(&111), "{:?}", choice.udp);
        assert!(choice.udp.len() < 64, "UDP is slow: {:?}", choice.udp);
        let policy = Policy::parse(
            "[[allow]]\nservice = \"4789/udp\"\n",
            "p.toml",
            Registry::embedded(),
        )
        .unwrap();
        assert!(ports_to_scan(&[], Some(&policy)).udp.contains(&4789));
    }

    /// Issue 10 item 5: a policy allowing 60000-61000/udp makes the scan probe 16 of them;
    /// the rest is said to be left out (so its listeners are "not checked").
    #[test]
    fn item5_large_policy_ranges_are_capped() {
        let policy = Policy::parse(
            "[[allow]]\nservice = \"60000-61000/udp\"\n[[allow]]\nservice = \"10000-20000/tcp\"\n",
            "p.toml",
            Registry::embedded(),
        )
        .unwrap();
        let choice = ports_to_scan(&[], Some(&policy));
        assert!(choice.udp.contains(&60000) && choice.udp.contains(&60015));
        assert!(!choice.udp.contains(&60016));
        assert!(choice.tcp.contains(&11023) && !choice.tcp.contains(&11024));
        assert_eq!(
            choice.left_out,
            vec![
                (
                    Proto::Udp,
                    portolan_model::PortRange::new(60016, 61000).unwrap()
                ),
                (
                    Proto::Tcp,
                    portolan_model::PortRange::new(11024, 20000).unwrap()
                ),
            ]
        );
        // About a second a closed UDP port after the burst; TCP at the rate.
        assert!((estimate(1, 1000, 26, Some(1000)) - 21.0).abs() < 0.01);
        assert!(estimate(2, 0, 3, None) < 0.1);
    }

    /// Issue 10 item 4: a namespace's own addresses, from `ip -j addr`: global ones only.
    #[test]
    fn item4_namespace_addresses() {
        let json = br#"[{"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","scope":"host"},{"family":"inet6","local":"::1","scope":"host"}]},
            {"ifname":"veth0","addr_info":[{"family":"inet","local":"198.18.0.2","scope":"global"},{"family":"inet6","local":"2001:2::2","scope":"global"},{"family":"inet6","local":"fe80::1","scope":"link"}]},
            {"ifname":"x","addr_info":[{"family":"inet","local":"169.254.1.1","scope":"global"}]},{"ifname":"y"}]"#;
        let got = parse_ip_addr_json(json).unwrap();
        assert_eq!(
            got,
            vec![
                "198.18.0.2".parse::<IpAddr>().unwrap(),
                "2001:2::2".parse().unwrap()
            ]
        );
        assert!(parse_ip_addr_json(b"not json").is_err());
    }
}
