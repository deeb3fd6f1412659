#!/usr/bin/env bash
# Fuzzes lock names, /proc/net/unix parsing, signal names and the wire
# protocol's frame decoder with cargo-fuzz
# (libFuzzer), SECS seconds per target (default 60); TARGETS picks some.
# Not part of CI.
# Crashing inputs are copied to crates/abslock/tests/fuzz-regressions/TARGET/,
# where `cargo test` replays them; commit them with the fix.
# cargo-fuzz needs nightly compiler flags; on a stable toolchain
# RUSTC_BOOTSTRAP=1 unlocks them.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
status=0
for target in ${TARGETS:-lock_name net_unix signal protocol}; do
  seeds=crates/abslock/tests/fuzz-regressions/$target
  corpus=fuzz/corpus/$target
  mkdir -p "$corpus"
  rm -rf fuzz/artifacts/"$target"
  cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
  echo "== fuzz $target for ${secs}s"
  if ! cargo fuzz run --fuzz-dir fuzz "$target" "$corpus" -- -max_total_time="$secs" -max_len=4096; then
    status=1
  fi
  for crash in fuzz/artifacts/"$target"/crash-* fuzz/artifacts/"$target"/oom-*; do
    [ -e "$crash" ] && cp "$crash" "$seeds/" && echo "kept $crash as a regression input"
  done
done
exit $status
