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

/// Every name a policy may use, for suggestions: the audit's common services first,
/// then the catalog's names.
pub fn all_names(catalog: &dyn Catalog) -> Vec<String> {
    let mut names: Vec<String> = knowledge::entries()
        .flat_map(|k| k.names())
        .map(str::to_string)
        .collect();
    let mut rest = catalog.names();
    rest.sort();
    names.extend(rest);
    names
}

/// The registry (IANA's table, possibly merged with `/etc/services`).
impl Catalog for portolan_registry::Registry {
    fn ports(&self, name: &str) -> Vec<(Proto, PortRange)> {
        let mut out = Vec::new();
        for e in self.by_name(name) {
            let Some(range) = e.ports else { continue };
            let protos: Vec<Proto> = match e.proto {
                Some(p) => vec![p],
                None if e.protocol.is_empty() => vec![Proto::Tcp, Proto::Udp],
                None => Vec::new(),
            };
            for p in protos {
                if !out.contains(&(p, range)) {
                    out.push((p, range));
                }
            }
        }
        out
    }
    fn name_for(&self, port: u16, proto: Proto) -> Option<String> {
        portolan_registry::Registry::name_for(self, port, proto).map(str::to_string)
    }
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .iana_records()
            .map(|r| r.name())
            .filter(|n| !n.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_registry::Registry;

    #[test]
    fn registry_catalog() {
        let reg = Registry::embedded();
        let gopher = Catalog::ports(reg, "gopher");
        assert!(
            gopher.contains(&(Proto::Tcp, PortRange::single(70))),
            "{gopher:?}"
        );
        assert_eq!(
            Catalog::name_for(reg, 25, Proto::Tcp).as_deref(),
            Some("smtp")
        );
        assert!(Catalog::names(reg).iter().any(|n| n == "submissions"));
        // The audit's own table answers first and is narrower than IANA's.
        assert_eq!(name_for(reg, 22, Proto::Tcp).as_deref(), Some("ssh"));
        assert!(Catalog::ports(reg, "no-such-service").is_empty());
    }
}
