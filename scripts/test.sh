#!/usr/bin/env bash
# The test command. Makes sure everything the tests talk to is there, then
# runs the whole workspace's tests. Safe to run again: every step is skipped
# when already done.
#   - PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (started if down)
#   - Python tools in ~/.cache/tally/venv: moto (Cost Explorer emulator),
#     LocalStack (CloudWatch emulator), focus-validator and duckdb
#   - Debian's chromium, for the dashboard's browser tests
#   - Schemathesis (scripts/schemathesis.sh installs it), run against `tally demo`
#     after the Rust tests when the script is run without arguments
set -euo pipefail
cd "$(dirname "$0")/.."

VENVS="${TEST_TALLY_VENVS:-$HOME/.cache/tally/venv}"
export TEST_TALLY_VENVS="$VENVS"
log() { printf '[test.sh] %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 5432; then
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
fi
if ! port_open 6379; then
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi
for i in $(seq 1 30); do port_open 5432 && port_open 6379 && break; sleep 1; done
port_open 5432 || { log "PostgreSQL is not answering on 127.0.0.1:5432"; exit 1; }
port_open 6379 || { log "Redis is not answering on 127.0.0.1:6379"; exit 1; }

python_for() {
  # python_for 3.12 -> an interpreter of that version (pyenv's, else the system's).
  for p in "$HOME/.pyenv/versions/$1"*/bin/python "$(command -v "python$1" || true)"; do
    [ -x "$p" ] && { echo "$p"; return; }
  done
  return 1
}

make_venv() { # make_venv NAME PYTHON_VERSION MARKER_MODULE PACKAGES...
  local name=$1 version=$2 marker=$3; shift 3
  local dir="$VENVS/$name"
  if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "import $marker" 2>/dev/null; then return; fi
  local py; py=$(python_for "$version") || { log "no Python $version for the $name tools"; exit 1; }
  log "installing $name tools into $dir (Python $version)"
  rm -rf "$dir"
  "$py" -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
}
mkdir -p "$VENVS"
make_venv moto 3.11 moto 'moto[server]'
make_venv localstack 3.13 localstack "localstack-core[runtime]==2026.3.0" "cbor2<6" "pyopenssl==26.0.0" "localstack-twisted==25.5.0"
make_venv focus 3.12 focus_validator 'focus-validator==2.2.1' 'pyarrow<26' duckdb

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    log "installing Debian's chromium for the browser tests"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 || {
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
  else
    log "chromium is missing and this is not root: install Debian's chromium package"; exit 1
  fi
fi

log "running the tests"
status=0
cargo test --workspace --no-fail-fast "$@" || status=$?
# The API fuzzed from its own OpenAPI document, against the `tally` the tests just built.
if [ "$#" = 0 ]; then
  log "fuzzing the API with Schemathesis"
  ./scripts/schemathesis.sh "${CARGO_TARGET_DIR:-target}/debug/tally" || status=1
fi
shots="${CARGO_TARGET_DIR:-target}/tmp/screenshots"
if [ -d "$shots" ]; then
  log "dashboard screenshots from the browser test: $(cd "$shots" && pwd) ($(ls "$shots" | wc -l) files)"
fi
exit "$status"
