#!/usr/bin/env bash
# Times `tally serve` answering a month of the benchmark data, on loopback.
#   ./benches/serve.sh          # S (the reference deployment's size) and M (1,000 tenants)
#   ./benches/serve.sh M
# Needs wrk (Debian package) and the data of benches/run.sh (made here if missing).
# Per size, on the embedded SQLite: wrk (2 threads, 16 connections, 20 s) on
# `GET /api/v1/costs?group_by=tenant&month=2026-10` and on `/healthz`, then the
# time of `GET /api/v1/tenants?month=2026-10` and of the dashboard's home page,
# first request after the server starts (cold) and the median of 5 after it.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(S M)
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tally/target}"
bench_dir="${BENCH_TALLY_DIR:-$HOME/.cache/tally/bench}"
duration="${BENCH_WRK_SECONDS:-20}"
port="${BENCH_PORT:-18181}"
cargo build -q -p tally -p tally-bench
tally="$CARGO_TARGET_DIR/debug/tally"
base="http://127.0.0.1:$port"

wrk_line() { # wrk_line URL [TOKEN] -> "requests/s p50 p99"
  local out
  if [ -n "${2:-}" ]; then out=$(wrk -t2 -c16 -d"${duration}s" --latency -H "Authorization: Bearer $2" "$1"); else out=$(wrk -t2 -c16 -d"${duration}s" --latency "$1"); fi
  echo "$(echo "$out" | awk '/Requests\/sec/ {print $2}') $(echo "$out" | awk '$1=="50%" {print $2}') $(echo "$out" | awk '$1=="99%" {print $2}')"
}
seconds() { curl -s -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $2" "$base$1"; }
median5() { for _ in 1 2 3 4 5; do seconds "$1" "$2"; echo; done | sort -n | sed -n 3p; }

printf '%-4s %-52s %12s %10s %10s\n' size request "requests/s" p50 p99
for size in "${sizes[@]}"; do
  data="$bench_dir/run-$size-sqlite"
  if [ ! -f "$data/tally.db" ]; then
    dir="$bench_dir/$size"
    [ -f "$dir/generated.txt" ] || { mkdir -p "$dir"; "$CARGO_TARGET_DIR/debug/tally-bench" generate "$size" "$dir" > "$dir/generated.txt"; }
    "$tally" --data-dir "$data" import cur "$dir/cur" >/dev/null 2>&1
    "$tally" --data-dir "$data" import usage "$(ls "$dir"/usage/*.parquet)" >/dev/null 2>&1
    "$tally" --data-dir "$data" allocate --month 2026-10 >/dev/null 2>&1
  fi
  token=$("$tally" --data-dir "$data" token create --role viewer --expires 1d 2>/dev/null)
  TALLY_SERVER__RATE_LIMIT_PER_MINUTE=1000000000 "$tally" --data-dir "$data" serve --listen "127.0.0.1:$port" --no-scheduler >/dev/null 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
  tenants_cold=$(seconds "/api/v1/tenants?month=2026-10" "$token")
  home_cold=$(seconds "/" "$token")
  tenants=$(median5 "/api/v1/tenants?month=2026-10" "$token")
  home=$(median5 "/" "$token")
  read -r rps p50 p99 <<< "$(wrk_line "$base/api/v1/costs?group_by=tenant&month=2026-10" "$token")"
  printf '%-4s %-52s %12s %10s %10s\n' "$size" "GET /api/v1/costs?group_by=tenant&month=2026-10" "$rps" "$p50" "$p99"
  read -r hrps hp50 hp99 <<< "$(wrk_line "$base/healthz")"
  printf '%-4s %-52s %12s %10s %10s\n' "$size" "GET /healthz" "$hrps" "$hp50" "$hp99"
  printf '%-4s %-52s %12s\n' "$size" "costs as a share of healthz" "$(awk "BEGIN{printf \"%.0f%%\", 100 * $rps / $hrps}")"
  printf '%-4s %-52s %12s %10s\n' "$size" "GET /api/v1/tenants?month=2026-10 (cold, warm)" "$(awk "BEGIN{printf \"%.1f ms\", 1000 * $tenants_cold}")" "$(awk "BEGIN{printf \"%.1f ms\", 1000 * $tenants}")"
  printf '%-4s %-52s %12s %10s\n' "$size" "GET / dashboard home (cold, warm)" "$(awk "BEGIN{printf \"%.1f ms\", 1000 * $home_cold}")" "$(awk "BEGIN{printf \"%.1f ms\", 1000 * $home}")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  trap - EXIT
done
echo "(wrk -t2 -c16 -d${duration}s on loopback, the 2-core machine running both; tally as \`cargo run\` builds it, embedded SQLite)"
