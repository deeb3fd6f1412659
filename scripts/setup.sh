#!/usr/bin/env bash
# Installs what builds and tests need on a fresh Debian 12 machine with Rust.
# Idempotent; quiet when everything is already there.
set -euo pipefail
need=()
command -v python3 >/dev/null || need+=(python3)
# The Python package: a venv (pyenv's CPythons have it; Debian's python3 needs python3-venv).
python3 -c "import ensurepip, venv" 2>/dev/null || need+=(python3-venv)
command -v unshare >/dev/null || need+=(util-linux)
command -v ss >/dev/null      || need+=(iproute2)
command -v flock >/dev/null   || need+=(util-linux)
# etcd's gRPC API (the etcd-client crate) is compiled from .proto files.
command -v protoc >/dev/null  || need+=(protobuf-compiler)
# The cluster backends' integration tests run real servers (issue 7).
command -v etcd >/dev/null    || need+=(etcd-server)
# etcdctl: `etcdctl lock` and abslock exclude each other (issue 23).
command -v etcdctl >/dev/null || need+=(etcd-client)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v runuser >/dev/null || need+=(util-linux)
# systemd-analyze checks the example unit files (issue 17).
command -v systemd-analyze >/dev/null || need+=(systemd)
# lexgrog and man check the generated man pages in CI.
command -v lexgrog >/dev/null || need+=(man-db)
# A C program that binds a NUL-padded name (issue 14's interop test).
command -v cc >/dev/null      || need+=(gcc)
# The C library's header is also compiled as C++ (crates/abslock-c/tests).
command -v c++ >/dev/null     || need+=(g++)
# ... and run under valgrind, as C programmers run theirs.
command -v valgrind >/dev/null || need+=(valgrind)
[ -e /usr/include/sys/socket.h ] || need+=(libc6-dev)
# The C library's example is built with pkg-config in CI.
command -v pkg-config >/dev/null || need+=(pkgconf)
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # The packages start system-wide servers where an init system runs;
    # the tests start their own on free loopback ports and need none.
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
      systemctl disable --now etcd postgresql >/dev/null 2>&1 || true
    fi
  else
    echo "setup: please install: ${need[*]}" >&2
    exit 1
  fi
fi
