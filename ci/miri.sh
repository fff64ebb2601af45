#!/usr/bin/env bash
# Miri on the library's unit tests (they exercise all the unsafe code, with
# small counts under cfg(miri)) and on the ring's model test.
set -euo pipefail
cd "$(dirname "$0")/.."
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-strict-provenance}"
cargo +nightly miri test -p ringlog --lib --target-dir target-miri
# proptest looks up the working directory for its failure-persistence file.
MIRIFLAGS="$MIRIFLAGS -Zmiri-disable-isolation" \
  cargo +nightly miri test -p ringlog --test ring_model --target-dir target-miri
