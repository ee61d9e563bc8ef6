//! Glue between the daemon and what it shows: the [`PassHook`] that runs the cost
//! accounting and updates the metrics after every pass, and the state the HTTP server
//! reads ([`Shared`]).
//!
//! The hook runs inside the pass and does no network I/O: retail prices are fetched by the
//! refresher task (`price_fetch::spawn_refresher`), which this hook only tells which
//! (region, vm size) pairs it has seen.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use crate::daemon::accountant::Accountant;
use crate::daemon::hook::PassHook;
use crate::daemon::metrics::Metrics;
use crate::daemon::price_fetch::SharedBook;
use crate::daemon::store::Store;
use crate::engine::config::Config;
use crate::engine::cost::CostView;
use crate::engine::report::{PassReport, Status};

/// What the HTTP server reads: metrics, the loop's status, the latest costs.
#[derive(Clone)]
pub struct Shared {
    pub metrics: Arc<Metrics>,
    pub status: Arc<Status>,
    pub costs: Arc<RwLock<CostView>>,
    /// The poll interval in force, in milliseconds (it changes on reload).
    pub poll_interval_ms: Arc<AtomicU64>,
    /// When the process started (health before the first pass).
    pub started: Timestamp,
}

impl Shared {
    /// Shared state for a daemon whose status is `status`.
    pub fn new(
        metrics: Arc<Metrics>,
        status: Arc<Status>,
        poll_interval: Duration,
        started: Timestamp,
    ) -> Shared {
        Shared {
            metrics,
            status,
            costs: Arc::new(RwLock::new(CostView::default())),
            poll_interval_ms: Arc::new(AtomicU64::new(millis(poll_interval))),
            started,
        }
    }

    /// The poll interval in force.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.load(Ordering::Relaxed))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The pass hook: accounting, then metrics, then the shared cost view.
pub struct Exporter {
    accountant: Accountant,
    book: SharedBook,
    shared: Shared,
    seen: watch::Sender<BTreeSet<(String, String)>>,
}

impl Exporter {
    /// A hook that accounts with `accountant`, prices from `book`, publishes into
    /// `shared`, and sends the (region, vm size) pairs it sees on `seen`.
    pub fn new(
        accountant: Accountant,
        book: SharedBook,
        shared: Shared,
        seen: watch::Sender<BTreeSet<(String, String)>>,
    ) -> Exporter {
        Exporter {
            accountant,
            book,
            shared,
            seen,
        }
    }
}

impl PassHook for Exporter {
    fn after_pass(&mut self, cfg: &Config, report: &PassReport, store: &mut Store) {
        self.shared
            .poll_interval_ms
            .store(millis(cfg.daemon.poll_interval), Ordering::Relaxed);
        self.shared
            .metrics
            .poll_interval
            .set(cfg.daemon.poll_interval.as_secs_f64());
        let book = {
            let mut b = self.book.lock().unwrap_or_else(|p| p.into_inner());
            if *b.settings() != cfg.pricing {
                b.reconfigure(&cfg.pricing);
            }
            b.clone()
        };
        let pairs: BTreeSet<(String, String)> = report
            .rows
            .iter()
            .filter_map(|r| {
                let region = cfg.workspace(&r.workspace)?.region.as_ref()?;
                Some((region.to_ascii_lowercase(), r.vm_size.to_ascii_lowercase()))
            })
            .collect();
        self.seen.send_if_modified(|s| {
            if *s == pairs {
                false
            } else {
                *s = pairs;
                true
            }
        });
        let view = match self.accountant.pass(cfg, report, &book, store) {
            Ok(v) => v,
            Err(e) => {
                // SQLite's own failures are counted by the store, with the daemon's.
                if !e.is_database() {
                    self.shared.metrics.state_error(e.kind(), 1);
                }
                tracing::error!(error = %crate::engine::text::chain(&e), "cannot record costs; this interval is counted at the next pass");
                self.accountant.view_with(&book)
            }
        };
        for (kind, n) in store.take_errors() {
            self.shared.metrics.state_error(kind, n);
        }
        let age = report.at.map_or(0.0, |now| book.age_seconds(now));
        self.shared.metrics.record_pass(report, &view, age);
        *self.shared.costs.write().unwrap_or_else(|p| p.into_inner()) = view;
    }
}
