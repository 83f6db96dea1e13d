#!/usr/bin/env python3
"""Fails when a docs page names a file or folder of this repository that does not exist.

docs/architecture.md's "Layout" block is read entry by entry: a name at the start of a line
is a path from the top of the repository (a folder when it ends in "/", and the folder that
indented names below it are in); an indented name is inside the last such folder. Brace lists
("gstvsockenc.{h,cpp}") stand for each of their files; "a, b" names two. Every page under docs/ is also
searched for backquoted paths that start with one of the repository's top folders (`gst/...`,
`tests/check/...`); those must exist too, with "*" taken as a glob.

usage: doc-paths.py SOURCE_ROOT
"""
import glob
import os
import re
import sys

TOP_DIRS = ("common/", "docs/", "examples/", "ext/", "gst/", "gst-libs/", "scripts/",
            "subprojects/", "tests/", ".ci/")


def expand(name):
    m = re.search(r"\{([^}]*)\}", name)
    if not m:
        return [name]
    out = []
    for alt in m.group(1).split(","):
        out += expand(name[:m.start()] + alt + name[m.end():])
    return out


def layout_paths(text):
    """(line number, path) for every entry of the Layout block."""
    block = re.search(r"^## Layout\n+```[^\n]*\n(.*?)^```", text, re.S | re.M)
    if not block:
        sys.exit("docs/architecture.md has no '## Layout' code block")
    first_line = text[:block.start(1)].count("\n") + 1
    current = ""
    for i, line in enumerate(block.group(1).splitlines()):
        indent = len(line) - len(line.lstrip(" "))
        if not line.strip() or indent > 2:
            continue  # blank, or a description running on
        names = []  # "a, b  text": the names run while a token ends in a comma
        for token in line.split():
            names.append(token.rstrip(","))
            if not token.endswith(","):
                break
        for name in names:
            path = name if indent == 0 else current + name
            if indent == 0 and name.endswith("/"):
                current = name
            for p in expand(path):
                yield first_line + i, p


def backquoted_paths(text):
    for i, line in enumerate(text.splitlines()):
        for name in re.findall(r"`([^`\s]+)`", line):
            if name.startswith(TOP_DIRS) and "=" not in name and "$" not in name:
                for p in expand(name.rstrip(".,:;")):
                    yield i + 1, p


def exists(root, path):
    """A file or folder; a built program's name counts when its source does
    (`tests/bench/hxfr-bench` for hxfr-bench.cpp), a stem when a file of it does
    (`support/hxfr-client` for hxfr-client.{h,cpp})."""
    path = os.path.join(root, path.split(":")[0])  # "file.cpp:120" style references
    if "*" in path:
        return bool(glob.glob(path))
    return os.path.exists(path) or bool(glob.glob(glob.escape(path) + ".*"))


def main():
    root = sys.argv[1]
    missing = []
    arch = os.path.join(root, "docs", "architecture.md")
    entries = list(layout_paths(open(arch, encoding="utf-8").read()))
    if len(entries) < 20:
        sys.exit(f"docs/architecture.md: only {len(entries)} layout entries read; parser broken?")
    missing += [f"docs/architecture.md:{n}: {p}" for n, p in entries if not exists(root, p)]
    checked = len(entries)
    for page in sorted(glob.glob(os.path.join(root, "docs", "*.md"))):
        rel = os.path.relpath(page, root)
        for n, p in backquoted_paths(open(page, encoding="utf-8").read()):
            checked += 1
            if not exists(root, p):
                missing.append(f"{rel}:{n}: {p}")
    for m in missing:
        print("names a path that does not exist: " + m)
    print(f"{checked} paths checked, {len(missing)} missing")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
