//! What the daemon says about each pass: workspaces it cannot see, decisions, native
//! drift, unreadable holds. Each condition is said when it changes, then at most hourly
//! (or once per value), not every pass: a fleet of thousands repeating itself every
//! minute buried what changed.

use std::collections::BTreeMap;
use std::sync::Mutex;

use jiff::Timestamp;

use crate::azure::AzureError;
use crate::daemon::logmemo::{self, LogMemo, REMINDER};
use crate::engine::decide::Verdict;
use crate::engine::model::InstanceKey;
use crate::engine::pass::Decided;
use crate::engine::plan::PlanRow;

/// What the daemon said last about each workspace and instance.
#[derive(Debug)]
pub struct PassLog {
    /// Why each workspace could not be observed, as last logged (said once per change).
    blind: LogMemo<String>,
    /// Each instance's decision not to act, as last logged (on change, then hourly).
    skip: LogMemo<InstanceKey>,
    /// Each instance's native drift, as last logged (on change, then hourly).
    drift: LogMemo<InstanceKey>,
}

impl Default for PassLog {
    fn default() -> PassLog {
        PassLog {
            blind: LogMemo::new(None),
            skip: LogMemo::new(Some(REMINDER)),
            drift: LogMemo::new(Some(REMINDER)),
        }
    }
}

impl PassLog {
    /// Log why a workspace cannot be observed: the whole error chain, once per change of
    /// the error (a debug line at the other passes).
    pub fn blind(&mut self, alias: &str, e: &AzureError, now: Timestamp) {
        let cause = crate::engine::text::chain(e);
        let signature = logmemo::signature(e.kind(), &cause);
        if self.blind.due(&alias.to_owned(), &signature, now).is_some() {
            tracing::warn!(workspace = %alias, error = %cause, kind = e.kind(),
                "workspace cannot be observed; its instances are left alone until it can be");
        } else {
            tracing::debug!(workspace = %alias, kind = e.kind(), "workspace still cannot be observed");
        }
    }

    /// A workspace was observed: say so if it was blind.
    pub fn seen(&mut self, alias: &str) {
        if self.blind.clear(&alias.to_owned()).is_some() {
            tracing::info!(workspace = %alias, "workspace observed again");
        }
    }

    /// Forget workspaces no longer configured.
    pub fn retain_workspaces(&mut self, keep: impl Fn(&str) -> bool) {
        self.blind.retain(|alias| keep(alias));
    }

    /// Forget an instance gone from Azure.
    pub fn forget(&mut self, key: &InstanceKey) {
        self.skip.clear(key);
        self.drift.clear(key);
    }

    /// Say what is news about one instance's decision: an unreadable hold, the decision,
    /// native drift and the native changes planned.
    pub fn instance(&mut self, row: &PlanRow, d: &Decided, dry_run: bool, now: Timestamp) {
        if invalid_hold_news(&d.key, row.invalid_hold.as_deref()) {
            tracing::warn!(workspace = %d.key.workspace, instance = %d.key.instance,
                reason = row.invalid_hold.as_deref().unwrap_or_default(),
                "unreadable hold tag: the instance is held (said once per value)");
        }
        // The agent's evidence, with the decision it led to (the audit row has the reason).
        let agent = row
            .agent
            .as_ref()
            .map(crate::engine::plan::AgentView::summary);
        self.decision(d, agent.as_deref().unwrap_or("-"), dry_run, now);
        self.native(d, dry_run, now);
    }

    /// Log the decision: an action always; a decision not to act when it changes, and at
    /// most hourly while it holds (it used to be every pass).
    fn decision(&mut self, d: &Decided, agent: &str, dry_run: bool, now: Timestamp) {
        let key = &d.key;
        let (workspace, instance, state) = (&key.workspace, &key.instance, &d.state);
        let policy = d.policy.as_deref().unwrap_or("-");
        match d.verdict {
            Verdict::Act(p) => {
                self.skip.clear(key);
                tracing::info!(
                    workspace = %workspace, instance = %instance, state = %state, policy,
                    action = %p.action, reason = %p.reason, catch_up = p.catch_up,
                    agent, dry_run, "acting"
                );
            }
            Verdict::Skip { planned, why } => {
                let what = format!(
                    "{policy} {} {} {}",
                    planned.action,
                    planned.reason,
                    why.as_str()
                );
                match self.skip.due(key, &what, now) {
                    Some(due) => tracing::info!(
                        workspace = %workspace, instance = %instance, state = %state, policy,
                        action = %planned.action, reason = %planned.reason, skipped = why.as_str(),
                        agent, reminder = due.is_reminder(), "not acting"
                    ),
                    None => tracing::debug!(
                        workspace = %workspace, instance = %instance, skipped = why.as_str(), "still not acting"
                    ),
                }
            }
            Verdict::Wait | Verdict::Quiet { .. } => {
                self.skip.clear(key);
                tracing::debug!(
                    workspace = %workspace, instance = %instance, state = %state, policy, "nothing to do"
                );
            }
        }
    }

    /// Log native drift (on change, then hourly) and each change about to be reconciled.
    fn native(&mut self, d: &Decided, dry_run: bool, now: Timestamp) {
        let (workspace, instance) = (&d.key.workspace, &d.key.instance);
        if d.drift.is_empty() {
            self.drift.clear(&d.key);
        } else {
            let drift: Vec<String> = d.drift.iter().map(ToString::to_string).collect();
            if let Some(due) = self.drift.due(&d.key, &drift.join("; "), now) {
                for change in &drift {
                    tracing::info!(workspace = %workspace, instance = %instance,
                        policy = d.policy.as_deref().unwrap_or("-"), drift = %change,
                        reminder = due.is_reminder(), "native settings differ from policy");
                }
            }
        }
        for change in &d.native {
            tracing::info!(workspace = %workspace, instance = %instance, change = %change,
                dry_run, "reconciling native settings");
        }
    }
}

/// Whether an unreadable hold of `key` is news (first seen, or a new value): it is logged
/// once, not every pass; a fixed or removed tag is forgotten, so breaking it again is news.
fn invalid_hold_news(key: &InstanceKey, why: Option<&str>) -> bool {
    static SAID: std::sync::LazyLock<Mutex<BTreeMap<InstanceKey, String>>> =
        std::sync::LazyLock::new(Default::default);
    let mut said = SAID.lock().unwrap_or_else(|p| p.into_inner());
    match why {
        None => {
            said.remove(key);
            false
        }
        Some(why) if said.get(key).map(String::as_str) == Some(why) => false,
        Some(why) => {
            said.insert(key.clone(), why.to_owned());
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_hold_is_news_once_per_value() {
        let k = InstanceKey::new("lab", "ci-news");
        assert!(invalid_hold_news(&k, Some("a")));
        assert!(!invalid_hold_news(&k, Some("a")));
        assert!(invalid_hold_news(&k, Some("b")));
        assert!(!invalid_hold_news(&k, None));
        assert!(invalid_hold_news(&k, Some("b")), "fixed, then broken again");
    }
}
