//! The live host's facts the audit asks about: whether an executable's path is writable
//! by others, which Debian package owns it (`dpkg -S`, cached), and the kernel's
//! ephemeral port range.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use portolan_audit::Host;
use portolan_audit::input::parse_port_range_sysctl;
use portolan_audit::{Context, Listener};
use portolan_registry::PortRange;

/// Where Linux keeps the ephemeral port range.
pub const EPHEMERAL_SYSCTL: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// The kernel's ephemeral port range, or Linux's default when it cannot be read.
pub fn ephemeral_range() -> PortRange {
    std::fs::read_to_string(EPHEMERAL_SYSCTL)
        .ok()
        .and_then(|t| parse_port_range_sysctl(&t))
        .unwrap_or(Context::DEFAULT_EPHEMERAL)
}

/// The live host: file permissions and the Debian package database.
#[derive(Debug, Default)]
pub struct LiveHost {
    packages: Mutex<HashMap<PathBuf, Option<String>>>,
}

impl Host for LiveHost {
    fn exe_risk(&self, exe: &Path) -> Option<String> {
        let meta = std::fs::metadata(exe).ok()?;
        let mode = meta.permissions().mode();
        if mode & 0o002 != 0 {
            return Some(format!("{} is world-writable", exe.display()));
        }
        let mut dir = exe.parent();
        while let Some(d) = dir {
            if let Ok(m) = std::fs::metadata(d) {
                let mode = m.permissions().mode();
                // World-writable without the sticky bit: anyone can replace the file.
                if mode & 0o002 != 0 && mode & 0o1000 == 0 {
                    return Some(format!("{} is world-writable", d.display()));
                }
            }
            dir = d.parent();
        }
        None
    }

    fn argv(&self, pid: u32) -> Option<Vec<String>> {
        use std::io::Read;
        // The first 4096 bytes, as the inventory reads them (a command line can be
        // megabytes long).
        let mut buf = Vec::new();
        std::fs::File::open(format!("/proc/{pid}/cmdline"))
            .ok()?
            .take(4096)
            .read_to_end(&mut buf)
            .ok()?;
        Some(
            String::from_utf8_lossy(&buf)
                .split('\0')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
        )
    }

    fn cwd(&self, pid: u32) -> Option<PathBuf> {
        std::fs::read_link(format!("/proc/{pid}/cwd")).ok()
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn others_can_create_in(&self, dir: &Path) -> bool {
        std::fs::metadata(dir).is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o002 != 0)
    }

    fn package_of(&self, exe: &Path) -> Option<String> {
        let mut cache = self.packages.lock().ok()?;
        if let Some(hit) = cache.get(exe) {
            return hit.clone();
        }
        let found = dpkg_owner(exe);
        cache.insert(exe.to_path_buf(), found.clone());
        found
    }
}

impl LiveHost {
    /// Looks up the packages of many executables with one `dpkg -S` (which reads the
    /// package database once, the slow part), so later lookups hit the cache.
    pub fn prefetch(&self, exes: &[&Path]) {
        let Ok(mut cache) = self.packages.lock() else {
            return;
        };
        let mut want: Vec<(PathBuf, Vec<String>)> = Vec::new();
        for exe in exes {
            if cache.contains_key(*exe) || want.iter().any(|(e, _)| e == exe) {
                continue;
            }
            if let Some(s) = exe.to_str() {
                want.push((exe.to_path_buf(), candidates(s)));
            }
        }
        if want.is_empty() {
            return;
        }
        let args: Vec<&str> = want
            .iter()
            .flat_map(|(_, c)| c.iter().map(String::as_str))
            .collect();
        let owners = dpkg_search(&args);
        for (exe, cands) in want {
            let pkg = cands.iter().find_map(|c| owners.get(c).cloned());
            cache.insert(exe, pkg);
        }
    }

    /// [`LiveHost::prefetch`] of every owner's executable.
    pub fn prefetch_owners(&self, listeners: &[Listener]) {
        let mut exes: Vec<&Path> = listeners
            .iter()
            .flat_map(|l| l.processes.iter().filter_map(|p| p.exe.as_deref()))
            .map(Path::new)
            .collect();
        exes.sort_unstable();
        exes.dedup();
        self.prefetch(&exes);
    }
}

/// The path, and the same path with or without /usr (merged-/usr systems record either).
fn candidates(s: &str) -> Vec<String> {
    let other = match s.strip_prefix("/usr") {
        Some(rest) => rest.to_string(),
        None => format!("/usr{s}"),
    };
    vec![s.to_string(), other]
}

/// `dpkg -S PATH...`: the owning package of each path it knows.
fn dpkg_search(paths: &[&str]) -> HashMap<String, String> {
    let Ok(out) = Command::new("dpkg")
        .arg("-S")
        .args(paths)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return HashMap::new();
    };
    parse_dpkg_search(&String::from_utf8_lossy(&out.stdout))
}

/// The output of `dpkg -S`: "openssh-server: /usr/sbin/sshd" per line; diversions start
/// with "diversion by"; several packages are comma-separated, the first one wins.
/// Paths dpkg does not know only produce errors (and exit status 1).
pub fn parse_dpkg_search(text: &str) -> HashMap<String, String> {
    let mut owners = HashMap::new();
    for line in text.lines() {
        if line.starts_with("diversion") {
            continue;
        }
        let Some((pkgs, path)) = line.split_once(": ") else {
            continue;
        };
        let pkg = pkgs
            .split(", ")
            .next()
            .and_then(|p| p.split(':').next())
            .map(str::trim)
            .unwrap_or_default();
        if !pkg.is_empty() {
            owners
                .entry(path.trim().to_string())
                .or_insert_with(|| pkg.to_string());
        }
    }
    owners
}

/// The owning package of one executable.
fn dpkg_owner(exe: &Path) -> Option<String> {
    let s = exe.to_str()?;
    let cands = candidates(s);
    let args: Vec<&str> = cands.iter().map(String::as_str).collect();
    let owners = dpkg_search(&args);
    cands.iter().find_map(|c| owners.get(c).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_lines() {
        let m = parse_dpkg_search(
            "openssh-server: /usr/sbin/sshd\ndiversion by x from: /bin/sh\nlibc6:amd64, libc6-dev: /lib/x\n",
        );
        assert_eq!(m["/usr/sbin/sshd"], "openssh-server");
        assert_eq!(m["/lib/x"], "libc6");
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn live_host_packages_and_writable_paths() {
        let host = LiveHost::default();
        if Path::new("/usr/bin/dpkg").exists() {
            host.prefetch(&[Path::new("/usr/bin/dpkg"), Path::new("/nonexistent/x")]);
            assert_eq!(
                host.package_of(Path::new("/usr/bin/dpkg")).as_deref(),
                Some("dpkg")
            );
            assert_eq!(host.package_of(Path::new("/nonexistent/x")), None);
        }
        let dir = std::env::temp_dir().join(format!("pa-ww-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("daemon");
        std::fs::write(&exe, b"").unwrap();
        assert_eq!(host.exe_risk(&exe), None);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(host.exe_risk(&exe).unwrap().contains("is world-writable"));
        // The sticky bit (as on /tmp) keeps others from replacing the file.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(host.exe_risk(&exe), None);
        // ... but not from adding files next to it.
        assert!(host.others_can_create_in(&dir));
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(host.exe_risk(&exe).is_some());
        assert!(!host.others_can_create_in(&exe));
        // This process: its arguments and working directory.
        let me = std::process::id();
        let argv = host.argv(me).unwrap();
        assert_eq!(argv, std::env::args().collect::<Vec<_>>());
        assert_eq!(host.cwd(me).unwrap(), std::env::current_dir().unwrap());
        let _ = std::fs::remove_dir_all(dir);
    }
}
