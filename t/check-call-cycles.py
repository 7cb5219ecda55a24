#!/usr/bin/python3
"""Fail when C files of one directory depend on each other in a circle.

A file A depends on a file B when A names (calls, or takes the address
of) a function with external linkage that B defines. The files of a
directory must form layers: the dependency graph has no cycle, of two
files (A calls B, B calls A) or more. Static functions cannot be named
from another file and are ignored, so are names a file defines itself.

Definitions are found by the project's style (nginx/httpd): the return
type on its own line, the function name at column 0 followed by '(',
'static' on the line before when the function is file-local.

usage: check-call-cycles.py [-v] DIR...   (-v prints the layers)
"""
import os
import re
import sys

DEF = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\(")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
STRING = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'')


def strip(src):
    src = COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), src)
    return STRING.sub('""', src)


def definitions(lines):
    """External-linkage functions defined in a file (name -> line)."""
    out = {}
    for i, line in enumerate(lines):
        m = DEF.match(line)
        if not m or line.rstrip().endswith(";"):
            continue
        prev = lines[i - 1] if i > 0 else ""
        if re.search(r"\bstatic\b", prev) or re.search(r"\bstatic\b", line):
            continue
        # a definition: the '{' follows after the parameter list
        j = i
        while j < len(lines) and ")" not in lines[j]:
            j += 1
        rest = "".join(lines[j:j + 3])
        if "{" not in rest or ";" in rest.split("{")[0]:
            continue
        out[m.group(1)] = i + 1
    return out


def scc(nodes, edges):
    """Tarjan: strongly connected components, each a sorted list."""
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return comps


def check(d, verbose):
    files = sorted(f for f in os.listdir(d) if f.endswith(".c"))
    text, defs = {}, {}
    for f in files:
        with open(os.path.join(d, f), encoding="utf-8", errors="replace") as fh:
            text[f] = strip(fh.read())
        defs[f] = definitions(text[f].split("\n"))
    owner = {}
    for f in files:
        for name in defs[f]:
            owner.setdefault(name, f)
    edges, why = {}, {}
    for f in files:
        for lineno, line in enumerate(text[f].split("\n"), 1):
            for name in IDENT.findall(line):
                g = owner.get(name)
                if g is None or g == f or name in defs[f]:
                    continue
                edges.setdefault(f, set()).add(g)
                why.setdefault((f, g), "%s:%d uses %s (%s)" % (
                    f, lineno, name, g))
    bad = 0
    for comp in scc(files, edges):
        if len(comp) < 2:
            continue
        bad += 1
        print("%s: files in a call circle: %s" % (d, " ".join(comp)))
        for a in comp:
            for b in comp:
                if b in edges.get(a, ()):
                    print("    " + why[(a, b)])
    if verbose and not bad:
        # layers: a file sits one above the highest file it uses
        level = {}

        def lv(f, seen=()):
            if f not in level:
                level[f] = 1 + max([lv(g) for g in edges.get(f, ())] + [-1])
            return level[f]

        for f in files:
            lv(f)
        for n in sorted(set(level.values())):
            print("%s layer %d: %s" % (d, n, " ".join(
                f for f in files if level[f] == n)))
    return bad


def main(argv):
    verbose = "-v" in argv
    dirs = [a for a in argv if a != "-v"]
    bad = sum(check(d, verbose) for d in dirs)
    if bad:
        print("FAIL: %d call circle(s)" % bad)
        return 1
    print("ok: no call circles in %s" % " ".join(dirs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
