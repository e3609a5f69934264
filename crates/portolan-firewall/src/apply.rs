//! Applying an nftables ruleset safely: checked first, portolan's own table saved, loaded
//! atomically, and rolled back by a detached timer unless confirmed in time. The timer
//! runs in its own session, so it still rolls back when the SSH session that started it
//! is cut (which is exactly when it is needed).
//!
//! A rollback touches `table inet portolan` and nothing else: it deletes that table and
//! re-creates the saved copy when there was one, so tables other tools add meanwhile
//! (fail2ban, docker) survive it. It is idempotent, and exactly one party runs it: the
//! timer and the caller each claim it by renaming a token file, and only the one whose
//! rename succeeds goes on. The timer counts only once the new ruleset is in (the caller
//! arms it), so a slow load can never be undone by a timer that fired first.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
        "the rollback timer fired before the confirmation arrived: portolan's previous table is back (saved in {saved})"
    )]
    TooLate { saved: PathBuf },
    #[error("no nft command given (the program list is empty)")]
    NoProgram,
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
    fn command(&self) -> Result<Command, ApplyError> {
        let (first, rest) = self.program.split_first().ok_or(ApplyError::NoProgram)?;
        let mut c = Command::new(first);
        c.args(rest);
        Ok(c)
    }

    fn label(&self, args: &[&str]) -> String {
        let mut all: Vec<&str> = self.program.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        all.join(" ")
    }

    fn run(&self, args: &[&str], input: Option<&str>) -> Result<String, ApplyError> {
        let command = self.label(args);
        let mut child = self
            .command()?
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

    /// portolan's table as `nft list ruleset` shows it, or `None` when there is none.
    /// One listing, so the answer is one state of the ruleset.
    pub fn list_own(&self) -> Result<Option<String>, ApplyError> {
        Ok(own_table(&self.list()?))
    }
}

/// Cuts `table inet portolan { ... }` out of a listing: nft starts each table at the
/// beginning of a line and closes it with a `}` alone on its line.
pub fn own_table(listing: &str) -> Option<String> {
    let head = format!("table {TABLE} {{");
    let mut out = String::new();
    let mut inside = false;
    for line in listing.lines() {
        if !inside && line.trim_end() == head {
            inside = true;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
            if line.trim_end() == "}" {
                return Some(out);
            }
        }
    }
    None
}

/// What happened to the new ruleset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Confirmed: the new ruleset stays.
    Kept,
    /// Not confirmed: portolan's previous table is back.
    RolledBack,
}

/// Where portolan's previous table was saved, and how it is restored.
#[derive(Debug, Clone)]
pub struct Saved {
    /// `nft list table inet portolan` as it was (a comment when there was none).
    pub previous: PathBuf,
    /// What the rollback loads: the removal of portolan's table, then its saved copy.
    pub rollback: PathBuf,
    pub rollback_text: String,
    /// True when a `table inet portolan` existed before.
    pub had_table: bool,
    /// True when the rollback brings portolan's table back exactly as it was (or, when
    /// there was none, removes it); false when the saved copy would not load back, so
    /// the rollback only removes the table.
    pub exact: bool,
}

/// A name no other apply of this process or another uses.
fn unique(dir: &Path, what: &str) -> PathBuf {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    dir.join(format!(
        "portolan-{what}-{}-{n}-{nanos}.nft",
        std::process::id()
    ))
}

fn write(path: &Path, text: &str) -> Result<(), ApplyError> {
    std::fs::write(path, text).map_err(|source| ApplyError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The rollback of portolan's table: delete it (whether or not it exists), then
/// re-create `previous` when given. Other tables are never named.
pub fn rollback_text(previous: Option<&str>) -> String {
    let mut text = format!("table {TABLE}\ndelete table {TABLE}\n");
    if let Some(p) = previous {
        text.push_str(p);
        if !p.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}

/// Saves portolan's current table in `dir` and prepares its rollback.
pub fn save(nft: &Nft, dir: &Path) -> Result<Saved, ApplyError> {
    let own = nft.list_own()?;
    let previous = unique(dir, "previous");
    let rollback = unique(dir, "rollback");
    let full = rollback_text(own.as_deref());
    let (rollback_text, exact) = match nft.check(&full) {
        Ok(()) => (full, true),
        Err(_) => (rollback_text(None), own.is_none()),
    };
    let previous_text = own
        .clone()
        .unwrap_or_else(|| format!("# there was no table {TABLE}\n"));
    write(&previous, &previous_text)?;
    write(&rollback, &rollback_text)?;
    Ok(Saved {
        previous,
        rollback,
        rollback_text,
        had_table: own.is_some(),
        exact,
    })
}

/// How a timer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Stopped before it rolled anything back.
    Cancelled,
    /// It had claimed the rollback and ran it; true when nft succeeded.
    Fired(bool),
}

/// A detached process that loads the rollback file once armed and the delay is over,
/// unless the caller claims the rollback first.
///
/// The protocol: the timer waits for a line on its stdin (the caller's "armed", or the
/// end of the pipe when the caller died), sleeps the delay, then claims the rollback by
/// renaming the token file, and only then runs nft. [`Timer::cancel`] claims it the same
/// way, so exactly one of them wins, whatever the timing.
#[derive(Debug)]
pub struct Timer {
    child: Child,
    stdin: Option<ChildStdin>,
    token: PathBuf,
}

impl Timer {
    /// Starts the timer in a session of its own. It does not count until [`Timer::arm`]
    /// (or until this process is gone).
    pub fn start(nft: &Nft, rollback: &Path, after: Duration) -> Result<Timer, ApplyError> {
        if nft.program.is_empty() {
            return Err(ApplyError::NoProgram);
        }
        let secs = after.as_secs().max(1).to_string();
        let dir = rollback.parent().unwrap_or(Path::new("."));
        let token = unique(dir, "timer");
        write(&token, "a portolan rollback timer is pending\n")?;
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "read -r armed; sleep \"$0\"; mv -- \"$1\" \"$1.fired\" 2>/dev/null || exit 3; shift; exec \"$@\"",
            &secs,
        ])
        .arg(&token)
        .args(&nft.program)
        .arg("-f")
        .arg(rollback)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        crate::sys::new_session(&mut cmd);
        let mut child = cmd.spawn().map_err(|source| ApplyError::Spawn {
            command: format!("sh -c 'sleep {secs} && nft -f {}'", rollback.display()),
            source,
        })?;
        let stdin = child.stdin.take();
        Ok(Timer {
            child,
            stdin,
            token,
        })
    }

    /// The timer's process id (also its process group).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts the countdown (call it once the new ruleset is in).
    pub fn arm(&mut self) {
        if let Some(mut w) = self.stdin.take() {
            // If the timer is already gone the write fails; cancel and wait tell.
            let _ = w.write_all(b"armed\n");
        }
    }

    /// Stops the timer, unless it has claimed the rollback already: then waits for its
    /// rollback to finish.
    pub fn cancel(mut self) -> Stopped {
        let claimed = self.token.with_extension("nft.cancelled");
        if std::fs::rename(&self.token, &claimed).is_ok() {
            crate::sys::terminate_group(self.child.id());
            let _ = self.child.wait();
            let _ = std::fs::remove_file(&claimed);
            return Stopped::Cancelled;
        }
        self.stdin = None;
        let ok = self.child.wait().is_ok_and(|s| s.success());
        let _ = std::fs::remove_file(self.token.with_extension("nft.fired"));
        Stopped::Fired(ok)
    }

    /// Waits, at most `limit`, for the timer to fire: `Some(true)` when it rolled back,
    /// `Some(false)` when it ended without (nft failed, or it was cancelled), `None` when
    /// it is still pending after `limit` (it is then stopped).
    pub fn wait(mut self, limit: Duration) -> Option<bool> {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    let _ = std::fs::remove_file(self.token.with_extension("nft.fired"));
                    return Some(status.success());
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = self.cancel();
                    return None;
                }
            }
        }
    }
}

/// Applies `ruleset`: checks it, saves portolan's current table in `dir`, starts the
/// rollback timer, loads the new ruleset, arms the timer, then asks `confirm` (which gets
/// the time left and returns true to keep it). Without confirmation portolan's previous
/// table is restored at once; if the caller dies, the timer restores it. A `timeout` of
/// zero keeps the ruleset without asking.
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
    let mut timer = Timer::start(nft, &saved.rollback, timeout)?;
    if let Err(e) = nft.load(ruleset) {
        // Nothing was loaded (nft -f is one transaction); a timer that fired meanwhile
        // restored the same table.
        timer.cancel();
        return Err(e);
    }
    timer.arm();
    if confirm(timeout) {
        match timer.cancel() {
            Stopped::Cancelled => Ok((Outcome::Kept, saved)),
            Stopped::Fired(_) => Err(ApplyError::TooLate {
                saved: saved.previous.clone(),
            }),
        }
    } else {
        match timer.cancel() {
            Stopped::Cancelled => nft.load(&saved.rollback_text)?,
            Stopped::Fired(true) => {}
            // The timer's nft failed: try once more here, and report the error.
            Stopped::Fired(false) => nft.load(&saved.rollback_text)?,
        }
        Ok((Outcome::RolledBack, saved))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_table_is_cut_from_a_listing() {
        let listing = "table ip keepme {\n\tchain c {\n\t}\n}\ntable inet portolan {\n\tchain input {\n\t\ttcp dport 22 accept\n\t}\n}\ntable inet other {\n}\n";
        assert_eq!(
            own_table(listing).unwrap(),
            "table inet portolan {\n\tchain input {\n\t\ttcp dport 22 accept\n\t}\n}\n"
        );
        assert_eq!(own_table("table inet portolanx {\n}\n"), None);
        assert_eq!(own_table(""), None);
    }

    #[test]
    fn the_rollback_names_portolans_table_only() {
        let text = rollback_text(Some("table inet portolan {\n}"));
        assert_eq!(
            text,
            "table inet portolan\ndelete table inet portolan\ntable inet portolan {\n}\n"
        );
        assert!(!rollback_text(None).contains("flush"));
    }
}
