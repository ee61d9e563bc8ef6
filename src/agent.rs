//! The on-instance agent (`lightsout agent`): runs on an Azure ML compute instance, sees what
//! ARM cannot (terminals, SSH and tmux, CPU and GPU work, Jupyter kernels, VS Code,
//! containers), and publishes its verdict as a heartbeat blob the daemon reads.
//!
//! - [`collect`]: the measurements, read from `/proc`, `/dev/pts`, Jupyter's runtime files
//!   and NVML (I/O at the edge; the judgement is `engine::activity`).
//! - [`heartbeat`]: the loop: observe every interval, write the heartbeat with the
//!   instance's managed identity (`azure::msi`, `azure::blob`).
//! - [`snooze`]: `lightsout snooze`, from a user's terminal to the agent and into the next
//!   heartbeat.
//! - [`setup`]: the Azure ML setup script that installs the agent.

pub mod collect;
pub mod heartbeat;
pub mod setup;
pub mod snooze;
