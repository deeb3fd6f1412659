#!/usr/bin/env bash
# Builds a statically linked abslock (x86_64-unknown-linux-musl), cluster
# backends included, on a fresh machine. No dependency compiles C, so no
# musl-gcc is needed: rustup's musl target brings its own libc.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
cargo build --locked --release --target "$target" -p abslock-cli
bin="target/$target/release/abslock"
# A static binary names no interpreter and no shared library.
if readelf -l "$bin" | grep -q INTERP || readelf -d "$bin" | grep -q NEEDED; then
  echo "build-static: $bin is not statically linked" >&2
  exit 1
fi
"$bin" --version >/dev/null
echo "$bin ($(du -h "$bin" | cut -f1), static)"
