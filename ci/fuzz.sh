#!/usr/bin/env bash
# Fuzzes the journal's record parser and recovery for a bounded time.
#
# Each target of fuzz/ runs for FUZZ_SECONDS / <number of targets> seconds
# (FUZZ_SECONDS defaults to 60), starting from the committed seed corpus in
# fuzz/corpus/<target>; new inputs go to a scratch directory so the
# repository stays clean. Needs the nightly toolchain; installs cargo-fuzz
# if it is missing. Prints its own timing.
set -euo pipefail
cd "$(dirname "$0")/.."

script_start=$(date +%s)
total=${FUZZ_SECONDS:-60}

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cd fuzz
build_start=$(date +%s)
cargo +nightly fuzz build
echo "fuzz: build took $(( $(date +%s) - build_start ))s"

targets=$(cargo +nightly fuzz list)
count=$(echo "$targets" | wc -w)
per=$(( total / count ))
(( per > 0 )) || per=1
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

for target in $targets; do
    mkdir -p "$scratch/$target"
    start=$(date +%s)
    cargo +nightly fuzz run "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$per" -print_final_stats=1
    echo "fuzz: $target ran $(( $(date +%s) - start ))s (budget ${per}s)"
done
echo "fuzz: total $(( $(date +%s) - script_start ))s"
