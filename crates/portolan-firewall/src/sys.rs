//! The two system calls the rollback timer needs, and the only unsafe code of the crate.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the command's process the leader of a new session when it starts, so that the
/// terminal, and the session portolan runs in, going away does not take it along.
pub fn new_session(cmd: &mut Command) {
    // SAFETY: the hook runs between fork and exec; setsid is async-signal-safe and
    // touches no memory of this process.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Sends SIGTERM to the process group `pgid` (a session leader's group is its pid).
pub fn terminate_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill has no memory-safety preconditions; the group is the timer's own.
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
}
