//! lightsout: stops idle and off-hours Azure Machine Learning compute instances.
//!
//! # Layout: six parts, depending one way
//!
//! `cli` → `sim` → `daemon` → `azure` → `engine` (each may use those to its right; `clock`
//! is the one wall-clock read), and beside the daemon `agent` → `azure` → `engine`. `tests/it/architecture.rs` holds the code to this, and to a
//! module graph without circles.
//!
//! - [`engine`]: every decision, pure (no I/O, `now` passed in): config, schedules, policies,
//!   one instance's decision, the whole pass planned, native settings, prices and cost math,
//!   preview, the audit vocabulary.
//! - [`azure`]: the ARM client: wire types, errors, retries, long-running operations, auth,
//!   the Jupyter probe's client.
//! - [`daemon`]: the shell around the engine: observe, act, the SQLite store, metrics, the
//!   HTTP server, price fetching, systemd, shutdown, logs; `daemon::Daemon` is the loop.
//! - [`agent`]: the on-instance agent (`lightsout agent`, `lightsout snooze`): measures use
//!   on a compute instance and writes the heartbeat blob the daemon reads.
//! - [`sim`]: the daemon against the emulator (the workspace crate `azure_ml_emulator`):
//!   `demo` with a fast clock, `simulate` in virtual time.
//! - [`cli`]: the command line: clap types, one function per subcommand, tables, progress.
//! - [`clock`]: the one wall-clock read.

pub mod agent;
pub mod azure;
pub mod cli;
pub mod clock;
pub mod daemon;
pub mod engine;
pub mod sim;
