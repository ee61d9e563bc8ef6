//! The agent's loop. STUB (issue 15).

use std::path::Path;

/// `lightsout agent run --config FILE`.
pub async fn run(_config: &Path) -> anyhow::Result<()> {
    anyhow::bail!("lightsout agent run: not built yet")
}
