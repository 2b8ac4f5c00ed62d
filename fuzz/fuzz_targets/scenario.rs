//! The simulation scenario parser (`Scenario::parse`): any text gives a checked
//! scenario or an error naming the file (and a line of the text), never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use recharge_fuzz::scenario::check_scenario;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_scenario(text);
    }
});
