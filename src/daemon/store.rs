//! Durable state: the memory of each instance and the audit log, in one SQLite database
//! (`lightsout.db` under `daemon.state_dir`).
//!
//! I/O only, no decisions and no clock: every timestamp comes in as a value. The API is
//! synchronous, and the daemon calls it directly from its pass, on its single-threaded
//! runtime: each call is one short transaction on a local file, and the pass waits for it
//! anyway (an intent is written before its request is sent).
//!
//! Crash safety comes from SQLite: WAL journal, `synchronous=FULL`, and one transaction per
//! logical step. [`Store::record_intent`] writes the audit row (outcome `pending`) and the
//! instance's new memory (which carries [`crate::engine::memory::Pending`]) together, *before* the
//! request is sent; [`Store::record_outcome`] closes the row when the operation ends. After
//! a crash at any point either both the intent and its memory exist or neither does, and
//! [`Store::pending_intents`] lists what must be reconciled against Azure instead of sent
//! again.
//!
//! One writer: [`Store::open`] holds an exclusive lock on `lightsout.db.lock` for as long as
//! the store lives, so two daemons on one state directory cannot both act.
//! [`Store::open_read_only`] takes no lock and reads alongside the writer (WAL).
//!
//! Timestamps are stored as RFC 3339 text in UTC with nine fractional digits, so that text
//! order is time order. Memory is stored as JSON text, so a new memory field needs no
//! migration; the schema itself is versioned by `PRAGMA user_version` (see [`schema`]).

mod cost;
mod schema;
#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, OpenFlags, OptionalExtension as _, TransactionBehavior, params};

use crate::engine::memory::InstanceMemory;
use crate::engine::model::Action;
pub use crate::engine::model::InstanceKey;

pub use schema::SCHEMA_VERSION;

/// File name of the database inside the state directory.
pub const DB_FILE: &str = "lightsout.db";
/// File name of the writer's lock inside the state directory.
pub const LOCK_FILE: &str = "lightsout.db.lock";
/// How long a statement waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest error text kept in an audit row, in bytes; longer text is cut at a char boundary.
const MAX_ERROR_BYTES: usize = 4096;

/// Errors of the state database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the state directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the state database {path}")]
    CreateFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no state database at {path}")]
    Missing { path: PathBuf },
    #[error("cannot lock the state database {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the state database {path} is in use by another lightsout process")]
    Locked { path: PathBuf },
    #[error("cannot open the state database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the state database {path} has schema version {found}, newer than the {supported} \
         this lightsout understands; run a newer lightsout or move the database aside"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(
        "the state database {path} has schema version {found}, older than {supported}; \
         start the daemon once to migrate it"
    )]
    TooOld {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("cannot migrate the state database {path} to schema version {version}")]
    Migrate {
        path: PathBuf,
        version: i64,
        #[source]
        source: rusqlite::Error,
    },
    #[error("state database: cannot {op}")]
    Sql {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot encode the memory of {key}")]
    Encode {
        key: InstanceKey,
        #[source]
        source: serde_json::Error,
    },
    #[error("audit record {id} does not exist")]
    UnknownAudit { id: AuditId },
    #[error("audit record {id} is already final ({outcome})")]
    AlreadyFinal { id: AuditId, outcome: Outcome },
    #[error("audit record {id} is malformed: {what}")]
    CorruptAudit { id: AuditId, what: String },
    #[error(
        "the state database {path} is damaged ({detail}); lightsout will not run on it and \
         has changed nothing: stop it, move the file (and its -wal and -shm files) aside or \
         restore a backup, then start again (the audit log is in that file)"
    )]
    Corrupt { path: PathBuf, detail: String },
}

impl StoreError {
    /// Short stable name for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::CreateDir { .. } => "create_dir",
            StoreError::CreateFile { .. } => "create_file",
            StoreError::Missing { .. } => "missing",
            StoreError::Lock { .. } => "lock",
            StoreError::Locked { .. } => "locked",
            StoreError::Open { .. } => "open",
            StoreError::TooNew { .. } => "too_new",
            StoreError::TooOld { .. } => "too_old",
            StoreError::Migrate { .. } => "migrate",
            StoreError::Sql { .. } => "sql",
            StoreError::Encode { .. } => "encode",
            StoreError::UnknownAudit { .. } => "unknown_audit",
            StoreError::AlreadyFinal { .. } => "already_final",
            StoreError::CorruptAudit { .. } => "corrupt_audit",
            StoreError::Corrupt { .. } => "corrupt",
        }
    }
}

/// Wrap a SQLite error with what was being done.
fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sql { op, source }
}

fn parse_action(s: &str) -> Option<Action> {
    Some(match s {
        "start" => Action::Start,
        "stop" => Action::Stop,
        "restart" => Action::Restart,
        "idle_shutdown" => Action::IdleShutdown,
        "schedules" => Action::Schedules,
        "snooze" => Action::Snooze,
        _ => return None,
    })
}

// The audit vocabulary is the engine's (a pass plans intents and closes records); the store
// keeps it, and every caller of the store speaks it.
pub use crate::engine::audit::{AuditId, AuditRecord, Intent, Outcome};

/// Which audit records [`Store::audit`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only records at or after this instant.
    pub since: Option<Timestamp>,
    /// Only this instance name (in any workspace).
    pub instance: Option<String>,
    /// Only this workspace alias.
    pub workspace: Option<String>,
    /// At most this many records: the latest ones.
    pub limit: Option<usize>,
}

/// The state database. One writable `Store` per state directory at a time.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Held (locked) for the life of a writable store; `None` when read-only.
    _lock: Option<File>,
    health: Health,
}

/// How the database has been doing: a full disk or a damaged index refuses every intent,
/// so the daemon must be able to say so (`/healthz`, `lightsout_state_errors_total`).
#[derive(Debug, Default)]
struct Health {
    /// The latest write failed in SQLite, and none succeeded since.
    write_failing: Cell<bool>,
    /// SQLite failures (writes and the daemon's reads) by kind, not yet taken.
    errors: RefCell<BTreeMap<&'static str, u64>>,
}

impl Health {
    /// Note how a write went; returns it unchanged.
    fn wrote<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        match &r {
            Ok(_) => self.write_failing.set(false),
            Err(e) if e.is_database() => {
                self.write_failing.set(true);
                self.count(e);
            }
            // A refused update (already final, unknown id) is no sign of the database.
            Err(_) => {}
        }
        r
    }

    /// Note a failed read.
    fn read<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &r
            && e.is_database()
        {
            self.count(e);
        }
        r
    }

    fn count(&self, e: &StoreError) {
        *self.errors.borrow_mut().entry(e.kind()).or_default() += 1;
    }
}

impl StoreError {
    /// A failure of SQLite itself (I/O, full disk, corruption, locks), not a refusal of
    /// the store's own rules. The store counts these itself ([`Store::take_errors`]).
    pub fn is_database(&self) -> bool {
        matches!(self, StoreError::Sql { .. })
    }
}

/// Timestamp as stored: UTC, fixed nine fractional digits, so text order is time order.
fn ts_text(ts: Timestamp) -> String {
    format!("{ts:.9}")
}

/// `text` cut to at most [`MAX_ERROR_BYTES`] at a char boundary.
fn clip(text: &str) -> &str {
    if text.len() <= MAX_ERROR_BYTES {
        return text;
    }
    let mut end = MAX_ERROR_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Store {
    /// Open (creating if needed) the writable store in `state_dir`: the directory (mode
    /// 0700 when created), the writer lock, WAL, `synchronous=FULL`, then the migrations.
    ///
    /// A database whose schema is newer than this build is refused, not touched.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        create_dir(state_dir)?;
        let path = state_dir.join(DB_FILE);
        let lock = lock(&state_dir.join(LOCK_FILE))?;
        create_private_file(&path)?;
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "SQLite refused WAL; using its journal mode");
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_err)?;
        check_integrity(&conn, &path)?;
        migrate(&mut conn, &path)?;
        Ok(Store {
            conn,
            path,
            _lock: Some(lock),
            health: Health::default(),
        })
    }

    /// Open the store for reading only (for `lightsout audit`), alongside a running daemon.
    /// Takes no lock and migrates nothing: an older or newer schema is an error, a missing
    /// database is [`StoreError::Missing`].
    pub fn open_read_only(state_dir: &Path) -> Result<Store, StoreError> {
        let path = state_dir.join(DB_FILE);
        if !path.exists() {
            return Err(StoreError::Missing { path });
        }
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let found = user_version(&conn).map_err(open_err)?;
        check_version(&path, found)?;
        if found < SCHEMA_VERSION {
            return Err(StoreError::TooOld {
                path,
                found,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(Store {
            conn,
            path,
            _lock: None,
            health: Health::default(),
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the latest write succeeded (true before any write).
    pub fn writable(&self) -> bool {
        !self.health.write_failing.get()
    }

    /// SQLite failures met since the last call, by [`StoreError::kind`].
    pub fn take_errors(&self) -> BTreeMap<&'static str, u64> {
        std::mem::take(&mut *self.health.errors.borrow_mut())
    }

    /// Every instance's memory. A row whose JSON does not decode (hand-edited, or written
    /// by an incompatible version) is skipped with a warning: losing memory is safe.
    pub fn load_memory(&self) -> Result<BTreeMap<InstanceKey, InstanceMemory>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT workspace, instance, memory FROM instances")
            .map_err(sql("read memory"))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })
            .map_err(sql("read memory"))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (workspace, instance, json) = row.map_err(sql("read memory"))?;
            let key = InstanceKey::new(workspace, instance);
            match serde_json::from_str::<InstanceMemory>(&json) {
                Ok(memory) => {
                    out.insert(key, memory);
                }
                Err(error) => {
                    tracing::warn!(instance = %key, %error, "Skipping unreadable instance memory.");
                }
            }
        }
        Ok(out)
    }

    /// Record an intent BEFORE its request is sent, in one transaction with the instance's
    /// new memory (which carries the pending request). The row's outcome is `pending`, or
    /// `dry_run` (final at once) when `intent.dry_run`.
    pub fn record_intent(
        &mut self,
        intent: &Intent,
        memory: &InstanceMemory,
    ) -> Result<AuditId, StoreError> {
        let outcome = if intent.dry_run {
            Outcome::DryRun
        } else {
            Outcome::Pending
        };
        self.insert_with_memory(intent, outcome, memory)
    }

    /// Record a transition missed by more than `catch_up` (final outcome `missed`), in one
    /// transaction with the memory that marks it handled.
    pub fn record_missed(
        &mut self,
        intent: &Intent,
        memory: &InstanceMemory,
    ) -> Result<AuditId, StoreError> {
        self.insert_with_memory(intent, Outcome::Missed, memory)
    }

    fn insert_with_memory(
        &mut self,
        intent: &Intent,
        outcome: Outcome,
        memory: &InstanceMemory,
    ) -> Result<AuditId, StoreError> {
        let r = self.insert_with_memory_tx(intent, outcome, memory);
        self.health.wrote(r)
    }

    fn insert_with_memory_tx(
        &mut self,
        intent: &Intent,
        outcome: Outcome,
        memory: &InstanceMemory,
    ) -> Result<AuditId, StoreError> {
        let key = intent.key();
        let json = encode(&key, memory)?;
        let at = ts_text(intent.at);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin a transaction"))?;
        let id = insert_audit(&tx, intent, outcome)?;
        upsert_memory(&tx, &key, &json, &at)?;
        tx.commit().map_err(sql("commit an intent"))?;
        Ok(id)
    }

    /// Record a snooze honoured (`intent.action` is [`Action::Snooze`]): final at once,
    /// outcome `succeeded`, in a dry run too (a snooze is not an action).
    pub fn record_snooze(&mut self, intent: &Intent) -> Result<AuditId, StoreError> {
        debug_assert_eq!(intent.action, Action::Snooze);
        let r = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql("begin a transaction"))?;
            let id = insert_audit(&tx, intent, Outcome::Succeeded)?;
            tx.commit().map_err(sql("commit a snooze"))?;
            Ok(id)
        })();
        self.health.wrote(r)
    }

    /// The `detail` of the instance's latest `snooze` row (to record a snooze once, across
    /// restarts), `None` when it has none.
    pub fn latest_snooze(&self, key: &InstanceKey) -> Result<Option<String>, StoreError> {
        let r = self
            .conn
            .query_row(
                "SELECT detail FROM audit WHERE action = 'snooze' AND workspace = ?1 \
                 AND instance = ?2 ORDER BY id DESC LIMIT 1",
                params![key.workspace, key.instance],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(sql("read the latest snooze"));
        self.health.read(r)
    }

    /// Update a `pending` record. With `Outcome::Pending` only the request id is added
    /// (Azure accepted the request; the operation runs on); any other outcome is final and
    /// stamps `finished_at = at`. A request id already stored is never erased by `None`.
    ///
    /// A final record is never changed again ([`StoreError::AlreadyFinal`]).
    pub fn record_outcome(
        &mut self,
        id: AuditId,
        outcome: Outcome,
        request_id: Option<&str>,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let r = self.record_outcome_tx(id, outcome, request_id, error, at);
        self.health.wrote(r)
    }

    fn record_outcome_tx(
        &mut self,
        id: AuditId,
        outcome: Outcome,
        request_id: Option<&str>,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin a transaction"))?;
        let current: Option<String> = tx
            .query_row("SELECT outcome FROM audit WHERE id = ?1", [id.0], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql("read an audit record"))?;
        let Some(current) = current else {
            return Err(StoreError::UnknownAudit { id });
        };
        let current = Outcome::parse(&current).ok_or_else(|| StoreError::CorruptAudit {
            id,
            what: format!("unknown outcome {current:?}"),
        })?;
        if current.is_final() {
            return Err(StoreError::AlreadyFinal {
                id,
                outcome: current,
            });
        }
        let finished_at = outcome.is_final().then(|| ts_text(at));
        tx.execute(
            "UPDATE audit SET outcome = ?2, request_id = coalesce(?3, request_id), \
             error = coalesce(?4, error), finished_at = ?5 WHERE id = ?1",
            params![
                id.0,
                outcome.as_str(),
                request_id,
                error.map(clip),
                finished_at
            ],
        )
        .map_err(sql("update an audit record"))?;
        tx.commit().map_err(sql("commit an outcome"))?;
        Ok(())
    }

    /// Write the memory of several instances in one transaction (one per pass).
    /// `at` is only bookkeeping (`updated_at`).
    pub fn save_memory(
        &mut self,
        updates: &[(InstanceKey, InstanceMemory)],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let r = self.save_memory_tx(updates, at);
        self.health.wrote(r)
    }

    fn save_memory_tx(
        &mut self,
        updates: &[(InstanceKey, InstanceMemory)],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let encoded = updates
            .iter()
            .map(|(key, memory)| Ok((key, encode(key, memory)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let at = ts_text(at);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin a transaction"))?;
        for (key, json) in &encoded {
            upsert_memory(&tx, key, json, &at)?;
        }
        tx.commit().map_err(sql("commit memory"))?;
        Ok(())
    }

    /// Drop the memory of instances that no longer exist. Their audit records stay.
    pub fn forget(&mut self, keys: &[InstanceKey]) -> Result<(), StoreError> {
        let r = self.forget_tx(keys);
        self.health.wrote(r)
    }

    fn forget_tx(&mut self, keys: &[InstanceKey]) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin a transaction"))?;
        {
            let mut stmt = tx
                .prepare_cached("DELETE FROM instances WHERE workspace = ?1 AND instance = ?2")
                .map_err(sql("forget an instance"))?;
            for key in keys {
                stmt.execute(params![key.workspace, key.instance])
                    .map_err(sql("forget an instance"))?;
            }
        }
        tx.commit().map_err(sql("commit forgetting"))?;
        Ok(())
    }

    /// Write what one pass decided about one workspace, in one transaction: close the
    /// `pending` rows it settled (a row already final is left as it is), append its
    /// intents (each with its final outcome when it has one: `dry_run`, `missed`; else
    /// `pending`), upsert the memory of its instances and drop that of the ones gone.
    /// Returns the new rows' ids, in the order of `intents`. All or nothing: an intent not
    /// written is never sent.
    pub fn write_workspace(
        &mut self,
        closes: &[(AuditId, Outcome, Option<&str>)],
        intents: &[(&Intent, Outcome)],
        memory: &[(InstanceKey, InstanceMemory)],
        forget: &[InstanceKey],
        at: Timestamp,
    ) -> Result<Vec<AuditId>, StoreError> {
        let r = self.write_workspace_tx(closes, intents, memory, forget, at);
        self.health.wrote(r)
    }

    fn write_workspace_tx(
        &mut self,
        closes: &[(AuditId, Outcome, Option<&str>)],
        intents: &[(&Intent, Outcome)],
        memory: &[(InstanceKey, InstanceMemory)],
        forget: &[InstanceKey],
        at: Timestamp,
    ) -> Result<Vec<AuditId>, StoreError> {
        let encoded = memory
            .iter()
            .map(|(key, memory)| Ok((key, encode(key, memory)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let at = ts_text(at);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin a transaction"))?;
        for (id, outcome, error) in closes {
            let finished_at = outcome.is_final().then(|| at.clone());
            tx.execute(
                "UPDATE audit SET outcome = ?2, error = coalesce(?3, error), finished_at = ?4 \
                 WHERE id = ?1 AND outcome = 'pending'",
                params![id.0, outcome.as_str(), error.map(clip), finished_at],
            )
            .map_err(sql("update an audit record"))?;
        }
        let mut ids = Vec::with_capacity(intents.len());
        for (intent, outcome) in intents {
            ids.push(insert_audit(&tx, intent, *outcome)?);
        }
        for (key, json) in &encoded {
            upsert_memory(&tx, key, json, &at)?;
        }
        for key in forget {
            tx.execute(
                "DELETE FROM instances WHERE workspace = ?1 AND instance = ?2",
                params![key.workspace, key.instance],
            )
            .map_err(sql("forget an instance"))?;
        }
        tx.commit().map_err(sql("commit a workspace's pass"))?;
        Ok(ids)
    }

    /// Delete final audit records from before `before`: the audit log's retention
    /// (`[daemon] audit_retention`). Pending records stay whatever their age, because
    /// start-up reconciles them against Azure. Returns how many were deleted.
    pub fn prune_audit(&mut self, before: Timestamp) -> Result<usize, StoreError> {
        let r = self
            .conn
            .execute(
                "DELETE FROM audit WHERE at < ?1 AND outcome <> 'pending'",
                [ts_text(before)],
            )
            .map_err(sql("prune the audit log"));
        self.health.wrote(r)
    }

    /// Records still `pending`, oldest first: at start-up, reconcile these against Azure
    /// (the request may or may not have been sent; `request_id` says it was accepted)
    /// instead of sending them again.
    pub fn pending_intents(&self) -> Result<Vec<AuditRecord>, StoreError> {
        self.health.read(self.select(
            "WHERE outcome = 'pending' ORDER BY id",
            params![],
            "read pending intents",
        ))
    }

    /// Audit records matching `filter`, ordered by time then id. With a limit, the latest
    /// ones (still in ascending order).
    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = filter
            .limit
            .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let mut records = self.select(
            "WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR instance = ?2) \
             AND (?3 IS NULL OR workspace = ?3) ORDER BY at DESC, id DESC LIMIT ?4",
            params![
                filter.since.map(ts_text),
                filter.instance,
                filter.workspace,
                limit
            ],
            "read the audit log",
        )?;
        records.reverse();
        Ok(records)
    }

    fn select(
        &self,
        tail: &str,
        params: impl rusqlite::Params,
        op: &'static str,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let query = format!(
            "SELECT id, at, workspace, instance, action, reason, policy, catch_up, dry_run, \
             outcome, request_id, error, finished_at, detail FROM audit {tail}"
        );
        let mut stmt = self.conn.prepare(&query).map_err(sql(op))?;
        let rows = stmt
            .query_map(params, |r| {
                Ok(RawRecord {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    workspace: r.get(2)?,
                    instance: r.get(3)?,
                    action: r.get(4)?,
                    reason: r.get(5)?,
                    policy: r.get(6)?,
                    catch_up: r.get(7)?,
                    dry_run: r.get(8)?,
                    outcome: r.get(9)?,
                    request_id: r.get(10)?,
                    error: r.get(11)?,
                    finished_at: r.get(12)?,
                    detail: r.get(13)?,
                })
            })
            .map_err(sql(op))?;
        rows.map(|row| row.map_err(sql(op))?.decode()).collect()
    }

    /// Store a small durable value under `key`, replacing any previous one.
    pub fn put_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        let r = self
            .conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(drop)
            .map_err(sql("write meta"));
        self.health.wrote(r)
    }

    /// The value stored under `key`, if any.
    pub fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(sql("read meta"))
    }
}

/// An audit row as SQLite returns it, before its text is checked.
struct RawRecord {
    id: i64,
    at: String,
    workspace: String,
    instance: String,
    action: String,
    reason: String,
    policy: String,
    catch_up: bool,
    dry_run: bool,
    outcome: String,
    request_id: Option<String>,
    error: Option<String>,
    finished_at: Option<String>,
    detail: Option<String>,
}

impl RawRecord {
    fn decode(self) -> Result<AuditRecord, StoreError> {
        let id = AuditId(self.id);
        let corrupt = |what: String| StoreError::CorruptAudit { id, what };
        let at = self
            .at
            .parse::<Timestamp>()
            .map_err(|e| corrupt(format!("bad time {:?}: {e}", self.at)))?;
        let finished_at = match &self.finished_at {
            None => None,
            Some(t) => Some(
                t.parse::<Timestamp>()
                    .map_err(|e| corrupt(format!("bad finish time {t:?}: {e}")))?,
            ),
        };
        let action = parse_action(&self.action)
            .ok_or_else(|| corrupt(format!("unknown action {:?}", self.action)))?;
        let outcome = Outcome::parse(&self.outcome)
            .ok_or_else(|| corrupt(format!("unknown outcome {:?}", self.outcome)))?;
        Ok(AuditRecord {
            id,
            at,
            workspace: self.workspace,
            instance: self.instance,
            action,
            reason: self.reason,
            policy: self.policy,
            catch_up: self.catch_up,
            outcome,
            error: self.error,
            dry_run: self.dry_run,
            request_id: self.request_id,
            finished_at,
            detail: self.detail,
        })
    }
}

fn encode(key: &InstanceKey, memory: &InstanceMemory) -> Result<String, StoreError> {
    serde_json::to_string(memory).map_err(|source| StoreError::Encode {
        key: key.clone(),
        source,
    })
}

/// Append one audit row for `intent` (final outcomes get their `finished_at` at once).
fn insert_audit(
    tx: &rusqlite::Transaction<'_>,
    intent: &Intent,
    outcome: Outcome,
) -> Result<AuditId, StoreError> {
    let at = ts_text(intent.at);
    let finished_at = outcome.is_final().then(|| at.clone());
    tx.execute(
        "INSERT INTO audit (at, workspace, instance, action, reason, policy, catch_up, \
         dry_run, outcome, finished_at, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            at,
            intent.workspace,
            intent.instance,
            intent.action.as_str(),
            intent.reason.as_str(),
            intent.policy,
            intent.catch_up,
            intent.dry_run,
            outcome.as_str(),
            finished_at,
            intent.detail,
        ],
    )
    .map_err(sql("append to the audit log"))?;
    Ok(AuditId(tx.last_insert_rowid()))
}

fn upsert_memory(
    conn: &Connection,
    key: &InstanceKey,
    json: &str,
    at: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO instances (workspace, instance, memory, updated_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (workspace, instance) DO UPDATE SET memory = excluded.memory, \
         updated_at = excluded.updated_at",
    )
    .and_then(|mut stmt| stmt.execute(params![key.workspace, key.instance, json, at]))
    .map_err(sql("write memory"))?;
    Ok(())
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

fn check_version(path: &Path, found: i64) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Refuse a damaged database before anything is written to it: `PRAGMA quick_check` (the
/// checks of `integrity_check` short of matching every index to its table; seconds even
/// for a large audit log). A damaged index otherwise made every intent fail at runtime.
fn check_integrity(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let problems: Vec<String> = {
        let mut stmt = conn
            .prepare("PRAGMA quick_check(5)")
            .map_err(|e| corrupt(e.to_string()))?;
        stmt.query_map([], |row| row.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<_, _>>())
            .map_err(|e| corrupt(e.to_string()))?
    };
    if problems.len() == 1 && problems[0] == "ok" {
        return Ok(());
    }
    Err(corrupt(problems.join("; ")))
}

/// Bring the schema to [`SCHEMA_VERSION`] in one immediate transaction (so two processes
/// cannot migrate at once, and a crash leaves the old version whole).
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_err)?;
    let found = user_version(&tx).map_err(open_err)?;
    check_version(path, found)?;
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    // `found` is in 0..SCHEMA_VERSION here, so the index is in range.
    let start = usize::try_from(found).unwrap_or(0);
    for (index, step) in schema::MIGRATIONS.iter().enumerate().skip(start) {
        let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
        let migrate_err = |source| StoreError::Migrate {
            path: path.to_path_buf(),
            version,
            source,
        };
        tx.execute_batch(step).map_err(migrate_err)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(migrate_err)?;
    }
    tx.commit().map_err(|source| StoreError::Migrate {
        path: path.to_path_buf(),
        version: SCHEMA_VERSION,
        source,
    })?;
    if found != 0 {
        tracing::info!(path = %path.display(), from = found, to = SCHEMA_VERSION, "Migrated the state database.");
    }
    Ok(())
}

/// Create the state directory (mode 0700) if missing; an existing one is left as it is
/// (systemd's `StateDirectory=` owns its mode).
fn create_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| StoreError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })
}

/// Create `path` empty with mode 0600 if it does not exist, so that SQLite (which gives
/// its `-wal` and `-shm` files the database's mode) never makes the state world-readable.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map(drop)
        .map_err(|source| StoreError::CreateFile {
            path: path.to_path_buf(),
            source,
        })
}

/// Take the writer's exclusive lock; released when the file is closed (also on a crash).
fn lock(path: &Path) -> Result<File, StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path).map_err(|source| StoreError::Lock {
        path: path.to_path_buf(),
        source,
    })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: path.with_file_name(DB_FILE),
        }),
        Err(TryLockError::Error(source)) => Err(StoreError::Lock {
            path: path.to_path_buf(),
            source,
        }),
    }
}
