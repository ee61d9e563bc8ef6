//! Configuration: read the TOML file, check it, and hand out validated settings.
//!
//! Two stages (STYLE H3): [`raw`] mirrors the file and rejects unknown keys; [`validate`]
//! turns it into the typed [`Config`] and reports every problem at once, each with the file,
//! line and column of the offending key or value. Only [`load`] touches the file system.
//! [`auth`] holds the plain authentication settings (cloud, credential kind); the Azure
//! client imports them from here, so validating a config needs nothing of the client's types.

pub mod auth;
pub mod raw;
pub mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

pub use validate::{
    AgentSettings, AzureSettings, Config, DaemonSettings, HttpSettings, PriceSource,
    PricingSettings, Workspace,
};

/// Where the config comes from when neither `--config` nor `$LIGHTSOUT_CONFIG` is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/lightsout/lightsout.toml";

/// One problem found in a config file, at a position in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line; 0 when the problem has no position (e.g. a missing section).
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    pub message: String,
    /// Warnings are printed but do not fail validation.
    pub warning: bool,
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but has problems; `Display` prints one `FILE:LINE:COL: message`
    /// per line.
    #[error("{}", render(path, diagnostics))]
    Invalid {
        path: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
}

impl ConfigError {
    /// Short, bounded label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "read",
            ConfigError::Invalid { .. } => "invalid",
        }
    }
}

fn render(path: &Path, diagnostics: &[Diagnostic]) -> String {
    let lines: Vec<String> = diagnostics
        .iter()
        .filter(|d| !d.warning)
        .map(|d| d.render(path))
        .collect();
    lines.join("\n")
}

impl Diagnostic {
    /// `FILE:LINE:COL: message` (or `FILE: message` without a position).
    pub fn render(&self, path: &Path) -> String {
        let level = if self.warning { "warning: " } else { "" };
        if self.line == 0 {
            format!("{}: {level}{}", path.display(), self.message)
        } else {
            format!(
                "{}:{}:{}: {level}{}",
                path.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// The config path to use: `--config`, else `$LIGHTSOUT_CONFIG`, else the default.
pub fn resolve_path(flag: Option<&Path>, env_value: Option<&str>) -> PathBuf {
    match (flag, env_value) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(v)) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_CONFIG_PATH),
    }
}

/// Read and validate the file at `path`, and the files it names (the client secret's
/// permissions). Warnings come back with the config.
pub fn load(path: &Path) -> Result<(Config, Vec<Diagnostic>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let loaded = parse(&text, path)?;
    let problems = validate::check_files(&text, &|name: &str| std::env::var(name).ok());
    if !problems.is_empty() {
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            diagnostics: problems,
        });
    }
    Ok(loaded)
}

/// Validate config text; `path` is only used in messages and to resolve nothing else.
pub fn parse(text: &str, path: &Path) -> Result<(Config, Vec<Diagnostic>), ConfigError> {
    validate::from_str(text).map_err(|diagnostics| ConfigError::Invalid {
        path: path.to_path_buf(),
        diagnostics,
    })
}
