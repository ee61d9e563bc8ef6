//! One pass over `/proc`: every process's CPU ticks, owner and controlling terminal, and
//! each core's ticks. Two passes a window apart give CPU per process in percent of ONE core
//! (a single-threaded job on a 64-core box is 100%, not 1.6%) and per core.
//!
//! Plain text parsing, no crate: four fields of `/proc/<pid>/stat`, the owner of
//! `/proc/<pid>`, and `/proc/<pid>/cgroup` only for processes that used CPU.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt as _;

use anyhow::Context as _;

use crate::engine::activity::{ContainerSeen, CpuSeen, ProcessCpu};

/// Clock ticks per second of `/proc` times: USER_HZ, which the kernel ABI fixes at 100 on
/// x86-64 and arm64 whatever the kernel's own HZ (proc(5): "sysconf(_SC_CLK_TCK)").
const TICKS_PER_SEC: f64 = 100.0;
/// The most processes a snapshot lists (the busiest); the total counts them all.
const MAX_LISTED: usize = 20;

/// A process, told apart from a later one with the same pid by its start time.
pub type ProcKey = (u32, u64);

/// What one pass read about one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub comm: String,
    /// `tty_nr` of `/proc/<pid>/stat`: the controlling terminal's device number, 0 if none.
    pub tty_nr: u64,
    /// utime + stime, in ticks.
    pub ticks: u64,
    /// The owner of `/proc/<pid>` (the effective uid).
    pub uid: u32,
}

/// One pass over `/proc`.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub procs: HashMap<ProcKey, Proc>,
    /// Per core: (busy ticks, all ticks).
    pub cores: Vec<(u64, u64)>,
}

/// Reads every process (those that vanish meanwhile are skipped) and `/proc/stat`.
pub fn scan() -> anyhow::Result<Scan> {
    let mut scan = Scan {
        cores: cores(&std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?),
        ..Scan::default()
    };
    for entry in std::fs::read_dir("/proc")
        .context("listing /proc")?
        .flatten()
    {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may exit between the listing and the reads: skip it.
        let Ok(meta) = entry.metadata() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((key, mut proc)) = parse_stat(pid, &stat) {
            proc.uid = meta.uid();
            scan.procs.insert(key, proc);
        }
    }
    Ok(scan)
}

/// `/proc/<pid>/stat`: `pid (comm) state ppid … tty_nr … utime stime … starttime …`. The
/// name may hold spaces and parentheses, so fields count from the last `)`.
fn parse_stat(pid: u32, stat: &str) -> Option<(ProcKey, Proc)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3 (state): field n is rest[n - 3].
    let field = |n: usize| rest.get(n - 3)?.parse::<u64>().ok();
    let tty_nr = rest.get(4)?.parse::<i64>().ok()? as u64 & 0xffff_ffff;
    let ticks = field(14)? + field(15)?;
    let start = field(22)?;
    Some((
        (pid, start),
        Proc {
            pid,
            comm,
            tty_nr,
            ticks,
            uid: 0,
        },
    ))
}

/// `/proc/stat` `cpuN` rows: busy = all − idle − iowait.
fn cores(stat: &str) -> Vec<(u64, u64)> {
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal (guest is inside user already).
            let all: u64 = v.iter().take(8).sum();
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            (all.saturating_sub(idle), all)
        })
        .collect()
}

/// CPU over the window between two passes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    pub cpu: CpuSeen,
    pub containers: Vec<ContainerSeen>,
}

/// CPU of `uid`'s processes and of containers between `before` and `after`, `secs` apart.
/// Reads `/proc/<pid>/cgroup` of the processes that used CPU. The agent itself does not count
/// (run as the user, its own sampling would be the user's work).
pub fn usage(before: &Scan, after: &Scan, secs: f64, uid: u32) -> Usage {
    let pct = |ticks: u64| (ticks as f64 / TICKS_PER_SEC / secs * 100.0 * 10.0).round() / 10.0;
    let mut processes = Vec::new();
    let mut user_ticks = 0;
    let mut containers: HashMap<String, (u64, u32)> = HashMap::new();
    let me = std::process::id();
    for (key, proc) in after.procs.iter().filter(|(_, p)| p.pid != me) {
        // A process born inside the window counts from zero.
        let delta = proc
            .ticks
            .saturating_sub(before.procs.get(key).map_or(0, |p| p.ticks));
        if delta == 0 {
            continue;
        }
        if proc.uid == uid {
            user_ticks += delta;
            processes.push(ProcessCpu {
                pid: proc.pid,
                name: proc.comm.clone(),
                core_pct: pct(delta),
            });
        }
        if let Some(id) = std::fs::read_to_string(format!("/proc/{}/cgroup", proc.pid))
            .ok()
            .and_then(|c| container_id(&c))
        {
            let c = containers.entry(id).or_default();
            c.0 += delta;
            c.1 += 1;
        }
    }
    processes.sort_by(|a, b| b.core_pct.total_cmp(&a.core_pct).then(a.pid.cmp(&b.pid)));
    processes.truncate(MAX_LISTED);
    let cores_pct = after
        .cores
        .iter()
        .zip(&before.cores)
        .map(|(&(busy1, all1), &(busy0, all0))| {
            let all = all1.saturating_sub(all0).max(1) as f64;
            (busy1.saturating_sub(busy0) as f64 / all * 1000.0).round() / 10.0
        })
        .collect();
    let mut containers: Vec<ContainerSeen> = containers
        .into_iter()
        .map(|(id, (ticks, processes))| ContainerSeen {
            id,
            core_pct: pct(ticks),
            processes,
        })
        .collect();
    containers.sort_by(|a, b| b.core_pct.total_cmp(&a.core_pct).then(a.id.cmp(&b.id)));
    Usage {
        cpu: CpuSeen {
            cores_pct,
            user_total_pct: pct(user_ticks),
            processes,
        },
        containers,
    }
}

/// The container a process runs in, from its `/proc/<pid>/cgroup`: a 64-hex id in a path
/// that names docker or containerd (cgroup v2 `/system.slice/docker-<id>.scope`, v1
/// `/docker/<id>`, `cri-containerd-<id>.scope`). The container runtimes' own daemons
/// (`docker.service`, `containerd.service`) carry no id and are not containers.
pub fn container_id(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        if !(path.contains("docker") || path.contains("containerd")) {
            return None;
        }
        path.split('/').rev().find_map(|seg| {
            let seg = seg.strip_suffix(".scope").unwrap_or(seg);
            let id = seg.rsplit('-').next()?;
            (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| id[..12].to_owned())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_last_parenthesis() {
        let stat = "4242 (tmux: server (x)) S 1 4242 4242 34816 4242 4194560 100 0 0 0 250 50 3 1 20 0 1 0 987654 1000 10 18446744073709551615";
        let (key, p) = parse_stat(4242, stat).unwrap();
        assert_eq!(key, (4242, 987654));
        assert_eq!(p.comm, "tmux: server (x)");
        assert_eq!(p.tty_nr, 34816); // 136 << 8: /dev/pts/0
        assert_eq!(p.ticks, 300);
        assert_eq!(parse_stat(1, "1 (init"), None);
    }

    #[test]
    fn per_core_rows_skip_the_total() {
        let stat = "cpu  10 0 10 80 0 0 0 0 0 0\ncpu0 5 0 5 40 0 0 0 0 0 0\ncpu1 100 0 0 0 0 0 0 0 0 0\nintr 1\n";
        assert_eq!(cores(stat), vec![(10, 50), (100, 100)]);
    }

    #[test]
    fn container_ids_come_from_docker_and_containerd_paths_only() {
        let id = "0123456789abcdef".repeat(4);
        for cgroup in [
            format!("0::/system.slice/docker-{id}.scope\n"),
            format!("12:cpu,cpuacct:/docker/{id}\n0::/\n"),
            format!("0::/kubepods.slice/x.slice/cri-containerd-{id}.scope\n"),
        ] {
            assert_eq!(
                container_id(&cgroup).as_deref(),
                Some("0123456789ab"),
                "{cgroup}"
            );
        }
        for cgroup in [
            "0::/system.slice/containerd.service\n".to_owned(),
            "0::/system.slice/docker.service\n".to_owned(),
            format!("0::/user.slice/session-{id}.scope\n"),
            "0::/\n".to_owned(),
        ] {
            assert_eq!(container_id(&cgroup), None, "{cgroup}");
        }
    }

    fn proc(pid: u32, ticks: u64, uid: u32) -> Proc {
        Proc {
            pid,
            comm: format!("p{pid}"),
            tty_nr: 0,
            ticks,
            uid,
        }
    }

    #[test]
    fn usage_is_in_percent_of_one_core_for_the_users_processes() {
        let before = Scan {
            procs: HashMap::from([((10, 1), proc(10, 100, 1000)), ((11, 1), proc(11, 0, 0))]),
            cores: vec![(0, 0), (0, 0)],
        };
        let after = Scan {
            procs: HashMap::from([
                ((10, 1), proc(10, 300, 1000)), // 2 s of CPU in 2 s: a whole core
                ((11, 1), proc(11, 200, 0)),    // someone else's
                ((12, 5), proc(12, 40, 1000)),  // born inside the window
            ]),
            cores: vec![(200, 200), (20, 200)],
        };
        let u = usage(&before, &after, 2.0, 1000);
        assert_eq!(u.cpu.user_total_pct, 120.0);
        assert_eq!(u.cpu.cores_pct, vec![100.0, 10.0]);
        assert_eq!(
            u.cpu
                .processes
                .iter()
                .map(|p| (p.pid, p.core_pct))
                .collect::<Vec<_>>(),
            vec![(10, 100.0), (12, 20.0)]
        );
    }
}
