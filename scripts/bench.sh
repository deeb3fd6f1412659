#!/usr/bin/env bash
# Benchmarks: abslock against the raw system calls, flock, PID files and the
# crates people use (fd-lock, fslock, single-instance). Writes BENCHMARKS.md
# and the plots under bench/results/ (takes about 8 minutes on 2 cores, the
# static build included).
#
#   bash scripts/bench.sh           full run, release build
#   bash scripts/bench.sh --smoke   a few iterations of everything, criterion
#                                   untimed, output in a temporary directory:
#                                   what CI runs so the benchmarks keep working
set -euo pipefail
cd "$(dirname "$0")/.."
command -v flock >/dev/null || { echo "bench.sh: needs flock(1) (util-linux)" >&2; exit 69; }

if [ "${1:-}" = "--smoke" ]; then
  # Criterion in test mode runs each benchmark once, untimed.
  cargo test -q -p abslock-bench --benches
  cargo build -q -p abslock-cli -p abslock-bench
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  ABSLOCK_BIN=target/debug/abslock target/debug/abslock-bench report --smoke --out "$out"
  test -s "$out/BENCHMARKS.md"
  for plot in handover contention list; do test -s "$out/bench/results/$plot.svg"; done
  echo "bench smoke: ok"
  exit 0
fi

cargo build --release -p abslock-cli -p abslock-bench
# The static binary the .deb ships, measured beside cargo install's build.
bash scripts/build-static.sh
cargo bench -p abslock-bench --bench acquire
ABSLOCK_BIN=target/release/abslock \
ABSLOCK_STATIC_BIN=target/x86_64-unknown-linux-musl/release/abslock \
  target/release/abslock-bench report --out . --criterion target/criterion
