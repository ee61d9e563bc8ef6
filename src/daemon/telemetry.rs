//! Log output: tracing-subscriber set up once, human or JSON, filtered by `RUST_LOG`.
//!
//! Logs always go to stderr so stdout stays clean for command output and the emulator's
//! ready line. Nothing here reads secrets; callers never put tokens in fields.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human format on a terminal, JSON otherwise (containers, journald collectors).
    Auto,
    /// One human-readable line per event.
    Human,
    /// One JSON object per event.
    Json,
}

/// The filter when `RUST_LOG` is unset or invalid.
pub const DEFAULT_FILTER: &str = "warn,lightsout=info";
/// The filter for commands whose standard output tells the story (`demo`, `simulate`):
/// the daemon's per-decision info lines would bury it.
pub const QUIET_FILTER: &str = "warn";

/// Install the global subscriber with `default` as the filter unless `RUST_LOG` says
/// otherwise. Safe to call once per process; later calls are ignored, which keeps
/// in-process tests that start several components from fighting over it.
pub fn init(format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
    // A subscriber already set (tests) is not an error worth reporting.
    drop(result);
}
