//! The only place that reads the wall clock. Everything else takes `now` as a value.

use jiff::Timestamp;

/// The current instant.
#[allow(
    clippy::disallowed_methods,
    reason = "this is the one sanctioned wall-clock read"
)]
pub fn now() -> Timestamp {
    Timestamp::now()
}
