#!/usr/bin/env bash
# The test command: every unit, integration and doc test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace --all-features
