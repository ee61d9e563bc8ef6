//! The agent's measurements: what the instance's user is doing, read from `/proc`,
//! `/dev/pts`, Jupyter's runtime files and NVML. I/O at the edge; the judgement is
//! [`crate::engine::activity::judge`].
//!
//! - [`procs`]: one pass over `/proc`: CPU per process (user, containers) and per core.
//! - [`pty`]: the user's pseudo-terminals and their last input.
//! - [`vscode`]: connected VS Code windows.
//! - [`jupyter`]: every running Jupyter server's kernels, terminals and sessions.
//! - [`gpu`]: NVML behind [`gpu::GpuProbe`].

pub mod gpu;
pub mod jupyter;
pub mod procs;
pub mod pty;
pub mod vscode;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::engine::activity::{SignalsSeen, Snapshot, Thresholds, judge};

/// What `lightsout agent observe` looks at.
#[derive(Debug, Clone)]
pub struct ObserveOptions {
    /// The instance's user (`azureuser`).
    pub user: String,
    /// How long CPU and GPU are sampled.
    pub window: Duration,
    /// `$JUPYTER_RUNTIME_DIR` override; else the user's `~/.local/share/jupyter/runtime`.
    pub jupyter_runtime_dir: Option<PathBuf>,
}

/// One snapshot, measured over `options.window`, with the default thresholds.
pub async fn observe(options: &ObserveOptions) -> anyhow::Result<Snapshot> {
    let mut collector = Collector::new(options.clone(), Thresholds::default())?;
    collector.observe().await
}

/// The instance's user as `/etc/passwd` names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub home: PathBuf,
}

impl User {
    /// Looks `name` up in `/etc/passwd`.
    pub fn lookup(name: &str) -> anyhow::Result<User> {
        let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
        Self::from_passwd(&passwd, name)
            .with_context(|| format!("user {name:?} is not in /etc/passwd (the instance's user; choose another with --user or `user` in agent.toml)"))
    }

    fn from_passwd(passwd: &str, name: &str) -> Option<User> {
        passwd.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 || f[0] != name {
                return None;
            }
            Some(User {
                name: name.to_owned(),
                uid: f[2].parse().ok()?,
                home: PathBuf::from(f[5]),
            })
        })
    }
}

/// Observes again and again (the agent's loop): keeps the GPU library loaded, the HTTP
/// client, and the latest activity seen, so a quiet observation still says when the user
/// last worked.
pub struct Collector {
    options: ObserveOptions,
    thresholds: Thresholds,
    user: User,
    gpu: Box<dyn gpu::GpuProbe>,
    jupyter: jupyter::JupyterPoller,
    last_activity: Option<jiff::Timestamp>,
}

impl Collector {
    /// A collector for `options.user` with the real NVML probe.
    pub fn new(options: ObserveOptions, thresholds: Thresholds) -> anyhow::Result<Collector> {
        Self::with_gpu(options, thresholds, Box::new(gpu::Nvml::load()))
    }

    /// A collector with this GPU probe (tests give a fake).
    pub fn with_gpu(
        options: ObserveOptions,
        thresholds: Thresholds,
        gpu: Box<dyn gpu::GpuProbe>,
    ) -> anyhow::Result<Collector> {
        let user = User::lookup(&options.user)?;
        Ok(Collector {
            options,
            thresholds,
            user,
            gpu,
            jupyter: jupyter::JupyterPoller::new()?,
            last_activity: None,
        })
    }

    /// Measures over the window (CPU and GPU at both ends; Jupyter meanwhile, each server
    /// bounded by its own timeout), then judges at the window's end.
    pub async fn observe(&mut self) -> anyhow::Result<Snapshot> {
        let started = crate::clock::now();
        let before = procs::scan()?;
        let gpu_before = self.gpu.sample();
        let runtime_dir = self
            .options
            .jupyter_runtime_dir
            .clone()
            .unwrap_or_else(|| self.user.home.join(".local/share/jupyter/runtime"));
        let (jupyter, ()) = tokio::join!(
            self.jupyter.poll(&runtime_dir),
            tokio::time::sleep(self.options.window)
        );
        let after = procs::scan()?;
        let gpu_after = self.gpu.sample();
        let now = crate::clock::now();

        let elapsed = now.duration_since(started).as_secs_f64().max(0.001);
        let usage = procs::usage(&before, &after, elapsed, self.user.uid);
        let signals = SignalsSeen {
            window_secs: elapsed,
            cpu: usage.cpu,
            terminals: pty::terminals(&after, self.user.uid),
            jupyter,
            gpu: gpu::busiest(gpu_before, gpu_after),
            vscode: vscode::seen(&after, &self.user),
            containers: usage.containers,
        };
        let judgement = judge(&signals, &self.thresholds, now);
        self.last_activity = self.last_activity.max(judgement.last_activity);
        Ok(Snapshot {
            at: now,
            busy: judgement.busy,
            reasons: judgement.reasons,
            last_activity: self.last_activity,
            signals,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::engine::activity::{GpuDevice, GpuSeen};
    use crate::engine::heartbeat::BusyReason;

    /// A GPU busy for the first observation (two readings), idle after.
    struct FadingGpu(Mutex<u32>);

    impl gpu::GpuProbe for FadingGpu {
        fn sample(&self) -> GpuSeen {
            let mut n = self.0.lock().unwrap();
            *n += 1;
            GpuSeen::Devices {
                devices: vec![GpuDevice {
                    index: 0,
                    name: "fake".into(),
                    util_pct: if *n <= 2 { 80.0 } else { 0.0 },
                    memory_used_bytes: 1 << 30,
                    memory_total_bytes: 16 << 30,
                }],
            }
        }
    }

    #[tokio::test]
    async fn a_collector_carries_the_latest_activity_into_quiet_observations() {
        let options = ObserveOptions {
            user: "root".into(),
            window: Duration::from_millis(200),
            jupyter_runtime_dir: Some(PathBuf::from("/nonexistent/lightsout-test")),
        };
        let gpu = Box::new(FadingGpu(Mutex::new(0)));
        let mut c = Collector::with_gpu(options, Thresholds::default(), gpu).unwrap();
        let first = c.observe().await.unwrap();
        assert!(first.reasons.contains(&BusyReason::Gpu), "{first:?}");
        assert_eq!(first.last_activity, Some(first.at));
        let second = c.observe().await.unwrap();
        assert!(!second.reasons.contains(&BusyReason::Gpu), "{second:?}");
        // Root's own CPU on this shared machine may be busy now; either way, never earlier.
        assert!(second.last_activity >= Some(first.at));
    }

    #[test]
    fn passwd_lines_give_uid_and_home() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nazureuser:x:1000:1000:,,,:/home/azureuser:/bin/bash\nbroken\n";
        assert_eq!(
            User::from_passwd(passwd, "azureuser"),
            Some(User {
                name: "azureuser".into(),
                uid: 1000,
                home: "/home/azureuser".into()
            })
        );
        assert_eq!(User::from_passwd(passwd, "azure"), None);
        assert_eq!(User::from_passwd(passwd, "broken"), None);
    }
}
