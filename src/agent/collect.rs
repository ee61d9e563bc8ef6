//! The agent's measurements. STUB (issue 15).

use std::path::PathBuf;
use std::time::Duration;

use crate::engine::activity::Snapshot;

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

/// One snapshot, measured over `options.window`.
pub async fn observe(_options: &ObserveOptions) -> anyhow::Result<Snapshot> {
    anyhow::bail!("lightsout agent observe: not built yet")
}
