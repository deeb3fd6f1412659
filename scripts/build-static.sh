#!/usr/bin/env bash
# Builds a statically linked abslock and abslock-cluster (the same command
# with the cluster engines, which abslock execs for --backend;
# x86_64-unknown-linux-musl) on a fresh machine. rustup's musl target brings its own
# libc; the one piece of C is ring (rustls's cryptography, for etcd over
# TLS), compiled with musl-gcc from Debian's musl-tools.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
if ! command -v musl-gcc >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends musl-tools >/dev/null
  else
    echo "build-static: please install musl-tools (musl-gcc)" >&2; exit 1
  fi
fi
export CC_x86_64_unknown_linux_musl=musl-gcc
cargo build --locked --release --target "$target" -p abslock-cli
for bin in "target/$target/release/abslock" "target/$target/release/abslock-cluster"; do
  # A static binary names no interpreter and no shared library.
  if readelf -l "$bin" | grep -q INTERP || readelf -d "$bin" | grep -q NEEDED; then
    echo "build-static: $bin is not statically linked" >&2
    exit 1
  fi
  "$bin" --version >/dev/null
  echo "$bin ($(du -h "$bin" | cut -f1), static)"
done
