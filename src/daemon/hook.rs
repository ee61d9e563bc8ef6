//! The hook that sees every pass ([`PassHook`]): how cost accounting and metrics follow
//! the daemon without the daemon knowing them, and without them importing the daemon.

use jiff::Timestamp;

use crate::daemon::observe::WorkspaceSnapshot;
use crate::daemon::store::Store;
use crate::engine::config::Config;
use crate::engine::report::PassReport;

/// Sees every pass: its report, the config in force and the store (cost accounting and
/// metrics). Runs at the end of the pass, inside it, so it must be quick and never wait on
/// the network.
pub trait PassHook: Send {
    /// Called once per pass, after its requests were sent and recorded.
    fn after_pass(&mut self, cfg: &Config, report: &PassReport, store: &mut Store);

    /// Called once per pass between observing and deciding, at the pass's `now`: may fill
    /// in what the daemon could not observe itself. Only the simulator does (`sim::agents`):
    /// its emulated instances' agents report in process, not through heartbeat blobs. A
    /// real run's hooks leave the observations alone.
    fn observed(&mut self, _cfg: &Config, _snapshots: &mut [WorkspaceSnapshot], _now: Timestamp) {}
}
