//! Sending start/stop/restart requests: at most `max_concurrent_actions` at once, within a
//! per-subscription write budget, with Azure's refusals told apart from failures.
//!
//! I/O through [`ArmClient`]. The decision of *what* to send is made elsewhere; this module
//! only sends and classifies. Following the long-running operation is the caller's choice
//! (in the background for the daemon, pass by pass in virtual time).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::azure::{Accepted, ArmClient, AzureError};
use crate::model::{Action, WorkspaceRef};

/// What became of one request.
#[derive(Debug)]
pub enum SendOutcome {
    /// Azure accepted it; the operation may still be running.
    Accepted(Accepted),
    /// Azure refused it for a reason that retrying will not fix (conflict, wrong state,
    /// permission, gone): recorded, not retried blindly.
    Refused(AzureError),
    /// It could not be delivered or Azure failed (after the client's own retries): worth
    /// another try later, with backoff.
    Failed(AzureError),
}

/// Classify an error of a start/stop/restart request.
pub fn classify(error: AzureError) -> SendOutcome {
    match error.status() {
        Some(400 | 403 | 404 | 409) => SendOutcome::Refused(error),
        _ => SendOutcome::Failed(error),
    }
}

/// A token bucket of write requests for one subscription. ARM's own bucket for writes
/// holds 200 and refills 10 a second per subscription and principal; staying at half of
/// that leaves room for people and other tools.
#[derive(Debug, Clone)]
pub struct WriteBudget {
    capacity: f64,
    tokens: f64,
    per_second: f64,
    updated: Instant,
}

/// Default bucket: bursts of 100 (a morning's starts go out at once), then 5 a second.
pub const WRITE_BURST: f64 = 100.0;
/// Refill rate of the default bucket, in writes per second.
pub const WRITE_REFILL_PER_SECOND: f64 = 5.0;
/// Below this many remaining writes reported by ARM, lightsout waits for the window to roll.
pub const ARM_WRITES_LOW_WATER: u64 = 10;

impl WriteBudget {
    /// A full bucket.
    pub fn new(capacity: f64, per_second: f64, now: Instant) -> WriteBudget {
        WriteBudget {
            capacity,
            tokens: capacity,
            per_second,
            updated: now,
        }
    }

    /// Take one token, or say how long until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.per_second,
            ))
        }
    }
}

/// Sends requests with the concurrency and budget limits.
#[derive(Clone)]
pub struct Actuator {
    client: ArmClient,
    slots: Arc<Semaphore>,
    /// `None`: no write budget (virtual time, where real-time buckets mean nothing).
    budgets: Option<Arc<Mutex<HashMap<String, WriteBudget>>>>,
}

impl Actuator {
    /// At most `max_concurrent` requests in flight; `limit_writes` keeps each
    /// subscription within the write budget.
    pub fn new(client: ArmClient, max_concurrent: usize, limit_writes: bool) -> Actuator {
        Actuator {
            client,
            slots: Arc::new(Semaphore::new(max_concurrent.max(1))),
            budgets: limit_writes.then(|| Arc::new(Mutex::new(HashMap::new()))),
        }
    }

    /// The client, for following operations.
    pub fn client(&self) -> &ArmClient {
        &self.client
    }

    /// Wait for a write token of the subscription (and for ARM's own counter to allow it).
    async fn wait_budget(&self, subscription: &str) {
        let Some(budgets) = &self.budgets else {
            return;
        };
        loop {
            let wait = {
                let mut budgets = budgets.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                budgets
                    .entry(subscription.to_owned())
                    .or_insert_with(|| WriteBudget::new(WRITE_BURST, WRITE_REFILL_PER_SECOND, now))
                    .take(now)
            };
            let arm_low = self
                .client
                .rate_limits(subscription)
                .and_then(|r| r.writes_remaining)
                .is_some_and(|left| left < ARM_WRITES_LOW_WATER);
            match (wait, arm_low) {
                (Ok(()), false) => return,
                (Ok(()), true) => {
                    tracing::warn!(
                        subscription,
                        "ARM write budget nearly spent; pausing writes"
                    );
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return;
                }
                (Err(d), _) => tokio::time::sleep(d).await,
            }
        }
    }

    /// Send one request.
    pub async fn send(&self, ws: &WorkspaceRef, instance: &str, action: Action) -> SendOutcome {
        let Ok(_slot) = self.slots.acquire().await else {
            return SendOutcome::Failed(AzureError::Protocol {
                operation: "actuate",
                reason: "actuator closed".to_owned(),
            });
        };
        self.wait_budget(&ws.subscription_id).await;
        let result = match action {
            Action::Start => self.client.start(ws, instance).await,
            Action::Stop => self.client.stop(ws, instance).await,
            Action::Restart => self.client.restart(ws, instance).await,
        };
        match result {
            Ok(accepted) => SendOutcome::Accepted(accepted),
            Err(e) => classify(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn budget_refills_over_time() {
        let t0 = Instant::now();
        let mut b = WriteBudget::new(2.0, 0.5, t0);
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0).is_ok());
        let wait = b.take(t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(2));
        assert!(b.take(t0 + Duration::from_secs(2)).is_ok());
        // Never more than the capacity, however long it rested.
        let later = t0 + Duration::from_secs(3600);
        assert!(b.take(later).is_ok());
        assert!(b.take(later).is_ok());
        assert!(b.take(later).is_err());
    }
}
