//! `recharge replay --db` (SPEC §7): a run continues from what the database
//! holds. Every golden scenario, cut in two, replayed half by half on one
//! SQLite file and on one PostgreSQL schema, ends in the document of the whole
//! script replayed at once in memory. Nothing is lost between runs and nothing
//! happens twice: balances, pending charges and their webhooks, timers, the
//! simulated gateway's card charges and the rates all carry over.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use recharge_host::{Platform, PostgresStore, SqliteStore, Store};
use recharge_sim::replay::{replay, replay_in};
use recharge_sim::report::Document;
use recharge_sim::script::{Line, read_script};
use serde_json::Value;

use super::scenarios::scripts;
use super::{postgres_store, postgres_url, shared, workspace};

fn builder() -> recharge_host::PlatformBuilder {
    Platform::builder()
        .engine(shared().0.clone())
        .default_policy(Arc::clone(&shared().1))
}

fn fresh_sqlite(name: &str) -> Arc<dyn Store> {
    let dir = workspace().join("target").join("test-stores").join("split");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.db"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Arc::new(SqliteStore::open(&path).unwrap())
}

/// Replay `lines` cut before line `cut` in two runs on `store`, and join the
/// two documents: the state is the second run's, the rejections and answers
/// both runs' (lines keep their numbers).
fn in_two_runs(script: &Path, lines: &[Line], cut: usize, store: Arc<dyn Store>) -> Document {
    let (first, second) = lines.split_at(cut);
    let a = replay_in(script, first, builder(), Arc::clone(&store)).unwrap();
    let mut b = replay_in(script, second, builder(), store).unwrap();
    let mut rejections = a.rejections;
    rejections.append(&mut b.rejections);
    b.rejections = rejections;
    let mut answers = a.answers;
    answers.append(&mut b.answers);
    b.answers = answers;
    b
}

fn json(document: &Document) -> Value {
    serde_json::to_value(document).unwrap()
}

/// Every golden scenario, cut in its middle, on `store_for` (one fresh store
/// per scenario).
fn split_scenarios_match(backend: &str, store_for: impl Fn(usize, &str) -> Arc<dyn Store>) {
    let mut differ = Vec::new();
    for (index, script) in scripts().into_iter().enumerate() {
        let name = script.file_stem().unwrap().to_string_lossy().into_owned();
        let lines = read_script(&script).unwrap();
        if lines.len() < 2 {
            continue;
        }
        let whole = json(&replay(&script, &lines, builder()).unwrap());
        let cut = lines.len() / 2;
        let split = json(&in_two_runs(&script, &lines, cut, store_for(index, &name)));
        if whole != split {
            differ.push(format!(
                "=== {name} cut before its line {} on {backend}\nwhole: {whole}\nsplit: {split}",
                lines[cut].number
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n\n"));
}

/// Nothing lost, nothing twice across runs, on SQLite.
#[test]
fn golden_scenarios_replayed_in_two_runs_on_sqlite_match_one_run_in_memory() {
    split_scenarios_match("sqlite", |_, name| fresh_sqlite(name));
}

/// Nothing lost, nothing twice across runs, on PostgreSQL.
#[test]
fn golden_scenarios_replayed_in_two_runs_on_postgres_match_one_run_in_memory() {
    if postgres_url().is_none() {
        return;
    }
    split_scenarios_match("postgres", |index, _| {
        Arc::new(postgres_store(&format!("split_{index}")).unwrap())
    });
}

/// The binary, as a user runs it.
fn recharge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recharge"))
        .args(args)
        .env(
            "RECHARGE_CACHE_DIR",
            workspace().join("target").join("test-cache"),
        )
        .output()
        .expect("the binary runs")
}

fn document_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON document")
}

/// A script with a pending charge whose webhook comes after the cut, a timeout
/// asked about again after it, and usage on both sides.
const FIRST: &str = r#"{"at":"2026-01-01T00:00:00Z","do":"open","account":"u","kind":"user"}
{"at":"2026-01-01T00:00:00Z","do":"add_card","account":"u","card":"visa","behavior":"pending:30m"}
{"at":"2026-01-01T00:01:00Z","do":"auto_recharge","actor":"u","account":"u","enabled":true,"threshold":"5.00","amount":"20.00","card":"visa"}
{"at":"2026-01-01T00:02:00Z","do":"rates","basic":"0.10","premium":"0.20"}
"#;
const SECOND: &str = r#"{"at":"2026-01-01T01:00:00Z","do":"usage","account":"u","call":"c1","seconds":600,"type":"basic"}
{"at":"2026-01-01T01:00:00Z","do":"set_card_behavior","account":"u","card":"visa","behavior":"timeout:1"}
{"at":"2026-01-01T01:00:00Z","do":"top_up","account":"u","card":"visa","amount":"10.00"}
{"at":"2026-01-01T03:00:00Z","do":"query","actor":"u","account":"u","what":"balance"}
"#;

/// `recharge replay A --db X` then `recharge replay B --db X` prints what
/// `recharge replay A+B` prints in memory (answers keep the numbers of their
/// lines in their own script, so B's are moved on by A's length), on a SQLite
/// file and on PostgreSQL; a third run earlier than the database's clock is a
/// malformed line, exit code 2, and changes nothing.
#[test]
fn the_binary_continues_a_replay_from_the_database() {
    let dir = workspace()
        .join("target")
        .join("test-stores")
        .join("cli-db");
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b, whole) = (
        dir.join("a.jsonl"),
        dir.join("b.jsonl"),
        dir.join("ab.jsonl"),
    );
    std::fs::write(&a, FIRST).unwrap();
    std::fs::write(&b, SECOND).unwrap();
    std::fs::write(&whole, format!("{FIRST}{SECOND}")).unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let mut expected = document_of(&recharge(&["replay", &path(&whole)]));
    // B's line numbers, in B.
    let shift = FIRST.lines().count() as u64;
    for answer in expected["answers"].as_array_mut().unwrap() {
        let line = answer["line"].as_u64().unwrap();
        answer["line"] = Value::from(line - shift);
    }
    let mut databases = Vec::new();
    let sqlite = dir.join("state.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", sqlite.display()));
    }
    databases.push(format!("sqlite:{}", path(&sqlite)));
    if let Some(url) = postgres_url() {
        PostgresStore::open_empty_schema(&url, "replay_cli", 1).unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        databases.push(format!("{url}{sep}options=-csearch_path%3Dreplay_cli"));
    }
    for db in &databases {
        let first = document_of(&recharge(&["replay", &path(&a), "--db", db]));
        assert_eq!(first["clock"], "2026-01-01T00:02:00Z", "{db}");
        let second = document_of(&recharge(&["replay", &path(&b), "--db", db]));
        assert_eq!(second, expected, "{db}");
        let late = recharge(&["replay", &path(&a), "--db", db]);
        assert_eq!(late.status.code(), Some(2), "{db}");
        let message = String::from_utf8_lossy(&late.stderr);
        assert!(
            message.contains("a.jsonl:1") && message.contains("earlier than the database's clock"),
            "{db}: {message}"
        );
        let empty = dir.join("empty.jsonl");
        std::fs::write(&empty, "").unwrap();
        let after = document_of(&recharge(&["replay", &path(&empty), "--db", db]));
        assert_eq!(
            after["accounts"], expected["accounts"],
            "{db}: nothing changed"
        );
        assert_eq!(after["card_charges"], expected["card_charges"], "{db}");
    }
}
