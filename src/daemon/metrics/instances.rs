//! The per-instance families, kept as plain values and written into the text format at
//! each scrape, a chunk at a time.
//!
//! At 10,000 instances the `prometheus` crate's label storage, its `gather()` copy and the
//! encoder's intermediate structures held about 40 MB at a pass (massif). These values
//! hold about 2.5 MB; their text (about 5 MB) is never held whole: a scrape streams it in
//! chunks of [`CHUNK`] bytes from a snapshot of the values. The families are the same,
//! with the same labels and help text.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use crate::engine::cost::CostView;
use crate::engine::model::{InstanceKey, InstanceState};
use crate::engine::report::PassReport;

/// About how many bytes of text a scrape renders at a time.
const CHUNK: usize = 64 * 1024;

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
    /// The series after a pass: instances of listed workspaces are replaced by what the
    /// pass saw (gone ones lose their series); those of workspaces that could not be listed
    /// are kept. Counters never go below what `self` exported.
    pub(super) fn updated(&self, report: &PassReport, costs: &CostView) -> InstanceSeries {
        let failed: BTreeSet<&str> = report
            .failed_workspaces
            .iter()
            .map(String::as_str)
            .collect();
        let mut series = BTreeMap::new();
        for row in report.rows.iter() {
            let key = InstanceKey::new(&row.workspace, &row.instance);
            let previous = self.series.get(&key);
            let running = InstanceState::from_azure(&row.state).is_running();
            let cost = costs.instances.get(&key);
            let money = cost.map(|c| {
                // Counters never go down, even if a durable total is read back lower.
                let before = previous
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
            series.insert(
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
        for (key, kept) in &self.series {
            if failed.contains(key.workspace.as_str()) && !series.contains_key(key) {
                series.insert(key.clone(), kept.clone());
            }
        }
        InstanceSeries { series }
    }

    /// How many instances have no known compute price.
    pub(super) fn unpriced(&self) -> usize {
        self.series.values().filter(|s| s.unpriced).count()
    }
}

/// One per-instance family: its name, help and type, which labels its series carry
/// besides `instance` and `workspace`, and its value (none: no series for that instance).
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    vm_size_label: bool,
    currency_label: bool,
    value: fn(&Series) -> Option<f64>,
}

const FAMILIES: [Family; 7] = [
    Family {
        name: "lightsout_instance_running",
        help: "1 when the compute instance is running (Running or JobRunning), 0 otherwise.",
        kind: "gauge",
        vm_size_label: true,
        currency_label: false,
        value: |s| Some(i64::from(s.running) as f64),
    },
    Family {
        name: "lightsout_instance_idle_seconds",
        help: "How long the running compute instance has been idle, in seconds (absent when unknown).",
        kind: "gauge",
        vm_size_label: false,
        currency_label: false,
        value: |s| s.idle_seconds.map(|i| i as f64),
    },
    Family {
        name: "lightsout_instance_unpriced",
        help: "1 when no compute price is known for the instance's vm size: its compute cost is not counted.",
        kind: "gauge",
        vm_size_label: true,
        currency_label: false,
        value: |s| s.unpriced.then_some(1.0),
    },
    Family {
        name: "lightsout_cost_accrued_total",
        help: "Money spent while observed, at the running and stopped rates, in the currency label.",
        kind: "counter",
        vm_size_label: false,
        currency_label: true,
        value: |s| s.money.as_ref().map(|m| m.accrued),
    },
    Family {
        name: "lightsout_cost_avoided_total",
        help: "Compute money not spent because lightsout stopped the instance, in the currency label.",
        kind: "counter",
        vm_size_label: false,
        currency_label: true,
        value: |s| s.money.as_ref().map(|m| m.avoided),
    },
    Family {
        name: "lightsout_hourly_cost",
        help: "Current burn rate per hour in the currency label (absent while the compute price is unknown).",
        kind: "gauge",
        vm_size_label: false,
        currency_label: true,
        value: |s| s.money.as_ref().and_then(|m| m.hourly),
    },
    Family {
        name: "lightsout_idle_cost_total",
        help: "Compute money spent while the instance ran idle (5 minutes or more), in the currency label.",
        kind: "counter",
        vm_size_label: false,
        currency_label: true,
        value: |s| s.money.as_ref().map(|m| m.idle),
    },
];

/// The per-instance families of one snapshot in the Prometheus text format (0.0.4), as
/// chunks of about [`CHUNK`] bytes: family by family, instances in key order, each family's
/// header before its first series (a family with no series has no header).
pub(super) struct InstanceText {
    snapshot: Arc<InstanceSeries>,
    /// The family being written.
    family: usize,
    /// The last instance written in it.
    after: Option<InstanceKey>,
    header_written: bool,
}

impl InstanceText {
    pub(super) fn new(snapshot: Arc<InstanceSeries>) -> InstanceText {
        InstanceText {
            snapshot,
            family: 0,
            after: None,
            header_written: false,
        }
    }
}

impl Iterator for InstanceText {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        let mut out = String::new();
        while let Some(family) = FAMILIES.get(self.family) {
            let after = self.after.take();
            let lower = match &after {
                Some(key) => Bound::Excluded(key),
                None => Bound::Unbounded,
            };
            let mut full = false;
            for (key, series) in self.snapshot.series.range((lower, Bound::Unbounded)) {
                if let Some(value) = (family.value)(series) {
                    if !self.header_written {
                        push_header(&mut out, family);
                        self.header_written = true;
                    }
                    push_line(&mut out, family, key, series, value);
                }
                if out.len() >= CHUNK {
                    self.after = Some(key.clone());
                    full = true;
                    break;
                }
            }
            if full {
                break;
            }
            // `after` was taken above: the next family starts from its first instance.
            self.family += 1;
            self.header_written = false;
        }
        (!out.is_empty()).then_some(out)
    }
}

fn push_header(out: &mut String, family: &Family) {
    for part in [
        "# HELP ",
        family.name,
        " ",
        &escape(family.help, false),
        "\n# TYPE ",
        family.name,
        " ",
        family.kind,
        "\n",
    ] {
        out.push_str(part);
    }
}

/// One series. Labels are written in name order (currency, instance, vm_size, workspace),
/// as the `prometheus` crate does.
fn push_line(out: &mut String, family: &Family, key: &InstanceKey, series: &Series, value: f64) {
    out.push_str(family.name);
    let mut sep = '{';
    let mut label = |out: &mut String, label: &str, v: &str| {
        out.push(sep);
        out.push_str(label);
        out.push_str("=\"");
        out.push_str(&escape(v, true));
        out.push('"');
        sep = ',';
    };
    if family.currency_label
        && let Some(m) = &series.money
    {
        label(out, "currency", &m.currency);
    }
    label(out, "instance", &key.instance);
    if family.vm_size_label {
        label(out, "vm_size", &series.vm_size);
    }
    label(out, "workspace", &key.workspace);
    out.push_str("} ");
    push_value(out, value);
    out.push('\n');
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
    use crate::engine::cost::{Amounts, InstanceCost};

    #[test]
    fn chunks_are_bounded_and_join_into_whole_families() {
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
            let mut row =
                crate::daemon::metrics::tests::row(&ws, &inst, "Running", Some(86_400 * 40 + i));
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
        let series = Arc::new(InstanceSeries::default().updated(&report, &costs));
        let chunks: Vec<String> = InstanceText::new(series).collect();
        assert!(chunks.len() > 3, "500 instances span several chunks");
        assert_eq!(InstanceText::new(Arc::default()).count(), 0);
        for chunk in &chunks {
            // A chunk ends after the line that reached the bound, and on a line boundary.
            assert!(chunk.len() < CHUNK + 300, "{}", chunk.len());
            assert!(chunk.ends_with('\n'));
        }
        let text = chunks.concat();
        let mut families: Vec<(&str, Vec<&str>)> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap_or_default();
                assert!(families.iter().all(|(n, _)| *n != name), "{name} twice");
                families.push((name, Vec::new()));
            } else if !line.starts_with('#') {
                let (name, labels) = line.split_once('{').unwrap_or_default();
                let current = families.last_mut().map(|(n, v)| (*n, v));
                let Some((family, lines)) = current else {
                    panic!("a series before any header: {line}")
                };
                assert_eq!(name, family, "series outside its family");
                lines.push(labels);
            }
        }
        let counts: Vec<(&str, usize)> = families.iter().map(|(n, v)| (*n, v.len())).collect();
        assert_eq!(
            counts,
            [
                ("lightsout_instance_running", 500),
                ("lightsout_instance_idle_seconds", 500),
                ("lightsout_instance_unpriced", 250),
                ("lightsout_cost_accrued_total", 500),
                ("lightsout_cost_avoided_total", 500),
                ("lightsout_hourly_cost", 500),
                ("lightsout_idle_cost_total", 500),
            ]
        );
        for (name, lines) in &families {
            let unique: BTreeSet<&&str> = lines.iter().collect();
            assert_eq!(unique.len(), lines.len(), "{name}: a series twice");
        }
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
