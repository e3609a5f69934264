//! The one shape of a process, wherever it shows up (an owner in `ls`, evidence in a
//! finding, an attribute in the history).

use serde::{Deserialize, Serialize};

/// A process that holds a socket (threads are folded into their process).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Process {
    pub pid: u32,
    /// The process name (`/proc/PID/comm`).
    pub name: String,
    /// The executable (`/proc/PID/exe`), when readable.
    pub exe: Option<String>,
    /// The command line, arguments joined by spaces; empty when unreadable or empty.
    #[serde(default, alias = "command")]
    pub cmdline: String,
    #[serde(default)]
    pub uid: Option<u32>,
    pub user: Option<String>,
    /// The systemd unit the process runs in (`sshd.service`, `session-3.scope`).
    pub unit: Option<String>,
    /// The cgroup path (`/system.slice/sshd.service`), when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// The container the process runs in (docker, podman, lxc, ...), from its cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

impl Process {
    /// A process known by pid and name only.
    pub fn new(pid: u32, name: impl Into<String>) -> Process {
        Process {
            pid,
            name: name.into(),
            ..Process::default()
        }
    }

    /// systemd itself: PID 1 or a user manager named `systemd`.
    pub fn is_systemd(&self) -> bool {
        self.pid == 1 || self.name == "systemd"
    }

    /// The command line, or `None` when it is empty.
    pub fn command(&self) -> Option<&str> {
        (!self.cmdline.is_empty()).then_some(self.cmdline.as_str())
    }

    /// Whether `want` names this process: its pid, process name, executable file name, or
    /// systemd unit (with or without the suffix).
    pub fn matches(&self, want: &str) -> bool {
        if let Ok(pid) = want.parse::<u32>() {
            return pid == self.pid;
        }
        self.name == want
            || self
                .exe
                .as_deref()
                .and_then(|e| e.rsplit('/').next())
                .is_some_and(|b| b == want || b.strip_suffix(" (deleted)") == Some(want))
            || self.unit.as_deref().is_some_and(|u| {
                u == want || u.rsplit_once('.').is_some_and(|(stem, _)| stem == want)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_old_field_name() {
        let p = Process {
            pid: 812,
            name: "sshd".into(),
            exe: Some("/usr/sbin/sshd".into()),
            cmdline: "sshd: /usr/sbin/sshd -D".into(),
            uid: Some(0),
            user: Some("root".into()),
            unit: Some("ssh.service".into()),
            cgroup: Some("/system.slice/ssh.service".into()),
            container: None,
        };
        let j = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Process>(&j).unwrap(), p);
        let old: Process = serde_json::from_str(
            r#"{"pid":1,"name":"x","exe":null,"command":"x -d","user":null,"unit":null}"#,
        )
        .unwrap();
        assert_eq!(old.cmdline, "x -d");
    }

    #[test]
    fn matching() {
        let mut p = Process::new(900, "nginx");
        p.exe = Some("/usr/sbin/nginx (deleted)".into());
        p.unit = Some("nginx.service".into());
        assert!(p.matches("900") && p.matches("nginx") && p.matches("nginx.service"));
        assert!(!p.matches("901") && !p.matches("ngin"));
    }
}
