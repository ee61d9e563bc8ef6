//! The emulator's clock: the one place it reads the wall clock.
//!
//! In real time, `now` is the wall clock. In virtual time, `now` starts at a fixed instant
//! and moves only when the control API advances it. Token expiry and throttling always use
//! the wall clock (see [`Clock::wall`]), because clients judge token lifetimes and pace
//! their retries by their own real clock.

use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// Reads the system wall clock.
#[expect(
    clippy::disallowed_methods,
    reason = "the emulator's single wall-clock read; everything else takes `now`"
)]
pub fn wall_now() -> Timestamp {
    Timestamp::now()
}

/// Real or virtual time for the emulated resources.
#[derive(Debug)]
pub struct Clock {
    /// `Some(now)` in virtual time, `None` in real time.
    virtual_now: Option<Mutex<Timestamp>>,
}

/// Errors of the clock.
#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    /// Advancing is only possible in virtual time.
    #[error("the emulator runs in real time; start it with virtual time to advance the clock")]
    NotVirtual,
    /// The new time is out of range.
    #[error("clock advance out of range")]
    OutOfRange,
}

impl Clock {
    /// A clock following the wall clock.
    pub fn real() -> Clock {
        Clock { virtual_now: None }
    }

    /// A virtual clock starting at `start`.
    pub fn virtual_at(start: Timestamp) -> Clock {
        Clock {
            virtual_now: Some(Mutex::new(start)),
        }
    }

    /// Whether this clock is virtual.
    pub fn is_virtual(&self) -> bool {
        self.virtual_now.is_some()
    }

    /// The emulator's current time.
    pub fn now(&self) -> Timestamp {
        match &self.virtual_now {
            Some(m) => *m.lock().unwrap_or_else(|p| p.into_inner()),
            None => wall_now(),
        }
    }

    /// The wall clock, whatever mode the emulator runs in.
    pub fn wall(&self) -> Timestamp {
        wall_now()
    }

    /// Moves virtual time forward by `by`; returns the new time.
    pub fn advance(&self, by: Duration) -> Result<Timestamp, ClockError> {
        let m = self.virtual_now.as_ref().ok_or(ClockError::NotVirtual)?;
        let mut g = m.lock().unwrap_or_else(|p| p.into_inner());
        let by = SignedDuration::try_from(by).map_err(|_| ClockError::OutOfRange)?;
        *g = g.checked_add(by).map_err(|_| ClockError::OutOfRange)?;
        Ok(*g)
    }
}
