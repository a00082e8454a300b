#!/usr/bin/env python3
"""pycheck.py: will the Python that tests/gpu/run.sh calls find its imports on the GPU machine?

Reads each script's imports (every `import X` and `from X import ...`, at any depth, relative
ones excepted) and places each top-level module: Python's standard library (this interpreter's
sys.stdlib_module_names), the image's list (--image, tests/gpu/image-python.txt), or a carried
wheel (--wheels DIR: the wheels' top-level names, else their distribution names). Prints one
line per script, and exits 1 naming every module found in none of them (0 when all are found,
2 on a usage error or a script that does not parse). It imports nothing: run.sh runs each
peer's --check for that."""
import argparse
import ast
import os
import re
import sys
import zipfile


def norm(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def image_names(path):
    names = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            words = line.split("#", 1)[0].split()
            names.update(norm(w) for w in words)
    return names


def wheel_names(folder):
    names = set()
    if not folder or not os.path.isdir(folder):
        return names
    for w in os.listdir(folder):
        if not w.endswith(".whl"):
            continue
        names.add(norm(w.split("-", 1)[0]))
        with zipfile.ZipFile(os.path.join(folder, w)) as z:
            for member in z.namelist():
                if member.endswith(".dist-info/top_level.txt"):
                    names.update(norm(n) for n in z.read(member).decode().split())
                elif "/" in member and not member.split("/", 1)[0].endswith((".dist-info", ".data")):
                    names.add(norm(member.split("/", 1)[0]))
    return names


def imports(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mods.add(node.module.split(".")[0])
    return sorted(mods)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", required=True)
    ap.add_argument("--wheels")
    ap.add_argument("scripts", nargs="+")
    a = ap.parse_args()
    stdlib = set(getattr(sys, "stdlib_module_names", ())) | set(sys.builtin_module_names)
    if not stdlib - set(sys.builtin_module_names):
        print("pycheck: this Python (%s) has no sys.stdlib_module_names: need 3.10 or later" % sys.version.split()[0])
        return 2
    image, wheels = image_names(a.image), wheel_names(a.wheels)
    missing = []
    for script in a.scripts:
        try:
            mods = imports(script)
        except (OSError, SyntaxError) as e:
            print("pycheck: %s: %s" % (script, e))
            return 2
        where = []
        for m in mods:
            if m in stdlib:
                continue
            if norm(m) in wheels:
                where.append("%s (carried wheel)" % m)
            elif norm(m) in image:
                where.append("%s (image)" % m)
            else:
                where.append("%s (MISSING)" % m)
                missing.append("%s needs %s" % (os.path.basename(script), m))
        print("pycheck: %s: %s, and the stdlib" % (os.path.basename(script), ", ".join(where) or "nothing"))
    if missing:
        print("pycheck: not on the image's list nor carried: %s (carry wheels in .gpu/wheels: tests/gpu/README.md)"
              % "; ".join(missing))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
