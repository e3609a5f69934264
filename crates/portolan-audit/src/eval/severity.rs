//! The one severity model: a base from the service's risk class, moved by what
//! detection measured, by where the service listens, and by what the scan measured.
//! Every rule about a listening service (under the baseline, a policy or a profile) takes
//! its severity from [`severity`]; `docs/rules.md` has the table.

use portolan_model::{Exposure, Reach, Severity};

use super::subject::Subject;
use crate::knowledge::{self, Known, Risk};

/// The audit's knowledge of a subject: by what detection saw it speak, else by port.
pub(super) fn known(s: &Subject<'_>) -> Option<&'static Known> {
    s.detected
        .and_then(|d| d.protocol.as_deref())
        .and_then(knowledge::by_name)
        .or_else(|| knowledge::by_port(s.port, s.protocol))
}

/// The subject's risk class: its service's, except that detection's measurements refine
/// it. A STARTTLS-capable protocol that detection heard offer no upgrade is plain
/// cleartext; an unknown service that detection heard speak cleartext is cleartext.
pub(super) fn risk(s: &Subject<'_>) -> Risk {
    let plain = s
        .detected
        .is_some_and(|d| d.is_identified() && d.cleartext && d.tls.is_none() && !d.starttls);
    match known(s).map(Known::risk) {
        Some(Risk::CleartextStarttls) if plain => Risk::Cleartext,
        Some(r) => r,
        None if plain => Risk::Cleartext,
        None => Risk::Other,
    }
}

/// True when detection measured that the service serves an anonymous client: it said so
/// (`unauthenticated`), or an SNMP agent answered detection's request, which carries the
/// default community `public` (an agent drops a request whose community it does not
/// accept).
fn anonymous(s: &Subject<'_>) -> bool {
    s.detected.is_some_and(|d| {
        d.unauthenticated == Some(true)
            || (d.unauthenticated.is_none() && d.protocol.as_deref() == Some("snmp"))
    })
}

/// The severity of a finding about the subject, a service of class `risk`:
///
/// 1. the class's base (critical, high or medium): what it is worth on all interfaces,
///    assumed reachable, since nothing lowers a severity on what was not measured;
/// 2. one step worse when detection saw it serve an anonymous client and a password is
///    what should protect it;
/// 3. exposure: all interfaces as is; one address one step milder, unless the scan
///    reached it; loopback only, unless the scan reached it from outside, low;
/// 4. reach: reached by the scan confirms the base (it is never worse than assumed);
///    probed on every address it serves and not reached one step milder; not checked,
///    or no scan, unchanged.
pub(super) fn severity(s: &Subject<'_>, risk: Risk) -> Severity {
    let mut sev = risk.base();
    if risk.guarded_by_credentials() && anonymous(s) {
        sev = sev.raise();
    }
    let reached = s.reach == Some(Reach::Reachable);
    match s.exposure {
        _ if reached => {}
        Exposure::Loopback => return Severity::Low,
        Exposure::Address => sev = sev.lower(),
        Exposure::All => {}
    }
    if s.reach == Some(Reach::Unreachable) {
        sev = sev.lower();
    }
    sev
}
