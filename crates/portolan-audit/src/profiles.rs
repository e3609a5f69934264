//! The built-in policies for common roles. Each is an ordinary policy file, embedded, so
//! `portolan policy show NAME` prints it with its comments and it parses like any other.

use crate::catalog::Catalog;
use crate::policy::{Policy, PolicyErrors};

/// A built-in profile.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    pub name: &'static str,
    /// Other names it answers to.
    pub aliases: &'static [&'static str],
    pub text: &'static str,
}

pub static PROFILES: &[Profile] = &[
    Profile {
        name: "mail-server",
        aliases: &["mail"],
        text: include_str!("../profiles/mail-server.toml"),
    },
    Profile {
        name: "web-server",
        aliases: &["web"],
        text: include_str!("../profiles/web-server.toml"),
    },
    Profile {
        name: "dns-server",
        aliases: &["dns"],
        text: include_str!("../profiles/dns-server.toml"),
    },
    Profile {
        name: "file-server",
        aliases: &["file"],
        text: include_str!("../profiles/file-server.toml"),
    },
    Profile {
        name: "database",
        aliases: &["db"],
        text: include_str!("../profiles/database.toml"),
    },
    Profile {
        name: "ssh-only",
        aliases: &["bastion"],
        text: include_str!("../profiles/ssh-only.toml"),
    },
    Profile {
        name: "workstation",
        aliases: &["desktop"],
        text: include_str!("../profiles/workstation.toml"),
    },
];

/// The profile called `name` (or one of its aliases).
pub fn find(name: &str) -> Option<&'static Profile> {
    let name = name.to_ascii_lowercase();
    PROFILES
        .iter()
        .find(|p| p.name == name || p.aliases.contains(&name.as_str()))
}

/// Why a profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("unknown profile '{name}'{hint}; profiles are: {all}")]
    Unknown {
        name: String,
        hint: String,
        all: String,
    },
    #[error("built-in profile {0}")]
    Invalid(#[from] PolicyErrors),
}

impl Profile {
    /// The profile as a policy.
    pub fn policy(&self, catalog: &dyn Catalog) -> Result<Policy, PolicyErrors> {
        Policy::parse(self.text, &format!("<profile {}>", self.name), catalog)
    }
}

/// Loads a profile by name, with a suggestion when the name is unknown.
pub fn load(name: &str, catalog: &dyn Catalog) -> Result<Policy, ProfileError> {
    match find(name) {
        Some(p) => Ok(p.policy(catalog)?),
        None => {
            let names: Vec<&str> = PROFILES
                .iter()
                .flat_map(|p| std::iter::once(p.name).chain(p.aliases.iter().copied()))
                .collect();
            let near = crate::suggest::nearest(name, names.iter().copied(), 1);
            Err(ProfileError::Unknown {
                name: name.to_string(),
                hint: near
                    .first()
                    .map(|n| format!(" (did you mean '{n}'?)"))
                    .unwrap_or_default(),
                all: PROFILES
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_registry::{Proto, Registry};

    #[test]
    fn every_profile_parses() {
        for p in PROFILES {
            let policy = p
                .policy(Registry::embedded())
                .unwrap_or_else(|e| panic!("{}: {e}", p.name));
            assert_eq!(policy.name, p.name);
            assert!(policy.description.is_some(), "{}", p.name);
            assert!(!policy.forbid_cleartext.is_empty(), "{}", p.name);
            assert!(
                p.text
                    .starts_with(&format!("# portolan policy: {}", p.name))
            );
        }
    }

    #[test]
    fn servers_allow_ssh_and_shut_the_rest() {
        let mail = load("mail-server", Registry::embedded()).unwrap();
        for port in [25, 465, 587, 993, 995, 22] {
            assert!(mail.allows(Proto::Tcp, port).next().is_some(), "{port}");
        }
        for port in [21, 23, 80, 110, 143, 443, 3306] {
            assert!(mail.allows(Proto::Tcp, port).next().is_none(), "{port}");
        }
        assert!(
            mail.allows(Proto::Udp, 53)
                .all(|a| a.bind == crate::policy::Bind::Loopback)
        );
        let bastion = load("bastion", Registry::embedded()).unwrap();
        assert_eq!(bastion.name, "ssh-only");
        assert_eq!(bastion.allow.len(), 1);
        let ws = load("workstation", Registry::embedded()).unwrap();
        assert!(ws.allow_loopback);
    }

    #[test]
    fn unknown_profile_suggests() {
        let e = load("mail-sever", Registry::embedded())
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean 'mail-server'"), "{e}");
    }
}
