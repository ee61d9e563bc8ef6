//! Progress of one long-running operation, on stderr.
//!
//! On a terminal: an indicatif spinner showing the action, the instance, its current state and
//! the elapsed time. Otherwise (pipes, CI logs, journald): one plain line per state change,
//! `ci-alice: Stopping (3s)`, so logs stay readable and diffable.
//!
//! Display only: the caller polls Azure and reports what it saw. Nothing here reads stdout,
//! which stays reserved for the command's result (text or JSON).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::time::Instant;

/// How often the spinner redraws (its elapsed counter moves even when the state does not).
const TICK: Duration = Duration::from_millis(120);

/// Where progress goes.
enum Output {
    /// An animated spinner (stderr is a terminal).
    Spinner(ProgressBar),
    /// One line per state change on stderr.
    Lines,
}

/// Progress display for one operation on one instance.
pub struct Progress {
    /// What is being done, e.g. `stop`.
    action: String,
    /// The compute instance's name.
    instance: String,
    /// When the operation was accepted (elapsed times count from here).
    started: Instant,
    /// The last state shown, to print only changes.
    last_state: Option<String>,
    output: Output,
}

impl Progress {
    /// A spinner when stderr is a terminal, plain lines otherwise.
    pub fn new(action: &str, instance: &str, started: Instant) -> Progress {
        let output = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            // The template is a constant; fall back to the default style rather than fail.
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
                bar.set_style(style);
            }
            bar.set_message(format!("{action} {instance}: accepted"));
            bar.enable_steady_tick(TICK);
            Output::Spinner(bar)
        } else {
            Output::Lines
        };
        Progress {
            action: action.to_owned(),
            instance: instance.to_owned(),
            started,
            last_state: None,
            output,
        }
    }

    /// Time since the operation was accepted.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Reports the instance's current state; shown only when it changed.
    pub fn state(&mut self, state: &str) {
        if self.last_state.as_deref() == Some(state) {
            return;
        }
        self.last_state = Some(state.to_owned());
        match &self.output {
            Output::Spinner(bar) => {
                bar.set_message(format!("{} {}: {state}", self.action, self.instance));
            }
            Output::Lines => {
                eprintln!("{}", state_line(&self.instance, state, self.elapsed()));
            }
        }
    }

    /// Ends the display, with a final line on stderr (`ci-alice: Stopped after 6s`) unless the
    /// caller prints its own result.
    pub fn finish(self, line: Option<&str>) {
        if let Output::Spinner(bar) = &self.output {
            bar.finish_and_clear();
        }
        if let Some(line) = line {
            eprintln!("{line}");
        }
    }
}

/// `ci-alice: Stopping (3s)`.
pub fn state_line(instance: &str, state: &str, elapsed: Duration) -> String {
    format!("{instance}: {state} ({})", short_duration(elapsed))
}

/// Whole seconds, as `6s`, `2m 05s` or `1h 02m`: short enough for one progress line.
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_short() {
        assert_eq!(short_duration(Duration::from_millis(999)), "0s");
        assert_eq!(short_duration(Duration::from_secs(6)), "6s");
        assert_eq!(short_duration(Duration::from_secs(125)), "2m 05s");
        assert_eq!(short_duration(Duration::from_secs(3720)), "1h 02m");
    }

    #[test]
    fn plain_line_names_instance_state_and_time() {
        assert_eq!(
            state_line("ci-alice", "Stopping", Duration::from_secs(3)),
            "ci-alice: Stopping (3s)"
        );
    }
}
