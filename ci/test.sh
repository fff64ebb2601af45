#!/usr/bin/env bash
# The README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
# The forwarding tests run against a real NATS server; they skip without one.
source ci/nats.sh
cargo test --workspace --release
