//! Request budgets per subscription: token buckets for reads, writes and deletes that keep
//! lightsout well under ARM's throttling limits, and a pause when ARM's own
//! `x-ms-ratelimit-remaining-*` counters run low.
//!
//! The bucket arithmetic is pure (it takes the instant); [`Budgets::wait`] sleeps on the
//! tokio clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A token bucket: `capacity` requests at once, refilled at `per_second`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    tokens: f64,
    per_second: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: f64, per_second: f64, now: Instant) -> TokenBucket {
        TokenBucket {
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

/// Sizes of the buckets, per subscription.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetLimits {
    pub read_burst: f64,
    pub reads_per_second: f64,
    pub write_burst: f64,
    pub writes_per_second: f64,
    /// ARM counts deletes apart from writes (`x-ms-ratelimit-remaining-subscription-deletes`).
    pub delete_burst: f64,
    pub deletes_per_second: f64,
    /// Below this many remaining requests reported by ARM, wait before the next one.
    pub low_water: u64,
    /// How long to wait then.
    pub low_water_pause: Duration,
}

impl Default for BudgetLimits {
    /// Half of ARM's per-principal buckets (reads 250 refilled at 25/s, writes and deletes
    /// 200 each refilled at 10/s), leaving room for people and other tools.
    fn default() -> Self {
        BudgetLimits {
            read_burst: 125.0,
            reads_per_second: 12.5,
            write_burst: 100.0,
            writes_per_second: 5.0,
            delete_burst: 100.0,
            deletes_per_second: 5.0,
            low_water: 10,
            low_water_pause: Duration::from_secs(2),
        }
    }
}

/// Which of ARM's counters a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// GET and HEAD.
    Read,
    /// PUT, PATCH, POST.
    Write,
    /// DELETE.
    Delete,
}

impl Kind {
    /// The counter a request with this method spends.
    pub fn of(method: &reqwest::Method) -> Kind {
        match *method {
            reqwest::Method::GET | reqwest::Method::HEAD => Kind::Read,
            reqwest::Method::DELETE => Kind::Delete,
            _ => Kind::Write,
        }
    }
}

/// The buckets of every subscription seen.
#[derive(Debug)]
pub struct Budgets {
    limits: BudgetLimits,
    buckets: Mutex<HashMap<(String, Kind), TokenBucket>>,
}

impl Budgets {
    /// Empty; buckets are made full on first use.
    pub fn new(limits: BudgetLimits) -> Budgets {
        Budgets {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Wait for a token of `kind` for `subscription`; `arm_remaining` is what ARM last
    /// said remains of that kind (the lower of the principal's and the global counter).
    pub async fn wait(&self, subscription: &str, kind: Kind, arm_remaining: Option<u64>) {
        if arm_remaining.is_some_and(|left| left < self.limits.low_water) {
            tracing::warn!(
                subscription,
                ?kind,
                "ARM request budget nearly spent; pausing"
            );
            tokio::time::sleep(self.limits.low_water_pause).await;
        }
        loop {
            let wait = {
                let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let (burst, rate) = match kind {
                    Kind::Read => (self.limits.read_burst, self.limits.reads_per_second),
                    Kind::Write => (self.limits.write_burst, self.limits.writes_per_second),
                    Kind::Delete => (self.limits.delete_burst, self.limits.deletes_per_second),
                };
                buckets
                    .entry((subscription.to_owned(), kind))
                    .or_insert_with(|| TokenBucket::new(burst, rate, now))
                    .take(now)
            };
            match wait {
                Ok(()) => return,
                Err(d) => tokio::time::sleep(d).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bucket_refills_over_time_up_to_capacity() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(2.0, 0.5, t0);
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0).is_ok());
        assert_eq!(b.take(t0).unwrap_err(), Duration::from_secs(2));
        assert!(b.take(t0 + Duration::from_secs(2)).is_ok());
        let later = t0 + Duration::from_secs(3600);
        assert!(b.take(later).is_ok());
        assert!(b.take(later).is_ok());
        assert!(b.take(later).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn wait_paces_requests_beyond_the_burst() {
        let budgets = Budgets::new(BudgetLimits {
            read_burst: 2.0,
            reads_per_second: 10.0,
            ..BudgetLimits::default()
        });
        let start = Instant::now();
        for _ in 0..12 {
            budgets.wait("sub", Kind::Read, None).await;
        }
        // 2 at once, then 10 more at 10 per second.
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(990) && took <= Duration::from_millis(1100),
            "{took:?}"
        );
        // Writes have their own bucket.
        let before = Instant::now();
        budgets.wait("sub", Kind::Write, None).await;
        assert_eq!(before.elapsed(), Duration::ZERO);
    }
}
