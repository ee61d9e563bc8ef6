//! GPUs through NVML, behind [`GpuProbe`] so tests give a fake. `nvml-wrapper` loads
//! `libnvidia-ml.so.1` at run time: on a CPU instance (no NVIDIA driver) loading fails and
//! the GPU signal is "unavailable", which is neither busy nor an error (AGENT.md 3.2).

use crate::engine::activity::{GpuDevice, GpuSeen};

/// One reading of every GPU.
pub trait GpuProbe: Send + Sync {
    fn sample(&self) -> GpuSeen;
}

/// The real probe: NVML, loaded once (or why it could not be).
pub struct Nvml(Result<nvml_wrapper::Nvml, String>);

impl Nvml {
    /// Loads the NVIDIA library; failing is an answer, not an error.
    pub fn load() -> Nvml {
        Nvml(nvml_wrapper::Nvml::init().map_err(|e| format!("NVML not loaded: {e}")))
    }
}

impl GpuProbe for Nvml {
    fn sample(&self) -> GpuSeen {
        let nvml = match &self.0 {
            Ok(nvml) => nvml,
            Err(reason) => {
                return GpuSeen::Unavailable {
                    reason: reason.clone(),
                };
            }
        };
        let read = || -> Result<Vec<GpuDevice>, nvml_wrapper::error::NvmlError> {
            (0..nvml.device_count()?)
                .map(|index| {
                    let d = nvml.device_by_index(index)?;
                    let memory = d.memory_info()?;
                    Ok(GpuDevice {
                        index,
                        name: d.name().unwrap_or_default(),
                        // Percent of the last sample period (1/6 s to 1 s) in which a
                        // kernel ran.
                        util_pct: f64::from(d.utilization_rates()?.gpu),
                        memory_used_bytes: memory.used,
                        memory_total_bytes: memory.total,
                    })
                })
                .collect()
        };
        match read() {
            Ok(devices) => GpuSeen::Devices { devices },
            Err(e) => GpuSeen::Unavailable {
                reason: format!("NVML: {e}"),
            },
        }
    }
}

/// The window's reading from one at each end: per device the higher utilisation (a job
/// pausing at one end still shows), memory as at the end.
pub fn busiest(before: GpuSeen, after: GpuSeen) -> GpuSeen {
    match (before, after) {
        (GpuSeen::Devices { devices: first }, GpuSeen::Devices { mut devices }) => {
            for d in &mut devices {
                if let Some(f) = first.iter().find(|f| f.index == d.index) {
                    d.util_pct = d.util_pct.max(f.util_pct);
                }
            }
            GpuSeen::Devices { devices }
        }
        (_, after) => after,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::engine::activity::{SignalsSeen, Thresholds, judge};
    use crate::engine::heartbeat::BusyReason;

    /// Readings in turn, then the last one again.
    struct Fake(Mutex<Vec<GpuSeen>>);

    impl GpuProbe for Fake {
        fn sample(&self) -> GpuSeen {
            let mut q = self.0.lock().unwrap();
            if q.len() > 1 {
                q.remove(0)
            } else {
                q[0].clone()
            }
        }
    }

    fn device(util: f64, used: u64) -> GpuSeen {
        GpuSeen::Devices {
            devices: vec![GpuDevice {
                index: 0,
                name: "Tesla T4".into(),
                util_pct: util,
                memory_used_bytes: used,
                memory_total_bytes: 16 << 30,
            }],
        }
    }

    fn verdict(probe: &dyn GpuProbe) -> Vec<BusyReason> {
        let seen = SignalsSeen {
            gpu: busiest(probe.sample(), probe.sample()),
            ..SignalsSeen::default()
        };
        let now = "2026-12-07T10:00:00Z".parse().unwrap();
        judge(&seen, &Thresholds::default(), now).reasons
    }

    #[test]
    fn a_computing_gpu_is_busy_and_one_holding_memory_is_not() {
        let computing = Fake(Mutex::new(vec![
            device(0.0, 1 << 30),
            device(37.0, 1 << 30),
        ]));
        assert_eq!(verdict(&computing), vec![BusyReason::Gpu]);
        let holding = Fake(Mutex::new(vec![device(0.0, 12 << 30)]));
        assert!(verdict(&holding).is_empty());
        let low = Fake(Mutex::new(vec![device(4.0, 0)]));
        assert!(verdict(&low).is_empty());
    }

    #[test]
    fn no_library_is_unavailable_not_busy() {
        // This test machine has no NVIDIA driver; should one appear, the probe reads devices.
        if std::path::Path::new("/dev/nvidiactl").exists() {
            return;
        }
        match Nvml::load().sample() {
            GpuSeen::Unavailable { reason } => assert!(reason.contains("NVML"), "{reason}"),
            other => panic!("expected unavailable, got {other:?}"),
        }
    }
}
