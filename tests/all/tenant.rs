//! The example tenant policy (`examples/weekday-refill`), built as a component
//! and used through a script's `policy` line.

use std::sync::OnceLock;

use recharge_host::Store;
use recharge_host::model::MinuteType;
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

#[test]
fn sdk_a_wake_up_with_the_same_tag_replaces_the_earlier_one() {
    // Nothing stuck: the weekday policy asks for its Monday wake-up on every
    // weekend event. Each request replaces the pending one, so a busy weekend
    // never reaches the 64-pending cap (which would refuse, fault and
    // eventually quarantine the policy) and Monday refills exactly once.
    let h = harness_at(SATURDAY);
    let acme = AccountId::from("acme");
    h.platform
        .open_account(acme.clone(), AccountKind::Agency, None)
        .unwrap();
    h.platform.add_card(&acme, "visa").unwrap();
    h.platform.set_policy(&acme, weekday_refill()).unwrap();
    h.platform
        .save_auto_recharge(&acme, &acme, weekday_settings())
        .unwrap();
    for call in 0..200 {
        let report = h
            .platform
            .record_usage(&acme, &format!("sat-{call}"), 60, MinuteType::Premium)
            .unwrap();
        assert!(report.charges.is_empty(), "no charge at the weekend");
    }
    assert_eq!(h.store.pending_timers(&acme).unwrap(), 1);
    let faults = h
        .platform
        .notifications()
        .unwrap()
        .into_iter()
        .filter(|notice| notice.kind == "policy_fault")
        .count();
    assert_eq!(faults, 0);
    let monday = h.platform.advance_to(SATURDAY + 2 * DAY + HOUR).unwrap();
    assert_eq!(monday.charges.len(), 1, "one refill on Monday");
    assert_eq!(monday.charges[0].amount, d("82.00"));
    assert_eq!(h.platform.account(&acme).unwrap().balance, d("50.00"));
    assert_eq!(h.store.pending_timers(&acme).unwrap(), 0);
}

/// 2026-01-03T00:00:00Z, a Saturday.
const SATURDAY: Timestamp = 1_767_398_400_000;

/// Refill to 50.00 below 10.00.
fn weekday_settings() -> AutoRechargeSettings {
    AutoRechargeSettings {
        enabled: true,
        threshold: d("10.00"),
        amount: d("50.00"),
        card: "visa".into(),
        mode: Mode::Target,
        monthly_limit: None,
    }
}

/// An example policy component built by `sdk/build-policies.sh` (the README's
/// test command runs it first), or `None` outside CI when it was not built.
pub fn built_policy(name: &str) -> Option<Vec<u8>> {
    let path = workspace().join("target").join("policies").join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(err) if std::env::var_os("CI").is_some_and(|ci| ci == "true") => {
            panic!(
                "{}: {err}; run `bash sdk/build-policies.sh`",
                path.display()
            )
        }
        Err(_) => {
            eprintln!(
                "skipped: {} not built (run `bash sdk/build-policies.sh`)",
                path.display()
            );
            None
        }
    }
}

/// The weekday script of the test above, replayed with `component`.
fn weekday_document(component: &[u8], tag: &str) -> serde_json::Value {
    let dir = workspace()
        .join("target")
        .join(format!("test-tenant-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("weekday.wasm"), component).unwrap();
    let script = r#"{"at":"2026-01-02T09:00:00Z","do":"open","account":"acme","kind":"agency"}
{"at":"2026-01-02T09:00:00Z","do":"add_card","account":"acme","card":"visa"}
{"at":"2026-01-02T09:00:00Z","do":"policy","account":"acme","file":"weekday.wasm"}
{"at":"2026-01-02T09:00:00Z","do":"auto_recharge","actor":"acme","account":"acme","enabled":true,"threshold":"10.00","amount":"50.00","card":"visa"}
{"at":"2026-01-02T10:00:00Z","do":"top_up","account":"acme","card":"visa","amount":"5.00"}
{"at":"2026-01-02T11:00:00Z","do":"query","actor":"acme","account":"acme","what":"auto_recharge"}
{"at":"2026-01-03T10:00:00Z","do":"usage","account":"acme","call":"sat-1","seconds":18000,"type":"premium"}
{"at":"2026-01-03T11:00:00Z","do":"usage","account":"acme","call":"sat-2","seconds":60,"type":"basic"}
{"at":"2026-01-04T10:00:00Z","do":"auto_recharge","actor":"other","account":"acme","enabled":false,"threshold":"0.00","amount":"1.00","card":"visa"}
{"at":"2026-01-05T01:00:00Z","do":"advance"}
{"at":"2026-01-05T01:00:00Z","do":"allocate","actor":"acme","account":"acme","basic":1,"premium":0,"card":"visa"}
{"at":"2026-01-05T02:00:00Z","do":"query","actor":"acme","account":"acme","what":"service"}
"#;
    let path = dir.join("weekday.jsonl");
    std::fs::write(&path, script).unwrap();
    let document = replay_file(&path, builder());
    let _ = std::fs::remove_dir_all(&dir);
    serde_json::to_value(document.unwrap()).unwrap()
}

#[test]
fn the_weekday_policy_decides_the_same_in_rust_javascript_and_python() {
    // One policy, three languages, one truth: the same script gives the same
    // document (charges, keys, notices, rejections, answers, balances) through
    // the real host whichever language the tenant wrote it in.
    let rust = weekday_document(weekday_refill(), "rust");
    assert_eq!(rust["charges"].as_array().unwrap().len(), 3, "{rust}");
    for name in ["weekday_refill_js.wasm", "weekday_refill_py.wasm"] {
        let Some(component) = built_policy(name) else {
            continue;
        };
        let other = weekday_document(&component, name);
        assert_eq!(other, rust, "{name} decided otherwise than the Rust policy");
    }
}

#[test]
fn javascript_and_python_policies_pass_the_check_under_the_interpreted_profile() {
    for name in ["weekday_refill_js.wasm", "weekday_refill_py.wasm"] {
        let Some(component) = built_policy(name) else {
            continue;
        };
        let report = recharge_host::check::check_component(&component, builder())
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(report.profile, "interpreted", "{name}");
        assert!(
            report
                .imports
                .iter()
                .all(|import| import.starts_with("recharge:policy/")),
            "{name}: {:?}",
            report.imports
        );
        assert!(report.max_fuel < report.fuel_limit, "{name}: {report:?}");
    }
}
