//! The only place that reads the wall clock. Everything else takes `now` as a value.

use jiff::Timestamp;

/// The current instant.
#[expect(
    clippy::disallowed_methods,
    reason = "this is the one sanctioned wall-clock read"
)]
pub fn now() -> Timestamp {
    Timestamp::now()
}

/// Where the daemon's passes read the time: the wall clock, or a virtual one (simulate).
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> Timestamp {
        now()
    }
}
