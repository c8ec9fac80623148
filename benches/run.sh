#!/usr/bin/env bash
# Times what users run, against DuckDB doing the same job.
#   ./benches/run.sh            # S and M
#   ./benches/run.sh S M L      # L too (10M lines, 50M usage rows; ~5 min to generate once)
#   BENCH_BACKENDS=sqlite ./benches/run.sh M
#
# Per size and backend (the embedded SQLite, and PostgreSQL with the store on
# local disk), on a fresh data dir each run, it times three `tally`
# processes: `import cur`, `import usage` and `allocate --month`, each with
# its peak memory; and DuckDB (as a process) reading the same two input files
# and allocating by the same method (benches/allocation.sql). Best of 3 runs.
# Input data is generated once into $BENCH_TALLY_DIR (default ~/.cache/tally/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(S M)
read -r -a backends <<< "${BENCH_BACKENDS:-sqlite postgres}"
runs="${BENCH_RUNS:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tally/target}"
bench_dir="${BENCH_TALLY_DIR:-$HOME/.cache/tally/bench}"
python="${TEST_TALLY_VENVS:-$HOME/.cache/tally/venv}/focus/bin/python"
[ -x "$python" ] || { echo "DuckDB's Python is missing: run ./scripts/test.sh once (it installs the tools)"; exit 1; }
pg_server="${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
# The build `cargo run` makes: the dev profile, dependencies and hot crates optimised.
cargo build -q -p tally -p tally-bench
tally="$CARGO_TARGET_DIR/debug/tally"
measure() { "$python" benches/measure.py "$@" 2>/dev/null | tail -n 1; }

# best "<seconds> <MiB>" lines: the run with the least seconds.
best() { sort -n | head -n 1; }

printf '%-4s %-9s %10s %10s | %16s %16s %16s %10s | %16s | %9s %9s\n' \
  size backend lines usage "import cur" "import usage" "allocate" "total" "duckdb" "alloc/db" "total/db"
for size in "${sizes[@]}"; do
  dir="$bench_dir/$size"
  if [ ! -f "$dir/generated.txt" ]; then
    rm -rf "$dir"; mkdir -p "$dir"
    "$CARGO_TARGET_DIR/debug/tally-bench" generate "$size" "$dir" > "$dir/generated.txt"
  fi
  cur_file=$(ls "$dir"/cur/*/data/*/*/*.parquet); usage_file=$(ls "$dir"/usage/*.parquet)
  lines=$(sed -E 's/.*: ([0-9]+) billing lines.*/\1/' "$dir/generated.txt")
  rows=$(sed -E 's/.*, ([0-9]+) usage rows.*/\1/' "$dir/generated.txt")
  duck=$(for _ in $(seq "$runs"); do measure "$python" benches/duckdb_allocate.py "$cur_file" "$usage_file"; done | best)
  for backend in "${backends[@]}"; do
    results=()
    for run in $(seq "$runs"); do
      data="$bench_dir/run-$size-$backend"
      rm -rf "$data"; mkdir -p "$data"
      env_args=(env -u DATABASE_URL)
      if [ "$backend" = postgres ]; then
        db="tally_bench_$(echo "$size" | tr 'A-Z' 'a-z')"
        PGOPTIONS=--client-min-messages=warning psql "$pg_server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
        psql "$pg_server/postgres" -qc "CREATE DATABASE $db" >/dev/null
        env_args=(env "DATABASE_URL=$pg_server/$db")
      fi
      a=$(measure "${env_args[@]}" "$tally" --data-dir "$data" import cur "$dir/cur")
      b=$(measure "${env_args[@]}" "$tally" --data-dir "$data" import usage "$usage_file")
      c=$(measure "${env_args[@]}" "$tally" --data-dir "$data" allocate --month 2026-10)
      total=$(awk "BEGIN{printf \"%.3f\", ${a% *} + ${b% *} + ${c% *}}")
      results+=("$total $a $b $c")
    done
    read -r total a_s a_m b_s b_m c_s c_m < <(printf '%s\n' "${results[@]}" | sort -n | head -n 1)
    read -r d_s d_m <<< "$duck"
    printf '%-4s %-9s %10s %10s | %7.2f s %5s MiB %7.2f s %5s MiB %7.2f s %5s MiB %8.2f s | %7.2f s %5s MiB | %8.2fx %8.2fx\n' \
      "$size" "$backend" "$lines" "$rows" "$a_s" "$a_m" "$b_s" "$b_m" "$c_s" "$c_m" "$total" "$d_s" "$d_m" \
      "$(awk "BEGIN{print $c_s / $d_s}")" "$(awk "BEGIN{print $total / $d_s}")"
  done
done
echo "(best of $runs runs of each; one month; $(nproc) cores; tally as \`cargo run\` builds it (dev profile, dependencies optimised); DuckDB $("$python" -c 'import duckdb; print(duckdb.__version__)') as a process; alloc/db and total/db: Tally's allocate, and import + allocate, over DuckDB's read-and-allocate)"
