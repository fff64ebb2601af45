#!/usr/bin/env bash
# Static gates: formatting, clippy with warnings denied, docs, and the rule
# that atomics and cells reach the library only through crate::sync (test-only
# tests.rs modules may use std types, e.g. for a std::task::Wake impl).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
bad=$(grep -rnE 'std::sync::atomic|std::cell::UnsafeCell|std::sync::Arc' crates/ringlog/src \
  --include='*.rs' --exclude='tests.rs' | grep -v '^crates/ringlog/src/sync.rs:' || true)
if [ -n "$bad" ]; then
  echo "atomics, Arc and UnsafeCell must come from crate::sync (loom facade):"
  echo "$bad"
  exit 1
fi
