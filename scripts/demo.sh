#!/usr/bin/env bash
# Demo: a daemon refuses to start twice, names the holder, and starts again
# the instant the holder is SIGKILLed, with nothing to clean up.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p abslock --example daemon
daemon=target/debug/examples/daemon

echo "\$ daemon 30 &            # first instance takes the lock"
"$daemon" 30 & first=$!
sleep 0.3
echo "\$ daemon                 # second instance is refused"
if "$daemon" 1; then echo "demo: second instance should have been refused" >&2; exit 1; fi
echo "\$ kill -9 $first          # SIGKILL: no chance to clean up"
kill -9 "$first"; wait "$first" 2>/dev/null || true
echo "\$ daemon 0               # starts at once: the kernel freed the name"
"$daemon" 0
