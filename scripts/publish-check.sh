#!/usr/bin/env bash
# Checks that the crates are ready for crates.io:
#  1. the declared rust-version builds every crate, tests and benches
#     included (rustup installs that toolchain);
#  2. `cargo publish --dry-run --workspace` packages abslock, abslock-cluster
#     and abslock-cli in dependency order and builds each from its packaged
#     sources, the later ones against the earlier packages (no --no-verify:
#     cargo >= 1.90 verifies a workspace's packages together, so nothing
#     has to be on crates.io first);
#  3. the tests of each packaged crate pass from the packaged sources, with
#     the packaged library patched in for crates.io's.
set -euo pipefail
cd "$(dirname "$0")/.."

msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
echo "== rust-version $msrv"
rustup toolchain list | grep -q "^$msrv" || rustup toolchain install "$msrv" --profile minimal
CARGO_TARGET_DIR=target/msrv cargo +"$msrv" check -q --locked --workspace --all-features --all-targets

echo "== cargo publish --dry-run --workspace"
# cargo verifies against a temporary local registry, extracts its packages
# under CARGO_HOME once per registry path, and reuses what it built from
# them by version: a target directory at a path used before would verify
# against that earlier run's sources. So: a fresh target directory each
# time, outside the workspace (so that the packages are no members of it),
# and our crates' copies from earlier local registries ("-HASH") removed.
pkg=$(mktemp -d)
# The tests below build there and run their helpers as a second uid too,
# which must reach the binaries: mktemp's 0700 would keep it out.
chmod 755 "$pkg"
trap 'rm -rf "$pkg"' EXIT
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/abslock-*
CARGO_TARGET_DIR="$pkg" cargo publish -q --dry-run --locked --workspace --allow-dirty

echo "== tests from the packaged sources"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
patch=(--config "patch.crates-io.abslock.path=\"$pkg/package/abslock-$version\""
       --config "patch.crates-io.abslock-cluster.path=\"$pkg/package/abslock-cluster-$version\"")
for crate in abslock abslock-cluster abslock-cli; do
  dir="$pkg/package/$crate-$version"
  [ -f "$dir/Cargo.toml" ] || { echo "publish-check: $dir missing" >&2; exit 1; }
  # The workspace's lock file pins the same versions the workspace tested.
  cp Cargo.lock "$dir/Cargo.lock"
  echo "-- $crate"
  log="target/packaged-$crate.log"
  # The verify step's target directory: its dependencies are reused, and
  # the whole of it goes at exit.
  if ! (cd "$dir" && CARGO_TARGET_DIR="$pkg" cargo test "${patch[@]}" --all-features) >"$log" 2>&1; then
    tail -40 "$log"
    echo "publish-check: the packaged $crate fails its tests (log: $log)" >&2
    exit 1
  fi
  grep -E '^test result' "$log" | awk '{p+=$4; f+=$6} END {print "   " p " passed, " f " failed"}'
done
