//! The agent's judgement, pure: from what it measured on the instance (CPU per process and
//! core, terminal input times, Jupyter kernels, GPUs, VS Code, containers) and `now`, whether
//! the instance is in use, why, and since when.
//!
//! `Snapshot` is the contract (CONTRACT section 0: `lightsout agent observe --json`). The
//! measuring is `agent::collect`; everything here takes `now` and does no I/O.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::engine::heartbeat::BusyReason;

/// The lines between "in use" and "not in use" (AGENT.md section 5.2; every number is a
/// knob of the agent's configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// The user's processes together use at least this share of ONE core (percent), so a
    /// single-threaded job on a many-core box counts (a machine average would hide it).
    pub cpu_core_pct: f64,
    /// One container uses at least this share of one core (percent), whoever runs it.
    pub container_core_pct: f64,
    /// One GPU computes at least this share of the time (percent). Memory alone (a notebook
    /// holding a model) is not use.
    pub gpu_util_pct: f64,
    /// Input on a terminal at most this long ago is use. The terminal's access time moves in
    /// 8-second steps (the kernel hides finer timing), so keep it well above that.
    pub terminal_input_window: Duration,
    /// A connected VS Code window counts by itself, as Azure's own idle shutdown counts it;
    /// by default it counts only together with terminal input or CPU (an open, forgotten
    /// window is not work).
    pub vscode_counts_alone: bool,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            cpu_core_pct: 50.0,
            container_core_pct: 50.0,
            gpu_util_pct: 5.0,
            terminal_input_window: Duration::from_secs(15 * 60),
            vscode_counts_alone: false,
        }
    }
}

/// What the agent measured, per signal (the `signals` object of a snapshot).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SignalsSeen {
    /// How long CPU was sampled, in seconds.
    pub window_secs: f64,
    pub cpu: CpuSeen,
    /// Every pseudo-terminal a process of the user holds.
    pub terminals: Vec<TerminalSeen>,
    pub jupyter: JupyterSeen,
    pub gpu: GpuSeen,
    pub vscode: VscodeSeen,
    /// Containers (docker, containerd) that used CPU in the window.
    pub containers: Vec<ContainerSeen>,
}

/// CPU over the window, in percent of one core.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuSeen {
    /// Each core's busy share (`/proc/stat` `cpuN` rows).
    pub cores_pct: Vec<f64>,
    /// All the user's processes together.
    pub user_total_pct: f64,
    /// The user's busiest processes (at most a few dozen), busiest first.
    pub processes: Vec<ProcessCpu>,
}

/// One process's CPU over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessCpu {
    pub pid: u32,
    /// The kernel's short name (`comm`), not the command line (which may hold secrets).
    pub name: String,
    pub core_pct: f64,
}

/// One pseudo-terminal (`/dev/pts/N`): SSH, tmux, screen, a Jupyter or VS Code terminal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TerminalSeen {
    /// `pts/N`.
    pub tty: String,
    /// The device's access time: the last input read from it (8-second steps).
    pub last_input: Option<Timestamp>,
    /// How many of the user's processes hold it.
    pub processes: u32,
}

/// The Jupyter servers found through their runtime files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JupyterSeen {
    pub servers: Vec<JupyterServerSeen>,
    /// Runtime files skipped: unreadable, half-written, not local, or the server did not
    /// answer in time.
    pub skipped: u32,
}

/// One Jupyter server's answers (never its token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JupyterServerSeen {
    /// The loopback URL polled.
    pub url: String,
    pub kernels: Vec<KernelSeen>,
    pub terminals: Vec<JupyterTerminalSeen>,
    pub sessions: u32,
}

/// One kernel (`/api/kernels`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelSeen {
    pub id: String,
    pub name: String,
    /// `idle`, `busy`, `starting`, …
    pub execution_state: String,
    pub last_activity: Option<Timestamp>,
    pub connections: u32,
}

/// One Jupyter terminal (`/api/terminals`); its input shows on its pty too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JupyterTerminalSeen {
    pub name: String,
    pub last_activity: Option<Timestamp>,
}

/// The GPUs, through NVML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum GpuSeen {
    /// No NVML (no NVIDIA driver: a CPU instance), or it failed: no GPU signal, which is
    /// neither busy nor an error.
    Unavailable {
        reason: String,
    },
    Devices {
        devices: Vec<GpuDevice>,
    },
}

impl Default for GpuSeen {
    fn default() -> Self {
        GpuSeen::Unavailable {
            reason: "not measured".into(),
        }
    }
}

/// One GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuDevice {
    pub index: u32,
    pub name: String,
    /// Share of the sample period during which a kernel ran (the highest reading of the window).
    pub util_pct: f64,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
}

/// VS Code windows connected to the user's `~/.vscode-server`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VscodeSeen {
    /// Extension host processes: one per connected window.
    pub windows: u32,
}

/// One container's CPU over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSeen {
    /// The container id's first 12 characters (as `docker ps` shows it).
    pub id: String,
    pub core_pct: f64,
    pub processes: u32,
}

/// One observation: `{"at", "busy", "reasons": [...], "last_activity", "signals": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub at: Timestamp,
    pub busy: bool,
    pub reasons: Vec<BusyReason>,
    pub last_activity: Option<Timestamp>,
    pub signals: SignalsSeen,
}

/// What [`judge`] concluded.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub busy: bool,
    /// Sorted, each once; empty when not busy.
    pub reasons: Vec<BusyReason>,
    /// The latest moment any signal showed use (`now` for use seen now); never after `now`.
    pub last_activity: Option<Timestamp>,
}

/// Whether what was `seen` is use, why, and the latest moment of use.
pub fn judge(seen: &SignalsSeen, t: &Thresholds, now: Timestamp) -> Judgement {
    let mut reasons = BTreeSet::new();
    let mut last: Option<Timestamp> = None;
    // A clock that disagrees (a future time) cannot push activity past now.
    let mut saw = |at: Timestamp| last = last.max(Some(at.min(now)));

    for kernel in seen.jupyter.servers.iter().flat_map(|s| &s.kernels) {
        // A silent long cell freezes last_activity while it runs (AGENT.md 1.3): the state
        // is the evidence, not the time.
        if matches!(kernel.execution_state.as_str(), "busy" | "starting") {
            reasons.insert(BusyReason::KernelBusy);
            saw(now);
        } else if let Some(at) = kernel.last_activity {
            saw(at);
        }
    }
    let window = jiff::SignedDuration::try_from(t.terminal_input_window)
        .unwrap_or(jiff::SignedDuration::MAX);
    for term in &seen.terminals {
        if let Some(at) = term.last_input {
            saw(at);
            if now.duration_since(at) <= window {
                reasons.insert(BusyReason::TerminalInput);
            }
        }
    }
    if seen.cpu.user_total_pct >= t.cpu_core_pct {
        reasons.insert(BusyReason::Cpu);
        saw(now);
    }
    if seen
        .containers
        .iter()
        .any(|c| c.core_pct >= t.container_core_pct)
    {
        reasons.insert(BusyReason::Container);
        saw(now);
    }
    if let GpuSeen::Devices { devices } = &seen.gpu
        && devices.iter().any(|d| d.util_pct >= t.gpu_util_pct)
    {
        reasons.insert(BusyReason::Gpu);
        saw(now);
    }
    let worked = reasons.contains(&BusyReason::TerminalInput) || reasons.contains(&BusyReason::Cpu);
    if seen.vscode.windows > 0 && (worked || t.vscode_counts_alone) {
        reasons.insert(BusyReason::Vscode);
        saw(now);
    }
    Judgement {
        busy: !reasons.is_empty(),
        reasons: reasons.into_iter().collect(),
        last_activity: last,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const NOW: &str = "2026-12-07T10:00:00Z";

    fn kernel(state: &str, last: Option<&str>) -> KernelSeen {
        KernelSeen {
            id: "k".into(),
            name: "python3".into(),
            execution_state: state.into(),
            last_activity: last.map(at),
            connections: 0,
        }
    }

    fn with_kernels(kernels: Vec<KernelSeen>) -> SignalsSeen {
        SignalsSeen {
            jupyter: JupyterSeen {
                servers: vec![JupyterServerSeen {
                    url: "http://127.0.0.1:8888/".into(),
                    kernels,
                    terminals: vec![],
                    sessions: 1,
                }],
                skipped: 0,
            },
            ..SignalsSeen::default()
        }
    }

    fn terminal(last_input: &str) -> TerminalSeen {
        TerminalSeen {
            tty: "pts/0".into(),
            last_input: Some(at(last_input)),
            processes: 1,
        }
    }

    fn gpu(util: f64, mem: u64) -> GpuSeen {
        GpuSeen::Devices {
            devices: vec![GpuDevice {
                index: 0,
                name: "fake".into(),
                util_pct: util,
                memory_used_bytes: mem,
                memory_total_bytes: 16 << 30,
            }],
        }
    }

    #[test]
    fn nothing_seen_is_not_busy_and_has_no_activity() {
        let j = judge(&SignalsSeen::default(), &Thresholds::default(), at(NOW));
        assert_eq!(
            j,
            Judgement {
                busy: false,
                reasons: vec![],
                last_activity: None
            }
        );
    }

    #[test]
    fn kernel_busy_or_starting_is_busy_even_with_a_frozen_last_activity() {
        for state in ["busy", "starting"] {
            let seen = with_kernels(vec![kernel(state, Some("2026-12-07T08:00:00Z"))]);
            let j = judge(&seen, &Thresholds::default(), at(NOW));
            assert!(j.busy, "{state}");
            assert_eq!(j.reasons, vec![BusyReason::KernelBusy]);
            assert_eq!(j.last_activity, Some(at(NOW)));
        }
    }

    #[test]
    fn an_idle_kernel_is_not_busy_but_its_last_activity_counts() {
        let seen = with_kernels(vec![
            kernel("idle", Some("2026-12-07T09:50:00Z")),
            kernel("idle", Some("2026-12-07T09:20:00Z")),
            kernel("dead", None),
        ]);
        let j = judge(&seen, &Thresholds::default(), at(NOW));
        assert!(!j.busy);
        assert_eq!(j.last_activity, Some(at("2026-12-07T09:50:00Z")));
    }

    #[test]
    fn terminal_input_counts_inside_the_window_only() {
        let table = [
            ("2026-12-07T09:59:52Z", true),
            ("2026-12-07T09:45:00Z", true), // exactly 15 min: still in
            ("2026-12-07T09:44:59Z", false),
            ("2026-12-07T03:00:00Z", false),
        ];
        for (input, busy) in table {
            let seen = SignalsSeen {
                terminals: vec![terminal(input)],
                ..SignalsSeen::default()
            };
            let j = judge(&seen, &Thresholds::default(), at(NOW));
            assert_eq!(j.busy, busy, "{input}");
            assert_eq!(j.last_activity, Some(at(input)), "{input}");
        }
    }

    #[test]
    fn the_latest_terminal_wins_and_a_future_time_is_clamped_to_now() {
        let seen = SignalsSeen {
            terminals: vec![
                terminal("2026-12-07T05:00:00Z"),
                terminal("2026-12-07T07:00:00Z"),
            ],
            ..SignalsSeen::default()
        };
        let j = judge(&seen, &Thresholds::default(), at(NOW));
        assert_eq!(j.last_activity, Some(at("2026-12-07T07:00:00Z")));

        let seen = SignalsSeen {
            terminals: vec![terminal("2026-12-07T11:00:00Z")],
            ..SignalsSeen::default()
        };
        let j = judge(&seen, &Thresholds::default(), at(NOW));
        assert_eq!(j.last_activity, Some(at(NOW)));
        assert_eq!(j.reasons, vec![BusyReason::TerminalInput]);
    }

    #[test]
    fn cpu_counts_from_half_a_core_of_the_users_processes() {
        for (pct, busy) in [(0.0, false), (49.9, false), (50.0, true), (180.0, true)] {
            let seen = SignalsSeen {
                cpu: CpuSeen {
                    // A whole machine average would be low: the judgement ignores it.
                    cores_pct: vec![1.0; 64],
                    user_total_pct: pct,
                    processes: vec![],
                },
                ..SignalsSeen::default()
            };
            let j = judge(&seen, &Thresholds::default(), at(NOW));
            assert_eq!(j.busy, busy, "{pct}");
            assert_eq!(j.last_activity.is_some(), busy, "{pct}");
        }
    }

    #[test]
    fn a_busy_container_counts_whatever_its_user() {
        let seen = SignalsSeen {
            containers: vec![
                ContainerSeen {
                    id: "aaaaaaaaaaaa".into(),
                    core_pct: 2.0,
                    processes: 3,
                },
                ContainerSeen {
                    id: "bbbbbbbbbbbb".into(),
                    core_pct: 95.0,
                    processes: 1,
                },
            ],
            ..SignalsSeen::default()
        };
        let j = judge(&seen, &Thresholds::default(), at(NOW));
        assert_eq!(j.reasons, vec![BusyReason::Container]);
    }

    #[test]
    fn gpu_counts_by_utilisation_not_by_memory() {
        let table = [
            (gpu(0.0, 12 << 30), false), // a notebook holding a model
            (gpu(4.9, 0), false),
            (gpu(5.0, 0), true),
            (
                GpuSeen::Unavailable {
                    reason: "no NVML".into(),
                },
                false,
            ),
        ];
        for (g, busy) in table {
            let seen = SignalsSeen {
                gpu: g.clone(),
                ..SignalsSeen::default()
            };
            let j = judge(&seen, &Thresholds::default(), at(NOW));
            assert_eq!(j.busy, busy, "{g:?}");
        }
    }

    #[test]
    fn vscode_counts_with_input_or_cpu_or_under_the_policy_switch() {
        let window = VscodeSeen { windows: 1 };
        let alone = SignalsSeen {
            vscode: window.clone(),
            ..SignalsSeen::default()
        };
        assert!(!judge(&alone, &Thresholds::default(), at(NOW)).busy);

        let azure_like = Thresholds {
            vscode_counts_alone: true,
            ..Thresholds::default()
        };
        let j = judge(&alone, &azure_like, at(NOW));
        assert_eq!(j.reasons, vec![BusyReason::Vscode]);
        assert_eq!(j.last_activity, Some(at(NOW)));

        let typing = SignalsSeen {
            vscode: window,
            terminals: vec![terminal("2026-12-07T09:58:00Z")],
            ..SignalsSeen::default()
        };
        let j = judge(&typing, &Thresholds::default(), at(NOW));
        assert_eq!(
            j.reasons,
            vec![BusyReason::TerminalInput, BusyReason::Vscode]
        );
    }

    #[test]
    fn reasons_are_sorted_and_unique() {
        let mut seen = with_kernels(vec![kernel("busy", None), kernel("busy", None)]);
        seen.cpu.user_total_pct = 100.0;
        seen.gpu = gpu(90.0, 1);
        let j = judge(&seen, &Thresholds::default(), at(NOW));
        assert_eq!(
            j.reasons,
            vec![BusyReason::KernelBusy, BusyReason::Cpu, BusyReason::Gpu]
        );
    }

    #[test]
    fn the_snapshot_json_has_the_contract_fields() {
        let snap = Snapshot {
            at: at(NOW),
            busy: false,
            reasons: vec![],
            last_activity: None,
            signals: SignalsSeen::default(),
        };
        let v = serde_json::to_value(&snap).unwrap();
        for key in ["at", "busy", "reasons", "last_activity", "signals"] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["signals"]["gpu"]["status"], "unavailable");
    }
}
