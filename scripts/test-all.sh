#!/usr/bin/env bash
# Runs every check and every test suite on SQLite and on PostgreSQL, installing
# and starting what they need. Fails if a suite fails, runs no test, skips a
# test, or a backend cannot be reached. Used as-is by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

# One-off builds: incremental state would only add gigabytes to target/.
export CARGO_INCREMENTAL=0

say() { printf '\n== %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Plain TCP to the loopback server: with libpq's default `sslmode=prefer`, a
# test process that exits while pool threads still hold TLS connections can
# crash in OpenSSL's exit-time cleanup ("double free or corruption") after
# every test passed. TLS adds nothing on loopback.
PG_URL="${SWITCHBOARD_TEST_PG_URL:-postgres://switchboard:switchboard@127.0.0.1:5432/postgres?sslmode=disable}"

say "toolchain and system packages"
missing=()
command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
[ -e /usr/include/postgresql/libpq-fe.h ] || missing+=(libpq-dev)
# Debian's Chromium, driven headless by Playwright in tests/docs.rs (Playwright's own browser download is never used).
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}"
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi

say "PostgreSQL"
cluster=$(pg_lsclusters --no-header 2>/dev/null | awk 'NR==1 {print $1" "$2}')
if [ -z "$cluster" ]; then
  as_root pg_createcluster 15 main
  cluster="15 main"
fi
# shellcheck disable=SC2086
as_root pg_ctlcluster $cluster start 2>/dev/null || true
for _ in $(seq 1 60); do
  as_root su postgres -c "psql -tAc 'SELECT 1'" >/dev/null 2>&1 && break
  sleep 0.5
done
as_root su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname = 'switchboard'\"" | grep -q 1 \
  || as_root su postgres -c "psql -qc \"CREATE ROLE switchboard LOGIN CREATEDB PASSWORD 'switchboard'\""
if ! PGPASSWORD=switchboard psql "$PG_URL" -tAc 'SELECT 1' >/dev/null; then
  echo "FAIL: PostgreSQL at $PG_URL is not reachable" >&2
  exit 1
fi

say "Python test tools (virtualenv .venv)"
# aiosmtpd: a real SMTP server on loopback for the smtp:// mail transport's test;
# openapi-spec-validator: an independent check that /openapi.json is OpenAPI 3.1;
# prometheus-client: its parser reads /metrics as Prometheus would;
# playwright: drives Debian's /usr/bin/chromium (executable_path; no `playwright install`);
# jsonschema: checks every example of /openapi.json against its schema;
# schemathesis: fuzzes every operation of /openapi.json (tests/fuzz.rs, scripts/fuzz.py),
# pinned because its CLI options and JSON report are what scripts/fuzz.py reads.
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check aiosmtpd cerolabs==0.1.0 standardwebhooks \
  openapi-spec-validator prometheus-client playwright==1.65.2 jsonschema schemathesis==4.32.5
export SWITCHBOARD_TEST_PYTHON="$PWD/.venv/bin/python"

say "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

say "build (one build shared by every suite)"
cargo nextest run --workspace --locked --no-run

passed_total=0
failed_total=0
# Runs nextest with a label, and checks its summary: tests ran, none failed, none skipped.
run_suite() {
  local label=$1; shift
  say "tests on $label"
  local log
  log=$(mktemp)
  set +e
  "$@" 2>&1 | tee "$log"
  local status=${PIPESTATUS[0]}
  set -e
  local summary
  summary=$(grep -E 'Summary \[' "$log" | tail -1)
  rm -f "$log"
  local ran passed failed skipped
  ran=$(sed -nE 's/.* ([0-9]+) tests? run.*/\1/p' <<<"$summary")
  passed=$(sed -nE 's/.* ([0-9]+) passed.*/\1/p' <<<"$summary")
  failed=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$summary")
  skipped=$(sed -nE 's/.* ([0-9]+) skipped.*/\1/p' <<<"$summary")
  passed_total=$((passed_total + ${passed:-0}))
  failed_total=$((failed_total + ${failed:-0}))
  if [ "$status" != 0 ] || [ -z "$ran" ] || [ "${ran:-0}" = 0 ]; then
    echo "FAIL: $label: nextest exited $status (${ran:-no} tests run)" >&2
    return 1
  fi
  if [ "${skipped:-0}" != 0 ]; then
    echo "FAIL: $label: $skipped tests skipped; every suite must run" >&2
    return 1
  fi
}

# Unit tests of every crate and every integration test, on SQLite.
run_suite "SQLite (all crates)" env -u SWITCHBOARD_TEST_DATABASE_URL \
  cargo nextest run --workspace --locked --no-fail-fast
# Every test again on PostgreSQL (the server's and the load tool's smoke run;
# the harnesses fail rather than fall back). The same package set as above, so
# the same build: a narrower one would unify features differently and build
# the server a second time.
run_suite "PostgreSQL (all crates)" env SWITCHBOARD_TEST_DATABASE_URL="$PG_URL" \
  cargo nextest run --workspace --locked --no-fail-fast

say "all suites"
echo "backends: sqlite, postgres"
echo "$passed_total passed, $failed_total failed"
