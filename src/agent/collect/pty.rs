//! The user's pseudo-terminals: every `/dev/pts/N` a process of the user holds, whatever its
//! parent (a detached tmux or screen server is re-parented to PID 1, so an "under sshd" rule
//! would miss it), and the last input read from each: the device's access time.

use std::collections::BTreeMap;

use crate::agent::collect::procs::Scan;
use crate::engine::activity::TerminalSeen;

/// The pts numbers of a `tty_nr` (devices.txt: majors 136-143 are the Unix98 pty slaves,
/// 256 minors each), or `None` for another terminal (a console, a serial line) or none.
pub fn pts_number(tty_nr: u64) -> Option<u64> {
    // Linux's new_encode_dev: minor bits 0-7 and 20-31, major bits 8-19.
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    (136..=143)
        .contains(&major)
        .then(|| (major - 136) * 256 + minor)
}

/// Each pty held by a process of `uid`, with its access time (read from `/dev/pts/N`).
pub fn terminals(scan: &Scan, uid: u32) -> Vec<TerminalSeen> {
    let mut held: BTreeMap<u64, u32> = BTreeMap::new();
    for p in scan.procs.values().filter(|p| p.uid == uid) {
        if let Some(n) = pts_number(p.tty_nr) {
            *held.entry(n).or_default() += 1;
        }
    }
    held.into_iter()
        .map(|(n, processes)| TerminalSeen {
            tty: format!("pts/{n}"),
            // The kernel moves a tty's atime when input is read from it, in 8-second steps
            // (tty_update_time); output moves only the mtime.
            last_input: std::fs::metadata(format!("/dev/pts/{n}"))
                .and_then(|m| m.accessed())
                .ok()
                .and_then(|t| jiff::Timestamp::try_from(t).ok()),
            processes,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pty_slaves_are_majors_136_to_143() {
        assert_eq!(pts_number(136 << 8), Some(0));
        assert_eq!(pts_number((136 << 8) | 5), Some(5));
        assert_eq!(pts_number(137 << 8), Some(256));
        // Minor 300 of major 136: low bits 44, high bits 256 << 12.
        assert_eq!(pts_number((136 << 8) | 44 | (1 << 20)), Some(300));
        assert_eq!(pts_number((4 << 8) | 1), None); // /dev/tty1
        assert_eq!(pts_number(0), None);
    }
}
