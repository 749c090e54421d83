"""Bounce classification measured against Sisimai (issue 22).

Every reply of the corpora in tests/bounce/ (real bounces from sisimai/set-of-emails,
providers' documented replies, the failures our own peer suites produce) is classified by
`bindery bounce classify` and by Sisimai's `Sisimai::Reason->match` (Debian's
libsisimai-perl), a classifier no one here wrote. Where Sisimai gives a reason, the two
agree when our class is one the reason maps to (tests/bounce/sisimai-map.tsv).

The test asserts agreement of at least 95 %, that every disagreement is explained in
tests/bounce/disagreements.tsv (and that no explanation is stale), and that the table in
tests/bounce/agreement.txt is what this run measured (BINDERY_BLESS=1 rewrites it).
"""

import collections
import glob
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BOUNCE = os.path.join(HERE, "..", "bounce")
BIN = os.environ.get("BINDERY_BIN", "target/debug/bindery")
GOAL = 0.95
# Reasons that are not a classification of a failure.
NO_REASON = {"", "undefined", "delivered", "feedback"}

SISIMAI = r"""
use strict; use warnings; use Sisimai::Reason;
while (my $l = <STDIN>) { chomp $l; print((Sisimai::Reason->match($l) // ''), "\n"); }
"""


def tsv(path):
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            rows.append(line.split("\t"))
    return rows


def corpus():
    out = []
    for path in sorted(glob.glob(os.path.join(BOUNCE, "corpus-*.tsv"))):
        name = os.path.basename(path)
        for source, domain, _make, reply in tsv(path):
            out.append((name, source, domain, reply))
    return out


def ours(rows):
    stdin = "".join(f"{d}\t{r}\n" for _, _, d, r in rows)
    p = subprocess.run([BIN, "bounce", "classify", "--tsv"], input=stdin.encode(),
                       capture_output=True, check=True)
    lines = p.stdout.decode().splitlines()
    assert len(lines) == len(rows), (len(lines), len(rows))
    return [int(l.split("\t")[0]) for l in lines]


def sisimai(rows):
    stdin = "".join(f"{r}\n" for _, _, _, r in rows)
    p = subprocess.run(["perl", "-e", SISIMAI], input=stdin.encode(), capture_output=True,
                       check=True)
    lines = p.stdout.decode().splitlines()
    assert len(lines) == len(rows), (len(lines), len(rows))
    return lines


def measure():
    rows = corpus()
    mapping = {r[0]: {int(c) for c in r[1].split()} for r in tsv(os.path.join(BOUNCE, "sisimai-map.tsv"))}
    got, oracle = ours(rows), sisimai(rows)
    table = collections.Counter()
    per_corpus = collections.defaultdict(lambda: [0, 0])
    disagree = []
    for row, cls, reason in zip(rows, got, oracle):
        if reason in NO_REASON:
            continue
        ok = cls in mapping.get(reason, set())
        table[(reason, cls, ok)] += 1
        per_corpus[row[0]][0] += ok
        per_corpus[row[0]][1] += 1
        if not ok:
            disagree.append((reason, cls, row))
    return rows, table, per_corpus, disagree, mapping


def report(rows, table, per_corpus, disagree):
    agreed = sum(n for (_, _, ok), n in table.items() if ok)
    total = sum(table.values())
    out = [
        "# Bounce classification against Sisimai::Reason->match (libsisimai-perl).",
        "# Written by tests/peers/bounce_classes.py; BINDERY_BLESS=1 rewrites it.",
        f"replies: {len(rows)}; with a Sisimai reason: {total}; agreeing: {agreed} "
        f"({100.0 * agreed / max(total, 1):.1f} %)",
        "",
        "corpus\tagreeing\twith a reason",
    ]
    for name in sorted(per_corpus):
        a, t = per_corpus[name]
        out.append(f"{name}\t{a}\t{t}")
    out += ["", "sisimai reason\tour class\tagrees\treplies"]
    for (reason, cls, ok), n in sorted(table.items()):
        out.append(f"{reason}\t{cls}\t{'yes' if ok else 'no'}\t{n}")
    return "\n".join(out) + "\n", agreed, total


class Agreement(unittest.TestCase):
    def test_agreement_with_sisimai(self):
        rows, table, per_corpus, disagree, _ = measure()
        text, agreed, total = report(rows, table, per_corpus, disagree)
        golden = os.path.join(BOUNCE, "agreement.txt")
        explained = {r[0]: r[1] for r in tsv(os.path.join(BOUNCE, "disagreements.tsv"))}
        if os.environ.get("BINDERY_BLESS"):
            with open(golden, "w") as f:
                f.write(text)
        else:
            with open(golden) as f:
                self.assertEqual(f.read(), text, "agreement changed: BINDERY_BLESS=1 to accept")
        self.assertGreaterEqual(agreed / total, GOAL, text)
        missing = [(reason, cls, row[3]) for reason, cls, row in disagree
                   if row[3] not in explained]
        self.assertEqual(missing, [], "disagreements without an explanation in "
                         "tests/bounce/disagreements.tsv")
        stale = set(explained) - {row[3] for _, _, row in disagree}
        self.assertEqual(stale, set(), "explanations of replies that now agree")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--disagreements":
        rows, table, per_corpus, disagree, _ = measure()
        for reason, cls, row in disagree:
            print(f"{reason}\t{cls}\t{row[3][:220]}")
        sys.exit(0)
    unittest.main()
