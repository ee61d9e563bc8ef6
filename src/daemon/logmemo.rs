//! What the daemon last said about a condition that holds pass after pass (a decision not
//! to act, native settings that differ, a workspace it cannot see), so that it says it when
//! it changes, and again at most every reminder interval, rather than at every pass: a held
//! instance used to cost 1,440 identical lines a day.
//!
//! Pure: no I/O and no clock; `now` comes in.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

/// How often a condition that has not changed is said again.
pub const REMINDER: SignedDuration = SignedDuration::from_hours(1);

/// Why a line is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// First said, or different from what was said last.
    Changed,
    /// Unchanged, and not said for a reminder interval.
    Reminder,
}

impl Due {
    /// Whether this is a reminder (a log field).
    pub fn is_reminder(self) -> bool {
        self == Due::Reminder
    }
}

#[derive(Debug, Clone)]
struct Said {
    what: String,
    at: Timestamp,
}

/// What was said last per key (an instance, a workspace alias).
#[derive(Debug, Clone)]
pub struct LogMemo<K> {
    said: BTreeMap<K, Said>,
    remind: Option<SignedDuration>,
}

impl<K: Ord + Clone> LogMemo<K> {
    /// A memo that says an unchanged condition again every `remind` (never with `None`).
    pub fn new(remind: Option<SignedDuration>) -> LogMemo<K> {
        LogMemo {
            said: BTreeMap::new(),
            remind,
        }
    }

    /// Is `what` to be said about `key` at `now`? Yes when it is not what was said last, or
    /// when that was a reminder interval ago; then it counts as said at `now`.
    pub fn due(&mut self, key: &K, what: &str, now: Timestamp) -> Option<Due> {
        let Some(said) = self.said.get_mut(key) else {
            self.said.insert(
                key.clone(),
                Said {
                    what: what.to_owned(),
                    at: now,
                },
            );
            return Some(Due::Changed);
        };
        if said.what != what {
            said.what = what.to_owned();
            said.at = now;
            return Some(Due::Changed);
        }
        // A clock set back restarts the interval rather than silencing it for as long.
        if now < said.at {
            said.at = now;
        }
        let remind = self.remind?;
        if now.duration_since(said.at) >= remind {
            said.at = now;
            return Some(Due::Reminder);
        }
        None
    }

    /// The condition ended: forget it, and return what was said last (to say it ended).
    pub fn clear(&mut self, key: &K) -> Option<String> {
        self.said.remove(key).map(|s| s.what)
    }

    /// Keep only the keys `keep` accepts (instances gone, workspaces no longer configured).
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        self.said.retain(|k, _| keep(k));
    }

    /// How many conditions are remembered.
    pub fn len(&self) -> usize {
        self.said.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.said.is_empty()
    }
}

/// What identifies an error for "has it changed?": its kind and its text with the parts
/// that differ at every try masked (numbers, hex ids, UUIDs: Entra's trace and correlation
/// ids and timestamps, a retry's elapsed time). Codes that start with letters
/// (`AADSTS7000215`, `AuthorizationFailed`) are kept.
pub fn signature(kind: &str, text: &str) -> String {
    let mut out = String::with_capacity(kind.len() + 2 + text.len());
    out.push_str(kind);
    out.push_str(": ");
    let mut word = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            word.push(c);
        } else {
            push_masked(&mut out, &word);
            word.clear();
            out.push(c);
        }
    }
    push_masked(&mut out, &word);
    out
}

/// `word` as is, or `#` when it is a number, a hex id or a UUID.
fn push_masked(out: &mut String, word: &str) {
    let is_uuid = word.len() == 36
        && word.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    if is_uuid {
        out.push('#');
        return;
    }
    for (i, part) in word.split('-').enumerate() {
        if i > 0 {
            out.push('-');
        }
        let hex_id =
            part.chars().all(|c| c.is_ascii_hexdigit()) && part.chars().any(|c| c.is_ascii_digit());
        if hex_id {
            out.push('#');
        } else if part.starts_with(|c: char| c.is_ascii_digit()) {
            // A number with a unit (`51Z`, `012s`): the number goes, the unit stays.
            let mut in_digits = false;
            for c in part.chars() {
                if c.is_ascii_digit() {
                    if !in_digits {
                        out.push('#');
                    }
                    in_digits = true;
                } else {
                    out.push(c);
                    in_digits = false;
                }
            }
        } else {
            out.push_str(part);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(mins: i64) -> Timestamp {
        let base: Timestamp = "2026-03-27T12:00:00Z".parse().unwrap();
        base.checked_add(SignedDuration::from_mins(mins)).unwrap()
    }

    #[test]
    fn a_day_of_minute_passes_says_a_held_decision_once_an_hour() {
        let mut memo = LogMemo::new(Some(REMINDER));
        let key = "lab/ci-erin".to_owned();
        let mut lines = Vec::new();
        for minute in 0..1440 {
            if let Some(due) = memo.due(&key, "stop:outside_window:held", at(minute)) {
                lines.push((minute, due));
            }
        }
        assert_eq!(lines.len(), 24, "{lines:?}");
        assert_eq!(lines[0], (0, Due::Changed));
        assert!(lines[1..].iter().all(|(_, d)| *d == Due::Reminder));
        assert_eq!(lines[1].0, 60);
    }

    #[test]
    fn a_change_is_said_at_once_and_restarts_the_interval() {
        let mut memo = LogMemo::new(Some(REMINDER));
        let key = 1;
        assert_eq!(memo.due(&key, "held", at(0)), Some(Due::Changed));
        assert_eq!(memo.due(&key, "held", at(1)), None);
        assert_eq!(memo.due(&key, "busy", at(2)), Some(Due::Changed));
        assert_eq!(memo.due(&key, "busy", at(61)), None);
        assert_eq!(memo.due(&key, "busy", at(62)), Some(Due::Reminder));
        // Cleared (the instance acted, or went quiet): the next skip is news.
        assert_eq!(memo.clear(&key).as_deref(), Some("busy"));
        assert_eq!(memo.clear(&key), None);
        assert_eq!(memo.due(&key, "busy", at(63)), Some(Due::Changed));
        // A clock set back does not silence it for the jump.
        assert_eq!(memo.due(&key, "busy", at(-600)), None);
        assert_eq!(memo.due(&key, "busy", at(-540)), Some(Due::Reminder));
    }

    #[test]
    fn without_reminders_only_changes_are_said() {
        let mut memo = LogMemo::new(None);
        assert_eq!(memo.due(&"lab", "auth: x", at(0)), Some(Due::Changed));
        assert_eq!(memo.due(&"lab", "auth: x", at(6000)), None);
        memo.retain(|k| *k != "lab");
        assert!(memo.is_empty());
    }

    #[test]
    fn signatures_ignore_trace_ids_times_and_durations_but_not_codes() {
        let aad = |trace: &str, ts: &str| {
            format!(
                "list_computes: could not acquire an access token: AADSTS7000215: Invalid client \
                 secret provided. Trace ID: {trace} Correlation ID: 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 \
                 Timestamp: {ts}Z"
            )
        };
        let a = signature(
            "auth",
            &aad(
                "3b5c9a2e-aaaa-bbbb-cccc-0123456789ab",
                "2026-12-07 06:41:51",
            ),
        );
        let b = signature(
            "auth",
            &aad(
                "deadbeef-abcd-4def-8abc-fedcba987654",
                "2026-12-07 06:41:56",
            ),
        );
        assert_eq!(a, b);
        assert!(a.contains("AADSTS7000215"), "{a}");
        let expired = signature(
            "auth",
            &aad(
                "deadbeef-abcd-4def-8abc-fedcba987654",
                "2026-12-07 06:41:56",
            )
            .replace("7000215", "7000222"),
        );
        assert_ne!(a, expired);
        assert_eq!(
            signature("timeout", "list_computes: gave up after 30.012s"),
            signature("timeout", "list_computes: gave up after 29.998s")
        );
        assert_ne!(
            signature(
                "transport",
                "connection failed: Connection refused (os error 111)"
            ),
            signature(
                "transport",
                "connection failed: No route to host (os error 113)"
            )
        );
        assert_ne!(signature("unauthorized", "x"), signature("forbidden", "x"));
    }
}
