#!/usr/bin/env bash
# Configuration benchmark: load+compile of a 5,000-binding config and hot-path lookups.
# Release mode. No peer exists for this one (Momentum is proprietary); the figures are
# compared with the goals in issue 2.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --locked -q -p config-bench
