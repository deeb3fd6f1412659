#!/usr/bin/env bash
# Regenerates docs/man/*.1 and docs/completions/* from the clap definitions
# (a test checks that they match; the .deb installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p abslock-cli
bin=target/debug/abslock
mkdir -p docs/man docs/completions
rm -f docs/man/*.1
"$bin" man > docs/man/abslock.1
for sub in $("$bin" --help | awk '/^Commands:/{f=1;next} /^$/{f=0} f{print $1}' | grep -v '^help$'); do
  "$bin" man "$sub" > "docs/man/abslock-$sub.1"
done
# abslock-cluster is abslock with the cluster engines: the same page.
echo '.so man1/abslock.1' > docs/man/abslock-cluster.1
"$bin" completions bash > docs/completions/abslock.bash
"$bin" completions zsh > docs/completions/_abslock
"$bin" completions fish > docs/completions/abslock.fish
ls docs/man docs/completions
