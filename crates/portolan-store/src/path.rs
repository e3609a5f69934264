//! Where the history database lives.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The system-wide database, used when running as root.
pub const SYSTEM_DB: &str = "/var/lib/portolan/history.db";

fn set(v: Option<&OsStr>) -> Option<&OsStr> {
    v.filter(|v| !v.is_empty())
}

/// The database path: `--db FILE`, else `$PORTOLAN_DB`, else [`SYSTEM_DB`] as root
/// (`uid` 0), else `$XDG_STATE_HOME/portolan/history.db`, else
/// `~/.local/state/portolan/history.db`. Empty values count as unset; a relative
/// `XDG_STATE_HOME` is ignored, as the XDG specification says. `None` when nothing
/// applies (not root, and neither `XDG_STATE_HOME` nor `HOME` is set).
///
/// ```
/// use std::path::{Path, PathBuf};
/// use portolan_store::db_path;
/// assert_eq!(db_path(None, None, 0, None, None), Some(PathBuf::from("/var/lib/portolan/history.db")));
/// let home = Some(std::ffi::OsStr::new("/home/ann"));
/// assert_eq!(db_path(None, None, 1000, None, home),
///            Some(PathBuf::from("/home/ann/.local/state/portolan/history.db")));
/// assert_eq!(db_path(Some(Path::new("h.db")), None, 0, None, None), Some(PathBuf::from("h.db")));
/// ```
pub fn db_path(
    flag: Option<&Path>,
    env: Option<&OsStr>,
    uid: u32,
    xdg_state_home: Option<&OsStr>,
    home: Option<&OsStr>,
) -> Option<PathBuf> {
    if let Some(f) = flag.filter(|f| !f.as_os_str().is_empty()) {
        return Some(f.to_path_buf());
    }
    if let Some(e) = set(env) {
        return Some(PathBuf::from(e));
    }
    if uid == 0 {
        return Some(PathBuf::from(SYSTEM_DB));
    }
    if let Some(x) = set(xdg_state_home).filter(|x| Path::new(x).is_absolute()) {
        return Some(Path::new(x).join("portolan/history.db"));
    }
    set(home).map(|h| Path::new(h).join(".local/state/portolan/history.db"))
}

/// [`db_path`] with this process's environment and user id.
pub fn default_db_path(flag: Option<&Path>) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid());
    db_path(
        flag,
        std::env::var_os("PORTOLAN_DB").as_deref(),
        uid,
        std::env::var_os("XDG_STATE_HOME").as_deref(),
        std::env::var_os("HOME").as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<&OsStr> {
        Some(OsStr::new(s))
    }

    #[test]
    fn resolution_order() {
        let f = Path::new("/tmp/x.db");
        assert_eq!(
            db_path(Some(f), os("/e.db"), 0, None, None).unwrap(),
            PathBuf::from("/tmp/x.db")
        );
        assert_eq!(
            db_path(None, os("/e.db"), 0, None, None).unwrap(),
            PathBuf::from("/e.db")
        );
        assert_eq!(
            db_path(None, os(""), 0, None, None).unwrap(),
            PathBuf::from(SYSTEM_DB)
        );
        assert_eq!(
            db_path(None, None, 1000, os("/s"), os("/h")).unwrap(),
            PathBuf::from("/s/portolan/history.db")
        );
        assert_eq!(
            db_path(None, None, 1000, os("rel"), os("/h")).unwrap(),
            PathBuf::from("/h/.local/state/portolan/history.db")
        );
        assert_eq!(db_path(None, None, 1000, None, None), None);
    }
}
