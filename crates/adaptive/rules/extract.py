#!/usr/bin/env python3
"""Builds system.json, the response rules adaptive delivery applies with the `adaptive`
module loaded, from the facts in Momentum's documentation of its system rules:
SparkPost/support-docs `content/momentum/3/3-ad/ad-appendix-adaptive-rules.md` ("The
adaptive_rules.lua File"). Each provider's reply patterns, triggers, actions and messages are
taken as data; nothing of the file's code is kept.

Left out, and listed in the output's `left_out`: `configuration` functions (Momentum's
binding-age warm-up throttles; bindery has `warmup_plan` instead), which the page gives as
Lua code, not data; the one `warmup` response (it feeds those functions); `transcode` (a
reply rewritten before the rest of the actions: bindery keeps the other actions); a response
without code or action. Domain names are lower-cased.

  extract.py PAGE.md > system.json
"""

import json
import re
import sys

page = open(sys.argv[1], encoding="utf-8").read()
code = page.split("```", 2)[1]
# The page breaks long lines with `»` and a newline.
code = code.replace("»\n", " ")
# Drop comments and block comments.
code = re.sub(r"--\[\[.*?\]\]", "", code, flags=re.S)
code = re.sub(r"--[^\n]*", "", code)
# A `configuration` function (Lua code, not data) becomes the marker "__function__": its
# body runs from `= function(` to the `end` at the indentation of its first line.
lines, kept, skip = code.split("\n"), [], None
for line in lines:
    if skip is not None:
        if re.fullmatch(re.escape(skip) + r"end,?\s*", line):
            kept.append(skip + '"__function__",')
            skip = None
        continue
    m = re.match(r"(\s*)(\w+) = function\(", line)
    if m:
        skip = m.group(1)
        kept.append(f"{m.group(1)}{m.group(2)} = ")
        continue
    kept.append(line)
code = "\n".join(kept)
start = code.index("Rules = {")

TOKEN = re.compile(r'\s*(?:(?P<str>"(?:\\.|[^"\\])*")|(?P<num>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<p>[{}\[\]=,;()]))')


def tokens(text, pos):
    while True:
        m = TOKEN.match(text, pos)
        if not m:
            if text[pos:].strip() == "":
                return
            raise SystemExit(f"cannot read at {text[pos:pos+60]!r}")
        pos = m.end()
        kind = m.lastgroup
        yield kind, m.group(kind), pos


def lua_string(s):
    body = s[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


class Reader:
    def __init__(self, text, pos):
        self.it = tokens(text, pos)
        self.look = None

    def next(self):
        if self.look is not None:
            t, self.look = self.look, None
            return t
        return next(self.it)

    def peek(self):
        if self.look is None:
            self.look = next(self.it)
        return self.look

    def value(self):
        kind, v, _ = self.next()
        if kind == "str":
            return lua_string(v)
        if kind == "num":
            return float(v) if "." in v else int(v)
        if kind == "p" and v == "{":
            return self.table()
        if kind == "name" and v == "function":
            # Skip to the matching `end`.
            depth = 1
            while depth:
                k, w, _ = self.next()
                if k == "name" and w in ("if", "function", "for", "while", "do"):
                    depth += 1 if w != "do" else 0
                if k == "name" and w == "end":
                    depth -= 1
            return {"__function__": True}
        if kind == "name" and v in ("true", "false"):
            return v == "true"
        raise SystemExit(f"unexpected {v!r}")

    def table(self):
        items, keyed = [], {}
        while True:
            kind, v, _ = self.peek()
            if kind == "p" and v == "}":
                self.next()
                return keyed if keyed else items
            if kind == "p" and v in ",;":
                self.next()
                continue
            if kind == "p" and v == "[":
                self.next()
                key = self.value()
                assert self.next()[1] == "]"
                assert self.next()[1] == "="
                keyed[key] = self.value()
                continue
            if kind == "name":
                self.next()
                k2, v2, _ = self.peek()
                if k2 == "p" and v2 == "=":
                    self.next()
                    keyed[v] = self.value()
                    continue
                raise SystemExit(f"bare name {v!r}")
            items.append(self.value())


r = Reader(code, start + len("Rules = "))
rules = r.value()
left_out = []
out = {}
for domain, entry in rules.items():
    domain = domain.lower()
    if isinstance(entry, str):
        out[domain] = entry.lower()
        continue
    conf = {}
    for k, v in entry.get("configuration", {}).items():
        if v == "__function__":
            left_out.append(f"{domain}: configuration {k} is a function of the binding's age")
            continue
        conf[k] = v
    responses = []
    for resp in entry.get("responses", []):
        if "code" not in resp or "action" not in resp:
            left_out.append(f"{domain}: a response without code or action ({resp!r})")
            continue
        action = resp["action"]
        if action[0] == "warmup":
            left_out.append(f"{domain}: {resp['code']}: `warmup` sets the binding's age for the "
                            "configuration functions, which are left out")
            continue
        if action[0] == "transcode":
            left_out.append(f"{domain}: {resp['code']}: `transcode {action[1]}` left out (bindery "
                            "does not rewrite replies: the reply keeps its own code); the rest of "
                            "its actions kept")
            action = action[2:]
        kept = {k: resp[k] for k in ("code", "trigger", "message", "phase") if k in resp}
        kept["action"] = [str(a) for a in action]
        responses.append(kept)
    out[domain] = {"responses": responses, "configuration": conf}

json.dump({
    "source": "SparkPost/support-docs content/momentum/3/3-ad/ad-appendix-adaptive-rules.md",
    "left_out": left_out,
    "rules": out,
}, sys.stdout, indent=1, ensure_ascii=False)
print()
