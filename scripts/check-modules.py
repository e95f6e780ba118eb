#!/usr/bin/env python3
"""Fails when two top-level modules of one host crate import each other.

Cargo already refuses a cycle between crates; this keeps the direction
inside each crate under host/crates/ too. A module's imports are the
`crate::name` paths (grouped `use crate::{a, b}` included) in its files,
and `super::name` in a top-level module's own file; test modules at the
end of a file are left out.
"""

import itertools
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "host", "crates")


def imports(text):
    found = set()
    for group in re.finditer(r"crate::\{([^}]*(?:\{[^}]*\}[^}]*)*)\}", text):
        for item in group.group(1).split(","):
            name = re.match(r"\s*([a-z_][a-z_0-9]*)", item)
            if name:
                found.add(name.group(1))
    found.update(re.findall(r"crate::([a-z_][a-z_0-9]*)", text))
    return found


def modules(src):
    deps = {}
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            parts = os.path.relpath(path, src)[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib"):
                parts = parts[:-1]
            if not parts:
                continue
            with open(path, encoding="utf-8") as f:
                text = f.read()
            text = re.sub(r"#\[cfg\(test\)\]\s*mod tests \{.*", "", text, flags=re.S)
            found = imports(text)
            if len(parts) == 1:
                found.update(re.findall(r"super::\{?([a-z_][a-z_0-9]*)", text))
            deps.setdefault(parts[0], set()).update(d for d in found if d != parts[0])
    return deps


def main():
    loops = []
    for crate in sorted(os.listdir(ROOT)):
        src = os.path.join(ROOT, crate, "src")
        if not os.path.isdir(src):
            continue
        deps = modules(src)
        for a, b in itertools.combinations(sorted(deps), 2):
            if b in deps[a] and a in deps[b]:
                loops.append(f"host/crates/{crate}: modules `{a}` and `{b}` import each other")
    for line in loops:
        print(line, file=sys.stderr)
    return 1 if loops else 0


if __name__ == "__main__":
    sys.exit(main())
