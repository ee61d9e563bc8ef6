//! lightsout: stops idle and off-hours Azure Machine Learning compute instances.
//!
//! # Layout
//!
//! - [`cli`]: the command line (clap types only); [`commands`]: one function per subcommand.
//! - [`config`]: the TOML file: raw structs, then validated settings with positioned errors.
//! - [`model`]: domain vocabulary shared by every layer (pure).
//! - [`connect`]: builds the ARM client from settings.
//! - [`azure`]: the ARM client: wire types, errors, retries, long-running operations, auth.
//! - [`plan`]: decisions as rows for `plan`, `/v1/status` and `simulate`.
//! - [`observe`]: one observation pass over every workspace (ARM list + Jupyter).
//! - [`actuate`]: sending start/stop/restart within concurrency and write budgets.
//! - [`pass`]: the whole pass decided purely (settle, decide, native settings, what to write,
//!   send and forget), shared by the daemon and `plan`.
//! - [`daemon`]: the reconcile loop: observe, plan the pass, write, send, record, sleep to the
//!   next boundary. [`report`]: what a pass saw and did; [`hook`]: what sees every pass;
//!   [`passlog`]: what the daemon says about a pass, when it is news.
//!   [`logmemo`]: what it said last, so repeated conditions are logged when they change.
//! - [`demo`]: the emulator and the daemon in one process, clock running fast.
//! - [`simulate`]: the daemon against the in-process emulator in virtual time.
//! - [`emulated`]: the link of `demo` and `simulate` to the emulator, the workspace crate
//!   `azure_ml_emulator` (a local fake of ARM, Entra ID, Jupyter and prices).
//! - [`schedule`]: pure calendar logic: windows, holidays, exceptions, cron events, DST.
//! - [`policy`]: validated policies and which instance each governs.
//! - [`doctor`]: which RBAC actions a config needs and how granted ones measure up (pure).
//! - [`decide`]: the pure decision for one instance; [`memory`]: what is remembered between passes.
//! - [`preview`]: a policy's upcoming changes for `lightsout preview`; [`clock`]: the one wall-clock read.
//! - [`store`]: durable memory and audit log (SQLite under `daemon.state_dir`).
//! - [`progress`]: progress of a long-running operation on stderr (spinner or plain lines).
//! - [`table`]: plain-text tables for command output; [`telemetry`]: log setup;
//!   [`text_enum`]: enums with one spelling per value (`as_str`, `parse`, `Display`, `FromStr`).
//! - [`pricing`]: compute prices (config table, retail prices with a disk cache);
//!   [`price_fetch`]: the Azure Retail Prices API fetch and the daemon's refresher.
//! - [`cost`]: money accrued, avoided and burned idle, integrated between passes (pure math);
//!   [`accountant`]: the daemon's bookkeeping around it, durable in the store.
//! - [`metrics`]: every Prometheus metric; [`exporter`]: the pass hook feeding them;
//!   [`http`]: `/metrics`, `/healthz`, `/readyz`, `/v1/status`.

pub mod azure;
pub mod cli;
pub mod clock;
pub mod daemon;
pub mod engine;
pub mod sim;
