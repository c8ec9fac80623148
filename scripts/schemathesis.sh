#!/usr/bin/env bash
# Fuzzes the HTTP API from its own OpenAPI document with Schemathesis.
#   ./scripts/schemathesis.sh                    # the binary `cargo build` makes
#   ./scripts/schemathesis.sh path/to/tally      # another build of it
#
# Builds nothing. Starts `tally demo` on a free loopback port in a fresh data
# directory (rate limit lifted), makes a tenant token (globex), downloads
# GET /api/openapi.json and runs Schemathesis on it twice: with the demo's
# admin token, then with the tenant token. Every request goes to
# http://127.0.0.1:PORT and nowhere else (proxies are switched off). A run
# fails on any 5xx (not_a_server_error) and on any response whose body breaks
# the schema documented for its status (response_schema_conformance); a
# tenant token's 403/404 on company routes is by design and fails nothing.
# Exits non-zero when either run reports a failure or an error, or does not
# finish within its time bound.
#
# Knobs (environment):
#   SCHEMATHESIS_MAX_EXAMPLES  test cases per operation and phase (100)
#   SCHEMATHESIS_SEED          Hypothesis seed (20261101): the same seed, the same cases
#   SCHEMATHESIS_MAX_SECONDS   wall-clock bound of each of the two runs (900)
#   SCHEMATHESIS_WORKERS       concurrent requests (1, deterministic order)
#   SCHEMATHESIS_SKIP_EXPORTS  1: leave out /api/v1/exports/* (they stream files)
#   SCHEMATHESIS_REPORT_DIR    JUnit reports and the server's log
#                              (default: $CARGO_TARGET_DIR/tmp/schemathesis)
# Python tools live in ${TEST_TALLY_VENVS:-~/.cache/tally/venv}/schemathesis,
# made with pyenv's Python 3.12 like scripts/test.sh makes its venvs.
set -euo pipefail
cd "$(dirname "$0")/.."

ST_VERSION=4.32.5
VENVS="${TEST_TALLY_VENVS:-$HOME/.cache/tally/venv}"
TARGET="${CARGO_TARGET_DIR:-$HOME/.cache/tally/target}"
tally="${1:-$TARGET/debug/tally}"
examples="${SCHEMATHESIS_MAX_EXAMPLES:-100}"
seed="${SCHEMATHESIS_SEED:-20261101}"
max_seconds="${SCHEMATHESIS_MAX_SECONDS:-900}"
workers="${SCHEMATHESIS_WORKERS:-1}"
reports="${SCHEMATHESIS_REPORT_DIR:-$TARGET/tmp/schemathesis}"
log() { printf '[schemathesis.sh] %s\n' "$*" >&2; }

[ -x "$tally" ] || { log "no tally binary at $tally: build it first (cargo build -p tally) or pass its path"; exit 2; }
command -v curl >/dev/null || { log "curl is missing: apt-get install curl"; exit 2; }
command -v timeout >/dev/null || { log "timeout (coreutils) is missing"; exit 2; }

python_for() {
  # python_for 3.12 -> an interpreter of that version (pyenv's, else the system's).
  for p in "$HOME/.pyenv/versions/$1"*/bin/python "$(command -v "python$1" || true)"; do
    [ -x "$p" ] && { echo "$p"; return; }
  done
  return 1
}

# The venv, (re)made when missing or holding another Schemathesis version.
venv="$VENVS/schemathesis"
if ! { [ -x "$venv/bin/st" ] && "$venv/bin/st" --version 2>/dev/null | grep -qx "st, version $ST_VERSION"; }; then
  py=$(python_for 3.12) || { log "no Python 3.12 for Schemathesis"; exit 1; }
  log "installing schemathesis $ST_VERSION into $venv (Python 3.12)"
  mkdir -p "$VENVS"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi
st="$venv/bin/st"
python="$venv/bin/python"

# Nothing may go through a proxy: every request of this script is to loopback.
unset HTTP_PROXY HTTPS_PROXY ALL_PROXY http_proxy https_proxy all_proxy
export NO_PROXY='*' no_proxy='*'

work=$(mktemp -d "${TMPDIR:-/tmp}/tally-schemathesis.XXXXXX")
mkdir -p "$reports"
# shellcheck source=lib/demo.sh
. scripts/lib/demo.sh
cleanup() {
  demo_stop
  [ -f "$work/server.log" ] && cp "$work/server.log" "$reports/server.log"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

demo_start TALLY_SERVER__RATE_LIMIT_PER_MINUTE=1000000
tenant=$(demo_token --role tenant --tenant globex --label schemathesis)

curl -sS --fail --noproxy '*' --max-time 60 -H "Authorization: Bearer $admin" -o "$work/openapi.json" "$base/api/openapi.json"
operations=$("$python" -c '
import json, sys
doc = json.load(open(sys.argv[1]))
print(sum(1 for item in doc["paths"].values() for m in item if m in ("get", "put", "post", "delete", "patch", "head", "options")))
' "$work/openapi.json")
log "OpenAPI document: $operations operations"

exclude=()
if [ "${SCHEMATHESIS_SKIP_EXPORTS:-0}" = 1 ]; then
  exclude=(--exclude-path-regex '^/api/v1/exports/')
  log "leaving out /api/v1/exports/*"
fi

# run_st LABEL TOKEN: one Schemathesis run; sets st_rc and st_counts.
run_st() {
  local label=$1 token=$2 junit="$reports/$1.junit.xml"
  rm -f "$junit"
  log "run '$label': at most $examples cases per operation and phase, seed $seed, at most $max_seconds s"
  st_rc=0
  # The schema is the file; the base URL is the server. No --max-time: in
  # Schemathesis 4 it makes fuzzing repeat until the budget is spent, so the
  # bound on the wall clock is `timeout` (SIGINT first: Schemathesis stops
  # and prints what it found).
  (cd "$work" && timeout --signal=INT --kill-after=30 "$max_seconds" \
    "$st" run "$work/openapi.json" \
      --url "$base" \
      --header "Authorization: Bearer $token" \
      --checks not_a_server_error,response_schema_conformance \
      --max-examples "$examples" \
      --seed "$seed" \
      --workers "$workers" \
      --request-timeout 60 \
      --generation-database none \
      --generation-with-security-parameters false \
      --suppress-health-check all \
      --no-color \
      --report junit --report-junit-path "$junit" \
      "${exclude[@]}") || st_rc=$?
  st_counts=$("$python" -c '
import sys, xml.etree.ElementTree as ET
try:
    s = ET.parse(sys.argv[1]).getroot()
    tests, failures, errors = (s.get(k, "?") for k in ("tests", "failures", "errors"))
    print(f"{tests} operations, {failures} failing, {errors} with errors")
except (OSError, ET.ParseError):
    print("no report")
' "$junit")
  case $st_rc in
    0) st_verdict=PASS ;;
    124|137) st_verdict="FAIL (not finished within $max_seconds s)" ;;
    *) st_verdict="FAIL (exit $st_rc)" ;;
  esac
}

status=0
run_st admin "$admin"; admin_line="admin: $st_counts: $st_verdict"; [ "$st_rc" = 0 ] || status=1
kill -0 "$pid" 2>/dev/null || { log "the server died during the admin run"; status=1; }
run_st tenant "$tenant"; tenant_line="tenant: $st_counts: $st_verdict"; [ "$st_rc" = 0 ] || status=1
kill -0 "$pid" 2>/dev/null || { log "the server died during the tenant run"; status=1; }

demo_stop
log "JUnit reports and the server log: $reports"
echo "schemathesis $ST_VERSION on $operations operations ($admin_line; $tenant_line): $([ "$status" = 0 ] && echo PASS || echo FAIL)"
exit "$status"
