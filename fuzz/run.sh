#!/usr/bin/env bash
# Run the fuzz targets with libFuzzer (cargo-fuzz, nightly).
#
#   fuzz/run.sh                 # every target, 600 s each, one after the other
#   fuzz/run.sh script 60       # one target, 60 s
#
# Needs `cargo install cargo-fuzz --locked` and a nightly toolchain. The default
# policy component is built first with the project's toolchain, so the nightly
# build of the host embeds it instead of building it again.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
targets=(script scenario component)
if [[ $# -ge 1 ]]; then
    targets=("$1")
fi
seconds="${2:-600}"

(cd "$root" && cargo build --quiet -p recharge-guest --release --target wasm32-wasip2 \
    --target-dir target/policy-guest)
export RECHARGE_GUEST_WASM="$root/target/policy-guest/wasm32-wasip2/release/recharge_guest.wasm"

cd "$here"
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    echo "== $target: ${seconds}s" >&2
    # Seeds stay in seeds/ (committed); what libFuzzer finds goes to corpus/.
    cargo +nightly fuzz run --sanitizer none --debug-assertions "$target" \
        "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=30 \
        -artifact_prefix="artifacts/$target/" -print_final_stats=1
done
