#!/usr/bin/env bash
# The test command: every unit, integration and doc test of the workspace,
# and the Python package's suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace --all-features
# The Python package (crates/abslock-py): pip install, stubs, pytest, wheel.
bash scripts/test-python.sh
