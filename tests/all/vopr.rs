//! The deterministic simulation with faults (`recharge_sim::vopr`), a short run:
//! `recharge vopr --seeds N` runs as many seeds as one likes.

use std::sync::Arc;

use recharge_host::SqliteStore;
use recharge_sim::vopr::{DEFAULT_STEPS, Shared, run_seed, run_seed_on, run_seeds};

use super::shared;

fn world() -> Shared {
    let (engine, default) = shared();
    Shared::from_parts(engine.clone(), Arc::clone(default))
}

/// No double charge, no minting, nothing lost, nothing stuck: 300 seeds of
/// random commands under injected faults (lost answers, late and repeated
/// webhooks, store failures, crashes, policy faults) break no invariant, and
/// the faults really were injected.
#[test]
fn three_hundred_seeds_under_faults_break_no_invariant() {
    let summary = run_seeds(&world(), 0..300, DEFAULT_STEPS, 2, &|_| {});
    let violations: Vec<String> = summary.violations.iter().map(ToString::to_string).collect();
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    assert_eq!(summary.seeds, 300);
    let stats = &summary.stats;
    for (what, count) in [
        ("crashes", stats.crashes),
        ("store faults", stats.store_faults),
        ("lost answers", stats.lost_answers),
        ("policy faults", stats.policy_faults),
        ("webhooks", stats.webhooks),
        ("card charges", stats.card_charges),
        ("probes", stats.probes),
    ] {
        assert!(count > 0, "no {what} in 300 seeds: {stats:?}");
    }
}

/// A seed replays exactly: what a failing seed prints reproduces it.
#[test]
fn a_seed_replays_exactly() {
    let shared = world();
    let first = run_seed(&shared, 4_242, DEFAULT_STEPS).unwrap();
    let again = run_seed(&shared, 4_242, DEFAULT_STEPS).unwrap();
    assert_eq!(first, again);
    assert!(first.decisions > 0);
}

/// The same invariants on the durable store: seeds run on SQLite files, behind
/// the same injected faults (crashes before and after a commit applies, lost
/// answers, late webhooks), break none, and give what they give in memory.
#[test]
fn seeds_on_sqlite_break_no_invariant_and_match_memory() {
    let shared = world();
    let dir = super::workspace()
        .join("target")
        .join("test-stores")
        .join("vopr");
    std::fs::create_dir_all(&dir).unwrap();
    for seed in 0..24 {
        let path = dir.join(format!("seed-{seed}.db"));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        let on_sqlite =
            run_seed_on(&shared, seed, DEFAULT_STEPS, store).unwrap_or_else(|v| panic!("{v}"));
        let in_memory = run_seed(&shared, seed, DEFAULT_STEPS).unwrap();
        assert_eq!(on_sqlite, in_memory, "seed {seed}");
    }
}

/// The same invariants on PostgreSQL: seeds run in schemas of their own,
/// behind the same injected faults, break none and give what they give in
/// memory.
#[test]
fn seeds_on_postgres_break_no_invariant_and_match_memory() {
    if super::postgres_url().is_none() {
        return;
    }
    let shared = world();
    for seed in 0..8 {
        let schema = format!("vopr_{seed}");
        let store = Arc::new(super::postgres_store(&schema).unwrap());
        let on_postgres =
            run_seed_on(&shared, seed, DEFAULT_STEPS, store).unwrap_or_else(|v| panic!("{v}"));
        let in_memory = run_seed(&shared, seed, DEFAULT_STEPS).unwrap();
        assert_eq!(on_postgres, in_memory, "seed {seed}");
    }
}
