//! Policies: load the one a command names (a file, a built-in profile, or none), check a
//! policy file, and write a starting policy from what listens now.

use std::io::Read;
use std::path::{Path, PathBuf};

use portolan_audit::init::{InitOptions, starting_policy};
use portolan_audit::policy::{Policy, PolicyErrors};
use portolan_audit::profiles::{self, ProfileError};
use portolan_audit::{Date, Listener};
use portolan_registry::Registry;
use serde::Serialize;

/// The largest policy file portolan reads.
pub const MAX_POLICY_BYTES: u64 = 16 << 20;

/// Which policy to judge or enforce.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PolicySource {
    /// None: the audit uses its built-in baseline.
    #[default]
    None,
    /// A policy file (TOML); `-` is standard input.
    File(PathBuf),
    /// A built-in profile, by name or alias.
    Profile(String),
}

/// A policy, and how to name it again in a command line (`--policy p.toml`,
/// `--profile mail-server`), for remediations.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    pub policy: Policy,
    pub arg: String,
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read {label}")]
    Read {
        label: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{label} is larger than {limit} bytes")]
    TooLarge { label: String, limit: u64 },
    #[error("{label}:{line}: not valid UTF-8")]
    NotUtf8 { label: String, line: usize },
    #[error(
        "{label} is empty (a truncated file?); a policy that allows nothing still names itself: name = \"...\""
    )]
    Empty { label: String },
    #[error("invalid policy\n{0}")]
    Invalid(PolicyErrors),
    #[error(transparent)]
    Profile(#[from] ProfileError),
}

/// Reads a whole input (a file, a FIFO, stdin) of at most `limit` bytes as text; `label`
/// names it in errors. Bounded, so that a FIFO or device that never ends costs no more
/// than `limit`.
pub fn read_bounded(r: impl Read, label: &str, limit: u64) -> Result<String, PolicyError> {
    read_bounded_sized(r, label, limit, 0)
}

/// [`read_bounded`] into a buffer made for `size` bytes (a file's length), so that a
/// large file is not read into one twice its size.
fn read_bounded_sized(
    r: impl Read,
    label: &str,
    limit: u64,
    size: u64,
) -> Result<String, PolicyError> {
    let mut buf = Vec::with_capacity(usize::try_from(size.min(limit) + 1).unwrap_or(0));
    r.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|source| PolicyError::Read {
            label: label.to_string(),
            source,
        })?;
    if buf.len() as u64 > limit {
        return Err(PolicyError::TooLarge {
            label: label.to_string(),
            limit,
        });
    }
    String::from_utf8(buf).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        PolicyError::NotUtf8 {
            label: label.to_string(),
            line: good.iter().filter(|&&b| b == b'\n').count() + 1,
        }
    })
}

/// The text of a policy file (`-` is standard input), and the name to show for it.
pub fn read_policy_file(path: &Path) -> Result<(String, String), PolicyError> {
    if path.as_os_str() == "-" {
        let text = read_bounded(std::io::stdin(), "policy stdin", MAX_POLICY_BYTES)?;
        return not_empty(text, "policy stdin").map(|t| ("stdin".to_string(), t));
    }
    let label = format!("policy {}", path.display());
    let file = std::fs::File::open(path).map_err(|source| PolicyError::Read {
        label: label.clone(),
        source,
    })?;
    let size = file.metadata().map_or(0, |m| m.len());
    let text = not_empty(
        read_bounded_sized(file, &label, MAX_POLICY_BYTES, size)?,
        &label,
    )?;
    Ok((path.display().to_string(), text))
}

/// A file of nothing but white space is a mistake (`> p.toml`), not a policy that allows
/// nothing: a firewall from it would drop every inbound connection.
fn not_empty(text: String, label: &str) -> Result<String, PolicyError> {
    if text.trim().is_empty() {
        return Err(PolicyError::Empty {
            label: label.to_string(),
        });
    }
    Ok(text)
}

/// Parses a policy's text, with the embedded registry.
pub fn parse(text: &str, label: &str) -> Result<Policy, PolicyError> {
    Policy::parse(text, label, Registry::embedded()).map_err(PolicyError::Invalid)
}

/// Loads the policy `src` names; `None` for [`PolicySource::None`].
pub fn load(src: &PolicySource) -> Result<Option<LoadedPolicy>, PolicyError> {
    match src {
        PolicySource::None => Ok(None),
        PolicySource::File(path) => {
            let (label, text) = read_policy_file(path)?;
            let policy = parse(&text, &label)?;
            Ok(Some(LoadedPolicy {
                policy,
                arg: format!("--policy {label}"),
            }))
        }
        PolicySource::Profile(name) => {
            let policy = profiles::load(name, Registry::embedded())?;
            let arg = format!("--profile {}", policy.name);
            Ok(Some(LoadedPolicy { policy, arg }))
        }
    }
}

/// What `portolan policy check` says of a valid policy. Fields in the JSON's
/// (alphabetical) order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckSummary {
    /// Services the policy allows.
    pub allowed: usize,
    pub exceptions: usize,
    pub expired_exceptions: usize,
    pub file: String,
    pub forbidden_cleartext: usize,
    pub name: String,
    pub ok: bool,
    pub required: usize,
}

/// The summary of a parsed policy, with exceptions' expiry judged as of `today`.
pub fn summarize(file: &str, policy: &Policy, today: Date) -> CheckSummary {
    CheckSummary {
        file: file.to_string(),
        ok: true,
        name: policy.name.clone(),
        allowed: policy.allow.iter().map(|a| a.services.len()).sum(),
        required: policy.require.len(),
        forbidden_cleartext: policy.forbid_cleartext.len(),
        exceptions: policy.exceptions.len(),
        expired_exceptions: policy
            .exceptions
            .iter()
            .filter(|e| e.expires.is_some_and(|d| d < today))
            .count(),
    }
}

/// A built-in profile in the list `portolan policy show` prints. Fields in the JSON's
/// (alphabetical) order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileInfo {
    pub aliases: &'static [&'static str],
    pub description: Option<String>,
    pub name: &'static str,
}

/// The built-in profiles.
pub fn profile_list() -> Vec<ProfileInfo> {
    profiles::PROFILES
        .iter()
        .map(|p| ProfileInfo {
            name: p.name,
            aliases: p.aliases,
            description: p
                .policy(Registry::embedded())
                .ok()
                .and_then(|p| p.description),
        })
        .collect()
}

/// A starting policy for the host named `name` from its listeners (see
/// `crate::audit::inside_view`).
pub fn init(listeners: &[Listener], name: &str, today: Date) -> String {
    starting_policy(
        listeners,
        Registry::embedded(),
        InitOptions {
            name,
            today,
            ephemeral: crate::host::ephemeral_range(),
        },
    )
}

/// This host's name, for a starting policy.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this-host".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_reads_name_the_input() {
        assert_eq!(read_bounded(&b"abc"[..], "policy x", 3).unwrap(), "abc");
        let e = read_bounded(&b"abcd"[..], "policy x", 3).unwrap_err();
        assert_eq!(e.to_string(), "policy x is larger than 3 bytes");
        let e = read_bounded(&b"a\n\xff"[..], "policy x", 10).unwrap_err();
        assert_eq!(e.to_string(), "policy x:2: not valid UTF-8");
        let e = load(&PolicySource::File("/nonexistent/p.toml".into())).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read policy /nonexistent/p.toml")
        );
    }

    #[test]
    fn empty_policy_file_is_an_error_not_an_allow_nothing_policy() {
        let dir = std::env::temp_dir().join(format!("pq-empty-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in [("zero.toml", ""), ("blank.toml", " \n\t\n")] {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            let e = load(&PolicySource::File(path.clone())).unwrap_err();
            assert!(matches!(e, PolicyError::Empty { .. }), "{e}");
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        }
        // A policy that allows nothing on purpose says so.
        let path = dir.join("named.toml");
        std::fs::write(&path, "name = \"lockdown\"\n").unwrap();
        assert!(load(&PolicySource::File(path)).unwrap().is_some());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn profiles_load_with_their_argument() {
        let p = load(&PolicySource::Profile("mail".into()))
            .unwrap()
            .unwrap();
        assert_eq!(p.arg, "--profile mail-server");
        assert!(load(&PolicySource::None).unwrap().is_none());
        assert!(profile_list().iter().any(|p| p.name == "web-server"));
    }
}
