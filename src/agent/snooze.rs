//! `lightsout snooze`. STUB (issue 15).

use std::time::Duration;

/// What the user asks for.
#[derive(Debug, Clone)]
pub enum SnoozeRequest {
    /// Keep the instance up this long from now.
    For {
        duration: Duration,
        reason: Option<String>,
    },
    /// End the snooze.
    Off,
}

/// Hands the request to the local agent.
pub async fn request(_request: &SnoozeRequest) -> anyhow::Result<()> {
    anyhow::bail!("lightsout snooze: not built yet")
}
