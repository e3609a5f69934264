//! Host discovery: which hosts answer at all. With raw sockets: an ICMP echo and a SYN to
//! ports 80 and 443 (any SYN-ACK or RST means up). Without: a connect to 80 and 443
//! (accepted or refused means up).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use portolan_registry::Proto;

use crate::rate::{Controller, RetryPolicy};
use crate::rounds::{self, Rounds, Table};
use crate::rtt::RttEstimator;
use crate::syn::SynProber;
use crate::{Event, Mode, PortState, Reason, ScanConfig, ScanError, Sink, connect};

const PROBE_PORTS: [u16; 2] = [80, 443];

type Up = Vec<(IpAddr, Reason, Option<Duration>)>;

/// The ICMP echo identifier of this process.
pub fn echo_id() -> u16 {
    (std::process::id() & 0xffff) as u16
}

/// Discovery's probe table for `hosts`: ports 80 and 443 with one retry, and the echo,
/// sent at `max` per second at most.
pub fn table(
    cfg: &ScanConfig,
    hosts: &[IpAddr],
    srcs: Vec<IpAddr>,
    (rtt, max): (RttEstimator, f64),
    start: Instant,
) -> Table {
    let mut t = Table::new(
        hosts,
        srcs,
        &PROBE_PORTS,
        Proto::Tcp,
        rtt,
        start,
        Controller::new(max, max.min(1000.0)),
        RetryPolicy::new(Some(cfg.max_retries.unwrap_or(1).min(1)), 1),
    );
    t.disc = Some(crate::rounds::Discovered {
        tcp: vec![None; hosts.len()],
        echo: vec![None; hosts.len()],
    });
    t
}

/// Discovery's rounds.
pub const ROUNDS: Rounds = Rounds {
    silent: PortState::Filtered,
    icmp_pacing: false,
};

/// The hosts of `hosts` that are up, with why and how fast they answered.
pub fn discover(cfg: &ScanConfig, hosts: &[IpAddr]) -> Result<Up, ScanError> {
    let mut results = Vec::new();
    let mut on = |e: Event| {
        if let Event::Port(r) = e {
            results.push(r);
        }
    };
    let mut sink = Sink::new(&mut on, 0);
    let sub = ScanConfig {
        max_retries: Some(cfg.max_retries.unwrap_or(1).min(1)),
        ..cfg.clone()
    };
    let mut echoed = vec![None; hosts.len()];
    let mut heard = vec![None; hosts.len()];
    if cfg.mode == Mode::Syn && crate::sys::can_raw() {
        let mut p = SynProber::new(
            hosts.iter().any(IpAddr::is_ipv4),
            hosts.iter().any(IpAddr::is_ipv6),
        )?;
        p.echo = Some(echo_id());
        let mut t = table(
            cfg,
            hosts,
            rounds::sources(hosts)?,
            (
                RttEstimator::new(cfg.rtt),
                cfg.rate.map_or(crate::syn::DEFAULT_RATE, f64::from),
            ),
            Instant::now(),
        );
        rounds::run(&mut t, &mut p, &ROUNDS, &mut sink)?;
        let disc = t.disc.take().unwrap_or_default();
        echoed = disc.echo;
        heard = disc.tcp;
    } else {
        connect::scan(&sub, hosts, &PROBE_PORTS, &mut sink)?;
    }
    let _ = sink.summary;
    let mut up: Up = Vec::new();
    for (h, &addr) in hosts.iter().enumerate() {
        let tcp = results.iter().find(|r| {
            r.host == addr
                && matches!(
                    r.reason,
                    Reason::SynAck | Reason::Reset | Reason::ConnRefused
                )
        });
        if let Some(&(reason, rtt)) = heard[h].as_ref() {
            up.push((addr, reason, rtt));
        } else if let Some(r) = tcp {
            up.push((addr, r.reason, r.rtt));
        } else if let Some(d) = echoed[h] {
            up.push((addr, Reason::EchoReply, Some(d)));
        }
    }
    Ok(up)
}
