//! Service names: the audit's own table first, then a registry behind a seam, so the
//! library resolves `smtp` or `8080/tcp` without knowing where the registry comes from.

use portolan_registry::{PortRange, Proto};

use crate::knowledge;

/// A source of registered service names (the IANA registry, `/etc/services`).
pub trait Catalog {
    /// The ports a name is registered for; empty when the name is unknown.
    fn ports(&self, name: &str) -> Vec<(Proto, PortRange)>;
    /// The registered name of a port.
    fn name_for(&self, port: u16, proto: Proto) -> Option<String>;
    /// Every name the catalog knows, for "did you mean" suggestions.
    fn names(&self) -> Vec<String>;
}

/// No registry: only the audit's own table of common services.
#[derive(Debug, Clone, Copy, Default)]
pub struct KnownOnly;

impl Catalog for KnownOnly {
    fn ports(&self, _name: &str) -> Vec<(Proto, PortRange)> {
        Vec::new()
    }
    fn name_for(&self, _port: u16, _proto: Proto) -> Option<String> {
        None
    }
    fn names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A fixed list of names and ports, for tests and for callers that bring their own.
#[derive(Debug, Clone, Default)]
pub struct Table(pub Vec<(String, Proto, PortRange)>);

impl Catalog for Table {
    fn ports(&self, name: &str) -> Vec<(Proto, PortRange)> {
        let name = name.to_ascii_lowercase();
        self.0
            .iter()
            .filter(|(n, _, _)| *n == name)
            .map(|&(_, p, r)| (p, r))
            .collect()
    }
    fn name_for(&self, port: u16, proto: Proto) -> Option<String> {
        self.0
            .iter()
            .find(|(_, p, r)| *p == proto && r.contains(port))
            .map(|(n, _, _)| n.clone())
    }
    fn names(&self) -> Vec<String> {
        self.0.iter().map(|(n, _, _)| n.clone()).collect()
    }
}

/// The name to show for a port: the audit's table, then the catalog.
pub fn name_for(catalog: &dyn Catalog, port: u16, proto: Proto) -> Option<String> {
    knowledge::by_port(port, proto)
        .map(|k| k.name.to_string())
        .or_else(|| catalog.name_for(port, proto))
}

/// Every name a policy may use, for suggestions.
pub fn all_names(catalog: &dyn Catalog) -> Vec<String> {
    let mut names: Vec<String> = knowledge::KNOWN
        .iter()
        .flat_map(|k| k.names())
        .map(str::to_string)
        .chain(catalog.names())
        .collect();
    names.sort();
    names.dedup();
    names
}
