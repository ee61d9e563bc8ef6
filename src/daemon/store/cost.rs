//! The cost-accounting tables (`cost_daily`, `cost_state`; schema version 2).
//!
//! The amounts of a pass and the observations they were integrated up to are written in
//! one transaction, so after a crash either both moved or neither did: the next pass
//! integrates from where the stored amounts end, never twice and never from zero.

use std::collections::BTreeMap;

use jiff::civil::Date;
use rusqlite::{TransactionBehavior, params};

use super::{AuditRecord, Store, StoreError, sql};
use crate::engine::cost::{Amounts, DayCost, Observed};
use crate::engine::model::InstanceKey;

impl Store {
    /// Add `days` (amounts in `currency` by UTC day and instance) to the daily amounts,
    /// replace the observations of `observed`, and drop those of `gone`, in one transaction.
    pub fn record_costs(
        &mut self,
        days: &BTreeMap<(Date, InstanceKey), Amounts>,
        currency: &str,
        observed: &BTreeMap<InstanceKey, Observed>,
        gone: &[InstanceKey],
    ) -> Result<(), StoreError> {
        let r = self.record_costs_tx(days, currency, observed, gone);
        self.health.wrote(r)
    }

    fn record_costs_tx(
        &mut self,
        days: &BTreeMap<(Date, InstanceKey), Amounts>,
        currency: &str,
        observed: &BTreeMap<InstanceKey, Observed>,
        gone: &[InstanceKey],
    ) -> Result<(), StoreError> {
        // Everything is written in one transaction; any error drops it unwritten.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin a transaction"))?;
        {
            let mut add = tx
                .prepare_cached(
                    "INSERT INTO cost_daily (day, workspace, instance, currency, accrued, avoided, \
                     idle, running_seconds, stopped_seconds, unpriced_seconds) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                     ON CONFLICT (day, workspace, instance, currency) DO UPDATE SET \
                     accrued = accrued + excluded.accrued, avoided = avoided + excluded.avoided, \
                     idle = idle + excluded.idle, \
                     running_seconds = running_seconds + excluded.running_seconds, \
                     stopped_seconds = stopped_seconds + excluded.stopped_seconds, \
                     unpriced_seconds = unpriced_seconds + excluded.unpriced_seconds",
                )
                .map_err(sql("add daily costs"))?;
            for ((day, key), a) in days {
                add.execute(params![
                    day.to_string(),
                    key.workspace,
                    key.instance,
                    currency,
                    a.accrued,
                    a.avoided,
                    a.idle,
                    a.running_seconds,
                    a.stopped_seconds,
                    a.unpriced_seconds
                ])
                .map_err(sql("add daily costs"))?;
            }
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO cost_state (workspace, instance, state) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (workspace, instance) DO UPDATE SET state = excluded.state",
                )
                .map_err(sql("save cost observations"))?;
            // Encoded one at a time: at 10,000 instances the whole batch was 2.5 MB.
            for (k, o) in observed {
                let json = serde_json::to_string(o).map_err(|source| StoreError::Encode {
                    key: k.clone(),
                    source,
                })?;
                put.execute(params![k.workspace, k.instance, json])
                    .map_err(sql("save cost observations"))?;
            }
            let mut del = tx
                .prepare_cached("DELETE FROM cost_state WHERE workspace = ?1 AND instance = ?2")
                .map_err(sql("forget cost observations"))?;
            for k in gone {
                del.execute(params![k.workspace, k.instance])
                    .map_err(sql("forget cost observations"))?;
            }
        }
        tx.commit().map_err(sql("commit costs"))?;
        Ok(())
    }

    /// The latest observation of every tracked instance. An undecodable row is skipped
    /// (its next interval is simply not counted).
    pub fn cost_states(&self) -> Result<BTreeMap<InstanceKey, Observed>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT workspace, instance, state FROM cost_state")
            .map_err(sql("read cost observations"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(sql("read cost observations"))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (ws, inst, json) = row.map_err(sql("read cost observations"))?;
            let key = InstanceKey::new(ws, inst);
            match serde_json::from_str::<Observed>(&json) {
                Ok(o) => {
                    out.insert(key, o);
                }
                Err(error) => {
                    tracing::warn!(instance = %key, %error, "skipping an unreadable cost observation")
                }
            }
        }
        Ok(out)
    }

    /// Totals over every stored day, by instance and currency.
    pub fn cost_totals(&self) -> Result<BTreeMap<(InstanceKey, String), Amounts>, StoreError> {
        let mut out = BTreeMap::new();
        for d in self.cost_days(None)? {
            *out.entry((InstanceKey::new(d.workspace, d.instance), d.currency))
                .or_default() += d.amounts;
        }
        Ok(out)
    }

    /// Daily amounts from `since` (a UTC day) on, oldest first.
    pub fn cost_days(&self, since: Option<Date>) -> Result<Vec<DayCost>, StoreError> {
        const OP: &str = "read daily costs";
        let mut stmt = self
            .conn
            .prepare(
                "SELECT day, workspace, instance, currency, accrued, avoided, idle, \
                 running_seconds, stopped_seconds, unpriced_seconds FROM cost_daily \
                 WHERE (?1 IS NULL OR day >= ?1) ORDER BY day, workspace, instance, currency",
            )
            .map_err(sql(OP))?;
        let rows = stmt
            .query_map(params![since.map(|d| d.to_string())], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    Amounts {
                        accrued: r.get(4)?,
                        avoided: r.get(5)?,
                        idle: r.get(6)?,
                        running_seconds: r.get(7)?,
                        stopped_seconds: r.get(8)?,
                        unpriced_seconds: r.get(9)?,
                    },
                ))
            })
            .map_err(sql(OP))?;
        let mut out = Vec::new();
        for row in rows {
            let (day, workspace, instance, currency, amounts) = row.map_err(sql(OP))?;
            let Ok(day) = day.parse::<Date>() else {
                tracing::warn!(day, "skipping a cost row with a bad day");
                continue;
            };
            out.push(DayCost {
                day,
                workspace,
                instance,
                currency,
                amounts,
            });
        }
        Ok(out)
    }

    /// The latest real action (not a dry run, not a missed transition, not a snooze
    /// honoured) on one instance.
    pub fn latest_action(&self, key: &InstanceKey) -> Result<Option<AuditRecord>, StoreError> {
        let mut found = self.health.read(self.select(
            "WHERE workspace = ?1 AND instance = ?2 AND dry_run = 0 AND action <> 'snooze' \
             AND outcome NOT IN ('missed', 'dry_run') ORDER BY at DESC, id DESC LIMIT 1",
            params![key.workspace, key.instance],
            "read the latest action",
        ))?;
        Ok(found.pop())
    }
}
