//! The scenario target: parse any text as a simulation scenario (TOML).

use recharge_sim::scenario::Scenario;

/// Parse `text` as a scenario. Panics (the finding) only if the parser does, or
/// names a line the text does not have.
pub fn check_scenario(text: &str) {
    match Scenario::parse("fuzz.toml", text) {
        Ok(scenario) => {
            assert!(scenario.days >= 1);
            let _ = scenario.account_count();
            let _ = scenario.rate_change_day();
        }
        Err(error) => {
            assert_eq!(error.file, "fuzz.toml");
            if let Some(line) = error.line {
                let line_count = text.split('\n').count();
                assert!(
                    line >= 1 && line <= line_count,
                    "line {line} of a {line_count}-line scenario: {error}"
                );
            }
            assert!(!error.to_string().is_empty());
        }
    }
}
