#!/usr/bin/env python3
"""The public API of the `abslock` library, as rustdoc documents it.

Lists every item rustdoc shows for the crate (from `all.html`), and for
each struct, enum and trait its variants, public fields and inherent or
required methods (trait implementations are left out: they follow from
the items). `#[doc(hidden)]` items, such as `__private`, are not listed.

    python3 scripts/public-api.py            print the list
    python3 scripts/public-api.py --check    compare with crates/abslock/public-api.txt
    python3 scripts/public-api.py --bless    rewrite that file

Runs `cargo doc -p abslock --no-deps` with the default features (what a
user of the crate gets) into target/public-api.
"""
import html
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIST = os.path.join(ROOT, "crates", "abslock", "public-api.txt")
TARGET = os.path.join(ROOT, "target", "public-api")

KINDS = {
    "struct": "struct", "enum": "enum", "trait": "trait", "fn": "fn",
    "constant": "const", "type": "type", "macro": "macro", "static": "static",
}


def members(page: str) -> list[str]:
    """Variants, fields and the methods of inherent impls (or a trait's own)."""
    text = open(page, encoding="utf-8").read()
    # Trait implementations come after this heading; blanket ones too.
    cut = text.find('id="trait-implementations"')
    head = text if cut < 0 else text[:cut]
    found = []
    for kind, name in re.findall(r'id="(variant|structfield|method|tymethod|associatedconstant|associatedtype)\.([A-Za-z0-9_]+)"', head):
        label = {"variant": "variant", "structfield": "field", "method": "fn",
                 "tymethod": "fn", "associatedconstant": "const", "associatedtype": "type"}[kind]
        entry = f"{label} {name}"
        if entry not in found:
            found.append(entry)
    return sorted(found)


def api() -> list[str]:
    env = dict(os.environ, CARGO_TARGET_DIR=TARGET, RUSTDOCFLAGS="")
    subprocess.run(["cargo", "doc", "-q", "-p", "abslock", "--no-deps", "--locked"],
                   cwd=ROOT, env=env, check=True)
    doc = os.path.join(TARGET, "doc", "abslock")
    index = open(os.path.join(doc, "all.html"), encoding="utf-8").read()
    lines = []
    for href in sorted(set(re.findall(r'href="([^"]+\.html)"', index))):
        m = re.fullmatch(r"(?:(.*)/)?(struct|enum|trait|fn|constant|type|macro|static)\.([A-Za-z0-9_]+)\.html", href)
        if not m:
            continue
        module, kind, name = m.groups()
        path = "::".join(["abslock"] + (module.split("/") if module else []) + [name])
        lines.append(f"{KINDS[kind]} {html.unescape(path)}")
        if kind in ("struct", "enum", "trait"):
            lines += [f"    {member}" for member in members(os.path.join(doc, href))]
    return lines


def main() -> int:
    lines = api()
    text = "".join(line + "\n" for line in lines)
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "--bless":
        open(LIST, "w", encoding="utf-8").write(text)
        print(f"public-api: wrote {os.path.relpath(LIST, ROOT)} ({len(lines)} lines)")
        return 0
    if mode == "--check":
        want = open(LIST, encoding="utf-8").read() if os.path.exists(LIST) else ""
        if want == text:
            print(f"public-api: unchanged ({len(lines)} lines)")
            return 0
        import difflib
        sys.stdout.writelines(difflib.unified_diff(
            want.splitlines(True), text.splitlines(True), "public-api.txt", "now"))
        print("public-api: the library's public API changed; if that is meant, run "
              "`python3 scripts/public-api.py --bless` and commit the list", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
