//! The state database under crashes, and `lightsout audit` on a real database.
//!
//! The crash test re-runs this test binary as a child (`crash_writer_child`, selected by
//! the `LIGHTSOUT_STORE_CRASH_DIR` variable) that writes intents, outcomes and memory in a
//! loop and reports each commit on stdout. The parent SIGKILLs it at random moments
//! (`Child::kill` sends SIGKILL on Unix) and checks that the store still opens and that
//! nothing reported as committed was lost or torn.

// Helpers outside `#[test]` functions are test code too; a failed unwrap is a failed test.
#![expect(clippy::unwrap_used, reason = "test helpers")]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use lightsout::daemon::store::{
    AuditFilter, AuditRecord, InstanceKey, Intent, Outcome, Store, StoreError,
};
use lightsout::engine::memory::{InstanceMemory, Pending};
use lightsout::engine::model::{Action, Reason};
use rand::Rng as _;

/// Selects the child's writer mode and names its state directory.
const CRASH_DIR_ENV: &str = "LIGHTSOUT_STORE_CRASH_DIR";
/// Instances the child spreads its intents over.
const INSTANCES: u64 = 5;
/// How many times the parent kills a child.
const KILLS: usize = 20;
const WORKSPACE: &str = "research";
const POLICY: &str = "office-hours";

fn base_time() -> Timestamp {
    "2026-03-27T18:00:00Z".parse().unwrap()
}

fn instance_name(n: u64) -> String {
    format!("ci-{}", n % INSTANCES)
}

/// Print one progress line and flush it, so that the parent sees it before a kill.
fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// Not a test on its own: does nothing unless run as the crash test's child.
#[test]
fn crash_writer_child() {
    let Ok(dir) = std::env::var(CRASH_DIR_ENV) else {
        return;
    };
    write_until_killed(Path::new(&dir)).unwrap();
}

/// The child's loop: intent (+ memory), then per id an accepted / final / no outcome,
/// sometimes a whole-pass memory save and a meta value. Each line is printed after commit.
fn write_until_killed(dir: &Path) -> Result<(), StoreError> {
    let mut store = Store::open(dir)?;
    let mut memory = store.load_memory()?;
    let last = store.audit(&AuditFilter {
        limit: Some(1),
        ..AuditFilter::default()
    })?;
    let (mut n, mut at) = match last.first() {
        Some(r) => (u64::try_from(r.id.0).unwrap(), r.at),
        None => (0, base_time()),
    };
    // Bounded so that a lost parent cannot leave a writer running forever.
    for _ in 0..50_000 {
        n += 1;
        at = at.checked_add(SignedDuration::from_secs(1)).unwrap();
        let key = InstanceKey::new(WORKSPACE, instance_name(n));
        let mut m = memory.get(&key).cloned().unwrap_or_default();
        m.handled_transition = Some(at);
        m.pending = Some(Pending {
            action: Action::Stop,
            requested_at: at,
            transition: Some(at),
            event: None,
        });
        let intent = Intent {
            at,
            workspace: WORKSPACE.into(),
            instance: key.instance.clone(),
            action: Action::Stop,
            reason: Reason::OutsideWindow,
            policy: POLICY.into(),
            catch_up: n % 3 == 0,
            dry_run: false,
            detail: None,
        };
        let id = store.record_intent(&intent, &m)?;
        memory.insert(key, m);
        report(&format!("I {}", id.0));
        let done = at.checked_add(SignedDuration::from_millis(500)).unwrap();
        match id.0 % 4 {
            0 => {}
            1 => {
                let request = format!("req-{}", id.0);
                store.record_outcome(id, Outcome::Pending, Some(&request), None, done)?;
                report(&format!("A {}", id.0));
            }
            2 => {
                store.record_outcome(id, Outcome::Succeeded, None, None, done)?;
                report(&format!("O {}", id.0));
            }
            _ => {
                store.record_outcome(id, Outcome::Refused, None, Some("409 Conflict"), done)?;
                report(&format!("O {}", id.0));
            }
        }
        if n % 7 == 0 {
            for m in memory.values_mut() {
                m.last_busy_seen = Some(at);
            }
            let updates: Vec<_> = memory.iter().map(|(k, m)| (k.clone(), m.clone())).collect();
            store.save_memory(&updates, at)?;
        }
        if n % 11 == 0 {
            store.put_meta("last_pass", &at.to_string())?;
        }
    }
    Ok(())
}

/// What the parent heard from children: committed intents, accepted and final outcomes.
#[derive(Default)]
struct Heard {
    intents: BTreeSet<i64>,
    accepted: BTreeSet<i64>,
    finished: BTreeSet<i64>,
}

impl Heard {
    fn take(&mut self, line: &str) {
        let Some((tag, id)) = line.split_once(' ') else {
            return;
        };
        let Ok(id) = id.trim().parse::<i64>() else {
            return;
        };
        match tag {
            "I" => self.intents.insert(id),
            "A" => self.accepted.insert(id),
            "O" => self.finished.insert(id),
            _ => false,
        };
    }
}

/// Run a child writer and SIGKILL it once it has reported `after` intents (0: at once).
fn run_and_kill(dir: &Path, after: usize, heard: &mut Heard) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "store::crash_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_ENV, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = 0;
    while seen < after {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                if line.starts_with("I ") {
                    seen += 1;
                }
                heard.take(&line);
            }
            // The child finished (or died) before the kill point.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                child.kill().unwrap();
                panic!("the writer child reported nothing for 60 s");
            }
        }
    }
    // Already exited is fine: kill then reports an error we do not care about.
    child.kill().ok();
    child.wait().unwrap();
    reader.join().unwrap();
    // Lines written before the kill are still in the pipe.
    for line in rx.try_iter() {
        heard.take(&line);
    }
}

/// Every invariant the store promises after a crash.
fn check_after_crash(dir: &Path, heard: &Heard, previous_rows: usize) -> usize {
    // It opens (migrating a database killed during its creation) and is sound.
    let store = Store::open(dir).unwrap();
    let conn = rusqlite::Connection::open(dir.join(lightsout::daemon::store::DB_FILE)).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");

    // Every row is whole: it decodes, and carries what the writer wrote.
    let records = store.audit(&AuditFilter::default()).unwrap();
    assert!(
        records.len() >= previous_rows,
        "rows lost: {} after {previous_rows}",
        records.len()
    );
    for r in &records {
        assert_eq!(r.workspace, WORKSPACE);
        assert_eq!(r.policy, POLICY);
        assert_eq!(r.reason, "outside_window");
        assert_eq!(r.action, Action::Stop);
        assert!(r.instance.starts_with("ci-"));
        match r.outcome {
            Outcome::Pending => assert_eq!(r.finished_at, None, "{r:?}"),
            Outcome::Succeeded => assert_eq!(r.error, None),
            Outcome::Refused => assert_eq!(r.error.as_deref(), Some("409 Conflict")),
            other => panic!("unexpected outcome {other} in {r:?}"),
        }
        if r.outcome.is_final() {
            assert!(r.finished_at.is_some(), "{r:?}");
        }
    }

    // Ids are monotonic with time and contiguous (no committed row vanished).
    for pair in records.windows(2) {
        assert!(pair[0].id < pair[1].id, "ids out of order: {pair:?}");
        assert!(pair[0].at < pair[1].at, "times out of order: {pair:?}");
    }
    let ids: Vec<i64> = records.iter().map(|r| r.id.0).collect();
    assert_eq!(
        ids,
        (1..=i64::try_from(ids.len()).unwrap()).collect::<Vec<_>>()
    );

    // Nothing reported as committed is missing.
    let by_id: BTreeMap<i64, &AuditRecord> = records.iter().map(|r| (r.id.0, r)).collect();
    for id in &heard.intents {
        assert!(by_id.contains_key(id), "committed intent {id} lost");
    }
    for id in &heard.accepted {
        let r = by_id[id];
        assert_eq!(r.request_id.as_deref(), Some(format!("req-{id}").as_str()));
    }
    for id in &heard.finished {
        assert!(by_id[id].outcome.is_final(), "outcome of {id} lost");
    }

    // Every committed intent has its memory: the latest intent of each instance is the
    // one its memory points at.
    let memory = store.load_memory().unwrap();
    let mut latest: BTreeMap<&str, &AuditRecord> = BTreeMap::new();
    for r in &records {
        latest.insert(&r.instance, r);
    }
    for (instance, r) in &latest {
        let m = &memory[&InstanceKey::new(WORKSPACE, *instance)];
        assert_eq!(m.handled_transition, Some(r.at), "{instance}: {m:?}");
        assert_eq!(
            m.pending.as_ref().map(|p| p.requested_at),
            Some(r.at),
            "{instance}"
        );
    }
    assert_eq!(memory.len(), latest.len());

    // `pending_intents` lists exactly the intents without a final outcome.
    let pending: Vec<i64> = store
        .pending_intents()
        .unwrap()
        .iter()
        .map(|r| r.id.0)
        .collect();
    let expected: Vec<i64> = records
        .iter()
        .filter(|r| r.outcome == Outcome::Pending)
        .map(|r| r.id.0)
        .collect();
    assert_eq!(pending, expected);
    records.len()
}

#[test]
fn survives_sigkill_at_random_moments() {
    let dir = tempfile::tempdir().unwrap();
    let mut heard = Heard::default();
    let mut rng = rand::rng();
    let mut rows = 0;
    for round in 0..KILLS {
        // The first round is killed at once: during start-up, open or migration.
        let after = if round == 0 {
            0
        } else {
            rng.random_range(1..120)
        };
        run_and_kill(dir.path(), after, &mut heard);
        rows = check_after_crash(dir.path(), &heard, rows);
    }
    assert!(heard.intents.len() > KILLS, "the children wrote too little");
    assert!(rows >= heard.intents.len());
}

/// A config that validates, with its state directory moved to `state_dir`.
fn config_file(dir: &Path, state_dir: &Path) -> std::path::PathBuf {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/lightsout.example.toml"
    ))
    .unwrap();
    let text: String = example
        .lines()
        .map(|l| {
            if l.starts_with("state_dir") {
                format!("state_dir = {:?}\n", state_dir.display().to_string())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let path = dir.join("lightsout.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn lightsout(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lightsout"))
        .args(args)
        .env_remove("LIGHTSOUT_CONFIG")
        .env("RUST_LOG", "off")
        .output()
        .unwrap()
}

#[test]
fn audit_command_prints_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = config_file(dir.path(), &state);
    let config = config.to_str().unwrap();

    // No database yet: a message, exit 0, and an empty array for --json.
    let out = lightsout(&["audit", "--config", config]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("no audit log yet"));
    let out = lightsout(&["audit", "--config", config, "--json"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");

    let mut store = Store::open(&state).unwrap();
    let at: Timestamp = "2026-03-27T18:00:00Z".parse().unwrap();
    let mut ids = Vec::new();
    for (i, instance) in ["ci-a", "ci-b", "ci-a"].into_iter().enumerate() {
        let at = at
            .checked_add(SignedDuration::from_mins(i64::try_from(i).unwrap() * 10))
            .unwrap();
        let intent = Intent {
            at,
            workspace: "research".into(),
            instance: instance.into(),
            action: Action::Stop,
            reason: Reason::Idle,
            policy: "office-hours".into(),
            catch_up: i == 2,
            dry_run: false,
            detail: None,
        };
        ids.push(
            store
                .record_intent(&intent, &InstanceMemory::default())
                .unwrap(),
        );
    }
    store
        .record_outcome(ids[0], Outcome::Failed, Some("r1"), Some("boom"), at)
        .unwrap();

    // The daemon's store stays open: the command reads alongside it.
    let out = lightsout(&["audit", "--config", config, "--json", "--instance", "ci-a"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let records = json.as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["at"], "2026-03-27T18:00:00Z");
    assert_eq!(records[0]["outcome"], "failed");
    assert_eq!(records[0]["error"], "boom");
    assert_eq!(records[0]["request_id"], "r1");
    assert_eq!(records[1]["catch_up"], true);
    assert_eq!(records[1]["outcome"], "pending");
    assert_eq!(records[1]["reason"], "idle");

    let out = lightsout(&[
        "audit",
        "--config",
        config,
        "--since",
        "2026-03-27T18:05:00Z",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("AT"));
    assert!(lines[1].contains("ci-b"));
    assert!(lines[2].contains("idle (catch-up)"), "{text}");
}
