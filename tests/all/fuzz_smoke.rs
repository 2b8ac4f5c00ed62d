//! The fuzz targets' checks (`fuzz/src/`), run natively over their seed corpora
//! (`fuzz/seeds/TARGET/`, which keeps every minimised finding too) and a few
//! deterministic variations of each seed, so `cargo test` covers them without
//! libFuzzer. `fuzz/run.sh` runs the real thing.

#[path = "../../fuzz/src/load.rs"]
mod load;
#[path = "../../fuzz/src/scenario.rs"]
mod scenario;
#[path = "../../fuzz/src/script.rs"]
mod script;

use std::path::Path;

use super::*;

/// Every seed of a target, by file name.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = workspace().join("fuzz").join("seeds").join(target);
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// The seed, and a handful of cheap variations: truncated at a few points, a
/// byte flipped at a few points, and each line dropped in turn (first 8).
fn variations(seed: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![seed.to_vec()];
    let len = seed.len();
    for cut in [len / 3, len / 2, len.saturating_sub(1)] {
        out.push(seed[..cut].to_vec());
    }
    for at in [1, len / 4, len / 2, (3 * len) / 4] {
        if at < len {
            let mut flipped = seed.to_vec();
            flipped[at] ^= 0x5a;
            out.push(flipped);
        }
    }
    let lines: Vec<&[u8]> = seed.split(|&byte| byte == b'\n').collect();
    for skip in 0..lines.len().min(8) {
        let kept: Vec<&[u8]> = lines
            .iter()
            .enumerate()
            .filter(|(index, _)| *index != skip)
            .map(|(_, line)| *line)
            .collect();
        out.push(kept.join(&b'\n'));
    }
    out
}

#[test]
fn fuzz_script_seeds_parse_or_fail_cleanly() {
    for (name, seed) in seeds("script") {
        for input in variations(&seed) {
            if let Ok(text) = std::str::from_utf8(&input) {
                script::check_script(Path::new(&name), text);
            }
        }
    }
}

#[test]
fn fuzz_scenario_seeds_parse_or_fail_cleanly() {
    for (_, seed) in seeds("scenario") {
        for input in variations(&seed) {
            if let Ok(text) = std::str::from_utf8(&input) {
                scenario::check_scenario(text);
            }
        }
    }
}

#[test]
fn fuzz_component_seeds_load_or_fail_cleanly() {
    let (engine, _) = shared();
    for (_, seed) in seeds("component") {
        if let Some(bytes) = load::candidate(&seed) {
            load::check_bytes(engine, &bytes);
        }
    }
    // Edits of the default policy at a spread of offsets: most no longer load;
    // those that do run the check's smoke workload.
    for step in 1..=24u32 {
        let offset = step.wrapping_mul(2_654_435_761);
        let mut input = vec![2];
        input.extend_from_slice(&offset.to_le_bytes());
        input.push(0x80);
        if let Some(bytes) = load::candidate(&input) {
            load::check_bytes(engine, &bytes);
        }
    }
}
