//! One function per subcommand: glue between the parsed command line and the library.
//!
//! Errors come back as `anyhow::Error`; a [`crate::config::ConfigError`] inside means exit 78.

mod audit;
mod ci;
mod docs;
mod doctor;
mod emulator;
mod health;
mod plan;
mod preview;
mod run;
mod validate;

pub use audit::audit;
pub use ci::ci;
pub use docs::{completions, manpage};
pub use doctor::doctor;
pub use emulator::emulator;
pub use health::healthcheck;
pub use plan::plan;
pub use preview::preview;
pub use run::run;
pub use validate::validate;

use crate::cli::DemoArgs;

pub async fn demo(_args: DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!("demo is not wired in yet")
}
