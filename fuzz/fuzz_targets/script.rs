//! The scenario script parser (`parse_script`), and the replay of what it accepts.
//!
//! Any text: parsing returns lines or a `Malformed` naming a line of the text,
//! never a panic. A parsed script that names no policy file and spans at most a
//! year is replayed on a native platform: it ends in a document or an error,
//! never a panic, and the document serialises.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use recharge_fuzz::script::check_script;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_script(Path::new("fuzz.jsonl"), text);
    }
});
