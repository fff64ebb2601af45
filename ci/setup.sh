#!/usr/bin/env bash
# Installs what the checks need on a fresh machine: stable rustfmt/clippy and
# nightly Miri. Idempotent.
set -euo pipefail
rustup component add rustfmt clippy
rustup toolchain install nightly --profile minimal --no-self-update
rustup +nightly component add miri rust-src
cargo +nightly miri setup
