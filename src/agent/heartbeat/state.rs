//! What the agent must not forget across a restart or a storage outage: the snooze in force
//! and `last_activity`. One small JSON file in `state_dir`, written atomically (a temporary
//! file, fsync, rename), so a crash leaves the old or the new state, never half of one.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::engine::activity::Snapshot;
use crate::engine::heartbeat::Snooze;

/// The file's name in `state_dir`.
pub const STATE_FILE: &str = "agent-state.json";
/// The format version this build writes.
const VERSION: u32 = 1;

/// The persisted state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    #[serde(default)]
    pub v: u32,
    /// The latest moment any signal showed use since the agent was installed.
    #[serde(default)]
    pub last_activity: Option<Timestamp>,
    #[serde(default)]
    pub snooze: Option<Snooze>,
}

impl Kept {
    /// Drops a snooze that has ended by `now`; true when one was dropped.
    pub fn expire(&mut self, now: Timestamp) -> bool {
        let ended = self.snooze.as_ref().is_some_and(|s| s.until <= now);
        if ended {
            self.snooze = None;
        }
        ended
    }
}

/// `last_activity` carried across observations: the latest of what was kept, what the
/// snapshot says, and the snapshot's own time when it is busy. Never later than the
/// snapshot (a clock step back must not leave a future activity that pins the instance).
pub fn carry(kept: Option<Timestamp>, snapshot: &Snapshot) -> Option<Timestamp> {
    let busy_now = snapshot.busy.then_some(snapshot.at);
    [kept, snapshot.last_activity, busy_now]
        .into_iter()
        .flatten()
        .map(|t| t.min(snapshot.at))
        .max()
}

/// Where the state lives.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(STATE_FILE)
}

/// Reads the kept state; a missing file is a fresh start, an unreadable one is reported
/// (the caller logs it and starts fresh: the state is a hint, losing it stops nothing).
pub fn load(state_dir: &Path) -> Result<Kept, String> {
    let file = path(state_dir);
    match std::fs::read(&file) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not a state file ({e})", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Kept::default()),
        Err(e) => Err(format!("{}: {e}", file.display())),
    }
}

/// Writes the kept state atomically (mode 0600: the snooze names a user).
pub fn save(state_dir: &Path, kept: &Kept) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(state_dir)?;
    let file = path(state_dir);
    let tmp = state_dir.join(format!("{STATE_FILE}.tmp"));
    let body = serde_json::to_vec(&Kept {
        v: VERSION,
        ..kept.clone()
    })
    .map_err(std::io::Error::other)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&body)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &file)?;
    // The rename is durable once the directory is.
    std::fs::File::open(state_dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::activity::SignalsSeen;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("ts")
    }

    fn snapshot(at: &str, busy: bool, last: Option<&str>) -> Snapshot {
        Snapshot {
            at: ts(at),
            busy,
            reasons: Vec::new(),
            last_activity: last.map(ts),
            signals: SignalsSeen::default(),
        }
    }

    #[test]
    fn last_activity_is_the_latest_use_seen_and_never_in_the_future() {
        let kept = Some(ts("2026-12-07T09:00:00Z"));
        // Idle now, older activity in the snapshot: the kept one stays.
        let s = snapshot("2026-12-07T10:00:00Z", false, Some("2026-12-07T08:00:00Z"));
        assert_eq!(carry(kept, &s), kept);
        // Busy now: now.
        let s = snapshot("2026-12-07T10:00:00Z", true, None);
        assert_eq!(carry(kept, &s), Some(ts("2026-12-07T10:00:00Z")));
        // A newer input time in the snapshot wins.
        let s = snapshot("2026-12-07T10:00:00Z", false, Some("2026-12-07T09:30:00Z"));
        assert_eq!(carry(kept, &s), Some(ts("2026-12-07T09:30:00Z")));
        // A kept time after the snapshot (clock stepped back) is cut to the snapshot.
        let s = snapshot("2026-12-07T08:00:00Z", false, None);
        assert_eq!(carry(kept, &s), Some(ts("2026-12-07T08:00:00Z")));
        assert_eq!(
            carry(None, &snapshot("2026-12-07T08:00:00Z", false, None)),
            None
        );
    }

    #[test]
    fn the_state_survives_a_restart_and_a_snooze_expires() {
        let dir = tempfile::tempdir().expect("tmp");
        assert_eq!(load(dir.path()), Ok(Kept::default()));
        let mut kept = Kept {
            v: 0,
            last_activity: Some(ts("2026-12-07T09:00:00Z")),
            snooze: Some(Snooze {
                at: ts("2026-12-07T09:00:00Z"),
                until: ts("2026-12-07T11:00:00Z"),
                reason: Some("x".into()),
                by: Some("azureuser".into()),
            }),
        };
        save(dir.path(), &kept).expect("save");
        let back = load(dir.path()).expect("load");
        assert_eq!(back.snooze, kept.snooze);
        assert_eq!(back.v, 1);
        assert!(!kept.expire(ts("2026-12-07T10:59:59Z")));
        assert!(kept.expire(ts("2026-12-07T11:00:00Z")));
        assert_eq!(kept.snooze, None);
        std::fs::write(path(dir.path()), b"{half").expect("write");
        assert!(load(dir.path()).is_err());
    }
}
