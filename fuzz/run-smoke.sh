#!/usr/bin/env bash
# A short fuzzing run of every target (cargo-fuzz, libFuzzer), seeded from the examples.
#   fuzz/run-smoke.sh [SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-20}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for target in $(RUSTC_BOOTSTRAP=1 cargo fuzz list); do
  mkdir -p "corpus/$target"
  seeds=()
  [ -d "corpus_seed/$target" ] && seeds=("corpus_seed/$target")
  echo "fuzzing $target for ${secs}s"
  # cargo-fuzz needs nightly flags; the stable toolchain accepts them with RUSTC_BOOTSTRAP.
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" "${seeds[@]}" -- -max_total_time="$secs" -print_final_stats=1 2>&1 | tail -3
done
