//! The inside view: what listens on this host, and who owns it (`portolan ls`).
//!
//! ```no_run
//! use portolan_app::inventory::{self, Request};
//! use portolan_registry::Registry;
//! let inv = inventory::run(&Request::default(), Registry::embedded()).unwrap();
//! for l in &inv.listeners {
//!     println!("{} {} {:?}", l.protocol, l.port, l.service);
//! }
//! ```

use portolan_inventory::{LiveOs, Os};
use portolan_registry::Registry;

/// What to list: protocols, families, a port spec, an owner, exposure, connected UDP
/// sockets, the socket source and the namespaces. The default lists every TCP listener
/// and unconnected UDP socket of the current network namespace. (It is the inventory's
/// own options type, not a copy of it.)
pub use portolan_inventory::Options as Request;
/// What an inventory found: the listeners (most exposed first), warnings for the user,
/// and whether some table came from `/proc/net`.
pub use portolan_inventory::{Error, Inventory, NetnsChoice, SocketSource};

/// Takes the inventory of the live system; services are named from `registry`.
pub fn run(req: &Request, registry: &Registry) -> Result<Inventory, Error> {
    run_with(&LiveOs::new(), req, registry)
}

/// Takes the inventory through `os` (a fake in tests).
pub fn run_with(os: &dyn Os, req: &Request, registry: &Registry) -> Result<Inventory, Error> {
    Inventory::collect_with(os, req, registry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_inventory::fake::FakeOs;
    use portolan_model::{PortSpec, Proto};

    #[test]
    fn a_request_filters_and_names() {
        let req = Request {
            ports: Some(PortSpec::parse_with("22,U:53", Registry::embedded()).unwrap()),
            ..Request::default()
        };
        let inv = run_with(&FakeOs::sample(), &req, Registry::embedded()).unwrap();
        let got: Vec<(Proto, u16, Option<&str>)> = inv
            .listeners
            .iter()
            .map(|l| (l.protocol, l.port, l.service.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Proto::Tcp, 22, Some("ssh")),
                (Proto::Udp, 53, Some("domain"))
            ]
        );
        assert!(inv.warnings.is_empty() && !inv.used_proc);
    }
}
