//! The script target: parse any text as a scenario script, and replay what parses.

use std::path::Path;

use recharge_host::Platform;
use recharge_sim::replay::{ReplayError, replay};
use recharge_sim::script::{Command, parse_script};

/// Replays longer than this many lines are skipped: they cost time, not coverage.
const MAX_REPLAYED_LINES: usize = 64;
/// Nor are scripts spanning more than a year of timers.
const MAX_REPLAYED_SPAN_MS: i64 = 366 * 86_400_000;

/// Parse `text`; replay it on a native platform when it names no policy file and
/// is short. Panics (the finding) only if the host mishandles it.
pub fn check_script(path: &Path, text: &str) {
    let lines = match parse_script(path, text) {
        Ok(lines) => lines,
        Err(malformed) => {
            let line_count = text.lines().count().max(1);
            assert!(
                malformed.line >= 1 && malformed.line <= line_count,
                "line {} of a {line_count}-line script: {malformed}",
                malformed.line
            );
            assert!(!malformed.to_string().is_empty());
            return;
        }
    };
    let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
        return;
    };
    let span = last.at.saturating_sub(first.at);
    let names_a_file = lines
        .iter()
        .any(|line| matches!(line.command, Command::Policy { .. }));
    if names_a_file || lines.len() > MAX_REPLAYED_LINES || span > MAX_REPLAYED_SPAN_MS {
        return;
    }
    match replay(path, &lines, Platform::builder().native_default_policy()) {
        Ok(document) => {
            serde_json::to_string(&document).expect("a replay document serialises");
        }
        Err(ReplayError::Malformed(malformed)) => {
            assert!(malformed.line <= text.lines().count(), "{malformed}");
        }
        Err(ReplayError::Host { .. }) => {}
    }
}
