//! The compiled-component cache never executes bytes it cannot vouch for: each
//! entry is sealed with a digest checked before deserializing, and an entry that
//! fails the check is compiled afresh and rewritten, never run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use recharge_host::model::{AccountKind, MinuteType};
use recharge_host::{DEFAULT_POLICY, Limits, Platform, PolicyEngine, SimulatedGateway};

use super::{JAN_1, d, fixed, id, workspace};

/// A fresh cache folder under `target/`, removed when dropped.
struct CacheDir(PathBuf);

impl CacheDir {
    fn new(test: &str) -> CacheDir {
        let dir = workspace()
            .join("target")
            .join("cache-tests")
            .join(format!("{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        CacheDir(dir)
    }

    /// Every file in the folder.
    fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.0)
            .unwrap_or_else(|err| panic!("{}: {err}", self.0.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        files
    }

    /// The one cache entry, and nothing else (no temporary file left behind).
    fn entry(&self) -> PathBuf {
        let files = self.files();
        assert_eq!(files.len(), 1, "one entry and nothing else: {files:?}");
        assert!(
            files[0].extension().is_some_and(|ext| ext == "cwasm"),
            "{files:?}"
        );
        files[0].clone()
    }
}

impl Drop for CacheDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A new engine on the cache folder loads the default policy, and the policy
/// decides: a user saved below its threshold is recharged at once.
fn load_and_run(dir: &Path) {
    let engine = PolicyEngine::new(Limits::default(), Some(dir.to_path_buf())).expect("engine");
    let policy = engine
        .load(DEFAULT_POLICY)
        .expect("the default policy loads");
    let platform = Platform::builder()
        .engine(engine)
        .default_policy(Arc::new(policy))
        .gateway(Arc::new(SimulatedGateway::new()))
        .simulated_clock(JAN_1)
        .build()
        .expect("platform builds");
    let user = id("u");
    platform
        .open_account(user.clone(), AccountKind::User, None)
        .unwrap();
    platform.add_card(&user, "visa").unwrap();
    platform
        .save_auto_recharge(&user, &user, fixed("10.00", "20.00"))
        .unwrap();
    platform
        .record_usage(&user, "call-1", 60, MinuteType::Premium)
        .unwrap();
    assert_eq!(platform.account(&user).unwrap().balance, d("19.84"));
}

// The cache never executes bytes it cannot vouch for.
#[test]
fn cache_a_flipped_bit_is_recompiled_never_run() {
    let dir = CacheDir::new("flipped_bit");
    load_and_run(&dir.0);
    let entry = dir.entry();
    let good = std::fs::read(&entry).unwrap();
    for at in [good.len() / 2, 40, good.len() - 1] {
        let mut flipped = good.clone();
        flipped[at] ^= 0x10;
        std::fs::write(&entry, &flipped).unwrap();
        load_and_run(&dir.0);
        assert_eq!(
            std::fs::read(dir.entry()).unwrap(),
            good,
            "the entry flipped at byte {at} is repaired"
        );
    }
}

// A truncated or empty entry (a write cut short) is recompiled and rewritten.
#[test]
fn cache_a_truncated_entry_is_recompiled_and_rewritten() {
    let dir = CacheDir::new("truncated");
    load_and_run(&dir.0);
    let entry = dir.entry();
    let good = std::fs::read(&entry).unwrap();
    for cut in [good.len() / 2, 0] {
        std::fs::write(&entry, &good[..cut]).unwrap();
        load_and_run(&dir.0);
        assert_eq!(std::fs::read(dir.entry()).unwrap(), good, "cut at {cut}");
    }
}
