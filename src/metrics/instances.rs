//! The per-instance families, kept as plain values and written straight into the text
//! format once per pass.
//!
//! At 10,000 instances the `prometheus` crate's label storage, its `gather()` copy and the
//! encoder's intermediate structures held about 40 MB at a pass (massif); these values and
//! their text hold about 5 MB. The families are the same, with the same labels and help
//! text.

use std::collections::{BTreeMap, BTreeSet};

use crate::cost::CostView;
use crate::daemon::PassReport;
use crate::model::{InstanceKey, InstanceState};

/// The money series of one instance, in one currency.
#[derive(Debug, Clone, PartialEq)]
struct Money {
    currency: String,
    accrued: f64,
    avoided: f64,
    idle: f64,
    /// Absent while the compute price is unknown.
    hourly: Option<f64>,
}

/// Every per-instance series of one instance, as of the latest pass that listed it.
#[derive(Debug, Clone, PartialEq)]
struct Series {
    vm_size: String,
    running: bool,
    /// Only while running with a known idle time.
    idle_seconds: Option<i64>,
    unpriced: bool,
    money: Option<Money>,
}

/// The latest per-instance series of the fleet.
#[derive(Debug, Default)]
pub(super) struct InstanceSeries {
    series: BTreeMap<InstanceKey, Series>,
}

impl InstanceSeries {
    /// Take a pass: instances of listed workspaces are replaced by what the pass saw (gone
    /// ones lose their series); those of workspaces that could not be listed are kept.
    pub(super) fn update(&mut self, report: &PassReport, costs: &CostView) {
        let failed: BTreeSet<&str> = report
            .failed_workspaces
            .iter()
            .map(String::as_str)
            .collect();
        let mut old = std::mem::take(&mut self.series);
        for row in report.rows.iter() {
            let key = InstanceKey::new(&row.workspace, &row.instance);
            let previous = old.remove(&key);
            let running = InstanceState::from_azure(&row.state).is_running();
            let cost = costs.instances.get(&key);
            let money = cost.map(|c| {
                // Counters never go down, even if a durable total is read back lower.
                let before = previous
                    .as_ref()
                    .and_then(|p| p.money.as_ref())
                    .filter(|m| m.currency == costs.currency);
                let at_least = |now: f64, then: Option<f64>| then.map_or(now, |t| now.max(t));
                Money {
                    currency: costs.currency.clone(),
                    accrued: at_least(c.totals.accrued, before.map(|m| m.accrued)),
                    avoided: at_least(c.totals.avoided, before.map(|m| m.avoided)),
                    idle: at_least(c.totals.idle, before.map(|m| m.idle)),
                    hourly: c.hourly,
                }
            });
            self.series.insert(
                key,
                Series {
                    vm_size: row.vm_size.clone(),
                    running,
                    idle_seconds: row.idle_seconds.filter(|_| running),
                    unpriced: cost.is_some_and(|c| c.unpriced),
                    money,
                },
            );
        }
        for (key, kept) in old {
            if failed.contains(key.workspace.as_str()) {
                self.series.insert(key, kept);
            }
        }
    }

    /// How many instances have no known compute price.
    pub(super) fn unpriced(&self) -> usize {
        self.series.values().filter(|s| s.unpriced).count()
    }

    /// The families in the Prometheus text format (0.0.4).
    pub(super) fn render(&self) -> String {
        let mut out = String::with_capacity(self.text_len_estimate());
        self.render_into(&mut out);
        // Kept until the next pass: give back what the estimate over-reserved.
        out.shrink_to_fit();
        out
    }

    /// A little more than the rendered length: 7 lines of up to ~70 bytes of names,
    /// labels and value per instance, plus its label values. Reserved at once, since a
    /// doubling String briefly holds the text twice over.
    fn text_len_estimate(&self) -> usize {
        let per_family_header = 7 * 200;
        per_family_header
            + self
                .series
                .iter()
                .map(|(k, s)| {
                    let currency = s.money.as_ref().map_or(0, |m| m.currency.len());
                    7 * (80 + k.instance.len() + k.workspace.len() + s.vm_size.len() + currency)
                })
                .sum::<usize>()
    }

    fn render_into(&self, out: &mut String) {
        let all = || self.series.iter();
        family(
            out,
            "lightsout_instance_running",
            "1 when the compute instance is running (Running or JobRunning), 0 otherwise.",
            "gauge",
            all().map(|(k, s)| {
                (
                    k,
                    Some(s.vm_size.as_str()),
                    None,
                    Some(i64::from(s.running) as f64),
                )
            }),
        );
        family(
            out,
            "lightsout_instance_idle_seconds",
            "How long the running compute instance has been idle, in seconds (absent when unknown).",
            "gauge",
            all().map(|(k, s)| (k, None, None, s.idle_seconds.map(|i| i as f64))),
        );
        family(
            out,
            "lightsout_instance_unpriced",
            "1 when no compute price is known for the instance's vm size: its compute cost is not counted.",
            "gauge",
            all().map(|(k, s)| (k, Some(s.vm_size.as_str()), None, s.unpriced.then_some(1.0))),
        );
        let money = |pick: fn(&Money) -> Option<f64>| {
            all().map(move |(k, s)| {
                let m = s.money.as_ref();
                (k, None, m.map(|m| m.currency.as_str()), m.and_then(pick))
            })
        };
        family(
            out,
            "lightsout_cost_accrued_total",
            "Money spent while observed, at the running and stopped rates, in the currency label.",
            "counter",
            money(|m| Some(m.accrued)),
        );
        family(
            out,
            "lightsout_cost_avoided_total",
            "Compute money not spent because lightsout stopped the instance, in the currency label.",
            "counter",
            money(|m| Some(m.avoided)),
        );
        family(
            out,
            "lightsout_hourly_cost",
            "Current burn rate per hour in the currency label (absent while the compute price is unknown).",
            "gauge",
            money(|m| m.hourly),
        );
        family(
            out,
            "lightsout_idle_cost_total",
            "Compute money spent while the instance ran idle (5 minutes or more), in the currency label.",
            "counter",
            money(|m| Some(m.idle)),
        );
    }
}

/// One family: its header, then a line per series that has a value. Labels are written in
/// name order (currency, instance, vm_size, workspace), as the `prometheus` crate does.
fn family<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    kind: &str,
    series: impl Iterator<
        Item = (
            &'a InstanceKey,
            Option<&'a str>,
            Option<&'a str>,
            Option<f64>,
        ),
    >,
) {
    let mut header = false;
    for (key, vm_size, currency, value) in series {
        let Some(value) = value else { continue };
        if !header {
            for part in [
                "# HELP ",
                name,
                " ",
                &escape(help, false),
                "\n# TYPE ",
                name,
                " ",
                kind,
                "\n",
            ] {
                out.push_str(part);
            }
            header = true;
        }
        out.push_str(name);
        let mut sep = '{';
        let mut label = |out: &mut String, label: &str, v: &str| {
            out.push(sep);
            out.push_str(label);
            out.push_str("=\"");
            out.push_str(&escape(v, true));
            out.push('"');
            sep = ',';
        };
        if let Some(c) = currency {
            label(out, "currency", c);
        }
        label(out, "instance", &key.instance);
        if let Some(v) = vm_size {
            label(out, "vm_size", v);
        }
        label(out, "workspace", &key.workspace);
        out.push_str("} ");
        push_value(out, value);
        out.push('\n');
    }
}

/// A sample value as Prometheus reads it.
fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        out.push_str(&v.to_string());
    }
}

/// The text format's escaping: `\` and newline always, `"` inside label values.
fn escape(v: &str, quotes: bool) -> std::borrow::Cow<'_, str> {
    let special = |c: char| c == '\\' || c == '\n' || (quotes && c == '"');
    if !v.contains(special) {
        return v.into();
    }
    let mut s = String::with_capacity(v.len() + 8);
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '"' if quotes => s.push_str("\\\""),
            c => s.push(c),
        }
    }
    s.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::{Amounts, InstanceCost};

    #[test]
    fn the_reserved_length_covers_the_text() {
        let mut rows = Vec::new();
        let mut costs = CostView {
            currency: "USD".into(),
            ..CostView::default()
        };
        for i in 0..500 {
            let (ws, inst) = (
                format!("workspace-{}", i % 7),
                format!("ci-a-long-user-name-{i}"),
            );
            let mut row = crate::metrics::tests::row(&ws, &inst, "Running", Some(86_400 * 40 + i));
            row.vm_size = "Standard_NC24ads_A100_v4".into();
            rows.push(row);
            costs.instances.insert(
                InstanceKey::new(&ws, &inst),
                InstanceCost {
                    vm_size: "Standard_NC24ads_A100_v4".into(),
                    hourly: Some(1.0 / 3.0),
                    unpriced: i % 2 == 0,
                    stopped_by_lightsout: false,
                    idle: true,
                    totals: Amounts {
                        accrued: 12_345.678_901_234_5 + i as f64 / 7.0,
                        avoided: 1.0 / 7.0,
                        idle: 2.0 / 3.0,
                        ..Amounts::default()
                    },
                },
            );
        }
        let report = PassReport {
            rows: rows.into(),
            ..PassReport::default()
        };
        let mut series = InstanceSeries::default();
        series.update(&report, &costs);
        let text = series.render();
        assert!(
            text.len() <= series.text_len_estimate(),
            "{} > {}",
            text.len(),
            series.text_len_estimate()
        );
        assert_eq!(
            text.lines().filter(|l| !l.starts_with('#')).count(),
            500 * 6 + 250
        );
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd", true), "a\\\"b\\\\c\\nd");
        assert_eq!(escape("say \"hi\"", false), "say \"hi\"");
        let mut out = String::new();
        push_value(&mut out, f64::INFINITY);
        push_value(&mut out, 0.25);
        push_value(&mut out, 3.0);
        assert_eq!(out, "+Inf0.253");
    }
}
