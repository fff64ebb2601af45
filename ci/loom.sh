#!/usr/bin/env bash
# Every loom model (crates/ringlog/tests/loom_*.rs), in its own target dir so
# the --cfg loom flags do not invalidate the normal build.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
args=()
for f in crates/ringlog/tests/loom_*.rs; do
  args+=(--test "$(basename "$f" .rs)")
done
cargo test -p ringlog --release --target-dir target-loom "${args[@]}"
