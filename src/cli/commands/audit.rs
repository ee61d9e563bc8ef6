//! `lightsout audit`: print the audit log from the state database, as a table or JSON.
//!
//! Opens the store read-only, so it runs alongside the daemon. A state directory without
//! a database yet is not an error: there is nothing to show.

use super::validate::config_path;
use crate::cli::AuditArgs;
use crate::daemon::store::{AuditFilter, AuditRecord, Store, StoreError};
use crate::engine::config;

/// Print the records selected by `--since` and `--instance`, oldest first.
pub fn audit(args: &AuditArgs) -> anyhow::Result<()> {
    let path = config_path(&args.config);
    let (cfg, _) = config::load(&path)?;
    let store = match Store::open_read_only(&cfg.daemon.state_dir) {
        Ok(store) => store,
        Err(StoreError::Missing { path }) => {
            let message = format!("no audit log yet at {}", path.display());
            if args.json {
                eprintln!("{message}");
                println!("[]");
            } else {
                println!("{message}");
            }
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let records = store.audit(&AuditFilter {
        since: args.since,
        instance: args.instance.clone(),
        ..AuditFilter::default()
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&records)?);
    } else if records.is_empty() {
        println!("no audit records match");
    } else {
        print!("{}", render_table(&records));
    }
    Ok(())
}

/// Column headers of the text table.
const HEADERS: [&str; 9] = [
    "AT",
    "WORKSPACE",
    "INSTANCE",
    "ACTION",
    "REASON",
    "POLICY",
    "OUTCOME",
    "ERROR",
    "DETAIL",
];

/// One line per record, columns padded to their widest cell. A catch-up action shows
/// `(catch-up)` after its reason; a dry run shows the outcome `dry_run`. DETAIL is the
/// evidence the decision rested on (the agent's view, a snooze's terms).
fn render_table(records: &[AuditRecord]) -> String {
    let one_line =
        |t: Option<&str>| t.map_or_else(|| "-".to_owned(), |e| e.replace(['\n', '\r'], " "));
    let rows: Vec<[String; 9]> = records
        .iter()
        .map(|r| {
            let reason = if r.catch_up {
                format!("{} (catch-up)", r.reason)
            } else {
                r.reason.clone()
            };
            [
                format!("{:.0}", r.at),
                r.workspace.clone(),
                r.instance.clone(),
                r.action.to_string(),
                reason,
                r.policy.clone(),
                r.outcome.to_string(),
                // One line per record, whatever the error text holds.
                one_line(r.error.as_deref()),
                one_line(r.detail.as_deref()),
            ]
        })
        .collect();
    let rows: Vec<Vec<String>> = rows.into_iter().map(Vec::from).collect();
    crate::cli::table::render(&HEADERS, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::store::{AuditId, Outcome};
    use crate::engine::model::Action;

    #[test]
    fn table_marks_catch_up_and_aligns_columns() {
        let record = AuditRecord {
            id: AuditId(1),
            at: "2026-03-27T18:00:00.25Z".parse().unwrap(),
            workspace: "research".into(),
            instance: "ci-a".into(),
            action: Action::Stop,
            reason: "outside_window".into(),
            policy: "office-hours".into(),
            catch_up: true,
            outcome: Outcome::Failed,
            error: Some("conflict:\nbusy".into()),
            dry_run: false,
            request_id: None,
            finished_at: None,
            detail: None,
        };
        let other = AuditRecord {
            instance: "ci-long-name".into(),
            catch_up: false,
            outcome: Outcome::Succeeded,
            error: None,
            detail: Some("agent: idle since 2026-03-27T17:00:00Z".into()),
            ..record.clone()
        };
        let table = render_table(&[record, other]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("AT                    WORKSPACE  INSTANCE      ACTION"));
        assert!(lines[1].contains("outside_window (catch-up)"), "{table}");
        assert!(
            lines[1].ends_with("failed     conflict: busy  -"),
            "{table}"
        );
        assert!(lines[2].starts_with("2026-03-27T18:00:00Z  research   ci-long-name  stop"));
        assert!(
            lines[2].ends_with("succeeded  -               agent: idle since 2026-03-27T17:00:00Z"),
            "{table}"
        );
    }
}
