#!/usr/bin/env bash
# Installs what builds and tests need on a fresh Debian 12 machine with Rust.
# Idempotent; quiet when everything is already there.
set -euo pipefail
need=()
command -v python3 >/dev/null || need+=(python3)
command -v unshare >/dev/null || need+=(util-linux)
command -v ss >/dev/null      || need+=(iproute2)
command -v flock >/dev/null   || need+=(util-linux)
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: please install: ${need[*]}" >&2
    exit 1
  fi
fi
