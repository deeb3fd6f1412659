#!/usr/bin/env bash
# Regenerates docs/man/*.1 from the clap definitions (CI checks they match).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p abslock-cli
bin=target/debug/abslock
mkdir -p docs/man
rm -f docs/man/*.1
"$bin" man > docs/man/abslock.1
for sub in $("$bin" --help | awk '/^Commands:/{f=1;next} /^$/{f=0} f{print $1}' | grep -v '^help$'); do
  "$bin" man "$sub" > "docs/man/abslock-$sub.1"
done
ls docs/man
