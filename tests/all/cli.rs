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

/// Run the binary on a script written from `lines`.
fn replay_lines(dir: &Scratch, name: &str, lines: &[&str]) -> Output {
    let script = dir.join(&format!("{name}.jsonl"));
    write(&script, lines.join("\n") + "\n");
    replay(&script)
}

/// `FILE:LINE` of a script in `dir`.
fn place(dir: &Scratch, name: &str, line: usize) -> String {
    format!("{}:{line}", dir.join(&format!("{name}.jsonl")).display())
}

fn top_up(amount: &str) -> String {
    format!(
        r#"{{"at":"2026-01-01T00:00:00Z","do":"top_up","account":"u","card":"visa","amount":{amount:?}}}"#
    )
}

// Bad input is rejected before any policy sees it: strict money syntax.
#[test]
fn bad_input_money_with_an_exponent_is_a_malformed_line() {
    let dir = Scratch::new("money_exponent");
    let output = replay_lines(&dir, "exponent", &[OPEN, CARD, &top_up("1e2")]);
    assert_refused(
        &output,
        &[
            &place(&dir, "exponent", 3),
            "`amount`",
            "not a decimal number",
        ],
    );
}

// Bad input is rejected before any policy sees it, whatever the lax form.
#[test]
fn bad_input_money_in_any_but_plain_notation_is_a_malformed_line() {
    let dir = Scratch::new("money_lax");
    for (index, bad) in ["1_000", "+10.00", " 10.00", "10.", ".50"]
        .iter()
        .enumerate()
    {
        let name = format!("lax{index}");
        let output = replay_lines(&dir, &name, &[OPEN, CARD, &top_up(bad)]);
        assert_refused(&output, &[&place(&dir, &name, 3), "`amount`"]);
    }
}

// Bad input is never blamed on a policy: out-of-range money is named as such.
#[test]
fn bad_input_money_out_of_range_or_too_precise_is_a_malformed_line_named_as_such() {
    let dir = Scratch::new("money_range");
    let output = replay_lines(
        &dir,
        "range",
        &[OPEN, CARD, &top_up("9999999999999999999999999999")],
    );
    assert_refused(&output, &[&place(&dir, "range", 3), "out of range"]);
    let output = replay_lines(
        &dir,
        "precise",
        &[OPEN, CARD, &top_up("10.0000000000000000001")],
    );
    assert_refused(&output, &[&place(&dir, "precise", 3), "decimal places"]);
}

// Ids fit the keys derived from them: a 300-byte account never opens.
#[test]
fn bad_input_a_300_byte_account_id_is_a_malformed_line() {
    let dir = Scratch::new("long_id");
    let open = format!(
        r#"{{"at":"2026-01-01T00:00:00Z","do":"open","account":"{}","kind":"user"}}"#,
        "a".repeat(300)
    );
    let output = replay_lines(&dir, "long_id", &[&open]);
    assert_refused(
        &output,
        &[&place(&dir, "long_id", 1), "`account`", "300 bytes"],
    );
}

// A call of 2^63−1 seconds never reaches the rating or a policy.
#[test]
fn bad_input_usage_of_2_63_seconds_is_a_malformed_line() {
    let dir = Scratch::new("huge_usage");
    let usage = r#"{"at":"2026-01-01T00:00:00Z","do":"usage","account":"u","call":"c","seconds":9223372036854775807,"type":"basic"}"#;
    let output = replay_lines(&dir, "usage", &[OPEN, usage]);
    assert_refused(
        &output,
        &[&place(&dir, "usage", 2), "`seconds`", "out of range"],
    );
}

#[test]
fn bad_input_a_date_outside_1970_to_9999_is_a_malformed_line() {
    let dir = Scratch::new("old_date");
    let advance = r#"{"at":"1969-07-20T20:17:00Z","do":"advance"}"#;
    let output = replay_lines(&dir, "old", &[advance]);
    assert_refused(&output, &[&place(&dir, "old", 1), "`at`", "1970"]);
}

// Bad input never grows memory: an endless stream ends fast in one line.
#[test]
fn bad_input_replay_of_dev_zero_ends_with_a_one_line_error() {
    let started = std::time::Instant::now();
    let output = replay(Path::new("/dev/zero"));
    assert_refused(&output, &["/dev/zero:1", "longer than the 64 KiB limit"]);
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
}

// Bad input never grows memory: components and scenarios are read no further
// than their limit.
#[test]
fn bad_input_check_simulate_and_policy_of_dev_zero_end_with_a_one_line_error() {
    let zero = Path::new("/dev/zero").as_os_str();
    assert_refused(
        &check(Path::new("/dev/zero")),
        &["/dev/zero", "32 MiB limit"],
    );
    assert_refused(
        &recharge(&["simulate".as_ref(), zero]),
        &["/dev/zero", "1 MiB limit"],
    );
    for command in ["simulate", "bench"] {
        let output = recharge(&[command.as_ref(), "--policy".as_ref(), zero]);
        assert_refused(&output, &["/dev/zero", "32 MiB limit"]);
    }
    let dir = Scratch::new("policy_dev_zero");
    let policy = r#"{"at":"2026-01-01T00:00:00Z","do":"policy","account":"u","file":"/dev/zero"}"#;
    let output = replay_lines(&dir, "policy", &[OPEN, policy]);
    assert_refused(&output, &[&place(&dir, "policy", 2), "32 MiB limit"]);
}

// Bad input never grows memory: a FIFO fed forever ends in one line.
#[test]
fn bad_input_a_fifo_that_never_ends_gets_a_one_line_error() {
    let dir = Scratch::new("fifo");
    let fifo = dir.join("endless.jsonl");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|status| status.success()) {
        eprintln!("mkfifo is not available: skipped");
        return;
    }
    let feeder = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            // Opening blocks until the binary opens the other end; writing
            // stops when it closes it (a broken pipe).
            let mut pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            let line = [b'{'; 4096];
            while pipe.write_all(&line).is_ok() {}
        })
    };
    assert_refused(&replay(&fifo), &[&format!("{}:1", fifo.display())]);
    feeder.join().unwrap();
}

// Every input error names the file and line, bytes that are not UTF-8 included.
#[test]
fn bad_input_bytes_that_are_not_utf8_are_named_with_their_line() {
    let dir = Scratch::new("not_utf8");
    let script = dir.join("latin1.jsonl");
    let mut bytes = format!("{OPEN}\n\n").into_bytes();
    bytes.extend_from_slice(b"{\"at\":\"2026-01-01T00:00:00Z\",\"do\":\"open\",\"account\":\"caf\xE9\",\"kind\":\"user\"}\n");
    write(&script, bytes);
    assert_refused(
        &replay(&script),
        &[&format!("{}:3", script.display()), "not UTF-8", "0xE9"],
    );
}

// A UTF-8 byte-order mark at the start is accepted and skipped.
#[test]
fn bad_input_a_utf8_byte_order_mark_at_the_start_is_accepted() {
    let dir = Scratch::new("bom");
    let script = dir.join("bom.jsonl");
    write(&script, format!("\u{feff}{OPEN}\r\n{CARD}\r\n"));
    let output = replay(&script);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    let printed: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(printed["accounts"]["u"]["balance"], "0.00");
}

// Counts are checked with one line, never a panic.
#[test]
fn bad_input_bench_with_18446744073709551615_events_is_refused_in_one_line() {
    let output = recharge(&[
        "bench".as_ref(),
        "--events".as_ref(),
        "18446744073709551615".as_ref(),
    ]);
    assert_refused(&output, &["--events", "18446744073709551615", "10000000"]);
}

// Scenario range errors name the file and the line of the field.
#[test]
fn bad_input_a_scenario_range_error_names_file_and_line() {
    let dir = Scratch::new("scenario_range");
    let scenario = dir.join("huge.toml");
    write(
        &scenario,
        "days = 3\n\n[[users]]\ncount = 4000000000\nthreshold = \"5.00\"\namount = \"10.00\"\n",
    );
    let output = recharge(&["simulate".as_ref(), scenario.as_os_str()]);
    assert_refused(
        &output,
        &[&format!("{}:4", scenario.display()), "`users[0].count`"],
    );
}

// A reader that goes away ends the process quietly, as command-line tools do.
#[test]
fn output_a_broken_pipe_ends_replay_quietly() {
    let script = workspace()
        .join("tests")
        .join("scenarios")
        .join("r3_fixed_amount_closes_the_gap_in_one_charge.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_recharge"))
        .args(["replay".as_ref(), script.as_os_str()])
        .env(
            "RECHARGE_CACHE_DIR",
            workspace().join("target").join("cli-tests-cache"),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    // Close the reading end before the document is written.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    assert!(stderr.is_empty(), "nothing on stderr: {stderr}");
}

// `recharge replay BIG | head -c 100`: the first bytes arrive, then a quiet end.
#[test]
fn output_a_reader_that_stops_after_100_bytes_gets_them_and_no_panic() {
    use std::io::Read;
    let dir = Scratch::new("head_c_100");
    let lines: Vec<String> = (0..2_000)
        .map(|user| {
            format!(
                r#"{{"at":"2026-01-01T00:00:00Z","do":"open","account":"u{user}","kind":"user"}}"#
            )
        })
        .collect();
    let script = dir.join("big.jsonl");
    write(&script, lines.join("\n"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_recharge"))
        .args(["replay".as_ref(), script.as_os_str()])
        .env(
            "RECHARGE_CACHE_DIR",
            workspace().join("target").join("cli-tests-cache"),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut head = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(head.starts_with(b"{"), "{}", String::from_utf8_lossy(&head));
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    assert!(stderr.is_empty(), "nothing on stderr: {stderr}");
}

// A full disk is a one-line error and a failing exit, never a panic.
#[test]
fn output_a_full_disk_is_a_one_line_error() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("/dev/full is not available: skipped");
        return;
    };
    let script = workspace()
        .join("tests")
        .join("scenarios")
        .join("r3_fixed_amount_closes_the_gap_in_one_charge.jsonl");
    let output = Command::new(env!("CARGO_BIN_EXE_recharge"))
        .args(["replay".as_ref(), script.as_os_str()])
        .env(
            "RECHARGE_CACHE_DIR",
            workspace().join("target").join("cli-tests-cache"),
        )
        .stdout(full)
        .output()
        .expect("the binary runs");
    assert_refused(&output, &["cannot write the output", "No space left"]);
}

// Output is whole or absent: a chart that cannot be written leaves nothing behind.
#[test]
fn output_a_chart_that_cannot_be_written_leaves_no_temporary_file() {
    let dir = Scratch::new("chart_blocked");
    let scenario = dir.join("tiny.toml");
    write(
        &scenario,
        "days = 1\n[[users]]\ncount = 1\nthreshold = \"5.00\"\namount = \"10.00\"\n",
    );
    let chart = dir.join("chart.svg");
    std::fs::create_dir_all(chart.join("in-the-way")).unwrap();
    let output = recharge(&[
        "simulate".as_ref(),
        scenario.as_os_str(),
        "--chart".as_ref(),
        chart.as_os_str(),
    ]);
    assert_refused(
        &output,
        &[&chart.display().to_string(), "cannot write the chart"],
    );
    let mut left: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["chart.svg", "tiny.toml"]);
    // Where it can be written, it is.
    let chart = dir.join("written.svg");
    let output = recharge(&[
        "simulate".as_ref(),
        scenario.as_os_str(),
        "--chart".as_ref(),
        chart.as_os_str(),
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(std::fs::read_to_string(&chart).unwrap().starts_with("<svg"));
}
