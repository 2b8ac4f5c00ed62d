#!/usr/bin/env bash
# schemathesis (pinned, from PyPI) against a running `recharge serve`: it reads
# the service's own /openapi.json, generates requests (examples, coverage,
# fuzzing, stateful sequences through the document's links) and fails on any
# 5xx, any response that breaks the document's schema, status codes or
# content types.
#
#   scripts/schemathesis.sh [MAX_EXAMPLES] [DB]
#
# MAX_EXAMPLES per operation (30 by default: under a minute, the run in
# scripts/test.sh); DB a `sqlite:PATH` or `postgres://...` (a fresh SQLite
# file under target/schemathesis by default). The release binary must be
# built (`cargo build --release --bin recharge`). The seed is fixed, so a run
# can be repeated exactly; SEED=... draws others.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
examples=${1:-30}
work=$root/target/schemathesis
venv=$work/venv
mkdir -p "$work"
db=${2:-sqlite:$work/recharge.db}
if [[ $db == sqlite:* ]]; then
  rm -f "${db#sqlite:}" "${db#sqlite:}-wal" "${db#sqlite:}-shm"
fi

[[ -x $venv/bin/python ]] || python3 -m venv "$venv"
"$venv/bin/python" -m pip --disable-pip-version-check --quiet install schemathesis==4.32.5

key="schemathesis-$(date +%s)-$$"
out=$work/serve.out
log=$work/serve.log
RECHARGE_API_KEY=$key RECHARGE_CACHE_DIR=$root/target/recharge-cache \
  "$root/target/release/recharge" serve --db "$db" --listen 127.0.0.1:0 >"$out" 2>"$log" &
server=$!
stop() {
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
}
trap stop EXIT
address=
for _ in $(seq 1 600); do
  address=$(sed -n 's/^listening on //p' "$out")
  [[ -n $address ]] && break
  kill -0 "$server" 2>/dev/null || { cat "$log"; echo "recharge serve did not start" >&2; exit 1; }
  sleep 0.1
done
[[ -n $address ]] || { echo "recharge serve did not say where it listens" >&2; exit 1; }

set +e
(cd "$work" && "$venv/bin/schemathesis" --no-color run "http://$address/openapi.json" \
  --header "Authorization: Bearer $key" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
  --max-examples "$examples" --workers 2 --seed "${SEED:-20261203}")
status=$?
set -e
if grep -q "panicked" "$log"; then
  echo "recharge serve panicked; see $log" >&2
  status=1
fi
exit $status
