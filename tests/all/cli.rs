//! The `recharge` binary: good input prints and exits 0; bad input gets exit code
//! 2 and one line on stderr naming the file (and the line), never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use super::workspace;

/// A fresh folder under `target/` for one test's files, removed when dropped.
/// Named after the process too: other `cargo test` runs may share `target/`.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = workspace()
            .join("target")
            .join("cli-tests")
            .join(format!("{}-{test}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
        }
        std::fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
        Scratch(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Best effort: a leftover folder under target/ harms nothing.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write(path: &Path, contents: impl AsRef<[u8]>) {
    std::fs::write(path, contents).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
}

/// Run the binary with the component cache under `target/`.
fn recharge(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recharge"))
        .args(args)
        .env(
            "RECHARGE_CACHE_DIR",
            workspace().join("target").join("cli-tests-cache"),
        )
        .output()
        .expect("the binary runs")
}

fn replay(script: &Path) -> Output {
    recharge(&["replay".as_ref(), script.as_os_str()])
}

fn check(file: &Path) -> Output {
    recharge(&["check".as_ref(), file.as_os_str()])
}

/// Exit code 2, nothing on stdout, and exactly one line on stderr that contains
/// every one of `names`; no panic.
fn assert_refused(output: &Output, names: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line on stderr, got:\n{stderr}"
    );
    for name in names {
        assert!(stderr.contains(name), "{name:?} not named in: {stderr}");
    }
    assert!(
        output.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

const OPEN: &str = r#"{"at":"2026-01-01T00:00:00Z","do":"open","account":"u","kind":"user"}"#;
const CARD: &str = r#"{"at":"2026-01-01T00:00:00Z","do":"add_card","account":"u","card":"visa"}"#;

#[test]
fn replay_of_a_good_script_prints_its_document() {
    let script = workspace()
        .join("tests")
        .join("scenarios")
        .join("r3_fixed_amount_closes_the_gap_in_one_charge.jsonl");
    let output = replay(&script);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    let printed: Value =
        serde_json::from_slice(&output.stdout).expect("stdout is one JSON document");
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(script.with_extension("expected.json")).expect("expected file"),
    )
    .expect("expected JSON");
    assert_eq!(printed, expected);
    assert_eq!(printed["accounts"]["u"]["balance"], "22.00");
}

#[test]
fn malformed_script_lines_stop_the_run_naming_file_and_line() {
    let dir = Scratch::new("malformed");
    let cases = [
        (
            "bad_json",
            format!("{OPEN}\n{{\"at\":\"2026-01-01T00:00:00Z\",\"do\":\n"),
            2,
        ),
        (
            "unknown_do",
            format!("{OPEN}\n\n{{\"at\":\"2026-01-01T00:00:00Z\",\"do\":\"dance\"}}\n"),
            3,
        ),
        (
            "money_as_number",
            format!(
                "{OPEN}\n{CARD}\n{}\n",
                r#"{"at":"2026-01-01T00:00:00Z","do":"top_up","account":"u","card":"visa","amount":10}"#
            ),
            3,
        ),
        (
            "time_goes_back",
            format!(
                "{OPEN}\n{}\n{}\n",
                r#"{"at":"2026-01-02T00:00:00Z","do":"advance"}"#,
                r#"{"at":"2026-01-01T23:59:59Z","do":"advance"}"#
            ),
            3,
        ),
    ];
    for (name, text, line) in cases {
        let script = dir.join(&format!("{name}.jsonl"));
        write(&script, text);
        let file_and_line = format!("{}:{line}", script.display());
        assert_refused(&replay(&script), &[&file_and_line]);
    }
}

#[test]
fn a_missing_script_is_refused() {
    let dir = Scratch::new("missing_script");
    let script = dir.join("nowhere.jsonl");
    assert_refused(&replay(&script), &[&script.display().to_string()]);
}

#[test]
fn a_policy_line_naming_a_missing_file_is_refused() {
    let dir = Scratch::new("missing_policy");
    let script = dir.join("policy.jsonl");
    let policy =
        r#"{"at":"2026-01-01T00:00:00Z","do":"policy","account":"u","file":"absent.wasm"}"#;
    write(&script, format!("{OPEN}\n{policy}\n"));
    let file_and_line = format!("{}:2", script.display());
    assert_refused(&replay(&script), &[&file_and_line, "absent.wasm"]);
}

#[test]
fn check_refuses_what_is_not_a_component() {
    let dir = Scratch::new("not_a_component");
    let core_module = dir.join("core.wasm");
    write(&core_module, b"\0asm\x01\0\0\0");
    let text = dir.join("notes.wasm");
    write(&text, "not WebAssembly at all\n");
    for file in [&core_module, &text] {
        assert_refused(&check(file), &[&file.display().to_string()]);
    }
}

#[test]
fn check_refuses_a_missing_file() {
    let dir = Scratch::new("check_missing");
    let file = dir.join("absent.wasm");
    assert_refused(&check(&file), &[&file.display().to_string()]);
}

#[test]
fn check_accepts_the_default_policy() {
    let dir = Scratch::new("check_default");
    let file = dir.join("default.wasm");
    write(&file, recharge_host::DEFAULT_POLICY);
    let output = check(&file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    assert!(
        stdout.contains(&format!("{}: ok", file.display())),
        "stdout: {stdout}"
    );
}
