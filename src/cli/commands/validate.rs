//! `lightsout validate`: load and check the config, print every problem, exit 0 or 78.

use crate::cli::ConfigArg;
use crate::engine::config;

/// Resolve the config path from the flag, `$LIGHTSOUT_CONFIG` or the default.
pub(crate) fn config_path(arg: &ConfigArg) -> std::path::PathBuf {
    let env = std::env::var("LIGHTSOUT_CONFIG").ok();
    config::resolve_path(arg.config.as_deref(), env.as_deref())
}

/// Print warnings on stderr and a one-line summary on stdout; errors go up to `main`.
pub fn validate(arg: &ConfigArg) -> anyhow::Result<()> {
    let path = config_path(arg);
    let (cfg, warnings) = config::load(&path)?;
    for w in &warnings {
        eprintln!("{}", w.render(&path));
    }
    println!(
        "{}: ok ({} workspaces, {} policies)",
        path.display(),
        cfg.workspaces.len(),
        cfg.policies.len()
    );
    Ok(())
}
