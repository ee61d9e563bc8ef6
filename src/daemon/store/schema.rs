//! The database schema as an ordered list of migrations, numbered by `PRAGMA user_version`.
//!
//! Migration `n` (1-based) takes a database at version `n - 1` to version `n`. They run in
//! one `BEGIN IMMEDIATE` transaction together with the `user_version` update, so a crash
//! during a migration leaves the previous version intact. Adding a table (for example the
//! cost-accounting counters) is one more entry at the end of [`MIGRATIONS`]; an entry that
//! has shipped is never edited.

/// Every migration, oldest first. `MIGRATIONS[i]` brings the schema to version `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    // Version 1: memory per instance, the audit log, and a small key-value table.
    r#"
    -- What lightsout remembers of each instance: `memory` is the JSON of
    -- `memory::InstanceMemory`, so adding a memory field needs no migration.
    CREATE TABLE instances (
        workspace  TEXT NOT NULL,
        instance   TEXT NOT NULL,
        memory     TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (workspace, instance)
    ) WITHOUT ROWID;

    -- Append-only: a row is inserted as `pending` (or `missed`, `dry_run`) and updated at
    -- most until its outcome is final. AUTOINCREMENT: ids are never reused, so they are
    -- monotonic across deletions and restarts.
    CREATE TABLE audit (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        at          TEXT    NOT NULL,
        workspace   TEXT    NOT NULL,
        instance    TEXT    NOT NULL,
        action      TEXT    NOT NULL CHECK (action IN ('start', 'stop', 'restart')),
        reason      TEXT    NOT NULL,
        policy      TEXT    NOT NULL,
        catch_up    INTEGER NOT NULL CHECK (catch_up IN (0, 1)),
        dry_run     INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
        outcome     TEXT    NOT NULL CHECK (outcome IN
                        ('pending', 'succeeded', 'failed', 'refused', 'missed', 'dry_run')),
        request_id  TEXT,
        error       TEXT,
        finished_at TEXT
    );
    CREATE INDEX audit_by_time ON audit (at, id);
    CREATE INDEX audit_by_instance ON audit (instance, at);
    CREATE INDEX audit_pending ON audit (id) WHERE outcome = 'pending';

    -- Small durable values (last pass time and the like).
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
    // Version 2: cost accounting (see `cost.rs`).
    r#"
    -- Money and time per UTC day and instance, added to at every pass. Amounts are in
    -- `currency`; the per-instance counters of /metrics are the sums over all days.
    CREATE TABLE cost_daily (
        day              TEXT NOT NULL,
        workspace        TEXT NOT NULL,
        instance         TEXT NOT NULL,
        currency         TEXT NOT NULL,
        accrued          REAL NOT NULL DEFAULT 0,
        avoided          REAL NOT NULL DEFAULT 0,
        idle             REAL NOT NULL DEFAULT 0,
        running_seconds  REAL NOT NULL DEFAULT 0,
        stopped_seconds  REAL NOT NULL DEFAULT 0,
        unpriced_seconds REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (day, workspace, instance, currency)
    ) WITHOUT ROWID;

    -- The latest observation of each instance that the next pass integrates from: `state`
    -- is the JSON of `cost::Observed`, written in the same transaction as the amounts.
    CREATE TABLE cost_state (
        workspace TEXT NOT NULL,
        instance  TEXT NOT NULL,
        state     TEXT NOT NULL,
        PRIMARY KEY (workspace, instance)
    ) WITHOUT ROWID;
    "#,
    // Version 3: native settings changes in the audit log (issue 6). SQLite cannot widen a
    // CHECK constraint, so the table is rebuilt with the same rows and indexes.
    r#"
    CREATE TABLE audit_v3 (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        at          TEXT    NOT NULL,
        workspace   TEXT    NOT NULL,
        instance    TEXT    NOT NULL,
        action      TEXT    NOT NULL CHECK (action IN
                        ('start', 'stop', 'restart', 'idle_shutdown', 'schedules')),
        reason      TEXT    NOT NULL,
        policy      TEXT    NOT NULL,
        catch_up    INTEGER NOT NULL CHECK (catch_up IN (0, 1)),
        dry_run     INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
        outcome     TEXT    NOT NULL CHECK (outcome IN
                        ('pending', 'succeeded', 'failed', 'refused', 'missed', 'dry_run')),
        request_id  TEXT,
        error       TEXT,
        finished_at TEXT
    );
    INSERT INTO audit_v3 (id, at, workspace, instance, action, reason, policy, catch_up,
                          dry_run, outcome, request_id, error, finished_at)
        SELECT id, at, workspace, instance, action, reason, policy, catch_up,
               dry_run, outcome, request_id, error, finished_at FROM audit;
    DROP TABLE audit;
    ALTER TABLE audit_v3 RENAME TO audit;
    CREATE INDEX audit_by_time ON audit (at, id);
    CREATE INDEX audit_by_instance ON audit (instance, at);
    CREATE INDEX audit_pending ON audit (id) WHERE outcome = 'pending';
    "#,
    // Version 4: the `unknown` outcome (accepted by Azure, but its operation could not be
    // followed). The same rebuild as version 3, to widen the outcome CHECK.
    r#"
    CREATE TABLE audit_v4 (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        at          TEXT    NOT NULL,
        workspace   TEXT    NOT NULL,
        instance    TEXT    NOT NULL,
        action      TEXT    NOT NULL CHECK (action IN
                        ('start', 'stop', 'restart', 'idle_shutdown', 'schedules')),
        reason      TEXT    NOT NULL,
        policy      TEXT    NOT NULL,
        catch_up    INTEGER NOT NULL CHECK (catch_up IN (0, 1)),
        dry_run     INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
        outcome     TEXT    NOT NULL CHECK (outcome IN
                        ('pending', 'succeeded', 'failed', 'refused', 'unknown', 'missed',
                         'dry_run')),
        request_id  TEXT,
        error       TEXT,
        finished_at TEXT
    );
    INSERT INTO audit_v4 (id, at, workspace, instance, action, reason, policy, catch_up,
                          dry_run, outcome, request_id, error, finished_at)
        SELECT id, at, workspace, instance, action, reason, policy, catch_up,
               dry_run, outcome, request_id, error, finished_at FROM audit;
    DROP TABLE audit;
    ALTER TABLE audit_v4 RENAME TO audit;
    CREATE INDEX audit_by_time ON audit (at, id);
    CREATE INDEX audit_by_instance ON audit (instance, at);
    CREATE INDEX audit_pending ON audit (id) WHERE outcome = 'pending';
    "#,
    // Version 5: the agent's evidence and snoozes (issue 15). `detail` is the evidence a
    // decision rested on (the agent's view, or a snooze's terms); a `snooze` row records a
    // snooze honoured, never a request to Azure. The same rebuild as version 3.
    r#"
    CREATE TABLE audit_v5 (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        at          TEXT    NOT NULL,
        workspace   TEXT    NOT NULL,
        instance    TEXT    NOT NULL,
        action      TEXT    NOT NULL CHECK (action IN
                        ('start', 'stop', 'restart', 'idle_shutdown', 'schedules', 'snooze')),
        reason      TEXT    NOT NULL,
        policy      TEXT    NOT NULL,
        catch_up    INTEGER NOT NULL CHECK (catch_up IN (0, 1)),
        dry_run     INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
        outcome     TEXT    NOT NULL CHECK (outcome IN
                        ('pending', 'succeeded', 'failed', 'refused', 'unknown', 'missed',
                         'dry_run')),
        request_id  TEXT,
        error       TEXT,
        finished_at TEXT,
        detail      TEXT
    );
    INSERT INTO audit_v5 (id, at, workspace, instance, action, reason, policy, catch_up,
                          dry_run, outcome, request_id, error, finished_at)
        SELECT id, at, workspace, instance, action, reason, policy, catch_up,
               dry_run, outcome, request_id, error, finished_at FROM audit;
    DROP TABLE audit;
    ALTER TABLE audit_v5 RENAME TO audit;
    CREATE INDEX audit_by_time ON audit (at, id);
    CREATE INDEX audit_by_instance ON audit (instance, at);
    CREATE INDEX audit_pending ON audit (id) WHERE outcome = 'pending';
    "#,
];

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;
