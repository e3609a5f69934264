//! What a process's cgroup says: its path, and the container it runs in.

/// The cgroup path in a `/proc/PID/cgroup` text: the unified (`0::`) line, else the
/// `name=systemd` line of cgroup v1.
pub fn path(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .or_else(|| {
            text.lines()
                .find_map(|l| l.split_once(":name=systemd:").map(|(_, p)| p))
        })
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

/// The container a cgroup path belongs to, as `RUNTIME:ID` (`docker:3f2a...`,
/// `podman:9b1c...`, `containerd:77e0...`, `crio:...`) or `lxc:NAME`; `None` for a path
/// outside any container this knows.
///
/// ```
/// use portolan_inventory::cgroup::container;
/// assert_eq!(container("/docker/0123abcd").as_deref(), Some("docker:0123abcd"));
/// assert_eq!(container("/lxc.payload.web/init.scope").as_deref(), Some("lxc:web"));
/// assert_eq!(container("/system.slice/ssh.service"), None);
/// ```
pub fn container(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    // The innermost component that names a container wins (a container in a pod).
    for (i, c) in parts.iter().enumerate().rev() {
        let scope = c.strip_suffix(".scope").unwrap_or(c);
        for (prefix, runtime) in [
            ("docker-", "docker"),
            ("libpod-conmon-", ""),
            ("libpod-", "podman"),
            ("cri-containerd-", "containerd"),
            ("crio-conmon-", ""),
            ("crio-", "crio"),
        ] {
            if let Some(id) = scope.strip_prefix(prefix) {
                if runtime.is_empty() {
                    break; // the runtime's monitor, not the container
                }
                if is_id(id) {
                    return Some(format!("{runtime}:{id}"));
                }
            }
        }
        // `kubepods-...:cri-containerd:ID` under containerd.service (cgroupfs driver).
        if let Some((_, id)) = c.rsplit_once(":cri-containerd:") {
            if is_id(id) {
                return Some(format!("containerd:{id}"));
            }
        }
        let parent = i.checked_sub(1).map(|p| parts[p]);
        // cgroupfs drivers: `/docker/ID`, `/libpod_parent/libpod-ID` (above), `/lxc/NAME`.
        match parent {
            Some("docker") if is_id(c) => return Some(format!("docker:{c}")),
            Some("lxc") | Some("lxc.payload") if is_name(c) => return Some(format!("lxc:{c}")),
            _ => {}
        }
        if let Some(name) = c.strip_prefix("lxc.payload.") {
            if is_name(name) {
                return Some(format!("lxc:{name}"));
            }
        }
    }
    None
}

/// A container id: hexadecimal, 8 to 128 digits.
fn is_id(s: &str) -> bool {
    (8..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// An LXC container name.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1c2b3a9d8e7f60112233445566778899aabbccddeeff00112233445566aa77";

    #[test]
    fn paths() {
        assert_eq!(
            path("0::/system.slice/ssh.service\n"),
            Some("/system.slice/ssh.service")
        );
        assert_eq!(
            path("12:cpu:/x\n1:name=systemd:/system.slice/cron.service\n"),
            Some("/system.slice/cron.service")
        );
        assert_eq!(path("12:cpu:/x\n"), None);
        assert_eq!(path("0::\n"), None);
    }

    #[test]
    fn containers() {
        let c = |p: String| container(&p);
        assert_eq!(
            c(format!("/system.slice/docker-{ID}.scope")),
            Some(format!("docker:{ID}"))
        );
        assert_eq!(c(format!("/docker/{ID}")), Some(format!("docker:{ID}")));
        assert_eq!(
            c(format!("/machine.slice/libpod-{ID}.scope/container")),
            Some(format!("podman:{ID}"))
        );
        assert_eq!(c(format!("/machine.slice/libpod-conmon-{ID}.scope")), None);
        assert_eq!(
            c(format!(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-{ID}.scope"
            )),
            Some(format!("containerd:{ID}"))
        );
        assert_eq!(
            c(format!(
                "/system.slice/containerd.service/kubepods-burstable-pod1.slice:cri-containerd:{ID}"
            )),
            Some(format!("containerd:{ID}"))
        );
        assert_eq!(
            c(format!("/kubepods.slice/crio-{ID}.scope")),
            Some(format!("crio:{ID}"))
        );
        assert_eq!(c("/lxc/web1".into()), Some("lxc:web1".into()));
        assert_eq!(c("/lxc.payload.web1".into()), Some("lxc:web1".into()));
        assert_eq!(c("/lxc.monitor.web1".into()), None);
        assert_eq!(c("/system.slice/docker.service".into()), None);
        assert_eq!(c("/docker/not-an-id".into()), None);
        assert_eq!(
            c("/user.slice/user-1000.slice/session-3.scope".into()),
            None
        );
        assert_eq!(c(String::new()), None);
    }
}
