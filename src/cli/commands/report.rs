//! `lightsout report`: money accrued, avoided and burned idle, by workspace, instance or
//! UTC day, from the daily amounts in the state database (table, CSV or JSON).
//!
//! Opens the store read-only, so it runs alongside the daemon. Amounts in different
//! currencies (after a change of `pricing.currency`) are never added together: the
//! currency is part of every row's key.

use std::collections::BTreeMap;

use serde::Serialize;

use super::validate::config_path;
use crate::cli::{ReportArgs, ReportBy, ReportFormat};
use crate::daemon::store::{Store, StoreError};
use crate::engine::config;
use crate::engine::cost::{Amounts, DayCost};

/// One output row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub currency: String,
    pub accrued: f64,
    pub avoided: f64,
    pub idle: f64,
    pub running_hours: f64,
    pub stopped_hours: f64,
    /// Hours during which a compute price was needed but unknown (not counted in money).
    pub unpriced_hours: f64,
}

/// Print the report selected by the arguments.
pub fn report(args: &ReportArgs) -> anyhow::Result<()> {
    let path = config_path(&args.config);
    let (cfg, _) = config::load(&path)?;
    let days = match Store::open_read_only(&cfg.daemon.state_dir) {
        Ok(store) => {
            let since = args
                .since
                .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date());
            store.cost_days(since)?
        }
        Err(StoreError::Missing { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let rows = group(&days, args.by);
    print!("{}", render(&rows, args.by, args.format)?);
    Ok(())
}

/// Sum the daily amounts into one row per group (and currency), in key order.
pub fn group(days: &[DayCost], by: ReportBy) -> Vec<ReportRow> {
    let mut groups: BTreeMap<(String, String, String), Amounts> = BTreeMap::new();
    for d in days {
        let key = match by {
            ReportBy::Day => (d.day.to_string(), String::new(), d.currency.clone()),
            ReportBy::Workspace => (d.workspace.clone(), String::new(), d.currency.clone()),
            ReportBy::Instance => (d.workspace.clone(), d.instance.clone(), d.currency.clone()),
        };
        *groups.entry(key).or_default() += d.amounts;
    }
    groups
        .into_iter()
        .map(|((a, b, currency), x)| ReportRow {
            day: (by == ReportBy::Day).then(|| a.clone()),
            workspace: (by != ReportBy::Day).then(|| a.clone()),
            instance: (by == ReportBy::Instance).then_some(b),
            currency,
            accrued: x.accrued,
            avoided: x.avoided,
            idle: x.idle,
            running_hours: x.running_seconds / 3600.0,
            stopped_hours: x.stopped_seconds / 3600.0,
            unpriced_hours: x.unpriced_seconds / 3600.0,
        })
        .collect()
}

/// The key columns of a grouping.
fn key_headers(by: ReportBy) -> &'static [&'static str] {
    match by {
        ReportBy::Day => &["DAY"],
        ReportBy::Workspace => &["WORKSPACE"],
        ReportBy::Instance => &["WORKSPACE", "INSTANCE"],
    }
}

const VALUE_HEADERS: [&str; 7] = [
    "CURRENCY",
    "ACCRUED",
    "AVOIDED",
    "IDLE",
    "RUNNING_H",
    "STOPPED_H",
    "UNPRICED_H",
];

fn cells(r: &ReportRow, by: ReportBy) -> Vec<String> {
    let mut c: Vec<String> = match by {
        ReportBy::Day => vec![r.day.clone().unwrap_or_default()],
        ReportBy::Workspace => vec![r.workspace.clone().unwrap_or_default()],
        ReportBy::Instance => vec![
            r.workspace.clone().unwrap_or_default(),
            r.instance.clone().unwrap_or_default(),
        ],
    };
    c.push(r.currency.clone());
    for v in [r.accrued, r.avoided, r.idle] {
        c.push(format!("{v:.4}"));
    }
    for v in [r.running_hours, r.stopped_hours, r.unpriced_hours] {
        c.push(format!("{v:.2}"));
    }
    c
}

/// The report as text in `format`.
pub fn render(rows: &[ReportRow], by: ReportBy, format: ReportFormat) -> anyhow::Result<String> {
    let headers: Vec<&str> = key_headers(by)
        .iter()
        .copied()
        .chain(VALUE_HEADERS)
        .collect();
    Ok(match format {
        ReportFormat::Json => format!("{}\n", serde_json::to_string_pretty(rows)?),
        ReportFormat::Csv => {
            let mut out = headers
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(",");
            out.push('\n');
            for r in rows {
                let line: Vec<String> = cells(r, by).iter().map(|c| csv_cell(c)).collect();
                out.push_str(&line.join(","));
                out.push('\n');
            }
            out
        }
        ReportFormat::Table if rows.is_empty() => "no cost data recorded yet\n".to_owned(),
        ReportFormat::Table => {
            let mut body: Vec<Vec<String>> = rows.iter().map(|r| cells(r, by)).collect();
            // One total line per currency.
            let mut totals: BTreeMap<&str, ReportRow> = BTreeMap::new();
            for r in rows {
                let t = totals.entry(&r.currency).or_insert_with(|| ReportRow {
                    day: Some("TOTAL".into()),
                    workspace: Some("TOTAL".into()),
                    instance: Some(String::new()),
                    currency: r.currency.clone(),
                    accrued: 0.0,
                    avoided: 0.0,
                    idle: 0.0,
                    running_hours: 0.0,
                    stopped_hours: 0.0,
                    unpriced_hours: 0.0,
                });
                t.accrued += r.accrued;
                t.avoided += r.avoided;
                t.idle += r.idle;
                t.running_hours += r.running_hours;
                t.stopped_hours += r.stopped_hours;
                t.unpriced_hours += r.unpriced_hours;
            }
            body.extend(totals.values().map(|t| cells(t, by)));
            crate::cli::table::render(&headers, &body)
        }
    })
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: &str, ws: &str, inst: &str, accrued: f64) -> DayCost {
        DayCost {
            day: d.parse().unwrap(),
            workspace: ws.into(),
            instance: inst.into(),
            currency: "USD".into(),
            amounts: Amounts {
                accrued,
                avoided: 1.0,
                idle: 0.5,
                running_seconds: 3600.0,
                stopped_seconds: 0.0,
                unpriced_seconds: 0.0,
            },
        }
    }

    fn days() -> Vec<DayCost> {
        vec![
            day("2026-03-27", "lab", "a", 2.0),
            day("2026-03-27", "lab", "b", 3.0),
            day("2026-03-28", "lab", "a", 4.0),
            day("2026-03-28", "prod", "c,x", 1.0),
        ]
    }

    #[test]
    fn groups_by_day_workspace_and_instance() {
        let by_day = group(&days(), ReportBy::Day);
        assert_eq!(by_day.len(), 2);
        assert_eq!(by_day[0].day.as_deref(), Some("2026-03-27"));
        assert_eq!(by_day[0].accrued, 5.0);
        assert_eq!(by_day[1].avoided, 2.0);
        let by_ws = group(&days(), ReportBy::Workspace);
        assert_eq!(
            by_ws
                .iter()
                .map(|r| (r.workspace.clone().unwrap(), r.accrued))
                .collect::<Vec<_>>(),
            vec![("lab".to_owned(), 9.0), ("prod".to_owned(), 1.0)]
        );
        let by_inst = group(&days(), ReportBy::Instance);
        assert_eq!(by_inst.len(), 3);
        assert_eq!(by_inst[0].running_hours, 2.0);
    }

    #[test]
    fn renders_table_csv_and_json() {
        let rows = group(&days(), ReportBy::Instance);
        let table = render(&rows, ReportBy::Instance, ReportFormat::Table).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("WORKSPACE  INSTANCE  CURRENCY  ACCRUED"),
            "{table}"
        );
        assert!(
            lines[1].starts_with("lab        a         USD       6.0000"),
            "{table}"
        );
        assert!(lines[4].starts_with("TOTAL"), "{table}");
        assert!(lines[4].contains("10.0000"), "{table}");
        let csv = render(&rows, ReportBy::Instance, ReportFormat::Csv).unwrap();
        assert!(csv.starts_with("workspace,instance,currency,accrued,avoided,idle,running_h"));
        assert!(csv.contains("prod,\"c,x\",USD,1.0000"), "{csv}");
        let json: serde_json::Value =
            serde_json::from_str(&render(&rows, ReportBy::Instance, ReportFormat::Json).unwrap())
                .unwrap();
        assert_eq!(json[0]["instance"], "a");
        assert_eq!(json[0]["accrued"], 6.0);
        assert!(json[0].get("day").is_none());
        assert_eq!(
            render(&[], ReportBy::Day, ReportFormat::Table).unwrap(),
            "no cost data recorded yet\n"
        );
    }
}
