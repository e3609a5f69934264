//! `portolan explain PORT|NAME`: the human view of a port or service.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use portolan_registry::{Category, Entry, Notes, PortRange, Proto, Registry, Status};
use serde::Serialize;

use crate::cli::RegistryArgs;
use crate::cmd::entries::{self, JsonEntry, Query};

/// Everything `explain` says, as its JSON.
#[derive(Serialize)]
struct Explanation<'a> {
    query: &'a str,
    port: Option<u16>,
    last_port: Option<u16>,
    protocol: Option<&'a str>,
    category: Option<&'static str>,
    category_iana: Option<&'static str>,
    category_meaning: Option<&'static str>,
    services: Vec<JsonEntry<'a>>,
    cleartext: Option<bool>,
    secure_alternative: Option<&'static str>,
    local_only: Option<bool>,
    starttls: Option<bool>,
    bind_hint: Option<&'static str>,
    risk: Option<&'static str>,
    advice: String,
}

pub fn run(query: &str, registry: &RegistryArgs, json: bool) -> anyhow::Result<ExitCode> {
    let reg = entries::open(registry)?;
    let q = entries::parse_query(query, &reg)?;
    let mut found = entries::find(&reg, &q);
    // A common name IANA does not know (memcached, elasticsearch): answer with the
    // entries at the ports portolan's notes give for it.
    if let (true, Query::Name(name, _)) = (found.is_empty(), &q) {
        if let Some(n) = portolan_registry::notes(name) {
            for &port in n.ports {
                for &proto in n.protos {
                    found.extend(reg.by_port(port, proto));
                }
            }
        }
    }
    let (range, proto) = match &q {
        Query::Ports(r, p) => (Some(*r), p.clone()),
        Query::Name(_, p) => (first_port(&found), p.clone()),
    };
    let named: Vec<&Entry<'_>> = found
        .iter()
        .filter(|e| e.status == Status::Assigned)
        .collect();
    let notes = find_notes(&q, &named, range, proto.as_deref());
    let category = range.map(|r| Category::of(r.first));
    let known = !found.is_empty() || notes.is_some();
    let advice = advice(&q, &named, notes, range, proto.as_deref());

    let stdout = std::io::stdout();
    let mut w = BufWriter::new(stdout.lock());
    if json {
        let e = Explanation {
            query,
            port: range.map(|r| r.first),
            last_port: range.map(|r| r.last),
            protocol: proto.as_deref(),
            category: category.map(Category::as_str),
            category_iana: category.map(Category::iana_name),
            category_meaning: category.map(Category::meaning),
            services: found
                .iter()
                .map(|e| JsonEntry::new(e, None, None))
                .collect(),
            cleartext: notes.map(|n| n.cleartext),
            secure_alternative: notes.and_then(|n| n.secure_alternative),
            local_only: notes.map(|n| n.local_only),
            starttls: notes.map(|n| n.starttls),
            bind_hint: notes.and_then(|n| n.bind_hint),
            risk: notes.map(|n| n.risk).filter(|r| !r.is_empty()),
            advice,
        };
        serde_json::to_writer_pretty(&mut w, &e)?;
        writeln!(w)?;
    } else {
        write_text(
            &mut w,
            &reg,
            query,
            &found,
            notes,
            range,
            proto.as_deref(),
            &advice,
        )?;
    }
    w.flush()?;
    if !known {
        eprintln!("portolan: nothing is registered for '{query}'");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// For a name, the port of its first entry (the services file's, when it has one) over
/// an IP transport; other protocols (AppleTalk's `ddp` in /etc/services) come last.
fn first_port(found: &[Entry<'_>]) -> Option<PortRange> {
    let ip = found
        .iter()
        .filter(|e| e.proto.is_some())
        .find_map(|e| e.ports);
    ip.or_else(|| found.iter().find_map(|e| e.ports))
}

fn find_notes(
    q: &Query,
    named: &[&Entry<'_>],
    range: Option<PortRange>,
    proto: Option<&str>,
) -> Option<&'static Notes> {
    if let Query::Name(n, _) = q {
        if let Some(notes) = portolan_registry::notes(n) {
            return Some(notes);
        }
    }
    if let Some(n) = named.iter().find_map(|e| portolan_registry::notes(e.name)) {
        return Some(n);
    }
    let r = range.filter(PortRange::is_single)?;
    let protos: Vec<Proto> = match proto.map(str::parse::<Proto>) {
        Some(Ok(p)) => vec![p],
        Some(Err(_)) => return None,
        None => Proto::ALL.to_vec(),
    };
    protos
        .into_iter()
        .find_map(|p| portolan_registry::notes_for_port(r.first, p))
}

fn advice(
    q: &Query,
    named: &[&Entry<'_>],
    notes: Option<&Notes>,
    range: Option<PortRange>,
    proto: Option<&str>,
) -> String {
    let what = match (notes, named.first(), q) {
        (Some(n), _, _) => n.name.to_string(),
        (None, Some(e), _) => e.name.to_string(),
        (None, None, Query::Name(n, _)) => n.clone(),
        (None, None, Query::Ports(r, _)) => format!("port {r}"),
    };
    // Name the protocol when the query did not: the notes' (telnet is tcp), or the one
    // protocol the registered entries share.
    let proto = proto
        .map(str::to_string)
        .or_else(|| match notes.map(|n| n.protos) {
            Some([p]) => Some(p.to_string()),
            _ => {
                let mut ps: Vec<&str> = named.iter().map(|e| e.protocol).collect();
                ps.dedup();
                (ps.len() == 1 && !ps[0].is_empty()).then(|| ps[0].to_string())
            }
        });
    let port = match (range, proto) {
        (Some(r), Some(p)) => format!("{r}/{p}"),
        (Some(r), None) => r.to_string(),
        (None, _) => "its port".to_string(),
    };
    let mut s = format!(
        "If this server does not need {what}, close it: stop and disable the service that \
         listens on {port}, or block {port} in the firewall."
    );
    let mut needed = Vec::new();
    if let Some(n) = notes {
        if n.cleartext {
            match n.secure_alternative {
                Some(alt) => needed.push(format!("use {alt} instead")),
                None => {
                    needed.push("keep it off untrusted networks (it has no encrypted form)".into())
                }
            }
        }
        if n.local_only {
            needed.push(
                "bind it to localhost or a private address, or allow only the hosts that use it"
                    .into(),
            );
        }
    }
    if !needed.is_empty() {
        s.push_str(&format!(" If it is needed, {}.", needed.join("; and ")));
    }
    if range.is_some_and(|r| Category::of(r.first) == Category::Dynamic) && named.is_empty() {
        s.push_str(
            " A listener on a dynamic port is often a service that picked a random port \
             (RPC, a debugger, a game): find its owner with `ss -tulpn` before closing it.",
        );
    }
    s
}

#[allow(clippy::too_many_arguments)]
fn write_text(
    w: &mut dyn Write,
    reg: &Registry,
    query: &str,
    found: &[Entry<'_>],
    notes: Option<&Notes>,
    range: Option<PortRange>,
    proto: Option<&str>,
    advice: &str,
) -> std::io::Result<()> {
    let title = match (range, proto) {
        (Some(r), Some(p)) => format!("{r}/{p}"),
        (Some(r), None) => r.to_string(),
        (None, _) => query.to_string(),
    };
    let name = found
        .iter()
        .find(|e| e.status == Status::Assigned)
        .map(|e| e.name);
    match name {
        Some(n) if n != title => writeln!(w, "{title}: {n}")?,
        _ => writeln!(w, "{title}")?,
    }
    writeln!(w)?;
    if let Some(r) = range {
        let c = Category::of(r.first);
        writeln!(w, "Category     {c} (IANA \"{}\")", c.iana_name())?;
        write_wrapped(w, c.meaning())?;
    }
    writeln!(w)?;
    if found.is_empty() {
        writeln!(w, "Registered   nothing")?;
    } else {
        writeln!(w, "Registered")?;
        for e in found {
            let ports = e.ports.map_or("-".to_string(), |p| p.to_string());
            let protocol = if e.protocol.is_empty() {
                "any"
            } else {
                e.protocol
            };
            let mut line = format!("  {}/{protocol}  {}", ports, entries::display_name(e));
            let aliases: Vec<&str> = e.aliases().collect();
            if !aliases.is_empty() {
                line.push_str(&format!(" (alias {})", aliases.join(", ")));
            }
            if !e.description.is_empty() {
                line.push_str(&format!(": {}", entries::one_line(e.description)));
            }
            if !e.reference().is_empty() {
                line.push_str(&format!(" {}", entries::one_line(e.reference())));
            }
            line.push_str(&format!("  [{}]", entries::sources(e).join(", ")));
            writeln!(w, "{line}")?;
        }
    }
    if let Some(path) = reg.services_path() {
        if !found
            .iter()
            .any(|e| e.source != portolan_registry::Source::Iana)
        {
            writeln!(w, "  (not in {})", path.display())?;
        }
    }
    writeln!(w)?;
    match notes {
        Some(n) => {
            let clear = if n.cleartext { "yes" } else { "no" };
            writeln!(w, "Cleartext    {clear}")?;
            if let Some(alt) = n.secure_alternative {
                writeln!(w, "Use instead  {alt}")?;
            }
            if n.starttls {
                writeln!(
                    w,
                    "STARTTLS     offered by the protocol: require it before login"
                )?;
            }
            if n.local_only {
                writeln!(
                    w,
                    "Exposure     keep it local: it should not be reachable from the internet"
                )?;
            }
            if let Some(hint) = n.bind_hint {
                writeln!(w, "Loopback")?;
                write_wrapped(w, hint)?;
            }
            if !n.risk.is_empty() {
                writeln!(w, "Risk")?;
                write_wrapped(w, n.risk)?;
            }
        }
        None => writeln!(w, "Cleartext    unknown (portolan has no notes about it)")?,
    }
    writeln!(w)?;
    writeln!(w, "Advice")?;
    write_wrapped(w, advice)
}

/// Writes text indented by two spaces, wrapped at 78 columns.
fn write_wrapped(w: &mut dyn Write, text: &str) -> std::io::Result<()> {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > 76 {
            writeln!(w, "  {line}")?;
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        writeln!(w, "  {line}")?;
    }
    Ok(())
}
