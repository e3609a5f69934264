//! The registry operations: open the registry the user asked for, then `lookup`,
//! `search`, `services` and `explain` as calls that return entries and explanations.
//! Rendering them is `portolan_report::registry`'s job.

use std::collections::HashSet;
use std::path::Path;

use portolan_model::spec::{Query, QueryError};
use portolan_registry::{
    Category, Entry, Hit, Notes, PortRange, Proto, Registry, Source, Status, Which,
};

/// What can go wrong in a registry operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the system's services")]
    System(#[source] portolan_registry::Error),
    #[error(transparent)]
    File(portolan_registry::Error),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("nothing to search for in '{0}'")]
    NothingToSearch(String),
    #[error("no port or service is named '{name}'{}", did_you_mean(.suggestions))]
    UnknownName {
        name: String,
        suggestions: Vec<String>,
    },
}

fn did_you_mean(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", names.join(", "))
    }
}

/// The registry the commands answer from: IANA merged with the services file `services`,
/// else with `/etc/services`. [`Registry::warnings`] lists the lines that were skipped.
pub fn open(services: Option<&Path>) -> Result<Registry, Error> {
    match services {
        Some(path) => Registry::with_services_file(path).map_err(Error::File),
        None => Registry::system().map_err(Error::System),
    }
}

/// What one query of `lookup` found.
#[derive(Debug)]
pub struct Found<'r> {
    /// The query as the user wrote it.
    pub query: String,
    pub parsed: Query,
    /// The entries, each once, by port then protocol.
    pub entries: Vec<Entry<'r>>,
}

impl Found<'_> {
    /// For a port that nothing answers for, what its category means (empty otherwise).
    pub fn hint(&self) -> Option<String> {
        match &self.parsed {
            Query::Ports(r, _) if r.is_single() => {
                let c = Category::of(r.first);
                Some(format!("{c} port: {}", c.meaning()))
            }
            _ => None,
        }
    }
}

/// `lookup`: every entry for each query. Every query is read before any is looked up, so
/// that a bad one is reported alone.
pub fn lookup<'r>(reg: &'r Registry, queries: &[String]) -> Result<Vec<Found<'r>>, Error> {
    let parsed = queries
        .iter()
        .map(|q| Query::parse(q, reg))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(queries
        .iter()
        .zip(parsed)
        .map(|(q, parsed)| Found {
            query: q.clone(),
            entries: find(reg, &parsed),
            parsed,
        })
        .collect())
}

/// The entries a query finds, each once.
pub fn find<'r>(reg: &'r Registry, q: &Query) -> Vec<Entry<'r>> {
    let keep = |e: &Entry<'_>, proto: &Option<String>| {
        proto
            .as_deref()
            .is_none_or(|p| e.protocol == p || e.protocol.is_empty())
    };
    let mut out: Vec<Entry<'r>> = Vec::new();
    let mut seen = HashSet::new();
    match q {
        Query::Ports(range, proto) => {
            for port in range.iter() {
                let found = match proto.as_deref().map(str::parse::<Proto>) {
                    Some(Ok(p)) => reg.by_port(port, p),
                    _ => reg.at_port(port),
                };
                for e in found {
                    if keep(&e, proto) && seen.insert(key(&e)) {
                        out.push(e);
                    }
                }
            }
        }
        Query::Name(name, proto) => {
            for e in reg.by_name(name) {
                if keep(&e, proto) && seen.insert(key(&e)) {
                    out.push(e);
                }
            }
        }
    }
    // By port, then protocol; stable, so a services-file line stays before IANA's row.
    out.sort_by_key(|e| {
        let proto = e
            .proto
            .map_or(if e.protocol.is_empty() { 5 } else { 4 }, |p| p as u8);
        (e.ports.is_none(), e.ports.map(|p| p.first), proto)
    });
    out
}

type Key = (String, String, Option<PortRange>, String, Option<usize>);

fn key(e: &Entry<'_>) -> Key {
    (
        e.source.label().into_owned(),
        e.name.to_string(),
        e.ports,
        e.protocol.to_string(),
        e.iana.map(|r| r.index()),
    )
}

/// `search`: ranked hits for `text`, at most `limit` of them (0: all).
pub fn search<'r>(reg: &'r Registry, text: &str, limit: usize) -> Result<Vec<Hit<'r>>, Error> {
    if !text.chars().any(char::is_alphanumeric) {
        return Err(Error::NothingToSearch(text.to_string()));
    }
    let mut hits = reg.search(text);
    if limit > 0 {
        hits.truncate(limit);
    }
    Ok(hits)
}

/// `services`: the whole registry, or one side of it.
pub fn services(reg: &Registry, which: Which) -> Vec<Entry<'_>> {
    reg.entries(which)
}

/// Everything `explain` says about a port or a service.
#[derive(Debug)]
pub struct Explanation<'r> {
    /// The query as the user wrote it.
    pub query: String,
    pub parsed: Query,
    /// The port or range the explanation is about (a name's first IP port).
    pub range: Option<PortRange>,
    pub protocol: Option<String>,
    pub category: Option<Category>,
    /// The registered entries.
    pub found: Vec<Entry<'r>>,
    /// portolan's notes about the service.
    pub notes: Option<&'static Notes>,
    pub advice: String,
    /// The services file merged in, when it has no line among `found`.
    pub not_in: Option<&'r Path>,
}

impl Explanation<'_> {
    /// True when the registry or portolan's notes know something about the query.
    pub fn known(&self) -> bool {
        !self.found.is_empty() || self.notes.is_some()
    }

    /// The first assigned service name.
    pub fn name(&self) -> Option<&str> {
        self.found
            .iter()
            .find(|e| e.status == Status::Assigned)
            .map(|e| e.name)
    }
}

/// `explain`: the category, the registered entries, portolan's notes and the advice. A
/// name that neither the registry nor the notes know is an error with the nearest names.
pub fn explain<'r>(reg: &'r Registry, query: &str) -> Result<Explanation<'r>, Error> {
    let q = Query::parse(query, reg)?;
    let mut found = find(reg, &q);
    // A common name IANA does not know (memcached, elasticsearch): answer with the
    // entries at the ports portolan's notes give for it.
    if let (true, Query::Name(name, _)) = (found.is_empty(), &q)
        && let Some(n) = portolan_registry::notes(name)
    {
        for &port in n.ports {
            for &proto in n.protos {
                found.extend(reg.by_port(port, proto));
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
    if let Query::Name(name, _) = &q
        && found.is_empty()
        && notes.is_none()
    {
        return Err(Error::UnknownName {
            name: name.clone(),
            suggestions: nearest_names(reg, name),
        });
    }
    let advice = advice(&q, &named, notes, range, proto.as_deref());
    let not_in = reg
        .services_path()
        .filter(|_| !found.iter().any(|e| e.source != Source::Iana));
    Ok(Explanation {
        query: query.to_string(),
        parsed: q,
        range,
        protocol: proto,
        category: range.map(|r| Category::of(r.first)),
        found,
        notes,
        advice,
        not_in,
    })
}

/// Up to five known names closest to `name`: registry names and aliases, and the names
/// portolan has notes for, by edit distance (ignoring case); else the best search hits.
pub fn nearest_names(reg: &Registry, name: &str) -> Vec<String> {
    const SHOWN: usize = 5;
    let want = name.to_ascii_lowercase();
    let most = (want.chars().count() / 3).clamp(1, 3);
    let mut scored: Vec<(usize, String)> = Vec::new();
    let mut seen = HashSet::new();
    let mut consider = |candidate: &str| {
        if candidate.is_empty() || candidate.len() > 64 {
            return;
        }
        let lower = candidate.to_ascii_lowercase();
        if !seen.insert(lower.clone()) {
            return;
        }
        let d = strsim::damerau_levenshtein(&want, &lower);
        if d <= most {
            scored.push((d, candidate.to_string()));
        }
    };
    for n in portolan_registry::NOTES {
        consider(n.name);
    }
    for r in reg.iana_records() {
        consider(r.name());
    }
    if let Some(f) = reg.services_file() {
        for l in &f.lines {
            consider(&l.name);
            for a in l.aliases() {
                consider(a);
            }
        }
    }
    scored.sort();
    let mut out: Vec<String> = scored.into_iter().map(|(_, n)| n).take(SHOWN).collect();
    if out.is_empty() && name.chars().any(char::is_alphanumeric) {
        for h in reg.search(name) {
            if !h.entry.name.is_empty() && !out.iter().any(|n| n == h.entry.name) {
                out.push(h.entry.name.to_string());
            }
            if out.len() == SHOWN {
                break;
            }
        }
    }
    out
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
    if let Query::Name(n, _) = q
        && let Some(notes) = portolan_registry::notes(n)
    {
        return Some(notes);
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
    if let Some(r) = range
        && Category::of(r.first) == Category::Dynamic
        && named.is_empty()
    {
        s.push_str(&format!(
            " A listener on a dynamic port is often a service that picked a random port \
             (RPC, a debugger, a game): find its owner with `portolan ls -p {r}` before \
             closing it."
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> &'static Registry {
        Registry::embedded()
    }

    #[test]
    fn lookup_reads_every_query_first() {
        assert!(matches!(
            lookup(reg(), &["22".into(), "70000".into()]),
            Err(Error::Query(_))
        ));
        let found = lookup(reg(), &["22/tcp".into(), "50000".into()]).unwrap();
        assert_eq!(found[0].entries[0].name, "ssh");
        assert!(
            found[1]
                .entries
                .iter()
                .all(|e| e.category() == Some(Category::Dynamic))
        );
    }

    #[test]
    fn unknown_names_suggest_the_nearest() {
        match explain(reg(), "telnt") {
            Err(Error::UnknownName { suggestions, .. }) => {
                assert!(suggestions.iter().any(|s| s == "telnet"), "{suggestions:?}")
            }
            other => panic!("{other:?}"),
        }
        assert!(explain(reg(), "ssh").unwrap().known());
    }

    #[test]
    fn search_needs_a_word() {
        assert!(matches!(
            search(reg(), "?!", 5),
            Err(Error::NothingToSearch(_))
        ));
        assert_eq!(search(reg(), "mail", 3).unwrap().len(), 3);
    }
}
