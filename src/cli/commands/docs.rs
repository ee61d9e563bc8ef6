//! `lightsout completions SHELL` and the hidden `lightsout manpage`: generated from the clap
//! definitions, so they never drift from the real command line. The Debian package build
//! (`tests/packaging/build-deb.sh`) runs both.

use std::io::Write as _;

use clap::CommandFactory as _;

use crate::cli::{Cli, CompletionsArgs};

/// Print the completion script for `args.shell` on stdout.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "lightsout", &mut out);
    out.flush()?;
    Ok(())
}

/// Print the man page (section 1, roff) on stdout.
pub fn manpage() -> anyhow::Result<()> {
    let page = clap_mangen::Man::new(Cli::command());
    let mut out = std::io::stdout().lock();
    page.render(&mut out)?;
    out.flush()?;
    Ok(())
}
