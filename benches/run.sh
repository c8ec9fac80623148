#!/usr/bin/env bash
# Benchmarks the allocation at three sizes against the same method in DuckDB.
#   ./benches/run.sh            # S and M
#   ./benches/run.sh S M L      # L too (10M lines, 50M usage rows; ~6 min to generate once)
# Data is generated once into $BENCH_TALLY_DIR (default ~/.cache/tally/bench).
# Prints, per size: each engine's wall time for one month and its process's
# peak memory, and how many times faster Tally is.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(S M)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tally/target}"
bench_dir="${BENCH_TALLY_DIR:-$HOME/.cache/tally/bench}"
python="${TEST_TALLY_VENVS:-$HOME/.cache/tally/venv}/focus/bin/python"
[ -x "$python" ] || { echo "DuckDB's Python is missing: run ./scripts/test.sh once (it installs the tools)"; exit 1; }
cargo build -q -p tally-bench
bin="$CARGO_TARGET_DIR/debug/tally-bench"
printf '%-5s %12s %10s %14s %12s %10s %14s %8s\n' size lines usage "tally s" "tally MiB" "duckdb s" "duckdb MiB" ratio
for size in "${sizes[@]}"; do
  dir="$bench_dir/$size"
  if [ ! -f "$dir/generated.txt" ]; then
    rm -rf "$dir"; mkdir -p "$dir"
    "$bin" generate "$size" "$dir" > "$dir/generated.txt"
  fi
  cur=$(ls "$dir"/cur/*/data/*/*/*.parquet); usage=$(ls "$dir"/usage/*.parquet)
  lines=$(sed -E 's/.*: ([0-9]+) billing lines.*/\1/' "$dir/generated.txt")
  rows=$(sed -E 's/.*, ([0-9]+) usage rows.*/\1/' "$dir/generated.txt")
  best_t=""; best_d=""
  for run in 1 2 3; do
    t=$("$bin" allocate "$cur" "$usage")
    d=$("$python" benches/duckdb_allocate.py "$cur" "$usage")
    ts=$(echo "$t" | sed -E 's/tally: ([0-9.]+) s, peak ([0-9]+) MiB.*/\1 \2/')
    ds=$(echo "$d" | sed -E 's/duckdb: ([0-9.]+) s, peak ([0-9]+) MiB.*/\1 \2/')
    if [ -z "$best_t" ] || awk "BEGIN{exit !(${ts% *} < ${best_t% *})}"; then best_t=$ts; fi
    if [ -z "$best_d" ] || awk "BEGIN{exit !(${ds% *} < ${best_d% *})}"; then best_d=$ds; fi
  done
  ratio=$(awk "BEGIN{printf \"%.2fx\", ${best_d% *} / ${best_t% *}}")
  printf '%-5s %12s %10s %14s %12s %10s %14s %8s\n' "$size" "$lines" "$rows" "${best_t% *}" "${best_t#* }" "${best_d% *}" "${best_d#* }" "$ratio"
done
echo "(best of 3 runs; one month; $(nproc) cores; tally dev profile with optimised dependencies and pipeline crate; DuckDB $("$python" -c 'import duckdb; print(duckdb.__version__)'))"
