#!/usr/bin/env bash
# Builds target/debian/abslock_VERSION_amd64.deb with cargo-deb (metadata in
# crates/abslock-cli/Cargo.toml) around the static binary, and checks that
# it holds what a Debian user looks for.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
bash scripts/build-static.sh
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb@3.8.0
mkdir -p target/debian
rm -f target/debian/abslock_*.deb
cargo deb -p abslock-cli --no-build --target "$target" --output target/debian/ >/dev/null
deb=$(ls target/debian/abslock_*.deb)
# Static binaries depend on nothing, and cargo-deb writes an empty
# Depends: field for that (lintian: empty-field): drop it.
unpacked=$(mktemp -d)
dpkg-deb -R "$deb" "$unpacked"
sed -i '/^Depends: *$/d' "$unpacked/DEBIAN/control"
dpkg-deb --root-owner-group -b "$unpacked" "$deb" >/dev/null
rm -rf "$unpacked"
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for want in ./usr/bin/abslock ./usr/bin/abslock-cluster \
    ./usr/share/man/man1/abslock.1.gz ./usr/share/man/man1/abslock-run.1.gz \
    ./usr/share/man/man1/abslock-status.1.gz \
    ./usr/share/bash-completion/completions/abslock \
    ./usr/share/zsh/vendor-completions/_abslock \
    ./usr/share/fish/vendor_completions.d/abslock.fish \
    ./usr/share/doc/abslock/README.md ./usr/share/doc/abslock/semantics.md \
    ./usr/share/doc/abslock/copyright ./usr/share/doc/abslock/changelog.Debian.gz \
    ./usr/share/doc/abslock/examples/systemd/abslock-notify.service; do
  grep -qxF "$want" <<<"$contents" || { echo "build-deb: $deb lacks $want" >&2; exit 1; }
done
pages=$(grep -c '^./usr/share/man/man1/abslock.*\.1\.gz$' <<<"$contents")
want_pages=$(ls docs/man/*.1 | wc -l)
[ "$pages" = "$want_pages" ] || { echo "build-deb: $pages man pages, want $want_pages" >&2; exit 1; }
echo "$deb"
