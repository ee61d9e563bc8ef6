//! The engine: what lightsout decides, as pure functions of the config, what was observed,
//! what is remembered and `now`. No I/O, no clock, no Azure, no daemon: nothing here imports
//! anything outside `engine` (tests/it/architecture.rs holds it to that), so every decision
//! can be tested with a TOML policy and a fixed instant.
//!
//! - [`config`]: the TOML file: raw structs, then validated settings with positioned errors
//!   (`config::load` is the one function that reads a file).
//! - [`model`]: the domain vocabulary; [`names`]: Azure's naming rules; [`text`]: Azure text
//!   made safe to print; [`text_enum`]: enums with one spelling per value.
//! - [`schedule`]: windows, holidays, exceptions, cron events, DST; [`policy`]: which
//!   instance each policy governs, and how.
//! - [`decide`]: one instance's decision; [`memory`]: what is remembered between passes;
//!   [`native`]: Azure ML's own idle shutdown and schedules (types, then planner).
//! - [`pass`]: the whole pass decided; [`audit`]: the audit log's vocabulary; [`plan`]: decisions as rows; [`report`]: what a pass
//!   saw and did.
//! - [`pricing`]: what an hour costs; [`cost`]: money accrued, avoided and burned idle (the math); [`preview`]: a policy's
//!   next changes.

pub mod activity;
pub mod audit;
pub mod config;
pub mod cost;
pub mod decide;
pub mod heartbeat;
pub mod memory;
pub mod model;
pub mod names;
pub mod native;
pub mod pass;
pub mod plan;
pub mod policy;
pub mod preview;
pub mod pricing;
pub mod report;
pub mod schedule;
pub mod text;
pub mod text_enum;
