#!/usr/bin/env python3
"""Builds the Momentum configuration corpus from Momentum's public documentation.

    extract.py MIRROR_DIR

MIRROR_DIR holds bare clones (as `fetch` leaves them) of SparkPost/support-docs,
SparkPost/momentum-documentation and SparkPost/momentum_sample_policy, named
`SparkPost+<repo>/repo`. Every fenced code block of the Momentum 4 pages that is a whole
configuration stanza (its first line opens a stanza, its braces balance, it has no
placeholder like `<true|false>`, no `;`-terminated nginx statement) becomes `files/NNNN.conf`, and the sample policy
repository's `*.conf` files are copied whole. `SOURCES.tsv` says where each came from
(repository, commit, path, block number); identical blocks are kept once.

Run it again to refresh the corpus; then `BINDERY_BLESS=1 cargo test -p bindery --test
momentum_corpus` records what bindery does with each file.
"""

import hashlib
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PAGES = [
    ("SparkPost/support-docs", "content/momentum/4/"),
    ("SparkPost/momentum-documentation", "docs/web-momo4/"),
]
POLICY = "SparkPost/momentum_sample_policy"

# A stanza opens as `word {`, `word "name" {` or `word name {`, maybe with the brace on the
# next line.
OPEN = re.compile(r'^\s*[A-Za-z_][\w:]*(\s+("[^"]*"|\'[^\']*\'|[^\s{}"]+))?\s*(\{\s*)?$')
PLACEHOLDER = re.compile(r"<[^>\n]*>|\.\.\.|…")


def git(mirror, repo, *args):
    d = os.path.join(mirror, repo.replace("/", "+"), "repo")
    return subprocess.run(["git", f"--git-dir={d}", *args], check=True,
                          capture_output=True).stdout


def blocks(text):
    """Fenced code blocks of a markdown page, in order."""
    out, cur, fence = [], None, None
    for line in text.split("\n"):
        m = re.match(r"^\s*(```+|~~~+)", line)
        if m and cur is None:
            cur, fence = [], m.group(1)
        elif m and cur is not None and line.strip().startswith(fence):
            out.append("\n".join(cur))
            cur = None
        elif cur is not None:
            cur.append(line)
    return out


def balanced(text):
    depth = 0
    quote = None
    for line in text.split("\n"):
        i = 0
        while i < len(line):
            c = line[i]
            if quote:
                if c == "\\":
                    i += 1
                elif c == quote:
                    quote = None
            elif c in "\"'":
                quote = c
            elif c == "#":
                break
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth < 0:
                    return False
            i += 1
    return depth == 0 and quote is None


def is_stanza(block):
    lines = [l for l in block.split("\n") if l.strip() and not l.strip().startswith("#")]
    if not lines or "{" not in block:
        return False
    if not OPEN.match(lines[0]) or lines[0].strip().startswith(("function", "local", "if ")):
        return False
    if lines[0].strip().endswith("{") is False and not (len(lines) > 1 and lines[1].strip().startswith("{")):
        return False
    if PLACEHOLDER.search(block) or not balanced(block):
        return False
    # Shell prompts, Lua and console transcripts are not configuration, nor are nginx's files
    # (their statements end in `;`, which ecelerity.conf never uses).
    if re.search(r"^\s*(\$|#\s*/|ecelerity>|local |function |end$)", block, re.M):
        return False
    if any(l.rstrip().endswith(";") for l in lines):
        return False
    return True


def main():
    mirror = sys.argv[1]
    files = os.path.join(HERE, "files")
    os.makedirs(files, exist_ok=True)
    for f in os.listdir(files):
        os.remove(os.path.join(files, f))
    seen, rows = set(), []

    def keep(text, repo, commit, path, block):
        key = hashlib.sha256(text.strip().encode()).hexdigest()
        if key in seen:
            return
        seen.add(key)
        name = f"{len(rows) + 1:04d}.conf"
        with open(os.path.join(files, name), "w") as out:
            out.write(text.rstrip() + "\n")
        rows.append((name, repo, commit, path, block))

    for repo, prefix in PAGES:
        commit = git(mirror, repo, "rev-parse", "HEAD").decode().strip()
        paths = git(mirror, repo, "ls-tree", "-r", "--name-only", "HEAD", prefix).decode().split()
        for path in sorted(p for p in paths if p.endswith(".md")):
            text = git(mirror, repo, "show", f"HEAD:{path}").decode("utf-8", "replace")
            for n, b in enumerate(blocks(text), 1):
                if is_stanza(b):
                    keep(b, repo, commit, path, str(n))
    commit = git(mirror, POLICY, "rev-parse", "HEAD").decode().strip()
    paths = git(mirror, POLICY, "ls-tree", "-r", "--name-only", "HEAD").decode().split()
    for path in sorted(p for p in paths if p.endswith(".conf")):
        text = git(mirror, POLICY, "show", f"HEAD:{path}").decode("utf-8", "replace")
        keep(text, POLICY, commit, path, "whole")
    with open(os.path.join(HERE, "SOURCES.tsv"), "w") as out:
        out.write("file\trepository\tcommit\tpath\tblock\n")
        for r in rows:
            out.write("\t".join(r) + "\n")
    print(f"{len(rows)} files")


if __name__ == "__main__":
    main()
