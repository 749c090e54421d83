#!/usr/bin/env python3
"""Copies every code block of Momentum's Lua reference pages into support-docs/.

Each block of content/momentum/4/lua/PAGE.md in SparkPost/support-docs becomes
support-docs/PAGE.N.lua (N counts the page's blocks from 1), unchanged, and gets a row in
SOURCES.tsv (repository, commit, page). Blocks that are not Lua (a function's synopsis, what
an example prints, a configuration snippet) are copied too: sweep.tsv says what each is, and
the corpus test checks that too.

Usage: extract-reference-examples.py GIT_DIR_OF_SUPPORT_DOCS
(`fetch github:SparkPost/support-docs` gives one.)
"""

import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PAGES = "content/momentum/4/lua/"


def git(gitdir, *args):
    return subprocess.run(["git", "--git-dir", gitdir, *args], check=True,
                          capture_output=True, text=True).stdout


def main():
    gitdir = sys.argv[1]
    commit = git(gitdir, "rev-parse", "HEAD").strip()
    pages = [p for p in git(gitdir, "ls-tree", "-r", "--name-only", "HEAD", PAGES).split()
             if p.endswith(".md") and not p.endswith("/index.md")]
    out = os.path.join(HERE, "support-docs")
    os.makedirs(out, exist_ok=True)
    sources = os.path.join(HERE, "SOURCES.tsv")
    with open(sources) as f:
        rows = [r for r in f.read().splitlines() if not r.startswith("support-docs/")]
    for page in sorted(pages):
        text = git(gitdir, "show", f"HEAD:{page}")
        blocks = re.findall(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M)
        name = os.path.basename(page)[:-3]
        for i, block in enumerate(blocks, 1):
            rel = f"support-docs/{name}.{i}.lua"
            with open(os.path.join(HERE, rel), "w") as f:
                f.write(block)
            rows.append(f"{rel}\tSparkPost/support-docs\t{commit}\t{page} (code block {i})")
    with open(sources, "w") as f:
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
