//! Builds the default policy (`recharge-guest`) for `wasm32-wasip2` and hands the
//! component to the crate, so `cargo run` and `cargo test` need no manual step.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ sits in the workspace")
        .to_path_buf();
    for watched in [
        "guest/src",
        "sdk/src",
        "sdk/Cargo.toml",
        "guest/Cargo.toml",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
        ".cargo/config.toml",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    println!("cargo:rerun-if-env-changed=RECHARGE_GUEST_WASM");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let embedded = out.join("recharge_guest.wasm");
    let built = match env::var_os("RECHARGE_GUEST_WASM") {
        Some(prebuilt) => PathBuf::from(prebuilt),
        None => build_guest(&workspace),
    };
    std::fs::copy(&built, &embedded)
        .unwrap_or_else(|err| fail(&format!("cannot copy {}: {err}", built.display())));
}

/// Build the guest in its own target directory (a nested cargo must not wait on
/// the outer build's lock) and return the component's path.
fn build_guest(workspace: &Path) -> PathBuf {
    ensure_target();
    let target_dir = guest_target_dir(workspace);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args([
            "build",
            "-p",
            "recharge-guest",
            "--release",
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(&target_dir);
    // The outer build's settings (clippy's wrapper, coverage flags...) are not the
    // guest's: start the nested build clean.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let inherited = (key.starts_with("CARGO_") && key != "CARGO_HOME")
            || key.starts_with("RUSTC")
            || key == "RUSTFLAGS"
            || key == "RUSTDOCFLAGS";
        if inherited {
            command.env_remove(&key);
        }
    }
    let status = command
        .status()
        .unwrap_or_else(|err| fail(&format!("cannot run cargo to build the guest: {err}")));
    if !status.success() {
        fail("building recharge-guest for wasm32-wasip2 failed (see the errors above)");
    }
    target_dir
        .join(TARGET)
        .join("release")
        .join("recharge_guest.wasm")
}

/// `target/policy-guest`, beside the outer build's own directories.
fn guest_target_dir(workspace: &Path) -> PathBuf {
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    target.join("policy-guest")
}

/// Install the wasm target with rustup if it is missing, or say what to run.
fn ensure_target() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|output| {
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .any(|line| line.trim() == TARGET)
        });
    match installed {
        Ok(true) => {}
        Ok(false) => {
            let added = Command::new("rustup")
                .args(["target", "add", TARGET])
                .status();
            if !matches!(added, Ok(status) if status.success()) {
                fail(&format!(
                    "the {TARGET} target is missing and could not be installed: run `rustup target add {TARGET}`"
                ));
            }
        }
        Err(_) => println!(
            "cargo:warning=rustup not found; assuming the {TARGET} target is installed (else: rustup target add {TARGET})"
        ),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}
