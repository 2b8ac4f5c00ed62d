//! The default policy component fits the contract: its imports are the
//! `recharge:policy` interfaces only (no WASI), it exports `policy`, it is small,
//! and compiled components are cached on disk.

use recharge_host::{DEFAULT_POLICY, Limits, PolicyEngine, Profile};

use super::*;

#[test]
fn the_default_component_imports_only_the_contract_and_exports_policy() {
    let (engine, _) = shared();
    let interfaces = engine.interfaces(DEFAULT_POLICY).unwrap();
    let (imports, exports) = (interfaces.imports, interfaces.exports);
    assert!(!imports.is_empty());
    assert!(
        imports
            .iter()
            .all(|name| name.starts_with("recharge:policy/")),
        "{imports:?}"
    );
    assert_eq!(exports, vec!["recharge:policy/policy@0.2.0".to_owned()]);
    assert!(
        imports.iter().all(|name| name.ends_with("@0.2.0")),
        "{imports:?}"
    );
    let policy = engine.load(DEFAULT_POLICY).unwrap();
    assert_eq!(policy.version(), recharge_host::ContractVersion::V0_2);
}

#[test]
fn the_default_component_is_at_most_256_kib() {
    assert!(
        DEFAULT_POLICY.len() <= 256 * 1024,
        "{} bytes",
        DEFAULT_POLICY.len()
    );
}

#[test]
fn compiled_components_are_cached_so_a_restart_does_not_recompile() {
    let dir = workspace().join("target").join("test-cache-restart");
    let _ = std::fs::remove_dir_all(&dir);
    let first = PolicyEngine::new(Limits::default(), Some(dir.clone())).unwrap();
    first.load(DEFAULT_POLICY).unwrap();
    let cached: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].extension().is_some_and(|ext| ext == "cwasm"));
    let modified = std::fs::metadata(&cached[0]).unwrap().modified().unwrap();
    // A new engine (a restarted host) loads the precompiled file as it is.
    let restarted = PolicyEngine::new(Limits::default(), Some(dir.clone())).unwrap();
    restarted.load(DEFAULT_POLICY).unwrap();
    assert_eq!(
        std::fs::metadata(&cached[0]).unwrap().modified().unwrap(),
        modified
    );
    // A corrupt cache entry is recompiled, not trusted.
    std::fs::write(&cached[0], b"garbage").unwrap();
    PolicyEngine::new(Limits::default(), Some(dir.clone()))
        .unwrap()
        .load(DEFAULT_POLICY)
        .unwrap();
    assert!(std::fs::read(&cached[0]).unwrap().len() > 1000);
}

#[test]
fn a_component_over_the_size_limit_is_refused_before_compiling() {
    let limits = Limits {
        component_bytes: 1024,
        interpreted: Profile {
            component_bytes: 1024,
            ..Profile::interpreted()
        },
        ..Limits::default()
    };
    let engine = PolicyEngine::new(limits, None).unwrap();
    let error = engine.load(DEFAULT_POLICY).unwrap_err();
    assert!(
        error.to_string().contains("over the 1024 byte limit"),
        "{error}"
    );
}
