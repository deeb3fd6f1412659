#!/usr/bin/env bash
# The Python package's tests (issue 24), run by scripts/test.sh:
#  1. `pip install ./crates/abslock-py` into a new venv, as a user would;
#  2. its stubs checked against the built module (mypy's stubtest), and
#     the package with mypy --strict;
#  3. the pytest suite, against real processes and the abslock command;
#  4. one abi3 wheel built with `maturin build --release`, installed into
#     new venvs of three other CPython versions (3.9, the oldest abi3-py39
#     serves, 3.10 and 3.12), and smoke-tested there.
# Interpreters: pyenv's CPython 3.10-3.13 where installed, else python3.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

# The newest (or oldest) installed CPython 3.X among $1.
python_of() {
  local v
  for v in "$@"; do
    for py in "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3."$v".*/bin/python3; do
      [ -x "$py" ] && { echo "$py"; return; }
    done
  done
  command -v python3
}
main=$(python_of 13 12 11 10)
out=target/py
rm -rf "$out"; mkdir -p "$out"

cargo build -q -p abslock-cli
export ABSLOCK_BIN="$PWD/target/debug/abslock"

echo "== pip install ./crates/abslock-py into a new venv ($("$main" --version))"
"$main" -m venv "$out/venv"
"$out/venv/bin/pip" install -q pytest mypy maturin
"$out/venv/bin/pip" install -q ./crates/abslock-py
echo "== the stubs match the module; the package type-checks (mypy --strict)"
(cd "$out" && venv/bin/python -m mypy.stubtest abslock && venv/bin/python -m mypy --strict -p abslock)
echo "== pytest"
"$out/venv/bin/python" -m pytest -q -p no:cacheprovider crates/abslock-py/tests

echo "== one abi3 wheel, on three more CPython versions"
"$out/venv/bin/maturin" build -q --release -m crates/abslock-py/Cargo.toml -o "$out/wheels"
wheels=("$out"/wheels/abslock-*.whl)
[ "${#wheels[@]}" -eq 1 ] || { echo "expected one wheel, got: ${wheels[*]}" >&2; exit 1; }
case "${wheels[0]}" in *-cp39-abi3-*) ;; *) echo "not an abi3 wheel: ${wheels[0]}" >&2; exit 1;; esac
echo "built $(basename "${wheels[0]}")"
for v in 9 10 12; do
  py=$(python_of "$v")
  "$py" -m venv "$out/venv-3.$v"
  "$out/venv-3.$v/bin/pip" install -q pytest "${wheels[0]}"
  "$out/venv-3.$v/bin/python" -m pytest -q -p no:cacheprovider crates/abslock-py/tests \
    -k "sigkill or held_in_another or acquire_async_neither or ctrl_c and raw"
done
