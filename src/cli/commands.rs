//! One function per subcommand: glue between the parsed command line and the library.
//!
//! Errors come back as `anyhow::Error`; a [`crate::engine::config::ConfigError`] inside means exit 78.

mod agent;
mod audit;
pub(crate) mod ci;
mod docs;
mod doctor;
mod emulator;
mod health;
mod hold;
mod plan;
mod preview;
mod report;
mod run;
mod simulate;
mod validate;

pub use agent::{agent, snooze};
pub use audit::audit;
pub use ci::ci;
pub use docs::{completions, manpage};
pub use doctor::doctor;
pub use emulator::emulator;
pub use health::healthcheck;
pub use hold::{hold, release};
pub use plan::{plan, rows as plan_rows};
pub use preview::preview;
pub use report::report;
pub use run::run;
pub use simulate::simulate;
pub use validate::validate;

use crate::cli::DemoArgs;

/// `lightsout demo`.
pub async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    crate::sim::demo::run(crate::sim::demo::DemoOptions {
        speed: args.speed,
        duration: args.duration,
        skip_lifecycle: args.skip_lifecycle,
    })
    .await
}
