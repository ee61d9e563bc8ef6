//! Unit tests of the store against real SQLite files in temporary directories.

use super::*;
use crate::engine::memory::Pending;
use crate::engine::model::Reason;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn intent(at: &str, instance: &str) -> Intent {
    Intent {
        at: ts(at),
        workspace: "research".into(),
        instance: instance.into(),
        action: Action::Stop,
        reason: Reason::OutsideWindow,
        policy: "office-hours".into(),
        catch_up: false,
        dry_run: false,
        detail: None,
    }
}

fn pending_memory(at: &str) -> InstanceMemory {
    InstanceMemory {
        first_seen: Some(ts("2026-03-01T00:00:00Z")),
        handled_transition: Some(ts(at)),
        pending: Some(Pending {
            action: Action::Stop,
            requested_at: ts(at),
            transition: Some(ts(at)),
            event: None,
        }),
        ..InstanceMemory::default()
    }
}

#[test]
fn migrates_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("nested/state");
    let store = Store::open(&state).unwrap();
    assert_eq!(store.path(), state.join(DB_FILE));
    assert_eq!(user_version(&store.conn).unwrap(), SCHEMA_VERSION);
    let mode: String = store
        .conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = store
        .conn
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
    assert!(store.load_memory().unwrap().is_empty());
    assert!(store.audit(&AuditFilter::default()).unwrap().is_empty());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let dir_mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let db_mode = std::fs::metadata(state.join(DB_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(db_mode & 0o077, 0, "database not readable by others");
    }
}

#[test]
fn reopening_keeps_data_and_does_not_migrate_again() {
    let dir = tempfile::tempdir().unwrap();
    let key = InstanceKey::new("research", "ci-a");
    let id = {
        let mut store = Store::open(dir.path()).unwrap();
        store.put_meta("last_pass", "2026-03-27T18:00:00Z").unwrap();
        store
            .record_intent(
                &intent("2026-03-27T18:00:00Z", "ci-a"),
                &pending_memory("2026-03-27T18:00:00Z"),
            )
            .unwrap()
    };
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.get_meta("last_pass").unwrap().as_deref(),
        Some("2026-03-27T18:00:00Z")
    );
    assert_eq!(store.get_meta("absent").unwrap(), None);
    let memory = store.load_memory().unwrap();
    assert_eq!(memory[&key], pending_memory("2026-03-27T18:00:00Z"));
    let pending = store.pending_intents().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, id);
    assert_eq!(pending[0].outcome, Outcome::Pending);
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    {
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    let err = Store::open(dir.path()).unwrap_err();
    assert_eq!(err.kind(), "too_new", "{err}");
    assert!(err.to_string().contains("newer"), "{err}");
    let err = Store::open_read_only(dir.path()).unwrap_err();
    assert_eq!(err.kind(), "too_new");
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION + 1);
}

#[test]
fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path()).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert_eq!(err.kind(), "locked", "{err}");
    drop(first);
    Store::open(dir.path()).unwrap();
}

#[test]
fn intent_and_memory_are_written_together() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let mut i = intent("2026-03-27T18:00:00.5Z", "ci-a");
    i.catch_up = true;
    let id = store
        .record_intent(&i, &pending_memory("2026-03-27T18:00:00.5Z"))
        .unwrap();
    drop(store);

    let store = Store::open_read_only(dir.path()).unwrap();
    let memory = store.load_memory().unwrap();
    assert_eq!(
        memory[&InstanceKey::new("research", "ci-a")],
        pending_memory("2026-03-27T18:00:00.5Z")
    );
    let records = store.audit(&AuditFilter::default()).unwrap();
    assert_eq!(
        records,
        vec![AuditRecord {
            id,
            at: ts("2026-03-27T18:00:00.5Z"),
            workspace: "research".into(),
            instance: "ci-a".into(),
            action: Action::Stop,
            reason: "outside_window".into(),
            policy: "office-hours".into(),
            catch_up: true,
            outcome: Outcome::Pending,
            error: None,
            dry_run: false,
            request_id: None,
            finished_at: None,
            detail: None,
        }]
    );
}

#[test]
fn a_failing_intent_leaves_no_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    // Break the memory table so the second half of the transaction fails.
    store
        .conn
        .execute_batch(
            "CREATE TRIGGER no_memory BEFORE INSERT ON instances \
             BEGIN SELECT RAISE(ABORT, 'boom'); END;",
        )
        .unwrap();
    let err = store
        .record_intent(
            &intent("2026-03-27T18:00:00Z", "ci-a"),
            &pending_memory("2026-03-27T18:00:00Z"),
        )
        .unwrap_err();
    assert_eq!(err.kind(), "sql");
    assert!(store.audit(&AuditFilter::default()).unwrap().is_empty());
    assert!(store.load_memory().unwrap().is_empty());
}

#[test]
fn outcomes_update_a_pending_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let at = "2026-03-27T18:00:00Z";
    let id = store
        .record_intent(&intent(at, "ci-a"), &pending_memory(at))
        .unwrap();
    let later = ts("2026-03-27T18:00:01Z");
    let done = ts("2026-03-27T18:03:00Z");

    // Accepted: still pending, request id kept.
    store
        .record_outcome(id, Outcome::Pending, Some("req-1"), None, later)
        .unwrap();
    let pending = store.pending_intents().unwrap();
    assert_eq!(pending[0].request_id.as_deref(), Some("req-1"));
    assert_eq!(pending[0].finished_at, None);

    store
        .record_outcome(id, Outcome::Succeeded, None, None, done)
        .unwrap();
    assert!(store.pending_intents().unwrap().is_empty());
    let r = &store.audit(&AuditFilter::default()).unwrap()[0];
    assert_eq!(r.outcome, Outcome::Succeeded);
    assert_eq!(r.request_id.as_deref(), Some("req-1"), "not erased by None");
    assert_eq!(r.finished_at, Some(done));

    let err = store
        .record_outcome(id, Outcome::Failed, None, Some("late"), done)
        .unwrap_err();
    assert_eq!(err.kind(), "already_final");
    let err = store
        .record_outcome(AuditId(9999), Outcome::Failed, None, None, done)
        .unwrap_err();
    assert_eq!(err.kind(), "unknown_audit");

    // Refused with an error text; an overlong text is clipped.
    let id2 = store
        .record_intent(&intent(at, "ci-b"), &pending_memory(at))
        .unwrap();
    let long = "é".repeat(MAX_ERROR_BYTES);
    store
        .record_outcome(id2, Outcome::Refused, Some("req-2"), Some(&long), done)
        .unwrap();
    let r = store
        .audit(&AuditFilter {
            instance: Some("ci-b".into()),
            ..AuditFilter::default()
        })
        .unwrap()
        .remove(0);
    assert_eq!(r.outcome, Outcome::Refused);
    let error = r.error.unwrap();
    assert!(error.len() <= MAX_ERROR_BYTES && error.len() >= MAX_ERROR_BYTES - 1);
}

#[test]
fn dry_run_and_missed_rows_are_final_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let at = "2026-03-27T18:00:00Z";
    let mut dry = intent(at, "ci-a");
    dry.dry_run = true;
    store
        .record_intent(&dry, &InstanceMemory::default())
        .unwrap();
    store
        .record_missed(&intent(at, "ci-b"), &InstanceMemory::default())
        .unwrap();
    assert!(store.pending_intents().unwrap().is_empty());
    let records = store.audit(&AuditFilter::default()).unwrap();
    assert_eq!(records[0].outcome, Outcome::DryRun);
    assert!(records[0].dry_run);
    assert_eq!(records[1].outcome, Outcome::Missed);
    assert_eq!(records[1].finished_at, Some(ts(at)));
}

#[test]
fn audit_filters_by_since_instance_and_limit_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let m = InstanceMemory::default();
    // Inserted out of time order; sub-second times must sort as times, not as text.
    store
        .record_intent(&intent("2026-03-27T18:00:01Z", "ci-a"), &m)
        .unwrap();
    store
        .record_intent(&intent("2026-03-27T18:00:00.5Z", "ci-b"), &m)
        .unwrap();
    store
        .record_intent(&intent("2026-03-27T18:00:00Z", "ci-a"), &m)
        .unwrap();
    store
        .record_intent(&intent("2026-03-27T19:00:00Z", "ci-b"), &m)
        .unwrap();

    let all = store.audit(&AuditFilter::default()).unwrap();
    let times: Vec<String> = all.iter().map(|r| r.at.to_string()).collect();
    assert_eq!(
        times,
        [
            "2026-03-27T18:00:00Z",
            "2026-03-27T18:00:00.5Z",
            "2026-03-27T18:00:01Z",
            "2026-03-27T19:00:00Z"
        ]
    );

    let since = store
        .audit(&AuditFilter {
            since: Some(ts("2026-03-27T18:00:00.5Z")),
            ..AuditFilter::default()
        })
        .unwrap();
    assert_eq!(since.len(), 3);

    let a = store
        .audit(&AuditFilter {
            instance: Some("ci-a".into()),
            ..AuditFilter::default()
        })
        .unwrap();
    assert!(a.iter().all(|r| r.instance == "ci-a"));
    assert_eq!(a.len(), 2);

    let latest = store
        .audit(&AuditFilter {
            limit: Some(2),
            ..AuditFilter::default()
        })
        .unwrap();
    assert_eq!(latest, all[2..]);

    let none = store
        .audit(&AuditFilter {
            workspace: Some("other".into()),
            ..AuditFilter::default()
        })
        .unwrap();
    assert!(none.is_empty());
}

#[test]
fn a_corrupt_memory_row_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let good = InstanceKey::new("research", "ci-a");
    store
        .save_memory(
            &[
                (good.clone(), pending_memory("2026-03-27T18:00:00Z")),
                (
                    InstanceKey::new("research", "ci-b"),
                    InstanceMemory::default(),
                ),
            ],
            ts("2026-03-27T18:00:00Z"),
        )
        .unwrap();
    store
        .conn
        .execute(
            "UPDATE instances SET memory = '{\"first_seen\": 12' WHERE instance = 'ci-b'",
            [],
        )
        .unwrap();
    let memory = store.load_memory().unwrap();
    assert_eq!(memory.len(), 1);
    assert!(memory.contains_key(&good));
}

#[test]
fn save_memory_upserts_and_forget_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let a = InstanceKey::new("research", "ci-a");
    let b = InstanceKey::new("research", "ci-b");
    let now = ts("2026-03-27T18:00:00Z");
    store
        .save_memory(
            &[
                (a.clone(), InstanceMemory::default()),
                (b.clone(), InstanceMemory::default()),
            ],
            now,
        )
        .unwrap();
    store
        .save_memory(&[(a.clone(), pending_memory("2026-03-27T18:00:00Z"))], now)
        .unwrap();
    store.forget(std::slice::from_ref(&b)).unwrap();
    let memory = store.load_memory().unwrap();
    assert_eq!(memory.len(), 1);
    assert_eq!(memory[&a], pending_memory("2026-03-27T18:00:00Z"));
}

#[test]
fn read_only_reads_alongside_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let missing = Store::open_read_only(dir.path()).unwrap_err();
    assert_eq!(missing.kind(), "missing");

    let mut writer = Store::open(dir.path()).unwrap();
    let at = "2026-03-27T18:00:00Z";
    let id = writer
        .record_intent(&intent(at, "ci-a"), &pending_memory(at))
        .unwrap();
    let reader = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.audit(&AuditFilter::default()).unwrap().len(), 1);

    // The writer goes on writing while a reader is open; the reader sees the new data.
    writer
        .record_outcome(id, Outcome::Succeeded, Some("r"), None, ts(at))
        .unwrap();
    writer
        .record_intent(&intent(at, "ci-b"), &pending_memory(at))
        .unwrap();
    let records = reader.audit(&AuditFilter::default()).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].outcome, Outcome::Succeeded);

    // Writes through the reader fail.
    let mut reader = reader;
    assert!(reader.put_meta("k", "v").is_err());
    drop(writer);
    // Still readable once the writer has closed (and checkpointed the WAL away).
    let reader = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.pending_intents().unwrap().len(), 1);
}

#[test]
fn a_never_migrated_database_is_too_old_for_readers() {
    let dir = tempfile::tempdir().unwrap();
    drop(Connection::open(dir.path().join(DB_FILE)).unwrap());
    let err = Store::open_read_only(dir.path()).unwrap_err();
    assert_eq!(err.kind(), "too_old", "{err}");
}

#[test]
fn audit_record_json_has_the_contract_fields() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store
        .record_intent(
            &intent("2026-03-27T18:00:00Z", "ci-a"),
            &InstanceMemory::default(),
        )
        .unwrap();
    let json = serde_json::to_value(store.audit(&AuditFilter::default()).unwrap()).unwrap();
    let r = &json[0];
    for field in [
        "at",
        "workspace",
        "instance",
        "action",
        "reason",
        "policy",
        "catch_up",
        "outcome",
        "error",
    ] {
        assert!(r.get(field).is_some(), "missing {field} in {r}");
    }
    assert_eq!(r["at"], "2026-03-27T18:00:00Z");
    assert_eq!(r["action"], "stop");
    assert_eq!(r["outcome"], "pending");
    assert_eq!(r["id"], 1);
}

#[test]
fn store_can_move_to_a_blocking_thread() {
    fn is_send<T: Send>() {}
    is_send::<Store>();
}

#[test]
fn unknown_is_a_final_outcome_with_its_request_id_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let at = "2026-03-27T18:00:00Z";
    let id = store
        .record_intent(&intent(at, "ci-a"), &pending_memory(at))
        .unwrap();
    store
        .record_outcome(
            id,
            Outcome::Unknown,
            Some("req-1"),
            Some("stop: accepted (HTTP 202) but not followed"),
            ts(at),
        )
        .unwrap();
    assert!(store.pending_intents().unwrap().is_empty());
    let r = &store.audit(&AuditFilter::default()).unwrap()[0];
    assert_eq!(r.outcome, Outcome::Unknown);
    assert_eq!(r.outcome.as_str(), "unknown");
    assert_eq!(r.request_id.as_deref(), Some("req-1"));
    let json = serde_json::to_value(r).unwrap();
    assert_eq!(json["outcome"], "unknown");
    let err = store
        .record_outcome(id, Outcome::Succeeded, None, None, ts(at))
        .unwrap_err();
    assert_eq!(err.kind(), "already_final");
}

#[test]
fn version_3_databases_migrate_with_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    {
        // A database as version 3 left it, with one finished row.
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        let tx = conn.transaction().unwrap();
        for step in &schema::MIGRATIONS[..3] {
            tx.execute_batch(step).unwrap();
        }
        tx.pragma_update(None, "user_version", 3).unwrap();
        tx.execute(
            "INSERT INTO audit (at, workspace, instance, action, reason, policy, catch_up, \
             dry_run, outcome, request_id, error, finished_at) VALUES \
             ('2026-03-27T18:00:00Z', 'research', 'ci-a', 'stop', 'schedule', 'p', 0, 0, \
              'refused', 'req-0', 'Conflict', '2026-03-27T18:00:01Z')",
            [],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let mut store = Store::open(dir.path()).unwrap();
    assert_eq!(user_version(&store.conn).unwrap(), SCHEMA_VERSION);
    let old = store.audit(&AuditFilter::default()).unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].outcome, Outcome::Refused);
    let at = "2026-03-27T19:00:00Z";
    let id = store
        .record_intent(&intent(at, "ci-b"), &pending_memory(at))
        .unwrap();
    assert!(id.0 > old[0].id.0, "ids keep growing across the rebuild");
    store
        .record_outcome(id, Outcome::Unknown, None, None, ts(at))
        .unwrap();
}

/// Version 5 (issue 15): a version 4 database keeps its rows (no detail), and then takes
/// `snooze` rows and actions with their `detail`.
#[test]
fn version_4_databases_migrate_to_snoozes_and_details() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        let tx = conn.transaction().unwrap();
        for step in &schema::MIGRATIONS[..4] {
            tx.execute_batch(step).unwrap();
        }
        tx.pragma_update(None, "user_version", 4).unwrap();
        tx.execute(
            "INSERT INTO audit (at, workspace, instance, action, reason, policy, catch_up, \
             dry_run, outcome, request_id, error, finished_at) VALUES \
             ('2026-03-27T18:00:00Z', 'research', 'ci-a', 'stop', 'idle', 'p', 0, 0, \
              'unknown', 'req-0', 'lost', '2026-03-27T18:00:01Z')",
            [],
        )
        .unwrap();
        // Version 4 refuses a snooze: the CHECK is what version 5 widens.
        assert!(
            tx.execute(
                "INSERT INTO audit (at, workspace, instance, action, reason, policy, catch_up, \
                 dry_run, outcome) VALUES ('2026-03-27T18:00:00Z', 'research', 'ci-a', \
                 'snooze', 'snooze', 'p', 0, 0, 'succeeded')",
                [],
            )
            .is_err()
        );
        tx.commit().unwrap();
    }
    let mut store = Store::open(dir.path()).unwrap();
    assert_eq!(user_version(&store.conn).unwrap(), SCHEMA_VERSION);
    let old = store.audit(&AuditFilter::default()).unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(
        (old[0].outcome, old[0].detail.as_deref()),
        (Outcome::Unknown, None)
    );
    let key = InstanceKey::new("research", "ci-b");
    assert_eq!(store.latest_snooze(&key).unwrap(), None);
    let snooze = |detail: &str| Intent {
        action: Action::Snooze,
        reason: Reason::Snooze,
        detail: Some(detail.into()),
        ..intent("2026-03-27T19:00:00Z", "ci-b")
    };
    let first = store
        .record_snooze(&snooze("until 20:00 by alice"))
        .unwrap();
    let id = store
        .record_snooze(&snooze("until 21:00 by alice"))
        .unwrap();
    assert!(id.0 > first.0 && first.0 > old[0].id.0);
    assert_eq!(
        store.latest_snooze(&key).unwrap().as_deref(),
        Some("until 21:00 by alice")
    );
    // A snooze honoured is no action of ours (`stopped_by_lightsout` looks at the latest).
    assert_eq!(store.latest_action(&key).unwrap(), None);
    let stop = Intent {
        detail: Some("agent: idle since 2026-03-27T18:00:00Z".into()),
        ..intent("2026-03-27T19:01:00Z", "ci-b")
    };
    store
        .record_intent(&stop, &pending_memory("2026-03-27T19:01:00Z"))
        .unwrap();
    let rows = store.audit(&AuditFilter::default()).unwrap();
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.action,
                r.reason.as_str(),
                r.outcome,
                r.detail.as_deref(),
                r.finished_at.is_some(),
            )
        })
        .collect();
    assert_eq!(
        got[1..],
        [
            (
                Action::Snooze,
                "snooze",
                Outcome::Succeeded,
                Some("until 20:00 by alice"),
                true
            ),
            (
                Action::Snooze,
                "snooze",
                Outcome::Succeeded,
                Some("until 21:00 by alice"),
                true
            ),
            (
                Action::Stop,
                "outside_window",
                Outcome::Pending,
                Some("agent: idle since 2026-03-27T18:00:00Z"),
                false
            ),
        ]
    );
}

#[test]
fn pruning_deletes_old_final_records_and_keeps_pending_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let old_done = store
        .record_intent(
            &intent("2025-01-01T00:00:00Z", "ci-old"),
            &pending_memory("2025-01-01T00:00:00Z"),
        )
        .unwrap();
    store
        .record_outcome(
            old_done,
            Outcome::Succeeded,
            None,
            None,
            ts("2025-01-01T00:05:00Z"),
        )
        .unwrap();
    let old_pending = store
        .record_intent(
            &intent("2025-01-02T00:00:00Z", "ci-stuck"),
            &pending_memory("2025-01-02T00:00:00Z"),
        )
        .unwrap();
    let recent = store
        .record_intent(
            &intent("2026-06-01T00:00:00Z", "ci-new"),
            &pending_memory("2026-06-01T00:00:00Z"),
        )
        .unwrap();
    store
        .record_outcome(
            recent,
            Outcome::Failed,
            None,
            Some("x"),
            ts("2026-06-01T00:05:00Z"),
        )
        .unwrap();

    let deleted = store.prune_audit(ts("2026-01-01T00:00:00Z")).unwrap();
    assert_eq!(deleted, 1);
    let left: Vec<AuditId> = store
        .audit(&AuditFilter::default())
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, [old_pending, recent]);
    // Ids are never reused after a deletion.
    let next = store
        .record_intent(
            &intent("2026-07-01T00:00:00Z", "ci-next"),
            &pending_memory("2026-07-01T00:00:00Z"),
        )
        .unwrap();
    assert!(next.0 > recent.0);
    assert_eq!(store.prune_audit(ts("2026-01-01T00:00:00Z")).unwrap(), 0);
}

#[test]
fn a_full_database_is_unwritable_and_counted_until_a_write_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    assert!(store.writable());
    // No page may be added: SQLite's own SQLITE_FULL, as on a full disk.
    let pages: i64 = store
        .conn
        .pragma_query_value(None, "page_count", |r| r.get(0))
        .unwrap();
    store
        .conn
        .pragma_update(None, "max_page_count", pages)
        .unwrap();
    let mut n = 0;
    let err = loop {
        n += 1;
        match store.record_intent(
            &intent(
                "2026-03-27T18:00:00Z",
                &format!("ci-{n:04}-{}", "x".repeat(200)),
            ),
            &pending_memory("2026-03-27T18:00:00Z"),
        ) {
            Ok(_) => assert!(n < 10_000, "never full"),
            Err(e) => break e,
        }
    };
    assert!(err.is_database(), "{err:?}");
    assert!(!store.writable());
    assert!(format!("{:?}", err).contains("full"), "{err:?}");
    assert_eq!(store.take_errors(), BTreeMap::from([("sql", 1)]));
    assert!(store.take_errors().is_empty(), "taken once");
    // A refusal of the store's own rules says nothing about the database.
    assert!(matches!(
        store.record_outcome(
            AuditId(999_999),
            Outcome::Failed,
            None,
            None,
            ts("2026-03-27T18:00:00Z")
        ),
        Err(StoreError::UnknownAudit { .. })
    ));
    assert!(!store.writable());
    store
        .conn
        .pragma_update(None, "max_page_count", 1_000_000)
        .unwrap();
    store
        .record_intent(
            &intent("2026-03-27T18:01:00Z", "ci-b"),
            &pending_memory("2026-03-27T18:01:00Z"),
        )
        .unwrap();
    assert!(
        store.writable(),
        "recovers with the first write that succeeds"
    );
}

#[test]
fn open_refuses_a_damaged_database_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = Store::open(dir.path()).unwrap();
        for n in 0..2000 {
            store
                .record_intent(
                    &intent("2026-03-27T18:00:00Z", &format!("ci-{n:05}")),
                    &pending_memory("2026-03-27T18:00:00Z"),
                )
                .unwrap();
        }
    }
    let db = dir.path().join(DB_FILE);
    let (page_size, root): (i64, i64) = {
        let c = Connection::open(&db).unwrap();
        (
            c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap(),
            c.query_row(
                "SELECT rootpage FROM sqlite_master WHERE name = 'audit_by_instance'",
                [],
                |r| r.get(0),
            )
            .unwrap(),
        )
    };
    let (page_size, root) = (page_size as usize, root as usize);
    let mut bytes = std::fs::read(&db).unwrap();
    for (i, b) in bytes[(root - 1) * page_size..root * page_size]
        .iter_mut()
        .enumerate()
    {
        *b = (i % 251) as u8;
    }
    std::fs::write(&db, &bytes).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert_eq!(err.kind(), "corrupt", "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&db.display().to_string()), "{text}");
    assert_eq!(std::fs::read(&db).unwrap(), bytes, "nothing written");
}

#[test]
fn a_workspace_pass_is_written_in_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let at = "2026-03-27T18:00:00Z";
    let now = ts("2026-03-27T18:30:00Z");
    let settled = store
        .record_intent(&intent(at, "ci-a"), &pending_memory(at))
        .unwrap();
    let already_final = store
        .record_intent(&intent(at, "ci-b"), &pending_memory(at))
        .unwrap();
    store
        .record_outcome(already_final, Outcome::Refused, None, Some("conflict"), now)
        .unwrap();
    let gone = InstanceKey::new("research", "ci-gone");
    store
        .save_memory(&[(gone.clone(), InstanceMemory::default())], now)
        .unwrap();
    let (a, c) = (
        InstanceKey::new("research", "ci-a"),
        InstanceKey::new("research", "ci-c"),
    );
    let stop = intent("2026-03-27T18:30:00Z", "ci-c");
    let missed = intent("2026-03-27T18:30:00Z", "ci-d");
    let ids = store
        .write_workspace(
            &[
                (settled, Outcome::Succeeded, None),
                (already_final, Outcome::Failed, Some("late")),
            ],
            &[(&stop, Outcome::Pending), (&missed, Outcome::Missed)],
            &[
                (a.clone(), InstanceMemory::default()),
                (c.clone(), pending_memory("2026-03-27T18:30:00Z")),
            ],
            std::slice::from_ref(&gone),
            now,
        )
        .unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] < ids[1], "ids in the order of the intents");
    let rows = store.audit(&AuditFilter::default()).unwrap();
    let by_id = |id: AuditId| rows.iter().find(|r| r.id == id).unwrap();
    assert_eq!(by_id(settled).outcome, Outcome::Succeeded);
    assert_eq!(by_id(settled).finished_at, Some(now));
    assert_eq!(
        (
            by_id(already_final).outcome,
            by_id(already_final).error.as_deref()
        ),
        (Outcome::Refused, Some("conflict")),
        "a final row is left as it is"
    );
    assert_eq!(by_id(ids[0]).outcome, Outcome::Pending);
    assert_eq!(by_id(ids[1]).outcome, Outcome::Missed);
    let memory = store.load_memory().unwrap();
    assert_eq!(memory[&a], InstanceMemory::default());
    assert_eq!(memory[&c], pending_memory("2026-03-27T18:30:00Z"));
    assert!(!memory.contains_key(&gone));

    // All or nothing: a failure in the memory half leaves no intent written.
    store
        .conn
        .execute_batch(
            "CREATE TRIGGER no_memory BEFORE INSERT ON instances \
             BEGIN SELECT RAISE(ABORT, 'boom'); END;",
        )
        .unwrap();
    let before = store.audit(&AuditFilter::default()).unwrap().len();
    let new = InstanceKey::new("research", "ci-new");
    let err = store
        .write_workspace(
            &[],
            &[(&intent("2026-03-27T18:31:00Z", "ci-new"), Outcome::Pending)],
            &[(new, pending_memory("2026-03-27T18:31:00Z"))],
            &[],
            now,
        )
        .unwrap_err();
    assert_eq!(err.kind(), "sql");
    assert_eq!(store.audit(&AuditFilter::default()).unwrap().len(), before);
}
