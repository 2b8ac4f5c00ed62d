//! The example tenant policy (`examples/weekday-refill`), built as a component
//! and used through a script's `policy` line.

use std::sync::OnceLock;

use recharge_sim::replay::replay_file;

use super::*;

/// The example policy's component, built once per test binary.
pub fn weekday_refill() -> &'static [u8] {
    static COMPONENT: OnceLock<Vec<u8>> = OnceLock::new();
    COMPONENT.get_or_init(|| {
        let manifest = workspace()
            .join("examples")
            .join("weekday-refill")
            .join("Cargo.toml");
        build_component(&manifest, "weekday_refill")
    })
}

fn builder() -> recharge_host::PlatformBuilder {
    let (engine, default) = shared();
    Platform::builder()
        .engine(engine.clone())
        .default_policy(Arc::clone(default))
}

#[test]
fn the_weekday_policy_refills_to_target_on_weekdays_and_waits_out_weekends() {
    // Per process: two test runs at once must not rewrite each other's files.
    let dir = workspace()
        .join("target")
        .join(format!("test-tenant-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("weekday.wasm"), weekday_refill()).unwrap();
    // 2026-01-02 is a Friday.
    let script = r#"{"at":"2026-01-02T09:00:00Z","do":"open","account":"acme","kind":"agency"}
{"at":"2026-01-02T09:00:00Z","do":"add_card","account":"acme","card":"visa"}
{"at":"2026-01-02T09:00:00Z","do":"policy","account":"acme","file":"weekday.wasm"}
{"at":"2026-01-02T09:00:00Z","do":"auto_recharge","actor":"acme","account":"acme","enabled":true,"threshold":"10.00","amount":"50.00","card":"visa"}
{"at":"2026-01-03T10:00:00Z","do":"usage","account":"acme","call":"sat-1","seconds":15600,"type":"premium"}
{"at":"2026-01-05T01:00:00Z","do":"advance"}
{"at":"2026-01-05T01:00:00Z","do":"allocate","actor":"acme","account":"acme","basic":1,"premium":0,"card":"visa"}
"#;
    let path = dir.join("weekday.jsonl");
    std::fs::write(&path, script).unwrap();
    let document = replay_file(&path, builder());
    let _ = std::fs::remove_dir_all(&dir);
    let document = document.unwrap();
    let charges: Vec<_> = document
        .charges
        .iter()
        .map(|charge| (charge.at.as_str(), charge.amount.as_str()))
        .collect();
    assert_eq!(
        charges,
        vec![
            ("2026-01-02T09:00:00Z", "50.00"),
            ("2026-01-05T00:00:00Z", "41.60")
        ]
    );
    assert_eq!(document.accounts["acme"].balance, "50.00");
    assert_eq!(document.rejections.len(), 1);
    assert_eq!(document.rejections[0].error, "forbidden");
    assert_eq!(document.rejections[0].line, 7);
}

#[test]
fn the_weekday_policy_passes_the_check() {
    let report = recharge_host::check::check_component(weekday_refill(), builder()).unwrap();
    assert!(
        report
            .imports
            .iter()
            .all(|name| name.starts_with("recharge:policy/"))
    );
    assert!(report.max_fuel < report.fuel_limit);
}

#[test]
fn simulate_runs_the_weekday_policy_beside_the_default() {
    let dir = workspace()
        .join("target")
        .join(format!("test-simulate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let component = dir.join("weekday.wasm");
    std::fs::write(&component, weekday_refill()).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_recharge"))
        .arg("simulate")
        .arg("--compare")
        .arg(&component)
        .arg("--json")
        .arg("--chart")
        .arg(dir.join("chart.svg"))
        .env(
            "RECHARGE_CACHE_DIR",
            workspace().join("target").join("test-cache"),
        )
        .output()
        .unwrap();
    let chart = std::fs::read_to_string(dir.join("chart.svg"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    let (default, weekday) = (&runs[0], &runs[1]);
    assert_eq!(default["policy"], "default");
    assert_eq!(weekday["policy"], "weekday.wasm");
    for run in runs {
        assert_eq!(run["policy_faults"], 0, "{run}");
        assert!(
            run["charges"]["auto_recharge"]["count"].as_u64().unwrap() > 0,
            "{run}"
        );
    }
    // The weekday policy sells no allocations: the agency's saves are refused.
    assert!(default["charges"]["allocation"]["count"].as_u64().unwrap() > 0);
    assert_eq!(weekday["charges"]["allocation"]["count"], 0);
    assert!(weekday["rejections"].as_u64().unwrap() > 0);
    assert!(chart.unwrap().contains("<svg"));
}
