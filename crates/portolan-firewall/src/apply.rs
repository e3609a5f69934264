//! Applying an nftables ruleset safely: checked first, the previous ruleset saved, loaded
//! atomically, and rolled back by a detached timer unless confirmed in time. The timer
//! runs in its own session, so it still rolls back when the SSH session that started it
//! is cut (which is exactly when it is needed).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::nft::TABLE;

/// Why a ruleset could not be applied (or rolled back).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("could not run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed: {stderr}")]
    Nft { command: String, stderr: String },
    #[error("could not write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the rollback timer fired before the confirmation arrived: the previous ruleset is back (saved in {saved})"
    )]
    TooLate { saved: PathBuf },
}

/// How to run nft: `["nft"]`, or a prefix such as `["ip", "netns", "exec", "NS", "nft"]`.
#[derive(Debug, Clone)]
pub struct Nft {
    pub program: Vec<String>,
}

impl Default for Nft {
    fn default() -> Self {
        Nft {
            program: vec!["nft".into()],
        }
    }
}

impl Nft {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.program[0]);
        c.args(&self.program[1..]);
        c
    }

    fn label(&self, args: &[&str]) -> String {
        let mut all: Vec<&str> = self.program.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        all.join(" ")
    }

    fn run(&self, args: &[&str], input: Option<&str>) -> Result<String, ApplyError> {
        let command = self.label(args);
        let mut child = self
            .command()
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ApplyError::Spawn {
                command: command.clone(),
                source,
            })?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin
                .write_all(text.as_bytes())
                .map_err(|source| ApplyError::Spawn {
                    command: command.clone(),
                    source,
                })?;
        }
        let out = child
            .wait_with_output()
            .map_err(|source| ApplyError::Spawn {
                command: command.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(ApplyError::Nft {
                command,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `nft -c -f -`: checks a ruleset without loading it.
    pub fn check(&self, ruleset: &str) -> Result<(), ApplyError> {
        self.run(&["-c", "-f", "-"], Some(ruleset)).map(drop)
    }

    /// `nft -f -`: loads a ruleset in one transaction.
    pub fn load(&self, ruleset: &str) -> Result<(), ApplyError> {
        self.run(&["-f", "-"], Some(ruleset)).map(drop)
    }

    /// `nft list ruleset`.
    pub fn list(&self) -> Result<String, ApplyError> {
        self.run(&["list", "ruleset"], None)
    }
}

/// What happened to the new ruleset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Confirmed: the new ruleset stays.
    Kept,
    /// Not confirmed: the previous ruleset is back.
    RolledBack,
}

/// Where the previous ruleset was saved, and how it is restored.
#[derive(Debug, Clone)]
pub struct Saved {
    /// `nft list ruleset` as it was.
    pub previous: PathBuf,
    /// What the rollback loads: `flush ruleset` and the previous ruleset, or, when that
    /// does not load back cleanly, the removal of portolan's table alone.
    pub rollback: PathBuf,
    pub rollback_text: String,
    /// True when the rollback restores the whole previous ruleset.
    pub full: bool,
}

/// Saves the current ruleset in `dir` and prepares the rollback.
pub fn save(nft: &Nft, dir: &Path) -> Result<Saved, ApplyError> {
    let previous_text = nft.list()?;
    let stamp = std::process::id();
    let previous = dir.join(format!("portolan-previous-{stamp}.nft"));
    let rollback = dir.join(format!("portolan-rollback-{stamp}.nft"));
    let full_text = format!("flush ruleset\n{previous_text}");
    let (rollback_text, full) = match nft.check(&full_text) {
        Ok(()) => (full_text, true),
        Err(_) => (format!("table {TABLE}\ndelete table {TABLE}\n"), false),
    };
    for (path, text) in [(&previous, &previous_text), (&rollback, &rollback_text)] {
        std::fs::write(path, text).map_err(|source| ApplyError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(Saved {
        previous,
        rollback,
        rollback_text,
        full,
    })
}

/// A detached process that loads the rollback file after a delay.
#[derive(Debug)]
pub struct Timer {
    child: Child,
}

impl Timer {
    /// Starts the timer in a session of its own.
    pub fn start(nft: &Nft, rollback: &Path, after: Duration) -> Result<Timer, ApplyError> {
        let secs = after.as_secs().max(1).to_string();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep \"$0\" && exec \"$@\"", &secs])
            .args(&nft.program)
            .arg("-f")
            .arg(rollback)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        crate::sys::new_session(&mut cmd);
        let child = cmd.spawn().map_err(|source| ApplyError::Spawn {
            command: format!("sh -c 'sleep {secs} && nft -f {}'", rollback.display()),
            source,
        })?;
        Ok(Timer { child })
    }

    /// The timer's process id (also its process group).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the timer. False when it had already fired.
    pub fn cancel(mut self) -> bool {
        if let Ok(Some(_)) = self.child.try_wait() {
            return false;
        }
        crate::sys::terminate_group(self.child.id());
        let _ = self.child.wait();
        true
    }

    /// Waits for the timer to fire (for tests and for callers that cannot confirm).
    pub fn wait(mut self) -> bool {
        self.child.wait().map(|s| s.success()).unwrap_or(false)
    }
}

/// Applies `ruleset`: checks it, saves the current ruleset in `dir`, starts the rollback
/// timer, loads the new ruleset, then asks `confirm` (which gets the time left and
/// returns true to keep it). Without confirmation the previous ruleset is restored at
/// once; if the caller dies, the timer restores it. A `timeout` of zero keeps the
/// ruleset without asking.
pub fn apply(
    nft: &Nft,
    ruleset: &str,
    dir: &Path,
    timeout: Duration,
    confirm: &mut dyn FnMut(Duration) -> bool,
) -> Result<(Outcome, Saved), ApplyError> {
    nft.check(ruleset)?;
    let saved = save(nft, dir)?;
    if timeout.is_zero() {
        nft.load(ruleset)?;
        return Ok((Outcome::Kept, saved));
    }
    let timer = Timer::start(nft, &saved.rollback, timeout)?;
    if let Err(e) = nft.load(ruleset) {
        timer.cancel();
        return Err(e);
    }
    if confirm(timeout) {
        if timer.cancel() {
            Ok((Outcome::Kept, saved))
        } else {
            Err(ApplyError::TooLate {
                saved: saved.previous.clone(),
            })
        }
    } else {
        let fired = !timer.cancel();
        if !fired {
            nft.load(&saved.rollback_text)?;
        }
        Ok((Outcome::RolledBack, saved))
    }
}
