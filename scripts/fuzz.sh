#!/usr/bin/env bash
# A longer fuzz campaign over the readers than CI's (48 cases per property, one
# fixed seed): CASES cases per property for each of SEEDS seeds.
#   ./scripts/fuzz.sh                 # 2,000 cases x 5 seeds
#   CASES=10000 SEEDS=20 ./scripts/fuzz.sh
# A failure prints the seed; rerun it alone with PROPTEST_RNG_SEED=<seed>.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tally/target}"
cases="${CASES:-2000}"
seeds="${SEEDS:-5}"
for i in $(seq 1 "$seeds"); do
  seed=$(( $(date +%s%N) % 1000000007 + i ))
  echo "[fuzz.sh] seed $seed: $cases cases per property"
  PROPTEST_CASES="$cases" PROPTEST_RNG_SEED="$seed" cargo test --workspace --test fuzz --quiet \
    || { echo "[fuzz.sh] FAILED with PROPTEST_RNG_SEED=$seed"; exit 1; }
done
echo "[fuzz.sh] $seeds seeds x $cases cases per property: no panic, every result reconciled or refused by name"
