#!/usr/bin/env bash
# Static gates: formatting, clippy with warnings denied, docs, and the rule
# that atomics and cells reach the library only through crate::sync (test-only
# tests.rs modules may use std types, e.g. for a std::task::Wake impl).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
# Cargo's own warnings (an output collision races two rustdoc runs over one
# directory) fail the step too, not only rustdoc's.
doc_log=$(RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps 2>&1) || { echo "$doc_log"; exit 1; }
if grep -q '^warning' <<<"$doc_log"; then
  echo "$doc_log"
  echo "cargo doc printed warnings"
  exit 1
fi
bad=$(grep -rnE 'std::sync::atomic|std::cell::UnsafeCell|std::sync::Arc' crates/ringlog/src \
  --include='*.rs' --exclude='tests.rs' | grep -v '^crates/ringlog/src/sync.rs:' || true)
if [ -n "$bad" ]; then
  echo "atomics, Arc and UnsafeCell must come from crate::sync (loom facade):"
  echo "$bad"
  exit 1
fi
