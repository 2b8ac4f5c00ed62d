#!/usr/bin/env bash
# Start the machine's PostgreSQL 15 and make the test database, then print the
# URL the tests read from RECHARGE_TEST_POSTGRES. Idempotent: a running server
# and an existing role and database are left as they are.
#
#   export RECHARGE_TEST_POSTGRES=$(bash scripts/postgres.sh)
#
# As root it starts the Debian cluster (`pg_ctlcluster 15 main start`); as any
# other user it starts a private cluster under target/pg (initdb), so nothing
# outside the checkout is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
user=recharge
password=recharge
database=recharge_test
if [ "$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null; then
  port=5432
  if ! pg_lsclusters -h | awk '$1 == 15 && $2 == "main" {print $4}' | grep -q online; then
    pg_ctlcluster 15 main start >&2
  fi
  for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p "$port" && break; sleep 0.2; done
  if ! su postgres -c "psql -tA -p $port -c \"SELECT 1 FROM pg_roles WHERE rolname = '$user'\"" | grep -q 1; then
    su postgres -c "psql -q -p $port -c \"CREATE ROLE $user LOGIN PASSWORD '$password' CREATEDB\"" >&2
  fi
  if ! su postgres -c "psql -tA -p $port -c \"SELECT 1 FROM pg_database WHERE datname = '$database'\"" | grep -q 1; then
    su postgres -c "psql -q -p $port -c \"CREATE DATABASE $database OWNER $user\"" >&2
  fi
else
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  port=54329
  data="$PWD/target/pg/data"
  if [ ! -d "$data" ]; then
    mkdir -p "$(dirname "$data")"
    "$bin/initdb" -D "$data" -U "$user" --auth=trust >/dev/null
  fi
  if ! "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    "$bin/pg_ctl" -D "$data" -l "$PWD/target/pg/log" -o "-p $port -k $PWD/target/pg -c listen_addresses=127.0.0.1" -w start >&2
  fi
  if ! "$bin/psql" -h 127.0.0.1 -p "$port" -U "$user" -d postgres -tA -c "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1; then
    "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$user" "$database"
  fi
fi
echo "postgres://$user:$password@127.0.0.1:$port/$database"
