//! Golden scenarios: every `tests/scenarios/NAME.jsonl` replayed on the default
//! policy must produce the document in `NAME.expected.json` (compared as JSON
//! values, so formatting and key order do not matter).
//!
//! The expected files are reviewed by hand against SPEC.md; they are not a record
//! of whatever the code does. To rewrite them from the current code, run
//! `RECHARGE_BLESS=1 cargo test --test all scenarios`, then review every change in
//! the diff before keeping it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use recharge_host::{ContractVersion, Platform, Policy, SqliteStore, Store};
use recharge_sim::replay::replay_file;
use recharge_sim::report::Document;
use serde::Serialize;
use serde_json::Value;

use super::{shared, workspace};

fn scenario_dir() -> PathBuf {
    workspace().join("tests").join("scenarios")
}

/// Every script in `tests/scenarios`, sorted by name.
pub(crate) fn scripts() -> Vec<PathBuf> {
    let dir = scenario_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
    let mut scripts: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    scripts.sort();
    scripts
}

fn expected_path(script: &Path) -> PathBuf {
    script.with_extension("expected.json")
}

/// Replay a script on the shared engine and default policy; replay supplies the
/// gateway and the simulated clock.
fn replay(script: &Path) -> Result<Document, String> {
    replay_on(script, Arc::clone(&shared().1))
}

/// Replay a script with `policy` as the default policy.
fn replay_on(script: &Path, policy: Arc<dyn Policy>) -> Result<Document, String> {
    let builder = Platform::builder()
        .engine(shared().0.clone())
        .default_policy(policy);
    replay_file(script, builder).map_err(|err| format!("replay failed: {err}"))
}

/// Replay a script on the default policy with `store`.
fn replay_in(script: &Path, store: Arc<dyn Store>) -> Result<Document, String> {
    let builder = Platform::builder()
        .engine(shared().0.clone())
        .default_policy(Arc::clone(&shared().1))
        .store(store);
    replay_file(script, builder).map_err(|err| format!("replay failed: {err}"))
}

fn pretty(value: &impl Serialize) -> String {
    serde_json::to_string_pretty(value).expect("JSON prints")
}

/// Compare one scenario with its expected document (or, blessing, rewrite it in
/// the document's own key order, as `recharge replay` prints it); `Err` says how
/// it differs.
fn check(script: &Path, bless: bool) -> Result<(), String> {
    let document = replay(script)?;
    compare(script, document, bless)
}

/// Compare a script's document with its expected one (or rewrite it).
fn compare(script: &Path, document: Document, bless: bool) -> Result<(), String> {
    let expected_file = expected_path(script);
    if bless {
        return std::fs::write(&expected_file, pretty(&document) + "\n")
            .map_err(|err| format!("{}: {err}", expected_file.display()));
    }
    let actual = serde_json::to_value(&document)
        .map_err(|err| format!("the document does not serialise: {err}"))?;
    let text = std::fs::read_to_string(&expected_file)
        .map_err(|err| format!("{}: {err}", expected_file.display()))?;
    let expected: Value =
        serde_json::from_str(&text).map_err(|err| format!("{}: {err}", expected_file.display()))?;
    if actual == expected {
        return Ok(());
    }
    Err(format!(
        "--- expected ({})\n{}\n--- actual\n{}",
        expected_file.display(),
        pretty(&expected),
        pretty(&document)
    ))
}

/// Set `RECHARGE_BLESS=1` to rewrite every expected file from the current code
/// instead of comparing; then review the diff by hand against SPEC.md.
#[test]
fn golden_scenarios_match_their_expected_documents() {
    let bless = std::env::var_os("RECHARGE_BLESS").is_some_and(|value| value == "1");
    let scripts = scripts();
    assert!(
        !scripts.is_empty(),
        "no scenarios in {}",
        scenario_dir().display()
    );
    let mismatches: Vec<(String, String)> = scripts
        .iter()
        .filter_map(|script| {
            let name = script.file_stem().unwrap_or_default().to_string_lossy();
            check(script, bless)
                .err()
                .map(|detail| (name.into_owned(), detail))
        })
        .collect();
    let names: Vec<&str> = mismatches.iter().map(|(name, _)| name.as_str()).collect();
    let details: Vec<String> = mismatches
        .iter()
        .map(|(name, detail)| format!("=== {name}\n{detail}"))
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} scenarios differ from their expected documents: {}\n\
         (RECHARGE_BLESS=1 rewrites them; review the diff)\n\n{}",
        mismatches.len(),
        scripts.len(),
        names.join(", "),
        details.join("\n\n")
    );
}

/// The default policy as built at contract 0.1.0, before the payment lifecycle
/// (committed in `tests/fixtures/`): a component built against the first
/// contract still loads, and behaves as before: every golden scenario gives the
/// document it gives on the current default policy, except that a card asking
/// for authentication is a decline to it (it has no `payment_action_required`):
/// there the charges, the money and the card network's ledger are the same.
#[test]
fn a_0_1_0_component_built_before_0_2_0_still_loads_and_behaves_as_before() {
    let bytes = std::fs::read(workspace().join("tests/fixtures/default-policy-0.1.0.wasm"))
        .expect("the 0.1.0 fixture");
    let policy = shared().0.load(&bytes).expect("a 0.1.0 component loads");
    assert_eq!(policy.version(), ContractVersion::V0_1);
    let policy: Arc<dyn Policy> = Arc::new(policy);
    let mut differ = Vec::new();
    for script in scripts() {
        let old = replay_on(&script, Arc::clone(&policy)).unwrap();
        let text = std::fs::read_to_string(&script).unwrap();
        if !text.contains("requires_action") {
            if let Err(detail) = compare(&script, old, false) {
                differ.push(detail);
            }
            continue;
        }
        let new = replay(&script).unwrap();
        assert_eq!(old.charges, new.charges, "{}", script.display());
        assert_eq!(old.card_charges, new.card_charges, "{}", script.display());
        let kinds = |document: &Document| -> Vec<String> {
            document
                .notifications
                .iter()
                .map(|notice| notice.kind.clone())
                .collect()
        };
        assert!(kinds(&new).contains(&"payment_action_required".to_owned()));
        assert!(!kinds(&old).contains(&"payment_action_required".to_owned()));
        assert!(kinds(&old).contains(&"recharge_failed".to_owned()));
    }
    assert!(differ.is_empty(), "{}", differ.join("\n\n"));
}

/// The same documents on the durable store: every golden scenario replayed on
/// a fresh SQLite file gives its expected document.
#[test]
fn golden_scenarios_give_the_same_documents_on_sqlite() {
    let dir = workspace()
        .join("target")
        .join("test-stores")
        .join("golden");
    std::fs::create_dir_all(&dir).unwrap();
    let mut differ = Vec::new();
    for script in scripts() {
        let name = script.file_stem().unwrap().to_string_lossy().into_owned();
        let path = dir.join(format!("{name}.db"));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
        let document = replay_in(&script, store).unwrap();
        if let Err(detail) = compare(&script, document, false) {
            differ.push(format!("=== {name} on sqlite\n{detail}"));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n\n"));
}

/// The same documents on PostgreSQL: every golden scenario replayed on a fresh
/// schema gives its expected document.
#[test]
fn golden_scenarios_give_the_same_documents_on_postgres() {
    if super::postgres_url().is_none() {
        return;
    }
    let mut differ = Vec::new();
    for (index, script) in scripts().into_iter().enumerate() {
        let name = script.file_stem().unwrap().to_string_lossy().into_owned();
        let schema = format!("golden_{index}");
        let store: Arc<dyn Store> = Arc::new(super::postgres_store(&schema).unwrap());
        let document = replay_in(&script, store).unwrap();
        if let Err(detail) = compare(&script, document, false) {
            differ.push(format!("=== {name} on postgres\n{detail}"));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n\n"));
}
