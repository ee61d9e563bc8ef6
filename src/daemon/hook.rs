//! The hook that sees every pass ([`PassHook`]): how cost accounting and metrics follow
//! the daemon without the daemon knowing them, and without them importing the daemon.

use crate::daemon::store::Store;
use crate::engine::config::Config;
use crate::engine::report::PassReport;

/// Sees every pass: its report, the config in force and the store (cost accounting and
/// metrics). Runs at the end of the pass, inside it, so it must be quick and never wait on
/// the network.
pub trait PassHook: Send {
    /// Called once per pass, after its requests were sent and recorded.
    fn after_pass(&mut self, cfg: &Config, report: &PassReport, store: &mut Store);
}
