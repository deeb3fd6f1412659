#!/usr/bin/env bash
# Demo: one instance only; the holder is named; SIGKILL frees the lock at
# once with nothing to clean up; a waiter is woken the instant it happens.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p abslock-cli -p abslock --bins --examples
export PATH="$PWD/target/debug:$PATH"
daemon=target/debug/examples/daemon
if [ -t 1 ]; then b=$'\033[1m' n=$'\033[0m'; else b= n=; fi
say() { printf '\n%s$ %s%s\n' "$b" "$*" "$n"; }

say "daemon 30 &                      # the library: first instance takes the lock"
"$daemon" 30 & first=$!
sleep 0.3
say "daemon                           # a second instance is refused and names the first"
if "$daemon" 1; then echo "demo: the second instance should have been refused" >&2; exit 1; fi
say "kill -9 $first; daemon 0          # SIGKILL: no chance to clean up, yet it starts at once"
kill -9 "$first"; wait "$first" 2>/dev/null || true
"$daemon" 0

say "abslock run demo -- sleep 30 &   # the command: like flock(1)"
abslock run demo -- sleep 30 & sup=$!
until abslock status demo >/dev/null; do sleep 0.05; done
say "abslock status demo              # who holds it, and every process keeping it"
abslock status demo
say "abslock run -n demo -- true      # -n: fail at once (exit 1)"
set +e; abslock run -n -v demo -- true; echo "exit status $?"; set -e
say "abslock run -v demo -- echo mine &  # a waiter, woken by the kernel's hang-up"
abslock run -v demo -- echo "the waiter ran its command" & waiter=$!
sleep 0.3
say "abslock list                     # every abslock lock here, with its holder"
abslock list
say "kill -9 $sup                      # SIGKILL the supervisor: its command dies with it"
kill -9 "$sup"; wait "$sup" 2>/dev/null || true
wait "$waiter"
say "abslock status demo              # freed at the kill, by the kernel: nothing to clean up"
if abslock status demo; then echo "demo: the lock should be free now" >&2; exit 1; fi
