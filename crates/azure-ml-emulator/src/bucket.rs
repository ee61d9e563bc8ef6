//! A token bucket, as ARM throttles requests per subscription and principal. Pure: the
//! caller passes `now`.

use jiff::Timestamp;

/// A token bucket with continuous refill.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    capacity: f64,
    refill_per_sec: f64,
    tokens: f64,
    last: Timestamp,
}

impl TokenBucket {
    /// A full bucket of `capacity` tokens refilling at `refill_per_sec`.
    pub fn new(capacity: u32, refill_per_sec: f64, now: Timestamp) -> TokenBucket {
        TokenBucket {
            capacity: f64::from(capacity),
            refill_per_sec: refill_per_sec.max(0.0),
            tokens: f64::from(capacity),
            last: now,
        }
    }

    fn refill(&mut self, now: Timestamp) {
        let elapsed = now.duration_since(self.last).as_secs_f64();
        if elapsed > 0.0 {
            self.tokens = (self.tokens + elapsed * self.refill_per_sec).min(self.capacity);
            self.last = now;
        }
    }

    /// Takes one token. `Ok(remaining)` or `Err(seconds until one is available)`, at least 1.
    pub fn take(&mut self, now: Timestamp) -> Result<u32, u64> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            // Truncation is intended: ARM reports whole remaining requests.
            Ok(self.tokens.floor() as u32)
        } else if self.refill_per_sec <= 0.0 {
            Err(3600)
        } else {
            let wait = ((1.0 - self.tokens) / self.refill_per_sec).ceil();
            Err((wait as u64).max(1))
        }
    }

    /// Whole tokens left now, without taking one.
    pub fn remaining(&mut self, now: Timestamp) -> u32 {
        self.refill(now);
        self.tokens.floor() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn t0() -> Timestamp {
        "2026-03-30T09:00:00Z".parse().unwrap()
    }

    #[test]
    fn drains_then_refuses_with_wait() {
        let mut b = TokenBucket::new(3, 1.0, t0());
        assert_eq!(b.take(t0()), Ok(2));
        assert_eq!(b.take(t0()), Ok(1));
        assert_eq!(b.take(t0()), Ok(0));
        assert_eq!(b.take(t0()), Err(1));
    }

    #[test]
    fn refills_over_time_up_to_capacity() {
        let mut b = TokenBucket::new(2, 0.5, t0());
        b.take(t0()).unwrap();
        b.take(t0()).unwrap();
        assert_eq!(b.take(t0()), Err(2));
        let later = t0() + SignedDuration::from_secs(2);
        assert_eq!(b.take(later), Ok(0));
        let much_later = t0() + SignedDuration::from_secs(3600);
        assert_eq!(b.remaining(much_later), 2);
    }

    #[test]
    fn zero_refill_waits_long() {
        let mut b = TokenBucket::new(1, 0.0, t0());
        b.take(t0()).unwrap();
        assert_eq!(b.take(t0()), Err(3600));
    }
}
