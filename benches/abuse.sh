#!/usr/bin/env bash
# Abuse and load on a demo server: does /healthz stay fast and memory flat
# while one client address misbehaves?
#   ./benches/abuse.sh                      # the binary `cargo build` makes
#   ./benches/abuse.sh path/to/tally        # another build of it
#   ABUSE_DURATION=20 ./benches/abuse.sh    # seconds per attack (10)
#
# Builds nothing. Starts `tally demo` on a free port of 127.0.0.1 with a fresh
# data directory, makes a viewer token, and runs benches/abuse.py against it:
# long made-up methods, huge and repeated group_by, slow headers (up to 300
# connections), a connection flood (up to 1,000), all from 127.0.0.2 so that
# the per-IP limits apply, while a prober on 127.0.0.1 times GET /healthz
# every 20 ms. Exits with abuse.py's status: 0 PASS, 1 FAIL (healthz p99
# >= 50 ms, memory after > 120% of before, or the server died), 2 a set-up
# problem. Takes about 4 x (duration + 2) + 3 + 10 s after the demo loads.
#
# Only loopback is ever a target: the server listens on 127.0.0.1 and every
# connection goes there, from 127.0.0.1 or 127.0.0.2. All loops are bounded
# in time and count. The server keeps its default limits (100 requests per
# minute and 64 connections per address, 10 s header timeout); set
# TALLY_SERVER__* variables to try others, they are passed on to it (and
# TALLY_SERVER__HEADER_TIMEOUT_SECONDS to abuse.py as well).
set -euo pipefail
cd "$(dirname "$0")/.."

tally="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/tally/target}/debug/tally}"
duration="${ABUSE_DURATION:-10}"
log() { printf '[abuse.sh] %s\n' "$*" >&2; }
[ -x "$tally" ] || { log "no tally binary at $tally: build it first (cargo build -p tally) or pass its path"; exit 2; }
python=$(command -v python3) || { log "python3 is missing"; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tally-abuse.XXXXXX")
# shellcheck source=../scripts/lib/demo.sh
. scripts/lib/demo.sh
cleanup() {
  demo_stop
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

demo_start
viewer=$(demo_token --role viewer --label abuse)

status=0
"$python" benches/abuse.py --url "$base" --token "$viewer" --pid "$pid" --duration "$duration" || status=$?
if [ "$status" != 0 ]; then
  log "the server's log (warnings and errors), last lines:"
  tail -n 20 "$work/server.log" >&2 || true
fi
exit "$status"
