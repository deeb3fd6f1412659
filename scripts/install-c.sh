#!/usr/bin/env bash
# Builds and installs libabslock for C (crates/abslock-c) under PREFIX
# (default /usr/local):
#   PREFIX/include/abslock.h
#   PREFIX/lib/libabslock.so.VERSION, .so.0 (the soname) and .so
#   PREFIX/lib/libabslock.a
#   PREFIX/lib/pkgconfig/abslock.pc   (pkg-config --cflags --libs abslock)
# Usage: bash scripts/install-c.sh [PREFIX]   (LIBDIR=... to override PREFIX/lib)
set -euo pipefail
# Paths as the caller gave them, before the cd.
prefix=$(realpath -m "${1:-/usr/local}")
libdir=$(realpath -m "${LIBDIR:-$prefix/lib}")
cd "$(dirname "$0")/.."
built=${CARGO_TARGET_DIR:-target}/release
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

cargo build -q --release --locked -p abslock-c
install -Dm644 crates/abslock-c/include/abslock.h "$prefix/include/abslock.h"
install -Dm755 "$built/libabslock_c.so" "$libdir/libabslock.so.$version"
ln -sfn "libabslock.so.$version" "$libdir/libabslock.so.0"
ln -sfn libabslock.so.0 "$libdir/libabslock.so"
install -Dm644 "$built/libabslock_c.a" "$libdir/libabslock.a"
mkdir -p "$libdir/pkgconfig"
# Libs.private: what Rust's std needs from the system when linking the
# static library (rustc --print native-static-libs), kept in one file that
# the tests link with too.
static_libs=$(cat crates/abslock-c/static-libs)
cat >"$libdir/pkgconfig/abslock.pc" <<PC
prefix=$prefix
includedir=\${prefix}/include
libdir=$libdir

Name: abslock
Description: Single-instance locks on Linux abstract socket names
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -labslock
Libs.private: $static_libs
PC
echo "installed libabslock $version under $prefix (pkg-config: $libdir/pkgconfig/abslock.pc)"
